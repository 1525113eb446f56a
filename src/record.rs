//! The in-memory shape of a page of records, shared by the Chroma client and the snapshot layer.
//!
//! Columnar on purpose: embeddings sit in one flat `Vec<f32>` so a page converts to Arrow (and to
//! a request body) without a copy per record.

use serde_json::{Map, Value};

/// Metadata as Chroma types it: a map from key to str / int / float / bool / array.
pub type Metadata = Map<String, Value>;

/// A page of records, index-aligned: row `i` is `ids[i]`, `embedding(i)`, `documents[i]`, …
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordPage {
    pub dim: usize,
    pub ids: Vec<String>,
    /// `ids.len() * dim` values, row-major.
    pub embeddings: Vec<f32>,
    pub documents: Vec<Option<String>>,
    pub uris: Vec<Option<String>>,
    /// Canonical JSON text of each record's metadata (see [`canonical_metadata`]).
    pub metadatas: Vec<Option<String>>,
}

impl RecordPage {
    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        Self {
            dim,
            ids: Vec::with_capacity(rows),
            embeddings: Vec::with_capacity(rows * dim),
            documents: Vec::with_capacity(rows),
            uris: Vec::with_capacity(rows),
            metadatas: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Drops every row, keeping the buffers for the next ones.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.embeddings.clear();
        self.documents.clear();
        self.uris.clear();
        self.metadatas.clear();
    }

    pub fn embedding(&self, row: usize) -> &[f32] {
        &self.embeddings[row * self.dim..(row + 1) * self.dim]
    }

    pub fn record(&self, row: usize) -> RecordRef<'_> {
        RecordRef {
            id: &self.ids[row],
            embedding: self.embedding(row),
            document: self.documents[row].as_deref(),
            uri: self.uris[row].as_deref(),
            metadata: self.metadatas[row].as_deref(),
        }
    }

    pub fn push(&mut self, r: RecordRef<'_>) {
        debug_assert_eq!(r.embedding.len(), self.dim);
        self.ids.push(r.id.to_owned());
        self.embeddings.extend_from_slice(r.embedding);
        self.documents.push(r.document.map(str::to_owned));
        self.uris.push(r.uri.map(str::to_owned));
        self.metadatas.push(r.metadata.map(str::to_owned));
    }
}

/// One record borrowed from a page or an Arrow batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordRef<'a> {
    pub id: &'a str,
    pub embedding: &'a [f32],
    pub document: Option<&'a str>,
    pub uri: Option<&'a str>,
    /// Canonical metadata JSON text.
    pub metadata: Option<&'a str>,
}

/// The canonical JSON text of a metadata map: keys sorted by their UTF-8 bytes, no whitespace,
/// ints without a decimal point, floats with one (or an exponent), as `serde_json` writes them.
pub fn canonical_metadata(m: &Metadata) -> String {
    // serde_json's Map is a BTreeMap (the `preserve_order` feature is off), so keys come sorted.
    serde_json::to_string(m).expect("a JSON map always serialises")
}

/// Parses canonical (or any) metadata JSON text back into a typed map.
pub fn parse_metadata(text: &str) -> Result<Metadata, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keeps_types_and_sorts_keys() {
        let m = parse_metadata(
            r#"{"z":1,"a":1.0,"m":-0.0,"b":true,"s":"é\"","arr":[1,2],"f":[0.5,1e300],"big":9007199254740993}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_metadata(&m),
            r#"{"a":1.0,"arr":[1,2],"b":true,"big":9007199254740993,"f":[0.5,1e+300],"m":-0.0,"s":"é\"","z":1}"#
        );
    }

    #[test]
    #[allow(clippy::approx_constant)] // the literal itself is what must round-trip
    fn floats_roundtrip_exactly() {
        for v in [0.1f64, std::f64::consts::PI, 1e-300, 5e-324, f64::MAX, 2.0f64.powi(60)] {
            let mut m = Metadata::new();
            m.insert("v".into(), Value::from(v));
            let back = parse_metadata(&canonical_metadata(&m)).unwrap();
            let got = back["v"].as_f64().unwrap();
            assert_eq!(got.to_bits(), v.to_bits(), "{v}");
            assert!(back["v"].is_f64());
        }
    }
}
