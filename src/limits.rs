//! Target quotas, one rule each: what a deployment accepts per record, per collection and per
//! write, as Chroma Cloud documents them (<https://docs.trychroma.com/cloud/quotas-limits>) or as
//! a user states them in a TOML file. Load's pre-flight and transform's validation both use them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chroma::cloud::CLOUD_BATCH_LIMIT;
use crate::record::{Metadata, RecordRef};
use crate::snapshot::SnapshotError;
use crate::snapshot::store::{SPEC_LIMIT, read_bounded};

/// A deployment's limits; a field left out is no limit. Sizes are UTF-8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_embedding_dimensions: Option<usize>,
    pub max_document_bytes: Option<usize>,
    pub max_uri_bytes: Option<usize>,
    pub max_id_bytes: Option<usize>,
    pub max_collection_name_bytes: Option<usize>,
    /// One record metadata value: a string's bytes, an array's elements summed (8 per number, 1
    /// per bool).
    pub max_metadata_value_bytes: Option<usize>,
    pub max_collection_metadata_value_bytes: Option<usize>,
    /// A metadata key, of a record or of a collection.
    pub max_metadata_key_bytes: Option<usize>,
    /// Keys in one record's metadata.
    pub max_metadata_keys: Option<usize>,
    pub max_collection_metadata_keys: Option<usize>,
    pub max_records_per_collection: Option<u64>,
    /// Records in one request (caps load's batches).
    pub max_records_per_write: Option<usize>,
    /// Where these limits come from, for messages: `cloud`, the file's path, or `inline` (a spec).
    #[serde(skip)]
    pub origin: String,
}

/// One record or collection over a limit: a stable rule name (`limits.document_bytes`), the
/// metadata key concerned, and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub rule: &'static str,
    pub field: Option<String>,
    pub message: String,
}

/// A limits file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("cannot read limits file {}: {why}", path.display())]
    Unreadable { path: std::path::PathBuf, why: String },
    #[error("limits file {} is not valid: {why}", path.display())]
    Invalid { path: std::path::PathBuf, why: String },
}

/// The byte size a value counts for against `max_*metadata_value_bytes`.
pub fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(value_bytes).sum(),
        Value::Bool(_) => 1,
        Value::Number(_) => 8,
        Value::Null => 0,
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + value_bytes(v)).sum(),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Limits {
    /// Chroma Cloud's documented quotas (<https://docs.trychroma.com/cloud/quotas-limits>).
    pub fn cloud() -> Self {
        Self {
            max_embedding_dimensions: Some(4096),
            max_document_bytes: Some(16_384),
            max_uri_bytes: Some(256),
            max_id_bytes: Some(128),
            max_collection_name_bytes: Some(128),
            max_metadata_value_bytes: Some(4096),
            max_collection_metadata_value_bytes: Some(256),
            max_metadata_key_bytes: Some(36),
            max_metadata_keys: Some(32),
            max_collection_metadata_keys: Some(32),
            max_records_per_collection: Some(5_000_000),
            max_records_per_write: Some(CLOUD_BATCH_LIMIT),
            origin: "cloud".into(),
        }
    }

    /// Limits written in TOML (`origin` names them in messages); an unknown key is refused by name.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let mut l: Self = toml::from_str(text).map_err(|e| e.message().replace('\n', " "))?;
        if l.max_records_per_write == Some(0) {
            return Err("max_records_per_write = 0 allows no write".into());
        }
        l.origin = origin.to_owned();
        Ok(l)
    }

    /// Reads a limits file ([`Limits::parse`]).
    pub fn from_file(path: &Path) -> Result<Self, LimitsError> {
        let unreadable = |why: String| LimitsError::Unreadable { path: path.to_path_buf(), why };
        let bytes = read_bounded(path, SPEC_LIMIT).map_err(|e| match e {
            SnapshotError::Io { source, .. } => unreadable(source.to_string()),
            other => unreadable(other.to_string()),
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| unreadable("not UTF-8 text".into()))?;
        Self::parse(text, &path.display().to_string())
            .map_err(|why| LimitsError::Invalid { path: path.to_path_buf(), why })
    }

    fn over(
        &self,
        rule: &'static str,
        field: Option<&str>,
        what: String,
        key: &str,
        max: impl std::fmt::Display,
    ) -> Breach {
        let message = format!("{what}, over {key} = {max} ({} limits)", self.origin);
        Breach { rule, field: field.map(str::to_owned), message }
    }

    /// The id against `max_id_bytes`.
    pub fn id(&self, id: &str, out: &mut Vec<Breach>) {
        if let Some(max) = self.max_id_bytes.filter(|m| id.len() > *m) {
            out.push(self.over("limits.id_bytes", None, format!("id is {} bytes", id.len()), "max_id_bytes", max));
        }
    }

    /// Everything of one record but its id: embedding dimensions, document and uri bytes, and its
    /// metadata (parsed: `meta`).
    pub fn record(&self, r: &RecordRef<'_>, meta: Option<&Metadata>, out: &mut Vec<Breach>) {
        let dim = r.embedding.len();
        if let Some(max) = self.max_embedding_dimensions.filter(|m| dim > *m) {
            let what = format!("embedding has {dim} dimensions");
            out.push(self.over("limits.embedding_dimensions", None, what, "max_embedding_dimensions", max));
        }
        if let (Some(max), Some(d)) = (self.max_document_bytes, r.document)
            && d.len() > max
        {
            let what = format!("document is {} bytes", d.len());
            out.push(self.over("limits.document_bytes", None, what, "max_document_bytes", max));
        }
        if let (Some(max), Some(u)) = (self.max_uri_bytes, r.uri)
            && u.len() > max
        {
            out.push(self.over("limits.uri_bytes", None, format!("uri is {} bytes", u.len()), "max_uri_bytes", max));
        }
        if let Some(m) = meta {
            self.metadata(m, false, out);
        }
    }

    /// A metadata map: its key count, each key's bytes and each value's; `collection` picks the
    /// collection metadata limits.
    pub fn metadata(&self, m: &Metadata, collection: bool, out: &mut Vec<Breach>) {
        let (of, keys, keys_name, keys_rule, values, values_name, values_rule) = if collection {
            let (k, v) = (self.max_collection_metadata_keys, self.max_collection_metadata_value_bytes);
            let names = ("max_collection_metadata_keys", "max_collection_metadata_value_bytes");
            let rules = ("limits.collection_metadata_keys", "limits.collection_metadata_value_bytes");
            ("collection metadata", k, names.0, rules.0, v, names.1, rules.1)
        } else {
            let (k, v) = (self.max_metadata_keys, self.max_metadata_value_bytes);
            (
                "metadata",
                k,
                "max_metadata_keys",
                "limits.metadata_keys",
                v,
                "max_metadata_value_bytes",
                "limits.metadata_value_bytes",
            )
        };
        if let Some(max) = keys.filter(|k| m.len() > *k) {
            out.push(self.over(keys_rule, None, format!("{of} has {} keys", m.len()), keys_name, max));
        }
        for (k, v) in m {
            if let Some(max) = self.max_metadata_key_bytes.filter(|max| k.len() > *max) {
                let what = format!("{of} key {k:?} is {} bytes", k.len());
                out.push(self.over("limits.metadata_key_bytes", Some(k), what, "max_metadata_key_bytes", max));
            }
            let n = value_bytes(v);
            if let Some(max) = values.filter(|max| n > *max) {
                let what = format!("{of} key {k:?}: the value is {n} bytes");
                out.push(self.over(values_rule, Some(k), what, values_name, max));
            }
        }
    }

    /// A collection as the target gets it: its name, its metadata and how many records it holds.
    pub fn collection(&self, name: &str, meta: Option<&Metadata>, records: u64, out: &mut Vec<Breach>) {
        if let Some(max) = self.max_collection_name_bytes.filter(|m| name.len() > *m) {
            let what = format!("collection name is {} bytes", name.len());
            out.push(self.over("limits.collection_name_bytes", None, what, "max_collection_name_bytes", max));
        }
        if let Some(m) = meta {
            self.metadata(m, true, out);
        }
        self.records(records, out);
    }

    /// A collection of `records` records against `max_records_per_collection`.
    pub fn records(&self, records: u64, out: &mut Vec<Breach>) {
        if let Some(max) = self.max_records_per_collection.filter(|m| records > *m) {
            let what = format!("the collection would hold {records} records");
            out.push(self.over("limits.records_per_collection", None, what, "max_records_per_collection", max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(out: &[Breach]) -> Vec<&'static str> {
        out.iter().map(|b| b.rule).collect()
    }

    #[test]
    fn cloud_quotas_one_breach_each() {
        let l = Limits::cloud();
        assert_eq!(l.max_records_per_write, Some(CLOUD_BATCH_LIMIT));
        let mut out = Vec::new();
        let (e, doc, uri) = (vec![0.0; 4097], "é".repeat(8193), "u".repeat(257));
        let r = RecordRef { id: "a", embedding: &e, document: Some(&doc), uri: Some(&uri), metadata: None };
        let mut m = Metadata::new();
        for i in 0..33 {
            m.insert(format!("k{i}"), json!(i));
        }
        m.insert("k".repeat(37), json!(1));
        m.insert("big".into(), json!("v".repeat(4097)));
        l.record(&r, Some(&m), &mut out);
        l.id(&"i".repeat(129), &mut out);
        assert_eq!(
            rules(&out),
            [
                "limits.embedding_dimensions",
                "limits.document_bytes",
                "limits.uri_bytes",
                "limits.metadata_keys",
                "limits.metadata_value_bytes",
                "limits.metadata_key_bytes",
                "limits.id_bytes"
            ]
        );
        assert_eq!(out[1].message, "document is 16386 bytes, over max_document_bytes = 16384 (cloud limits)");
        assert_eq!(out[4].field.as_deref(), Some("big"));
        let mut out = Vec::new();
        let mut cm = Metadata::new();
        cm.insert("owner".into(), json!("o".repeat(257)));
        l.collection(&"c".repeat(129), Some(&cm), 5_000_001, &mut out);
        assert_eq!(
            rules(&out),
            ["limits.collection_name_bytes", "limits.collection_metadata_value_bytes", "limits.records_per_collection"]
        );
        // At the limit is within it.
        let mut out = Vec::new();
        let (e, doc) = (vec![0.0; 4096], "d".repeat(16_384));
        let r = RecordRef { id: &"i".repeat(128), embedding: &e, document: Some(&doc), uri: None, metadata: None };
        l.record(&r, None, &mut out);
        l.id(r.id, &mut out);
        l.collection(&"c".repeat(128), None, 5_000_000, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_file_states_its_own_limits_and_a_misspelt_key_is_named() {
        let l = Limits::parse("max_document_bytes = 10\nmax_records_per_write = 50\n", "mine.toml").unwrap();
        assert_eq!((l.max_document_bytes, l.max_records_per_write, l.max_id_bytes), (Some(10), Some(50), None));
        let err = Limits::parse("max_document_byte = 10\n", "x").unwrap_err();
        assert!(err.contains("unknown field `max_document_byte`"), "{err}");
        assert!(Limits::parse("max_records_per_write = 0", "x").is_err());
        assert!(Limits::parse("max_id_bytes = -1", "x").is_err());
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("héllo", 3), "hé");
        assert_eq!(truncate_bytes("abc", 5), "abc");
        assert_eq!(value_bytes(&json!(["ab", 1, true])), 11);
    }
}
