//! Compares two snapshot collections without a server: each side's records are sorted by id on
//! disk (whole records, [`crate::spill::SortedKeys`] in runs of [`RUN_BYTES`]), then the two
//! sorted streams are merged. Memory holds one run per side; time is two Parquet reads, a
//! sequential write and read of the spill files, and the comparison.

use super::VerifyError;
use super::source::Side;
use super::walk::Sink;
use crate::error::Result;
use crate::record::{RecordRef, extend_f32_le};
use crate::snapshot::convert::BatchView;
use crate::spill::{Merged, SortedKeys};

/// Bytes of records sorted in memory per run (one run per side stays in memory for the merge).
pub const RUN_BYTES: usize = 32 << 20;

/// Walks two snapshot sides in id order (blocking: call it off the async threads).
pub fn sorted(a: &Side, b: &Side, sink: &mut dyn Sink) -> Result<()> {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| sort_records(a));
        let b = sort_records(b);
        (a.join().map_err(|_| VerifyError::Reader("the sorting thread died".into())), b)
    });
    let (mut a, mut b) = (a??.peekable(), b?.peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return Ok(()),
            (Some(Err(_)), _) | (_, Some(Err(_))) => None,
            (Some(Ok(x)), Some(Ok(y))) => Some(id_part(x).cmp(id_part(y))),
            (Some(Ok(_)), None) => Some(std::cmp::Ordering::Less),
            (None, Some(Ok(_))) => Some(std::cmp::Ordering::Greater),
        };
        let next = |it: &mut std::iter::Peekable<Merged>| it.next().expect("peeked").map_err(VerifyError::Spill);
        match order {
            None => {
                let e = if matches!(a.peek(), Some(Err(_))) { next(&mut a) } else { next(&mut b) };
                e?;
            }
            Some(std::cmp::Ordering::Less) => {
                let k = next(&mut a)?;
                decode(&k).with(|r| sink.only_a(r))?;
            }
            Some(std::cmp::Ordering::Greater) => {
                let k = next(&mut b)?;
                decode(&k).with(|r| sink.only_b(r.id, Some(r)))?;
            }
            Some(std::cmp::Ordering::Equal) => {
                let (x, y) = (next(&mut a)?, next(&mut b)?);
                let (x, y) = (decode(&x), decode(&y));
                x.with(|r| y.with(|s| sink.both(r, s)))?;
            }
        }
    }
}

/// Every record of a snapshot side, encoded and sorted by id on disk.
fn sort_records(side: &Side) -> Result<Merged> {
    let Side::Snapshot { snap, entry, rows } = side else {
        return Err(VerifyError::Reader("a server side is not sorted whole".into()).into());
    };
    let mut sorted = SortedKeys::with_budget(None, RUN_BYTES);
    let mut key = Vec::new();
    for b in snap.collection_rows(entry, rows.clone().unwrap_or(0..entry.count)) {
        for r in BatchView::new(&b?).records() {
            encode(&r, &mut key);
            sorted.push(&key).map_err(VerifyError::Spill)?;
        }
    }
    Ok(sorted.finish().map_err(VerifyError::Spill)?)
}

/// A record as one sortable key: the id escaped (`0x00` → `0x00 0xFF`) and ended by `0x00 0x00`,
/// so keys sort by id bytes; then the dimension, the embedding (little-endian f32) and the
/// document, uri and metadata (a presence byte, a length, the bytes).
pub fn encode(r: &RecordRef<'_>, out: &mut Vec<u8>) {
    out.clear();
    for &b in r.id.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(r.embedding.len() as u32).to_le_bytes());
    extend_f32_le(out, r.embedding);
    for s in [r.document, r.uri, r.metadata] {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// The escaped id and its terminator: the part of a key that orders it.
fn id_part(key: &[u8]) -> &[u8] {
    let mut i = 0;
    while i + 1 < key.len() {
        if key[i] == 0 {
            if key[i + 1] == 0 {
                return &key[..i + 2];
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    key
}

/// A decoded key: owned id and embedding, borrowed strings.
pub struct Decoded<'a> {
    id: String,
    embedding: Vec<f32>,
    fields: [Option<&'a str>; 3],
}

impl Decoded<'_> {
    pub fn with<T>(&self, f: impl FnOnce(RecordRef<'_>) -> T) -> T {
        let [document, uri, metadata] = self.fields;
        f(RecordRef { id: &self.id, embedding: &self.embedding, document, uri, metadata })
    }
}

/// Decodes a key written by [`encode`] (spill files are ours: a short key is a bug).
pub fn decode(key: &[u8]) -> Decoded<'_> {
    let idp = id_part(key);
    let mut id = Vec::with_capacity(idp.len());
    let mut i = 0;
    while i + 2 < idp.len() {
        id.push(idp[i]);
        i += if idp[i] == 0 { 2 } else { 1 };
    }
    let mut at = idp.len();
    let u32_at = |at: usize| u32::from_le_bytes(key[at..at + 4].try_into().expect("4 bytes")) as usize;
    let dim = u32_at(at);
    at += 4;
    let embedding =
        key[at..at + 4 * dim].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    at += 4 * dim;
    let mut fields = [None; 3];
    for f in &mut fields {
        let present = key[at] == 1;
        at += 1;
        if present {
            let n = u32_at(at);
            at += 4;
            *f = std::str::from_utf8(&key[at..at + n]).ok();
            at += n;
        }
    }
    Decoded { id: String::from_utf8_lossy(&id).into_owned(), embedding, fields }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_id_and_decode_back() {
        let ids = ["b", "a\0", "a", "a\u{1}", "", "é"];
        let mut keys: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| {
                let mut k = Vec::new();
                let r = RecordRef { id, embedding: &[1.5, -0.0], document: Some("d"), uri: None, metadata: Some("{}") };
                encode(&r, &mut k);
                k
            })
            .collect();
        keys.sort_by(|x, y| id_part(x).cmp(id_part(y)));
        let got: Vec<String> = keys.iter().map(|k| decode(k).id).collect();
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
        let d = decode(&keys[0]);
        d.with(|r| {
            assert_eq!(
                (r.embedding, r.document, r.uri, r.metadata),
                (&[1.5f32, -0.0][..], Some("d"), None, Some("{}"))
            );
            assert!(r.embedding[1].is_sign_negative());
        });
    }
}
