//! The export's output directory: refuse to overwrite a snapshot or foreign files; clear the
//! leftovers of an interrupted export of ours; mark the directory as in progress until the end.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::snapshot::manifest::MANIFEST_FILE;
use crate::snapshot::verify::STATE_DIR;

const IN_PROGRESS: &str = "export-in-progress";

/// Marks a directory as holding an export in progress; [`Guard::complete`] clears the mark.
pub struct Guard {
    marker: PathBuf,
}

pub fn prepare(out: &Path) -> Result<Guard> {
    let marker = out.join(STATE_DIR).join(IN_PROGRESS);
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
            tracing::warn!("{}: removing the leftovers of an interrupted export", out.display());
            let parts = out.join("parts");
            if parts.exists() {
                fs::remove_dir_all(&parts).map_err(|e| Error::Failed(format!("{}: {e}", parts.display())))?;
            }
        }
    }
    let state = out.join(STATE_DIR);
    fs::create_dir_all(&state).map_err(|e| Error::Failed(format!("{}: {e}", state.display())))?;
    fs::write(&marker, b"an export into this directory has not finished\n")
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
