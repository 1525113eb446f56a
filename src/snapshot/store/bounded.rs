//! Refuses what is not a regular file before reading it (a FIFO would block forever, a device
//! such as `/dev/zero` never ends), and bounds every whole-file read.

use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::snapshot::SnapshotError;

/// The largest `manifest.json` read (a manifest of millions of parts stays far below).
pub const MANIFEST_LIMIT: u64 = 256 << 20;
/// The largest transform spec read.
pub const SPEC_LIMIT: u64 = 16 << 20;
/// The largest load journal read (one short line per acknowledged batch).
pub const JOURNAL_LIMIT: u64 = 1 << 30;

fn kind(t: FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

fn regular(path: &Path, meta: &Metadata) -> Result<(), SnapshotError> {
    if meta.file_type().is_file() {
        return Ok(());
    }
    Err(SnapshotError::NotRegular { path: path.to_path_buf(), kind: kind(meta.file_type()) })
}

/// Refuses `path` (symlinks followed) when it exists and is not a regular file; absent is fine.
pub fn refuse_irregular(path: &Path) -> Result<(), SnapshotError> {
    match std::fs::metadata(path) {
        Ok(m) => regular(path, &m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(stat_error(path, e)),
    }
}

/// A symbolic link that loops is damage, not a failing disk.
fn stat_error(path: &Path, e: std::io::Error) -> SnapshotError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return SnapshotError::NotRegular { path: path.to_path_buf(), kind: "a symbolic link loop" };
    }
    SnapshotError::io(path, e)
}

/// Checks an opened file (after a check of the path: it may have been swapped in between).
pub fn check_opened(path: &Path, file: &File) -> Result<(), SnapshotError> {
    let meta = file.metadata().map_err(|e| SnapshotError::io(path, e))?;
    regular(path, &meta)
}

/// Opens a regular file for reading; anything else is refused without blocking.
pub fn open_regular(path: &Path) -> Result<File, SnapshotError> {
    let meta = std::fs::metadata(path).map_err(|e| stat_error(path, e))?;
    regular(path, &meta)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| SnapshotError::io(path, e))?;
    check_opened(path, &file)?;
    Ok(file)
}

/// Takes the exclusive lock of `path` (a lock file, created owner-only if missing), refusing
/// anything that is not a regular file; `None` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Option<File>, SnapshotError> {
    refuse_irregular(path)?;
    let file = crate::fsmode::options()
        .custom_flags(libc::O_NONBLOCK)
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| SnapshotError::io(path, e))?;
    check_opened(path, &file)?;
    Ok(fs2::FileExt::try_lock_exclusive(&file).is_ok().then_some(file))
}

/// Reads all of `from` up to `limit` bytes; more is refused, naming `path` and the limit.
pub fn read_limited(path: &Path, from: impl Read, limit: u64) -> Result<Vec<u8>, SnapshotError> {
    let mut out = Vec::new();
    from.take(limit + 1).read_to_end(&mut out).map_err(|e| SnapshotError::io(path, e))?;
    if out.len() as u64 > limit {
        return Err(SnapshotError::TooLarge { path: path.to_path_buf(), limit });
    }
    Ok(out)
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SnapshotError> {
    read_limited(path, open_regular(path)?, limit)
}

/// `1 MiB`, `256 MiB`, `1 GiB`, or bytes.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("manifest.json");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = read_bounded(&fifo, 10).unwrap_err().to_string();
        assert!(err.ends_with("manifest.json: not a regular file (a FIFO)"), "{err}");
    }

    #[test]
    fn devices_and_symlinks_to_them_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("spec.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for p in [Path::new("/dev/zero"), link.as_path()] {
            let err = read_bounded(p, 10).unwrap_err().to_string();
            assert!(err.contains("not a regular file (a character device)"), "{err}");
        }
        let err = read_bounded(dir.path(), 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file (a directory)"), "{err}");
    }

    #[test]
    fn reads_up_to_the_limit_and_refuses_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("j");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_bounded(&f, 10).unwrap(), b"0123456789");
        let err = read_bounded(&f, 9).unwrap_err().to_string();
        assert!(err.contains("/j: larger than 9 bytes"), "{err}");
        assert_eq!(human(MANIFEST_LIMIT), "256 MiB");
        assert_eq!(human(JOURNAL_LIMIT), "1 GiB");
    }
}
