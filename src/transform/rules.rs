//! Per-record work, pure and thread-safe: route a source record to a target, map its metadata
//! to the target's fields, and validate the result. Id rewriting and uniqueness happen later, in
//! order (see `mod.rs`).

use serde_json::Value;

use super::checks::{self, Reason};
use super::plan::{CheckPlan, FieldSource, Plan, Predicate, Route, TargetPlan, TextMatch};
use super::spec::Derive;
use super::template::Template;
use crate::record::{Metadata, RecordRef, canonical_metadata};

/// Where a record goes: the first rule whose every condition holds, else the default.
pub fn route(plan: &Plan, collection: &str, r: &RecordRef<'_>, meta: Option<&Metadata>) -> (Route, Option<usize>) {
    for (i, rule) in plan.rules.iter().enumerate() {
        let ok = rule.collection.as_ref().is_none_or(|m| text_matches(m, collection))
            && rule.document.as_ref().is_none_or(|m| r.document.is_some_and(|d| text_matches(m, d)))
            && rule.metadata.iter().all(|p| predicate(p, meta));
        if ok {
            return (rule.to, Some(i));
        }
    }
    (plan.default, None)
}

pub fn text_matches(m: &TextMatch, s: &str) -> bool {
    (m.equals.is_empty() || m.equals.iter().any(|e| e == s))
        && (m.globs.is_empty() || m.globs.iter().any(|g| g.is_match(s)))
        && (m.contains.is_empty() || {
            let lower = s.to_lowercase();
            m.contains.iter().any(|k| lower.contains(k.as_str()))
        })
        && m.regex.as_ref().is_none_or(|re| re.is_match(s))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64().filter(|_| a.is_number()), b.as_f64().filter(|_| b.is_number())) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

pub fn predicate(p: &Predicate, meta: Option<&Metadata>) -> bool {
    let v = meta.and_then(|m| m.get(&p.key)).filter(|v| !v.is_null());
    let num = v.and_then(|v| v.as_f64().filter(|_| v.is_number()));
    p.exists.is_none_or(|e| e == v.is_some())
        && p.eq.as_ref().is_none_or(|want| v.is_some_and(|v| same(v, want)))
        && p.ne.as_ref().is_none_or(|want| v.is_none_or(|v| !same(v, want)))
        && p.one_of.as_ref().is_none_or(|set| v.is_some_and(|v| set.iter().any(|w| same(v, w))))
        && p.gt.is_none_or(|t| num.is_some_and(|x| x > t))
        && p.ge.is_none_or(|t| num.is_some_and(|x| x >= t))
        && p.lt.is_none_or(|t| num.is_some_and(|x| x < t))
        && p.le.is_none_or(|t| num.is_some_and(|x| x <= t))
        && p.regex.as_ref().is_none_or(|re| v.and_then(Value::as_str).is_some_and(|s| re.is_match(s)))
}

/// A metadata value as template text: strings as they are, numbers and bools as JSON.
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// Record properties a template can name.
pub fn property(name: &str, id: &str, target: &str, collection: &str, src: Option<&Metadata>) -> Option<String> {
    match name {
        "id" => Some(id.to_owned()),
        "target" => Some(target.to_owned()),
        "collection" => Some(collection.to_owned()),
        _ => name.strip_prefix("meta.").and_then(|k| src?.get(k)).and_then(as_text),
    }
}

/// Why a template cannot render this record: a placeholder holding an array or an object
/// (the field is not left out silently; the record is rejected).
fn unrenderable(tpl: &Template, src: Option<&Metadata>, out: &Metadata) -> Option<String> {
    tpl.names().find_map(|n| {
        let v = n.strip_prefix("meta.").and_then(|k| src?.get(k)).or_else(|| out.get(n))?;
        matches!(v, Value::Array(_) | Value::Object(_))
            .then(|| format!("template placeholder {{{n}}} holds {v}; templates take strings, numbers and bools"))
    })
}

fn derive(d: Derive, collection: &str, r: &RecordRef<'_>) -> Option<Value> {
    match d {
        Derive::SourceCollection => Some(Value::from(collection)),
        Derive::SourceId => Some(Value::from(r.id)),
        Derive::DocumentChars => r.document.map(|d| Value::from(d.chars().count() as i64)),
        Derive::DocumentBlake3 => r.document.map(|d| Value::from(blake3::hash(d.as_bytes()).to_hex().to_string())),
        Derive::EmbeddingDim => Some(Value::from(r.embedding.len() as i64)),
    }
}

/// With `validate.trim_documents`, the byte length a document over the limits is cut to (at a
/// character boundary); `None` leaves it whole.
pub fn document_cut(c: &CheckPlan, r: &RecordRef<'_>) -> Option<usize> {
    let max = c.limits.as_ref()?.max_document_bytes.filter(|_| c.trim_documents)?;
    let d = r.document.filter(|d| d.len() > max)?;
    Some(crate::limits::truncate_bytes(d, max).len())
}

/// Maps and validates one routed record (its document cut by [`document_cut`]); returns the output
/// metadata text (null for an empty map, which Chroma refuses) and every reason to reject it.
pub fn map_record(
    t: &TargetPlan,
    collection: &str,
    r: &RecordRef<'_>,
    src: Option<&Metadata>,
) -> (Option<String>, Vec<Reason>) {
    let mut out = Metadata::new();
    let mut reasons = Vec::new();
    for f in &t.fields {
        let name = Some(f.name.as_str());
        let mut missing_why = None;
        let raw = match &f.source {
            FieldSource::From(keys) => {
                let got = keys.iter().find_map(|k| src.and_then(|m| m.get(k)).filter(|v| !v.is_null()).cloned());
                if got.is_none() {
                    missing_why = Some(format!("no value under {}", keys.join(" / ")));
                }
                got
            }
            FieldSource::Const(v) => Some(v.clone()),
            FieldSource::Template(tpl) => {
                if let Some(why) = unrenderable(tpl, src, &out) {
                    reasons.push(Reason::new("field.template", name, why));
                    continue;
                }
                let look =
                    |n: &str| property(n, r.id, &t.name, collection, src).or_else(|| out.get(n).and_then(as_text));
                match tpl.render(look) {
                    Ok(s) => Some(Value::from(s)),
                    Err(var) => {
                        missing_why = Some(format!("template placeholder {{{var}}} has no value"));
                        None
                    }
                }
            }
            FieldSource::Derive(d) => derive(*d, collection, r),
        };
        let Some(raw) = raw.or_else(|| f.default.clone()) else {
            if f.required {
                let why = missing_why.unwrap_or_else(|| "no value".into());
                reasons.push(Reason::new("field.missing", name, format!("required field is missing: {why}")));
            }
            continue;
        };
        let v = match f.cast {
            Some(k) => match checks::cast(&raw, k) {
                Ok(v) => v,
                Err(why) => {
                    reasons.push(Reason::new("field.cast", name, why));
                    continue;
                }
            },
            None => raw,
        };
        checks::field(f, &v, &mut reasons);
        out.insert(f.name.clone(), v);
    }
    if t.keep_unmapped
        && let Some(src) = src
    {
        for (k, v) in src {
            if !t.consumed.contains(k) && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    checks::chroma_metadata(&out, t.check.arrays_allowed, &mut reasons);
    let document = match document_cut(&t.check, r) {
        Some(n) => r.document.map(|d| &d[..n]),
        None => r.document,
    };
    let r = &RecordRef { document, ..*r };
    checks::record(r, &t.check, &mut reasons);
    if let Some(l) = &t.check.limits {
        let mut found = Vec::new();
        l.record(r, (!out.is_empty()).then_some(&out), &mut found);
        reasons.extend(found.into_iter().map(Reason::from));
    }
    let text = (!out.is_empty()).then(|| canonical_metadata(&out));
    (text, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_metadata;
    use crate::transform::plan::compile;

    const SPEC: &str = r#"
version = 1
[defaults]
unmapped = "keep"
[defaults.validate]
non_empty_document = true
dimensions = [2]
[defaults.fields.source]
from = ["src", "source"]
required = true
[defaults.fields.score]
from = "score"
cast = "float"
min = 0.0
max = 1.0
default = 0.5
[defaults.fields.uri]
template = "if://citation/{source}/{id}"
[defaults.fields.lang]
from = "lang"
allowed = ["es", "en", "es_en"]
[defaults.fields.kind]
value = "demo"
[defaults.fields.chars]
derive = "document_chars"
[targets.humor]
[targets.other_stuff]
ids = "{target}_{n:04}"
[routing]
default = "other_stuff"
[[routing.rules]]
to = "humor"
collection = { contains = ["humor", "joke"] }
[[routing.rules]]
to = "reject"
metadata = [{ key = "score", gt = 10 }]
[[routing.rules]]
to = "humor"
metadata = [{ key = "cat", in = ["funny", "satire"] }]
[[routing.rules]]
to = "humor"
document = { regex = "(?i)\\bjaja\\b" }
"#;

    fn rec<'a>(id: &'a str, e: &'a [f32], doc: Option<&'a str>) -> RecordRef<'a> {
        RecordRef { id, embedding: e, document: doc, uri: None, metadata: None }
    }

    #[test]
    fn routing_first_match_wins() {
        let plan = compile(SPEC).unwrap();
        let m = |s: &str| parse_metadata(s).unwrap();
        let r = rec("a", &[0.0, 0.0], Some("hola"));
        assert_eq!(route(&plan, "old_Humor_jokes", &r, None).0, Route::Target(0));
        assert_eq!(route(&plan, "misc", &r, Some(&m(r#"{"score": 11}"#))).0, Route::Reject);
        assert_eq!(route(&plan, "misc", &r, Some(&m(r#"{"cat": "satire"}"#))).0, Route::Target(0));
        let j = rec("a", &[0.0, 0.0], Some("eso, JAJA"));
        assert_eq!(route(&plan, "misc", &j, None).0, Route::Target(0));
        assert_eq!(route(&plan, "misc", &r, Some(&m(r#"{"cat": "news"}"#))), (Route::Target(1), None));
    }

    #[test]
    fn mapping_fallbacks_templates_casts_defaults() {
        let plan = compile(SPEC).unwrap();
        let src = parse_metadata(r#"{"source": "book", "score": "0.75", "lang": "es", "extra": 3}"#).unwrap();
        let (text, reasons) = map_record(&plan.targets[0], "c", &rec("id1", &[1.0, 2.0], Some("doc")), Some(&src));
        assert!(reasons.is_empty(), "{reasons:?}");
        assert_eq!(
            text.unwrap(),
            r#"{"chars":3,"extra":3,"kind":"demo","lang":"es","score":0.75,"source":"book","uri":"if://citation/book/id1"}"#
        );
        let src = parse_metadata(r#"{"src": "tv"}"#).unwrap();
        let (text, reasons) = map_record(&plan.targets[0], "c", &rec("x", &[1.0, 2.0], Some("d")), Some(&src));
        assert!(reasons.is_empty());
        assert!(text.unwrap().contains(r#""score":0.5"#));
    }

    #[test]
    fn every_reason_is_reported() {
        let plan = compile(SPEC).unwrap();
        let src = parse_metadata(r##"{"score": 1.5, "lang": "fr", "#tag": 1}"##).unwrap();
        let (_, reasons) = map_record(&plan.targets[0], "c", &rec("x", &[1.0, f32::NAN, 3.0], Some(" ")), Some(&src));
        let rules: Vec<&str> = reasons.iter().map(|r| r.rule).collect();
        assert_eq!(
            rules,
            [
                "field.allowed",
                "field.range",
                "field.missing",
                "chroma.key_reserved",
                "embedding.dimension",
                "embedding.non_finite",
                "document.empty"
            ]
        );
        assert_eq!(reasons[1].field.as_deref(), Some("score"));
        let src = parse_metadata(r#"{"source": "b", "score": "high"}"#).unwrap();
        let (_, reasons) = map_record(&plan.targets[0], "c", &rec("x", &[1.0, 2.0], Some("d")), Some(&src));
        assert_eq!(reasons.iter().map(|r| r.rule).collect::<Vec<_>>(), ["field.cast"]);
    }

    #[test]
    fn a_template_over_an_array_rejects_the_record_instead_of_dropping_the_field() {
        let plan = compile(SPEC).unwrap();
        for meta in [r#"{"source": ["a", "b"]}"#, r#"{"source": {"k": 1}}"#] {
            let src = parse_metadata(meta).unwrap();
            let (_, reasons) = map_record(&plan.targets[0], "c", &rec("x", &[1.0, 2.0], Some("d")), Some(&src));
            let t = reasons.iter().find(|r| r.rule == "field.template").unwrap_or_else(|| panic!("{reasons:?}"));
            assert_eq!(t.field.as_deref(), Some("uri"));
            assert!(t.message.starts_with("template placeholder {source} holds "), "{}", t.message);
        }
    }
}
