//! The local-filesystem [`Store`]: a directory. Files are created owner-only (see `fsmode`),
//! written under a temporary name and renamed after an fsync, and their directory is fsynced;
//! part keys that leave the directory (by `..` or a symlink) and anything that is not a regular
//! file are refused.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bounded::{open_regular, read_bounded};
use super::{Blob, Entry, RangeRead, Store, StoreLock, Upload};
use crate::snapshot::SnapshotError;
use crate::snapshot::manifest::{check_part_path, resolve_part, sync_dir, write_file_atomic};

/// A snapshot directory on a local filesystem.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a key to write (checked: plain names only).
    fn path(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        if key.is_empty() {
            return Ok(self.root.clone());
        }
        check_part_path(key)
            .map_err(|why| SnapshotError::Refused(format!("{}: {why}", self.root.join(key).display())))?;
        Ok(self.root.join(key))
    }
}

struct LocalFile {
    file: File,
    len: u64,
}

/// An exclusive `flock` on an open lock file; released when the file is closed.
struct FileLock {
    _file: File,
}

impl StoreLock for FileLock {
    fn lost(&self) -> bool {
        false
    }
}

/// A [`Blob`] over an open file of `len` bytes, named `path` in messages.
pub(super) fn file_blob(file: File, len: u64, path: PathBuf) -> Blob {
    Blob::new(Arc::new(LocalFile { file, len }), path)
}

impl RangeRead for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        self.file.read_at(buf, offset)
    }
}

struct LocalUpload {
    out: BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Write for LocalUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Upload for LocalUpload {
    fn commit(self: Box<Self>) -> Result<(), SnapshotError> {
        let file = self.out.into_inner().map_err(|e| SnapshotError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| SnapshotError::io(&self.tmp, e))?;
        fs::rename(&self.tmp, &self.dest).map_err(|e| SnapshotError::io(&self.dest, e))?;
        sync_dir(self.dest.parent().unwrap_or(Path::new(".")))
    }
    fn location(&self) -> PathBuf {
        self.tmp.clone()
    }
}

impl Store for LocalStore {
    fn location(&self, key: &str) -> PathBuf {
        if key.is_empty() { self.root.clone() } else { self.root.join(key) }
    }

    fn list(&self, skip: &str) -> Result<Vec<Entry>, SnapshotError> {
        let mut out = Vec::new();
        let mut stack = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            for entry in fs::read_dir(&dir).map_err(|e| SnapshotError::io(&dir, e))? {
                let entry = entry.map_err(|e| SnapshotError::io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if rel.is_empty() && name == skip {
                    continue;
                }
                let key = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                let meta = entry.metadata().map_err(|e| SnapshotError::io(&entry.path(), e))?;
                if meta.is_dir() {
                    stack.push((entry.path(), key));
                } else {
                    out.push(Entry { key, size: meta.len() });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn open(&self, key: &str) -> Result<Blob, SnapshotError> {
        let path = resolve_part(&self.root, key)
            .map_err(|why| SnapshotError::Refused(format!("{}: {why}", self.root.join(key).display())))?;
        let file = open_regular(&path)?;
        let len = file.metadata().map_err(|e| SnapshotError::io(&path, e))?.len();
        Ok(Blob::new(Arc::new(LocalFile { file, len }), path))
    }

    fn read_small(&self, key: &str, limit: u64) -> Result<Vec<u8>, SnapshotError> {
        read_bounded(&self.path(key)?, limit)
    }

    fn create(&self, key: &str) -> Result<Box<dyn Upload>, SnapshotError> {
        let dest = self.path(key)?;
        let tmp = self.root.join(format!("{key}.tmp"));
        let file = crate::fsmode::create_file(&tmp).map_err(|e| SnapshotError::io(&tmp, e))?;
        Ok(Box::new(LocalUpload { out: BufWriter::with_capacity(1 << 20, file), tmp, dest }))
    }

    fn put_atomic(&self, key: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
        write_file_atomic(&self.path(key)?, bytes)
    }

    fn remove_prefix(&self, prefix: &str) -> Result<(), SnapshotError> {
        let path = self.path(prefix)?;
        let res = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => Err(e),
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
        };
        res.map_err(|e| SnapshotError::io(&path, e))
    }

    fn sync(&self, prefix: &str) -> Result<(), SnapshotError> {
        sync_dir(&self.path(prefix)?)
    }

    fn prepare_dir(&self, prefix: &str) -> Result<(), SnapshotError> {
        let dir = self.path(prefix)?;
        crate::fsmode::create_dir_all(&dir).map_err(|e| SnapshotError::io(&dir, e))
    }

    fn try_lock(&self, key: &str) -> Result<Option<Box<dyn StoreLock>>, SnapshotError> {
        let held = super::bounded::try_lock(&self.path(key)?)?;
        Ok(held.map(|file| Box::new(FileLock { _file: file }) as Box<dyn StoreLock>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_commits_atomically_owner_only_and_lists_with_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        s.prepare_dir("parts/0000").unwrap();
        let mut up = s.create("parts/0000/p.parquet").unwrap();
        up.write_all(b"hello").unwrap();
        assert!(!dir.path().join("parts/0000/p.parquet").exists(), "invisible before commit");
        up.commit().unwrap();
        s.put_atomic("report.json", b"{}").unwrap();
        let mode = fs::metadata(dir.path().join("parts/0000/p.parquet")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let keys: Vec<_> = s.list("").unwrap().into_iter().map(|e| (e.key, e.size)).collect();
        assert_eq!(keys, [("parts/0000/p.parquet".to_owned(), 5), ("report.json".to_owned(), 2)]);
        let mut text = String::new();
        s.open("parts/0000/p.parquet").unwrap().reader_at(1).read_to_string(&mut text).unwrap();
        assert_eq!(text, "ello");
        s.remove_prefix("parts").unwrap();
        assert_eq!(s.list("").unwrap().len(), 1);
    }

    #[test]
    fn keys_that_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(&dir.path().join("snap"));
        s.prepare_dir("").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("snap/out")).unwrap();
        fs::write(dir.path().join("secret"), b"x").unwrap();
        assert!(s.open("out/secret").unwrap_err().to_string().contains("resolves outside"));
        assert!(s.create("../x").is_err());
        assert!(s.read_small("/etc/passwd", 10).is_err());
    }
}
