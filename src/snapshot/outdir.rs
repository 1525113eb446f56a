//! A command's output directory: refuse to overwrite a snapshot or foreign files; clear the
//! leftovers of an interrupted run of the same command; mark the directory as in progress until
//! the end, so a half-written directory is never mistaken for a finished one. Directories are
//! created owner-only unless asked otherwise (see `fsmode`). A prefix of an object store gets the
//! same refusals, lock (a lease, see `store::lease`), marker and leftover clearing.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::SnapshotError;
use super::location::Location;
use super::manifest::{MANIFEST_FILE, sync_dir};
use super::store::bounded::try_lock;
use super::store::{Store, StoreLock};
use super::verify::STATE_DIR;
use crate::fsmode;

/// The command writing a directory; it names the marker (`.chroma-snap/<command>-in-progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Export,
    Transform,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Export => "export",
            Job::Transform => "transform",
        }
    }
}

/// Lock file of a run writing a directory (under the state directory).
const LOCK_FILE: &str = "out.lock";

/// Marks a directory as holding a run in progress and keeps other runs out of it until
/// [`Guard::complete`] (or until the process ends: the lock dies with it).
pub struct Guard(Held);

enum Held {
    Dir { marker: PathBuf, lock_path: PathBuf, _lock: File },
    Remote { store: Arc<dyn Store>, marker: String, lock: Box<dyn StoreLock> },
}

/// [`prepare`] for any location: a directory as below, or a prefix of an object store (`store`,
/// opened from `out`) refused when it holds a snapshot or objects no interrupted run of `job`
/// left, cleared of such leftovers, and marked. `input` is the snapshot the job reads, if any.
pub fn prepare_at(
    out: &Location,
    store: &Arc<dyn Store>,
    job: Job,
    input: Option<&Location>,
) -> Result<Guard, SnapshotError> {
    match (out, input) {
        (Location::Dir(dir), input) => prepare(dir, job, input.and_then(Location::as_dir)),
        (Location::Remote(o), Some(Location::Remote(i))) if nested(o, i) || nested(i, o) => {
            Err(SnapshotError::Overlap { out: o.into(), input: i.into() })
        }
        (Location::Remote(_), _) => prepare_remote(store.clone(), job),
    }
}

/// Whether prefix URL `inner` is `outer` or lies under it.
fn nested(inner: &str, outer: &str) -> bool {
    inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

fn prepare_remote(store: Arc<dyn Store>, job: Job) -> Result<Guard, SnapshotError> {
    let marker = format!("{STATE_DIR}/{}-in-progress", job.name());
    let lock_key = format!("{STATE_DIR}/{LOCK_FILE}");
    refuse_occupied_prefix(store.as_ref(), &marker, &lock_key)?;
    let Some(lock) = store.try_lock(&lock_key)? else {
        return Err(SnapshotError::Busy { dir: store.location(""), lock: store.location(&lock_key) });
    };
    // Under the lock: what another run may have finished or left meanwhile.
    let objects = refuse_occupied_prefix(store.as_ref(), &marker, &lock_key)?;
    let state = format!("{STATE_DIR}/");
    let mut leftovers: Vec<&str> = objects
        .iter()
        .filter(|e| !e.key.starts_with(&state))
        .map(|e| e.key.split('/').next().unwrap_or(&e.key))
        .collect();
    leftovers.dedup();
    if !leftovers.is_empty() {
        tracing::warn!("{}: removing the leftovers of an interrupted {}", store.location("").display(), job.name());
        for top in leftovers {
            store.remove_prefix(top)?;
        }
    }
    let text = format!("a {} into this prefix has not finished\n", job.name());
    store.put_atomic(&marker, text.as_bytes())?;
    Ok(Guard(Held::Remote { store, marker, lock }))
}

/// Refuses a prefix holding a snapshot, or objects that neither an interrupted run of ours (its
/// marker) nor a run killed before its marker (only the lock) left; returns what it holds.
fn refuse_occupied_prefix(
    store: &dyn Store,
    marker: &str,
    lock_key: &str,
) -> Result<Vec<super::store::Entry>, SnapshotError> {
    let objects = store.list("")?;
    if objects.iter().any(|e| e.key == MANIFEST_FILE) {
        return Err(SnapshotError::Occupied { dir: store.location("") });
    }
    let ours = objects.iter().any(|e| e.key == marker);
    if !ours && objects.iter().any(|e| e.key != lock_key) {
        return Err(SnapshotError::Foreign { dir: store.location("") });
    }
    Ok(objects)
}

/// Makes `out` ready for `job`: absent or empty, or left by an interrupted run of the same job
/// (everything in it but the state directory is then removed: the marker proves it is ours).
/// `input` is the snapshot the job reads, if any: `out` may neither lie inside it nor hold it.
/// A second run into the same directory at the same time is refused (a lock).
pub fn prepare(out: &Path, job: Job, input: Option<&Path>) -> Result<Guard, SnapshotError> {
    if let Some(input) = input {
        check_overlap(out, input)?;
    }
    let marker = out.join(STATE_DIR).join(format!("{}-in-progress", job.name()));
    refuse_occupied(out, &marker)?;
    let state = out.join(STATE_DIR);
    fsmode::create_dir_all(&state).map_err(|e| SnapshotError::io(&state, e))?;
    let lock_path = state.join(LOCK_FILE);
    let Some(lock) = try_lock(&lock_path)? else {
        return Err(SnapshotError::Busy { dir: out.to_path_buf(), lock: lock_path });
    };
    // Under the lock: what another run may have finished or left meanwhile.
    refuse_occupied(out, &marker)?;
    clear_leftovers(out, job)?;
    let mut f = fsmode::create_file(&marker).map_err(|e| SnapshotError::io(&marker, e))?;
    f.write_all(format!("a {} into this directory has not finished\n", job.name()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| SnapshotError::io(&marker, e))?;
    sync_dir(&state)?;
    sync_dir(out)?;
    Ok(Guard(Held::Dir { marker, lock_path, _lock: lock }))
}

/// Refuses a directory that holds a snapshot, or files that no interrupted run of ours left.
fn refuse_occupied(out: &Path, marker: &Path) -> Result<(), SnapshotError> {
    if out.join(MANIFEST_FILE).exists() {
        return Err(SnapshotError::Occupied { dir: out.to_path_buf() });
    }
    if !out.exists() || marker.exists() {
        return Ok(());
    }
    let entries: Vec<_> = fs::read_dir(out).map_err(|e| SnapshotError::io(out, e))?.filter_map(|e| e.ok()).collect();
    // A run killed between creating the state directory and its marker left only the state
    // directory (empty, or holding the lock file): that is as good as empty.
    let ours = |e: &fs::DirEntry| {
        e.file_name() == STATE_DIR
            && fs::read_dir(e.path()).is_ok_and(|d| d.filter_map(|x| x.ok()).all(|x| x.file_name() == LOCK_FILE))
    };
    if entries.iter().all(ours) {
        return Ok(());
    }
    Err(SnapshotError::Foreign { dir: out.to_path_buf() })
}

/// Removes everything but the state directory (called under the lock, once the marker or an
/// empty directory proved the contents ours).
fn clear_leftovers(out: &Path, job: Job) -> Result<(), SnapshotError> {
    let entries: Vec<_> = fs::read_dir(out)
        .map_err(|e| SnapshotError::io(out, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != STATE_DIR)
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    tracing::warn!("{}: removing the leftovers of an interrupted {}", out.display(), job.name());
    for e in entries {
        let p = e.path();
        let res = if e.file_type().is_ok_and(|t| t.is_dir()) { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        res.map_err(|err| SnapshotError::io(&p, err))?;
    }
    Ok(())
}

/// Refuses an output directory inside the input snapshot, or one that holds it (after
/// resolving symlinks and `..`).
fn check_overlap(out: &Path, input: &Path) -> Result<(), SnapshotError> {
    let (Some(o), Ok(i)) = (resolve_lenient(out), input.canonicalize()) else { return Ok(()) };
    if o.starts_with(&i) || i.starts_with(&o) {
        return Err(SnapshotError::Overlap { out: out.to_path_buf(), input: input.to_path_buf() });
    }
    Ok(())
}

/// The absolute, symlink-free form of a path that may not exist yet: its deepest existing
/// ancestor canonicalized, the rest appended.
fn resolve_lenient(p: &Path) -> Option<PathBuf> {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().ok()?.join(p) };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(real) = cur.canonicalize() {
            let mut out = real;
            for c in rest.iter().rev() {
                match c {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            return Some(out);
        }
        rest.push(cur.components().next_back()?);
        cur = cur.parent()?;
    }
}

impl Guard {
    /// Clears the mark and the lock: call it only after the manifest (or the run's last file)
    /// is on disk.
    pub fn complete(self) -> Result<(), SnapshotError> {
        match self.0 {
            Held::Dir { marker, lock_path, _lock } => {
                fs::remove_file(&marker).map_err(|e| SnapshotError::io(&marker, e))?;
                let _ = fs::remove_file(&lock_path);
                if let Some(state) = marker.parent() {
                    let _ = fs::remove_dir(state); // only if empty
                }
                Ok(())
            }
            Held::Remote { store, marker, lock } => {
                if lock.lost() {
                    let lock_path = store.location(&format!("{STATE_DIR}/{LOCK_FILE}"));
                    return Err(SnapshotError::Busy { dir: store.location(""), lock: lock_path });
                }
                store.remove_prefix(&marker)?;
                drop(lock); // deletes the lock object
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_killed_before_its_marker_can_be_rerun_but_foreign_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        fs::create_dir_all(out.join(STATE_DIR)).unwrap();
        prepare(&out, Job::Transform, None).expect("an empty state directory is as good as empty").complete().unwrap();
        fs::write(out.join("notes.txt"), b"mine").unwrap();
        let err = prepare(&out, Job::Transform, None).err().expect("foreign files are refused");
        assert!(err.to_string().contains("is not empty and holds no snapshot"), "{err}");
        assert!(out.join("notes.txt").exists());
    }

    #[test]
    fn a_second_run_into_the_same_directory_is_refused_while_the_first_holds_it() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let first = prepare(&out, Job::Export, None).unwrap();
        let err = prepare(&out, Job::Export, None).err().expect("the lock keeps a second run out");
        assert!(matches!(err, SnapshotError::Busy { .. }), "{err}");
        first.complete().unwrap();
        prepare(&out, Job::Export, None).expect("free again once the first run completed").complete().unwrap();
        assert!(!out.join(STATE_DIR).exists(), "a completed run leaves no state behind");
    }

    #[test]
    fn a_fifo_where_the_lock_should_be_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        fs::create_dir_all(out.join(STATE_DIR)).unwrap();
        let fifo = out.join(STATE_DIR).join(LOCK_FILE);
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = prepare(&out, Job::Export, None).err().expect("a FIFO lock is refused");
        assert!(err.to_string().ends_with("out.lock: not a regular file (a FIFO)"), "{err}");
    }

    #[test]
    fn an_output_inside_the_input_or_holding_it_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let input = t.path().join("snap");
        fs::create_dir_all(&input).unwrap();
        for out in [input.join("out"), input.join("a/../b"), t.path().to_path_buf(), input.clone()] {
            let err = prepare(&out, Job::Transform, Some(&input)).err().expect("overlap is refused");
            assert!(matches!(err, SnapshotError::Overlap { .. }), "{}: {err}", out.display());
        }
        assert!(!input.join("out").exists(), "nothing is created on refusal");
        prepare(&t.path().join("elsewhere"), Job::Transform, Some(&input)).unwrap().complete().unwrap();
    }
}
