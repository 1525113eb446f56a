//! What can go wrong in a load: each variant names the collection, batch, record or journal
//! concerned, and says which exit-code class it belongs to.

use std::path::PathBuf;

use crate::chroma::ChromaError;
use crate::error::exit;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `--collection` names a collection the snapshot does not hold.
    #[error("the snapshot has no collection {name:?} (it has {known:?})")]
    UnknownCollection { name: String, known: Vec<String> },
    /// Two `--collection` pairs share a target.
    #[error("two collections would be loaded into {target:?}")]
    SameTarget { target: String },
    /// The snapshot is damaged (pre-flight): nothing was sent.
    #[error("{} is damaged, nothing was sent: {}", snapshot.display(), problems.join("; "))]
    Damaged { snapshot: PathBuf, problems: Vec<String> },
    /// Records the target cannot take (pre-flight): nothing was sent.
    #[error(
        "{} holds records the target cannot take, nothing was sent (fix them with `chroma-snap transform`): {}",
        snapshot.display(), problems.join("; ")
    )]
    Unloadable { snapshot: PathBuf, problems: Vec<String> },
    /// A record that cannot be encoded for the target.
    #[error("collection {collection:?}: {why}")]
    Encode { collection: String, why: String },
    /// The target collection holds embeddings of another dimension.
    #[error(
        "collection {target:?} on the target holds {have}-dimension embeddings; the snapshot's {source_collection:?} has {want}"
    )]
    Dimension { target: String, have: usize, source_collection: String, want: usize },
    /// The target collection exists and the policy forbids touching it.
    #[error(
        "collection {target:?} already exists on {url} and {why}; choose --if-exists replace (delete and reload) or append (upsert into it)"
    )]
    Exists { target: String, url: String, why: String },
    /// `--if-exists fail` and a journalled load of the collection.
    #[error("collection {target:?} exists (a journalled load of it is {}); --if-exists fail", if *complete { "complete" } else { "unfinished" })]
    ExistsJournalled { target: String, complete: bool },
    /// The server refused a record for good.
    #[error("collection {collection:?}, batch {batch}: the server refused record {id:?} ({status}): {message}")]
    Refused { collection: String, batch: u64, id: String, status: u16, message: String },
    /// A batch failed after its retries; `source` already names the collection and batch.
    #[error("{source}; rerun the same command to resume")]
    Batch { collection: String, batch: u64, source: ChromaError },
    /// The journal belongs to another snapshot or target.
    #[error("cannot resume with journal {}: {why}; use --if-exists replace to start over, or another --journal", path.display())]
    ForeignJournal { path: PathBuf, why: String },
    /// Another load holds the journal's lock.
    #[error("another load is using the journal {} (locked through {}); wait for it to finish", path.display(), lock.display())]
    JournalLocked { path: PathBuf, lock: PathBuf },
    /// A journal line other than the last cannot be read.
    #[error("journal {} is damaged at byte {offset}: {why}; move it away to start over", path.display())]
    JournalDamaged { path: PathBuf, offset: usize, why: String },
    /// The journal cannot be read or written.
    #[error("journal {}: {why}", path.display())]
    Journal { path: PathBuf, why: String },
    /// A worker thread of the load died (a bug, or the process is being torn down).
    #[error("{what} failed: {why}")]
    Worker { what: &'static str, why: String },
    /// `--shard` cannot be parsed, or names no shard.
    #[error("--shard {spec:?}: {why}")]
    BadShard { spec: String, why: String },
    /// An `--if-exists` mode a shard cannot honour without touching what other shards wrote.
    #[error("--if-exists {mode} cannot run with --shard: {why}")]
    ShardIfExists { mode: &'static str, why: &'static str },
    /// The shard's journal was written for another shard or another snapshot.
    #[error("journal {}: {why}; rerun with the same --shard and snapshot, or start the whole load over (see `load --help`)", path.display())]
    ShardJournal { path: PathBuf, why: String },
    /// The state directory holds a journal of this target split another way.
    #[error(
        "journal {} records {theirs} of this snapshot into this target, this run is {ours}: mixing splits would double or skip records; finish that load as it was split, or move its journals away to start over",
        path.display()
    )]
    OtherSplit { path: PathBuf, theirs: String, ours: String },
    /// A shard found the target collection with other settings than the snapshot's.
    #[error(
        "collection {target:?} on {url} does not have the settings of the snapshot's {source_collection:?} ({why}); a shard only joins a collection with the snapshot's settings"
    )]
    ShardSettings { target: String, url: String, source_collection: String, why: String },
    /// `--if-exists sync` found a target collection built with other settings (distance space,
    /// HNSW parameters): they cannot change in place. Nothing was written.
    #[error(
        "collection {target:?} on {url} was built with other settings than the snapshot's {source_collection:?} ({why}); sync cannot change them in place, nothing was written: use --if-exists replace"
    )]
    SyncSettings { target: String, url: String, source_collection: String, why: String },
    /// For tests: `--fail-after-batches`.
    #[error("stopped after {0} acknowledged batches (--fail-after-batches)")]
    StoppedForTest(u64),
}

impl LoadError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownCollection { .. }
            | Self::SameTarget { .. }
            | Self::Damaged { .. }
            | Self::Unloadable { .. }
            | Self::Encode { .. }
            | Self::Dimension { .. }
            | Self::Exists { .. }
            | Self::ExistsJournalled { .. }
            | Self::ForeignJournal { .. }
            | Self::BadShard { .. }
            | Self::ShardIfExists { .. }
            | Self::ShardJournal { .. }
            | Self::OtherSplit { .. }
            | Self::ShardSettings { .. }
            | Self::SyncSettings { .. } => exit::INPUT,
            Self::Refused { .. }
            | Self::Batch { .. }
            | Self::Journal { .. }
            | Self::JournalLocked { .. }
            | Self::JournalDamaged { .. }
            | Self::Worker { .. }
            | Self::StoppedForTest(_) => exit::FAILED,
        }
    }

    /// A journal error at `path`.
    pub fn journal(path: &std::path::Path, why: impl std::fmt::Display) -> Self {
        Self::Journal { path: path.to_path_buf(), why: why.to_string() }
    }
}
