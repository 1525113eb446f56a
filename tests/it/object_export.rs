//! `export --out s3://…` and `load s3://…` against a real 1.5.9 server and a real S3 server that
//! checks signatures: the parts are the bytes a local export writes, `verify` and `verify
//! --against` pass from the bucket, an occupied or foreign prefix is refused, an export SIGKILLed
//! mid-upload leaves no manifest and its rerun is exact, a load from the bucket is exact by the
//! Python client and resumes from its local journal, shards of a load from the bucket keep their
//! journals locally by manifest and shard and load it exactly, and a transform from a bucket into
//! a bucket writes what it writes on disk.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chroma_snap::snapshot::reader::Snapshot;
use chroma_snap::snapshot::store::{RemoteStore, Store};

use crate::export::{ok, tmp};
use crate::harness::{self, V1, unique};
use crate::s3_server::{BUCKET, s3};
use crate::support::{Rng, parts_and_digest, stderr};

/// Count, records digest and every part's `path blake3` of a one-collection snapshot in a store.
fn remote_parts_and_digest(store: &RemoteStore) -> (u64, String, Vec<String>) {
    let c = Snapshot::open_store(Arc::new(store.clone())).expect("snapshot").manifest.collections.remove(0);
    (c.count, c.records_digest, c.parts.iter().map(|p| format!("{} {}", p.path, p.blake3)).collect())
}

fn keys(store: &RemoteStore) -> Vec<String> {
    store.list("").unwrap().into_iter().map(|e| e.key).collect()
}

/// `chroma-snap ARGS` with the S3 server's environment; must succeed.
fn ok_s3(args: &[&str]) -> String {
    let o = s3().command().args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn export_to_s3_writes_what_a_local_export_writes_and_verifies_from_the_bucket() {
    let server = harness::shared(V1);
    let prefix = unique("s3exp");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "3000"]);
    let name = format!("{prefix}_big");
    let dir = tmp();
    let local = dir.path().join("snap");
    let url = format!("s3://{BUCKET}/{}", unique("exported"));
    let export = |out: &str| -> Vec<String> {
        ["export", "--from", &server.url, "--out", out, "--collection", &name, "--quiet"].map(String::from).to_vec()
    };
    ok(&export(local.to_str().unwrap()).iter().map(String::as_str).collect::<Vec<_>>());
    let summary = ok_s3(&[&export(&url).iter().map(String::as_str).collect::<Vec<_>>()[..], &["--json"]].concat());
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!((summary["snapshot"].as_str(), summary["records"].as_u64()), (Some(url.as_str()), Some(3000)));

    let store = s3().store(&url);
    assert_eq!(remote_parts_and_digest(&store), parts_and_digest(&local), "the same parts, byte for byte");
    assert!(!keys(&store).iter().any(|k| k.starts_with(".chroma-snap")), "no state left: {:?}", keys(&store));
    // No key reaches an object of the snapshot (s3s-fs keeps objects as plain files).
    let prefix_dir = url.trim_start_matches(&format!("s3://{BUCKET}/")).to_owned();
    for k in keys(&store) {
        let bytes = std::fs::read(s3().object_file(BUCKET, &format!("{prefix_dir}/{k}"))).unwrap();
        for secret in [crate::s3_server::SECRET_KEY, crate::s3_server::ACCESS_KEY] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{k} holds {secret}");
        }
    }
    let text = ok_s3(&["verify", &url, "--against", &server.url]);
    assert!(text.contains(&format!("{url}: intact")) && text.contains("3000 records, exact"), "{text}");

    // The prefix now holds a snapshot: a second export is refused and changes nothing.
    let before = keys(&store);
    let o = s3().command().args(export(&url)).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{url} already holds a snapshot")), "{}", stderr(&o));
    assert_eq!(keys(&store), before);
    store.remove_prefix("").unwrap();
}

#[test]
fn export_to_a_prefix_holding_foreign_objects_is_refused() {
    let server = harness::shared(V1);
    let url = format!("s3://{BUCKET}/{}", unique("foreign"));
    let store = s3().store(&url);
    store.put_atomic("notes.txt", b"mine").unwrap();
    let o = s3().command().args(["export", "--from", &server.url, "--out", &url]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{url} is not empty and holds no snapshot")), "{}", stderr(&o));
    assert_eq!(keys(&store), ["notes.txt"]);
    store.remove_prefix("").unwrap();
}

#[test]
fn export_to_s3_killed_mid_upload_leaves_no_manifest_and_its_rerun_is_exact() {
    let server = harness::shared(V1);
    let prefix = unique("s3kill");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "50000"]);
    let name = format!("{prefix}_big");
    let args = |out: &str| -> Vec<String> {
        let a = ["export", "--from", &server.url, "--out", out, "--collection", &name, "--page-size", "500"];
        a.iter().map(|s| s.to_string()).chain(["--part-mb", "1", "--quiet"].map(String::from)).collect()
    };
    let dir = tmp();
    let reference = dir.path().join("reference");
    let started = Instant::now();
    ok(&args(reference.to_str().unwrap()).iter().map(String::as_str).collect::<Vec<_>>());
    let span = started.elapsed().as_secs_f64();
    let expected = parts_and_digest(&reference);
    assert!(expected.2.len() > 1, "several parts expected: {:?}", expected.2);

    let mut rng = Rng(20261202);
    let mut killed_midway = 0;
    for i in 0..4 {
        let url = format!("s3://{BUCKET}/{}", unique("killed"));
        let store = s3().store(&url);
        let delay = Duration::from_secs_f64((0.2 + rng.next_f64() * 0.7) * span);
        let mut child =
            s3().command().args(args(&url)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if !keys(&store).contains(&"manifest.json".to_owned()) {
            killed_midway += 1;
            let o = s3().command().args(args(&url)).output().unwrap();
            assert!(o.status.success(), "rerun {i}: {}", stderr(&o));
        }
        ok_s3(&["verify", &url]);
        assert_eq!(remote_parts_and_digest(&store), expected, "run {i} (killed after {delay:?}) differs");
        assert!(!keys(&store).iter().any(|k| k.starts_with(".chroma-snap")), "{:?}", keys(&store));
        store.remove_prefix("").unwrap();
    }
    assert!(killed_midway >= 2, "only {killed_midway} of 4 kills hit a running export");
}

#[test]
fn load_from_s3_is_exact_and_resumes_from_a_local_journal() {
    let server = harness::shared(V1);
    let prefix = unique("s3load");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "3000"]);
    let (name, dst) = (format!("{prefix}_big"), format!("{prefix}_restored"));
    let url = format!("s3://{BUCKET}/{}", unique("toload"));
    ok_s3(&["export", "--from", &server.url, "--out", &url, "--collection", &name, "--quiet"]);
    let store = s3().store(&url);
    let in_bucket = keys(&store);

    let state = tmp();
    let map = format!("{name}={dst}");
    let args = ["load", &url, "--to", &server.url, "--collection", &map, "--batch-size", "200", "--concurrency", "1"];
    let load = |fail_after: Option<&str>| {
        let mut cmd = s3().command();
        cmd.env("XDG_STATE_HOME", state.path()).args(args).args(["--json", "--quiet"]);
        if let Some(n) = fail_after {
            cmd.env("CHROMA_SNAP_FAIL_AFTER_BATCHES", n);
        }
        cmd.output().unwrap()
    };
    let o = load(Some("3"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let journals: Vec<String> = std::fs::read_dir(state.path().join("chroma-snap"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    let manifest_blake3 = Snapshot::open_store(Arc::new(store.clone())).unwrap().manifest_blake3.to_hex();
    assert_eq!(journals.len(), 1, "{journals:?}");
    assert!(journals[0].starts_with(&format!("load-{}-", &manifest_blake3[..16])), "{journals:?}");

    let o = load(None);
    assert!(o.status.success(), "{}", stderr(&o));
    // No key in the journal, nor in the output of a verbose run.
    let journal = std::fs::read(state.path().join("chroma-snap").join(&journals[0])).unwrap();
    let verbose = s3().command().args(["-vv", "verify", &url]).output().unwrap();
    for text in [&journal, &verbose.stderr, &verbose.stdout, &o.stderr] {
        for secret in [crate::s3_server::SECRET_KEY, crate::s3_server::ACCESS_KEY] {
            assert!(!text.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} was written");
        }
    }
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &summary["collections"][0];
    assert_eq!((c["action"].as_str(), c["batches_sent"].as_u64()), (Some("resumed"), Some(12)), "{c}");
    // Remote bytes are read once: the pre-flight's download is what the load sends and reads back.
    let sizes = store.list("").unwrap();
    let parts: u64 = sizes.iter().filter(|e| e.key.ends_with(".parquet")).map(|e| e.size).sum();
    let manifest = sizes.iter().find(|e| e.key == "manifest.json").unwrap().size;
    let downloaded = summary["downloaded_bytes"].as_u64().unwrap();
    // (the manifest is read by the load and again by its pre-flight)
    assert!(4 * manifest < parts, "a second download of the parts would not show: {manifest} vs {parts}");
    assert!(
        downloaded >= parts && downloaded < parts + 4 * manifest,
        "downloaded {downloaded} for {parts} bytes of parts"
    );
    assert_eq!(
        (c["comparison"]["target_records"].as_u64(), c["comparison"]["different_count"].as_u64()),
        (Some(3000), Some(0))
    );
    // Chroma's own client reads the same records from the source and the restored collection.
    let (a, b) = (harness::dump(server, &name), harness::dump(server, &dst));
    assert_eq!(a.lines().count(), 3001);
    assert!(a.lines().skip(1).eq(b.lines().skip(1)), "the restored collection differs from its source");
    assert_eq!(keys(&store), in_bucket, "a load writes nothing into the bucket");
    store.remove_prefix("").unwrap();
}

#[test]
fn transform_from_s3_to_s3_writes_what_it_writes_on_disk() {
    let (_t, legacy) = crate::hostile_verify::small_legacy(600, 768);
    let input = format!("s3://{BUCKET}/{}", unique("tin"));
    crate::s3_server::upload(&legacy, &s3().store(&input));
    let out = format!("s3://{BUCKET}/{}", unique("tout"));
    let local_out = legacy.parent().unwrap().join("migrated");
    let spec = crate::transform::SPEC;
    ok(&["transform", legacy.to_str().unwrap(), "--spec", spec, "--out", local_out.to_str().unwrap(), "--quiet"]);
    ok_s3(&["transform", &input, "--spec", spec, "--out", &out, "--quiet"]);

    let (local, remote) =
        (Snapshot::open(&local_out).unwrap(), Snapshot::open_store(Arc::new(s3().store(&out))).unwrap());
    assert_eq!(remote.manifest.collections, local.manifest.collections, "the same parts, counts and digests");
    assert_eq!(remote.manifest.lineage, local.manifest.lineage);
    let out_store = s3().store(&out);
    let mut names = keys(&out_store);
    names.retain(|k| !k.starts_with("parts/"));
    assert_eq!(names, ["manifest.json", "rejects.parquet", "report.json"]);
    for side in ["rejects.parquet", "report.json"] {
        let (a, b) = (std::fs::read(local_out.join(side)).unwrap(), out_store.read_small(side, 1 << 30).unwrap());
        assert_eq!(a, b, "{side}");
    }
    ok_s3(&["verify", &out]);

    // An output inside the input, or holding it, is refused before anything is written.
    for bad in [format!("{input}/sub"), input.clone()] {
        let o = s3().command().args(["transform", &input, "--spec", spec, "--out", &bad]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("overlaps the input snapshot"), "{}", stderr(&o));
    }
    s3().store(&input).remove_prefix("").unwrap();
    out_store.remove_prefix("").unwrap();
}

#[test]
fn sharded_load_from_s3_is_exact_with_each_shard_journal_in_the_local_state_home() {
    let server = harness::shared(V1);
    let prefix = unique("s3shard");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "1000"]);
    let (name, dst) = (format!("{prefix}_big"), format!("{prefix}_restored"));
    let url = format!("s3://{BUCKET}/{}", unique("toshard"));
    ok_s3(&["export", "--from", &server.url, "--out", &url, "--collection", &name, "--quiet"]);
    let store = s3().store(&url);
    let in_bucket = keys(&store);

    let state = tmp();
    let map = format!("{name}={dst}");
    let load = |shard: &str| {
        let mut cmd = s3().command();
        cmd.env("XDG_STATE_HOME", state.path());
        cmd.args(["load", &url, "--to", &server.url, "--collection", &map, "--batch-size", "100"]);
        cmd.args(["--shard", shard, "--json", "--quiet"]).output().unwrap()
    };
    let mut records = 0;
    for shard in ["0/2", "1/2"] {
        let o = load(shard);
        assert!(o.status.success(), "shard {shard}: {}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        records += summary["collections"][0]["records"].as_u64().unwrap();
    }
    assert_eq!(records, 1000, "the shards' shares add up to the collection");

    // Each shard's journal is local, keyed by the manifest hash and tagged with its shard.
    let manifest_blake3 = Snapshot::open_store(Arc::new(store.clone())).unwrap().manifest_blake3.to_hex();
    let mut journals: Vec<String> = std::fs::read_dir(state.path().join("chroma-snap"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    journals.sort();
    assert_eq!(journals.len(), 2, "{journals:?}");
    for (j, tag) in journals.iter().zip(["shard-0-of-2", "shard-1-of-2"]) {
        assert!(j.starts_with(&format!("load-{}-", &manifest_blake3[..16])), "{journals:?}");
        assert!(j.ends_with(&format!(".{tag}.jsonl")), "{journals:?}");
    }
    // Another split of the same load finds them and is refused, naming one.
    let o = load("0/3");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&journals[0]) && stderr(&o).contains("mixing splits"), "{}", stderr(&o));

    ok_s3(&["verify", &url, "--against", &server.url, "--collection", &map]);
    let (a, b) = (harness::dump(server, &name), harness::dump(server, &dst));
    assert_eq!(a.lines().count(), 1001);
    assert!(a.lines().skip(1).eq(b.lines().skip(1)), "the restored collection differs from its source");
    assert_eq!(keys(&store), in_bucket, "a load writes nothing into the bucket");
    store.remove_prefix("").unwrap();
}

#[test]
fn azure_blob_storage_export_verify_inspect_load_and_clear_failures() {
    use crate::azurite_server::{CONTAINER, azurite};
    let server = harness::shared(V1);
    let prefix = unique("azure");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "2000"]);
    let (name, dst) = (format!("{prefix}_big"), format!("{prefix}_fromaz"));
    let url = format!("az://{CONTAINER}/{}", unique("az"));
    let az = |args: &[&str]| azurite().command().args(args).output().unwrap();
    let ok_az = |args: &[&str]| {
        let o = az(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let dir = tmp();
    let local = dir.path().join("snap");
    ok(&["export", "--from", &server.url, "--out", local.to_str().unwrap(), "--collection", &name, "--quiet"]);
    ok_az(&["export", "--from", &server.url, "--out", &url, "--collection", &name, "--quiet"]);
    let text = ok_az(&["verify", &url, "--against", &server.url]);
    assert!(text.contains(&format!("{url}: intact")) && text.contains("2000 records, exact"), "{text}");
    let remote: serde_json::Value = serde_json::from_str(&ok_az(&["inspect", &url, "--json"])).unwrap();
    let on_disk: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", local.to_str().unwrap(), "--json"])).unwrap();
    for key in ["samples", "manifest/collections"] {
        let ptr = format!("/{key}");
        assert_eq!(remote.pointer(&ptr), on_disk.pointer(&ptr), "{key}: the same snapshot in Azure as on disk");
    }

    let state = tmp();
    let map = format!("{name}={dst}");
    let o = azurite()
        .command()
        .env("XDG_STATE_HOME", state.path())
        .args(["load", &url, "--to", &server.url, "--collection", &map, "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (harness::dump(server, &name), harness::dump(server, &dst));
    assert!(a.lines().skip(1).eq(b.lines().skip(1)), "the collection loaded from Azure differs");

    // A wrong key, a missing container: one line each, exit 1 and 2.
    let o = azurite()
        .command()
        .env("AZURE_STORAGE_ACCOUNT_KEY", "d3Jvbmcta2V5LXdyb25nLWtleQ==")
        .args(["verify", &url])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("access denied (AuthorizationFailure)"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("d3Jvbmcta2V5"), "the key was printed: {}", stderr(&o));
    let o = az(&["verify", "az://no-such-container/snap"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("az://no-such-container/snap: the container does not exist (ContainerNotFound)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_second_export_into_a_prefix_being_written_is_refused_by_its_lock() {
    use crate::proxy::{Fault, Proxy};
    let server = harness::shared(V1);
    let prefix = unique("s3lock");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "2000"]);
    let name = format!("{prefix}_big");
    // The first export reads slowly (every `get` held 30 ms, pages of 50).
    let proxy = Proxy::start(&server.url, "/get");
    proxy.always(Some(Fault::Slow(Duration::from_millis(30))));
    let url = format!("s3://{BUCKET}/{}", unique("locked"));
    let store = s3().store(&url);
    let first = ["export", "--from", &proxy.url, "--out", &url, "--collection", &name, "--page-size", "50"];
    let child =
        s3().command().args(first).args(["--concurrency", "1", "--quiet"]).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !keys(&store).contains(&".chroma-snap/export-in-progress".to_owned()) {
        assert!(Instant::now() < deadline, "the first export never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o =
        s3().command().args(["export", "--from", &server.url, "--out", &url, "--collection", &name]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lock = format!("{url}/.chroma-snap/out.lock");
    assert!(
        stderr(&o).contains(&format!("another run is writing into {url} (locked through {lock})")),
        "{}",
        stderr(&o)
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the first export: {}", String::from_utf8_lossy(&out.stderr));
    ok_s3(&["verify", &url]);
    assert!(!keys(&store).iter().any(|k| k.starts_with(".chroma-snap")), "{:?}", keys(&store));
    store.remove_prefix("").unwrap();
}
