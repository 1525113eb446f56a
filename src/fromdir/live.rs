//! Whether a running server is using a data directory. Reading files a server is writing gives a
//! torn picture, so `export --from-dir` refuses such a directory unless `--force` says it is a
//! copy.
//!
//! How it tells (docs/from-dir.md): a process on this machine with a file under the directory
//! open (every Chroma server keeps `chroma.sqlite3` open while it runs; found through
//! `/proc/*/fd`), or a SQLite rollback journal or WAL beside `chroma.sqlite3` (a write in
//! progress, or a server that died in one: the immutable read would not see it).

use std::path::Path;

/// Why the directory looks in use, or `None`.
pub fn in_use(dir: &Path) -> Option<String> {
    for suffix in ["-journal", "-wal"] {
        let side = dir.join(format!("chroma.sqlite3{suffix}"));
        if let Ok(m) = std::fs::metadata(&side)
            && m.len() > 0
        {
            return Some(format!(
                "{} exists ({} bytes): a server is writing, or died while writing, and its last writes are not in chroma.sqlite3 yet",
                side.display(),
                m.len()
            ));
        }
    }
    let root = std::fs::canonicalize(dir).ok()?;
    let db = root.join("chroma.sqlite3");
    let me = std::process::id().to_string();
    let procs = std::fs::read_dir("/proc").ok()?;
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && target.starts_with(&root)
            {
                let what = if target == db { "chroma.sqlite3".to_owned() } else { target.display().to_string() };
                return Some(format!("process {pid} has {what} open (a server is running on it)"));
            }
        }
    }
    None
}
