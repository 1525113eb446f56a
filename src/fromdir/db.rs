//! `chroma.sqlite3`, opened read-only and immutable (SQLite never writes, locks or replays a
//! journal): which schema it has, the collections of a tenant's database with their metadata,
//! configuration and segments, the records of a metadata segment, and the write-ahead log.

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::{Map, Number, Value};

use super::error::FromDirError;
use super::replay::{LogRow, Op};
use crate::record::Metadata;

/// The newest migration of each kind this reader knows (1.5.9's directory); a directory with a
/// newer one was written by a server this reader has not been checked against.
pub const KNOWN: [(&str, i64); 3] = [("sysdb", 10), ("metadb", 6), ("embeddings_queue", 2)];

pub struct Db {
    conn: Connection,
    pub path: PathBuf,
    /// e.g. `sysdb 10, metadb 6, embeddings_queue 2`.
    pub schema: String,
    /// `metadb` ≥ 5: written by a 1.x (Rust) server.
    pub rust_server: bool,
    /// `embeddings_queue` ≥ 2 (0.5.6+): the log is pruned, batches count log rows.
    pub log_purged: bool,
}

/// One collection as the directory holds it.
#[derive(Debug, Clone)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub dimension: Option<usize>,
    pub metadata: Option<Metadata>,
    pub configuration: Option<Value>,
    pub topic: Option<String>,
    pub vector_segment: Option<Segment>,
    pub metadata_segment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub id: String,
    /// `segment_metadata` (0.4/0.5 keep `hnsw:*` there).
    pub metadata: Metadata,
}

/// One record of the metadata segment.
#[derive(Debug, Default)]
pub struct Row0 {
    pub id: String,
    pub document: Option<String>,
    pub uri: Option<String>,
    pub metadata: Metadata,
}

/// `%`-escapes a path for a `file:` URI.
fn uri_path(p: &Path) -> String {
    let mut out = String::new();
    for b in p.as_os_str().as_encoded_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => out.push(*b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, FromDirError> {
        let bad = |why: String| FromDirError::Sqlite { file: path.to_owned(), table: None, why };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let uri = format!("file:{}?mode=ro&immutable=1", uri_path(path));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).map_err(|e| bad(e.to_string()))?;
        let mut db = Self { conn, path: path.to_owned(), schema: String::new(), rust_server: false, log_purged: false };
        let versions: Vec<(String, i64)> =
            db.query("migrations", "SELECT dir, MAX(version) FROM migrations GROUP BY dir ORDER BY dir", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let mut parts = Vec::new();
        for (kind, newest) in KNOWN {
            let v = versions.iter().find(|(d, _)| d == kind).map(|(_, v)| *v);
            match v {
                None => {
                    return Err(db.err("migrations", format!("no {kind} migration recorded: not a Chroma directory")));
                }
                Some(v) if v > newest => {
                    return Err(FromDirError::UnknownSchema {
                        file: path.to_owned(),
                        found: format!("{kind} {v}"),
                        known: format!("{kind} {newest}"),
                    });
                }
                Some(v) => parts.push(format!("{kind} {v}")),
            }
        }
        if let Some((d, _)) = versions.iter().find(|(d, _)| !KNOWN.iter().any(|(k, _)| k == d)) {
            return Err(FromDirError::UnknownSchema {
                file: path.to_owned(),
                found: d.clone(),
                known: "sysdb, metadb, embeddings_queue".into(),
            });
        }
        db.rust_server = versions.iter().any(|(d, v)| d == "metadb" && *v >= 5);
        db.log_purged = versions.iter().any(|(d, v)| d == "embeddings_queue" && *v >= 2);
        db.schema = parts.join(", ");
        Ok(db)
    }

    fn err(&self, table: &str, why: String) -> FromDirError {
        FromDirError::Sqlite { file: self.path.clone(), table: Some(table.to_owned()), why }
    }

    fn query<T>(
        &self,
        table: &str,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, FromDirError> {
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut st = self.conn.prepare(sql)?;
            st.query_map(params, f)?.collect()
        };
        run().map_err(|e| self.err(table, e.to_string()))
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, FromDirError> {
        self.query(table, &format!("SELECT name FROM pragma_table_info('{table}')"), [], |r| r.get(0))
    }

    /// The collections of `tenant`/`database`, by name.
    pub fn collections(&self, tenant: &str, database: &str) -> Result<Vec<Collection>, FromDirError> {
        let cols = self.columns("collections")?;
        let has = |c: &str| cols.iter().any(|x| x == c);
        let pick = |c: &str| if has(c) { format!("c.{c}") } else { "NULL".into() };
        let sql = format!(
            "SELECT c.id, c.name, c.dimension, {}, {}, {} FROM collections c JOIN databases d ON d.id = c.database_id \
             WHERE d.tenant_id = ?1 AND d.name = ?2 ORDER BY c.name",
            pick("topic"),
            pick("config_json_str"),
            pick("schema_str")
        );
        type Raw = (String, String, Option<i64>, Option<String>, Option<String>, Option<String>);
        let raw: Vec<Raw> = self.query("collections", &sql, [tenant, database], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        let mut out = Vec::new();
        for (id, name, dimension, topic, config, schema) in raw {
            let metadata = self.kv_metadata("collection_metadata", "collection_id", &id)?;
            let configuration = configuration(config.as_deref(), schema.as_deref())
                .map_err(|why| self.err("collections", format!("collection {name:?}: {why}")))?;
            let segs: Vec<(String, String)> =
                self.query("segments", "SELECT id, scope FROM segments WHERE collection = ?1", [&id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let mut c = Collection {
                id: id.clone(),
                name,
                dimension: dimension.map(|d| d as usize),
                metadata: (!metadata.is_empty()).then_some(metadata),
                configuration,
                topic,
                vector_segment: None,
                metadata_segment: None,
            };
            for (sid, scope) in segs {
                match scope.as_str() {
                    "VECTOR" => {
                        let metadata = self.kv_metadata("segment_metadata", "segment_id", &sid)?;
                        c.vector_segment = Some(Segment { id: sid, metadata });
                    }
                    "METADATA" => c.metadata_segment = Some(sid),
                    _ => {}
                }
            }
            out.push(c);
        }
        Ok(out)
    }

    /// `collection_metadata` / `segment_metadata`: str, int, float, then bool (0.4 has no bool
    /// column and keeps a bool as an int, which is what its server returns).
    fn kv_metadata(&self, table: &str, key_col: &str, id: &str) -> Result<Metadata, FromDirError> {
        let has_bool = self.columns(table)?.iter().any(|c| c == "bool_value");
        let sql = format!(
            "SELECT key, str_value, int_value, float_value, {} FROM {table} WHERE {key_col} = ?1 ORDER BY rowid",
            if has_bool { "bool_value" } else { "NULL" }
        );
        let rows = self.query(table, &sql, [id], |r| Ok((r.get::<_, String>(0)?, scalar(r, 1)?)))?;
        Ok(rows.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    /// How many records a metadata segment holds.
    pub fn count(&self, segment: &str) -> Result<u64, FromDirError> {
        let n: Vec<i64> =
            self.query("embeddings", "SELECT COUNT(*) FROM embeddings WHERE segment_id = ?1", [segment], |r| r.get(0))?;
        Ok(n.first().copied().unwrap_or(0) as u64)
    }

    /// The saved position of a segment in the log (`max_seq_id`, an integer or, from older
    /// servers, 8 big-endian bytes).
    pub fn max_seq_id(&self, segment: &str) -> Result<Option<u64>, FromDirError> {
        let rows = self.query("max_seq_id", "SELECT seq_id FROM max_seq_id WHERE segment_id = ?1", [segment], |r| {
            Ok(match r.get_ref(0)? {
                ValueRef::Integer(i) => Some(Ok(i as u64)),
                ValueRef::Blob(b) if b.len() == 8 => Some(Ok(u64::from_be_bytes(b.try_into().expect("8")))),
                ValueRef::Null => None,
                other => Some(Err(format!("seq_id of type {:?}", other.data_type()))),
            })
        })?;
        match rows.into_iter().next().flatten() {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(why)) => Err(self.err("max_seq_id", format!("segment {segment}: {why}"))),
            None => Ok(None),
        }
    }

    /// Every record of a metadata segment, in insertion order, handed to `f` one at a time.
    pub fn records(&self, segment: &str, mut f: impl FnMut(Row0) -> crate::Result<()>) -> crate::Result<()> {
        let has_arrays = self
            .query("sqlite_master", "SELECT 1 FROM sqlite_master WHERE name = 'embedding_metadata_array'", [], |_| {
                Ok(())
            })?
            .len()
            == 1;
        let table = "embedding_metadata";
        let run = |f: &mut dyn FnMut(Row0) -> crate::Result<()>| -> crate::Result<()> {
            let e = |e: rusqlite::Error| self.err(table, e.to_string());
            let mut st = self
                .conn
                .prepare(
                    "SELECT e.id, e.embedding_id, m.key, m.string_value, m.int_value, m.float_value, m.bool_value \
                     FROM embeddings e LEFT JOIN embedding_metadata m ON m.id = e.id \
                     WHERE e.segment_id = ?1 ORDER BY e.id",
                )
                .map_err(e)?;
            let mut arrays = if has_arrays {
                let ea = |x: rusqlite::Error| self.err("embedding_metadata_array", x.to_string());
                let mut st = self
                    .conn
                    .prepare(
                        "SELECT a.id, a.key, a.string_value, a.int_value, a.float_value, a.bool_value \
                         FROM embedding_metadata_array a JOIN embeddings e ON e.id = a.id \
                         WHERE e.segment_id = ?1 ORDER BY a.id, a.rowid",
                    )
                    .map_err(ea)?;
                let rows: Vec<(i64, String, Option<Value>)> = st
                    .query_map([segment], |r| Ok((r.get(0)?, r.get(1)?, scalar(r, 2)?)))
                    .and_then(|m| m.collect())
                    .map_err(ea)?;
                rows.into_iter().peekable()
            } else {
                Vec::new().into_iter().peekable()
            };
            let mut rows = st.query([segment]).map_err(e)?;
            let mut cur: Option<(i64, Row0)> = None;
            while let Some(r) = rows.next().map_err(e)? {
                let rowid: i64 = r.get(0).map_err(e)?;
                if cur.as_ref().is_none_or(|(id, _)| *id != rowid) {
                    if let Some((id, rec)) = cur.take() {
                        f(with_arrays(id, rec, &mut arrays))?;
                    }
                    cur = Some((rowid, Row0 { id: r.get(1).map_err(e)?, ..Row0::default() }));
                }
                let rec = &mut cur.as_mut().expect("set above").1;
                let Some(key) = r.get::<_, Option<String>>(2).map_err(e)? else { continue };
                let value = scalar(r, 3).map_err(e)?;
                match (key.as_str(), value) {
                    ("chroma:document", Some(Value::String(s))) => rec.document = Some(s),
                    ("chroma:uri", Some(Value::String(s))) => rec.uri = Some(s),
                    (_, Some(v)) => {
                        rec.metadata.insert(key, v);
                    }
                    (_, None) => {}
                }
            }
            if let Some((id, rec)) = cur.take() {
                f(with_arrays(id, rec, &mut arrays))?;
            }
            Ok(())
        };
        run(&mut f)
    }

    /// How many log rows of a collection lie after `after`.
    pub fn log_len(&self, c: &Collection, after: u64) -> Result<u64, FromDirError> {
        let topic = c.topic.clone().unwrap_or_default();
        let pattern = format!("%/{}", c.id);
        let n: Vec<i64> = self.query(
            "embeddings_queue",
            "SELECT COUNT(*) FROM embeddings_queue WHERE (topic = ?1 OR topic LIKE ?2) AND seq_id > ?3",
            rusqlite::params![topic, pattern, after as i64],
            |r| r.get(0),
        )?;
        Ok(n.first().copied().unwrap_or(0) as u64)
    }

    /// The log rows of a collection after `after`, in `seq_id` order.
    pub fn log(&self, c: &Collection, after: u64) -> Result<Vec<LogRow>, FromDirError> {
        let table = "embeddings_queue";
        let topic = c.topic.clone().unwrap_or_default();
        let pattern = format!("%/{}", c.id);
        type Raw = (i64, i64, String, Option<Vec<u8>>, Option<String>);
        let raw: Vec<Raw> = self.query(
            table,
            "SELECT seq_id, operation, id, vector, encoding FROM embeddings_queue \
             WHERE (topic = ?1 OR topic LIKE ?2) AND seq_id > ?3 ORDER BY seq_id",
            rusqlite::params![topic, pattern, after as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        raw.into_iter()
            .map(|(seq_id, op, id, vector, encoding)| {
                let op = Op::from_code(op)
                    .ok_or_else(|| self.err(table, format!("seq_id {seq_id}: unknown operation {op}")))?;
                let vector = match (vector, encoding.as_deref()) {
                    (None, _) => None,
                    (Some(b), Some("FLOAT32")) if b.len() % 4 == 0 => {
                        Some(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect())
                    }
                    (Some(b), enc) => {
                        return Err(self.err(
                            table,
                            format!(
                                "seq_id {seq_id}: a vector of {} bytes with encoding {enc:?} (only FLOAT32 is known)",
                                b.len()
                            ),
                        ));
                    }
                };
                Ok(LogRow { seq_id, op, id, vector })
            })
            .collect()
    }
}

/// Adds the array-valued keys of record `id` (rows ordered by id) to its metadata.
fn with_arrays(
    id: i64,
    mut rec: Row0,
    arrays: &mut std::iter::Peekable<std::vec::IntoIter<(i64, String, Option<Value>)>>,
) -> Row0 {
    while arrays.peek().is_some_and(|(a, _, _)| *a < id) {
        arrays.next();
    }
    while let Some((_, key, v)) = arrays.next_if(|(a, _, _)| *a == id) {
        if let Some(v) = v
            && let Value::Array(items) = rec.metadata.entry(key).or_insert_with(|| Value::Array(Vec::new()))
        {
            items.push(v);
        }
    }
    rec
}

/// The first non-null of four typed columns starting at `at`: str, int, float, bool.
fn scalar(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<Value>> {
    if let Some(s) = r.get::<_, Option<String>>(at)? {
        return Ok(Some(Value::String(s)));
    }
    if let Some(i) = r.get::<_, Option<i64>>(at + 1)? {
        return Ok(Some(Value::from(i)));
    }
    if let Some(f) = r.get::<_, Option<f64>>(at + 2)? {
        return Ok(Number::from_f64(f).map(Value::Number));
    }
    if let Some(b) = r.get::<_, Option<i64>>(at + 3)? {
        return Ok(Some(Value::Bool(b != 0)));
    }
    Ok(None)
}

/// The configuration a server reports: 1.x derives it from the collection's schema (the
/// `#embedding` vector index: space, embedding function and the hnsw settings it shows); 0.5
/// reports `config_json_str` as stored; 0.4 has none.
fn configuration(config: Option<&str>, schema: Option<&str>) -> Result<Option<Value>, String> {
    if let Some(s) = schema.filter(|s| !s.trim().is_empty()) {
        let v: Value = serde_json::from_str(s).map_err(|e| format!("schema_str: {e}"))?;
        if let Some(vi) = v.pointer("/keys/#embedding/float_list/vector_index/config") {
            let mut out = Map::new();
            out.insert("embedding_function".into(), vi.get("embedding_function").cloned().unwrap_or(Value::Null));
            let space = vi.get("space").cloned().unwrap_or(Value::Null);
            for kind in ["hnsw", "spann"] {
                let conf = match vi.get(kind) {
                    Some(Value::Object(h)) => {
                        let mut m = Map::new();
                        let shown: &[&str] = if kind == "hnsw" {
                            &["ef_construction", "ef_search", "max_neighbors", "resize_factor", "sync_threshold"]
                        } else {
                            &[]
                        };
                        for (k, v) in h {
                            if kind == "spann" || shown.contains(&k.as_str()) {
                                m.insert(k.clone(), v.clone());
                            }
                        }
                        m.insert("space".into(), space.clone());
                        Value::Object(m)
                    }
                    _ => Value::Null,
                };
                out.insert(kind.into(), conf);
            }
            return Ok(Some(Value::Object(out)));
        }
    }
    match config.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => serde_json::from_str(s).map(Some).map_err(|e| format!("config_json_str: {e}")),
    }
}
