//! `export --from-dir` against real directories: a server of each version is seeded (edge cases,
//! more records than one index sync, then updates, upserts and deletes that only the log holds),
//! exported over HTTP, stopped, and its directory exported: same settings, same records digests,
//! same records, every file of the directory unchanged. A running server's directory is refused;
//! damaged directories fail in one line naming the file, with no manifest; the snapshot loads
//! into a 1.5.9 server and verifies against it. A 0.5.23 directory, also after a 1.5.9 server
//! migrated it and then failed (the bricked upgrade), gives the 0.5.23 server's HTTP export.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::export::{ok, snap, snapshot_rows, tmp};
use crate::harness::{self, Server, V0, V1, V05};

/// blake3 of every file under `dir`, by path.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    harness::files_under(dir).into_iter().map(|(p, b)| (p, blake3::hash(&b).to_hex().to_string())).collect()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest")).expect("JSON")
}

/// Stops `server` keeping its data (the harness's drop removes it at the end of the test).
fn stop(server: &Server) {
    let st = Command::new(harness::repo().join("bin/chroma-server"))
        .args(["stop", &server.pid.to_string()])
        .status()
        .expect("run bin/chroma-server stop");
    assert!(st.success(), "stop {}", server.pid);
    assert!(!harness::process_alive(server.pid));
}

/// Seeds a fresh server, exports it over HTTP, stops it; returns (server, data dir, HTTP snapshot).
fn seeded_and_stopped(version: &'static str, tmp: &Path) -> (Server, PathBuf, PathBuf) {
    let server = Server::start(version);
    harness::seed_edge_cases(&server, "e");
    let churn = harness::run_py(version, "tests/py/seed_churn.py", &[&server.url, "c"]);
    assert!(churn.contains("\"c_churn_cos\": 3443"), "{churn}");
    let http = tmp.join("http");
    ok(&["export", "--from", &server.url, "--out", http.to_str().unwrap(), "--quiet"]);
    let data = server.dir.join("data");
    // While the server runs, its directory is refused (exit 2, the hint, no snapshot).
    let live = tmp.join("live");
    let out = snap(&["export", "--from-dir", data.to_str().unwrap(), "--out", live.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{version}: {err}");
    assert!(err.contains("has chroma.sqlite3 open") || err.contains("open (a server is running"), "{version}: {err}");
    assert!(err.contains("--force") && !live.join("manifest.json").exists(), "{version}: {err}");
    stop(&server);
    (server, data, http)
}

/// Exports `data` with `--from-dir --strict` into `out` (files of `data` unchanged) and checks
/// that it holds what the HTTP export `http` holds; returns the summary.
fn export_and_compare(version: &str, data: &Path, http: &Path, out: &Path) -> Value {
    let before = hashes(data);
    let summary: Value = serde_json::from_str(&ok(&[
        "export",
        "--from-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
        "--quiet",
        "--strict",
    ]))
    .expect("summary JSON");
    assert_eq!(hashes(data), before, "{version}: a file of the data directory changed");
    assert!(summary["records"].as_u64().unwrap() > 5000, "{summary}");

    let (a, b) = (manifest(http), manifest(out));
    let source = &b["source"];
    assert_eq!(source["kind"], "directory");
    let schema = source["schema_version"].as_str().unwrap();
    assert!(schema.starts_with("sysdb "), "{schema}");
    assert_eq!(source["url"], format!("file://{}", data.display()));
    let names = |m: &Value| m["collections"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for (x, y) in a["collections"].as_array().unwrap().iter().zip(b["collections"].as_array().unwrap()) {
        let name = x["name"].as_str().unwrap();
        for key in ["id", "metadata", "configuration", "space", "dimension", "count", "records_digest"] {
            assert_eq!(x[key], y[key], "{version} {name}: {key}");
        }
        assert_eq!(snapshot_rows(http, name), snapshot_rows(out, name), "{version} {name}: records");
    }
    // The log mattered: the churn collections replayed rows after the last index sync.
    let churn = summary["collections"].as_array().unwrap().iter().find(|c| c["name"] == "c_churn_cos").unwrap();
    assert!(churn["log_rows"].as_u64().unwrap() > 300, "{churn}");
    ok(&["verify", out.to_str().unwrap()]);
    let shown = ok(&["inspect", out.to_str().unwrap()]);
    assert!(
        shown.contains(&format!("source: the data directory file://{} (Chroma schema {schema}", data.display())),
        "{shown}"
    );
    summary
}

fn from_dir_equals_http_export(version: &'static str) {
    let t = tmp();
    let (_server, data, http) = seeded_and_stopped(version, t.path());
    let out = t.path().join("dir");
    export_and_compare(version, &data, &http, &out);

    // Loaded into a 1.5.9 server, it verifies against it.
    let target = harness::shared(V1);
    let prefix = harness::unique("fromdir");
    let mut args =
        vec!["load".to_string(), out.to_str().unwrap().into(), "--to".into(), target.url.clone(), "--quiet".into()];
    let mut verify = vec!["verify".to_string(), out.to_str().unwrap().into(), "--against".into(), target.url.clone()];
    for name in ["c_churn_cos", "c_churn_l2", "e_unicode", "e_scalars"] {
        for a in [&mut args, &mut verify] {
            a.extend(["--collection".into(), format!("{name}={prefix}_{name}")]);
        }
    }
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&verify.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn from_dir_equals_http_export_1_5_9() {
    from_dir_equals_http_export(V1);
}

#[test]
fn from_dir_equals_http_export_0_4_24() {
    from_dir_equals_http_export(V0);
}

/// 0.5.23 (batches counted in log rows, the log pruned), then the bricked upgrade: a copy of its
/// directory opened by 1.5.9, which migrates it and then fails ("backfill request to
/// compactor"), still gives what the 0.5.23 server exported.
#[test]
fn from_dir_of_0_5_23_and_of_its_bricked_upgrade() {
    let t = tmp();
    let (_server, data, http) = seeded_and_stopped(V05, t.path());
    export_and_compare(V05, &data, &http, &t.path().join("dir"));

    let upgraded = t.path().join("upgraded");
    crate::support::copy_dir(&data, &upgraded.join("data"));
    let new = Server::start_args(V1, &["--dir", upgraded.to_str().unwrap()]);
    let list = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    let (status, body) = new.get(list);
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let failed = ids.iter().filter(|id| new.get(&format!("{list}/{id}/count")).0 == 500).count();
    assert!(failed > 0, "the 1.5.9 server read the 0.5.23 directory without failing: the bricked case is gone");
    stop(&new);
    let data = upgraded.join("data");
    let bricked = t.path().join("bricked");
    export_and_compare(V05, &data, &http, &bricked);
    let source = &manifest(&bricked)["source"];
    assert!(source["schema_version"].as_str().unwrap().starts_with("sysdb 10"), "migrated by 1.5.9: {source}");
    assert_eq!(source["server_version"], "0.x", "read by the rules of the server that wrote it: {source}");
}

/// One damaged copy of a stopped 1.5.9 directory per case: exit 2, one line naming the file,
/// no manifest.
#[test]
fn from_dir_damaged_inputs_fail_in_one_line() {
    let t = tmp();
    let server = Server::start(V1);
    harness::run_py(V1, "tests/py/seed_churn.py", &[&server.url, "c", "1200"]);
    stop(&server);
    let data = server.dir.join("data");
    // The vector segment whose index was saved (it holds the id map).
    let seg = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("index_metadata.pickle").exists())
        .expect("a saved index");
    let seg_name = seg.file_name().unwrap().to_owned();
    type Damage = fn(&Path, &Path);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "truncated",
            |d, s| {
                let f = d.join(s).join("data_level0.bin");
                let len = std::fs::metadata(&f).unwrap().len();
                std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(len / 2).unwrap();
            },
            "data_level0.bin",
        ),
        ("no-segment", |d, s| std::fs::remove_dir_all(d.join(s)).unwrap(), "missing"),
        (
            "corrupt-sqlite",
            |d, _| {
                let f = d.join("chroma.sqlite3");
                let mut b = std::fs::read(&f).unwrap();
                b[..100].fill(0x5a);
                std::fs::write(&f, b).unwrap();
            },
            "chroma.sqlite3",
        ),
        (
            "unknown-schema",
            |d, _| {
                let c = rusqlite::Connection::open(d.join("chroma.sqlite3")).unwrap();
                c.execute("INSERT INTO migrations VALUES ('metadb', 99, 'x.sql', '', '')", []).unwrap();
            },
            "unknown Chroma schema version",
        ),
    ];
    for (name, damage, expect) in cases {
        let copy = t.path().join(name);
        crate::support::copy_dir(&data, &copy);
        damage(&copy, Path::new(&seg_name));
        let out = t.path().join(format!("{name}-snap"));
        let o = snap(&["export", "--from-dir", copy.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: {err}");
        assert!(lines[0].contains(expect), "{name}: {err}");
        assert!(!out.join("manifest.json").exists(), "{name}: a manifest was written");
    }

    // Log rows the metadata segment never applied (its position moved back, as when a server is
    // killed between writing the log and applying it) are reported, and refused under --strict.
    let lag = t.path().join("lagging");
    crate::support::copy_dir(&data, &lag);
    let c = rusqlite::Connection::open(lag.join("chroma.sqlite3")).unwrap();
    let moved = c
        .execute(
            "UPDATE max_seq_id SET seq_id = seq_id - 5 WHERE segment_id IN (SELECT s.id FROM segments s \
             JOIN collections c ON c.id = s.collection WHERE c.name = 'c_churn_l2' AND s.scope = 'METADATA')",
            [],
        )
        .unwrap();
    assert_eq!(moved, 1);
    drop(c);
    let out = t.path().join("lagging-snap");
    let o = snap(&["export", "--from-dir", lag.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("c_churn_l2") && err.contains("5 log rows") && err.contains("never applied"), "{err}");
    let out = t.path().join("lagging-strict");
    let o =
        snap(&["export", "--from-dir", lag.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--strict"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("manifest.json").exists());

    // Vectors in neither the index nor the log (the log rows after the index's position lost):
    // those records are left out, counted and named; --strict refuses.
    let lost = t.path().join("lost");
    crate::support::copy_dir(&data, &lost);
    let c = rusqlite::Connection::open(lost.join("chroma.sqlite3")).unwrap();
    let removed = c
        .execute(
            "WITH c AS (SELECT id FROM collections WHERE name = 'c_churn_l2'), \
             v AS (SELECT m.seq_id FROM max_seq_id m JOIN segments s ON s.id = m.segment_id \
                   WHERE s.collection = (SELECT id FROM c) AND s.scope = 'VECTOR') \
             DELETE FROM embeddings_queue WHERE vector IS NOT NULL AND id LIKE 'm%' \
             AND topic LIKE '%/' || (SELECT id FROM c) AND seq_id > (SELECT seq_id FROM v)",
            [],
        )
        .unwrap();
    assert!(removed > 0, "no log rows after the index's position to remove");
    drop(c);
    let out = t.path().join("lost-snap");
    let o =
        snap(&["export", "--from-dir", lost.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json", "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let l2 = summary["collections"].as_array().unwrap().iter().find(|c| c["name"] == "c_churn_l2").unwrap();
    let missing = l2["missing_vectors"].as_u64().unwrap();
    let first = l2["missing_ids"][0].as_str().unwrap_or_else(|| panic!("no missing ids: {l2}")).to_owned();
    assert_eq!(missing, l2["missing_ids"].as_array().unwrap().len() as u64, "{l2}");
    assert!(first.starts_with('m') && err.contains("records left out") && err.contains(&format!("{first:?}")), "{err}");
    let entry =
        manifest(&out)["collections"].as_array().unwrap().iter().find(|c| c["name"] == "c_churn_l2").unwrap().clone();
    assert_eq!(entry["count"].as_u64().unwrap() + missing, entry["source_count_before"].as_u64().unwrap(), "{entry}");
    ok(&["verify", out.to_str().unwrap()]);
    let out = t.path().join("lost-strict");
    let o =
        snap(&["export", "--from-dir", lost.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--strict"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("have no vector in the index nor the log") && err.contains(&format!("{first:?}")), "{err}");
    assert!(!out.join("manifest.json").exists());
}
