//! Collection settings across API generations: the distance space and HNSW parameters as the
//! target wants them (1.x: a `configuration.hnsw` object; 0.4/0.5: `hnsw:*` collection metadata).

use serde_json::{Map, Value};

use crate::chroma::{Api, CollectionInfo};
use crate::record::Metadata;
use crate::snapshot::CollectionEntry;
use crate::verify::drift::{Drift, Tolerance, compare_values};

/// `(1.x configuration key, legacy metadata key)` for every HNSW parameter both understand.
/// The 1.x server accepts exactly these configuration keys (others → 422).
const HNSW_KEYS: &[(&str, &str)] = &[
    ("space", "hnsw:space"),
    ("ef_construction", "hnsw:construction_ef"),
    ("ef_search", "hnsw:search_ef"),
    ("max_neighbors", "hnsw:M"),
    ("num_threads", "hnsw:num_threads"),
    ("resize_factor", "hnsw:resize_factor"),
    ("sync_threshold", "hnsw:sync_threshold"),
    ("batch_size", "hnsw:batch_size"),
];

/// What a collection is created with on the target. `spann` and unknown `hnsw` keys are never
/// sent (the 1.x server answers 422).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSettings {
    pub metadata: Option<Metadata>,
    /// Sent on v2 only.
    pub configuration: Option<Value>,
}

/// The HNSW parameters of a snapshot entry in 1.x naming, from its configuration (1.x source)
/// or its `hnsw:*` metadata (0.x source); the entry's resolved space always wins.
pub fn hnsw_params(entry: &CollectionEntry) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(meta) = &entry.metadata {
        for (conf_key, meta_key) in HNSW_KEYS {
            if let Some(v) = meta.get(*meta_key) {
                out.insert((*conf_key).to_owned(), v.clone());
            }
        }
    }
    if let Some(Value::Object(h)) = entry.configuration.as_ref().and_then(|c| c.get("hnsw")) {
        for (conf_key, _) in HNSW_KEYS {
            if let Some(v) = h.get(*conf_key).filter(|v| !v.is_null()) {
                out.entry((*conf_key).to_owned()).or_insert_with(|| v.clone());
            }
        }
    }
    out.insert("space".into(), Value::String(entry.space.clone()));
    out
}

/// The user's own collection metadata: everything but the legacy `hnsw:*` settings.
pub fn user_metadata(meta: Option<&Metadata>) -> Option<Metadata> {
    let m: Metadata =
        meta?.iter().filter(|(k, _)| !k.starts_with("hnsw:")).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!m.is_empty()).then_some(m)
}

/// Settings to create `entry`'s collection on a server spoken to with `api`.
pub fn create_settings(entry: &CollectionEntry, api: Api) -> CreateSettings {
    let params = hnsw_params(entry);
    let user = user_metadata(entry.metadata.as_ref());
    match api {
        Api::V2 => {
            let mut conf = Map::new();
            conf.insert("hnsw".into(), Value::Object(params));
            // A 1.x source's embedding-function record (e.g. `{"type":"legacy"}` or a known
            // function by name) travels as it was; 1.5.9 accepts it back verbatim.
            let ef = entry.configuration.as_ref().and_then(|c| c.get("embedding_function")).filter(|v| v.is_object());
            if let Some(ef) = ef {
                conf.insert("embedding_function".into(), ef.clone());
            }
            CreateSettings { metadata: user, configuration: Some(Value::Object(conf)) }
        }
        Api::V1 => {
            let mut m = user.unwrap_or_default();
            for (conf_key, meta_key) in HNSW_KEYS {
                if let Some(v) = params.get(*conf_key) {
                    m.insert((*meta_key).to_owned(), v.clone());
                }
            }
            CreateSettings { metadata: Some(m), configuration: None }
        }
    }
}

/// How a live collection's settings differ from those `entry` is created with (empty: the same):
/// the distance space, every HNSW parameter the server reports (from its configuration, or its
/// `hnsw:*` metadata on 0.x), the embedding-function record when both have one, and the user's
/// collection metadata. Float values may differ within `tol` (the 1.x server's parsing drift).
pub fn differences(entry: &CollectionEntry, info: &CollectionInfo, tol: Tolerance) -> Vec<String> {
    let d = compare(entry, &entry_of(info, 0), tol);
    d.build.into_iter().chain(d.embedding_function).chain(d.metadata).collect()
}

/// A live collection's settings in the shape of a snapshot entry (no parts, `count` records), so
/// that any two collections, live or in a snapshot, compare by one rule ([`compare`]).
pub fn entry_of(info: &CollectionInfo, count: u64) -> CollectionEntry {
    CollectionEntry {
        name: info.name.clone(),
        id: info.id.clone(),
        metadata: info.metadata.clone(),
        configuration: info.configuration.clone(),
        space: info.space(),
        dimension: info.dimension,
        count,
        source_count_before: None,
        source_count_after: None,
        changed_during_export: false,
        filter: info.filter.clone(),
        records_digest: String::new(),
        parts: Vec::new(),
    }
}

/// How collection `b`'s settings differ from `a`'s, in words ("… is B instead of A").
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SettingsDifference {
    /// Settings fixed when a collection is built: the distance space and the HNSW parameters
    /// both sides report. Only a new collection changes them.
    pub build: Vec<String>,
    /// The embedding-function record, when both have one.
    pub embedding_function: Option<String>,
    /// The user's collection metadata (the `hnsw:*` keys aside).
    pub metadata: Option<String>,
}

impl SettingsDifference {
    pub fn is_empty(&self) -> bool {
        self.build.is_empty() && self.embedding_function.is_none() && self.metadata.is_none()
    }
}

/// Compares the settings of two collections (snapshot entries, or live ones through
/// [`entry_of`]); float values may differ within `tol`.
pub fn compare(a: &CollectionEntry, b: &CollectionEntry, tol: Tolerance) -> SettingsDifference {
    let mut out = SettingsDifference::default();
    if a.space != b.space {
        out.build.push(format!("distance space {} instead of {}", b.space, a.space));
    }
    let (pa, pb) = (hnsw_params(a), hnsw_params(b));
    let mut drift = Drift::default();
    for (conf_key, _) in HNSW_KEYS.iter().filter(|(k, _)| *k != "space") {
        if let (Some(x), Some(y)) = (pa.get(*conf_key), pb.get(*conf_key)) {
            out.build.extend(compare_values(&format!("hnsw {conf_key}"), x, y, tol, &mut drift).err());
        }
    }
    let ef = |e: &CollectionEntry| {
        e.configuration.as_ref().and_then(|c| c.get("embedding_function")).filter(|v| v.is_object()).cloned()
    };
    if let (Some(x), Some(y)) = (ef(a), ef(b)) {
        out.embedding_function = compare_values("embedding function", &x, &y, tol, &mut drift).err();
    }
    let as_value = |m: Option<Metadata>| m.map_or(Value::Null, Value::Object);
    let (x, y) = (as_value(user_metadata(a.metadata.as_ref())), as_value(user_metadata(b.metadata.as_ref())));
    out.metadata = compare_values("metadata", &x, &y, tol, &mut drift).err();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(metadata: Value, configuration: Value, space: &str) -> CollectionEntry {
        CollectionEntry {
            name: "c".into(),
            id: "x".into(),
            metadata: metadata.as_object().cloned(),
            configuration: (!configuration.is_null()).then_some(configuration),
            space: space.into(),
            dimension: Some(3),
            count: 0,
            source_count_before: None,
            source_count_after: None,
            changed_during_export: false,
            filter: None,
            records_digest: String::new(),
            parts: Vec::new(),
        }
    }

    #[test]
    fn from_1x_configuration_to_both_apis() {
        let e = entry(
            json!({"owner": "me"}),
            json!({"hnsw": {"space": "cosine", "ef_construction": 128, "ef_search": 100, "max_neighbors": 32,
                    "resize_factor": 1.2, "sync_threshold": 1000}, "spann": null,
                   "embedding_function": {"type": "known", "name": "default"}}),
            "cosine",
        );
        let v2 = create_settings(&e, Api::V2);
        assert_eq!(v2.metadata, json!({"owner": "me"}).as_object().cloned());
        assert_eq!(
            v2.configuration.unwrap(),
            json!({"hnsw": {"space": "cosine", "ef_construction": 128, "ef_search": 100, "max_neighbors": 32,
                    "resize_factor": 1.2, "sync_threshold": 1000},
                   "embedding_function": {"type": "known", "name": "default"}})
        );
        let v1 = create_settings(&e, Api::V1);
        assert_eq!(v1.configuration, None);
        let m = v1.metadata.unwrap();
        assert_eq!(m["hnsw:space"], "cosine");
        assert_eq!(m["hnsw:M"], 32);
        assert_eq!(m["hnsw:construction_ef"], 128);
        assert_eq!(m["owner"], "me");
    }

    #[test]
    fn from_0x_metadata_to_1x_configuration() {
        let e = entry(json!({"hnsw:space": "ip", "hnsw:M": 24, "topic": "x"}), Value::Null, "ip");
        let v2 = create_settings(&e, Api::V2);
        assert_eq!(v2.metadata, json!({"topic": "x"}).as_object().cloned());
        assert_eq!(v2.configuration.unwrap(), json!({"hnsw": {"space": "ip", "max_neighbors": 24}}));
        // Only hnsw settings: the metadata becomes null rather than the rejected `{}`.
        let e = entry(json!({"hnsw:space": "l2"}), Value::Null, "l2");
        assert_eq!(create_settings(&e, Api::V2).metadata, None);
    }

    #[test]
    fn differences_of_a_live_collection() {
        let e = entry(
            json!({"owner": "me", "f": 0.1}),
            json!({"hnsw": {"space": "cosine", "ef_construction": 128, "max_neighbors": 32, "resize_factor": 1.2}}),
            "cosine",
        );
        let live = |metadata: Value, conf: Value| CollectionInfo {
            id: "x".into(),
            name: "c".into(),
            metadata: metadata.as_object().cloned(),
            configuration: Some(conf),
            dimension: None,
            filter: None,
        };
        let tol = Tolerance { embedding_ulps: 0, metadata_ulps: 1 };
        // What 1.5.9 reports for a collection created from `e`: every parameter, defaults included.
        let same = live(
            json!({"owner": "me", "f": 0.10000000000000002}),
            json!({"hnsw": {"space": "cosine", "ef_construction": 128, "ef_search": 100, "max_neighbors": 32,
                    "resize_factor": 1.2, "sync_threshold": 1000}, "spann": null, "embedding_function": null}),
        );
        assert_eq!(differences(&e, &same, tol), Vec::<String>::new(), "1 ulp of float drift is the same");
        let other = live(
            json!({"owner": "you"}),
            json!({"hnsw": {"space": "l2", "ef_construction": 100, "max_neighbors": 32, "resize_factor": 1.2}}),
        );
        let got = differences(&e, &other, tol);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].contains("distance space l2 instead of cosine"), "{got:?}");
        assert!(got[1].contains("hnsw ef_construction is 100 instead of 128"), "{got:?}");
        assert!(got[2].starts_with("metadata"), "{got:?}");
        // A 0.x target keeps the parameters in metadata.
        let legacy = CollectionInfo {
            configuration: None,
            ..live(json!({"owner": "me", "f": 0.1, "hnsw:space": "cosine", "hnsw:M": 16}), Value::Null)
        };
        let got = differences(&e, &legacy, Tolerance::EXACT);
        assert_eq!(got, ["hnsw max_neighbors is 16 instead of 32"]);
    }

    #[test]
    fn resolved_space_wins() {
        // 0.5 reports l2 in its configuration whatever the space; the entry's space is the truth.
        let e = entry(json!({"hnsw:space": "cosine"}), json!({"hnsw": {"space": "l2"}}), "cosine");
        assert_eq!(hnsw_params(&e)["space"], "cosine");
        let e = entry(Value::Null, Value::Null, "cosine");
        assert_eq!(create_settings(&e, Api::V1).metadata.unwrap()["hnsw:space"], "cosine");
    }
}
