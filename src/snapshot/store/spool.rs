//! A remote snapshot read once: [`SpoolStore`] downloads each object whole into a private
//! temporary directory the first time it is opened, and every later open reads that copy, so
//! `load` checks and then sends the very bytes it downloaded, without a second download.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Blob, Entry, Store, StoreLock, Upload};
use crate::snapshot::SnapshotError;

/// Room kept free in the temporary directory beyond the copies themselves.
const HEADROOM: u64 = 256 << 20;

/// One object's local copy (path, size) once downloaded, behind its own lock.
type Slot = Arc<Mutex<Option<(PathBuf, u64)>>>;

/// Reads through `inner`, keeping a local copy of every object opened; writes go to `inner`.
#[derive(Debug)]
pub struct SpoolStore {
    inner: Arc<dyn Store>,
    dir: tempfile::TempDir,
    /// key → its local copy (path, size), filled on first open; one lock per key so a part
    /// opened by two threads at once is downloaded once.
    copies: Mutex<HashMap<String, Slot>>,
}

impl SpoolStore {
    /// Spools `inner` when the temporary directory (`TMPDIR`) has room for `needed` bytes and
    /// some headroom; otherwise `Err` with the space that is free, and the caller reads `inner`
    /// directly (twice).
    pub fn with_room(inner: Arc<dyn Store>, needed: u64) -> io::Result<Result<Self, u64>> {
        let tmp = std::env::temp_dir();
        let free = fs2::available_space(&tmp)?;
        if needed.saturating_add(HEADROOM) > free {
            return Ok(Err(free));
        }
        let dir = tempfile::Builder::new().prefix("chroma-snap-spool-").tempdir_in(&tmp)?;
        Ok(Ok(Self { inner, dir, copies: Mutex::default() }))
    }

    /// Where the copies are kept (removed when the store is dropped).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn copy_of(&self, key: &str) -> Result<(PathBuf, u64), SnapshotError> {
        let slot = self.copies.lock().expect("spool map").entry(key.to_owned()).or_default().clone();
        let mut slot = slot.lock().expect("spool slot");
        if let Some(copy) = slot.as_ref() {
            return Ok(copy.clone());
        }
        let blob = self.inner.open(key)?;
        let path = self.dir.path().join(format!("{:06}", self.copies.lock().expect("spool map").len()));
        let io_err = |source: io::Error| SnapshotError::Io { path: self.inner.location(key), source };
        let file = crate::fsmode::create_file(&path).map_err(io_err)?;
        let bytes = download(&blob, file).map_err(io_err)?;
        *slot = Some((path, bytes));
        Ok(slot.clone().expect("just set"))
    }
}

/// Copies a whole object into `file` in 1 MiB reads; its size.
fn download(blob: &Blob, file: File) -> io::Result<u64> {
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let bytes = io::copy(&mut blob.reader_at(0), &mut out)?;
    out.flush()?;
    Ok(bytes)
}

impl Store for SpoolStore {
    fn location(&self, key: &str) -> PathBuf {
        self.inner.location(key)
    }
    fn list(&self, skip: &str) -> Result<Vec<Entry>, SnapshotError> {
        self.inner.list(skip)
    }
    fn open(&self, key: &str) -> Result<Blob, SnapshotError> {
        let (path, bytes) = self.copy_of(key)?;
        let file = File::open(&path).map_err(|source| SnapshotError::Io { path: self.location(key), source })?;
        Ok(super::local::file_blob(file, bytes, self.location(key)))
    }
    fn read_small(&self, key: &str, limit: u64) -> Result<Vec<u8>, SnapshotError> {
        self.inner.read_small(key, limit)
    }
    fn create(&self, key: &str) -> Result<Box<dyn Upload>, SnapshotError> {
        self.inner.create(key)
    }
    fn put_atomic(&self, key: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.inner.put_atomic(key, bytes)
    }
    fn remove_prefix(&self, prefix: &str) -> Result<(), SnapshotError> {
        self.inner.remove_prefix(prefix)
    }
    fn sync(&self, prefix: &str) -> Result<(), SnapshotError> {
        self.inner.sync(prefix)
    }
    fn prepare_dir(&self, prefix: &str) -> Result<(), SnapshotError> {
        self.inner.prepare_dir(prefix)
    }
    /// Reads are local once an object is spooled.
    fn remote(&self) -> bool {
        false
    }
    fn bytes_fetched(&self) -> Option<u64> {
        self.inner.bytes_fetched()
    }
    fn try_lock(&self, key: &str) -> Result<Option<Box<dyn StoreLock>>, SnapshotError> {
        self.inner.try_lock(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::store::LocalStore;

    #[test]
    fn an_object_is_copied_once_and_read_from_the_copy() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a"), b"hello spool").unwrap();
        let spool = SpoolStore::with_room(Arc::new(LocalStore::new(src.path())), 11).unwrap().unwrap();
        let mut first = String::new();
        io::Read::read_to_string(&mut spool.open("a").unwrap().reader_at(0), &mut first).unwrap();
        // The source changes; the copy taken at the first open is what is read from then on.
        std::fs::write(src.path().join("a"), b"changed!").unwrap();
        let mut again = String::new();
        io::Read::read_to_string(&mut spool.open("a").unwrap().reader_at(6), &mut again).unwrap();
        assert_eq!((first.as_str(), again.as_str()), ("hello spool", "spool"));
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 1);
        assert!(spool.open("missing").is_err());
        let dir = spool.dir().to_path_buf();
        drop(spool);
        assert!(!dir.exists(), "the copies go with the store");
    }

    #[test]
    fn no_room_is_said_with_the_space_that_is_free() {
        let src = tempfile::tempdir().unwrap();
        let free = SpoolStore::with_room(Arc::new(LocalStore::new(src.path())), u64::MAX / 2).unwrap().unwrap_err();
        assert!(free < u64::MAX / 2);
    }
}
