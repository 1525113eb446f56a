//! Property tests: the spec parser and compiler never panic, on arbitrary text and on TOML built
//! from the spec's own keys with values of random types. `PROPTEST_CASES` runs more cases.

use proptest::prelude::*;
use toml::Value;

use super::plan::compile;

/// Every key the spec format knows, at any level, plus target names and near misses.
const KEYS: &[&str] = &[
    "version",
    "gate",
    "min_pass_rate",
    "defaults",
    "targets",
    "routing",
    "metadata",
    "space",
    "hnsw",
    "ids",
    "unmapped",
    "validate",
    "fields",
    "ef_construction",
    "ef_search",
    "max_neighbors",
    "resize_factor",
    "sync_threshold",
    "batch_size",
    "dimensions",
    "finite_embeddings",
    "non_empty_document",
    "max_document_length",
    "chroma_version",
    "from",
    "value",
    "template",
    "derive",
    "cast",
    "default",
    "required",
    "type",
    "min",
    "max",
    "allowed",
    "regex",
    "max_length",
    "non_empty",
    "rules",
    "name",
    "to",
    "collection",
    "document",
    "equals",
    "glob",
    "contains",
    "key",
    "eq",
    "ne",
    "in",
    "exists",
    "gt",
    "ge",
    "lt",
    "le",
    "t_one",
    "t-two",
    "reject",
    "x",
    "",
];

/// Strings that mean something somewhere in a spec, and some that break things.
const WORDS: &[&str] = &[
    "keep",
    "drop",
    "l2",
    "cosine",
    "ip",
    "int",
    "float",
    "bool",
    "string",
    "source_collection",
    "source_id",
    "document_chars",
    "document_blake3",
    "embedding_dim",
    "reject",
    "t_one",
    "t-two",
    "1.5",
    "0.5",
    "",
    "{n:06}",
    "{n:64}",
    "{n:65}",
    "{id}-{target}",
    "{meta.k}",
    "{",
    "}",
    "{{",
    "{n:0}",
    "{:}",
    "([unclosed",
    "a{99999}",
    "*",
    "[",
    "**/x",
    "é",
    "\u{0}",
    "$oid",
    "#tags",
    "chroma:document",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Boolean),
        prop_oneof![Just(0i64), Just(1), Just(-1), Just(i64::MIN), Just(i64::MAX), any::<i64>()]
            .prop_map(Value::Integer),
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e308), Just(0.95), any::<f64>()]
            .prop_map(Value::Float),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS).prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A spec-shaped document: the top-level tables in place, random content beneath them.
fn spec() -> impl Strategy<Value = Value> {
    let targets = prop::collection::btree_map(
        prop::sample::select(&["t_one", "t-two", "reject", "x", "abc"][..]).prop_map(str::to_owned),
        value(),
        0..3,
    );
    (prop::option::of(leaf()), prop::option::of(value()), prop::option::of(value()), targets, prop::option::of(value()))
        .prop_map(|(version, gate, defaults, targets, routing)| {
            let mut t = toml::Table::new();
            t.insert("version".into(), version.unwrap_or(Value::Integer(1)));
            for (k, v) in [("gate", gate), ("defaults", defaults), ("routing", routing)] {
                if let Some(v) = v {
                    t.insert(k.into(), v);
                }
            }
            t.insert("targets".into(), Value::Table(targets.into_iter().collect()));
            Value::Table(t)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases()))]

    /// Any text at all: an error list or a plan, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = compile(&text);
    }

    /// Arbitrary bytes read as text (as `load_spec` would after its UTF-8 check).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = compile(&String::from_utf8_lossy(&bytes));
    }

    /// Structurally plausible specs with values of random types; a failure always says what.
    #[test]
    fn plausible_specs_never_panic(doc in spec()) {
        if let Ok(text) = toml::to_string(&doc)
            && let Err(errs) = compile(&text)
        {
            prop_assert!(!errs.is_empty());
        }
    }
}
