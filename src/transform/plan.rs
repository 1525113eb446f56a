//! Compiles a spec into a [`Plan`]: targets, routing rules, field mappings and checks, with every
//! error in the file collected (each with its key path) before any data is read.

use std::collections::{BTreeMap, HashSet};

use globset::{Glob, GlobMatcher};
use regex::Regex;
use serde_json::Value;

use super::spec::*;
use super::template::Template;
use crate::limits::Limits;
use crate::record::Metadata;

mod consistency;

pub const REJECT: &str = "reject";

#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<TargetPlan>,
    pub rules: Vec<RulePlan>,
    pub default: Route,
    pub min_pass_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Target(usize),
    Reject,
}

#[derive(Debug)]
pub struct TargetPlan {
    pub name: String,
    pub metadata: Option<Metadata>,
    pub space: String,
    /// The collection configuration (`{"hnsw": {...}}`) as 1.x takes it.
    pub configuration: Value,
    pub ids: Option<Template>,
    pub keep_unmapped: bool,
    pub fields: Vec<FieldPlan>,
    /// Source keys read by some field (never copied when unmapped keys are kept).
    pub consumed: HashSet<String>,
    pub check: CheckPlan,
}

#[derive(Debug, Clone)]
pub struct CheckPlan {
    pub dimensions: Option<Vec<usize>>,
    pub finite_embeddings: bool,
    pub non_empty_document: bool,
    pub max_document_length: Option<usize>,
    /// Metadata arrays are accepted from Chroma 1.5 on.
    pub arrays_allowed: bool,
    /// Target quotas every output record must fit (`validate.limits`).
    pub limits: Option<Limits>,
    /// Documents over `limits.max_document_bytes` are cut to fit rather than rejected.
    pub trim_documents: bool,
}

#[derive(Debug, Clone)]
pub enum FieldSource {
    From(Vec<String>),
    Const(Value),
    Template(Template),
    Derive(Derive),
}

#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub name: String,
    pub source: FieldSource,
    pub cast: Option<Kind>,
    pub default: Option<Value>,
    pub required: bool,
    pub kind: Option<Kind>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Option<Vec<Value>>,
    pub regex: Option<Regex>,
    pub max_length: Option<usize>,
    pub non_empty: bool,
}

#[derive(Debug)]
pub struct RulePlan {
    pub label: String,
    pub to: Route,
    pub collection: Option<TextMatch>,
    pub metadata: Vec<Predicate>,
    pub document: Option<TextMatch>,
}

#[derive(Debug, Default)]
pub struct TextMatch {
    pub equals: Vec<String>,
    pub globs: Vec<GlobMatcher>,
    /// Lowercased keywords; any one must occur.
    pub contains: Vec<String>,
    pub regex: Option<Regex>,
}

#[derive(Debug)]
pub struct Predicate {
    pub key: String,
    pub eq: Option<Value>,
    pub ne: Option<Value>,
    pub one_of: Option<Vec<Value>>,
    pub exists: Option<bool>,
    pub gt: Option<f64>,
    pub ge: Option<f64>,
    pub lt: Option<f64>,
    pub le: Option<f64>,
    pub regex: Option<Regex>,
}

/// Compiles spec text; on failure returns every problem found.
pub fn compile(text: &str) -> Result<Plan, Vec<SpecError>> {
    let mut e = Errors::default();
    let plan = compile_into(text, &mut e);
    match plan {
        Some(p) if e.0.is_empty() => Ok(p),
        _ => Err(e.0),
    }
}

fn compile_into(text: &str, e: &mut Errors) -> Option<Plan> {
    let root = parse_toml(text, e)?;
    let file: SpecFile = de(&root, "", e).unwrap_or_default();
    match file.version {
        None => e.push("version", format!("missing; write `version = {SPEC_VERSION}` at the top")),
        Some(v) if v != i64::from(SPEC_VERSION) => {
            e.push("version", format!("{v} is not supported (this chroma-snap reads version {SPEC_VERSION})"))
        }
        Some(_) => {}
    }
    let gate: GateSpec = file.gate.as_ref().and_then(|g| de(g, "gate", e)).unwrap_or_default();
    let min_pass_rate = gate.min_pass_rate.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_pass_rate) {
        e.push("gate.min_pass_rate", format!("{min_pass_rate} is not between 0.0 and 1.0"));
    }
    let defaults: TargetSpec = file.defaults.as_ref().and_then(|d| de(d, "defaults", e)).unwrap_or_default();
    let def_check: ValidateSpec =
        defaults.validate.as_ref().and_then(|v| de(v, "defaults.validate", e)).unwrap_or_default();
    let def_fields = defaults.fields.clone().unwrap_or_default();

    let specs = file.targets.unwrap_or_default();
    if specs.is_empty() {
        e.push("targets", "no target collections: add at least one [targets.NAME] table");
    }
    let mut targets = Vec::new();
    for (name, v) in &specs {
        let path = join("targets", name);
        if name == REJECT {
            e.push(&path, "\"reject\" is reserved for routing and cannot name a target");
        }
        if let Err(why) = check_collection_name(name) {
            e.push(&path, why);
        }
        let t: TargetSpec = de(v, &path, e).unwrap_or_default();
        targets.push(compile_target(name, &path, t, &defaults, &def_check, &def_fields, e));
    }
    let names: Vec<&str> = specs.keys().map(String::as_str).collect();
    let routing: RoutingSpec = file.routing.as_ref().and_then(|r| de(r, "routing", e)).unwrap_or_default();
    let default = match routing.default.as_deref() {
        None => Route::Reject,
        Some(d) => resolve_route(d, &names, "routing.default", e),
    };
    let mut rules = Vec::new();
    let raw_rules = routing.rules.unwrap_or_default();
    if raw_rules.is_empty() && default == Route::Reject && !specs.is_empty() {
        e.push("routing", "no rules and no default: every record would be rejected");
    }
    for (i, v) in raw_rules.iter().enumerate() {
        let path = format!("routing.rules[{i}]");
        let Some(r) = de::<RuleSpec>(v, &path, e) else { continue };
        rules.push(compile_rule(r, i, &path, &names, e));
    }
    Some(Plan { targets, rules, default, min_pass_rate })
}

fn check_collection_name(name: &str) -> Result<(), String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let ok_ends = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=512).contains(&name.len()) || !ok_chars || !ok_ends || name.contains("..") {
        return Err("not a valid Chroma collection name (3–512 characters of [a-zA-Z0-9._-], starting and \
                    ending with a letter or digit, no '..')"
            .into());
    }
    Ok(())
}

fn resolve_route(to: &str, names: &[&str], path: &str, e: &mut Errors) -> Route {
    if to == REJECT {
        return Route::Reject;
    }
    match names.iter().position(|n| *n == to) {
        Some(i) => Route::Target(i),
        None => {
            e.push(path, format!("unknown target {to:?} (targets: {}; or \"reject\")", names.join(", ")));
            Route::Reject
        }
    }
}

fn compile_target(
    name: &str,
    path: &str,
    t: TargetSpec,
    d: &TargetSpec,
    def_check: &ValidateSpec,
    def_fields: &BTreeMap<String, toml::Value>,
    e: &mut Errors,
) -> TargetPlan {
    let space = t.space.or_else(|| d.space.clone()).unwrap_or_else(|| "l2".into());
    if !matches!(space.as_str(), "l2" | "cosine" | "ip") {
        e.push(join(path, "space"), format!("{space:?} is not a distance space (l2, cosine or ip)"));
    }
    let hnsw = t.hnsw.or_else(|| d.hnsw.clone()).unwrap_or_default();
    let mut conf = serde_json::Map::new();
    conf.insert("space".into(), Value::from(space.clone()));
    let h = serde_json::to_value(HnswOut::from(&hnsw)).expect("hnsw serialises");
    conf.extend(h.as_object().cloned().unwrap_or_default());
    let configuration = serde_json::json!({ "hnsw": conf });
    let ids = match t.ids.as_deref().or(d.ids.as_deref()).unwrap_or("keep") {
        "keep" => None,
        tpl => compile_template(tpl, &join(path, "ids"), e, &["n", "id", "target", "collection"], false),
    };
    let check_spec: ValidateSpec =
        t.validate.as_ref().and_then(|v| de(v, &join(path, "validate"), e)).unwrap_or_default();
    let check = compile_check(&check_spec, def_check, &join(path, "validate"), e);
    let metadata = t.metadata.or_else(|| d.metadata.clone()).map(|m| {
        let mut out = Metadata::new();
        for (k, v) in m {
            out.insert(k, to_json(&v));
        }
        out
    });
    let mut merged = def_fields.clone();
    merged.extend(t.fields.unwrap_or_default());
    let field_names: HashSet<&str> = merged.keys().map(String::as_str).collect();
    let mut fields = Vec::new();
    let mut consumed = HashSet::new();
    for (fname, v) in &merged {
        let fpath = join(&join(path, "fields"), fname);
        let Some(f) = de::<FieldSpec>(v, &fpath, e) else { continue };
        if let Some(fp) = compile_field(fname, &fpath, f, &field_names, e) {
            if let FieldSource::From(keys) = &fp.source {
                consumed.extend(keys.iter().cloned());
            }
            consistency::check_field(&fp, &fpath, e);
            fields.push(fp);
        }
    }
    consistency::check_template_reads(&fields, path, e);
    // Fields a template reads are computed first.
    fields.sort_by_key(|f| matches!(f.source, FieldSource::Template(_)));
    let keep_unmapped = t.unmapped.or(d.unmapped).unwrap_or(Unmapped::Drop) == Unmapped::Keep;
    consistency::check_limits(name, metadata.as_ref(), &check, &join(path, "validate"), e);
    TargetPlan { name: name.to_owned(), metadata, space, configuration, ids, keep_unmapped, fields, consumed, check }
}

#[derive(serde::Serialize)]
struct HnswOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    ef_construction: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ef_search: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_neighbors: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resize_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_threshold: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<u32>,
}

impl From<&HnswSpec> for HnswOut {
    fn from(h: &HnswSpec) -> Self {
        Self {
            ef_construction: h.ef_construction,
            ef_search: h.ef_search,
            max_neighbors: h.max_neighbors,
            resize_factor: h.resize_factor,
            sync_threshold: h.sync_threshold,
            batch_size: h.batch_size,
        }
    }
}

fn compile_check(t: &ValidateSpec, d: &ValidateSpec, path: &str, e: &mut Errors) -> CheckPlan {
    let dimensions = t.dimensions.clone().or_else(|| d.dimensions.clone());
    if let Some(dims) = &dimensions
        && (dims.is_empty() || dims.contains(&0))
    {
        e.push(join(path, "dimensions"), "must list at least one positive dimension");
    }
    let version = t.chroma_version.clone().or_else(|| d.chroma_version.clone()).unwrap_or_else(|| "1.5".into());
    let arrays_allowed = match parse_version(&version) {
        Some(v) => v >= (1, 5),
        None => {
            e.push(join(path, "chroma_version"), format!("{version:?} is not a version like \"1.5\" or \"0.5\""));
            true
        }
    };
    let limits = match t.limits.as_ref().or(d.limits.as_ref()) {
        None => None,
        Some(toml::Value::String(s)) if s == "cloud" => Some(Limits::cloud()),
        Some(toml::Value::String(s)) if s == "none" => None,
        Some(v @ toml::Value::Table(_)) => {
            let lpath = join(path, "limits");
            de::<Limits>(v, &lpath, e).map(|l| Limits { origin: "inline".into(), ..l })
        }
        Some(other) => {
            e.push(join(path, "limits"), format!("{other} is not \"cloud\", \"none\" or a table of limits"));
            None
        }
    };
    let trim_documents = t.trim_documents.or(d.trim_documents).unwrap_or(false);
    if trim_documents && limits.as_ref().is_none_or(|l| l.max_document_bytes.is_none()) {
        e.push(join(path, "trim_documents"), "needs limits with max_document_bytes (e.g. limits = \"cloud\")");
    }
    CheckPlan {
        dimensions,
        finite_embeddings: t.finite_embeddings.or(d.finite_embeddings).unwrap_or(true),
        non_empty_document: t.non_empty_document.or(d.non_empty_document).unwrap_or(false),
        max_document_length: t.max_document_length.or(d.max_document_length),
        arrays_allowed,
        limits,
        trim_documents,
    }
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

fn compile_template(text: &str, path: &str, e: &mut Errors, known: &[&str], allow_fields: bool) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => {
            for n in t.names() {
                let ok = known.contains(&n) || n.starts_with("meta.") || allow_fields;
                if !ok {
                    e.push(path, format!("unknown placeholder {{{n}}} (known: {}, meta.KEY)", known.join(", ")));
                }
            }
            Some(t)
        }
        Err(why) => {
            e.push(path, why);
            None
        }
    }
}

fn compile_field(
    name: &str,
    path: &str,
    f: FieldSpec,
    field_names: &HashSet<&str>,
    e: &mut Errors,
) -> Option<FieldPlan> {
    if let Err(why) = super::checks::check_key(name) {
        e.push(path, format!("field name {why}"));
    }
    let given = [f.from.is_some(), f.value.is_some(), f.template.is_some(), f.derive.is_some()];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 => {
            e.push(path, "needs one of `from`, `value`, `template` or `derive`");
            return None;
        }
        _ => {
            e.push(path, "give only one of `from`, `value`, `template` or `derive`");
            return None;
        }
    }
    let source = if let Some(from) = &f.from {
        let keys = from.to_vec();
        if keys.is_empty() || keys.iter().any(String::is_empty) {
            e.push(join(path, "from"), "needs at least one non-empty key");
        }
        FieldSource::From(keys)
    } else if let Some(v) = &f.value {
        FieldSource::Const(to_json(v))
    } else if let Some(t) = &f.template {
        const PROPS: [&str; 3] = ["id", "target", "collection"];
        let tpath = join(path, "template");
        let t = compile_template(t, &tpath, e, &PROPS, true)?;
        for n in t.names() {
            if !PROPS.contains(&n) && !n.starts_with("meta.") && !field_names.contains(n) {
                e.push(&tpath, format!("{{{n}}} is neither a field of this target, a record property (id, target, collection) nor meta.KEY"));
            }
        }
        FieldSource::Template(t)
    } else {
        FieldSource::Derive(f.derive.expect("one source is set"))
    };
    let regex = f.regex.as_ref().and_then(|r| match Regex::new(r) {
        Ok(re) => Some(re),
        Err(err) => {
            e.push(join(path, "regex"), format!("bad regex: {}", err.to_string().replace('\n', " ")));
            None
        }
    });
    if let (Some(lo), Some(hi)) = (f.min, f.max)
        && lo > hi
    {
        e.push(join(path, "min"), format!("min {lo} is above max {hi}"));
    }
    Some(FieldPlan {
        name: name.to_owned(),
        source,
        cast: f.cast,
        default: f.default.as_ref().map(to_json),
        required: f.required.unwrap_or(false),
        kind: f.kind,
        min: f.min,
        max: f.max,
        allowed: f.allowed.as_ref().map(|a| a.iter().map(to_json).collect()),
        regex,
        max_length: f.max_length,
        non_empty: f.non_empty.unwrap_or(false),
    })
}

fn compile_rule(r: RuleSpec, i: usize, path: &str, names: &[&str], e: &mut Errors) -> RulePlan {
    let to = match r.to.as_deref() {
        Some(t) => resolve_route(t, names, &join(path, "to"), e),
        None => {
            e.push(path, "needs `to` (a target name or \"reject\")");
            Route::Reject
        }
    };
    let collection = r.collection.as_ref().map(|m| compile_match(m, &join(path, "collection"), e));
    let document = r.document.as_ref().map(|m| compile_match(m, &join(path, "document"), e));
    let mut metadata = Vec::new();
    for (j, v) in r.metadata.unwrap_or_default().iter().enumerate() {
        let ppath = format!("{}[{j}]", join(path, "metadata"));
        if let Some(p) = de::<PredicateSpec>(v, &ppath, e) {
            metadata.push(compile_predicate(p, &ppath, e));
        }
    }
    if collection.is_none() && document.is_none() && metadata.is_empty() {
        e.push(path, "has no condition (collection, metadata or document); use routing.default instead");
    }
    RulePlan { label: r.name.unwrap_or_else(|| format!("rule {i}")), to, collection, metadata, document }
}

fn compile_regex(r: &str, path: &str, e: &mut Errors) -> Option<Regex> {
    Regex::new(r).map_err(|err| e.push(path, format!("bad regex: {}", err.to_string().replace('\n', " ")))).ok()
}

fn compile_match(m: &TextMatchSpec, path: &str, e: &mut Errors) -> TextMatch {
    let mut out = TextMatch {
        equals: m.equals.as_ref().map(OneOrMany::to_vec).unwrap_or_default(),
        contains: m
            .contains
            .as_ref()
            .map(|c| c.to_vec().iter().map(|s| s.to_lowercase()).collect())
            .unwrap_or_default(),
        ..TextMatch::default()
    };
    for g in m.glob.as_ref().map(OneOrMany::to_vec).unwrap_or_default() {
        match Glob::new(&g) {
            Ok(g) => out.globs.push(g.compile_matcher()),
            Err(err) => e.push(join(path, "glob"), format!("bad glob {g:?}: {err}")),
        }
    }
    out.regex = m.regex.as_ref().and_then(|r| compile_regex(r, &join(path, "regex"), e));
    if out.equals.is_empty() && out.globs.is_empty() && out.contains.is_empty() && out.regex.is_none() {
        e.push(path, "needs one of equals, glob, contains or regex");
    }
    out
}

fn compile_predicate(p: PredicateSpec, path: &str, e: &mut Errors) -> Predicate {
    let key = p.key.clone().unwrap_or_else(|| {
        e.push(path, "needs `key`");
        String::new()
    });
    let regex = p.regex.as_ref().and_then(|r| compile_regex(r, &join(path, "regex"), e));
    let ops = [p.eq.is_some(), p.ne.is_some(), p.one_of.is_some(), p.exists.is_some(), p.gt.is_some()]
        .into_iter()
        .chain([p.ge.is_some(), p.lt.is_some(), p.le.is_some(), p.regex.is_some()]);
    if !ops.into_iter().any(|x| x) {
        e.push(path, "needs an operator: eq, ne, in, exists, gt, ge, lt, le or regex");
    }
    Predicate {
        key,
        eq: p.eq.as_ref().map(to_json),
        ne: p.ne.as_ref().map(to_json),
        one_of: p.one_of.as_ref().map(|v| v.iter().map(to_json).collect()),
        exists: p.exists,
        gt: p.gt,
        ge: p.ge,
        lt: p.lt,
        le: p.le,
        regex,
    }
}

/// A TOML value as a metadata (JSON) value; datetimes become their text.
pub fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::from(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::from(*b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: &str) -> Vec<String> {
        compile(spec).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let errs = errors(
            r#"
version = 2
[defaults]
space = "euclid"
[defaults.validate]
dimensions = []
chroma_version = "one"
[targets.t1]
ids = "{target}_{nope}"
[targets.t1.fields.a]
from = "x"
value = 1
[targets.t1.fields.b]
template = "{missing_field}"
[targets.t1.fields."$bad"]
value = 1
[targets.reject]
[routing]
default = "elsewhere"
[[routing.rules]]
to = "t1"
[[routing.rules]]
to = "t1"
collection = { glob = "[" }
metadata = [{ key = "k" }, { key = "k", regex = "(" }]
"#,
        );
        let want = [
            "version: 2 is not supported",
            "targets.t1.space: \"euclid\" is not a distance space",
            "targets.t1.ids: unknown placeholder {nope}",
            "targets.t1.validate.dimensions: must list at least one",
            "targets.t1.validate.chroma_version:",
            "targets.t1.fields.\"$bad\": field name",
            "targets.t1.fields.a: give only one of",
            "targets.t1.fields.b.template: {missing_field} is neither",
            "targets.reject: \"reject\" is reserved",
            "routing.default: unknown target \"elsewhere\"",
            "routing.rules[0]: has no condition",
            "routing.rules[1].collection.glob: bad glob",
            "routing.rules[1].metadata[0]: needs an operator",
            "routing.rules[1].metadata[1].regex: bad regex",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "missing {w:?} in {errs:#?}");
        }
    }

    #[test]
    fn defaults_merge_into_targets() {
        let plan = compile(
            r#"
version = 1
[defaults]
space = "cosine"
unmapped = "keep"
hnsw = { max_neighbors = 32 }
[defaults.fields.a]
from = "old_a"
[targets.one]
space = "ip"
[targets.one.fields.a]
value = "override"
[targets.two]
ids = "{target}_{n:06}"
[routing]
default = "two"
"#,
        )
        .unwrap();
        assert_eq!(plan.targets[0].space, "ip");
        assert!(matches!(plan.targets[0].fields[0].source, FieldSource::Const(_)));
        assert!(plan.targets[0].consumed.is_empty());
        assert_eq!(plan.targets[1].configuration["hnsw"]["max_neighbors"], 32);
        assert_eq!(plan.targets[1].configuration["hnsw"]["space"], "cosine");
        assert!(plan.targets[1].keep_unmapped && plan.targets[1].consumed.contains("old_a"));
        assert!(plan.targets[1].ids.is_some());
        assert_eq!(plan.default, Route::Target(1));
    }

    fn field_errors(fields: &str) -> Vec<String> {
        errors(&format!("version = 1\n[targets.tgt.fields]\n{fields}\n[routing]\ndefault = \"tgt\"\n"))
    }

    #[test]
    fn contradictory_fields_are_refused_with_their_paths() {
        let cases = [
            (
                r#"a = { from = "x", cast = "int", type = "string" }"#,
                "targets.tgt.fields.a.type: \"string\" contradicts cast",
            ),
            (r#"a = { from = "x", allowed = [] }"#, "targets.tgt.fields.a.allowed: an empty list allows no value"),
            (r#"a = { from = "x", min = 2, max = 1 }"#, "targets.tgt.fields.a.min: min 2 is above max 1"),
            (r#"a = { from = "x", type = "string", min = 1 }"#, "targets.tgt.fields.a.min: min needs numbers"),
            (r#"a = { from = "x", type = "int", regex = "^a" }"#, "targets.tgt.fields.a.regex: regex needs strings"),
            (r#"a = { from = "x", cast = "float", non_empty = true }"#, "targets.tgt.fields.a.non_empty:"),
            (r#"a = { from = "x", non_empty = true, max_length = 0 }"#, "targets.tgt.fields.a.max_length: 0 allows"),
            (r#"a = { from = "x", required = true, default = 1 }"#, "targets.tgt.fields.a.required: has no effect"),
            (
                r#"a = { from = "x", type = "int", allowed = [1, "two"] }"#,
                "targets.tgt.fields.a.allowed: \"two\" can never",
            ),
            (r#"a = { from = "x", cast = "float", allowed = [1] }"#, "targets.tgt.fields.a.allowed: 1 can never"),
            (r#"a = { from = "x", default = "z", allowed = ["x", "y"] }"#, "targets.tgt.fields.a.default: \"z\" fails"),
            (r#"a = { from = "x", cast = "int", default = "many" }"#, "targets.tgt.fields.a.default: \"many\" fails"),
            (r#"a = { from = "x", default = 5, min = 0, max = 1 }"#, "targets.tgt.fields.a.default: 5 fails"),
            (r#"a = { value = "x", type = "int" }"#, "targets.tgt.fields.a.type: \"int\" contradicts `value`"),
            (r#"a = { template = "{id}", type = "int" }"#, "targets.tgt.fields.a.type: \"int\" contradicts `template`"),
            (r#"a = { derive = "embedding_dim", regex = "x" }"#, "targets.tgt.fields.a.regex: regex needs strings"),
            (r#"a = { value = 3, max = 2 }"#, "targets.tgt.fields.a.value: 3 fails"),
        ];
        for (field, want) in cases {
            let errs = field_errors(field);
            assert!(errs.iter().any(|e| e.starts_with(want)), "{field}: missing {want:?} in {errs:#?}");
        }
        // Consistent fields pass.
        let ok = [
            r#"a = { from = "x", cast = "int", type = "int", min = 0, default = 3, allowed = [1, 3] }"#,
            r#"a = { from = "x", cast = "bool", default = false }"#,
            r#"a = { from = "x", default = "medium", allowed = ["high", "medium"] }"#,
            r#"a = { derive = "document_chars", type = "int", max = 10 }"#,
        ];
        for field in ok {
            assert_eq!(field_errors(field), Vec::<String>::new(), "{field}");
        }
    }

    #[test]
    fn templates_cannot_read_templates_or_constant_arrays() {
        let errs = field_errors(
            r#"a = { template = "{b}-{id}" }
b = { template = "{c}" }
c = { value = ["x", "y"] }
d = { template = "{d}" }
e = { template = "{f}/{meta.k}" }
f = { from = "k" }"#,
        );
        let want = [
            "targets.tgt.fields.a.template: {b} is a template field",
            "targets.tgt.fields.b.template: {c} is the constant [\"x\",\"y\"]",
            "targets.tgt.fields.d.template: {d} is a template field",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "missing {w:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), 3, "{errs:#?}");
    }

    #[test]
    fn limits_are_compiled_and_checked_against_the_targets_own_settings() {
        let plan = compile(
            "version = 1\n[defaults.validate]\nlimits = \"cloud\"\n[targets.tgt]\n[targets.own.validate]\n\
             limits = { max_document_bytes = 10 }\ntrim_documents = true\n[routing]\ndefault = \"tgt\"\n",
        )
        .unwrap();
        let (own, tgt) = (&plan.targets[0].check, &plan.targets[1].check); // targets in name order
        assert_eq!(own.limits.as_ref().unwrap().max_document_bytes, Some(10));
        assert!(own.trim_documents);
        assert_eq!(tgt.limits.as_ref().unwrap().max_records_per_write, Some(300), "inherited");
        assert!(!tgt.trim_documents);
        let errs = errors(
            r#"
version = 1
[targets.long_name]
metadata = { owner = "somebody", a = true, b = false }
[targets.long_name.validate]
dimensions = [5000, 8192]
limits = { max_collection_name_bytes = 4, max_collection_metadata_keys = 2, max_collection_metadata_value_bytes = 3, max_embedding_dimensions = 4096 }
[targets.typo.validate]
limits = { max_id_byte = 1 }
[targets.wrong.validate]
limits = 3
[targets.trim.validate]
trim_documents = true
limits = { max_id_bytes = 10 }
[routing]
default = "long_name"
"#,
        );
        let want = [
            "targets.long_name.validate.limits: target \"long_name\": collection name is 9 bytes, over max_collection_name_bytes = 4",
            "targets.long_name.validate.limits: target \"long_name\": collection metadata has 3 keys",
            "targets.long_name.validate.limits: target \"long_name\": collection metadata key \"owner\": the value is 8 bytes",
            "targets.long_name.validate.dimensions: [5000, 8192]: every one is over max_embedding_dimensions = 4096",
            "targets.typo.validate.limits.max_id_byte: unknown field",
            "targets.wrong.validate.limits: 3 is not \"cloud\"",
            "targets.trim.validate.trim_documents: needs limits with max_document_bytes",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "missing {w:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
    }
}
