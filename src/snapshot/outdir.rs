//! A command's output directory: refuse to overwrite a snapshot or foreign files; clear the
//! leftovers of an interrupted run of the same command; mark the directory as in progress until
//! the end, so a half-written directory is never mistaken for a finished one. Directories are
//! created owner-only unless asked otherwise (see `fsmode`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::manifest::{MANIFEST_FILE, sync_dir};
use super::verify::STATE_DIR;
use crate::error::{Error, Result};
use crate::fsmode;

/// The command writing a directory; it names the marker (`.chroma-snap/<command>-in-progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Export,
    Transform,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Export => "export",
            Job::Transform => "transform",
        }
    }
}

/// Marks a directory as holding a run in progress; [`Guard::complete`] clears the mark.
pub struct Guard {
    marker: PathBuf,
}

/// Makes `out` ready for `job`: absent or empty, or left by an interrupted run of the same job
/// (everything in it but the state directory is then removed: the marker proves it is ours).
pub fn prepare(out: &Path, job: Job) -> Result<Guard> {
    let marker = out.join(STATE_DIR).join(format!("{}-in-progress", job.name()));
    if out.join(MANIFEST_FILE).exists() {
        return Err(Error::Input(format!(
            "{} already holds a snapshot (manifest.json); choose another --out or remove it first",
            out.display()
        )));
    }
    let io = |p: &Path, e: std::io::Error| Error::Failed(format!("{}: {e}", p.display()));
    if out.exists() {
        let entries: Vec<_> = fs::read_dir(out).map_err(|e| io(out, e))?.filter_map(|e| e.ok()).collect();
        // A run killed between creating the state directory and its marker left only an empty
        // state directory: that is as good as empty.
        let only_empty_state = entries.len() == 1
            && entries[0].file_name() == STATE_DIR
            && fs::read_dir(entries[0].path()).is_ok_and(|mut d| d.next().is_none());
        if !entries.is_empty() && !only_empty_state {
            if !marker.exists() {
                return Err(Error::Input(format!(
                    "{} is not empty and holds no snapshot; refusing to write into it",
                    out.display()
                )));
            }
            tracing::warn!("{}: removing the leftovers of an interrupted {}", out.display(), job.name());
            for e in entries.iter().filter(|e| e.file_name() != STATE_DIR) {
                let p = e.path();
                let res =
                    if e.file_type().is_ok_and(|t| t.is_dir()) { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                res.map_err(|err| io(&p, err))?;
            }
        }
    }
    let state = out.join(STATE_DIR);
    fsmode::create_dir_all(&state).map_err(|e| io(&state, e))?;
    let mut f = fsmode::create_file(&marker).map_err(|e| io(&marker, e))?;
    f.write_all(format!("a {} into this directory has not finished\n", job.name()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io(&marker, e))?;
    sync_dir(&state)?;
    sync_dir(out)?;
    Ok(Guard { marker })
}

impl Guard {
    /// Clears the mark: call it only after the manifest (or the run's last file) is on disk.
    pub fn complete(self) -> Result<()> {
        fs::remove_file(&self.marker).map_err(|e| Error::Failed(format!("{}: {e}", self.marker.display())))?;
        if let Some(state) = self.marker.parent() {
            let _ = fs::remove_dir(state); // only if empty
        }
        Ok(())
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
        prepare(&out, Job::Transform).expect("an empty state directory is as good as empty").complete().unwrap();
        fs::write(out.join("notes.txt"), b"mine").unwrap();
        let err = prepare(&out, Job::Transform).err().expect("foreign files are refused");
        assert!(err.to_string().contains("is not empty and holds no snapshot"), "{err}");
        assert!(out.join("notes.txt").exists());
    }
}
