//! Export under faults: killed with SIGKILL at random (seeded) points and rerun, and a source that
//! changes while it is read. The final snapshot is always identical to an uninterrupted export,
//! and a change is always reported.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chroma_snap::snapshot::reader::Snapshot;
use serde_json::Value;

use crate::export::{ok, snap, tmp};
use crate::harness::{self, V1};
use crate::proxy::{Fault, Proxy};
use crate::support::{Rng, parts_and_digest};

#[test]
fn export_killed_at_ten_random_points_then_rerun_is_identical() {
    let server = harness::shared(V1);
    let prefix = harness::unique("kill");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "30000"]);
    let name = format!("{prefix}_big");
    let dir = tmp();
    let args = |out: &Path| {
        vec![
            "export".to_owned(),
            "--from".into(),
            server.url.clone(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--collection".into(),
            name.clone(),
            "--page-size".into(),
            "500".into(),
            "--part-mb".into(),
            "1".into(),
            "--quiet".into(),
        ]
    };
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let a = args(&reference);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let span = started.elapsed().as_secs_f64();
    let expected = parts_and_digest(&reference);
    assert!(expected.1.len() > 1, "the export should roll several parts: {:?}", expected.1);

    let mut rng = Rng(20261124);
    let mut killed_midway = 0;
    for i in 0..10 {
        let out = dir.path().join(format!("run{i}"));
        let delay = Duration::from_secs_f64(rng.next_f64() * span * 1.1);
        let mut child = Command::new(harness::bin())
            .args(args(&out))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn export");
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        if out.join("manifest.json").exists() {
            // It finished before the kill: a finished export must be whole.
            assert!(status.success() || status.code().is_none());
            ok(&["verify", out.to_str().unwrap()]);
        } else {
            killed_midway += 1;
            let a = args(&out);
            ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
        }
        ok(&["verify", out.to_str().unwrap()]);
        assert_eq!(parts_and_digest(&out), expected, "run {i} (killed after {delay:?}) differs");
    }
    assert!(killed_midway >= 5, "only {killed_midway} of 10 kills hit a running export");
}

fn collection_id(server: &harness::Server, name: &str) -> String {
    let (status, body) =
        server.get(&format!("/api/v2/tenants/default_tenant/databases/default_database/collections/{name}"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned()
}

/// Starts an export that reads slowly (through a proxy that holds every `get` for 30 ms) and lists
/// ids in pages of 1,000 (several listing requests), deletes `n` ids from the middle of the
/// collection once it has written its first part, and returns its exit status and stderr.
fn export_while_deleting(server: &harness::Server, name: &str, out: &Path, n: usize, strict: bool) -> (bool, String) {
    let proxy = Proxy::start(&server.url, "/get");
    proxy.always(Some(Fault::Slow(Duration::from_millis(30))));
    let mut args = vec!["export", "--from", &proxy.url, "--out", out.to_str().unwrap(), "--collection", name];
    args.extend(["--page-size", "50", "--list-page", "1000", "--concurrency", "1", "--part-mb", "1"]);
    if strict {
        args.push("--strict");
    }
    let child = Command::new(harness::bin()).args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("parts/0000").exists() {
        assert!(Instant::now() < deadline, "the export never started writing");
        std::thread::sleep(Duration::from_millis(5));
    }
    let id = collection_id(server, name);
    let base = format!("/api/v2/tenants/default_tenant/databases/default_database/collections/{id}");
    let (_, body) = harness::http(&server.url, "POST", &format!("{base}/get"), Some(r#"{"include":[]}"#), &[]);
    let ids: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let doomed = &ids[ids.len() / 2..ids.len() / 2 + n];
    let (status, body) = harness::http(
        &server.url,
        "POST",
        &format!("{base}/delete"),
        Some(&serde_json::json!({"ids": doomed}).to_string()),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let res = child.wait_with_output().unwrap();
    (res.status.success(), String::from_utf8_lossy(&res.stderr).into_owned())
}

#[test]
fn a_source_that_changes_during_export_is_reported_and_strict_fails() {
    let server = harness::shared(V1);
    let prefix = harness::unique("change");
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "12000"]);
    let name = format!("{prefix}_big");
    let dir = tmp();

    let out = dir.path().join("loose");
    let (success, stderr) = export_while_deleting(server, &name, &out, 100, false);
    assert!(success, "{stderr}");
    assert!(stderr.contains("changed during the export") && stderr.contains("listed ids vanished"), "{stderr}");
    let m = Snapshot::open(&out).unwrap().manifest;
    let c = &m.collections[0];
    assert!(c.changed_during_export);
    assert_eq!((c.source_count_before, c.source_count_after, c.count), (Some(12_000), Some(11_900), 11_900));
    ok(&["verify", out.to_str().unwrap()]);
    // What it holds is exactly what a fresh export of the changed collection holds.
    let fresh = dir.path().join("fresh");
    ok(&[
        "export",
        "--from",
        &server.url,
        "--out",
        fresh.to_str().unwrap(),
        "--collection",
        &name,
        "--list-page",
        "1000",
    ]);
    let f = &Snapshot::open(&fresh).unwrap().manifest.collections[0];
    assert!(!f.changed_during_export);
    assert_eq!((f.count, &f.records_digest), (c.count, &c.records_digest), "the same records as a fresh export");

    let strict = dir.path().join("strict");
    let (success, stderr) = export_while_deleting(server, &name, &strict, 100, true);
    assert!(!success, "--strict must fail");
    assert!(stderr.contains("--strict: no snapshot written"), "{stderr}");
    assert!(!strict.join("manifest.json").exists());
    let res = snap(&["verify", strict.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(2), "a directory without a manifest is not a snapshot");
}
