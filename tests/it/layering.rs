//! The layering rules of docs/architecture.md, checked on the source tree so that a change that
//! breaks one fails here rather than in review: Parquet only in `snapshot/`, HTTP only in
//! `chroma/`, transform and `fromdir/` offline, a manifest hashed only where its bytes are, a `//!` line atop
//! every file.

use std::path::{Path, PathBuf};

fn sources() -> Vec<(String, String)> {
    let root = crate::harness::repo().join("src");
    let mut out: Vec<(String, String)> = crate::harness::files_under(&root)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "rs"))
        .map(|(p, bytes): (PathBuf, Vec<u8>)| {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            (rel, String::from_utf8(bytes).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() > 50, "found only {} source files under {}", out.len(), root.display());
    out
}

fn offenders(pred: impl Fn(&str) -> bool, needles: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(rel, _)| pred(rel))
        .flat_map(|(rel, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| needles.iter().any(|n| l.contains(n)))
                .map(|(i, l)| format!("{rel}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn parquet_is_read_and_written_only_in_snapshot() {
    let found = offenders(|rel| !rel.starts_with("snapshot/"), &["parquet::", "ArrowWriter", "ParquetRecordBatch"]);
    assert!(found.is_empty(), "Parquet outside src/snapshot/:\n{}", found.join("\n"));
}

#[test]
fn http_is_spoken_only_in_chroma_and_never_by_snapshot_or_transform() {
    let found = offenders(|rel| !rel.starts_with("chroma/"), &["reqwest::"]);
    assert!(found.is_empty(), "HTTP outside src/chroma/:\n{}", found.join("\n"));
    let found = offenders(
        |rel| rel.starts_with("snapshot/") || rel.starts_with("transform/"),
        &["crate::chroma", "chroma_snap::chroma"],
    );
    assert!(found.is_empty(), "snapshot/ or transform/ uses the Chroma client:\n{}", found.join("\n"));
}

#[test]
fn a_data_directory_is_read_without_a_server_and_without_parquet() {
    // `fromdir/` may share the plain `CollectionInfo` type (one rule for the distance space), but
    // never the HTTP client; it writes parts only through the snapshot writer.
    let found = offenders(
        |rel| rel.starts_with("fromdir/"),
        &["chroma::Client", "chroma::connect", "chroma::request", "ConnectOptions", "arrow::", "RecordBatch"],
    );
    assert!(found.is_empty(), "fromdir/ reaches for a server or for Parquet:\n{}", found.join("\n"));
    // And SQLite is opened only there, read-only.
    let found = offenders(|rel| !rel.starts_with("fromdir/"), &["rusqlite::"]);
    assert!(found.is_empty(), "SQLite outside src/fromdir/:\n{}", found.join("\n"));
}

#[test]
fn a_manifest_is_hashed_only_in_snapshot() {
    let found = offenders(|rel| !rel.starts_with("snapshot/"), &["MANIFEST_FILE", "FileHash::of_reader"]);
    assert!(found.is_empty(), "manifest bytes handled outside src/snapshot/:\n{}", found.join("\n"));
}

#[test]
fn every_source_file_says_why_it_exists() {
    let missing: Vec<String> =
        sources().into_iter().filter(|(_, text)| !text.starts_with("//!")).map(|(rel, _)| rel).collect();
    assert!(missing.is_empty(), "no //! line at the top of: {missing:?}");
    assert!(Path::new(&crate::harness::repo().join("docs/architecture.md")).exists());
}
