//! What a snapshot must be, whatever its manifest claims (docs/snapshot-format.md), checked in
//! one place: the manifest's structure when it is opened, and every record as a part is read, so
//! verify, transform, load and inspect refuse the same damage with the same words.

use std::collections::HashSet;

use arrow::record_batch::RecordBatch;

use super::convert::BatchView;
use super::manifest::{CollectionEntry, MANIFEST_FILE, Manifest, PartEntry};
use crate::record::{RecordRef, canonical_metadata, parse_metadata};

/// Directory reserved for tool state beside a snapshot (load journals, locks); never a part.
pub const STATE_DIR: &str = ".chroma-snap";

/// Documented side files a snapshot's root may hold beside its parts (a transform's
/// `rejects.parquet` and `report.json`); never a part.
pub const SIDE_FILES: &[&str] = &["rejects.parquet", "report.json"];

/// The largest embedding dimension a part can hold (Arrow's fixed-size list length is an i32).
pub const MAX_DIMENSION: usize = i32::MAX as usize;

/// The distance spaces Chroma knows.
pub const SPACES: &[&str] = &["l2", "cosine", "ip"];

/// Structural rules every reader applies when it opens a manifest: versions, names, paths,
/// hashes, dimensions and sums that cannot overflow. The first broken rule is returned.
pub fn check_manifest(m: &Manifest) -> Result<(), String> {
    if m.format_version < 1 {
        return Err(format!("format_version {} is not a snapshot format (the first is 1)", m.format_version));
    }
    plain_text("tool.name", &m.tool.name)?;
    plain_text("tool.version", &m.tool.version)?;
    plain_text("created_at", &m.created_at)?;
    if let Some(s) = &m.source {
        let version = s.server_version.as_deref().unwrap_or("");
        for (what, v) in [
            ("source.url", s.url.as_str()),
            ("source.api", &s.api),
            ("source.tenant", &s.tenant),
            ("source.database", &s.database),
            ("source.server_version", version),
            ("source.kind", s.kind.as_deref().unwrap_or("")),
            ("source.schema_version", s.schema_version.as_deref().unwrap_or("")),
        ] {
            plain_text(what, v)?;
        }
    }
    let mut names = HashSet::new();
    let mut total = 0u64;
    for c in &m.collections {
        check_collection(c)?;
        if !names.insert(c.name.as_str()) {
            return Err(format!("collection {:?} is listed twice", c.name));
        }
        total = total
            .checked_add(c.count)
            .ok_or_else(|| format!("collection {:?}: the record counts overflow a 64-bit total", c.name))?;
    }
    Ok(())
}

/// One collection entry: text fields, space, dimension, digest, and each part's path and hash.
fn check_collection(c: &CollectionEntry) -> Result<(), String> {
    let here = |why: String| format!("collection {:?}: {why}", c.name);
    plain_text("collection name", &c.name).map_err(here)?;
    plain_text("id", &c.id).map_err(here)?;
    if !SPACES.contains(&c.space.as_str()) {
        return Err(here(format!("space {:?} is not one of {SPACES:?}", c.space)));
    }
    match c.dimension {
        Some(d) if d == 0 || d > MAX_DIMENSION => {
            return Err(here(format!("dimension {d} is outside 1..={MAX_DIMENSION}")));
        }
        None if c.count > 0 => return Err(here(format!("dimension is null but count is {}", c.count))),
        _ => {}
    }
    hex64("records_digest", &c.records_digest).map_err(here)?;
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for p in &c.parts {
        let part = |why: String| here(format!("part {:?}: {why}", p.path));
        check_part_name(&p.path).map_err(part)?;
        hex64("blake3", &p.blake3).map_err(part)?;
        rows = rows.checked_add(p.rows).ok_or_else(|| here("part rows overflow a 64-bit sum".into()))?;
        bytes = bytes.checked_add(p.bytes).ok_or_else(|| here("part sizes overflow a 64-bit sum".into()))?;
    }
    Ok(())
}

/// Consistency between what the manifest says of a collection and of its parts. Verify reports
/// these beside what it finds in the files; the other readers refuse the snapshot.
pub fn manifest_problems(m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    let mut paths = HashSet::new();
    for c in &m.collections {
        for p in c.parts.iter().filter(|p| !paths.insert(p.path.as_str())) {
            out.push(format!("collection {:?}: part {} is listed more than once in the manifest", c.name, p.path));
        }
        // check_manifest proved the sum fits.
        let rows: u64 = c.parts.iter().map(|p| p.rows).sum();
        if rows != c.count {
            out.push(format!(
                "collection {:?}: its parts list {rows} rows, the manifest's count is {}",
                c.name, c.count
            ));
        }
    }
    out
}

/// A part path names a part file: not the manifest, a side file, or anything under the state
/// directory.
fn check_part_name(path: &str) -> Result<(), String> {
    plain_text("the path", path)?;
    let first = path.split('/').next().unwrap_or("");
    if first == STATE_DIR {
        return Err(format!("is under the tool state directory {STATE_DIR}/"));
    }
    if path == MANIFEST_FILE || SIDE_FILES.contains(&path) {
        return Err("names a snapshot file that is not a part".into());
    }
    Ok(())
}

fn plain_text(what: &str, s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("{what} {s:?} holds the control character {:?}", c)),
        None => Ok(()),
    }
}

fn hex64(what: &str, s: &str) -> Result<(), String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(format!("{what} {s:?} is not 64 lowercase hex digits"))
    }
}

/// A part's embedding dimension against its collection: the manifest's, or, when that is null,
/// no records at all.
pub fn check_part_dimension(want: Option<usize>, dim: usize, rows: u64) -> Result<(), String> {
    match want {
        Some(want) if want != dim => Err(format!("embeddings have {dim} dimensions, the manifest says {want}")),
        None if rows > 0 => Err(format!("holds {rows} rows but its collection's dimension is null")),
        _ => Ok(()),
    }
}

/// A part file's row count against its manifest entry.
pub fn check_part_rows(p: &PartEntry, file_rows: u64) -> Result<(), String> {
    if file_rows == p.rows { Ok(()) } else { Err(format!("{file_rows} rows, the manifest says {}", p.rows)) }
}

/// Every record of a decoded part batch (see [`check_record`]); the first problem is returned.
pub fn check_batch(batch: &RecordBatch) -> Result<(), String> {
    BatchView::new(batch).records().try_for_each(|r| check_record(&r))
}

/// What one record of a part must be: metadata that is null or canonical JSON of an object
/// (valid JSON, finite numbers, no trailing text, keys sorted). An empty id is a record a 0.x
/// server held; the format keeps it and load's pre-flight refuses it.
pub fn check_record(r: &RecordRef<'_>) -> Result<(), String> {
    if let Some(text) = r.metadata {
        check_metadata(text).map_err(|why| format!("record {:?}: {why}", r.id))?;
    }
    Ok(())
}

/// Metadata text as the format requires it: the canonical JSON of an object.
pub fn check_metadata(text: &str) -> Result<(), String> {
    let m = parse_metadata(text).map_err(|e| format!("metadata is not a JSON object of finite values: {e}"))?;
    if canonical_metadata(&m) != text {
        return Err("metadata is not canonical JSON (re-encoding it changes it)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_must_be_a_canonical_object() {
        assert!(check_metadata(r#"{"a":1,"b":1.0,"c":[1,2],"d":"x"}"#).is_ok());
        assert!(check_metadata("{}").is_ok());
        for bad in [
            "{not json",
            "NaN",
            "[1]",
            "1e400",
            r#"{"a":1e400}"#,
            r#"{"a":1} x"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"b":1,"a":1}"#,
            r#"{"a": 1}"#,
            r#"{"a":1,"a":2}"#,
            "",
        ] {
            assert!(check_metadata(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nan_embeddings_and_empty_ids_are_kept() {
        let r = RecordRef { id: "", embedding: &[f32::NAN], document: None, uri: None, metadata: Some("{}") };
        assert!(check_record(&r).is_ok(), "NaN is what a server answered for null; 0.x held empty ids");
    }

    #[test]
    fn part_names_stay_out_of_tool_files() {
        assert!(check_part_name("parts/0000/part-000000.parquet").is_ok());
        for bad in [".chroma-snap/x.parquet", ".chroma-snap", "manifest.json", "report.json", "rejects.parquet"] {
            assert!(check_part_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_and_text_rules() {
        assert!(hex64("h", &"a".repeat(64)).is_ok());
        assert!(hex64("h", &"A".repeat(64)).is_err());
        assert!(hex64("h", "d").is_err());
        assert!(plain_text("n", "docs").is_ok());
        assert!(plain_text("n", "do\u{1b}[31mcs").is_err());
    }
}
