//! What commands print: a reader that goes away early never makes them panic, `inspect` reads
//! as a person expects (pinned exactly), hostile text is escaped for people and exact in JSON,
//! and `--json` still prints a JSON object when the snapshot cannot be opened.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bad_inputs::{Rec, good, load, rec, write_snapshot};
use crate::export::{ok, snap, tmp};
use crate::harness::{self, V1};

/// How the test's end of stdout goes away.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// Closed before the command writes anything.
    ClosedAtOnce,
    /// Reads one line, then closes (the command is still writing when the output is large).
    OneLine,
}

/// Runs chroma-snap with stdout a pipe that `reader` closes early; returns (exit code, stderr).
fn with_closed_stdout(args: &[&str], reader: Reader) -> (Option<i32>, String) {
    let mut child = Command::new(harness::bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chroma-snap");
    let stdout = child.stdout.take().expect("stdout pipe");
    if let Reader::OneLine = reader {
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).expect("read one line");
        assert!(!first.is_empty(), "{args:?}: no first line");
    } else {
        drop(stdout);
    }
    let code = wait(&mut child, Duration::from_secs(120), args);
    let mut err = String::new();
    child.stderr.take().expect("stderr pipe").read_to_string(&mut err).expect("read stderr");
    (code, err)
}

fn wait(child: &mut Child, limit: Duration, args: &[&str]) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for chroma-snap") {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("chroma-snap {args:?} still running after {limit:?} with stdout closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const READERS: [Reader; 2] = [Reader::ClosedAtOnce, Reader::OneLine];

fn ends_quietly(args: &[&str]) {
    for reader in READERS {
        ends_quietly_with(args, reader);
    }
}

fn ends_quietly_with(args: &[&str], reader: Reader) {
    let (code, err) = with_closed_stdout(args, reader);
    assert_eq!(code, Some(0), "{args:?} {reader:?}: exit code\n{err}");
    for bad in ["panicked", "Broken pipe", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{args:?} {reader:?}: {bad:?} on stderr:\n{err}");
    }
}

/// Enough records that `inspect --samples 3000` writes far more than a pipe holds.
fn big_snapshot(dir: &Path) -> String {
    let recs: Vec<Rec> = (0..3000).map(|i| rec(&format!("r{i}"), &[i as f32, 0.5, -1.0, 2.0], None)).collect();
    write_snapshot(dir, vec![("docs", 4, recs), ("faq", 4, good(3))]).to_str().unwrap().to_owned()
}

#[test]
fn a_closed_stdout_ends_offline_commands_quietly_with_exit_0() {
    let t = tmp();
    let s = big_snapshot(&t.path().join("snap"));
    for args in [
        vec!["inspect", &s],
        vec!["inspect", &s, "--json"],
        vec!["inspect", &s, "--samples", "3000"],
        vec!["inspect", &s, "--samples", "3000", "--json"],
        vec!["verify", &s],
        vec!["verify", &s, "--json"],
    ] {
        ends_quietly(&args);
    }
}

#[test]
fn a_closed_stdout_ends_export_and_load_dry_run_quietly_with_exit_0() {
    let server = harness::shared(V1);
    let t = tmp();
    let name = harness::unique("closed_out");
    let src = write_snapshot(&t.path().join("src"), vec![(name.as_str(), 4, good(20))]);
    let s = src.to_str().unwrap();
    for extra in [&["--dry-run"][..], &["--dry-run", "--json"]] {
        ends_quietly(&[&["load", s, "--to", &server.url, "--quiet"], extra].concat());
    }
    let loaded = load(&src, &server.url, &[]);
    assert!(loaded.status.success(), "load: {}", String::from_utf8_lossy(&loaded.stderr));
    for (i, reader) in READERS.into_iter().enumerate() {
        for json in [false, true] {
            let out = t.path().join(format!("export-{i}-{json}"));
            let mut args = vec!["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--collection", &name];
            args.extend(if json { &["--json", "--quiet"][..] } else { &["--quiet"][..] });
            ends_quietly_with(&args, reader);
            assert!(out.join("manifest.json").exists(), "{args:?}: the export finished");
        }
    }
}
