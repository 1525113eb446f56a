//! Validation: Chroma's own write rules (ids, metadata keys and values), record checks
//! (embedding, document) and field checks (type, range, allowed values, regex, length), plus casts.

use serde_json::{Number, Value};

use super::plan::{CheckPlan, FieldPlan};
use super::spec::Kind;
use crate::limits::Breach;
use crate::record::{Metadata, RecordRef, int_range_message};

/// Why a record was rejected: a stable rule name, the field it concerns, and a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reason {
    pub rule: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl Reason {
    pub fn new(rule: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self { rule, field: field.map(str::to_owned), message: message.into() }
    }
}

impl From<Breach> for Reason {
    fn from(b: Breach) -> Self {
        Self { rule: b.rule, field: b.field, message: b.message }
    }
}

/// Chroma's metadata key rules (1.x is the strictest: empty, `#…`, `$…`, `chroma:document`).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("is empty".into())
    } else if key.starts_with('#') || key.starts_with('$') {
        Err(format!("{key:?} starts with '{}' (reserved by Chroma)", &key[..1]))
    } else if key == "chroma:document" {
        Err("\"chroma:document\" is reserved by Chroma".into())
    } else {
        Ok(())
    }
}

/// Checks an output metadata map against Chroma's write rules, adding a reason per problem.
pub fn chroma_metadata(m: &Metadata, arrays_allowed: bool, out: &mut Vec<Reason>) {
    for (k, v) in m {
        if let Err(why) = check_key(k) {
            let rule = if k.is_empty() { "chroma.key_empty" } else { "chroma.key_reserved" };
            out.push(Reason::new(rule, Some(k), format!("metadata key {why}")));
        }
        match v {
            Value::Null => out.push(Reason::new("chroma.null_value", Some(k), "null metadata values are refused")),
            Value::Object(_) => {
                out.push(Reason::new("chroma.nested", Some(k), "nested objects are not metadata values"))
            }
            Value::Number(n) if n.as_i64().is_none() && n.as_f64().is_none_or(|_| n.is_u64()) => {
                out.push(Reason::new("chroma.int_range", Some(k), int_range_message(&n.to_string())))
            }
            Value::Array(a) => {
                if !arrays_allowed {
                    out.push(Reason::new(
                        "chroma.array_unsupported",
                        Some(k),
                        "array values need Chroma 1.5 or later (validate.chroma_version)",
                    ));
                } else if a.is_empty() {
                    out.push(Reason::new(
                        "chroma.array_empty",
                        Some(k),
                        "empty arrays are refused (1.x drops the whole metadata map)",
                    ));
                } else if !homogeneous(a) {
                    out.push(Reason::new(
                        "chroma.array_mixed",
                        Some(k),
                        "arrays must hold only strings, only ints, only floats or only bools",
                    ));
                }
            }
            _ => {}
        }
    }
}

fn homogeneous(a: &[Value]) -> bool {
    let kind = |v: &Value| match v {
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Number(n) if n.is_i64() => 3,
        Value::Number(n) if n.is_f64() => 4,
        _ => 0,
    };
    let first = kind(&a[0]);
    first != 0 && a.iter().all(|v| kind(v) == first)
}

/// Record-level checks: id, embedding dimension and finiteness, document.
pub fn record(r: &RecordRef<'_>, c: &CheckPlan, out: &mut Vec<Reason>) {
    if let Some(dims) = &c.dimensions
        && !dims.contains(&r.embedding.len())
    {
        out.push(Reason::new(
            "embedding.dimension",
            None,
            format!("{} dimensions, allowed: {dims:?}", r.embedding.len()),
        ));
    }
    if c.finite_embeddings
        && !all_finite(r.embedding)
        && let Some(i) = r.embedding.iter().position(|x| !x.is_finite())
    {
        let bad = r.embedding.iter().filter(|x| !x.is_finite()).count();
        out.push(Reason::new(
            "embedding.non_finite",
            None,
            format!("{bad} NaN/Inf value(s), first at index {i} ({})", r.embedding[i]),
        ));
    }
    if c.non_empty_document && r.document.is_none_or(|d| d.trim().is_empty()) {
        let what = match r.document {
            None => "null",
            Some("") => "empty",
            Some(_) => "whitespace only",
        };
        out.push(Reason::new("document.empty", None, format!("document is {what}")));
    }
    if let (Some(max), Some(d)) = (c.max_document_length, r.document) {
        let n = d.chars().count();
        if n > max {
            out.push(Reason::new("document.max_length", None, format!("{n} characters, at most {max}")));
        }
    }
}

/// Whether no value is NaN or infinite: every value checked, without a branch per value, so the
/// compiler vectorises it (an early-exit search over 768 floats cost as much as mapping the
/// record's metadata).
fn all_finite(values: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000; // all exponent bits set: NaN or ±Inf
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder().iter().all(|x| x.is_finite());
    rest && chunks.fold(true, |ok, c| ok & c.iter().fold(true, |a, x| a & (x.to_bits() & EXP != EXP)))
}

/// Casts a value to `kind`, or says why it cannot be.
pub fn cast(v: &Value, kind: Kind) -> Result<Value, String> {
    let fail = || format!("cannot cast {v} to {}", kind_name(kind));
    match (kind, v) {
        (Kind::String, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => Ok(v.clone()),
        (Kind::String, Value::Number(_) | Value::Bool(_)) => Ok(Value::from(v.to_string())),
        (Kind::Int, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Value::from(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Value::from(f as i64)),
            _ => Err(fail()),
        },
        (Kind::Int, Value::String(s)) => s.trim().parse::<i64>().map(Value::from).map_err(|_| fail()),
        (Kind::Float, Value::Number(n)) => n.as_f64().and_then(Number::from_f64).map(Value::Number).ok_or_else(fail),
        (Kind::Float, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(fail),
        (Kind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" => Ok(Value::Bool(false)),
            _ => Err(fail()),
        },
        (Kind::Bool, Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(Value::Bool(false)),
            Some(1) => Ok(Value::Bool(true)),
            _ => Err(fail()),
        },
        _ => Err(fail()),
    }
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Int => "int",
        Kind::Float => "float",
        Kind::Bool => "bool",
        Kind::String => "string",
    }
}

fn is_kind(v: &Value, k: Kind) -> bool {
    match k {
        Kind::Int => v.as_i64().is_some(),
        Kind::Float => v.is_f64(),
        Kind::Bool => v.is_boolean(),
        Kind::String => v.is_string(),
    }
}

/// The field checks of a mapped value (type, range, allowed values, regex, lengths).
pub fn field(f: &FieldPlan, v: &Value, out: &mut Vec<Reason>) {
    let name = Some(f.name.as_str());
    if let Some(k) = f.kind
        && !is_kind(v, k)
    {
        out.push(Reason::new("field.type", name, format!("{v} is not a {}", kind_name(k))));
        return;
    }
    if let Some(x) = v.as_f64().filter(|_| v.is_number()) {
        if f.min.is_some_and(|lo| x < lo) || f.max.is_some_and(|hi| x > hi) {
            let lo = f.min.map_or("-inf".into(), |x| x.to_string());
            let hi = f.max.map_or("inf".into(), |x| x.to_string());
            out.push(Reason::new("field.range", name, format!("{v} is outside [{lo}, {hi}]")));
        }
    } else if (f.min.is_some() || f.max.is_some()) && f.kind.is_none() {
        out.push(Reason::new("field.type", name, format!("{v} is not a number (min/max given)")));
    }
    if let Some(allowed) = &f.allowed
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        out.push(Reason::new("field.allowed", name, format!("{v} is not one of {}", list.join(", "))));
    }
    let text = v.as_str();
    if let Some(re) = &f.regex {
        match text {
            Some(s) if re.is_match(s) => {}
            Some(_) => out.push(Reason::new("field.regex", name, format!("{v} does not match /{}/", re.as_str()))),
            None => out.push(Reason::new("field.type", name, format!("{v} is not a string (regex given)"))),
        }
    }
    let len = text.map(|s| s.chars().count()).or_else(|| v.as_array().map(Vec::len));
    if let (Some(max), Some(n)) = (f.max_length, len)
        && n > max
    {
        out.push(Reason::new("field.max_length", name, format!("length {n}, at most {max}")));
    }
    if f.non_empty && text.is_some_and(|s| s.trim().is_empty()) {
        out.push(Reason::new("field.empty", name, "empty or whitespace-only string"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every position (the vectorised chunks and the remainder) and every non-finite kind.
    #[test]
    fn all_finite_finds_every_nan_and_infinity() {
        for len in [0, 1, 15, 16, 17, 768, 769] {
            let ok: Vec<f32> = (0..len).map(|i| i as f32 - 3.5).collect();
            assert!(all_finite(&ok), "len {len}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
                for at in 0..len {
                    let mut v = ok.clone();
                    v[at] = bad;
                    assert!(!all_finite(&v), "len {len}, {bad} at {at}");
                }
            }
        }
        assert!(all_finite(&[f32::MAX, f32::MIN, f32::MIN_POSITIVE, -0.0, 1e-45]));
    }

    fn reasons(m: serde_json::Value, arrays: bool) -> Vec<&'static str> {
        let mut out = Vec::new();
        chroma_metadata(m.as_object().unwrap(), arrays, &mut out);
        out.into_iter().map(|r| r.rule).collect()
    }

    #[test]
    fn chroma_key_rules() {
        assert_eq!(reasons(json!({"": 1}), true), ["chroma.key_empty"]);
        assert_eq!(reasons(json!({"#a": 1, "$b": 2, "chroma:document": "x"}), true), ["chroma.key_reserved"; 3]);
        assert!(reasons(json!({"a:b": 1, "ok": "x"}), true).is_empty());
    }

    #[test]
    fn chroma_value_rules() {
        assert_eq!(reasons(json!({"a": null}), true), ["chroma.null_value"]);
        assert_eq!(reasons(json!({"a": {"b": 1}}), true), ["chroma.nested"]);
        assert_eq!(reasons(json!({"a": []}), true), ["chroma.array_empty"]);
        assert_eq!(reasons(json!({"a": [1, "x"]}), true), ["chroma.array_mixed"]);
        assert_eq!(reasons(json!({"a": [1, 2.5]}), true), ["chroma.array_mixed"]);
        assert_eq!(reasons(json!({"a": [[1]]}), true), ["chroma.array_mixed"]);
        assert_eq!(reasons(json!({"a": [1, 2]}), false), ["chroma.array_unsupported"]);
        assert!(reasons(json!({"a": [1, 2], "b": ["x"], "c": 1.5, "d": true}), true).is_empty());
        assert_eq!(reasons(json!({"a": 18446744073709551615u64}), true), ["chroma.int_range"]);
    }

    #[test]
    fn casts() {
        assert_eq!(cast(&json!("42"), Kind::Int), Ok(json!(42)));
        assert_eq!(cast(&json!(3.0), Kind::Int), Ok(json!(3)));
        assert!(cast(&json!(3.5), Kind::Int).is_err());
        assert!(cast(&json!("x"), Kind::Int).is_err());
        assert!(cast(&json!(1), Kind::Float).unwrap().is_f64());
        assert_eq!(cast(&json!(" 0.25 "), Kind::Float), Ok(json!(0.25)));
        assert!(cast(&json!("NaN"), Kind::Float).is_err());
        assert_eq!(cast(&json!("Yes"), Kind::Bool), Ok(json!(true)));
        assert_eq!(cast(&json!(0), Kind::Bool), Ok(json!(false)));
        assert!(cast(&json!("maybe"), Kind::Bool).is_err());
        assert_eq!(cast(&json!(12), Kind::String), Ok(json!("12")));
        assert_eq!(cast(&json!(true), Kind::String), Ok(json!("true")));
    }

    fn check() -> CheckPlan {
        CheckPlan {
            dimensions: Some(vec![3]),
            finite_embeddings: true,
            non_empty_document: true,
            max_document_length: Some(5),
            arrays_allowed: true,
            limits: None,
            trim_documents: false,
        }
    }

    #[test]
    fn record_rules() {
        let rec = |e: &'static [f32], d: Option<&'static str>| RecordRef {
            id: "a",
            embedding: e,
            document: d,
            uri: None,
            metadata: None,
        };
        let run = |r: RecordRef<'_>| {
            let mut out = Vec::new();
            record(&r, &check(), &mut out);
            out.into_iter().map(|r| r.rule).collect::<Vec<_>>()
        };
        assert!(run(rec(&[1.0, 2.0, 3.0], Some("ok"))).is_empty());
        assert_eq!(run(rec(&[1.0, 2.0], Some("ok"))), ["embedding.dimension"]);
        assert_eq!(run(rec(&[1.0, f32::NAN, f32::INFINITY], Some("ok"))), ["embedding.non_finite"]);
        assert_eq!(run(rec(&[1.0, 2.0, 3.0], Some(" \n"))), ["document.empty"]);
        assert_eq!(run(rec(&[1.0, 2.0, 3.0], None)), ["document.empty"]);
        assert_eq!(run(rec(&[1.0, 2.0, 3.0], Some("toolong"))), ["document.max_length"]);
    }
}
