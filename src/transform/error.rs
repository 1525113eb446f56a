//! What can stop a transform before or while it runs: each variant names the spec or the input
//! concerned. (A quality gate that is not met is a result, not an error: see the report.)

use std::path::PathBuf;

use crate::error::exit;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The spec file cannot be read.
    #[error("cannot read spec {}: {why}", path.display())]
    SpecUnreadable { path: PathBuf, why: String },
    /// The spec file is not text.
    #[error("spec {} is not UTF-8 text", path.display())]
    SpecNotText { path: PathBuf },
    /// The spec compiles with problems, each with its key path.
    #[error("spec {} has {} problem(s); no data was read:\n{}", path.display(), problems.len(), indent(problems))]
    Spec { path: PathBuf, problems: Vec<String> },
    /// The input snapshot failed its check.
    #[error(
        "input snapshot {} is damaged ({} problem(s)); nothing was written:\n{}",
        input.display(), problems.len(), indent(problems)
    )]
    DamagedInput { input: PathBuf, problems: Vec<String> },
}

impl TransformError {
    pub fn exit_code(&self) -> u8 {
        exit::INPUT
    }
}

fn indent(lines: &[String]) -> String {
    lines.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}
