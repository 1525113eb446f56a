//! Cuts a collection's records into request batches by count and by body bytes.
//!
//! Boundaries depend only on the snapshot and the [`BatchLimits`], so the same snapshot always
//! gives the same batches: a journal can name acknowledged batches by index.

use std::collections::HashSet;

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::body::{BODY_OVERHEAD, Encoding, record_bytes};
use crate::record::{RecordPage, RecordRef};
use crate::snapshot::SnapshotError;
use crate::snapshot::convert::BatchView;

/// What decides batch boundaries; stored in the journal so a resume cuts the same batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub encoding: Encoding,
}

/// One request's worth of records.
#[derive(Debug)]
pub struct Batch {
    pub index: u64,
    /// Records after de-duplication.
    pub rows: usize,
    /// Upper bound of the body size.
    pub bytes: usize,
    /// The records; `None` when the caller asked to skip this batch.
    pub page: Option<RecordPage>,
    /// Ids that appeared again within this batch (the first occurrence is kept).
    pub duplicates: Vec<String>,
}

/// An iterator of [`Batch`]es over a stream of part-schema record batches.
pub struct Batcher<I, S> {
    input: I,
    limits: BatchLimits,
    skip: S,
    current: Option<RecordBatch>,
    row: usize,
    index: u64,
    done: bool,
}

impl<I, S> Batcher<I, S>
where
    I: Iterator<Item = Result<RecordBatch, SnapshotError>>,
    S: Fn(u64) -> bool,
{
    /// `skip(i)` says whether batch `i` is only counted, not materialised (already loaded).
    pub fn new(input: I, limits: BatchLimits, skip: S) -> Self {
        assert!(limits.max_rows > 0, "batches hold at least one record");
        Self { input, limits, skip, current: None, row: 0, index: 0, done: false }
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, SnapshotError> {
        let skip = (self.skip)(self.index);
        let mut page: Option<RecordPage> = None;
        let mut seen: HashSet<String> = HashSet::new();
        let mut batch = Batch { index: self.index, rows: 0, bytes: BODY_OVERHEAD, page: None, duplicates: Vec::new() };
        loop {
            if self.current.as_ref().is_none_or(|b| self.row >= b.num_rows()) {
                match self.input.next().transpose()? {
                    Some(b) => {
                        self.current = Some(b);
                        self.row = 0;
                        continue;
                    }
                    None => {
                        self.done = true;
                        break;
                    }
                }
            }
            let rb = self.current.as_ref().expect("a current batch");
            let view = BatchView::new(rb);
            let r: RecordRef<'_> = view.record(self.row);
            if seen.contains(r.id) {
                batch.duplicates.push(r.id.to_owned());
                self.row += 1;
                continue;
            }
            let size = record_bytes(self.limits.encoding, r.id, view.dim, r.document, r.uri, r.metadata);
            if batch.rows > 0 && (batch.rows >= self.limits.max_rows || batch.bytes + size > self.limits.max_bytes) {
                break;
            }
            seen.insert(r.id.to_owned());
            batch.rows += 1;
            batch.bytes += size;
            if !skip {
                page.get_or_insert_with(|| RecordPage::with_capacity(view.dim, self.limits.max_rows.min(4096))).push(r);
            }
            self.row += 1;
        }
        if batch.rows == 0 {
            return Ok(None);
        }
        batch.page = page;
        self.index += 1;
        Ok(Some(batch))
    }
}

impl<I, S> Iterator for Batcher<I, S>
where
    I: Iterator<Item = Result<RecordBatch, SnapshotError>>,
    S: Fn(u64) -> bool,
{
    type Item = Result<Batch, SnapshotError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::convert::page_to_batch;

    fn input(ids: &[&str], chunk: usize) -> Vec<Result<RecordBatch, SnapshotError>> {
        ids.chunks(chunk)
            .map(|c| {
                let mut p = RecordPage::with_capacity(2, c.len());
                for id in c {
                    p.push(RecordRef { id, embedding: &[1.0, 2.0], document: Some("doc"), uri: None, metadata: None });
                }
                Ok(page_to_batch(&p))
            })
            .collect()
    }

    fn cut(ids: &[&str], chunk: usize, limits: BatchLimits) -> Vec<Vec<String>> {
        Batcher::new(input(ids, chunk).into_iter(), limits, |_| false).map(|b| b.unwrap().page.unwrap().ids).collect()
    }

    #[test]
    fn boundaries_do_not_depend_on_input_chunking() {
        let ids: Vec<String> = (0..23).map(|i| format!("id{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let limits = BatchLimits { max_rows: 5, max_bytes: 1 << 20, encoding: Encoding::Json };
        let a = cut(&ids, 4, limits);
        assert_eq!(a, cut(&ids, 7, limits));
        assert_eq!(a.len(), 5);
        assert_eq!(a[4].len(), 3);
    }

    #[test]
    fn byte_budget_cuts_and_one_record_always_fits() {
        let ids = ["a", "b", "c", "d"];
        let one = BODY_OVERHEAD + record_bytes(Encoding::Base64, "a", 2, Some("doc"), None, None);
        let limits = BatchLimits { max_rows: 100, max_bytes: one + 1, encoding: Encoding::Base64 };
        assert_eq!(cut(&ids, 3, limits).len(), 4);
        let limits = BatchLimits { max_rows: 100, max_bytes: 10, encoding: Encoding::Base64 };
        assert_eq!(cut(&ids, 3, limits).len(), 4, "a record larger than the budget goes alone");
    }

    #[test]
    fn duplicates_within_a_batch_keep_the_first() {
        let limits = BatchLimits { max_rows: 10, max_bytes: 1 << 20, encoding: Encoding::Json };
        let b: Vec<Batch> =
            Batcher::new(input(&["a", "b", "a", "c"], 2).into_iter(), limits, |_| false).map(Result::unwrap).collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].page.as_ref().unwrap().ids, ["a", "b", "c"]);
        assert_eq!(b[0].duplicates, ["a"]);
    }

    #[test]
    fn skipped_batches_are_counted_not_copied() {
        let ids = ["a", "b", "c", "d", "e"];
        let limits = BatchLimits { max_rows: 2, max_bytes: 1 << 20, encoding: Encoding::Json };
        let b: Vec<Batch> = Batcher::new(input(&ids, 5).into_iter(), limits, |i| i != 1).map(Result::unwrap).collect();
        assert_eq!(b.iter().map(|b| b.rows).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(b[0].page.is_none() && b[2].page.is_none());
        assert_eq!(b[1].page.as_ref().unwrap().ids, ["c", "d"]);
    }
}
