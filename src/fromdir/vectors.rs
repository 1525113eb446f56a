//! One collection's vectors: the vector segment's saved index and id map, with the log after
//! the index's position replayed by the rules of the server that wrote the directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::db::{Collection, Db};
use super::error::FromDirError;
use super::hnsw;
use super::pickle;
use super::replay::{self, Rules, Slot};
use crate::error::Result;

/// The vectors of one collection: the saved index, if any, and every id's final slot.
pub struct Vectors {
    pub index: Option<hnsw::Index>,
    pub slots: HashMap<String, Slot>,
    pub log_rows: usize,
}

/// Whether the records were written under a 0.4/0.5 server's rules: a directory whose schema is
/// older than 1.x, or one a 1.x server migrated whose saved id maps are all still 0.4/0.5 objects
/// (an upgrade that failed before the new server saved anything).
pub fn written_by_python(db: &Db, dir: &Path, collections: &[Collection]) -> bool {
    if !db.rust_server {
        return true;
    }
    let mut legacy = false;
    for c in collections {
        let Some(seg) = &c.vector_segment else { continue };
        let Ok(bytes) = std::fs::read(dir.join(&seg.id).join("index_metadata.pickle")) else { continue };
        let head = &bytes[..bytes.len().min(256)];
        if head.windows(14).any(|w| w == b"PersistentData") {
            legacy = true;
        } else {
            return false;
        }
    }
    legacy
}

pub fn load_vectors(db: &Db, py: bool, dir: &Path, c: &Collection, space: &str) -> Result<Vectors> {
    let seg_err = |file: PathBuf, why: String| FromDirError::Segment { collection: c.name.clone(), file, why };
    let cosine = space == "cosine";
    let Some(seg) = &c.vector_segment else {
        return Err(FromDirError::Sqlite {
            file: db.path.clone(),
            table: Some("segments".into()),
            why: format!("collection {:?} has no vector segment", c.name),
        }
        .into());
    };
    let folder = dir.join(&seg.id);
    let pickle_path = folder.join("index_metadata.pickle");
    // 1.x and 0.5.6+ keep the index's position in `max_seq_id`; 0.4–0.5.5 only in the pickle.
    let saved_in_sqlite = db.max_seq_id(&seg.id)?;
    let id_map = if pickle_path.is_file() {
        let bytes = std::fs::read(&pickle_path).map_err(|e| seg_err(pickle_path.clone(), e.to_string()))?;
        Some(
            pickle::parse(&bytes)
                .map_err(|why| seg_err(pickle_path.clone(), format!("cannot read the id map: {why}")))?,
        )
    } else if !folder.is_dir() && saved_in_sqlite.is_some_and(|s| s > 0) {
        return Err(seg_err(
            folder,
            format!("missing: the index saved up to log row {} is gone", saved_in_sqlite.unwrap_or(0)),
        )
        .into());
    } else if saved_in_sqlite.is_some_and(|s| s > 0) {
        return Err(seg_err(pickle_path, "missing: the index was saved but its id map is gone".into()).into());
    } else {
        None
    };
    // The rules of the server that last saved the index: a 0.4/0.5 id map in a directory a 1.x
    // server has migrated since (an upgrade that failed) was written under the batch rules.
    let python_rules = match &id_map {
        Some(m) => m.legacy_object,
        None => py,
    };
    let (index, saved, after) = match id_map {
        Some(m) if !m.id_to_label.is_empty() => {
            let index = hnsw::Index::open(&folder, cosine).map_err(|d| seg_err(d.file, d.why))?;
            let after = saved_in_sqlite.or(m.max_seq_id).unwrap_or(0);
            (Some(index), m.id_to_label, after)
        }
        Some(m) => (None, Default::default(), saved_in_sqlite.or(m.max_seq_id).unwrap_or(0)),
        None => (None, Default::default(), saved_in_sqlite.unwrap_or(0)),
    };
    let rows = db.log(c, after)?;
    let log_rows = rows.len();
    let rules = if !python_rules {
        Rules::Rust
    } else {
        let from = |m: &crate::record::Metadata| m.get("hnsw:batch_size").and_then(serde_json::Value::as_u64);
        let batch = from(&seg.metadata).or_else(|| c.metadata.as_ref().and_then(from)).unwrap_or(100);
        Rules::Python { batch_size: batch as usize, count_rows: db.log_purged }
    };
    let replayed = replay::replay(saved, rows, rules, cosine);
    if !replayed.skipped.is_empty() {
        tracing::warn!(
            "collection {:?}: {} log rows without a vector were not applied (seq_id {:?}…), as the server does not",
            c.name,
            replayed.skipped.len(),
            &replayed.skipped[..replayed.skipped.len().min(5)]
        );
    }
    tracing::debug!("collection {:?}: index saved up to log row {after}, {log_rows} rows replayed", c.name);
    Ok(Vectors { index, slots: replayed.slots, log_rows })
}
