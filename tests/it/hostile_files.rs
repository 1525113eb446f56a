//! Hostile files where a snapshot, spec or journal should be: a FIFO (which would block a reader
//! forever) or a device such as `/dev/zero` (which never ends). Every command refuses them at
//! once with exit 2 and one line naming the file, and never hangs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bad_inputs::{good, one_target_spec, records_snapshot as write_snapshot};
use crate::export::tmp;
use crate::harness::{self, V1};

const PART: &str = "parts/0000/part-000000.parquet";

/// Runs chroma-snap, killing it (and failing) if it takes longer than a minute.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(harness::bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chroma-snap");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill the chroma-snap this test started");
            panic!("chroma-snap {args:?} hung on a hostile file");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().expect("mkfifo").success(), "mkfifo {}", path.display());
}

/// Exit 2 and one `error:` line ending with `needle`.
fn refused(o: &Output, what: &str, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains(" INFO ") && !l.contains(" WARN ")).collect();
    assert_eq!(lines.len(), 1, "{what}: one error line expected:\n{err}");
    assert!(lines[0].starts_with("error: ") && lines[0].ends_with(needle), "{what}: {needle:?} not in:\n{err}");
}

/// verify, inspect, transform and `load --dry-run` on `snap` all refuse with `needle`.
fn every_command_refuses(snap: &Path, spec: &Path, load_to: &str, needle: &str) {
    let s = snap.to_str().unwrap();
    let out = snap.with_extension("out");
    let o = out.to_str().unwrap();
    let target = format!("docs={}", harness::unique("hostile"));
    for (cmd, args) in [
        ("verify", vec!["verify", s]),
        ("inspect", vec!["inspect", s]),
        ("transform", vec!["transform", s, "--spec", spec.to_str().unwrap(), "--out", o]),
        ("load", vec!["load", s, "--to", load_to, "--collection", &target, "--dry-run", "--quiet"]),
    ] {
        refused(&run(&args), &format!("{} {cmd}", snap.display()), needle);
    }
    assert!(!out.join("manifest.json").exists(), "transform wrote a snapshot from {}", snap.display());
}

fn fixture(dir: &Path, name: &str) -> PathBuf {
    write_snapshot(&dir.join(name), vec![("docs", 4, good(5))])
}

#[test]
fn a_fifo_or_a_device_as_manifest_is_refused_by_every_command() {
    let t = tmp();
    let spec = one_target_spec(t.path());
    // The manifest is read before anything connects: a dead port is never reached.
    let s = fixture(t.path(), "fifo-manifest");
    mkfifo(&s.join("manifest.json"));
    let needle = format!("{}: not a regular file (a FIFO)", s.join("manifest.json").display());
    every_command_refuses(&s, &spec, "http://127.0.0.1:9", &needle);

    let s = fixture(t.path(), "zero-manifest");
    std::fs::remove_file(s.join("manifest.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", s.join("manifest.json")).unwrap();
    let needle = format!("{}: not a regular file (a character device)", s.join("manifest.json").display());
    every_command_refuses(&s, &spec, "http://127.0.0.1:9", &needle);
}

#[test]
fn a_fifo_as_part_is_refused_by_every_command() {
    let t = tmp();
    let spec = one_target_spec(t.path());
    let s = fixture(t.path(), "fifo-part");
    mkfifo(&s.join(PART));
    let needle = format!("{}: not a regular file (a FIFO)", s.join(PART).display());
    // load reads parts in its pre-flight, after connecting: give it a real server.
    every_command_refuses(&s, &spec, &harness::shared(V1).url, &needle);
}

#[test]
fn a_device_or_a_fifo_as_spec_or_journal_is_refused() {
    let t = tmp();
    let s = fixture(t.path(), "snap");
    let sd = s.to_str().unwrap();
    let out = t.path().join("out");
    let o = out.to_str().unwrap();
    refused(
        &run(&["transform", sd, "--spec", "/dev/zero", "--out", o]),
        "spec /dev/zero",
        "/dev/zero: not a regular file (a character device)",
    );
    let fifo = t.path().join("spec.toml");
    mkfifo(&fifo);
    refused(
        &run(&["transform", sd, "--spec", fifo.to_str().unwrap(), "--out", o]),
        "spec FIFO",
        &format!("{}: not a regular file (a FIFO)", fifo.display()),
    );
    assert!(!out.join("manifest.json").exists());

    let journal = t.path().join("journal.jsonl");
    mkfifo(&journal);
    let url = &harness::shared(V1).url;
    let target = format!("docs={}", harness::unique("hostile"));
    for extra in [&["--dry-run"][..], &[]] {
        let args = [&["load", sd, "--to", url, "--collection", &target, "--quiet"][..], extra].concat();
        let args = [&args[..], &["--journal", journal.to_str().unwrap()]].concat();
        refused(&run(&args), "journal FIFO", &format!("{}: not a regular file (a FIFO)", journal.display()));
    }
}
