//! Parses a `get` answer into a [`RecordPage`]: embeddings straight to f32, metadata typed.
//!
//! Embeddings are the bulk of every answer (~9 KB of JSON per 768-dim record), so they are read
//! from the raw JSON text with a small scanner and Rust's correctly rounded float parser rather
//! than through serde's f64 path.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::types::Api;
use crate::record::{Metadata, RecordPage, canonical_metadata};

#[derive(Deserialize)]
struct GetBody<'a> {
    ids: Vec<String>,
    #[serde(borrow, default)]
    embeddings: Option<&'a RawValue>,
    #[serde(default)]
    documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    uris: Option<Vec<Option<String>>>,
    #[serde(default)]
    metadatas: Option<Vec<Option<Metadata>>>,
}

/// What a page of a `get` answer held, with the ids that could not be read whole.
#[derive(Debug, Default)]
pub struct ParsedPage {
    pub page: RecordPage,
    /// Ids the server listed without an embedding (0.5 can store such records).
    pub missing_embedding: Vec<String>,
    /// Set when an array was shorter than `ids`: rows cannot be matched to ids safely.
    pub short_arrays: Option<String>,
}

/// Parses ids only (`include: []`).
pub fn parse_ids(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Ids {
        ids: Vec<String>,
    }
    serde_json::from_slice::<Ids>(body).map(|b| b.ids).map_err(|e| format!("bad get answer: {e}"))
}

/// Parses a full `get` answer. `api` decides how embedding text is rounded: v2 sends the
/// shortest text of each f32; v1 sends f64 text, rounded to f32 as the server does.
pub fn parse_get(body: &[u8], api: Api) -> Result<ParsedPage, String> {
    let b: GetBody<'_> = serde_json::from_slice(body).map_err(|e| format!("bad get answer: {e}"))?;
    let n = b.ids.len();
    let embs = match b.embeddings {
        Some(raw) => scan_embeddings(raw.get(), api)?,
        None => return Err("the answer holds no embeddings".into()),
    };
    let mut short = Vec::new();
    if embs.len() != n {
        short.push(format!("{} embeddings", embs.len()));
    }
    let documents = b.documents.unwrap_or_else(|| vec![None; n]);
    let uris = b.uris.unwrap_or_else(|| vec![None; n]);
    let metadatas = b.metadatas.unwrap_or_else(|| vec![None; n]);
    for (what, len) in [("documents", documents.len()), ("uris", uris.len()), ("metadatas", metadatas.len())] {
        if len != n {
            short.push(format!("{len} {what}"));
        }
    }
    if !short.is_empty() {
        return Ok(ParsedPage {
            short_arrays: Some(format!("{n} ids but {}", short.join(", "))),
            ..Default::default()
        });
    }
    let dim = embs.iter().flatten().map(Vec::len).next().unwrap_or(0);
    let mut out = ParsedPage { page: RecordPage::with_capacity(dim, n), ..Default::default() };
    let rows = b.ids.into_iter().zip(embs).zip(documents).zip(uris).zip(metadatas);
    for ((((id, emb), doc), uri), meta) in rows {
        let Some(emb) = emb else {
            out.missing_embedding.push(id);
            continue;
        };
        if emb.len() != dim {
            return Err(format!("record {id:?} has {} dimensions, others in the page have {dim}", emb.len()));
        }
        let p = &mut out.page;
        p.ids.push(id);
        p.embeddings.extend_from_slice(&emb);
        p.documents.push(doc);
        p.uris.push(uri);
        // Kept verbatim: 1.x answers `{}` for a record that has a uri and no metadata.
        p.metadatas.push(meta.map(|m| canonical_metadata(&m)));
    }
    Ok(out)
}

/// Scans `[[1.0,2],[..],null,…]` into per-record vectors.
pub fn scan_embeddings(text: &str, api: Api) -> Result<Vec<Option<Vec<f32>>>, String> {
    let s = text.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let err = |i: usize, what: &str| format!("bad embeddings at byte {i}: {what}");
    ws(&mut i);
    if s.get(i) == Some(&b'n') && text[i..].starts_with("null") {
        return Ok(Vec::new());
    }
    if s.get(i) != Some(&b'[') {
        return Err(err(i, "expected '['"));
    }
    i += 1;
    let mut out = Vec::new();
    loop {
        ws(&mut i);
        match s.get(i) {
            Some(b']') => break,
            Some(b'n') if text[i..].starts_with("null") => {
                out.push(None);
                i += 4;
            }
            Some(b'[') => {
                i += 1;
                let mut v =
                    Vec::with_capacity(out.last().and_then(|o: &Option<Vec<f32>>| o.as_ref()).map_or(0, Vec::len));
                loop {
                    ws(&mut i);
                    if s.get(i) == Some(&b']') {
                        i += 1;
                        break;
                    }
                    if text[i..].starts_with("null") {
                        // The server stored a NaN (e.g. a cosine vector whose norm overflowed).
                        v.push(f32::NAN);
                        i += 4;
                    } else {
                        let start = i;
                        while i < s.len() && !matches!(s[i], b',' | b']') && !s[i].is_ascii_whitespace() {
                            i += 1;
                        }
                        let tok = &text[start..i];
                        let x = match api {
                            Api::V2 => tok.parse::<f32>().ok(),
                            Api::V1 => tok.parse::<f64>().ok().map(|x| x as f32),
                        };
                        v.push(x.ok_or_else(|| err(start, &format!("{tok:?} is not a number")))?);
                    }
                    ws(&mut i);
                    match s.get(i) {
                        Some(b',') => i += 1,
                        Some(b']') => {}
                        _ => return Err(err(i, "expected ',' or ']'")),
                    }
                }
                out.push(Some(v));
            }
            _ => return Err(err(i, "expected an embedding")),
        }
        ws(&mut i);
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b']') => break,
            _ => return Err(err(i, "expected ',' or ']'")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_f32_text_exactly() {
        let v = scan_embeddings("[[0.1, -0.0,1e-45,3.4028235e38],null,[1,2,3,4]]", Api::V2).unwrap();
        let a = v[0].as_ref().unwrap();
        assert_eq!(a[0].to_bits(), 0.1f32.to_bits());
        assert_eq!(a[1].to_bits(), (-0.0f32).to_bits());
        assert_eq!(a[2].to_bits(), 1); // smallest subnormal
        assert_eq!(a[3], f32::MAX);
        assert!(v[1].is_none());
        let n = scan_embeddings("[[null, 1]]", Api::V2).unwrap();
        assert!(n[0].as_ref().unwrap()[0].is_nan());
        assert_eq!(v[2].as_ref().unwrap(), &vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn v1_text_rounds_through_f64() {
        // f64 text of the f32 nearest 0.1, as 0.x servers print it.
        let v = scan_embeddings("[[0.10000000149011612]]", Api::V1).unwrap();
        assert_eq!(v[0].as_ref().unwrap()[0].to_bits(), 0.1f32.to_bits());
    }

    #[test]
    fn rejects_garbage() {
        assert!(scan_embeddings("[[1,\"x\"]]", Api::V2).is_err());
        assert!(scan_embeddings("[[1,2]", Api::V2).is_err());
        assert!(scan_embeddings("{}", Api::V2).is_err());
    }

    #[test]
    fn short_arrays_are_reported_not_shifted() {
        let body = br#"{"ids":["a","b"],"embeddings":[[1.0]],"documents":[null,null],"metadatas":[null,null]}"#;
        let p = parse_get(body, Api::V1).unwrap();
        assert!(p.short_arrays.unwrap().contains("1 embeddings"));
        assert!(p.page.is_empty());
    }

    #[test]
    fn keeps_metadata_types() {
        let body = br#"{"ids":["a"],"embeddings":[[1.5]],"documents":["d"],"uris":[null],
            "metadatas":[{"i":1,"f":1.0,"b":true,"s":"x","l":[1,2]}]}"#;
        let p = parse_get(body, Api::V2).unwrap().page;
        assert_eq!(p.metadatas[0].as_deref(), Some(r#"{"b":true,"f":1.0,"i":1,"l":[1,2],"s":"x"}"#));
        assert_eq!(p.dim, 1);
    }
}
