//! Tells Chroma's own, documented write drift apart from real differences, record by record.
//!
//! Measured (docs/load.md): cosine collections move ~28% of embedding values by 1 ulp on every
//! write (normalisation), on every server version; the 1.x server moves ~15–25% of float64
//! metadata values by 1 ulp while parsing a request. Anything else is a real difference.

use serde::Serialize;
use serde_json::Value;

use crate::record::{RecordRef, parse_metadata};

/// How far a value may move and still count as server drift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Largest accepted ulp distance of an f32 embedding value (0: bit-exact).
    pub embedding_ulps: u64,
    /// Largest accepted ulp distance of an f64 metadata value (0: bit-exact).
    pub metadata_ulps: u64,
}

/// Cosine embeddings drift on every write (the server normalises them); up to 2 ulps from the
/// snapshot were measured for one load (docs/load.md). The bound leaves room for one more.
pub const COSINE_EMBEDDING_ULPS: u64 = 4;
/// The 1.x server's float parsing is at most 1 ulp off.
pub const V1X_METADATA_ULPS: u64 = 1;

impl Tolerance {
    pub const EXACT: Tolerance = Tolerance { embedding_ulps: 0, metadata_ulps: 0 };

    /// The tolerance for a collection of `space` on a server that does (1.x) or does not
    /// (0.x) drift float metadata.
    pub fn for_target(space: &str, drifts_float_metadata: bool) -> Self {
        Self {
            embedding_ulps: if space == "cosine" { COSINE_EMBEDDING_ULPS } else { 0 },
            metadata_ulps: if drifts_float_metadata { V1X_METADATA_ULPS } else { 0 },
        }
    }
}

/// Drift seen in one record (all zero for an exact record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub embedding_values: u64,
    pub max_embedding_ulps: u64,
    pub metadata_values: u64,
    pub max_metadata_ulps: u64,
    /// Records whose metadata is null on one side and `{}` on the other (1.x answers `{}` for a
    /// record with a uri and no metadata; `{}` cannot be written, so it is loaded as null).
    pub empty_metadata: u64,
}

impl Drift {
    pub fn is_zero(&self) -> bool {
        self.embedding_values == 0 && self.metadata_values == 0 && self.empty_metadata == 0
    }

    pub fn merge(&mut self, o: &Drift) {
        self.empty_metadata += o.empty_metadata;
        self.embedding_values += o.embedding_values;
        self.max_embedding_ulps = self.max_embedding_ulps.max(o.max_embedding_ulps);
        self.metadata_values += o.metadata_values;
        self.max_metadata_ulps = self.max_metadata_ulps.max(o.max_metadata_ulps);
    }
}

fn ord32(x: f32) -> i64 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 { -i64::from(b & 0x7fff_ffff) } else { i64::from(b) }
}

fn ord64(x: f64) -> i128 {
    let b = x.to_bits();
    if b >> 63 != 0 { -i128::from(b & !(1u64 << 63)) } else { i128::from(b) }
}

/// Distance in units in the last place; `None` when either is NaN (and they differ).
pub fn ulps32(a: f32, b: f32) -> Option<u64> {
    if a.to_bits() == b.to_bits() {
        return Some(0);
    }
    if a.is_nan() || b.is_nan() {
        return None;
    }
    Some(ord32(a).abs_diff(ord32(b)).max(1))
}

pub fn ulps64(a: f64, b: f64) -> Option<u64> {
    if a.to_bits() == b.to_bits() {
        return Some(0);
    }
    if a.is_nan() || b.is_nan() {
        return None;
    }
    Some(u64::try_from(ord64(a).abs_diff(ord64(b))).unwrap_or(u64::MAX).max(1))
}

/// Compares the snapshot's record with the target's: `Ok(drift)` when they are equal up to the
/// tolerance, else the first real difference in words.
pub fn compare_records(want: &RecordRef<'_>, got: &RecordRef<'_>, tol: Tolerance) -> Result<Drift, String> {
    let mut d = Drift::default();
    if want.document != got.document {
        return Err(format!("document {} instead of {}", show(got.document), show(want.document)));
    }
    if want.uri != got.uri {
        return Err(format!("uri {} instead of {}", show(got.uri), show(want.uri)));
    }
    if want.embedding.len() != got.embedding.len() {
        return Err(format!("{} dimensions instead of {}", got.embedding.len(), want.embedding.len()));
    }
    for (j, (w, g)) in want.embedding.iter().zip(got.embedding).enumerate() {
        match ulps32(*w, *g) {
            Some(0) => {}
            Some(u) if u <= tol.embedding_ulps => {
                d.embedding_values += 1;
                d.max_embedding_ulps = d.max_embedding_ulps.max(u);
            }
            u => {
                return Err(format!(
                    "embedding[{j}] is {g:e} instead of {w:e} ({})",
                    u.map_or("NaN".into(), |u| format!("{u} ulps"))
                ));
            }
        }
    }
    compare_metadata_text(want.metadata, got.metadata, tol, &mut d)?;
    Ok(d)
}

/// Which fields of a record differ beyond the tolerance: `embedding`, `document`, `uri`, and
/// `metadata.KEY` for each metadata key added, removed or changed (`metadata` when either side's
/// metadata cannot be read). Empty when the records are equal up to the tolerance.
pub fn changed_fields(a: &RecordRef<'_>, b: &RecordRef<'_>, tol: Tolerance) -> Vec<String> {
    let mut out = Vec::new();
    let mut d = Drift::default();
    let emb = a.embedding.len() != b.embedding.len()
        || a.embedding.iter().zip(b.embedding).any(|(x, y)| ulps32(*x, *y).is_none_or(|u| u > tol.embedding_ulps));
    if emb {
        out.push("embedding".to_owned());
    }
    if a.document != b.document {
        out.push("document".to_owned());
    }
    if a.uri != b.uri {
        out.push("uri".to_owned());
    }
    if compare_metadata_text(a.metadata, b.metadata, tol, &mut d).is_err() {
        let parse = |t: Option<&str>| t.map(parse_metadata).transpose();
        match (parse(a.metadata), parse(b.metadata)) {
            (Ok(x), Ok(y)) => {
                let (x, y) = (x.unwrap_or_default(), y.unwrap_or_default());
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let same = match (x.get(k), y.get(k)) {
                        (Some(v), Some(w)) => compare_values("", v, w, tol, &mut d).is_ok(),
                        _ => false,
                    };
                    if !same {
                        out.push(format!("metadata.{k}"));
                    }
                }
            }
            _ => out.push("metadata".to_owned()),
        }
    }
    out
}

fn show(s: Option<&str>) -> String {
    match s {
        None => "null".into(),
        Some(s) if s.chars().count() > 40 => format!("{:?}…", s.chars().take(40).collect::<String>()),
        Some(s) => format!("{s:?}"),
    }
}

fn compare_metadata_text(want: Option<&str>, got: Option<&str>, tol: Tolerance, d: &mut Drift) -> Result<(), String> {
    if want == got {
        return Ok(());
    }
    if want.filter(|t| *t != "{}") == got.filter(|t| *t != "{}") {
        d.empty_metadata += 1;
        return Ok(());
    }
    let parse = |t: Option<&str>| t.map(|t| parse_metadata(t).map(Value::Object)).transpose();
    let (w, g) = match (parse(want), parse(got)) {
        (Ok(w), Ok(g)) => (w.unwrap_or(Value::Null), g.unwrap_or(Value::Null)),
        _ => return Err("metadata is not valid JSON".into()),
    };
    compare_values("metadata", &w, &g, tol, d)
}

/// Compares two metadata values (maps, arrays, scalars), keeping int, float, bool and str apart.
pub fn compare_values(path: &str, want: &Value, got: &Value, tol: Tolerance, d: &mut Drift) -> Result<(), String> {
    let differ = || Err(format!("{path} is {got} instead of {want}"));
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            if w.len() != g.len() || w.keys().zip(g.keys()).any(|(a, b)| a != b) {
                let wk: Vec<&String> = w.keys().collect();
                let gk: Vec<&String> = g.keys().collect();
                return Err(format!("{path} has keys {gk:?} instead of {wk:?}"));
            }
            for (k, wv) in w {
                compare_values(&format!("{path}.{k}"), wv, &g[k], tol, d)?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                compare_values(&format!("{path}[{i}]"), wv, gv, tol, d)?;
            }
            Ok(())
        }
        (Value::Number(w), Value::Number(g)) if w.is_f64() && g.is_f64() => {
            let (w, g) = (w.as_f64().unwrap_or(f64::NAN), g.as_f64().unwrap_or(f64::NAN));
            match ulps64(w, g) {
                Some(0) => Ok(()),
                Some(u) if u <= tol.metadata_ulps => {
                    d.metadata_values += 1;
                    d.max_metadata_ulps = d.max_metadata_ulps.max(u);
                    Ok(())
                }
                _ => differ(),
            }
        }
        (Value::Number(w), Value::Number(g)) if !w.is_f64() && !g.is_f64() && w == g => Ok(()),
        (Value::Bool(w), Value::Bool(g)) if w == g => Ok(()),
        (Value::String(w), Value::String(g)) if w == g => Ok(()),
        (Value::Null, Value::Null) => Ok(()),
        _ => differ(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(e: &'a [f32], meta: Option<&'a str>) -> RecordRef<'a> {
        RecordRef { id: "a", embedding: e, document: Some("d"), uri: None, metadata: meta }
    }

    fn next32(x: f32, n: u32) -> f32 {
        f32::from_bits(x.to_bits() + n)
    }

    #[test]
    fn ulp_distances() {
        assert_eq!(ulps32(1.0, next32(1.0, 1)), Some(1));
        assert_eq!(ulps32(-0.0, 0.0), Some(1));
        assert_eq!(ulps32(f32::from_bits(1), -f32::from_bits(1)), Some(2));
        assert_eq!(ulps32(f32::NAN, 1.0), None);
        assert_eq!(ulps64(0.1, f64::from_bits(0.1f64.to_bits() + 1)), Some(1));
    }

    #[test]
    fn cosine_drift_is_tolerated_within_the_bound_only() {
        let want = [0.5f32, 0.25, -0.75];
        let one = [next32(0.5, 1), 0.25, next32(-0.75, 1)];
        let cos = Tolerance::for_target("cosine", false);
        let d = compare_records(&rec(&want, None), &rec(&one, None), cos).unwrap();
        assert_eq!((d.embedding_values, d.max_embedding_ulps), (2, 1));
        assert!(compare_records(&rec(&want, None), &rec(&one, None), Tolerance::for_target("l2", false)).is_err());
        let far = [next32(0.5, 5), 0.25, -0.75];
        assert!(compare_records(&rec(&want, None), &rec(&far, None), cos).unwrap_err().contains("5 ulps"));
    }

    #[test]
    fn metadata_floats_drift_on_1x_only_and_types_stay_apart() {
        let e = [1.0f32];
        let want = r#"{"f":0.1,"i":1}"#;
        let got = format!(r#"{{"f":{:?},"i":1}}"#, f64::from_bits(0.1f64.to_bits() + 1));
        let d = compare_records(&rec(&e, Some(want)), &rec(&e, Some(&got)), Tolerance::for_target("l2", true)).unwrap();
        assert_eq!((d.metadata_values, d.max_metadata_ulps), (1, 1));
        assert!(compare_records(&rec(&e, Some(want)), &rec(&e, Some(&got)), Tolerance::EXACT).is_err());
        let int_for_float = r#"{"f":0.1,"i":1.0}"#;
        let tol = Tolerance::for_target("l2", true);
        assert!(compare_records(&rec(&e, Some(want)), &rec(&e, Some(int_for_float)), tol).is_err());
        assert!(compare_records(&rec(&e, Some(want)), &rec(&e, None), tol).is_err());
        let arrays = (r#"{"a":[1.5,2.5]}"#, r#"{"a":[1.5,2.5000000000000004]}"#);
        assert!(compare_records(&rec(&e, Some(arrays.0)), &rec(&e, Some(arrays.1)), tol).is_ok());
        let missing_key = r#"{"f":0.1}"#;
        assert!(compare_records(&rec(&e, Some(want)), &rec(&e, Some(missing_key)), tol).unwrap_err().contains("keys"));
    }

    #[test]
    fn empty_metadata_equals_null() {
        let e = [1.0f32];
        let d = compare_records(&rec(&e, None), &rec(&e, Some("{}")), Tolerance::EXACT).unwrap();
        assert_eq!(d.empty_metadata, 1);
        assert!(compare_records(&rec(&e, Some("{}")), &rec(&e, Some(r#"{"a":1}"#)), Tolerance::EXACT).is_err());
    }

    #[test]
    fn changed_fields_name_each_field_and_metadata_key() {
        let (e, f) = ([1.0f32, 2.0], [1.0f32, 3.0]);
        let a = rec(&e, Some(r#"{"keep":1,"gone":"x","moved":0.5}"#));
        let mut b = rec(&f, Some(r#"{"keep":1,"moved":0.25,"new":true}"#));
        b.document = Some("other");
        let got = changed_fields(&a, &b, Tolerance::EXACT);
        assert_eq!(got, ["embedding", "document", "metadata.gone", "metadata.moved", "metadata.new"]);
        assert!(changed_fields(&a, &a, Tolerance::EXACT).is_empty());
        let near = [f32::from_bits(1.0f32.to_bits() + 1), 2.0];
        assert!(
            changed_fields(&rec(&e, None), &rec(&near, Some("{}")), Tolerance::for_target("cosine", false)).is_empty()
        );
    }

    #[test]
    fn documents_and_uris_must_be_equal() {
        let e = [1.0f32];
        let a = rec(&e, None);
        let mut b = a;
        b.document = None;
        assert!(compare_records(&a, &b, Tolerance::for_target("cosine", true)).unwrap_err().contains("document"));
    }
}
