//! Hostile snapshots whose manifest was resealed to match the damage: verify, inspect and
//! transform must still refuse what the format document says a part or manifest cannot be.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::mutate::{self, manifest, map_strings, read_part, reseal, write_manifest, write_part};

/// A small legacy snapshot (eight source collections) in a fresh directory.
pub fn small_legacy(records: usize, dim: usize) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("snap");
    let out = Command::new(env!("CARGO_BIN_EXE_legacy-fixture"))
        .args(["--records", &records.to_string(), "--dim", &dim.to_string(), "--snapshot"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (t, dir)
}

fn run(args: &[&OsStr]) -> mutate::Run {
    mutate::run(args, Duration::from_secs(20))
}

/// `cmd DIR` refuses with `code` and a one-line error naming `needle`.
fn refuses(cmd: &str, dir: &Path, code: i32, needle: &str) {
    let r = run(&[OsStr::new(cmd), dir.as_os_str()]);
    assert_eq!(r.code, Some(code), "{cmd}: {}", r.stderr);
    assert!(r.stderr.contains(needle), "{cmd}: {needle:?} not in:\n{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

/// Replaces the metadata of the first record of the first part with `text`, then reseals.
fn with_metadata(dir: &Path, text: &str) {
    let path = mutate::part_file(dir, 0, 0);
    let b = map_strings(&read_part(&path), 4, |i, old| if i == 0 { Some(text.into()) } else { old.map(Into::into) });
    write_part(&path, &b);
    reseal(dir);
}

#[test]
fn metadata_that_is_not_canonical_json_is_damage() {
    for bad in ["{not json", "NaN", r#"{"a":1} trailing"#, "1e400", r#"{"n":18446744073709551616}"#, "[1]"] {
        let (_t, dir) = small_legacy(120, 8);
        with_metadata(&dir, bad);
        refuses("verify", &dir, 3, "metadata is not");
        refuses("inspect", &dir, 2, "metadata is not");
        let out = dir.parent().unwrap().join("out");
        let spec = OsStr::new(crate::transform::SPEC);
        let r = run(&[
            OsStr::new("transform"),
            dir.as_os_str(),
            OsStr::new("--spec"),
            spec,
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--trust-input"),
        ]);
        assert_eq!(r.code, Some(2), "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("metadata is not"), "{}", r.stderr);
        assert!(!out.join("manifest.json").exists(), "{bad}: transform wrote a snapshot");
    }
}

#[test]
fn parts_of_other_dimensions_under_a_null_dimension_are_damage() {
    let (_t, dir) = small_legacy(120, 8);
    // A copy of the first part with 4-dimensional embeddings, listed as a second part.
    let first = mutate::part_file(&dir, 0, 0);
    let other = first.with_file_name("part-000099.parquet");
    let renamed = map_strings(&read_part(&first), 0, |_, id| id.map(|id| format!("other-{id}")));
    write_part(&other, &mutate::with_dimension(&renamed, 4));
    let mut m = manifest(&dir);
    let mut part = m["collections"][0]["parts"][0].clone();
    let rel = part["path"].as_str().unwrap().replace("part-000000", "part-000099");
    part["path"] = Value::from(rel);
    m["collections"][0]["parts"].as_array_mut().unwrap().push(part);
    m["collections"][0]["dimension"] = Value::Null;
    write_manifest(&dir, &m);
    reseal(&dir);
    refuses("verify", &dir, 2, "dimension is null but count");
    refuses("inspect", &dir, 2, "dimension is null");
}

#[test]
fn two_collections_with_one_name_are_damage() {
    let (_t, dir) = small_legacy(120, 8);
    let mut m = manifest(&dir);
    m["collections"][1]["name"] = m["collections"][0]["name"].clone();
    write_manifest(&dir, &m);
    refuses("verify", &dir, 2, "is listed twice");
    refuses("inspect", &dir, 2, "is listed twice");
}

#[test]
fn counts_near_u64_max_do_not_wrap() {
    let (_t, dir) = small_legacy(120, 8);
    let mut m = manifest(&dir);
    m["collections"][0]["count"] = Value::from(u64::MAX);
    m["collections"][1]["count"] = Value::from(1u64);
    write_manifest(&dir, &m);
    refuses("verify", &dir, 2, "overflow");
    refuses("inspect", &dir, 2, "overflow");
    let mut m = manifest(&dir);
    m["collections"][0]["count"] = Value::from(0u64);
    m["collections"][0]["parts"][0]["rows"] = Value::from(u64::MAX);
    let twice = m["collections"][0]["parts"][0].clone();
    m["collections"][0]["parts"].as_array_mut().unwrap().push(twice);
    write_manifest(&dir, &m);
    refuses("inspect", &dir, 2, "overflow");
}

#[test]
fn counts_that_disagree_with_the_parts_are_damage() {
    let (_t, dir) = small_legacy(120, 8);
    let mut m = manifest(&dir);
    // The manifest claims fewer records than the part holds (progress showed '12/3 records').
    m["collections"][0]["count"] = Value::from(3u64);
    m["collections"][0]["parts"][0]["rows"] = Value::from(3u64);
    write_manifest(&dir, &m);
    refuses("verify", &dir, 3, "the manifest says 3");
    refuses("inspect", &dir, 2, "the manifest says 3");
    let out = dir.parent().unwrap().join("out");
    let r = run(&[
        OsStr::new("transform"),
        dir.as_os_str(),
        OsStr::new("--spec"),
        OsStr::new(crate::transform::SPEC),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--trust-input"),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("the manifest says 3"), "{}", r.stderr);
    assert!(!out.join("manifest.json").exists());
}

#[test]
fn format_version_zero_is_refused() {
    let (_t, dir) = small_legacy(120, 8);
    let mut m = manifest(&dir);
    m["format_version"] = Value::from(0);
    write_manifest(&dir, &m);
    refuses("verify", &dir, 2, "format_version 0");
    refuses("inspect", &dir, 2, "format_version 0");
}

#[test]
fn a_part_under_the_state_directory_is_refused() {
    let (_t, dir) = small_legacy(120, 8);
    let mut m = manifest(&dir);
    let rel = m["collections"][0]["parts"][0]["path"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(dir.join(".chroma-snap")).unwrap();
    std::fs::rename(dir.join(&rel), dir.join(".chroma-snap/part.parquet")).unwrap();
    m["collections"][0]["parts"][0]["path"] = Value::from(".chroma-snap/part.parquet");
    write_manifest(&dir, &m);
    refuses("verify", &dir, 2, "tool state directory");
    refuses("inspect", &dir, 2, "tool state directory");
}

#[test]
fn control_characters_in_names_are_refused() {
    let (_t, dir) = small_legacy(120, 8);
    let mut m = manifest(&dir);
    m["collections"][0]["name"] = Value::from("docs\u{1b}[2J");
    write_manifest(&dir, &m);
    refuses("verify", &dir, 2, "control character");
    refuses("inspect", &dir, 2, "control character");
}
