//! Contradictions a spec can hold that would reject (or silently drop from) every record: checked
//! when the spec is compiled, each reported with its key path.

use serde_json::Value;

use super::{CheckPlan, FieldPlan, FieldSource};
use crate::record::Metadata;
use crate::transform::checks::{self, kind_name};
use crate::transform::spec::{Derive, Errors, Kind, join};

/// The type a source always gives when it gives a value, if the spec alone says.
fn source_kind(s: &FieldSource) -> Option<Kind> {
    match s {
        FieldSource::From(_) => None,
        FieldSource::Template(_) => Some(Kind::String),
        FieldSource::Derive(Derive::DocumentChars | Derive::EmbeddingDim) => Some(Kind::Int),
        FieldSource::Derive(_) => Some(Kind::String),
        FieldSource::Const(v) => value_kind(v),
    }
}

fn value_kind(v: &Value) -> Option<Kind> {
    match v {
        Value::String(_) => Some(Kind::String),
        Value::Bool(_) => Some(Kind::Bool),
        Value::Number(n) if n.is_f64() => Some(Kind::Float),
        Value::Number(_) => Some(Kind::Int),
        _ => None,
    }
}

fn source_name(s: &FieldSource) -> &'static str {
    match s {
        FieldSource::From(_) => "from",
        FieldSource::Const(_) => "value",
        FieldSource::Template(_) => "template",
        FieldSource::Derive(_) => "derive",
    }
}

/// Checks one compiled field against itself: type against cast and source, checks that can
/// never hold for its values, an empty `allowed`, defaults and constants that fail the field.
pub(super) fn check_field(f: &FieldPlan, path: &str, e: &mut Errors) {
    let from_source = source_kind(&f.source);
    match (f.kind, f.cast, from_source) {
        (Some(k), Some(c), _) if k != c => e.push(
            join(path, "type"),
            format!(
                "{:?} contradicts cast = {:?}: a cast value is always a {}",
                kind_name(k),
                kind_name(c),
                kind_name(c)
            ),
        ),
        (Some(k), None, Some(s)) if k != s => e.push(
            join(path, "type"),
            format!(
                "{:?} contradicts `{}`, which always gives a {}",
                kind_name(k),
                source_name(&f.source),
                kind_name(s)
            ),
        ),
        _ => {}
    }
    // The type of every value that reaches the checks, when the spec says.
    let vk = f.kind.or(f.cast).or(from_source);
    let not = |what: &str, needs: &str| {
        format!("{what} needs {needs}, but this field's values are {}s", kind_name(vk.expect("known")))
    };
    let textual = vk.is_some_and(|k| matches!(k, Kind::String | Kind::Bool));
    for (key, bound) in [("min", f.min), ("max", f.max)] {
        match bound {
            Some(b) if !b.is_finite() => e.push(join(path, key), format!("{b} is not a finite number")),
            Some(_) if textual => e.push(join(path, key), not(key, "numbers")),
            _ => {}
        }
    }
    let scalar = vk.is_some_and(|k| k != Kind::String);
    if f.regex.is_some() && scalar {
        e.push(join(path, "regex"), not("regex", "strings"));
    }
    if f.max_length.is_some() && scalar {
        e.push(join(path, "max_length"), not("max_length", "strings or arrays"));
    }
    if f.non_empty && scalar {
        e.push(join(path, "non_empty"), not("non_empty", "strings"));
    }
    if f.non_empty && f.max_length == Some(0) {
        e.push(join(path, "max_length"), "0 allows only empty values, which non_empty = true refuses");
    }
    if f.required && f.default.is_some() {
        e.push(join(path, "required"), "has no effect with a default (the default fills every missing value)");
    }
    check_allowed(f, vk, path, e);
    if let Some(d) = &f.default {
        check_value(f, d, &join(path, "default"), e);
    }
    if let FieldSource::Const(v) = &f.source {
        check_value(f, v, &join(path, "value"), e);
    }
}

/// `allowed` must not be empty, and each entry must be a value the field's other checks pass.
fn check_allowed(f: &FieldPlan, vk: Option<Kind>, path: &str, e: &mut Errors) {
    let Some(allowed) = &f.allowed else { return };
    let apath = join(path, "allowed");
    if allowed.is_empty() {
        e.push(apath, "an empty list allows no value: every record would be rejected");
        return;
    }
    let probe = FieldPlan { kind: vk, allowed: None, ..f.clone() };
    for a in allowed {
        let mut why = Vec::new();
        checks::field(&probe, a, &mut why);
        if !why.is_empty() {
            let why: Vec<String> = why.into_iter().map(|r| r.message).collect();
            e.push(&apath, format!("{a} can never be written: {}", why.join("; ")));
        }
    }
}

/// A default or constant goes through the field's cast and checks like any value: one that
/// fails them would reject every record it reaches.
fn check_value(f: &FieldPlan, v: &Value, path: &str, e: &mut Errors) {
    let cast = match f.cast {
        Some(k) => checks::cast(v, k),
        None => Ok(v.clone()),
    };
    let mut why = Vec::new();
    match cast {
        Ok(v) => checks::field(f, &v, &mut why),
        Err(msg) => why.push(checks::Reason::new("field.cast", None, msg)),
    }
    if !why.is_empty() {
        let why: Vec<String> = why.into_iter().map(|r| r.message).collect();
        e.push(path, format!("{v} fails the field's own checks: {}", why.join("; ")));
    }
}

/// A template reads fields computed before it: not another template (templates run last, so
/// one would read nothing), and not a constant array (a template takes text, numbers, bools).
pub(super) fn check_template_reads(fields: &[FieldPlan], path: &str, e: &mut Errors) {
    for f in fields {
        let FieldSource::Template(t) = &f.source else { continue };
        let tpath = join(&join(&join(path, "fields"), &f.name), "template");
        for n in t.names() {
            let Some(other) = fields.iter().find(|o| o.name == n) else { continue };
            match &other.source {
                FieldSource::Template(_) => e.push(
                    &tpath,
                    format!("{{{n}}} is a template field; a template reads only fields given by from, value or derive"),
                ),
                FieldSource::Const(v) if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                    e.push(&tpath, format!("{{{n}}} is the constant {v}; a template takes strings, numbers and bools"))
                }
                _ => {}
            }
        }
    }
}

/// What a target's own settings say against its `validate.limits`: its name and collection
/// metadata over a quota, or allowed dimensions all over `max_embedding_dimensions`, would make
/// the output unloadable whatever the records.
pub(super) fn check_limits(name: &str, metadata: Option<&Metadata>, c: &CheckPlan, path: &str, e: &mut Errors) {
    let Some(l) = &c.limits else { return };
    let mut found = Vec::new();
    l.collection(name, metadata, 0, &mut found);
    for b in found {
        e.push(join(path, "limits"), format!("target {name:?}: {}", b.message));
    }
    if let (Some(max), Some(dims)) = (l.max_embedding_dimensions, &c.dimensions)
        && dims.iter().all(|d| *d > max)
    {
        e.push(join(path, "dimensions"), format!("{dims:?}: every one is over max_embedding_dimensions = {max}"));
    }
}
