//! Who may read what chroma-snap writes: by default the owner only (files 0600, directories
//! 0700), since snapshots and journals hold a whole database; `--shared-perms` lets the umask
//! decide instead, as for any other program.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static SHARED: AtomicBool = AtomicBool::new(false);

/// Chooses owner-only (the default) or umask-decided permissions for everything created next.
pub fn set_shared(shared: bool) {
    SHARED.store(shared, Ordering::Relaxed);
}

fn shared() -> bool {
    SHARED.load(Ordering::Relaxed)
}

/// The mode new files are created with (before the umask).
pub fn file_mode() -> u32 {
    if shared() { 0o666 } else { 0o600 }
}

/// The mode new directories are created with (before the umask).
pub fn dir_mode() -> u32 {
    if shared() { 0o777 } else { 0o700 }
}

/// Creates `path` and its missing parents with [`dir_mode`]; existing directories are left as
/// they are.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(dir_mode()).create(path)
}

/// Open options that create files with [`file_mode`].
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(file_mode());
    o
}

/// Creates (or truncates) a file for writing, with [`file_mode`] when new.
pub fn create_file(path: &Path) -> io::Result<File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Permissions for temporary files that are renamed into place.
pub fn temp_permissions() -> Permissions {
    Permissions::from_mode(file_mode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_only_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        create_dir_all(&d).unwrap();
        create_file(&d.join("f")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir.path().join("a")), mode(&d), mode(&d.join("f"))), (0o700, 0o700, 0o600));
    }
}
