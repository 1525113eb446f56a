//! The JSON body of an `add`/`upsert` request, written by hand for speed and exactness: base64
//! little-endian f32 embeddings where the server supports them (1.x), else exact JSON numbers.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::record::{RecordPage, extend_f32_le};

/// How embeddings are written into a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One standard-base64 string of little-endian f32 bytes per embedding (1.x).
    Base64,
    /// JSON numbers: each f32 widened to f64 and printed exactly, so any parser (f64 or f32)
    /// gets the stored value back (0.x).
    Json,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::Json => "json",
        }
    }
}

/// Fixed bytes of a body besides the records (keys, brackets).
pub const BODY_OVERHEAD: usize = 128;

/// An upper bound of the bytes one record adds to a body.
pub fn record_bytes(
    enc: Encoding,
    id: &str,
    dim: usize,
    doc: Option<&str>,
    uri: Option<&str>,
    meta: Option<&str>,
) -> usize {
    let emb = match enc {
        Encoding::Base64 => (dim * 4).div_ceil(3) * 4 + 3,
        // "-1.1754942106924411e-38" is 23 characters; the longest f64 text of an f32 value.
        Encoding::Json => dim * 25 + 3,
    };
    let opt = |s: Option<&str>| s.map_or(5, json_str_len) + 1;
    json_str_len(id) + 1 + emb + opt(doc) + opt(uri) + meta.map_or(5, str::len) + 1
}

/// Length of `s` as a JSON string literal, quotes included (as serde_json escapes it).
pub fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Writes the body for `page`. Optional columns that are null for every record are left out.
pub fn encode(page: &RecordPage, enc: Encoding) -> Result<Vec<u8>, String> {
    let est: usize = BODY_OVERHEAD
        + (0..page.len())
            .map(|i| {
                let r = page.record(i);
                record_bytes(enc, r.id, page.dim, r.document, r.uri, r.metadata)
            })
            .sum::<usize>();
    let mut out = Vec::with_capacity(est);
    out.extend_from_slice(b"{\"ids\":");
    serde_json::to_writer(&mut out, &page.ids).expect("strings serialise");
    out.extend_from_slice(b",\"embeddings\":[");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = Vec::with_capacity(page.dim * 4);
    for i in 0..page.len() {
        if i > 0 {
            out.push(b',');
        }
        let e = page.embedding(i);
        match enc {
            Encoding::Base64 => {
                bytes.clear();
                extend_f32_le(&mut bytes, e);
                out.push(b'"');
                let start = out.len();
                out.resize(start + (bytes.len()).div_ceil(3) * 4, 0);
                let n = b64.encode_slice(&bytes, &mut out[start..]).expect("buffer sized for base64");
                out.truncate(start + n);
                out.push(b'"');
            }
            Encoding::Json => {
                out.push(b'[');
                for (j, v) in e.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    if !v.is_finite() {
                        return Err(format!("record {:?}: embedding value {v} cannot be written as JSON", page.ids[i]));
                    }
                    // Debug prints the shortest text that reads back as the same f64 (`-0.0`
                    // keeps its sign and `1.0` its point); every f32 is exactly an f64.
                    use std::io::Write;
                    write!(out, "{:?}", f64::from(*v)).expect("writing to a Vec");
                }
                out.push(b']');
            }
        }
    }
    out.push(b']');
    // `{}` (what 1.x answers for a record with a uri and no metadata) is refused on write: null.
    let column = |out: &mut Vec<u8>, key: &str, vals: &[Option<String>], raw: bool| {
        let absent = |v: &Option<String>| v.is_none() || (raw && v.as_deref() == Some("{}"));
        if vals.iter().all(absent) {
            return;
        }
        out.extend_from_slice(format!(",\"{key}\":[").as_bytes());
        for (i, v) in vals.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match v {
                _ if absent(v) => out.extend_from_slice(b"null"),
                Some(s) if raw => out.extend_from_slice(s.as_bytes()),
                Some(s) => serde_json::to_writer(&mut *out, s).expect("strings serialise"),
                None => unreachable!("absent values are written as null"),
            }
        }
        out.push(b']');
    };
    column(&mut out, "documents", &page.documents, false);
    column(&mut out, "uris", &page.uris, false);
    column(&mut out, "metadatas", &page.metadatas, true);
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordRef;
    use serde_json::Value;

    fn page() -> RecordPage {
        let mut p = RecordPage::with_capacity(3, 2);
        p.push(RecordRef {
            id: "a\"\n",
            embedding: &[0.1, -0.0, f32::from_bits(1)],
            document: Some("dé\u{1}"),
            uri: None,
            metadata: Some(r#"{"f":1.0,"i":1}"#),
        });
        p.push(RecordRef { id: "b", embedding: &[f32::MAX, 1.0, -2.5], document: None, uri: None, metadata: None });
        p
    }

    #[test]
    fn json_numbers_are_exact_f32() {
        let body = encode(&page(), Encoding::Json).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains("-0.0"), "{text}");
        assert!(!text.contains("\"uris\""), "all-null columns are left out: {text}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let back: Vec<f32> =
            v["embeddings"][0].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), [0.1f32.to_bits(), 0x8000_0000, 1]);
        assert_eq!(v["embeddings"][1][0].as_f64().unwrap() as f32, f32::MAX);
        assert!(v["metadatas"][0]["f"].is_f64() && v["metadatas"][0]["i"].is_i64());
        assert_eq!(v["ids"][0], "a\"\n");
        assert_eq!(v["documents"][1], Value::Null);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let body = encode(&page(), Encoding::Base64).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(v["embeddings"][1].as_str().unwrap()).unwrap();
        assert_eq!(raw, [f32::MAX.to_le_bytes(), 1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat());
    }

    #[test]
    fn estimate_bounds_the_body() {
        for enc in [Encoding::Json, Encoding::Base64] {
            let p = page();
            let est: usize = BODY_OVERHEAD
                + (0..p.len())
                    .map(|i| {
                        let r = p.record(i);
                        record_bytes(enc, r.id, p.dim, r.document, r.uri, r.metadata)
                    })
                    .sum::<usize>();
            assert!(encode(&p, enc).unwrap().len() <= est);
        }
        assert_eq!(json_str_len("a\"\u{1}é"), serde_json::to_string("a\"\u{1}é").unwrap().len());
    }

    #[test]
    fn empty_metadata_is_sent_as_null() {
        let mut p = RecordPage::with_capacity(1, 2);
        p.push(RecordRef { id: "a", embedding: &[1.0], document: None, uri: Some("u"), metadata: Some("{}") });
        let v: Value = serde_json::from_slice(&encode(&p, Encoding::Base64).unwrap()).unwrap();
        assert!(v.get("metadatas").is_none(), "{v}");
        p.push(RecordRef { id: "b", embedding: &[1.0], document: None, uri: None, metadata: Some(r#"{"k":1}"#) });
        let v: Value = serde_json::from_slice(&encode(&p, Encoding::Base64).unwrap()).unwrap();
        assert_eq!(v["metadatas"], serde_json::json!([null, {"k": 1}]));
    }

    #[test]
    fn non_finite_values_are_refused_as_json() {
        let mut p = RecordPage::with_capacity(1, 1);
        p.push(RecordRef { id: "x", embedding: &[f32::NAN], document: None, uri: None, metadata: None });
        assert!(encode(&p, Encoding::Json).unwrap_err().contains("\"x\""));
    }
}
