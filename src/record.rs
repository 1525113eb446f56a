//! The in-memory shape of a page of records, shared by the Chroma client and the snapshot layer.
//!
//! Columnar on purpose: embeddings sit in one flat `Vec<f32>` so a page converts to Arrow (and to
//! a request body) without a copy per record.

use serde_json::{Map, Value};

/// Metadata as Chroma types it: a map from key to str / int / float / bool / array.
pub type Metadata = Map<String, Value>;

/// Some of a collection's records, in Chroma's own filter syntax (`where` on metadata,
/// `where_document` on documents: `$eq`, `$in`, `$and`, `$contains`, …). `export --where` sends
/// it to the server and records it in the manifest, which then says the snapshot is partial; a
/// comparison with a live collection applies it to that collection too.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFilter {
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub where_metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub where_document: Option<Map<String, Value>>,
}

impl RecordFilter {
    /// The filter of two optional JSON texts (`--where`, `--where-document`), `None` when neither
    /// is given; each must be a JSON object, and the message names the flag that is not.
    pub fn from_args(where_metadata: Option<&str>, where_document: Option<&str>) -> Result<Option<Self>, String> {
        let object = |flag: &str, text: &str| -> Result<Map<String, Value>, String> {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) if !m.is_empty() => Ok(m),
                Ok(Value::Object(_)) => {
                    Err(format!("{flag}: an empty filter; leave the flag out to take every record"))
                }
                Ok(v) => Err(format!("{flag}: a filter is a JSON object such as {{\"source\": \"web\"}}, not {v}")),
                Err(e) => Err(format!("{flag}: not JSON: {e}")),
            }
        };
        if where_metadata.is_none() && where_document.is_none() {
            return Ok(None);
        }
        let f = Self {
            where_metadata: where_metadata.map(|t| object("--where", t)).transpose()?,
            where_document: where_document.map(|t| object("--where-document", t)).transpose()?,
        };
        if let Some(w) = &f.where_metadata {
            check_where(w, "").map_err(|why| format!("--where: {why}"))?;
        }
        if let Some(w) = &f.where_document {
            check_where_document(w, "").map_err(|why| format!("--where-document: {why}"))?;
        }
        Ok(Some(f))
    }

    /// Adds the filter's keys to a `get` request body.
    pub fn apply_to(&self, body: &mut Value) {
        if let Some(w) = &self.where_metadata {
            body["where"] = Value::Object(w.clone());
        }
        if let Some(w) = &self.where_document {
            body["where_document"] = Value::Object(w.clone());
        }
    }
}

/// Operators on one metadata field, in either API generation (`$contains` on arrays: 1.5+).
const FIELD_OPERATORS: [&str; 10] =
    ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$not_contains"];
/// Operators on a document (`$regex`, `$not_regex`, `$not_contains`: 1.x).
const DOCUMENT_OPERATORS: [&str; 4] = ["$contains", "$not_contains", "$regex", "$not_regex"];

/// `at` + `key`, for messages: where in the filter a problem is.
fn at(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// Checks each filter of a non-empty `$and` / `$or` list with `check`.
fn each_filter(
    v: &Value,
    here: &str,
    check: fn(&Map<String, Value>, &str) -> Result<(), String>,
) -> Result<(), String> {
    let items = v.as_array().filter(|a| !a.is_empty());
    let items = items.ok_or_else(|| format!("{here}: expected a non-empty list of filters"))?;
    for (i, item) in items.iter().enumerate() {
        let inner = item.as_object().ok_or_else(|| format!("{here}[{i}]: expected a filter object"))?;
        check(inner, &format!("{here}[{i}]"))?;
    }
    Ok(())
}

/// The shape of a `where` filter (the server judges the rest): `$and`/`$or` over a list of
/// filters, or a field with a value or one operator.
fn check_where(m: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (k, v) in m {
        let here = at(path, k);
        match (k.as_str(), v) {
            ("$and" | "$or", _) => each_filter(v, &here, check_where)?,
            (op, _) if op.starts_with('$') => {
                return Err(format!("{here}: unknown operator {op:?} (fields come first)"));
            }
            (_, Value::String(_) | Value::Number(_) | Value::Bool(_)) => {}
            (_, Value::Object(ops)) if ops.len() == 1 => {
                let (op, _) = ops.iter().next().expect("one operator");
                if !FIELD_OPERATORS.contains(&op.as_str()) {
                    return Err(format!("{here}: unknown operator {op:?} (one of {})", FIELD_OPERATORS.join(", ")));
                }
            }
            (_, other) => {
                return Err(format!("{here}: expected a value or one operator such as {{\"$eq\": …}}, not {other}"));
            }
        }
    }
    Ok(())
}

/// The shape of a `where_document` filter: one document operator, or `$and`/`$or` over them.
fn check_where_document(m: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (k, v) in m {
        let here = at(path, k);
        match (k.as_str(), v) {
            ("$and" | "$or", _) => each_filter(v, &here, check_where_document)?,
            (op, Value::String(_)) if DOCUMENT_OPERATORS.contains(&op) => {}
            (op, _) if DOCUMENT_OPERATORS.contains(&op) => return Err(format!("{here}: expected a string")),
            (op, _) => {
                return Err(format!(
                    "{here}: unknown operator {op:?} (one of {}, $and, $or)",
                    DOCUMENT_OPERATORS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

impl std::fmt::Display for RecordFilter {
    /// `where {…} where_document {…}`, for messages and summaries.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(w) = &self.where_metadata {
            parts.push(format!("where {}", Value::Object(w.clone())));
        }
        if let Some(w) = &self.where_document {
            parts.push(format!("where_document {}", Value::Object(w.clone())));
        }
        f.write_str(&parts.join(" "))
    }
}

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

/// Appends the floats as little-endian bytes (the one encoding of embedding bytes: record hashes,
/// sort keys, base64 bodies): one copy of memory on a little-endian machine.
pub fn extend_f32_le(out: &mut Vec<u8>, values: &[f32]) {
    #[cfg(target_endian = "little")]
    {
        use arrow::datatypes::ToByteSlice;
        out.extend_from_slice(values.to_byte_slice());
    }
    #[cfg(not(target_endian = "little"))]
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The canonical JSON text of a metadata map: keys sorted by their UTF-8 bytes, no whitespace,
/// ints without a decimal point, floats with one (or an exponent), as `serde_json` writes them.
pub fn canonical_metadata(m: &Metadata) -> String {
    // serde_json's Map is a BTreeMap (the `preserve_order` feature is off), so keys come sorted.
    serde_json::to_string(m).expect("a JSON map always serialises")
}

/// Why metadata text cannot become a typed map without changing a value.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not a JSON object, or a float beyond f64 (`1e400`), which JSON parsing refuses.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An integer literal outside i64: parsing would make it a float (or a u64 Chroma refuses).
    #[error("metadata key {key:?}: {}", int_range_message(literal))]
    IntRange { key: String, literal: String },
}

/// The one wording of the i64 rule (Chroma's ints are i64; int vs float is never converted).
pub fn int_range_message(literal: &str) -> String {
    format!("integer {literal} does not fit in i64")
}

/// Parses canonical (or any) metadata JSON text back into a typed map. An integer literal
/// outside i64 is refused, never read as a float.
pub fn parse_metadata(text: &str) -> Result<Metadata, MetadataError> {
    let m: Metadata = serde_json::from_str(text)?;
    if m.values().any(may_hide_big_int)
        && let Some((key, literal)) = big_int_literal(text)
    {
        return Err(MetadataError::IntRange { key, literal });
    }
    Ok(m)
}

/// Whether a parsed value may come from an integer literal outside i64: a u64 above i64::MAX, or
/// a float of magnitude 2^63 or more (what serde_json makes of longer integer literals).
fn may_hide_big_int(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.as_i64().is_none() && (n.is_u64() || n.as_f64().is_some_and(|f| f.abs() >= 9_223_372_036_854_775_808.0))
        }
        Value::Array(a) => a.iter().any(may_hide_big_int),
        Value::Object(o) => o.values().any(may_hide_big_int),
        _ => false,
    }
}

/// The first integer literal (no `.`, no exponent) of valid JSON text that does not fit in i64,
/// with the top-level key it sits under.
fn big_int_literal(text: &str) -> Option<(String, String)> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut key) = (0, 0usize, String::new());
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let rest = text.get(i + 1..).unwrap_or("").trim_start();
                if depth == 1 && rest.starts_with(':') {
                    key = serde_json::from_str(&text[start..=i.min(b.len() - 1)]).unwrap_or_default();
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < b.len() && matches!(b[i + 1], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let lit = &text[start..=i];
                if !lit.contains(['.', 'e', 'E']) && lit.parse::<i64>().is_err() {
                    return Some((key, lit.to_owned()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_by_flag_and_place() {
        let ok = |w: Option<&str>, d: Option<&str>| RecordFilter::from_args(w, d).unwrap();
        assert_eq!(ok(None, None), None);
        let f = ok(Some(r#"{"$and":[{"source":"web"},{"n":{"$gte":3}}]}"#), Some(r#"{"$contains":"tax"}"#)).unwrap();
        assert_eq!(
            f.to_string(),
            r#"where {"$and":[{"source":"web"},{"n":{"$gte":3}}]} where_document {"$contains":"tax"}"#
        );
        let mut body = serde_json::json!({"limit": 1});
        f.apply_to(&mut body);
        assert_eq!(body["where"]["$and"][0]["source"], "web");
        assert_eq!(body["where_document"]["$contains"], "tax");
        let err = |w: Option<&str>, d: Option<&str>| RecordFilter::from_args(w, d).unwrap_err();
        assert!(err(Some("{"), None).starts_with("--where: not JSON"));
        assert!(err(Some("[1]"), None).starts_with("--where: a filter is a JSON object"));
        assert!(err(Some("{}"), None).starts_with("--where: an empty filter"));
        assert_eq!(
            err(Some(r#"{"$and":[{"n":{"$bogus":1}}]}"#), None),
            r#"--where: $and[0].n: unknown operator "$bogus" (one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $contains, $not_contains)"#
        );
        assert!(err(Some(r#"{"$not":{}}"#), None).contains(r#"$not: unknown operator "$not""#));
        assert!(err(Some(r#"{"n":{"$gt":1,"$lt":3}}"#), None).contains("n: expected a value or one operator"));
        assert!(err(None, Some(r#"{"$bogus":"x"}"#)).starts_with(r#"--where-document: $bogus: unknown operator"#));
        assert!(err(None, Some(r#"{"$contains":3}"#)).contains("$contains: expected a string"));
        assert!(err(None, Some(r#"{"$or":[]}"#)).contains("$or: expected a non-empty list"));
        // The manifest's shape: `where` and `where_document`, absent keys left out.
        let back: RecordFilter = serde_json::from_str(r#"{"where":{"a":1}}"#).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), r#"{"where":{"a":1}}"#);
        assert!(serde_json::from_str::<RecordFilter>(r#"{"wehre":{}}"#).is_err());
    }

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

    fn int_range(text: &str) -> Option<(String, String)> {
        match parse_metadata(text) {
            Err(MetadataError::IntRange { key, literal }) => Some((key, literal)),
            Err(e) => panic!("{text}: {e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn integers_beyond_i64_are_refused_never_floats() {
        let big = |k: &str, l: &str| Some((k.to_owned(), l.to_owned()));
        assert_eq!(int_range(r#"{"k":18446744073709551616}"#), big("k", "18446744073709551616"));
        assert_eq!(int_range(r#"{"k":18446744073709551615}"#), big("k", "18446744073709551615"));
        assert_eq!(int_range(r#"{"k":9223372036854775808}"#), big("k", "9223372036854775808"));
        assert_eq!(int_range(r#"{"k":-9223372036854775809}"#), big("k", "-9223372036854775809"));
        assert_eq!(
            int_range(r#"{"a":"x\":1","b":[1, -99999999999999999999999]}"#),
            big("b", "-99999999999999999999999")
        );
        assert_eq!(int_range(r#"{"a": 1e2, "é\"k" : 100000000000000000000}"#), big("é\"k", "100000000000000000000"));
        // In range, or floats written as floats: kept as they are.
        assert_eq!(int_range(r#"{"k":9223372036854775807,"m":-9223372036854775808}"#), None);
        assert_eq!(int_range(r#"{"k":1e19,"m":-1.8446744073709552e19,"n":18446744073709551616.0}"#), None);
        assert_eq!(int_range(r#"{"s":"18446744073709551616"}"#), None);
        let msg = parse_metadata(r#"{"k":18446744073709551616}"#).unwrap_err().to_string();
        assert_eq!(msg, r#"metadata key "k": integer 18446744073709551616 does not fit in i64"#);
    }

    #[test]
    fn floats_beyond_f64_are_refused() {
        for t in [r#"{"k":1e400}"#, r#"{"k":-1e400}"#, r#"{"k":[1.0, 1e309]}"#] {
            assert!(matches!(parse_metadata(t), Err(MetadataError::Json(_))), "{t}");
        }
    }
}
