//! Damaged and hostile snapshots: each is refused with a message that names the file, part or
//! collection, and a non-zero exit; nothing outside the snapshot directory is ever read.

use std::path::Path;

use serde_json::Value;

use crate::export::{ok, snap, tmp};
use crate::harness::{self, V1};

/// A small exported snapshot to damage: two collections with parts, of 3 and 768 dimensions.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let server = harness::shared(V1);
    let prefix = harness::unique("bad");
    harness::seed_edge_cases(server, &prefix);
    let dir = tmp();
    let out = dir.path().join("snap");
    let (a, b) = (format!("{prefix}_unicode"), format!("{prefix}_ip768"));
    ok(&[
        "export",
        "--from",
        &server.url,
        "--out",
        out.to_str().unwrap(),
        "--collection",
        &a,
        "--collection",
        &b,
        "--quiet",
    ]);
    (dir, out)
}

fn manifest(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(out: &Path, v: &Value) {
    std::fs::write(out.join("manifest.json"), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// `verify` and `inspect` both refuse, with `code` and a message containing `needle`.
fn refused(out: &Path, code: i32, needle: &str) {
    for cmd in ["verify", "inspect"] {
        let res = snap(&[cmd, out.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        if cmd == "inspect" && code == 3 {
            continue; // inspect reads the manifest and samples; integrity is verify's job
        }
        assert_eq!(res.status.code(), Some(code), "{cmd}: {stderr}");
        assert!(stderr.contains(needle), "{cmd}: {needle:?} not in:\n{stderr}");
    }
}

#[test]
fn manifest_problems_are_refused() {
    let (_keep, out) = fixture();
    let good = manifest(&out);

    std::fs::write(out.join("manifest.json"), "{ not json").unwrap();
    refused(&out, 2, "manifest.json: not a valid manifest");

    let mut newer = good.clone();
    newer["format_version"] = Value::from(99);
    write_manifest(&out, &newer);
    refused(&out, 2, "format_version 99 is newer than this chroma-snap understands");

    std::fs::remove_file(out.join("manifest.json")).unwrap();
    refused(&out, 2, "is not a snapshot: it has no manifest.json");

    for (bad, why) in [("../outside.parquet", "contains '..'"), ("/etc/passwd", "is absolute")] {
        let mut m = good.clone();
        m["collections"][0]["parts"][0]["path"] = Value::from(bad);
        write_manifest(&out, &m);
        refused(&out, 2, &format!("part path \"{bad}\" {why}"));
    }
    write_manifest(&out, &good);
    ok(&["verify", out.to_str().unwrap()]);
}

#[test]
fn a_symlink_that_leaves_the_snapshot_is_refused() {
    let (keep, out) = fixture();
    let m = manifest(&out);
    let rel = m["collections"][0]["parts"][0]["path"].as_str().unwrap().to_owned();
    let part = out.join(&rel);
    let outside = keep.path().join("outside.parquet");
    std::fs::rename(&part, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &part).unwrap();
    let res = snap(&["verify", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("part path \"{rel}\" resolves outside the snapshot")), "{stderr}");
}

#[test]
fn stray_files_schema_mismatch_and_duplicate_ids_are_caught() {
    let (_keep, out) = fixture();
    std::fs::write(out.join("parts/notes.txt"), "hello").unwrap();
    let res = snap(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&res.stderr).contains("unexpected file parts/notes.txt"));
    std::fs::remove_file(out.join("parts/notes.txt")).unwrap();

    // A part from another collection (different dimension) listed under the first one.
    let good = manifest(&out);
    let mut m = good.clone();
    let other = m["collections"][1]["parts"][0].clone();
    m["collections"][0]["parts"].as_array_mut().unwrap().push(other.clone());
    write_manifest(&out, &m);
    let res = snap(&["verify", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("dimensions, the manifest says"), "{stderr}");

    // The same part listed twice: every id appears twice in the collection.
    let mut m = good.clone();
    let first = m["collections"][0]["parts"][0].clone();
    m["collections"][0]["parts"].as_array_mut().unwrap().push(first);
    write_manifest(&out, &m);
    let res = snap(&["verify", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("duplicate id"), "{stderr}");
    write_manifest(&out, &good);
    ok(&["verify", out.to_str().unwrap()]);
}
