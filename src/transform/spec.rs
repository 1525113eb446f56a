//! The transform spec as written in TOML: serde structs, parsed piece by piece so that every
//! mistake in a file is reported at once, each with its key path (see docs/transform-spec.md).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The spec format this build understands.
pub const SPEC_VERSION: u32 = 1;

/// One problem in a spec, at a key path such as `targets.humor.fields.score.min`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Collects errors while a spec is read and compiled.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<SpecError>);

impl Errors {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecError { path: path.into(), message: message.into() });
    }
}

/// The top level of a spec file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub version: Option<i64>,
    pub gate: Option<toml::Value>,
    pub defaults: Option<toml::Value>,
    pub targets: Option<BTreeMap<String, toml::Value>>,
    pub routing: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    /// Share of input records that must be written, 0.0–1.0.
    pub min_pass_rate: Option<f64>,
}

/// A target collection, or (under `[defaults]`) what every target inherits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Collection metadata to create the collection with.
    pub metadata: Option<toml::Table>,
    /// Distance space: `l2`, `cosine` or `ip`.
    pub space: Option<String>,
    pub hnsw: Option<HnswSpec>,
    /// `"keep"` or an id template such as `"{target}_{n:06}"`.
    pub ids: Option<String>,
    /// What happens to source metadata keys no field reads: `keep` or `drop`.
    pub unmapped: Option<Unmapped>,
    pub validate: Option<toml::Value>,
    pub fields: Option<BTreeMap<String, toml::Value>>,
}

#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HnswSpec {
    pub ef_construction: Option<u32>,
    pub ef_search: Option<u32>,
    pub max_neighbors: Option<u32>,
    pub resize_factor: Option<f64>,
    pub sync_threshold: Option<u32>,
    pub batch_size: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    Keep,
    Drop,
}

/// Record-level validation of one target.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSpec {
    /// Allowed embedding dimensions; the first record written fixes the collection's one.
    pub dimensions: Option<Vec<usize>>,
    /// Refuse NaN and ±Inf in embeddings (default true).
    pub finite_embeddings: Option<bool>,
    /// Refuse a null, empty or whitespace-only document.
    pub non_empty_document: Option<bool>,
    pub max_document_length: Option<usize>,
    /// The Chroma release whose write rules are enforced, e.g. `"1.5"` (default) or `"0.5"`.
    pub chroma_version: Option<String>,
    /// Target quotas every output record must fit: `"cloud"` (Chroma Cloud's), `"none"`, or an
    /// inline table of `crate::limits::Limits` keys.
    pub limits: Option<toml::Value>,
    /// Cut a document over the limits' `max_document_bytes` to fit (at a character boundary)
    /// instead of rejecting the record.
    pub trim_documents: Option<bool>,
}

/// One output metadata field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Source metadata key, or keys tried in order (fallbacks).
    pub from: Option<OneOrMany>,
    /// A constant.
    pub value: Option<toml::Value>,
    /// A template over other fields and record properties: `"if://citation/{source}/{id}"`.
    pub template: Option<String>,
    /// A built-in derivation (see [`Derive`]).
    pub derive: Option<Derive>,
    pub cast: Option<Kind>,
    /// Used when the source has no value.
    pub default: Option<toml::Value>,
    pub required: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<Kind>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Option<Vec<toml::Value>>,
    pub regex: Option<String>,
    pub max_length: Option<usize>,
    pub non_empty: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Derive {
    SourceCollection,
    SourceId,
    DocumentChars,
    DocumentBlake3,
    EmbeddingDim,
}

/// A metadata value type (for casts and type checks).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Int,
    Float,
    Bool,
    String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSpec {
    /// A target name, or `"reject"`, for records no rule matches.
    pub default: Option<String>,
    pub rules: Option<Vec<toml::Value>>,
}

/// One routing rule: every condition given must hold; the first matching rule wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: Option<String>,
    /// A target name, or `"reject"`.
    pub to: Option<String>,
    pub collection: Option<TextMatchSpec>,
    pub metadata: Option<Vec<toml::Value>>,
    pub document: Option<TextMatchSpec>,
}

/// Conditions on a text (collection name, document); each given one must hold.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextMatchSpec {
    pub equals: Option<OneOrMany>,
    pub glob: Option<OneOrMany>,
    /// Any of these keywords, case-insensitively.
    pub contains: Option<OneOrMany>,
    pub regex: Option<String>,
}

/// A metadata predicate on the source record: every operator given must hold.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicateSpec {
    pub key: Option<String>,
    pub eq: Option<toml::Value>,
    pub ne: Option<toml::Value>,
    #[serde(rename = "in")]
    pub one_of: Option<Vec<toml::Value>>,
    pub exists: Option<bool>,
    pub gt: Option<f64>,
    pub ge: Option<f64>,
    pub lt: Option<f64>,
    pub le: Option<f64>,
    pub regex: Option<String>,
}

/// Deserializes `v` as `T`, recording errors at `path`. For a table, each key is tried on its
/// own so that the error names the key (`a.b.c: invalid type …`) and every bad key is reported;
/// the good keys are still returned so that the rest of the spec can be checked too.
pub fn de<T: DeserializeOwned>(v: &toml::Value, path: &str, errs: &mut Errors) -> Option<T> {
    match T::deserialize(v.clone()) {
        Ok(t) => Some(t),
        Err(whole) => {
            let before = errs.0.len();
            let mut good = toml::Table::new();
            if let toml::Value::Table(t) = v {
                for (k, x) in t {
                    let mut single = toml::Table::new();
                    single.insert(k.clone(), x.clone());
                    match T::deserialize(toml::Value::Table(single)) {
                        Ok(_) => {
                            good.insert(k.clone(), x.clone());
                        }
                        Err(e) => errs.push(join(path, k), clean(&e.to_string())),
                    }
                }
            }
            if errs.0.len() == before {
                errs.push(path, clean(&whole.to_string()));
                return None;
            }
            T::deserialize(toml::Value::Table(good)).ok()
        }
    }
}

/// A key path: `a` + `b` = `a.b`; keys that are not bare words are quoted.
pub fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_owned() } else { format!("{key:?}") };
    if path.is_empty() { key } else { format!("{path}.{key}") }
}

fn clean(msg: &str) -> String {
    msg.trim().replace('\n', " ")
}

/// Reads a spec text into its top-level table, reporting a TOML syntax error with its location.
pub fn parse_toml(text: &str, errs: &mut Errors) -> Option<toml::Value> {
    match text.parse::<toml::Table>() {
        Ok(t) => Some(toml::Value::Table(t)),
        Err(e) => {
            errs.push("", format!("not valid TOML: {}", clean(&e.to_string())));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Value {
        toml::Value::Table(s.parse().unwrap())
    }

    #[test]
    fn every_bad_key_is_named() {
        let mut errs = Errors::default();
        let v = table("min = \"low\"\nmax = 1.0\ncolour = 3\nrequired = 1");
        let partial = de::<FieldSpec>(&v, "targets.t.fields.f", &mut errs).unwrap();
        assert_eq!(partial.max, Some(1.0), "the good keys are kept");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["targets.t.fields.f.colour", "targets.t.fields.f.min", "targets.t.fields.f.required"]);
        assert!(errs.0[0].message.contains("unknown field"), "{:?}", errs.0);
    }

    #[test]
    fn from_takes_one_or_many() {
        let mut errs = Errors::default();
        let f: FieldSpec = de(&table("from = [\"a\", \"b\"]"), "f", &mut errs).unwrap();
        assert_eq!(f.from.unwrap().to_vec(), ["a", "b"]);
        let f: FieldSpec = de(&table("from = \"a\""), "f", &mut errs).unwrap();
        assert_eq!(f.from.unwrap().to_vec(), ["a"]);
        assert!(errs.0.is_empty());
    }

    #[test]
    fn quoted_keys_in_paths() {
        assert_eq!(join("a", "b c"), "a.\"b c\"");
        assert_eq!(join("", "x"), "x");
    }
}
