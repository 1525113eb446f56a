//! Target quotas (`load --limits`, `validate.limits` in a transform spec) against a real 1.5.9
//! server: every Chroma Cloud quota breach refused by name before any write, a snapshot that fits
//! loaded in batches of at most 300, a user's own limits file (and a misspelt key in it), and the
//! transform rule rejecting or trimming what would not fit.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::bad_inputs::{Rec, exists_on_v1, good, load, rec, records_snapshot, refused};
use crate::export::tmp;
use crate::harness::{self, V1};
use crate::support::{SnapCollection, stderr, write_snapshot};

fn with_doc(id: &str, doc: String) -> Rec {
    Rec { doc: Some(doc), ..rec(id, &[1.0; 4], None) }
}

/// A metadata object of `n` keys `k0…` (small ints) plus `extra`.
fn meta(n: usize, extra: &[(&str, Value)]) -> String {
    let mut m: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Value::Object(m).to_string()
}

fn at(c: &str, part: usize, id: &str) -> String {
    format!("collection \"{c}\", part parts/{part:04}/part-000000.parquet, record \"{id}\": ")
}

fn json_out(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn cloud_limits_refuse_every_quota_breach_by_name_before_any_write() {
    let t = tmp();
    // At most 5 problems are listed per part: the breaches are spread over collections.
    let mut sizes = good(2);
    sizes.push(with_doc("doc", "d".repeat(16_385)));
    sizes.push(Rec { uri: Some("u".repeat(257)), ..rec("uri", &[1.0; 4], None) });
    let long_id = "i".repeat(129);
    sizes.push(rec(&long_id, &[1.0; 4], None));
    let mut metas = good(2);
    metas.push(rec("keys", &[1.0; 4], Some(&meta(33, &[]))));
    let long_key = "k".repeat(37);
    metas.push(rec("key-bytes", &[1.0; 4], Some(&meta(1, &[(&long_key, json!(1))]))));
    metas.push(rec("value-bytes", &[1.0; 4], Some(&meta(1, &[("v", json!("v".repeat(4097)))]))));
    let wide = vec![rec("wide", &[0.5; 4097], None)];
    let dir = t.path().join("s");
    records_snapshot(&dir, vec![("q_sizes", 4, sizes), ("q_metas", 4, metas), ("q_dims", 4097, wide)]);
    // Collection-level quotas: its metadata (33 keys, one value of 257 bytes) and a long target name.
    let mut cmeta: Map<String, Value> = (0..32).map(|i| (format!("c{i}"), json!(i))).collect();
    cmeta.insert("owner".into(), json!("o".repeat(257)));
    let mut page = chroma_snap::record::RecordPage::with_capacity(4, 1);
    page.push(chroma_snap::record::RecordRef {
        id: "fine",
        embedding: &[1.0; 4],
        document: None,
        uri: None,
        metadata: None,
    });
    let cdir = t.path().join("c");
    write_snapshot(
        &cdir,
        vec![SnapCollection {
            name: "q_cmeta".into(),
            dim: 4,
            space: "l2".into(),
            metadata: Some(cmeta),
            configuration: None,
            page,
        }],
    );

    let server = harness::shared(V1);
    let p = harness::unique("quota");
    let targets: Vec<String> = ["q_sizes", "q_metas", "q_dims"].iter().map(|c| format!("{c}={p}_{c}")).collect();
    let mut args = vec!["--limits", "cloud"];
    for m in &targets {
        args.extend(["--collection", m.as_str()]);
    }
    let o = load(&dir, &server.url, &args);
    let over = |what: &str, key: &str, max: usize| format!("{what}, over {key} = {max} (cloud limits)");
    refused(
        &o,
        2,
        &[
            "holds records the target cannot take, nothing was sent",
            &format!("{}{}", at("q_sizes", 0, "doc"), over("document is 16385 bytes", "max_document_bytes", 16_384)),
            &format!("{}{}", at("q_sizes", 0, "uri"), over("uri is 257 bytes", "max_uri_bytes", 256)),
            &format!("{}{}", at("q_sizes", 0, &long_id), over("id is 129 bytes", "max_id_bytes", 128)),
            &format!("{}{}", at("q_metas", 1, "keys"), over("metadata has 33 keys", "max_metadata_keys", 32)),
            &format!(
                "{}{}",
                at("q_metas", 1, "key-bytes"),
                over(&format!("metadata key {long_key:?} is 37 bytes"), "max_metadata_key_bytes", 36)
            ),
            &format!(
                "{}{}",
                at("q_metas", 1, "value-bytes"),
                over("metadata key \"v\": the value is 4097 bytes", "max_metadata_value_bytes", 4096)
            ),
            &format!(
                "{}{}",
                at("q_dims", 2, "wide"),
                over("embedding has 4097 dimensions", "max_embedding_dimensions", 4096)
            ),
        ],
    );
    let err = stderr(&o);
    assert!(!err.contains("record \"g0\"") && !err.contains("record \"g1\""), "good records named:\n{err}");
    for c in ["q_sizes", "q_metas", "q_dims"] {
        assert!(!exists_on_v1(&format!("{p}_{c}")), "{c}: a collection was created");
    }
    assert!(!dir.join(".chroma-snap").exists(), "no journal: nothing was started");

    // Collection quotas name the collection (and the target name it would get).
    let long_name = format!("{p}_{}", "n".repeat(129 - p.len() - 1));
    assert_eq!(long_name.len(), 129);
    let o = load(&cdir, &server.url, &["--limits", "cloud", "--collection", &format!("q_cmeta={long_name}")]);
    let c = format!("collection \"q_cmeta\" (loaded as {long_name:?}): ");
    refused(
        &o,
        2,
        &[
            "nothing was sent",
            &format!("{c}{}", over("collection name is 129 bytes", "max_collection_name_bytes", 128)),
            &format!("{c}{}", over("collection metadata has 33 keys", "max_collection_metadata_keys", 32)),
            &format!(
                "{c}{}",
                over(
                    "collection metadata key \"owner\": the value is 257 bytes",
                    "max_collection_metadata_value_bytes",
                    256
                )
            ),
        ],
    );
    assert!(!exists_on_v1(&long_name), "a collection was created");
    // Without --limits, a local server takes both snapshots' records (no quotas there).
    let o = load(&cdir, &server.url, &["--collection", &format!("q_cmeta={p}_free"), "--json"]);
    assert_eq!(json_out(&o)["collections"][0]["comparison"]["target_records"], 1);
}

#[test]
fn cloud_limits_accept_a_snapshot_that_fits_and_write_at_most_300_records_a_request() {
    let t = tmp();
    let mut recs = good(650);
    recs.push(with_doc("doc-at-limit", "é".repeat(8192)));
    recs.push(Rec { uri: Some("u".repeat(256)), ..rec(&"i".repeat(128), &[1.0; 4], None) });
    let key36 = "k".repeat(36);
    recs.push(rec("meta-at-limit", &[1.0; 4], Some(&meta(30, &[(&key36, json!(1)), ("v", json!("v".repeat(4096)))]))));
    let dir = records_snapshot(&t.path().join("s"), vec![("fits", 4, recs)]);
    let server = harness::shared(V1);
    let dst = harness::unique("fits");
    let o = load(&dir, &server.url, &["--limits", "cloud", "--collection", &format!("fits={dst}"), "--json"]);
    let v = json_out(&o);
    let c = &v["collections"][0];
    assert_eq!(v["quotas"], "cloud", "{v}");
    assert_eq!(c["limits"]["max_rows"], 300, "{v}");
    assert_eq!(c["batches"], 3, "653 records in batches of at most 300: {v}");
    assert_eq!(c["comparison"]["target_records"], 653, "{v}");
    assert_eq!(c["comparison"]["different_count"], 0, "{v}");
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_limits_file_states_a_deployments_own_quotas_and_a_misspelt_key_is_refused_by_name() {
    let t = tmp();
    let dir = records_snapshot(&t.path().join("s"), vec![("own", 4, good(5))]);
    let server = harness::shared(V1);
    let p = harness::unique("own");

    let strict = write(&t.path().join("strict.toml"), "max_records_per_collection = 4\nmax_document_bytes = 5\n");
    let o = load(&dir, &server.url, &["--limits", &strict, "--collection", &format!("own={p}_strict")]);
    let l = format!("({strict} limits)");
    refused(
        &o,
        2,
        &[
            &format!(
                "collection \"own\" (loaded as \"{p}_strict\"): the collection would hold 5 records, over max_records_per_collection = 4 {l}"
            ),
            &format!("{}document is 6 bytes, over max_document_bytes = 5 {l}", at("own", 0, "g0")),
        ],
    );
    assert!(!exists_on_v1(&format!("{p}_strict")));

    // A file's max_records_per_write caps the batches.
    let batches = write(&t.path().join("batches.toml"), "max_records_per_write = 2\nmax_document_bytes = 6\n");
    let o = load(&dir, &server.url, &["--limits", &batches, "--collection", &format!("own={p}_ok"), "--json"]);
    let v = json_out(&o);
    assert_eq!(
        (v["collections"][0]["batches"].as_u64(), v["collections"][0]["limits"]["max_rows"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(v["collections"][0]["comparison"]["target_records"], 5);

    let typo = write(&t.path().join("typo.toml"), "max_document_byte = 5\n");
    let o = load(&dir, &server.url, &["--limits", &typo, "--collection", &format!("own={p}_typo")]);
    refused(&o, 2, &[&format!("limits file {typo} is not valid"), "unknown field `max_document_byte`"]);
    let o = load(
        &dir,
        &server.url,
        &["--limits", &t.path().join("absent.toml").to_string_lossy(), "--collection", "own=x"],
    );
    refused(&o, 2, &["cannot read limits file"]);
    assert!(!exists_on_v1(&format!("{p}_typo")));

    // `--limits none` checks nothing: the same snapshot loads.
    let o = load(&dir, &server.url, &["--limits", "none", "--collection", &format!("own={p}_none"), "--json"]);
    assert!(json_out(&o).get("quotas").is_none());
}

#[test]
fn a_transform_spec_rejects_or_trims_what_would_break_the_limits() {
    let t = tmp();
    let mut recs = good(3);
    recs.push(with_doc("long-doc", format!("{}é", "d".repeat(16_383))));
    recs.push(rec(&"i".repeat(129), &[1.0; 4], None));
    recs.push(rec("many-keys", &[1.0; 4], Some(&meta(33, &[]))));
    let input = records_snapshot(&t.path().join("in"), vec![("src", 4, recs)]);
    let spec = |extra: &str| {
        let text = format!(
            "version = 1\n[targets.dst]\nunmapped = \"keep\"\n[targets.dst.validate]\nlimits = \"cloud\"\n{extra}\n[routing]\ndefault = \"dst\"\n"
        );
        let path = t.path().join(format!("spec-{}.toml", extra.len()));
        std::fs::write(&path, text).unwrap();
        path
    };
    let run = |spec: &Path, out: &str| {
        let o = crate::transform::transform(&input, spec, &t.path().join(out), None);
        json_out(&o)["report"].clone()
    };
    let r = run(&spec(""), "rejecting");
    assert_eq!((r["written"].as_u64(), r["rejected"].as_u64()), (Some(3), Some(3)), "{r}");
    for rule in ["limits.document_bytes", "limits.id_bytes", "limits.metadata_keys"] {
        assert_eq!(r["reasons_by_rule"][rule], 1, "{rule}: {r}");
    }
    assert!(r["targets"][0].get("trimmed_documents").is_none(), "{r}");

    // trim_documents cuts the long document at a character boundary (16,383 bytes: 'é' is two).
    let r = run(&spec("trim_documents = true"), "trimming");
    assert_eq!((r["written"].as_u64(), r["rejected"].as_u64()), (Some(4), Some(2)), "{r}");
    assert_eq!(r["targets"][0]["trimmed_documents"], 1, "{r}");
    let snap = chroma_snap::snapshot::reader::Snapshot::open(&t.path().join("trimming")).unwrap();
    let c = &snap.manifest.collections[0];
    let mut doc = None;
    for b in snap.collection_batches(c) {
        let b = b.unwrap();
        for r in chroma_snap::snapshot::convert::BatchView::new(&b).records() {
            if r.id == "long-doc" {
                doc = r.document.map(str::to_owned);
            }
        }
    }
    assert_eq!(doc.as_deref(), Some("d".repeat(16_383).as_str()));
    // The output loads into the local server under the cloud limits.
    let server = harness::shared(V1);
    let o = load(
        &t.path().join("trimming"),
        &server.url,
        &["--limits", "cloud", "--collection", &format!("dst={}", harness::unique("trimmed"))],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // An inline table states other limits: records after the collection's limit are rejected.
    let few = t.path().join("few.toml");
    std::fs::write(
        &few,
        "version = 1\n[targets.dst.validate]\nlimits = { max_records_per_collection = 2 }\n[routing]\ndefault = \"dst\"\n",
    )
    .unwrap();
    let r = run(&few, "few");
    assert_eq!((r["written"].as_u64(), r["rejected"].as_u64()), (Some(2), Some(4)), "{r}");
    assert_eq!(r["reasons_by_rule"]["limits.records_per_collection"], 4, "{r}");

    // Spec mistakes: an unknown limit is named with its key path; trimming needs a document limit.
    let bad = t.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n[targets.dst.validate]\nlimits = { max_document_byte = 5 }\n[targets.other.validate]\nlimits = \"cloud\"\ntrim_documents = false\n[targets.third.validate]\ntrim_documents = true\n[routing]\ndefault = \"dst\"\n",
    )
    .unwrap();
    let o = crate::transform::transform(&input, &bad, &t.path().join("never"), None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("targets.dst.validate.limits.max_document_byte: unknown field"), "{err}");
    assert!(err.contains("targets.third.validate.trim_documents: needs limits with max_document_bytes"), "{err}");
    assert!(!err.contains("targets.other"), "{err}");
}
