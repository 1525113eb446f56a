//! Byte-identity goldens: the snapshots chroma-snap writes today, pinned by blake3 and size, so a
//! rewrite of the snapshot I/O code can prove it writes the very same bytes for the same input.
//!
//! Four cases, each with a golden file in `tests/golden/bytes/`:
//! - `legacy.json`: `legacy-fixture --snapshot DIR` (fully deterministic, manifest included);
//! - `transform.json`: that snapshot through `fixtures/specs/four-collections.toml` (parts,
//!   manifest, `rejects.parquet` and `report.json`: the report holds no time, duration or path,
//!   checked over several runs, so it is pinned whole);
//! - `export-1.5.9.json`, `export-0.4.24.json`: an export of the edge-case collections seeded by
//!   `tests/py/seed_edge_cases.py` (deterministic for a given client version) into a real server.
//!   Parts are byte-identical across runs and servers; in the manifest the values of `created_at`,
//!   `url` (the server's random port) and `id` (collection UUIDs, new on every seeding) vary, so
//!   those values are blanked and the collection-name prefix is replaced before hashing.
//!
//! Each golden records, per file, `{bytes, blake3}` and, per collection, its `records_digest`.
//!
//! To rewrite the goldens on purpose (after a deliberate format change, never to make a failure
//! go away): `UPDATE_GOLDEN=1 cargo test --release --test it -- golden_bytes`, then review and
//! commit the diff of `tests/golden/bytes/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{self, V0, V1};
use crate::transform::{SPEC, legacy, transform};

/// The edge-case collections the seeder writes (`arrays` only with chromadb >= 1.5).
const EDGE_SUFFIXES: [&str; 10] =
    ["arrays", "bare", "bigdoc", "cos768", "empty", "ip768", "l2_1536", "l2_3", "scalars", "unicode"];
/// Manifest keys whose values differ between two exports of the same data.
const EXPORT_VOLATILE: [&str; 3] = ["created_at", "url", "id"];

fn golden_path(case: &str) -> PathBuf {
    harness::repo().join("tests/golden/bytes").join(format!("{case}.json"))
}

/// `text` with the value of every `"key": value` line for a key in `keys` replaced by
/// `"<varies>"`, keeping every other byte (indentation, order, trailing commas) as it was.
fn blank_values(text: &str, keys: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let hit = keys.iter().find(|k| trimmed.starts_with(&format!("\"{k}\": ")));
        match hit {
            Some(k) => {
                let indent = &line[..line.len() - trimmed.len()];
                let comma = if line.trim_end().ends_with(',') { "," } else { "" };
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                out.push_str(&format!("{indent}\"{k}\": \"<varies>\"{comma}{newline}"));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// `{bytes, blake3}` of every file under `dir` by relative path (`/` separated), each file's
/// bytes passed through `normalize(relative_path, bytes)` first.
fn file_hashes(dir: &Path, normalize: &dyn Fn(&str, Vec<u8>) -> Vec<u8>) -> BTreeMap<String, Value> {
    harness::files_under(dir)
        .into_iter()
        .map(|(path, bytes)| {
            let rel = path.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            let bytes = normalize(&rel, bytes);
            let entry = json!({"bytes": bytes.len(), "blake3": blake3::hash(&bytes).to_hex().to_string()});
            (rel, entry)
        })
        .collect()
}

/// Each collection's `records_digest` from `dir/manifest.json`, named by `rename(name)`.
fn records_digests(dir: &Path, rename: &dyn Fn(&str) -> String) -> BTreeMap<String, Value> {
    let path = dir.join("manifest.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let manifest: Value = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let collections =
        manifest["collections"].as_array().unwrap_or_else(|| panic!("{}: no collections", path.display()));
    collections
        .iter()
        .map(|c| (rename(c["name"].as_str().expect("collection name")), c["records_digest"].clone()))
        .collect()
}

/// Everything a golden pins about the snapshot in `dir`.
fn fingerprint(dir: &Path, normalize: &dyn Fn(&str, Vec<u8>) -> Vec<u8>, rename: &dyn Fn(&str) -> String) -> Value {
    json!({"files": file_hashes(dir, normalize), "records_digests": records_digests(dir, rename)})
}

/// Compare `actual` with golden `case`, or rewrite the golden when `UPDATE_GOLDEN=1`.
fn check_golden(case: &str, actual: &Value) {
    let path = golden_path(case);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("golden_bytes: rewrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {} ({e}); create it with UPDATE_GOLDEN=1", path.display()));
    let golden: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if &golden != actual {
        panic!("{case}: output differs from {}:\n{}", path.display(), differences(&golden, actual));
    }
}

/// One line per file or collection whose golden and actual entries differ.
fn differences(golden: &Value, actual: &Value) -> String {
    let mut lines = Vec::new();
    for section in ["files", "records_digests"] {
        let empty = serde_json::Map::new();
        let g = golden[section].as_object().unwrap_or(&empty);
        let a = actual[section].as_object().unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = g.keys().chain(a.keys()).collect();
        for k in keys {
            if g.get(k) != a.get(k) {
                lines.push(format!("  {section}/{k}: golden {:?}, now {:?}", g.get(k), a.get(k)));
            }
        }
    }
    lines.join("\n")
}

fn unchanged(_: &str, bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

fn same_name(name: &str) -> String {
    name.to_string()
}

#[test]
fn golden_bytes_legacy_snapshot() {
    check_golden("legacy", &fingerprint(legacy(), &unchanged, &same_name));
}

#[test]
fn golden_bytes_four_collection_transform() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let o = transform(legacy(), Path::new(SPEC), &out, None);
    assert!(o.status.success(), "transform failed: {}", String::from_utf8_lossy(&o.stderr));
    check_golden("transform", &fingerprint(&out, &unchanged, &same_name));
}

/// Export the edge-case collections `{prefix}_*` of `server` into `out`.
fn export_edge_cases(server: &harness::Server, prefix: &str, out: &Path) {
    let mut args = vec!["export".to_string(), "--from".into(), server.url.clone(), "--quiet".into()];
    args.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
    for suffix in EDGE_SUFFIXES {
        if suffix != "arrays" || server.version == V1 {
            args.extend(["--collection".to_string(), format!("{prefix}_{suffix}")]);
        }
    }
    let o = std::process::Command::new(harness::bin()).args(&args).output().expect("run chroma-snap export");
    assert!(o.status.success(), "export from {} failed: {}", server.version, String::from_utf8_lossy(&o.stderr));
}

fn golden_export(version: &'static str) {
    let server = harness::shared(version);
    let prefix = harness::unique("gold");
    harness::seed_edge_cases(server, &prefix);
    let t = tempfile::tempdir().unwrap();
    let normalize = |rel: &str, bytes: Vec<u8>| -> Vec<u8> {
        if rel != "manifest.json" {
            return bytes;
        }
        let text = String::from_utf8(bytes).expect("manifest is UTF-8");
        blank_values(&text, &EXPORT_VOLATILE).replace(&format!("\"{prefix}_"), "\"PREFIX_").into_bytes()
    };
    let rename = |name: &str| name.replace(&format!("{prefix}_"), "PREFIX_");
    // Two exports of the same data: identical after normalisation, and equal to the golden.
    let runs: Vec<Value> = ["first", "second"]
        .iter()
        .map(|run| {
            let out = t.path().join(run);
            export_edge_cases(server, &prefix, &out);
            fingerprint(&out, &normalize, &rename)
        })
        .collect();
    assert_eq!(
        runs[0],
        runs[1],
        "{version}: two exports of the same data differ:\n{}",
        differences(&runs[0], &runs[1])
    );
    check_golden(&format!("export-{version}"), &runs[0]);
}

#[test]
fn golden_bytes_export_from_1_5_9() {
    golden_export(V1);
}

#[test]
fn golden_bytes_export_from_0_4_24() {
    golden_export(V0);
}

#[test]
fn golden_bytes_blank_values_keeps_layout() {
    let text = "{\n  \"created_at\": \"2026-01-01T00:00:00Z\",\n  \"id\": \"x\"\n}\n";
    let want = "{\n  \"created_at\": \"<varies>\",\n  \"id\": \"<varies>\"\n}\n";
    assert_eq!(blank_values(text, &["created_at", "id"]), want);
    assert_eq!(blank_values(text, &["url"]), text);
}
