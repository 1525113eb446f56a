//! The load journal: an append-only JSON-lines file, fsynced after every acknowledged batch, that
//! lets a rerun carry on where a killed load stopped. A lock file keeps two loads off one journal.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batcher::BatchLimits;
use super::error::LoadError;
use super::shard::Shard;
use crate::error::Result;
use crate::snapshot::SnapshotError;
use crate::snapshot::location::Location;
use crate::snapshot::store::JOURNAL_LIMIT;
use crate::snapshot::store::bounded::{check_opened, read_bounded, read_limited, refuse_irregular, try_lock};

/// How records are written into a target collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteOp {
    Add,
    Upsert,
}

impl WriteOp {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOp::Add => "add",
            WriteOp::Upsert => "upsert",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line: which snapshot goes to which server, and which shard of it (`--shard`).
    Start {
        manifest_blake3: String,
        target: String,
        tenant: String,
        database: String,
        at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<Shard>,
    },
    /// About to create `dst`: a collection found empty under this name on resume is ours.
    Creating { dst: String },
    /// Loading of `dst` (re)started into the collection with this id, cut into batches by `limits`.
    Collection {
        src: String,
        dst: String,
        collection_id: String,
        op: WriteOp,
        limits: BatchLimits,
        /// Loaded into a collection that held other data (`--if-exists append`).
        #[serde(default)]
        appended: bool,
    },
    /// Batch `index` of `dst` was acknowledged by the server.
    Batch { dst: String, index: u64, rows: u64 },
    /// `--if-exists sync`: a request of one step of `dst`'s sync was acknowledged (`delete`,
    /// `rewrite` or `add`, `rows` ids or records). A rerun recomputes the difference from the
    /// target, so these lines are a record of what was done, not what a rerun skips.
    Synced { dst: String, step: String, rows: u64 },
    /// Every batch of `dst` was acknowledged.
    Done { dst: String },
}

/// What the journal says about one target collection (the latest `Collection` line wins).
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionState {
    pub src: String,
    pub collection_id: Option<String>,
    pub op: WriteOp,
    pub limits: Option<BatchLimits>,
    pub appended: bool,
    pub acked: BTreeSet<u64>,
    pub rows: u64,
    pub done: bool,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    pub start: Option<Line>,
    pub collections: HashMap<String, CollectionState>,
}

impl State {
    fn apply(&mut self, line: Line) {
        match line {
            Line::Start { .. } => self.start = Some(line),
            Line::Creating { dst } => {
                self.collections.insert(
                    dst,
                    CollectionState {
                        src: String::new(),
                        collection_id: None,
                        op: WriteOp::Add,
                        limits: None,
                        appended: false,
                        acked: BTreeSet::new(),
                        rows: 0,
                        done: false,
                    },
                );
            }
            Line::Collection { src, dst, collection_id, op, limits, appended } => {
                self.collections.insert(
                    dst,
                    CollectionState {
                        src,
                        collection_id: Some(collection_id),
                        op,
                        limits: Some(limits),
                        appended,
                        acked: BTreeSet::new(),
                        rows: 0,
                        done: false,
                    },
                );
            }
            Line::Batch { dst, index, rows } => {
                if let Some(c) = self.collections.get_mut(&dst)
                    && c.acked.insert(index)
                {
                    c.rows += rows;
                }
            }
            Line::Synced { .. } => {}
            Line::Done { dst } => {
                if let Some(c) = self.collections.get_mut(&dst) {
                    c.done = true;
                }
            }
        }
    }

    pub fn manifest_blake3(&self) -> Option<&str> {
        match &self.start {
            Some(Line::Start { manifest_blake3, .. }) => Some(manifest_blake3),
            _ => None,
        }
    }
}

/// An open, locked journal.
pub struct Journal {
    pub path: PathBuf,
    file: File,
    _lock: File,
    pub state: State,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, taking its lock; a torn last line (a load killed
    /// while writing it) is cut off.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |p: &Path, e: std::io::Error| LoadError::journal(p, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsmode::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let lock_path = lock_path(path);
        refuse_irregular(path)?;
        let Some(lock) = try_lock(&lock_path)? else {
            return Err(LoadError::JournalLocked { path: path.to_path_buf(), lock: lock_path }.into());
        };
        let mut file = crate::fsmode::options()
            .custom_flags(libc::O_NONBLOCK)
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        check_opened(path, &file)?;
        let text = read_limited(path, &mut file, JOURNAL_LIMIT)?;
        let mut state = State::default();
        let mut good = 0usize;
        let mut lines = text.split_inclusive(|b| *b == b'\n').peekable();
        while let Some(raw) = lines.next() {
            let last = lines.peek().is_none();
            let complete = raw.ends_with(b"\n");
            match serde_json::from_slice::<Line>(raw.strip_suffix(b"\n").unwrap_or(raw)) {
                Ok(line) if complete => {
                    state.apply(line);
                    good += raw.len();
                }
                _ if last => {
                    tracing::warn!("journal {}: dropping a torn last line", path.display());
                    break;
                }
                Err(e) => {
                    let why = e.to_string();
                    return Err(LoadError::JournalDamaged { path: path.to_path_buf(), offset: good, why }.into());
                }
                Ok(_) => unreachable!("only the last line can lack its newline"),
            }
        }
        if good < text.len() {
            file.set_len(good as u64).map_err(|e| io(path, e))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| io(path, e))?;
        Ok(Self { path: path.to_path_buf(), file, _lock: lock, state })
    }

    /// Reads a journal without locking or creating anything (for `--dry-run`); `None` if absent
    /// or unreadable. A journal that is not a regular file, or too large, is refused.
    pub fn peek(path: &Path) -> Result<Option<State>> {
        let text = match read_bounded(path, JOURNAL_LIMIT) {
            Ok(t) => t,
            Err(SnapshotError::Io { .. }) => return Ok(None),
            Err(refused) => return Err(refused.into()),
        };
        let mut state = State::default();
        for raw in text.split(|b| *b == b'\n') {
            if let Ok(line) = serde_json::from_slice::<Line>(raw) {
                state.apply(line);
            }
        }
        Ok(Some(state))
    }

    /// Appends one line and makes it durable before returning.
    pub fn append(&mut self, line: Line) -> Result<()> {
        let mut text = serde_json::to_vec(&line).expect("journal lines serialise");
        text.push(b'\n');
        self.file
            .write_all(&text)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| LoadError::journal(&self.path, e))?;
        self.state.apply(line);
        Ok(())
    }

    /// Moves the current content aside (`<path>.<time>.old`) and starts an empty journal.
    pub fn restart(&mut self) -> Result<()> {
        let io = |e: std::io::Error| LoadError::journal(&self.path, e);
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let old = self.path.with_extension(format!("{stamp}.old"));
        fs::copy(&self.path, &old).map_err(io)?;
        self.file.set_len(0).map_err(io)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.state = State::default();
        tracing::info!("journal {}: previous content kept in {}", self.path.display(), old.display());
        Ok(())
    }
}

pub fn lock_path(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Where the default journals of loads of one snapshot into one server/tenant/database live, and
/// how their names start. Beside a snapshot in a directory: `DIR/.chroma-snap/load-<hash of the
/// target>`; for a snapshot on object storage (often read-only), locally in
/// [`state_home`]`/load-<manifest hash>-<hash of the target>`, so that rerunning the same command
/// resumes. Unsharded, the journal is `<stem>.jsonl`; shard I of N, `<stem>.shard-I-of-N.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultJournals {
    dir: PathBuf,
    stem: String,
}

impl DefaultJournals {
    pub fn new(snapshot: &Location, manifest_blake3: &str, target: &str, tenant: &str, database: &str) -> Result<Self> {
        let key = blake3::hash(format!("{target}\n{tenant}\n{database}").as_bytes()).to_hex();
        Ok(match snapshot {
            Location::Dir(dir) => {
                Self { dir: dir.join(crate::snapshot::verify::STATE_DIR), stem: format!("load-{}", &key[..16]) }
            }
            Location::Remote(url) => {
                let home = state_home().ok_or_else(|| {
                    crate::error::Error::Input(format!(
                        "load {url}: no local place for the journal (HOME and XDG_STATE_HOME are unset); pass --journal FILE"
                    ))
                })?;
                Self::remote_in(home, manifest_blake3, &key)
            }
        })
    }

    /// The journals of a remote snapshot whose manifest hashes to `manifest_blake3`, in `home`.
    fn remote_in(home: PathBuf, manifest_blake3: &str, target_key: &str) -> Self {
        let manifest = &manifest_blake3[..16.min(manifest_blake3.len())];
        Self { dir: home, stem: format!("load-{manifest}-{}", &target_key[..16]) }
    }

    /// The default journal of the load unsharded (`None`) or of one shard.
    pub fn path(&self, shard: Option<Shard>) -> PathBuf {
        let name = match shard {
            None => format!("{}.jsonl", self.stem),
            Some(s) => format!("{}.{}.jsonl", self.stem, s.file_tag()),
        };
        self.dir.join(name)
    }

    /// A default journal of a load of the same snapshot into the same target split otherwise than
    /// `shard` (unsharded, or into another number of shards) that began loading a collection: its
    /// path and how it was split. Mixing splits would double or skip records. (A journal that
    /// never got past its start line, e.g. of a load refused because the collections exist,
    /// loaded nothing and does not count.)
    pub fn other_split(&self, shard: Shard) -> Option<(PathBuf, String)> {
        let mut found: Vec<(PathBuf, String)> = fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let split = name.strip_prefix(&self.stem)?.strip_suffix(".jsonl")?;
                let theirs = if split.is_empty() {
                    "an unsharded load".to_owned()
                } else {
                    let n: u64 = split.strip_prefix(".shard-")?.split_once("-of-")?.1.parse().ok()?;
                    if n == shard.count {
                        return None;
                    }
                    format!("a load split into {n} shards")
                };
                let began = Journal::peek(&e.path()).map_or(true, |st| st.is_some_and(|st| !st.collections.is_empty()));
                began.then(|| (e.path(), theirs))
            })
            .collect();
        found.sort();
        found.into_iter().next()
    }
}

/// Where journals of snapshots on object storage live: `$XDG_STATE_HOME/chroma-snap`, else
/// `~/.local/state/chroma-snap`.
pub fn state_home() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = nonempty("XDG_STATE_HOME").or_else(|| nonempty("HOME").map(|h| h.join(".local/state")))?;
    Some(base.join("chroma-snap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::body::Encoding;

    fn limits() -> BatchLimits {
        BatchLimits { max_rows: 10, max_bytes: 100, encoding: Encoding::Json }
    }

    #[test]
    fn survives_reopen_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j/load.jsonl");
        {
            let mut j = Journal::open(&path).unwrap();
            j.append(Line::Collection {
                src: "s".into(),
                dst: "d".into(),
                collection_id: "id1".into(),
                op: WriteOp::Add,
                limits: limits(),
                appended: false,
            })
            .unwrap();
            j.append(Line::Batch { dst: "d".into(), index: 2, rows: 10 }).unwrap();
            j.append(Line::Batch { dst: "d".into(), index: 0, rows: 10 }).unwrap();
            j.append(Line::Batch { dst: "d".into(), index: 0, rows: 10 }).unwrap();
        }
        // A load killed halfway through writing a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"type\":\"batch\",\"dst\":\"d\",\"ind")
            .unwrap();
        let mut j = Journal::open(&path).unwrap();
        let c = &j.state.collections["d"];
        assert_eq!(c.acked.iter().copied().collect::<Vec<_>>(), [0, 2]);
        assert_eq!((c.rows, c.collection_id.as_deref(), c.done), (20, Some("id1"), false));
        j.append(Line::Done { dst: "d".into() }).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(j.state.collections["d"].done);
    }

    #[test]
    fn a_second_load_cannot_take_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load.jsonl");
        let _first = Journal::open(&path).unwrap();
        let err = Journal::open(&path).err().unwrap().to_string();
        assert!(err.contains("another load"), "{err}");
    }

    #[test]
    fn a_damaged_middle_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load.jsonl");
        fs::write(&path, "garbage\n{\"type\":\"done\",\"dst\":\"d\"}\n").unwrap();
        assert!(Journal::open(&path).err().unwrap().to_string().contains("damaged"));
    }

    #[test]
    fn shard_journals_are_named_by_shard_and_other_splits_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let snap = Location::Dir(dir.path().to_path_buf());
        let (url, t, d) = ("http://127.0.0.1:8000", "default_tenant", "default_database");
        let at = |target: &str| DefaultJournals::new(&snap, "m", target, t, d).unwrap();
        let journals = at(url);
        let one = |i, n| Some(Shard { index: i, count: n });
        let plain = journals.path(None);
        let s1 = journals.path(one(1, 3));
        assert!(s1.to_str().unwrap().ends_with(".shard-1-of-3.jsonl"), "{}", s1.display());
        assert_eq!(s1.file_name().unwrap().to_str().unwrap().split('.').next(), plain.file_stem().unwrap().to_str());
        let three = Shard { index: 0, count: 3 };
        assert_eq!(journals.other_split(three), None, "no state directory yet");
        fs::create_dir_all(s1.parent().unwrap()).unwrap();
        let began = "{\"type\":\"creating\",\"dst\":\"c\"}\n";
        for p in [&s1, &journals.path(one(2, 3)), &at("http://elsewhere:1").path(None)] {
            fs::write(p, began).unwrap();
        }
        fs::write(lock_path(&plain), "").unwrap();
        assert_eq!(journals.other_split(three), None, "same split, another target, a lock file");
        let four = journals.path(one(3, 4));
        fs::write(&four, began).unwrap();
        let split_4 = "a load split into 4 shards".to_owned();
        assert_eq!(journals.other_split(three), Some((four.clone(), split_4)));
        fs::write(&plain, "{\"type\":\"done\",\"dst\":\"c\"}\n").unwrap();
        assert_eq!(journals.other_split(three).map(|f| f.0), Some(four.clone()), "it loaded nothing");
        fs::write(&plain, began).unwrap();
        assert_eq!(journals.other_split(three), Some((plain.clone(), "an unsharded load".to_owned())));
        fs::remove_file(&four).unwrap();
        fs::remove_file(&plain).unwrap();
        let four_of = Shard { index: 0, count: 4 };
        let split_3 = Some("a load split into 3 shards".to_owned());
        assert_eq!(journals.other_split(four_of).map(|f| f.1), split_3);
    }

    #[test]
    fn remote_snapshots_keep_shard_journals_in_the_state_home_by_manifest() {
        let home = PathBuf::from("/state/chroma-snap");
        let key = blake3::hash(b"t").to_hex();
        let journals = DefaultJournals::remote_in(home.clone(), "0123456789abcdef0123", &key);
        let plain = journals.path(None);
        assert_eq!(plain, home.join(format!("load-0123456789abcdef-{}.jsonl", &key[..16])));
        let s = journals.path(Some(Shard { index: 2, count: 5 }));
        assert_eq!(s, home.join(format!("load-0123456789abcdef-{}.shard-2-of-5.jsonl", &key[..16])));
        let other = DefaultJournals::remote_in(home, "fedcba9876543210", &key);
        assert_ne!(other.path(None), plain, "another snapshot, another journal");
    }

    #[test]
    fn restart_keeps_the_old_content_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Line::Done { dst: "x".into() }).unwrap();
        j.append(Line::Creating { dst: "d".into() }).unwrap();
        j.restart().unwrap();
        assert!(j.state.collections.is_empty());
        drop(j);
        assert!(Journal::open(&path).unwrap().state.collections.is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3); // journal, lock, old copy
    }
}
