//! What commands print: a reader that goes away early never makes them panic, `inspect` reads
//! as a person expects (pinned exactly), hostile text is escaped for people and exact in JSON,
//! and `--json` still prints a JSON object when the snapshot cannot be opened.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bad_inputs::{Rec, good, load, rec, records_snapshot as write_snapshot};
use crate::export::{ok, snap, tmp};
use crate::harness::{self, V1};
use chroma_snap::snapshot::Manifest;

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

/// The golden snapshot: samples with and without a document, uri and metadata, a long document,
/// and an embedding longer than the four values shown.
fn golden_snapshot(dir: &Path) -> (String, Vec<u64>) {
    let a = rec("a1", &[0.0, 0.5, -1.0, 2.0], Some(r#"{"k":1}"#));
    let b = Rec {
        id: "b2".into(),
        emb: vec![1.5, 0.0, 0.0, 0.0],
        doc: None,
        uri: Some("s3://bucket/b2".into()),
        meta: None,
    };
    let c = Rec { doc: Some("x".repeat(100)), ..rec("c3", &[0.25, 0.0, 0.0, 0.0], None) };
    let wide = rec("w1", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None);
    write_snapshot(dir, vec![("docs", 4, vec![a, b, c]), ("wide", 6, vec![wide])]);
    let mut m = Manifest::read(dir).expect("manifest");
    m.created_at = "2026-01-01T00:00:00Z".into();
    m.write_atomic(dir).expect("rewrite manifest");
    let bytes = m.collections.iter().map(|c| c.parts.iter().map(|p| p.bytes).sum()).collect();
    (dir.to_str().unwrap().to_owned(), bytes)
}

#[test]
fn inspect_text_reads_as_a_person_expects() {
    let t = tmp();
    let (s, bytes) = golden_snapshot(&t.path().join("snap"));
    let x80 = "x".repeat(80);
    let version = env!("CARGO_PKG_VERSION");
    let expected = format!(
        "snapshot format 1 by chroma-snap {version}, created 2026-01-01T00:00:00Z

collection                          records    dim   space  parts        bytes
docs                                      3      4      l2      1 {:>12}
wide                                      1      6      l2      1 {:>12}
total                                     4

samples:
  docs, id a1
    embedding [0, 0.5, -1, 2]
    document  \"doc a1\"
    uri       —
    metadata  {{\"k\":1}}
  docs, id b2
    embedding [1.5, 0, 0, 0]
    document  —
    uri       \"s3://bucket/b2\"
    metadata  —
  docs, id c3
    embedding [0.25, 0, 0, 0]
    document  \"{x80}…\"
    uri       —
    metadata  —
  wide, id w1
    embedding [1, 2, 3, 4, …]
    document  \"doc w1\"
    uri       —
    metadata  —
",
        bytes[0], bytes[1]
    );
    assert_eq!(ok(&["inspect", &s]), expected);
}

/// A collection name with an escape sequence: no Chroma server allows one, so a manifest holding
/// it is damage (refused, the name shown escaped in the refusal).
const EVIL_NAME: &str = "evil\u{1b}[2J";
const EVIL_ID: &str = "id\u{1b}]0;pwned\u{7}";
const EVIL_DOC: &str = "line1\nline2\u{1b}[31m\u{202e}";

fn no_controls(what: &str, text: &str) {
    assert!(
        !text.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r']),
        "{what}: raw control characters:\n{text:?}"
    );
}

#[test]
fn hostile_text_is_escaped_for_people_and_exact_in_json() {
    let t = tmp();
    let evil = Rec { doc: Some(EVIL_DOC.into()), ..rec(EVIL_ID, &[1.0, 2.0], Some("{\"m\":\"\u{9b}x\"}")) };
    let dir = write_snapshot(&t.path().join("snap"), vec![("docs", 2, vec![evil])]);
    let s = dir.to_str().unwrap();
    for cmd in ["inspect", "verify"] {
        let out = snap(&[cmd, s]);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{cmd}: {stderr}");
        no_controls(cmd, &stdout);
        no_controls(cmd, &stderr);
    }
    let shown = ok(&["inspect", s]);
    assert!(shown.contains("id\\u{1b}]0;pwned\\u{7}"), "{shown}");
    assert!(shown.contains("\"line1\\u{a}line2\\u{1b}[31m\\u{202e}\""), "{shown}");

    let v: Value = serde_json::from_str(&ok(&["inspect", s, "--json"])).expect("inspect JSON");
    assert_eq!(v["samples"][0]["id"], EVIL_ID);
    assert_eq!(v["samples"][0]["document"], EVIL_DOC);
    let v: Value = serde_json::from_str(&ok(&["verify", s, "--json"])).expect("verify JSON");
    assert_eq!((v["ok"].as_bool(), v["snapshot"]["collections"][0]["name"].as_str()), (Some(true), Some("docs")));

    // A damaged part: the problems on stderr stay escaped too.
    let part = dir.join(&Manifest::read(&dir).unwrap().collections[0].parts[0].path);
    std::fs::write(&part, b"garbage").unwrap();
    let out = snap(&["verify", s]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    no_controls("damaged verify", &String::from_utf8_lossy(&out.stdout));
    no_controls("damaged verify", &String::from_utf8_lossy(&out.stderr));

    // A collection name with an escape sequence is damage; the refusal shows it escaped.
    let bad = write_snapshot(&t.path().join("named"), vec![(EVIL_NAME, 2, vec![rec("a", &[1.0, 2.0], None)])]);
    for cmd in ["inspect", "verify"] {
        let out = snap(&[cmd, bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        no_controls(cmd, &stderr);
        assert!(stderr.contains("evil\\u{1b}[2J"), "{cmd}: the name shown escaped:\n{stderr}");
    }
}

/// `cmd DIR --json` fails with `code`, one JSON error object on stdout and the error on stderr.
fn json_error(cmd: &str, dir: &Path, code: i32, needle: &str) {
    let out = snap(&[cmd, dir.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{cmd}: {stderr}");
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd}: stdout not JSON ({e}): {stderr}"));
    assert_eq!((v["ok"].as_bool(), v["exit_code"].as_i64()), (Some(false), Some(code.into())), "{cmd}: {v}");
    let error = v["error"].as_str().expect("error text");
    assert!(error.contains(needle), "{cmd}: {needle:?} not in {error:?}");
    assert!(stderr.contains(&format!("error: {error}")), "{cmd}: {stderr}");
}

#[test]
fn json_commands_print_an_error_object_when_the_snapshot_cannot_be_opened() {
    let t = tmp();
    let dir = t.path().join("snap");
    std::fs::create_dir(&dir).unwrap();
    for cmd in ["verify", "inspect"] {
        json_error(cmd, &dir, 2, "not a snapshot");
    }
    std::fs::write(dir.join("manifest.json"), "{ not json").unwrap();
    for cmd in ["verify", "inspect"] {
        json_error(cmd, &dir, 2, "not a valid manifest");
    }
    // A directory where the manifest should be is bad input (2), as the README says.
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    std::fs::create_dir(dir.join("manifest.json")).unwrap();
    for cmd in ["verify", "inspect"] {
        json_error(cmd, &dir, 2, "not a regular file (a directory)");
        let out = snap(&[cmd, dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{cmd}: text mode prints nothing on stdout");
    }
}
