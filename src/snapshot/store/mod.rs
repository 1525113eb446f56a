//! The storage seam: every byte of a snapshot is listed, read, written, removed and synced
//! through [`Store`], so export, transform and load never know where the bytes live.
//!
//! Two implementations: [`LocalStore`] (a directory) and [`RemoteStore`] (S3, GCS, Azure through
//! the `object_store` crate: ranged GETs behind [`RangeRead`], a multipart upload behind
//! [`Upload`], a single PUT for [`Store::put_atomic`], and no-ops for [`Store::sync`] and
//! [`Store::prepare_dir`]). [`SpoolStore`] wraps a remote store so each object is downloaded
//! once and then read from a local copy. Hashing while streaming is a wrapper
//! ([`HashingWriter`]), not something each caller does.

mod blob;
pub mod bounded;
mod hashing;
mod lease;
mod local;
mod object;
mod remote_error;
mod spool;

use std::io::Write;
use std::path::PathBuf;

pub use blob::{Blob, BlobCursor, RangeRead};
pub use bounded::{JOURNAL_LIMIT, MANIFEST_LIMIT, SPEC_LIMIT, read_bounded};
pub use hashing::{HashingWriter, hash_blob, spool_blob};
pub use local::LocalStore;
pub use object::RemoteStore;
pub use remote_error::RemoteFailure;
pub use spool::SpoolStore;

use super::SnapshotError;

/// One object under a store's root: its key (`/`-separated, relative) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
}

/// A file being written; nothing is visible under its key until [`Upload::commit`].
pub trait Upload: Write + Send {
    /// Makes the file durable and visible under its key (locally: fsync, rename, fsync of the
    /// directory; on an object store: complete the multipart upload).
    fn commit(self: Box<Self>) -> Result<(), SnapshotError>;
    /// Where the file is being written, for messages.
    fn location(&self) -> PathBuf;
}

/// Where a snapshot's bytes live. Keys are relative, `/`-separated paths made of plain names.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where `key` lives, for messages (a path locally, a URL on an object store).
    fn location(&self, key: &str) -> PathBuf;
    /// Every object under the root with its size, except under `skip` (a top-level prefix).
    fn list(&self, skip: &str) -> Result<Vec<Entry>, SnapshotError>;
    /// Opens an object for ranged reads; anything that is not a regular file is refused.
    fn open(&self, key: &str) -> Result<Blob, SnapshotError>;
    /// Reads a small object whole, refusing one larger than `limit` bytes.
    fn read_small(&self, key: &str, limit: u64) -> Result<Vec<u8>, SnapshotError>;
    /// Starts writing an object (streamed; committed atomically).
    fn create(&self, key: &str) -> Result<Box<dyn Upload>, SnapshotError>;
    /// Writes a small object atomically (the manifest, the report).
    fn put_atomic(&self, key: &str, bytes: &[u8]) -> Result<(), SnapshotError>;
    /// Removes every object under `prefix` (absent is fine).
    fn remove_prefix(&self, prefix: &str) -> Result<(), SnapshotError>;
    /// Makes what was committed under `prefix` durable (a directory fsync locally).
    fn sync(&self, prefix: &str) -> Result<(), SnapshotError>;
    /// Makes `prefix` ready to hold objects (creates the directory locally).
    fn prepare_dir(&self, prefix: &str) -> Result<(), SnapshotError>;
    /// Whether reading an object again costs another transfer (an object store): a caller that
    /// reads a part twice then spools it to a local temporary file first ([`spool_blob`]).
    fn remote(&self) -> bool {
        false
    }
    /// Bytes downloaded so far, for a store where reading is a transfer.
    fn bytes_fetched(&self) -> Option<u64> {
        None
    }
    /// Takes the exclusive lock `key` (a lock file locally; a leased object on an object store),
    /// held until the returned guard is dropped; `None` when another run holds it.
    fn try_lock(&self, key: &str) -> Result<Option<Box<dyn StoreLock>>, SnapshotError>;
}

/// A held lock of [`Store::try_lock`]; released when dropped.
pub trait StoreLock: Send {
    /// Whether another run took the lock over meanwhile (a lease that was not renewed in time).
    fn lost(&self) -> bool;
}
