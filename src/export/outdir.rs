//! The output directory of an export or a transform: refuse to overwrite a snapshot or foreign
//! files; clear the leftovers of an interrupted run of ours; mark the directory as in progress
//! until the end. Directories are created owner-only unless asked otherwise (see `fsmode`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsmode;
use crate::snapshot::manifest::MANIFEST_FILE;
use crate::snapshot::verify::STATE_DIR;

/// Marks a directory as holding a run in progress; [`Guard::complete`] clears the mark.
pub struct Guard {
    marker: PathBuf,
}

/// Prepares `out` for an export.
pub fn prepare(out: &Path) -> Result<Guard> {
    prepare_for(out, "export")
}

/// Prepares `out` for a run of `what` (`export`, `transform`): absent, empty, or holding only the
/// leftovers of an interrupted run of the same kind (which are removed).
pub fn prepare_for(out: &Path, what: &str) -> Result<Guard> {
    let marker = out.join(STATE_DIR).join(format!("{what}-in-progress"));
    if out.join(MANIFEST_FILE).exists() {
        return Err(Error::Input(format!(
            "{} already holds a snapshot (manifest.json); choose another --out or remove it first",
            out.display()
        )));
    }
    if out.exists() {
        let entries: Vec<_> = fs::read_dir(out)
            .map_err(|e| Error::Failed(format!("{}: {e}", out.display())))?
            .filter_map(|e| e.ok())
            .collect();
        if !entries.is_empty() {
            if !marker.exists() {
                return Err(Error::Input(format!(
                    "{} is not empty and holds no snapshot; refusing to write into it",
                    out.display()
                )));
            }
            tracing::warn!("{}: removing the leftovers of an interrupted {what}", out.display());
            for e in entries.iter().filter(|e| e.file_name() != STATE_DIR) {
                let p = e.path();
                let removed = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                removed.map_err(|err| Error::Failed(format!("{}: {err}", p.display())))?;
            }
        }
    }
    let state = out.join(STATE_DIR);
    fsmode::create_dir_all(&state).map_err(|e| Error::Failed(format!("{}: {e}", state.display())))?;
    fsmode::create_file(&marker)
        .and_then(|mut f| f.write_all(format!("a {what} into this directory has not finished\n").as_bytes()))
        .map_err(|e| Error::Failed(format!("{}: {e}", marker.display())))?;
    Ok(Guard { marker })
}

impl Guard {
    pub fn complete(self) -> Result<()> {
        fs::remove_file(&self.marker).map_err(|e| Error::Failed(format!("{}: {e}", self.marker.display())))?;
        if let Some(state) = self.marker.parent() {
            let _ = fs::remove_dir(state); // only if empty
        }
        Ok(())
    }
}
