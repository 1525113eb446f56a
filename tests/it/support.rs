//! Small helpers several integration test files share: synthetic snapshots written with the
//! library's own writer, stderr of a finished command, directory copies, a snapshot's parts and
//! digest, and the seeded random generators behind kill points and synthetic data.
//!
//! Why one file: these helpers used to be copied between test files, so a fix in one copy never
//! reached the others.

use std::path::{Path, PathBuf};
use std::process::Output;

use chroma_snap::record::RecordPage;
use chroma_snap::snapshot::reader::Snapshot;
use chroma_snap::snapshot::writer::{CollectionWriter, WriterOptions};
use chroma_snap::snapshot::{CollectionEntry, Manifest};
use serde_json::{Map, Value};

/// One collection of a synthetic snapshot: its records and what the manifest says about it.
pub struct SnapCollection {
    pub name: String,
    pub dim: usize,
    pub space: String,
    pub metadata: Option<Map<String, Value>>,
    pub configuration: Option<Value>,
    pub page: RecordPage,
}

/// Writes a snapshot of `cols` into `dir` (created if missing) with the library's own writer,
/// 1,000 records per page, collection `i` under `parts/{i:04}`; returns `dir`.
pub fn write_snapshot(dir: &Path, cols: Vec<SnapCollection>) -> PathBuf {
    write_snapshot_with(dir, cols, WriterOptions::default())
}

/// [`write_snapshot`] with the writer's part and row-group sizes given.
pub fn write_snapshot_with(dir: &Path, cols: Vec<SnapCollection>, opts: WriterOptions) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let mut entries = Vec::new();
    for (i, c) in cols.into_iter().enumerate() {
        let mut w = CollectionWriter::new(dir, &format!("parts/{i:04}"), c.dim, opts.clone()).unwrap();
        for chunk in 0..c.page.len().div_ceil(1000) {
            let mut p = RecordPage::with_capacity(c.dim, 1000);
            for r in chunk * 1000..((chunk + 1) * 1000).min(c.page.len()) {
                p.push(c.page.record(r));
            }
            w.write_page(&p).unwrap();
        }
        let done = w.finish().unwrap();
        let id = format!("synthetic-{i}");
        entries.push(CollectionEntry::written(c.name, id, c.metadata, c.configuration, c.space, Some(c.dim), done));
    }
    Manifest::new(None, entries).write_atomic(dir).unwrap();
    dir.to_path_buf()
}

/// The stderr of a finished command, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies every file under `from` into `to` (created if missing), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap_or_else(|err| panic!("copy {}: {err}", e.path().display()));
        }
    }
}

/// The count, records digest and every part's `path blake3` of a one-collection snapshot.
pub fn parts_and_digest(out: &Path) -> (u64, String, Vec<String>) {
    let c = Snapshot::open(out).expect("snapshot").manifest.collections.remove(0);
    (c.count, c.records_digest, c.parts.iter().map(|p| format!("{} {}", p.path, p.blake3)).collect())
}

/// A tiny deterministic generator for kill points and pauses (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    /// The next value in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One step of xorshift64 on `s` (never 0), for synthetic embeddings and metadata.
pub fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}
