//! Walks two sides of a comparison record by record and tells a [`Sink`] what it finds: records
//! only on side A, on both (the sink judges them), only on side B. `verify --against`, `diff` and
//! `load --if-exists sync` are three sinks over the same walks.
//!
//! - [`paged`]: side A streamed in pages, the same ids fetched from side B (a server), three
//!   pages in flight. Memory: a few pages.
//! - [`only_b`]: the ids side B holds beyond side A, by sorting both id lists on disk and merging.
//!   Run only when B's count exceeds what [`paged`] found (ids are unique on both sides).
//! - [`super::merge::sorted`]: two snapshots, each sorted by id on disk, merged.

use std::collections::HashMap;

use futures::TryStreamExt;

use super::VerifyError;
use super::source::Side;
use crate::error::{Error, Result};
use crate::record::{RecordPage, RecordRef};
use crate::spill::difference;

/// What a walk reports, record by record.
pub trait Sink {
    /// A record side B does not hold.
    fn only_a(&mut self, a: RecordRef<'_>) -> Result<()>;
    /// A record both sides hold.
    fn both(&mut self, a: RecordRef<'_>, b: RecordRef<'_>) -> Result<()>;
    /// An id side A does not hold, with its record when [`Sink::wants_b_records`].
    fn only_b(&mut self, id: &str, b: Option<RecordRef<'_>>) -> Result<()>;
    /// Whether [`Sink::only_b`] needs the records (they are fetched for it), or the ids suffice.
    fn wants_b_records(&self) -> bool {
        false
    }
}

/// A sink seen from the other side: A and B swapped. Lets a server side be walked against a
/// snapshot side by streaming the snapshot.
pub struct Swapped<'s, S: Sink + ?Sized>(pub &'s mut S);

impl<S: Sink + ?Sized> Sink for Swapped<'_, S> {
    fn only_a(&mut self, a: RecordRef<'_>) -> Result<()> {
        self.0.only_b(a.id, Some(a))
    }
    fn both(&mut self, a: RecordRef<'_>, b: RecordRef<'_>) -> Result<()> {
        self.0.both(b, a)
    }
    fn only_b(&mut self, _id: &str, b: Option<RecordRef<'_>>) -> Result<()> {
        let b = b.ok_or_else(|| VerifyError::Reader("a swapped walk needs records".into()))?;
        self.0.only_a(b)
    }
    fn wants_b_records(&self) -> bool {
        true
    }
}

/// Streams side `a` in pages and fetches the same ids from side `b` (a server); returns how many
/// of `a`'s records `b` holds.
pub async fn paged(a: &Side, b: &Side, dim: Option<usize>, sink: &mut dyn Sink) -> Result<u64> {
    let rows = b.page_rows(dim).min(a.page_rows(dim));
    let (rx, reader) = a.pages(rows);
    let mut pairs = Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }))
        .map_ok(|want: RecordPage| async move {
            let got = b.fetch(want.ids.clone()).await?;
            Ok::<_, Error>((want, got))
        })
        .try_buffered(3);
    let mut found = 0u64;
    while let Some((want, got)) = pairs.try_next().await? {
        found += pair_page(&want, &got, sink)?;
    }
    drop(pairs);
    reader.await.map_err(|e| VerifyError::Reader(e.to_string()))?;
    Ok(found)
}

/// Pairs one page of side A with what side B returned for its ids; returns the pairs found.
pub(crate) fn pair_page(want: &RecordPage, got: &RecordPage, sink: &mut dyn Sink) -> Result<u64> {
    let pos: HashMap<&str, usize> = got.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut found = 0;
    for i in 0..want.len() {
        let w = want.record(i);
        match pos.get(w.id) {
            Some(&j) => {
                found += 1;
                sink.both(w, got.record(j))?;
            }
            None => sink.only_a(w)?,
        }
    }
    Ok(found)
}

/// Reports every id side `b` (a server) holds and side `a` does not, in id order; their records
/// are fetched when the sink wants them.
pub async fn only_b(a: &Side, b: &Side, dim: Option<usize>, sink: &mut dyn Sink) -> Result<()> {
    let (a_ids, b_ids) = futures::try_join!(a.sorted_ids(), b.sorted_ids())?;
    let rows = b.page_rows(dim);
    let records = sink.wants_b_records() && b.is_server();
    let mut chunk = Vec::with_capacity(rows);
    let mut extra = difference(b_ids, a_ids);
    loop {
        let next = tokio::task::block_in_place(|| extra.next()).transpose().map_err(VerifyError::Spill)?;
        if let Some(key) = &next {
            let id = String::from_utf8_lossy(key).into_owned();
            if records {
                chunk.push(id);
            } else {
                sink.only_b(&id, None)?;
            }
        }
        if chunk.len() >= rows || (next.is_none() && !chunk.is_empty()) {
            let page = b.fetch(std::mem::take(&mut chunk)).await?;
            for i in 0..page.len() {
                let r = page.record(i);
                sink.only_b(r.id, Some(r))?;
            }
        }
        if next.is_none() {
            return Ok(());
        }
    }
}

/// Walks any two sides: paged past whichever is a server (both directions), or, for two
/// snapshots, by sorting both on disk. `counts` are the sides' record counts: the ids only on
/// the fetched side are looked for only when its count exceeds the pairs found.
pub async fn walk(a: &Side, b: &Side, counts: (u64, u64), dim: Option<usize>, sink: &mut dyn Sink) -> Result<()> {
    match (a, b) {
        (_, Side::Server { .. }) => {
            let found = paged(a, b, dim, sink).await?;
            if counts.1 > found {
                only_b(a, b, dim, sink).await?;
            }
            Ok(())
        }
        (Side::Server { .. }, _) => {
            let mut swapped = Swapped(sink);
            let found = paged(b, a, dim, &mut swapped).await?;
            if counts.0 > found {
                only_b(b, a, dim, &mut swapped).await?;
            }
            Ok(())
        }
        (Side::Snapshot { .. }, Side::Snapshot { .. }) => {
            let (a, b) = (a.clone(), b.clone());
            tokio::task::block_in_place(|| super::merge::sorted(&a, &b, sink))
        }
    }
}
