//! `manifest.json`: what a snapshot holds, written last and atomically.
//!
//! A directory without a manifest is never a snapshot. Readers check `format_version` and every
//! part path before touching a file.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SnapshotError;
use super::digest::FileHash;
use super::store::{LocalStore, MANIFEST_LIMIT, Store};
use crate::record::Metadata;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: Tool,
    pub created_at: String,
    /// Where the records came from (export), absent for a derived snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// What this snapshot was derived from (transform), absent for an export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Value>,
    pub collections: Vec<CollectionEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Self {
        Self { name: env!("CARGO_PKG_NAME").into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    /// The server URL with any credentials removed.
    pub url: String,
    /// `v1` or `v2`.
    pub api: String,
    /// The server's release when it says (`0.4.24`), else its API version.
    #[serde(default)]
    pub server_version: Option<String>,
    pub tenant: String,
    pub database: String,
    /// `directory` when the records were read from a stopped server's data directory
    /// (`export --from-dir`; `url` is then its `file://` path); absent for a server over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For a directory: the Chroma schema found in its `chroma.sqlite3` (the newest migration of
    /// each kind, `sysdb 10, metadb 6, embeddings_queue 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CollectionEntry {
    pub name: String,
    pub id: String,
    pub metadata: Option<Metadata>,
    /// The collection configuration exactly as the server reported it (null on 0.4).
    pub configuration: Option<Value>,
    /// The distance space (`l2`, `cosine`, `ip`), resolved from configuration or `hnsw:space`.
    pub space: String,
    /// Embedding dimension; null for a collection without records.
    pub dimension: Option<usize>,
    /// Records written into the parts.
    pub count: u64,
    #[serde(default)]
    pub source_count_before: Option<u64>,
    #[serde(default)]
    pub source_count_after: Option<u64>,
    /// True when the source changed while it was exported (counts or listed ids differ).
    #[serde(default)]
    pub changed_during_export: bool,
    /// The filter the records were exported with (`export --where`): the snapshot holds only the
    /// records it selected, and a comparison with a live collection applies it there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<crate::record::RecordFilter>,
    pub records_digest: String,
    pub parts: Vec<PartEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartEntry {
    /// Relative to the snapshot root, `/`-separated.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub blake3: String,
}

impl CollectionEntry {
    /// An entry for records written here rather than exported (transform output, generated
    /// data): no source counts.
    pub fn written(
        name: String,
        id: String,
        metadata: Option<Metadata>,
        configuration: Option<Value>,
        space: String,
        dimension: Option<usize>,
        w: super::writer::WrittenCollection,
    ) -> Self {
        Self {
            name,
            id,
            metadata,
            configuration,
            space,
            dimension,
            count: w.count,
            source_count_before: None,
            source_count_after: None,
            changed_during_export: false,
            filter: None,
            records_digest: w.digest.to_hex(),
            parts: w.parts,
        }
    }
}

/// A stable, UUID-shaped collection id derived from `seed`, for collections no server named.
pub fn derived_id(seed: &str) -> String {
    let h = blake3::hash(seed.as_bytes()).to_hex();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl Manifest {
    pub fn new(source: Option<Source>, collections: Vec<CollectionEntry>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            tool: Tool::this(),
            created_at: now_rfc3339(),
            source,
            lineage: None,
            collections,
        }
    }

    /// Reads and checks `DIR/manifest.json`: format version and every part path.
    pub fn read(dir: &Path) -> Result<Self, SnapshotError> {
        Ok(Self::read_from(&LocalStore::new(dir))?.0)
    }

    /// Reads and checks the manifest of a store, with the blake3 of the bytes read.
    pub fn read_from(store: &dyn Store) -> Result<(Self, FileHash), SnapshotError> {
        let path = store.location(MANIFEST_FILE);
        let text = match store.read_small(MANIFEST_FILE, MANIFEST_LIMIT) {
            Ok(t) => t,
            Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotASnapshot { dir: store.location("") });
            }
            Err(e) => return Err(e),
        };
        let hash = FileHash(*blake3::hash(&text).as_bytes());
        // Look at the version first so a newer manifest is refused for the right reason.
        let probe: Value = serde_json::from_slice(&text)
            .map_err(|e| SnapshotError::BadManifest { path: path.clone(), why: e.to_string() })?;
        match probe.get("format_version").and_then(Value::as_u64) {
            Some(v) if v > u64::from(FORMAT_VERSION) => {
                return Err(SnapshotError::NewerFormat { path, found: v, supported: FORMAT_VERSION });
            }
            Some(_) => {}
            None => return Err(SnapshotError::BadManifest { path, why: "no numeric format_version".into() }),
        }
        let m: Manifest = serde_json::from_value(probe)
            .map_err(|e| SnapshotError::BadManifest { path: path.clone(), why: e.to_string() })?;
        for c in &m.collections {
            for p in &c.parts {
                check_part_path(&p.path).map_err(|why| SnapshotError::BadPartPath {
                    collection: c.name.clone(),
                    path: p.path.clone(),
                    why,
                })?;
            }
        }
        super::validate::check_manifest(&m).map_err(|why| SnapshotError::BadManifest { path, why })?;
        Ok((m, hash))
    }

    /// Writes `DIR/manifest.json` atomically (temp file, fsync, rename, fsync of the directory)
    /// and returns the blake3 of what it wrote.
    pub fn write_atomic(&self, dir: &Path) -> Result<FileHash, SnapshotError> {
        self.write_to(&LocalStore::new(dir))
    }

    /// Writes the manifest into a store, last and atomically; returns the blake3 of its bytes.
    pub fn write_to(&self, store: &dyn Store) -> Result<FileHash, SnapshotError> {
        let text = serde_json::to_vec_pretty(self).expect("manifest serialises");
        store.put_atomic(MANIFEST_FILE, &text)?;
        Ok(FileHash(*blake3::hash(&text).as_bytes()))
    }

    pub fn collection(&self, name: &str) -> Option<&CollectionEntry> {
        self.collections.iter().find(|c| c.name == name)
    }
}

/// Writes a small file atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(crate::fsmode::temp_permissions())
        .tempfile_in(dir)
        .map_err(|e| SnapshotError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| SnapshotError::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| SnapshotError::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| SnapshotError::io(path, e.error))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SnapshotError::io(dir, e))
}

/// A part path must be relative, `/`-separated, and made only of plain names (no `..`, no root).
pub fn check_part_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.contains('\\') || p.contains('\0') {
        return Err("contains a backslash or NUL".into());
    }
    let path = Path::new(p);
    for c in path.components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return Err("contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute".into()),
            Component::CurDir => return Err("contains '.'".into()),
        }
    }
    Ok(())
}

/// Resolves a checked part path inside `root`, refusing symlinks that lead outside it.
pub fn resolve_part(root: &Path, rel: &str) -> Result<PathBuf, String> {
    check_part_path(rel)?;
    let joined = root.join(rel);
    let (Ok(real_root), Ok(real)) = (root.canonicalize(), joined.canonicalize()) else {
        return Ok(joined); // missing: the caller reports it
    };
    if !real.starts_with(&real_root) {
        return Err(format!("resolves outside the snapshot (to {})", real.display()));
    }
    Ok(joined)
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats any time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_hash_is_of_the_bytes_written_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let written = Manifest::new(None, Vec::new()).write_atomic(dir.path()).unwrap();
        let on_disk = FileHash(*blake3::hash(&fs::read(dir.path().join(MANIFEST_FILE)).unwrap()).as_bytes());
        let (_, read) = Manifest::read_from(&LocalStore::new(dir.path())).unwrap();
        assert_eq!((written, read), (on_disk, on_disk));
    }

    #[test]
    fn part_paths_must_stay_inside() {
        assert!(check_part_path("parts/c0000/part-000000.parquet").is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a\\b", "./a"] {
            assert!(check_part_path(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn read_bytes(bytes: &[u8]) -> Result<Manifest, SnapshotError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), bytes).unwrap();
        Manifest::read(dir.path())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases()))]
        /// Arbitrary bytes never panic the manifest reader.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = read_bytes(&bytes);
        }

        /// A valid manifest with any one JSON value replaced never panics, and a bad part path
        /// is always refused.
        #[test]
        fn mutated_manifests_never_panic(path in "\\\\PC{0,20}", version in any::<i64>(), count in any::<i64>()) {
            let text = serde_json::json!({
                "format_version": version, "tool": {"name": "x", "version": "1"}, "created_at": "t",
                "collections": [{"name": "c", "id": "i", "metadata": null, "configuration": null, "space": "l2",
                    "dimension": 3, "count": count, "records_digest": "d",
                    "parts": [{"path": path, "rows": 1, "bytes": 1, "blake3": "h"}]}]
            });
            if let Ok(m) = read_bytes(text.to_string().as_bytes()) {
                prop_assert!(check_part_path(&m.collections[0].parts[0].path).is_ok());
            }
        }
    }
}
