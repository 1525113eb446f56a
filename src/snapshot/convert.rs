//! Converts between a [`RecordPage`] and an Arrow [`RecordBatch`] of the part schema, reads
//! records out of a batch without copying, and gathers picked rows of several batches into one
//! ([`Gather`]: transform's columnar routing).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, StringArray};
use arrow::datatypes::Float32Type;
use arrow::record_batch::RecordBatch;

use super::schema::{embedding_item, part_schema};
use crate::record::{RecordPage, RecordRef};

/// Builds a part-schema batch from a page.
pub fn page_to_batch(page: &RecordPage) -> RecordBatch {
    let dim = i32::try_from(page.dim).expect("dimension fits in i32");
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values(page.ids.iter()));
    let values = Float32Array::from(page.embeddings.clone());
    let emb: ArrayRef = Arc::new(FixedSizeListArray::new(embedding_item(), dim, Arc::new(values), None));
    let opt =
        |v: &Vec<Option<String>>| -> ArrayRef { Arc::new(v.iter().map(|s| s.as_deref()).collect::<StringArray>()) };
    RecordBatch::try_new(
        part_schema(page.dim),
        vec![ids, emb, opt(&page.documents), opt(&page.uris), opt(&page.metadatas)],
    )
    .expect("page columns match the part schema")
}

/// Borrowed, typed columns of a part-schema batch.
pub struct BatchView<'a> {
    pub dim: usize,
    ids: &'a StringArray,
    values: &'a [f32],
    documents: &'a StringArray,
    uris: &'a StringArray,
    metadatas: &'a StringArray,
}

impl<'a> BatchView<'a> {
    /// Views a batch whose schema was already checked with `check_part_schema`.
    pub fn new(batch: &'a RecordBatch) -> Self {
        let emb = batch.column(1).as_fixed_size_list();
        let dim = emb.value_length() as usize;
        // A sliced batch keeps the whole child array; offset into it by the list's own offset.
        let all: &[f32] = emb.values().as_primitive::<Float32Type>().values();
        let start = emb.offset() * dim;
        Self {
            dim,
            ids: batch.column(0).as_string::<i32>(),
            values: &all[start..start + emb.len() * dim],
            documents: batch.column(2).as_string::<i32>(),
            uris: batch.column(3).as_string::<i32>(),
            metadatas: batch.column(4).as_string::<i32>(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn record(&self, i: usize) -> RecordRef<'a> {
        let opt = |a: &'a StringArray| if a.is_null(i) { None } else { Some(a.value(i)) };
        RecordRef {
            id: self.ids.value(i),
            embedding: &self.values[i * self.dim..(i + 1) * self.dim],
            document: opt(self.documents),
            uri: opt(self.uris),
            metadata: opt(self.metadatas),
        }
    }

    pub fn records(&self) -> impl Iterator<Item = RecordRef<'a>> + '_ {
        (0..self.len()).map(|i| self.record(i))
    }

    /// Copies the rows into an owned page.
    pub fn to_page(&self) -> RecordPage {
        let mut page = RecordPage::with_capacity(self.dim, self.len());
        for r in self.records() {
            page.push(r);
        }
        page
    }
}

/// Source batches a [`Gather`] keeps alive before it copies its rows into one batch of its own:
/// bounds the memory a sparsely routed target holds (a few read batches, not every one it saw).
const GATHER_SOURCES: usize = 4;

/// Rows picked, in order, from part-schema batches (kept by reference, not copied), each with its
/// own id and metadata; built into one part-schema batch with one copy of every column.
pub struct Gather {
    dim: usize,
    sources: Vec<RecordBatch>,
    /// The caller's key of the last source added (a batch is registered once per run of rows).
    last_key: Option<u64>,
    picks: Vec<(u32, u32)>,
    ids: Vec<String>,
    metadatas: Vec<Option<String>>,
    /// Per pick, the byte length its document is cut to (`None`: whole).
    cuts: Vec<Option<usize>>,
}

impl Gather {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            sources: Vec::new(),
            last_key: None,
            picks: Vec::new(),
            ids: Vec::new(),
            metadatas: Vec::new(),
            cuts: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.picks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Adds row `row` of `batch` (whose embeddings have this gather's dimension) with `id` and
    /// `metadata` in place of its own, its document cut to `cut` bytes when given (a character
    /// boundary). `key` names the batch: equal keys are the same batch.
    pub fn push(
        &mut self,
        key: u64,
        batch: &RecordBatch,
        row: usize,
        (id, metadata, cut): (String, Option<String>, Option<usize>),
    ) {
        if self.last_key != Some(key) {
            if self.sources.len() == GATHER_SOURCES {
                self.compact();
            }
            self.sources.push(batch.clone());
            self.last_key = Some(key);
        }
        let src = u32::try_from(self.sources.len() - 1).expect("few sources");
        self.picks.push((src, u32::try_from(row).expect("rows of a read batch fit in u32")));
        self.ids.push(id);
        self.metadatas.push(metadata);
        self.cuts.push(cut);
    }

    /// Lets go of the source batches, keeping a copy of only the picked rows: for a target that
    /// receives nothing for a while, so that it does not pin whole read batches meanwhile. The
    /// batch it builds later is the same.
    pub fn release_sources(&mut self) {
        let compacted = self.sources.len() == 1 && self.last_key.is_none();
        if !self.sources.is_empty() && !compacted {
            self.compact();
        }
    }

    /// Copies the picked rows' embeddings, documents and uris into one batch that replaces the
    /// sources (their ids and metadata stay in this gather's vectors).
    fn compact(&mut self) {
        let n = self.picks.len();
        let empty: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n("", n)));
        let none: ArrayRef = Arc::new(StringArray::new_null(n));
        let batch = self.columns(empty, none);
        self.picks = (0..n).map(|i| (0, u32::try_from(i).expect("rows fit in u32"))).collect();
        self.cuts.iter_mut().for_each(|c| *c = None); // the copied documents are cut already
        self.sources = vec![batch];
        self.last_key = None;
    }

    /// The part-schema batch of the picked rows with the given id and metadata columns.
    fn columns(&self, ids: ArrayRef, metadatas: ArrayRef) -> RecordBatch {
        let views: Vec<BatchView<'_>> = self.sources.iter().map(BatchView::new).collect();
        let rows = || self.picks.iter().map(|&(s, r)| views[s as usize].record(r as usize));
        let mut values = Vec::with_capacity(self.picks.len() * self.dim);
        for r in rows() {
            values.extend_from_slice(r.embedding);
        }
        let dim = i32::try_from(self.dim).expect("dimension fits in i32");
        let emb: ArrayRef =
            Arc::new(FixedSizeListArray::new(embedding_item(), dim, Arc::new(Float32Array::from(values)), None));
        let documents: ArrayRef = Arc::new(
            rows().zip(&self.cuts).map(|(r, c)| r.document.map(|d| c.map_or(d, |n| &d[..n]))).collect::<StringArray>(),
        );
        let uris: ArrayRef = Arc::new(rows().map(|r| r.uri).collect::<StringArray>());
        RecordBatch::try_new(part_schema(self.dim), vec![ids, emb, documents, uris, metadatas])
            .expect("gathered columns match the part schema")
    }

    /// The batch of every row pushed so far; the gather is empty afterwards.
    pub fn take_batch(&mut self) -> RecordBatch {
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(self.ids.drain(..)));
        let metadatas: ArrayRef = Arc::new(self.metadatas.drain(..).collect::<StringArray>());
        let batch = self.columns(ids, metadatas);
        self.cuts.clear();
        self.sources.clear();
        self.picks.clear();
        self.last_key = None;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_roundtrips_through_a_batch() {
        let mut page = RecordPage::with_capacity(2, 2);
        page.push(RecordRef {
            id: "a",
            embedding: &[1.0, -0.0],
            document: Some("d"),
            uri: None,
            metadata: Some("{\"k\":1}"),
        });
        page.push(RecordRef {
            id: "b",
            embedding: &[f32::MIN_POSITIVE, 3.0],
            document: None,
            uri: Some("u"),
            metadata: None,
        });
        let batch = page_to_batch(&page);
        let view = BatchView::new(&batch);
        assert_eq!(view.to_page(), page);
        let sliced = batch.slice(1, 1);
        let v = BatchView::new(&sliced);
        assert_eq!(v.record(0), page.record(1));
    }

    /// Rows gathered from many batches (more than it keeps alive, so it compacts) equal the page
    /// built record by record, byte for byte once converted.
    #[test]
    fn gathered_rows_equal_the_page_built_by_copying() {
        let batches: Vec<RecordBatch> = (0..9)
            .map(|b| {
                let mut p = RecordPage::with_capacity(3, 4);
                for i in 0..4 {
                    let (id, doc) = (format!("b{b}r{i}"), format!("doc {b} {i}"));
                    let e = [b as f32, i as f32, -0.0];
                    let uri = (i % 2 == 0).then_some("u");
                    p.push(RecordRef {
                        id: &id,
                        embedding: &e,
                        document: (i != 1).then_some(doc.as_str()),
                        uri,
                        metadata: None,
                    });
                }
                page_to_batch(&p)
            })
            .collect();
        let mut g = Gather::new(3);
        let mut want = RecordPage::with_capacity(3, 20);
        for (k, b) in batches.iter().enumerate() {
            let v = BatchView::new(b);
            for row in [0, 2, 3] {
                let r = v.record(row);
                let (id, meta) = (format!("new-{}", r.id), (row == 2).then(|| format!("{{\"k\":{k}}}")));
                want.push(RecordRef { id: &id, metadata: meta.as_deref(), ..r });
                g.push(k as u64, b, row, (id.clone(), meta.clone(), None));
            }
        }
        assert_eq!(g.len(), 27);
        let got = g.take_batch();
        assert!(g.is_empty());
        // Released between pushes, the same rows build the same batch.
        let mut released = Gather::new(3);
        for (k, b) in batches.iter().enumerate() {
            for row in [0, 2, 3] {
                let r = BatchView::new(b).record(row);
                let (id, meta) = (format!("new-{}", r.id), (row == 2).then(|| format!("{{\"k\":{k}}}")));
                released.push(k as u64, b, row, (id, meta, None));
            }
            released.release_sources();
            assert_eq!(released.sources.len(), 1);
            released.release_sources(); // a second release copies nothing more
        }
        assert_eq!(released.take_batch(), got);
        assert_eq!(BatchView::new(&got).to_page(), want);
        assert_eq!(got, page_to_batch(&want), "the same arrays as a page's batch");
    }

    /// A cut document is written cut, also once the gather has compacted its sources.
    #[test]
    fn a_cut_document_is_gathered_cut() {
        let mut p = RecordPage::with_capacity(1, 2);
        p.push(RecordRef { id: "a", embedding: &[1.0], document: Some("héllo"), uri: None, metadata: None });
        p.push(RecordRef { id: "b", embedding: &[2.0], document: Some("whole"), uri: None, metadata: None });
        let b = page_to_batch(&p);
        let mut g = Gather::new(1);
        g.push(0, &b, 0, ("a".into(), None, Some(3)));
        for k in 1..=GATHER_SOURCES as u64 {
            g.push(k, &b, 1, (format!("b{k}"), None, None)); // the last push compacts
        }
        let got = g.take_batch();
        let docs: Vec<_> = BatchView::new(&got).records().map(|r| r.document.unwrap().to_owned()).collect();
        assert_eq!(docs, ["hé", "whole", "whole", "whole", "whole"]);
    }
}
