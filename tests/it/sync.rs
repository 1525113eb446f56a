//! `load --if-exists sync` against real servers: a target damaged by Chroma's own Python client
//! (see diff.rs) is made equal to the snapshot again by writing only the difference, so that
//! `verify --against` and the Python client's dump find it exact and the summary counts equal the
//! damage; a sync SIGKILLed between deleting and re-adding changed records and rerun ends exact;
//! a target built with another distance space is refused before any write.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chroma_snap::snapshot::writer::WriterOptions;
use serde_json::Value;

use crate::diff::{Damaged, damaged_target, diff_json};
use crate::export::{ok, tmp};
use crate::harness::{self, Server, V0, V1};
use crate::load::{
    Synth, assert_same_records, load_cmd, load_ok, run, server_dump, snapshot_dump, synth_snapshot_with,
};
use crate::support::stderr;

fn meta_ulps(server: &Server) -> u64 {
    if server.version == V1 { 1 } else { 0 }
}

/// The target holds exactly the snapshot's collections again (the stray one is left alone).
fn assert_restored(server: &Server, d: &Damaged) {
    let s = d.snap.to_str().unwrap();
    ok(&["verify", s, "--against", &server.url, "--quiet"]);
    for name in [&d.docs, &d.gone] {
        assert_same_records(name, &snapshot_dump(&d.snap, name), &server_dump(server, name), meta_ulps(server));
    }
    let (code, r) = diff_json(s, &server.url, &["--collection", &d.docs, "--collection", &d.gone]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(server_dump(server, &d.stray).1.len(), 3, "a collection the snapshot lacks is left alone");
}

fn counts(c: &Value) -> [u64; 4] {
    ["added", "updated", "deleted", "unchanged"].map(|k| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {c}")))
}

fn sync_restores(version: &'static str) {
    let server = harness::shared(version);
    let d = damaged_target(server, 300, &["--delete", "2", "--meta", "2", "--foreign", "2"]);
    let sync = ["--if-exists", "sync"];
    // A dry run counts and writes nothing.
    let dry = load_ok(&d.snap, &server.url, &[&sync[..], &["--dry-run"]].concat());
    let by = |v: &Value, name: &str| {
        v["collections"].as_array().unwrap().iter().find(|c| c["target"] == name).cloned().unwrap()
    };
    assert_eq!(counts(&by(&dry, &d.docs)), [2, 4, 2, 294], "{dry}");
    assert_eq!(by(&dry, &d.docs)["action"], "would sync");
    assert_eq!(counts(&by(&dry, &d.gone)), [50, 0, 0, 0], "{dry}");
    let (_, still) = diff_json(d.snap.to_str().unwrap(), &server.url, &["--collection", &d.docs]);
    assert_eq!(still["diff"]["collections"][0]["changed_count"], 4, "the dry run wrote nothing");

    let summary = load_ok(&d.snap, &server.url, &sync);
    let docs = by(&summary, &d.docs);
    assert_eq!((docs["action"].as_str(), counts(&docs)), (Some("synced"), [2, 4, 2, 294]), "{docs}");
    assert_eq!(docs["metadata"], true, "the collection's metadata was rewritten: {docs}");
    let gone = by(&summary, &d.gone);
    assert_eq!((gone["action"].as_str(), counts(&gone)), (Some("created"), [50, 0, 0, 0]), "{gone}");
    assert_eq!(docs["comparison"]["target_records"], 300);
    assert_eq!(docs["comparison"]["read_back"], 6, "only the 2 added and 4 rewritten are read back: {docs}");
    let full = ok(&["verify", d.snap.to_str().unwrap(), "--against", &server.url, "--collection", &d.docs, "--json"]);
    let full: Value = serde_json::from_str(&full).unwrap();
    let full = &full["against"][0];
    assert_eq!(full["target_digest"], docs["comparison"]["target_digest"], "a full read-back's digest: {full}");
    assert_eq!(full["drifted_records"], docs["comparison"]["drifted_records"], "{full}");
    assert_restored(server, &d);
    // Synced again: nothing to write.
    let again = load_ok(&d.snap, &server.url, &sync);
    assert_eq!(counts(&by(&again, &d.docs)), [0, 0, 0, 300], "{again}");
    assert_eq!(by(&again, &d.docs)["metadata"], false, "{again}");
    assert_eq!(by(&again, &d.docs)["batches_sent"], 0);
}

#[test]
fn sync_restores_a_damaged_1_5_9_target() {
    sync_restores(V1);
}

#[test]
fn sync_restores_a_damaged_0_4_24_target() {
    sync_restores(V0);
}

fn sync_killed_midway(version: &'static str) {
    let server = harness::shared(version);
    let d = damaged_target(server, 600, &["--delete", "60", "--meta", "60", "--foreign", "60"]);
    let journal = d.dir.path().join("sync.jsonl");
    let args =
        ["--if-exists", "sync", "--batch-size", "10", "--concurrency", "1", "--journal", journal.to_str().unwrap()];
    let mut child = load_cmd(&d.snap, &server.url, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let adds = || std::fs::read_to_string(&journal).unwrap_or_default().matches("\"step\":\"add\"").count();
    let deadline = Instant::now() + Duration::from_secs(120);
    while adds() < 2 && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(child.try_wait().unwrap().is_none(), "the sync ended before it could be killed");
    child.kill().unwrap(); // SIGKILL: the changed records are deleted (1.x) or rewritten (0.x), few added back
    child.wait().unwrap();
    let done = adds();
    eprintln!("{version}: killed after {done} add requests");
    let summary = load_ok(&d.snap, &server.url, &args);
    let docs = summary["collections"].as_array().unwrap().iter().find(|c| c["target"] == d.docs.as_str()).unwrap();
    let [added, updated, deleted, unchanged] = counts(docs);
    assert_eq!((updated, deleted), (0, 0), "the first run deleted and rewrote all: {docs}");
    assert_eq!(added + unchanged, 600, "{docs}");
    assert!(added > 0 && added < 60 + 62, "{docs}");
    assert_restored(server, &d);
}

#[test]
fn a_sync_killed_midway_and_rerun_is_exact_on_1_5_9() {
    sync_killed_midway(V1);
}

#[test]
fn a_sync_killed_midway_and_rerun_is_exact_on_0_4_24() {
    sync_killed_midway(V0);
}

#[test]
fn a_sync_into_another_space_is_refused_before_any_write() {
    let dir = tmp();
    let server = harness::shared(V1);
    let p = harness::unique("space");
    let (a, b) = (format!("{p}_a"), format!("{p}_b"));
    let cols = [
        Synth { name: &a, n: 100, dim: 4, space: "l2", seed: 41, docs: true },
        Synth { name: &b, n: 100, dim: 4, space: "l2", seed: 42, docs: true },
    ];
    let s = synth_snapshot_with(dir.path(), &cols, WriterOptions::default());
    load_ok(&s, &server.url, &[]);
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    let id_of = |name: &str| {
        let (_, info) = harness::http(&server.url, "GET", &format!("{base}/{name}"), None, &[]);
        serde_json::from_str::<Value>(&info).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let post = |id: &str, op: &str, body: &str| {
        let (st, out) = harness::http(&server.url, "POST", &format!("{base}/{id}/{op}"), Some(body), &[]);
        assert!(st < 300, "{op}: {st} {out}");
    };
    post(&id_of(&a), "delete", r#"{"ids":["r000001"]}"#);
    assert_eq!(harness::http(&server.url, "DELETE", &format!("{base}/{b}"), None, &[]).0, 200);
    let create = format!(r#"{{"name":"{b}","configuration":{{"hnsw":{{"space":"cosine"}}}}}}"#);
    assert_eq!(harness::http(&server.url, "POST", base, Some(&create), &[]).0, 200);
    post(&id_of(&b), "add", r#"{"ids":["x"],"embeddings":[[1,2,3,4]]}"#);

    let out = run(load_cmd(&s, &server.url, &["--if-exists", "sync"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("distance space cosine instead of l2") && err.contains("use --if-exists replace"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    let count = |name: &str| harness::http(&server.url, "GET", &format!("{base}/{}/count", id_of(name)), None, &[]).1;
    assert_eq!((count(&a).trim(), count(&b).trim()), ("99", "1"), "nothing was written to either collection");
    // A shard never syncs.
    let out = run(load_cmd(&s, &server.url, &["--if-exists", "sync", "--shard", "0/2"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Replace is the way.
    load_ok(&s, &server.url, &["--if-exists", "replace", "--collection", &b]);
}
