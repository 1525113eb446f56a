//! Content hashes: the blake3 hash of a part file, and the order-independent records digest.
//!
//! The records digest lets a snapshot and a live collection be compared whatever the part layout
//! or row order: every record is hashed on its own (see [`record_hash`]) and the hashes are added
//! as 256-bit integers, so the sum does not depend on order and duplicates are not cancelled.

use std::fmt;
use std::io::Read;

use crate::record::{RecordRef, extend_f32_le};

/// The blake3 hash of a file's bytes, displayed as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHash(pub [u8; 32]);

impl FileHash {
    pub fn of_reader(mut r: impl Read) -> std::io::Result<(Self, u64)> {
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            h.update(&buf[..n]);
        }
        Ok((Self(*h.finalize().as_bytes()), total))
    }

    pub fn to_hex(self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileHash({})", &self.to_hex()[..12])
    }
}

const DIGEST_DOMAIN: &[u8] = b"chroma-snap records digest v1";

/// The hash of one record's canonical encoding:
/// `blake3(len(id) id  dim f32le*dim  opt(document)  opt(uri)  opt(metadata))`, where `len` and
/// `dim` are u64 little-endian and `opt(x)` is the byte 0 for null, or 1, len(x), x.
///
/// The encoding is laid out in one (per-thread, reused) buffer and hashed in one call: blake3
/// then hashes the record's 1 KiB chunks side by side with SIMD, where feeding it field by field
/// compresses one 64-byte block after another (measured: the digest was the largest single cost
/// of a transform).
pub fn record_hash(r: &RecordRef<'_>) -> [u8; 32] {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        encode_record(r, buf);
        let hash = *blake3::hash(buf).as_bytes();
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new(); // one huge record does not pin its buffer for the thread's life
        }
        hash
    })
}

/// The canonical encoding of [`record_hash`], appended to `out`.
fn encode_record(r: &RecordRef<'_>, out: &mut Vec<u8>) {
    let fields = [r.document, r.uri, r.metadata];
    let text: usize = fields.iter().map(|f| f.map_or(1, |s| 9 + s.len())).sum();
    out.reserve(16 + r.id.len() + 4 * r.embedding.len() + text);
    out.extend_from_slice(&(r.id.len() as u64).to_le_bytes());
    out.extend_from_slice(r.id.as_bytes());
    out.extend_from_slice(&(r.embedding.len() as u64).to_le_bytes());
    extend_f32_le(out, r.embedding);
    for field in fields {
        match field {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Accumulates record hashes into the order-independent digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordsDigest {
    count: u64,
    /// Sum of record hashes as little-endian 256-bit integers, modulo 2^256.
    sum: [u64; 4],
}

impl RecordsDigest {
    pub fn add(&mut self, r: &RecordRef<'_>) {
        self.add_hash(&record_hash(r));
    }

    pub fn add_hash(&mut self, h: &[u8; 32]) {
        let mut carry = 0u64;
        for (i, limb) in self.sum.iter_mut().enumerate() {
            let x = u64::from_le_bytes(h[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let (s1, c1) = limb.overflowing_add(x);
            let (s2, c2) = s1.overflowing_add(carry);
            *limb = s2;
            carry = u64::from(c1) + u64::from(c2);
        }
        self.count += 1;
    }

    /// Combines two partial digests (e.g. computed on different threads).
    pub fn merge(&mut self, other: &RecordsDigest) {
        let mut bytes = [0u8; 32];
        for (i, limb) in other.sum.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        let count = self.count + other.count;
        self.add_hash(&bytes);
        self.count = count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// `blake3(domain  count:u64le  sum:32 bytes le)` as hex.
    pub fn to_hex(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(DIGEST_DOMAIN);
        h.update(&self.count.to_le_bytes());
        for limb in self.sum {
            h.update(&limb.to_le_bytes());
        }
        h.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The encoding fed to blake3 field by field, as it was first written: the reference that
    /// [`record_hash`]'s one-buffer layout must equal (every digest already written depends on it).
    fn record_hash_by_fields(r: &RecordRef<'_>) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&(r.id.len() as u64).to_le_bytes());
        h.update(r.id.as_bytes());
        h.update(&(r.embedding.len() as u64).to_le_bytes());
        for v in r.embedding {
            h.update(&v.to_le_bytes());
        }
        for field in [r.document, r.uri, r.metadata] {
            match field {
                None => {
                    h.update(&[0]);
                }
                Some(s) => {
                    h.update(&[1]);
                    h.update(&(s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        *h.finalize().as_bytes()
    }

    proptest! {
        #[test]
        fn one_buffer_hash_is_the_field_by_field_hash(
            id in ".{0,40}",
            e in proptest::collection::vec(any::<f32>(), 0..1600),
            doc in proptest::option::of(".{0,3000}"),
            uri in proptest::option::of(".{0,20}"),
            meta in proptest::option::of(".{0,300}"),
        ) {
            let r = RecordRef { id: &id, embedding: &e, document: doc.as_deref(), uri: uri.as_deref(), metadata: meta.as_deref() };
            prop_assert_eq!(record_hash(&r), record_hash_by_fields(&r));
        }
    }

    fn rec<'a>(id: &'a str, e: &'a [f32], doc: Option<&'a str>) -> RecordRef<'a> {
        RecordRef { id, embedding: e, document: doc, uri: None, metadata: None }
    }

    #[test]
    fn empty_digest_is_the_documented_constant() {
        // docs/snapshot-format.md quotes this value.
        assert_eq!(
            RecordsDigest::default().to_hex(),
            "2f5b8a65adf1f48cfc3047b6be9352a09f317f768094ba08b0c97a8454c2860d"
        );
    }

    #[test]
    fn null_and_empty_document_differ() {
        let e = [1.0f32];
        assert_ne!(record_hash(&rec("a", &e, None)), record_hash(&rec("a", &e, Some(""))));
    }

    #[test]
    fn duplicates_do_not_cancel() {
        let e = [1.0f32];
        let mut once = RecordsDigest::default();
        once.add(&rec("a", &e, None));
        let mut twice = once;
        twice.add(&rec("a", &e, None));
        let mut thrice = twice;
        thrice.add(&rec("a", &e, None));
        assert_ne!(once.to_hex(), twice.to_hex());
        assert_ne!(once.to_hex(), thrice.to_hex());
        assert_ne!(RecordsDigest::default().to_hex(), twice.to_hex());
    }

    #[test]
    fn negative_zero_is_not_zero() {
        assert_ne!(record_hash(&rec("a", &[0.0], None)), record_hash(&rec("a", &[-0.0], None)));
    }

    proptest! {
        #[test]
        fn order_and_split_do_not_matter(
            ids in proptest::collection::vec("[a-z]{1,6}", 1..40),
            seed in any::<u32>(),
            split in 0usize..40,
        ) {
            let embs: Vec<[f32; 2]> = ids.iter().enumerate()
                .map(|(i, _)| [i as f32, seed as f32]).collect();
            let mut forward = RecordsDigest::default();
            for (id, e) in ids.iter().zip(&embs) { forward.add(&rec(id, e, None)); }
            let mut backward = RecordsDigest::default();
            for (id, e) in ids.iter().zip(&embs).rev() { backward.add(&rec(id, e, None)); }
            prop_assert_eq!(forward.to_hex(), backward.to_hex());
            let split = split.min(ids.len());
            let (mut a, mut b) = (RecordsDigest::default(), RecordsDigest::default());
            for (i, (id, e)) in ids.iter().zip(&embs).enumerate() {
                if i < split { a.add(&rec(id, e, None)) } else { b.add(&rec(id, e, None)) }
            }
            a.merge(&b);
            prop_assert_eq!(a.to_hex(), forward.to_hex());
        }

        #[test]
        fn streaming_file_hash_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let (h, n) = FileHash::of_reader(&data[..]).unwrap();
            prop_assert_eq!(n as usize, data.len());
            prop_assert_eq!(h.0, *blake3::hash(&data).as_bytes());
        }
    }
}
