//! `diff` against real servers: a snapshot is loaded, a "bad job" changes the target with Chroma's
//! own Python client (records deleted, a metadata key removed, a document and an embedding
//! changed, foreign records added, a collection dropped, a stray one created), and `diff` must
//! list exactly those changes: snapshot against server, server against snapshot, and two
//! snapshots (before and after) against each other. A snapshot against itself is identical.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chroma_snap::snapshot::writer::WriterOptions;
use serde_json::Value;

use crate::export::{ok, snap, tmp};
use crate::harness::{self, Server, VERSIONS};
use crate::load::{Synth, load_ok, synth_snapshot_with};
use crate::support::stderr;

/// A snapshot loaded into a server, then changed there by `tests/py/mutate_target.py`.
pub struct Damaged {
    pub dir: tempfile::TempDir,
    pub snap: PathBuf,
    pub records: u64,
    pub docs: String,
    pub gone: String,
    pub stray: String,
    /// What the script did: deleted, meta, document, embedding, foreign.
    pub changes: Value,
}

impl Damaged {
    pub fn ids(&self, key: &str) -> BTreeSet<String> {
        self.changes[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    /// Every changed id and the fields `diff` must name for it.
    pub fn changed(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> =
            self.ids("meta").into_iter().map(|id| (id, vec!["metadata.s".to_owned()])).collect();
        out.push(("r000020".into(), vec!["document".into()]));
        out.push(("r000030".into(), vec!["embedding".into()]));
        out.sort();
        out
    }
}

/// Loads a two-collection snapshot (`docs` of `n` records, `gone` of 50) into `server` and
/// damages it; `mutate` holds extra arguments of the script (`--delete N` …).
pub fn damaged_target(server: &Server, n: usize, mutate: &[&str]) -> Damaged {
    let dir = tmp();
    let p = harness::unique("dmg");
    let (docs, gone, stray) = (format!("{p}_docs"), format!("{p}_gone"), format!("{p}_stray"));
    let cols = [
        Synth { name: &docs, n, dim: 8, space: "l2", seed: 21, docs: true },
        Synth { name: &gone, n: 50, dim: 8, space: "l2", seed: 22, docs: false },
    ];
    let snap = synth_snapshot_with(dir.path(), &cols, WriterOptions::default());
    load_ok(&snap, &server.url, &[]);
    let mut args = vec![server.url.as_str(), &docs, &gone, &stray];
    args.extend(mutate);
    let out = harness::run_py(server.version, "tests/py/mutate_target.py", &args);
    let changes: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    Damaged { dir, snap, records: n as u64, docs, gone, stray, changes }
}

/// `chroma-snap diff A B --json`: the exit code and the report.
pub fn diff_json(a: &str, b: &str, extra: &[&str]) -> (i32, Value) {
    let out = snap(&[&["diff", a, b, "--json", "--quiet"], extra].concat());
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 3, "diff {a} {b} failed ({code}):\n{}", stderr(&out));
    (code, serde_json::from_slice(&out.stdout).expect("diff JSON"))
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

/// Asserts `report` (A = the snapshot's side, B = the damaged side, or swapped) lists exactly the
/// damage: in `docs` and, among this test's collections, `gone` dropped and `stray` added.
pub fn assert_lists_the_damage(report: &Value, d: &Damaged, swapped: bool) {
    let (a, b) = if swapped { ("b", "a") } else { ("a", "b") };
    let r = &report["diff"];
    assert_eq!(report["identical"], false);
    let mine = |list: &Value| -> Vec<(String, u64)> {
        let prefix = d.docs.trim_end_matches("_docs");
        list.as_array()
            .unwrap()
            .iter()
            .map(|l| (l["name"].as_str().unwrap().to_owned(), l["records"].as_u64().unwrap()))
            .filter(|(n, _)| n.starts_with(prefix))
            .collect()
    };
    assert_eq!(mine(&r[format!("collections_only_in_{a}")]), [(d.gone.clone(), 50)], "{r}");
    assert_eq!(mine(&r[format!("collections_only_in_{b}")]), [(d.stray.clone(), 3)], "{r}");
    let cols = r["collections"].as_array().unwrap();
    let c = cols.iter().find(|c| c[a] == d.docs.as_str()).unwrap_or_else(|| panic!("no {} in {r}", d.docs));
    assert_eq!(set(&c[format!("only_in_{a}")]), d.ids("deleted"), "{c}");
    assert_eq!(set(&c[format!("only_in_{b}")]), d.ids("foreign"), "{c}");
    let changed = d.changed();
    let mut got: Vec<(String, Vec<String>)> = c["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_owned(),
                x["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, changed, "{c}");
    assert_eq!(c["changed_count"], changed.len() as u64, "{c}");
    let deleted = d.ids("deleted").len() as u64;
    assert_eq!(c["identical"], d.records - deleted - changed.len() as u64, "{c}");
    assert_eq!(c[format!("{a}_records")], d.records, "{c}");
    assert_eq!(c[format!("{b}_records")], d.records - deleted + d.ids("foreign").len() as u64, "{c}");
    assert!(c["settings"]["build"].as_array().unwrap().is_empty(), "{c}");
    let meta = c["settings"]["metadata"].as_str().unwrap_or_default();
    assert!(meta.contains("metadata.purpose") && meta.contains("changed by a bad job"), "{c}");
}

fn damage_is_listed(version: &'static str) {
    let server = harness::shared(version);
    let d = damaged_target(server, 300, &["--delete", "2", "--meta", "2", "--foreign", "2"]);
    let s = d.snap.to_str().unwrap();
    // Snapshot against the server, and the other way round (the server side streamed by id).
    let (code, report) = diff_json(s, &server.url, &["--list", "50"]);
    assert_eq!(code, 3);
    assert_lists_the_damage(&report, &d, false);
    let (_, reverse) = diff_json(&server.url, s, &["--list", "50"]);
    assert_lists_the_damage(&reverse, &d, true);
    // The human report names the kinds and the fields.
    let text = String::from_utf8(snap(&["diff", s, &server.url, "--collection", &d.docs, "--quiet"]).stdout).unwrap();
    assert!(text.contains("2 only in A, 2 only in B, 4 changed"), "{text}");
    assert!(text.contains("changed \"r000020\": document"), "{text}");
    assert!(text.contains("changed \"r000030\": embedding"), "{text}");

    // A snapshot taken after the damage: two snapshots list the same, without a server.
    let after = d.dir.path().join("after");
    let out = after.to_str().unwrap();
    ok(&["export", "--from", &server.url, "--out", out, "--collection", &d.docs, "--collection", &d.stray, "--quiet"]);
    let (code, offline) = diff_json(s, out, &["--list", "50"]);
    assert_eq!(code, 3);
    assert_lists_the_damage(&offline, &d, false);
    // A snapshot against itself, and the export against its source, are identical.
    let (code, same) = diff_json(s, s, &[]);
    assert_eq!((code, &same["identical"]), (0, &Value::Bool(true)), "{same}");
    assert_eq!(same["diff"]["collections"][0]["identical"], d.records);
    let (code, same) = diff_json(out, &server.url, &["--collection", &d.docs, "--collection", &d.stray]);
    assert_eq!(code, 0, "{same}");
    // A server against a server (both streamed by id): 2 records deleted and 2 foreign ones added.
    let (code, same) = diff_json(&server.url, &server.url, &["--collection", &d.docs]);
    assert_eq!((code, &same["diff"]["collections"][0]["identical"]), (0, &Value::from(d.records)), "{same}");
}

#[test]
fn diff_lists_what_a_bad_job_changed_on_1_5_9() {
    damage_is_listed(VERSIONS[0]);
}

#[test]
fn diff_lists_what_a_bad_job_changed_on_0_4_24() {
    damage_is_listed(VERSIONS[1]);
}

#[test]
fn diff_with_renames_bad_input_and_settings() {
    let dir = tmp();
    let cols = [Synth { name: "docs", n: 120, dim: 4, space: "l2", seed: 31, docs: false }];
    let a = synth_snapshot_with(dir.path(), &cols, WriterOptions::default());
    let cols = [Synth { name: "other", n: 120, dim: 4, space: "cosine", seed: 31, docs: false }];
    let b = synth_snapshot_with(dir.path(), &cols, WriterOptions::default());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (code, r) = diff_json(a, b, &["--collection", "docs=other"]);
    assert_eq!(code, 3, "{r}");
    let c = &r["diff"]["collections"][0];
    assert_eq!(c["settings"]["build"][0], "distance space cosine instead of l2", "{c}");
    assert_eq!(c["changed_count"], 0, "same records: {c}");
    assert_eq!(c["identical"], 120);
    let out = snap(&["diff", a, "/nonexistent/snapshot"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = snap(&["diff", a, b, "--collection", "nope=neither"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("neither side"), "{}", stderr(&out));
}
