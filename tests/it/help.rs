//! `--help` stays true: each command's help text is pinned in `tests/golden/help/<cmd>.txt`, so a
//! flag change shows up in review as a change to a golden file.
//!
//! After changing flags on purpose, rewrite the goldens and review the diff:
//!     UPDATE_GOLDEN=1 cargo test --release --test it -- help::
//! The help is rendered at a fixed width (COLUMNS=100, no terminal) so wrapping is stable.

use std::process::{Command, Stdio};

use crate::harness;

const COMMANDS: [&str; 7] = ["", "export", "load", "inspect", "transform", "verify", "diff"];

fn help(cmd: &str) -> String {
    let mut c = Command::new(harness::bin());
    if !cmd.is_empty() {
        c.arg(cmd);
    }
    let out = c
        .arg("--help")
        .env("COLUMNS", "100")
        .env("LINES", "50")
        .env_remove("CHROMA_TOKEN")
        .env_remove("CHROMA_SNAP_FAIL_AFTER_BATCHES")
        .stdin(Stdio::null())
        .output()
        .expect("run chroma-snap --help");
    assert!(out.status.success(), "{cmd} --help: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn every_help_text_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let dir = harness::repo().join("tests/golden/help");
    let mut stale = Vec::new();
    for cmd in COMMANDS {
        let path = dir.join(format!("{}.txt", if cmd.is_empty() { "chroma-snap" } else { cmd }));
        let now = help(cmd);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &now).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        if golden != now {
            stale.push(format!("{}:\n--- golden\n{golden}\n--- now\n{now}", path.display()));
        }
    }
    assert!(stale.is_empty(), "help text changed; if on purpose, rerun with UPDATE_GOLDEN=1\n{}", stale.join("\n"));
}
