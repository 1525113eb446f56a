//! `load --shard I/N` against a real 1.5.9 server: three shard processes started together give a
//! target that `verify --against` and the Python client find exact; a shard killed with SIGKILL
//! mid-load and rerun alone gives the same; journals of another split, another shard or a changed
//! snapshot are refused in one line naming the journal; bad shard specs exit 2.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chroma_snap::snapshot::writer::WriterOptions;
use serde_json::Value;

use crate::bad_inputs::{good, rec, records_snapshot};
use crate::export::{snap, tmp};
use crate::harness::{self, V1};
use crate::load::{
    Synth, assert_same_records, batch_lines, load_cmd, load_ok, run, server_dump, snapshot_dump, synth_snapshot_with,
};
use crate::support::stderr;

/// Two collections of a few thousand records in several parts of several row groups (256 rows).
fn two_collections(root: &Path) -> PathBuf {
    let opts = WriterOptions { target_part_bytes: 96 << 10, row_group_bytes: 1, ..WriterOptions::default() };
    synth_snapshot_with(
        root,
        &[
            Synth { name: "docs", n: 2500, dim: 16, space: "l2", seed: 31, docs: true },
            Synth { name: "notes", n: 1300, dim: 8, space: "cosine", seed: 32, docs: false },
        ],
        opts,
    )
}

/// `--collection docs=… --collection notes=…` onto fresh names.
fn mapping() -> (String, String, Vec<String>) {
    let (docs, notes) = (harness::unique("shdocs"), harness::unique("shnotes"));
    let args = vec!["--collection".into(), format!("docs={docs}"), "--collection".into(), format!("notes={notes}")];
    (docs, notes, args)
}

fn spawn_shard(s: &Path, url: &str, spec: &str, extra: &[&str]) -> Child {
    let mut c = load_cmd(s, url, &[&["--shard", spec, "--json"], extra].concat());
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn a shard")
}

fn summary_of(child: Child, what: &str) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what} failed ({}):\n{}", out.status, stderr(&out));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

/// The journal of shard `tag` (`shard-1-of-3`) in the snapshot's state directory.
fn shard_journal(s: &Path, tag: &str) -> Option<PathBuf> {
    std::fs::read_dir(s.join(".chroma-snap"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_str().is_some_and(|p| p.ends_with(&format!(".{tag}.jsonl"))))
}

/// `verify --against` of both collections exits 0 and finds every record, none extra.
fn assert_whole(s: &Path, url: &str, args: &[String]) {
    let mut v = vec!["verify", s.to_str().unwrap(), "--against", url, "--json", "--quiet"];
    v.extend(args.iter().map(String::as_str));
    let out = snap(&v);
    assert_eq!(out.status.code(), Some(0), "verify --against: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let against = report["against"].as_array().unwrap();
    assert_eq!(against.len(), 2);
    for c in against {
        for k in ["missing_count", "extra_count", "different_count"] {
            assert_eq!(c[k], 0, "{k}: {c}");
        }
        assert_eq!(c["target_records"], c["expected_records"], "{c}");
        assert_eq!(c["expected_digest"].as_str().unwrap().len(), 64, "the whole collection's digest: {c}");
    }
}

/// The Python client reads both collections back exactly as the snapshot holds them.
fn assert_python_exact(s: &Path, docs: &str, notes: &str) {
    let server = harness::shared(V1);
    assert_same_records("docs", &snapshot_dump(s, "docs"), &server_dump(server, docs), 1);
    assert_same_records("notes", &snapshot_dump(s, "notes"), &server_dump(server, notes), 1);
}

#[test]
fn three_shards_started_together_load_exactly() {
    let dir = tmp();
    let s = two_collections(dir.path());
    let server = harness::shared(V1);
    let (docs, notes, args) = mapping();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let extra = [&args[..], &["--batch-size", "50"]].concat();
    let started = Instant::now();
    let children: Vec<Child> = (0..3).map(|i| spawn_shard(&s, &server.url, &format!("{i}/3"), &extra)).collect();
    let summaries: Vec<Value> =
        children.into_iter().enumerate().map(|(i, c)| summary_of(c, &format!("shard {i}/3"))).collect();
    eprintln!("three shards loaded 3,800 records in {:.1}s", started.elapsed().as_secs_f64());

    let (mut created, mut sent, mut next_row) = (0, 0, [0u64, 0]);
    for (i, sum) in summaries.iter().enumerate() {
        assert_eq!(sum["shard"], serde_json::json!({"index": i, "count": 3}));
        assert!(sum["journal"].as_str().unwrap().ends_with(&format!(".shard-{i}-of-3.jsonl")), "{sum}");
        sent += sum["records_sent"].as_u64().unwrap();
        for (k, c) in sum["collections"].as_array().unwrap().iter().enumerate() {
            let action = c["action"].as_str().unwrap();
            assert!(["created", "joined"].contains(&action), "shard {i}: {c}");
            created += usize::from(action == "created");
            let share = &c["share"];
            assert_eq!(share["first_row"], next_row[k], "shares follow one another: {c}");
            next_row[k] = share["end_row"].as_u64().unwrap();
            let rows = next_row[k] - share["first_row"].as_u64().unwrap();
            assert!(share["parts"].as_u64().unwrap() >= 1 && share["row_groups"].as_u64().unwrap() >= 2, "{c}");
            assert_eq!((c["records"].as_u64(), c["records_sent"].as_u64()), (Some(rows), Some(rows)), "{c}");
            let cmp = &c["comparison"];
            assert_eq!(cmp["share"], serde_json::json!({"start": share["first_row"], "end": share["end_row"]}));
            assert_eq!((cmp["expected_records"].as_u64(), cmp["target_records"].as_u64()), (Some(rows), Some(rows)));
            assert_eq!((&cmp["missing_count"], &cmp["different_count"]), (&Value::from(0), &Value::from(0)), "{c}");
        }
    }
    assert_eq!(next_row, [2500, 1300], "the shares cover every row");
    assert_eq!(created, 2, "each collection created by exactly one shard, joined by the others");
    assert_eq!(sent, 3800, "every record sent once");
    assert_whole(&s, &server.url, &args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    assert_python_exact(&s, &docs, &notes);
}

#[test]
fn a_shard_killed_mid_load_and_rerun_alone_gives_the_same() {
    let dir = tmp();
    let s = two_collections(dir.path());
    let server = harness::shared(V1);
    let (docs, notes, args) = mapping();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let extra = [&args[..], &["--batch-size", "40", "--concurrency", "1"]].concat();
    let mut children: Vec<Child> = (0..3).map(|i| spawn_shard(&s, &server.url, &format!("{i}/3"), &extra)).collect();
    // SIGKILL shard 1 once it has journalled a few batches.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let acked = journal_batches(&s, "shard-1-of-3");
        if acked >= 4 {
            break;
        }
        assert!(children[1].try_wait().unwrap().is_none(), "shard 1 ended before it could be killed");
        assert!(Instant::now() < deadline, "shard 1 made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut killed = children.remove(1);
    killed.kill().unwrap(); // SIGKILL
    assert!(killed.wait().unwrap().code().is_none(), "killed by a signal");
    let journal = shard_journal(&s, "shard-1-of-3").unwrap();
    let acked = batch_lines(&journal);
    for (i, c) in children.into_iter().enumerate() {
        summary_of(c, &format!("shard {}", [0, 2][i]));
    }
    // The whole is not there yet: verify --against says which records are missing.
    let mut v = vec!["verify", s.to_str().unwrap(), "--against", &server.url, "--quiet"];
    v.extend(args.iter().copied());
    let out = snap(&v);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("records missing"), "{}", stderr(&out));

    let rerun = load_ok(&s, &server.url, &[&["--shard", "1/3"], &extra[..]].concat());
    let total_batches: u64 = [2500u64, 1300].iter().map(|n| (n * 2 / 3 - n / 3).div_ceil(40)).sum();
    let (mut sent_batches, mut resumed) = (0, 0);
    for c in rerun["collections"].as_array().unwrap() {
        let action = c["action"].as_str().unwrap();
        assert!(["resumed", "joined", "created"].contains(&action), "{c}");
        resumed += usize::from(action == "resumed");
        sent_batches += c["batches_sent"].as_u64().unwrap();
        assert_eq!(c["comparison"]["target_records"], c["records"], "{c}");
    }
    assert!(resumed >= 1, "the rerun carried on from the journal: {rerun}");
    eprintln!("shard 1 killed after {acked} batches; the rerun sent {sent_batches} of {total_batches}");
    assert!(sent_batches <= total_batches - acked as u64, "acknowledged batches are not sent again: {rerun}");
    assert_whole(&s, &server.url, &args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    assert_python_exact(&s, &docs, &notes);
}

#[test]
fn journals_of_another_split_shard_or_snapshot_are_refused_naming_them() {
    let dir = tmp();
    let opts = WriterOptions::default();
    let s = synth_snapshot_with(
        dir.path(),
        &[Synth { name: "docs", n: 300, dim: 8, space: "l2", seed: 33, docs: false }],
        opts,
    );
    let server = harness::shared(V1);
    let name = harness::unique("shsplit");
    let map = format!("docs={name}");
    let base = ["--collection", map.as_str(), "--batch-size", "50"];
    for i in 0..2 {
        load_ok(&s, &server.url, &[&base[..], &["--shard", &format!("{i}/2")]].concat());
    }
    // A rerun of a finished shard finds its collection loaded already.
    let again = load_ok(&s, &server.url, &[&base[..], &["--shard", "1/2"]].concat());
    assert_eq!(again["collections"][0]["action"], "loaded already");
    assert_eq!(again["collections"][0]["batches_sent"], 0);

    let one_line = |args: &[&str], needles: &[&str]| {
        let out = run(load_cmd(&s, &server.url, args));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
    };
    // The state directory holds the 2-split's journals: a 3-split is refused, naming one.
    let two = shard_journal(&s, "shard-0-of-2").unwrap();
    let two = two.to_str().unwrap();
    one_line(
        &[&base[..], &["--shard", "0/3"]].concat(),
        &[two, "records a load split into 2 shards", "this run is shard 0/3", "mixing splits"],
    );
    one_line(&[&base[..], &["--shard", "2/3", "--dry-run"]].concat(), &[two, "mixing splits"]);

    // A journal given with --journal that another shard wrote.
    let j = dir.path().join("mine.jsonl");
    let other = harness::unique("shjournal");
    let other_map = format!("docs={other}");
    let own = ["--collection", other_map.as_str(), "--journal", j.to_str().unwrap()];
    load_ok(&s, &server.url, &[&own[..], &["--shard", "0/2"]].concat());
    one_line(
        &[&own[..], &["--shard", "1/2"]].concat(),
        &[j.to_str().unwrap(), "written by shard 0/2, this run is shard 1/2"],
    );
    one_line(&own, &[j.to_str().unwrap(), "written by shard 0/2, this run is an unsharded load"]);

    // A changed snapshot (its manifest touched): the shard's journal refuses it.
    let m = s.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap().replace("\"load test\"", "\"load test!\"");
    std::fs::write(&m, text).unwrap();
    one_line(&[&base[..], &["--shard", "1/2"]].concat(), &[".shard-1-of-2.jsonl", "the snapshot changed"]);
}

#[test]
fn bad_shard_specs_and_modes_exit_2() {
    let dir = tmp();
    let s = synth_snapshot_with(
        dir.path(),
        &[Synth { name: "docs", n: 100, dim: 4, space: "l2", seed: 34, docs: false }],
        WriterOptions::default(),
    );
    let server = harness::shared(V1);
    let name = harness::unique("shbad");
    let map = format!("docs={name}");
    for (spec, env, needle) in [
        ("--shard=3/3", None, "must be below N (3)"),
        ("--shard=0/0", None, "N must be at least 1"),
        ("--shard=x/2", None, "I must be a whole number or auto"),
        ("--shard=1/", None, "N must be a whole number"),
        ("--shard=-1/2", None, "I must be a whole number"),
        ("--shard=auto/2", None, "JOB_COMPLETION_INDEX is not set"),
        ("--shard=auto/2", Some("2"), "I (JOB_COMPLETION_INDEX) is 2"),
        ("--shard=auto/2", Some("x"), "JOB_COMPLETION_INDEX=\"x\""),
    ] {
        let mut c = load_cmd(&s, &server.url, &["--collection", &map, spec]);
        c.env_remove("JOB_COMPLETION_INDEX");
        if let Some(v) = env {
            c.env("JOB_COMPLETION_INDEX", v);
        }
        let out = run(c);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{spec} {env:?}: {err}");
        assert!(err.contains(needle) && err.trim().lines().count() == 1, "{spec} {env:?}: {err}");
    }
    for (mode, needle) in [("replace", "replace first"), ("fail", "leave --if-exists out")] {
        let out = run(load_cmd(&s, &server.url, &["--collection", &map, "--shard", "0/2", "--if-exists", mode]));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    }
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    assert_eq!(harness::http(&server.url, "GET", &format!("{base}/{name}"), None, &[]).0, 404, "nothing created");

    // auto/N takes I from JOB_COMPLETION_INDEX; a dry run prints the share and writes nothing.
    let mut c = load_cmd(&s, &server.url, &["--collection", &map, "--shard", "auto/2", "--dry-run"]);
    c.env("JOB_COMPLETION_INDEX", "1");
    let out = run(c);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("shard 1/2 of docs: rows 50..100 (50 records), read from 1 part(s), 1 row group(s)"),
        "{text}"
    );
    assert!(text.contains("would create/join"), "{text}");
    assert_eq!(harness::http(&server.url, "GET", &format!("{base}/{name}"), None, &[]).0, 404, "a dry run");

    // A collection with other settings is not joined.
    let body = format!(r#"{{"name":"{name}","configuration":{{"hnsw":{{"space":"cosine"}}}}}}"#);
    assert_eq!(harness::http(&server.url, "POST", base, Some(&body), &[]).0, 200);
    let out = run(load_cmd(&s, &server.url, &["--collection", &map, "--shard", "0/2"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("distance space cosine instead of l2") && err.contains("only joins"), "{err}");
}

#[test]
fn a_shard_checks_its_own_rows_and_the_parts_that_hold_them() {
    let dir = tmp();
    let mut recs = good(6);
    recs.push(rec("nan", &[1.0, f32::NAN, 2.0, 3.0], None));
    let s = records_snapshot(&dir.path().join("s"), vec![("docs", 4, recs)]);
    let server = harness::shared(V1);
    let name = harness::unique("shcheck");
    let map = format!("docs={name}");
    // Rows 0..3 are loadable: shard 0/2 loads them; rows 3..7 hold the NaN: shard 1/2 sends nothing.
    let first = load_ok(&s, &server.url, &["--collection", &map, "--shard", "0/2"]);
    assert_eq!(first["collections"][0]["records_sent"], 3);
    let out = run(load_cmd(&s, &server.url, &["--collection", &map, "--shard", "1/2"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot take") && err.contains("record \"nan\"") && !err.contains("\"g0\""), "{err}");
    assert!(journal_batches(&s, "shard-1-of-2") == 0, "nothing journalled");
    // A flipped byte in the part both shards read: refused before anything is sent.
    let part = std::fs::read_dir(s.join("parts/0000")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[200] ^= 1;
    std::fs::write(&part, bytes).unwrap();
    let out = run(load_cmd(&s, &server.url, &["--collection", &map, "--shard", "0/2"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("damaged") && err.contains("corrupted"), "{err}");
}

fn journal_batches(s: &Path, tag: &str) -> usize {
    shard_journal(s, tag).map_or(0, |j| batch_lines(&j))
}
