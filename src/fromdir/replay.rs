//! Replays a collection's write-ahead log (`embeddings_queue` rows after the vector segment's
//! last save) on top of the saved id map, exactly as the server that wrote the directory applies
//! it, so that each id ends with the vector the server's `get` returns.
//!
//! Two servers, two rules (read from their source and checked against real directories, see
//! docs/from-dir.md):
//! - 1.x (Rust, `local_hnsw.rs`): every row goes into the in-memory index at once. Add only a new
//!   id, update only a present one, upsert either, delete a present one.
//! - 0.4/0.5 (Python, `local_persistent_hnsw.py` + `batch.py`): rows gather in a batch whose
//!   vectors are served raw from a brute-force buffer; a full batch goes into the index. A batch
//!   is full at `hnsw:batch_size` (default 100) distinct ids up to 0.5.5, at that many log rows
//!   since 0.5.6. An add of an id present in the index or the buffer is ignored (since 0.5.5 not
//!   when the id's delete is pending in the batch), as is an update of an absent one.
//!
//! Vectors that reached the index come back from `get` through hnswlib's normalisation when the
//! space is cosine ([`super::hnsw::round_trip`]).

use std::collections::{HashMap, HashSet};

use super::hnsw::round_trip;

/// `embeddings_queue.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Update,
    Upsert,
    Delete,
}

impl Op {
    pub fn from_code(c: i64) -> Option<Self> {
        Some(match c {
            0 => Op::Add,
            1 => Op::Update,
            2 => Op::Upsert,
            3 => Op::Delete,
            _ => return None,
        })
    }
}

/// One log row, vector decoded.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub seq_id: i64,
    pub op: Op,
    pub id: String,
    pub vector: Option<Vec<f32>>,
}

/// Where an id's vector is, once the log is replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// In the saved index under this label.
    Index(u64),
    /// Written after the save; the value `get` returns.
    Mem(Vec<f32>),
}

/// Which server's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// 1.x: every row applied at once.
    Rust,
    /// 0.4/0.5: batches of `batch_size` distinct ids (up to 0.5.5) or log rows (0.5.6+, which
    /// also re-adds an id whose delete is pending).
    Python { batch_size: usize, count_rows: bool },
}

/// The final vector of every id the vector segment holds, plus the rows the server refused.
pub struct Replayed {
    pub slots: HashMap<String, Slot>,
    /// Log rows the server could not apply (an add or upsert without a vector).
    pub skipped: Vec<i64>,
}

/// Applies `rows` (in `seq_id` order) to the saved `id → label` map.
pub fn replay(
    saved: HashMap<String, u64>,
    rows: impl IntoIterator<Item = LogRow>,
    rules: Rules,
    cosine: bool,
) -> Replayed {
    let mut slots: HashMap<String, Slot> = saved.into_iter().map(|(id, l)| (id, Slot::Index(l))).collect();
    let mut skipped = Vec::new();
    let stored = |mut v: Vec<f32>| {
        if cosine {
            round_trip(&mut v);
        }
        Slot::Mem(v)
    };
    match rules {
        Rules::Rust => {
            for r in rows {
                match (r.op, r.vector) {
                    (Op::Add, Some(v)) => {
                        slots.entry(r.id).or_insert_with(|| stored(v));
                    }
                    (Op::Update, Some(v)) => {
                        if let Some(s) = slots.get_mut(&r.id) {
                            *s = stored(v);
                        }
                    }
                    (Op::Upsert, Some(v)) => {
                        slots.insert(r.id, stored(v));
                    }
                    (Op::Delete, _) => {
                        slots.remove(&r.id);
                    }
                    (Op::Update, None) => {}
                    (Op::Add | Op::Upsert, None) => skipped.push(r.seq_id),
                }
            }
        }
        Rules::Python { batch_size, count_rows } => {
            let mut b = Batch::default();
            let mut since_batch = 0usize;
            for r in rows {
                since_batch += 1;
                let in_index = slots.contains_key(&r.id) || b.buffer.contains_key(&r.id);
                let pending_delete = count_rows && b.deleted.contains(&r.id);
                match (r.op, r.vector) {
                    (Op::Delete, _) => {
                        if in_index {
                            b.delete(&r.id);
                        }
                    }
                    (Op::Update, Some(v)) => {
                        if in_index {
                            b.write(r.id, v, r.op, true);
                        }
                    }
                    (Op::Add, Some(v)) => {
                        if !in_index || pending_delete {
                            b.write(r.id, v, r.op, false);
                        }
                    }
                    (Op::Upsert, Some(v)) => b.write(r.id, v, r.op, in_index),
                    (Op::Update, None) => {}
                    (Op::Add | Op::Upsert, None) => skipped.push(r.seq_id),
                }
                let full = if count_rows { since_batch } else { b.len() };
                if full >= batch_size.max(1) {
                    since_batch = 0;
                    for id in b.deleted.drain() {
                        slots.remove(&id);
                    }
                    for (id, (v, _)) in b.buffer.drain() {
                        slots.insert(id, stored(v));
                    }
                    b = Batch::default();
                }
            }
            // The unfinished batch: deletes hide indexed vectors, writes are served raw.
            for id in b.deleted {
                slots.remove(&id);
            }
            for (id, (v, _)) in b.buffer {
                slots.insert(id, Slot::Mem(v));
            }
        }
    }
    Replayed { slots, skipped }
}

/// 0.4/0.5's `Batch` together with its brute-force buffer: written ids with their vector and
/// whether they were new to the index, and deleted ids.
#[derive(Default)]
struct Batch {
    buffer: HashMap<String, (Vec<f32>, Written)>,
    deleted: HashSet<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    Added,
    Updated,
    UpsertAdded,
    UpsertUpdated,
}

impl Batch {
    fn len(&self) -> usize {
        self.buffer.len() + self.deleted.len()
    }

    fn write(&mut self, id: String, v: Vec<f32>, op: Op, exists: bool) {
        self.deleted.remove(&id);
        let kind = match (op, exists) {
            (Op::Add, _) => Written::Added,
            (Op::Update, _) => Written::Updated,
            (_, false) => Written::UpsertAdded,
            (_, true) => Written::UpsertUpdated,
        };
        // An id written twice keeps the first write's "added" status, as `_upsert_add_ids` does.
        let kind = match self.buffer.get(&id) {
            Some((_, Written::UpsertAdded)) if kind == Written::UpsertUpdated => Written::UpsertAdded,
            _ => kind,
        };
        self.buffer.insert(id, (v, kind));
    }

    fn delete(&mut self, id: &str) {
        match self.buffer.remove(id) {
            // Never reached the index: nothing to delete there.
            Some((_, Written::Added | Written::UpsertAdded)) => {}
            Some(_) => {
                self.deleted.insert(id.to_owned());
            }
            None => {
                self.deleted.insert(id.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, op: Op, id: &str, v: Option<f32>) -> LogRow {
        LogRow { seq_id: seq, op, id: id.into(), vector: v.map(|x| vec![x, 1.0]) }
    }

    #[test]
    fn rust_rules() {
        let saved = HashMap::from([("a".to_owned(), 1), ("b".to_owned(), 2)]);
        let rows = vec![
            row(1, Op::Add, "a", Some(9.0)),    // ignored: present
            row(2, Op::Update, "z", Some(9.0)), // ignored: absent
            row(3, Op::Update, "b", Some(3.0)),
            row(4, Op::Upsert, "c", Some(4.0)),
            row(5, Op::Delete, "a", None),
            row(6, Op::Add, "a", Some(6.0)),
        ];
        let r = replay(saved, rows, Rules::Rust, false);
        assert_eq!(r.slots["b"], Slot::Mem(vec![3.0, 1.0]));
        assert_eq!(r.slots["c"], Slot::Mem(vec![4.0, 1.0]));
        assert_eq!(r.slots["a"], Slot::Mem(vec![6.0, 1.0]));
        assert!(!r.slots.contains_key("z"));
    }

    #[test]
    fn python_rules_ignore_a_re_add_in_the_same_batch() {
        let saved = HashMap::from([("a".to_owned(), 1)]);
        let rows = vec![row(1, Op::Delete, "a", None), row(2, Op::Add, "a", Some(6.0))];
        let r = replay(saved.clone(), rows.clone(), Rules::Python { batch_size: 100, count_rows: false }, false);
        // The delete is pending in the batch; the add saw "a" in the index and was ignored.
        assert!(!r.slots.contains_key("a"));
        // Since 0.5.5 the add goes through.
        let r = replay(saved, rows, Rules::Python { batch_size: 100, count_rows: true }, false);
        assert_eq!(r.slots["a"], Slot::Mem(vec![6.0, 1.0]));
    }

    #[test]
    fn python_batches_by_ids_or_by_rows() {
        // Three rows on one id: one distinct id (no batch of 2 is full) or three rows (full at 2).
        let rows =
            vec![row(1, Op::Add, "a", Some(1.0)), row(2, Op::Update, "a", Some(2.0)), row(3, Op::Add, "b", Some(3.0))];
        let by_ids = replay(HashMap::new(), rows.clone(), Rules::Python { batch_size: 3, count_rows: false }, true);
        let by_rows = replay(HashMap::new(), rows, Rules::Python { batch_size: 2, count_rows: true }, true);
        // Pending (raw) vs applied (through the cosine round trip): [2, 1] has length √5.
        assert_eq!(by_ids.slots["a"], Slot::Mem(vec![2.0, 1.0]));
        let mut trip = vec![2.0f32, 1.0];
        round_trip(&mut trip);
        assert_eq!(by_rows.slots["a"], Slot::Mem(trip));
    }
}
