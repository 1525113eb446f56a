//! Selective export against real 1.5.9 and 0.4.24 servers: `--where` / `--where-document`
//! snapshots hold exactly the records Chroma's Python client `get(where=…, where_document=…)`
//! returns, say so in the manifest, load like any snapshot and are verified with the same filter
//! applied to the target; `--collection` globs and `--exclude` pick exactly the named
//! collections on export, load, verify and diff; a bad filter or a pattern matching nothing is
//! refused by name before anything is written.

use std::path::Path;

use chroma_snap::snapshot::reader::Snapshot;
use serde_json::Value;

use crate::export::{ok, snap, snapshot_rows, tmp};
use crate::harness::{self, Server, V0, V1};
use crate::support::stderr;

/// Seeds `{prefix}_alpha_docs`, `_alpha_faq`, `_alpha_tmp` and `_beta_docs` (tests/py/selective.py).
fn seed(server: &Server) -> String {
    let prefix = harness::unique("sel");
    let out = harness::run_py(server.version, "tests/py/selective.py", &["seed", &server.url, &prefix]);
    let counts: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(counts.as_object().unwrap().len(), 4, "{counts}");
    prefix
}

/// The ids Chroma's Python client returns for the filters (`null` when unused), sorted.
fn client_ids(server: &Server, name: &str, filter: (&str, &str)) -> Vec<String> {
    let out = harness::run_py(server.version, "tests/py/selective.py", &["ids", &server.url, name, filter.0, filter.1]);
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

fn snapshot_ids(dir: &Path, name: &str) -> Vec<String> {
    snapshot_rows(dir, name).1.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

fn names_in(dir: &Path) -> Vec<String> {
    Snapshot::open(dir).unwrap().manifest.collections.iter().map(|c| c.name.clone()).collect()
}

fn filtered_export(version: &'static str) {
    let server = harness::shared(version);
    let p = seed(server);
    let docs = format!("{p}_alpha_docs");
    let filters = [
        (r#"{"source": "web"}"#, "null"),
        (r#"{"$and": [{"n": {"$gte": 30}}, {"draft": false}]}"#, "null"),
        (r#"{"source": {"$in": ["pdf", "chat"]}}"#, r#"{"$contains": "apples"}"#),
        ("null", r#"{"$contains": "pears"}"#),
    ];
    let dir = tmp();
    for (i, (w, d)) in filters.iter().enumerate() {
        let out = dir.path().join(format!("f{i}"));
        let mut args = vec!["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--collection", &docs];
        if *w != "null" {
            args.extend(["--where", w]);
        }
        if *d != "null" {
            args.extend(["--where-document", d]);
        }
        args.push("--quiet");
        ok(&args);
        let want = client_ids(server, &docs, (w, d));
        assert!(!want.is_empty() && want.len() < 60, "{version} filter {i} selects some: {want:?}");
        assert_eq!(snapshot_ids(&out, &docs), want, "{version} filter {i}: {w} {d}");
        // The manifest says the snapshot is partial, with the filter as given.
        let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        let f = &m["collections"][0]["filter"];
        let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(f.get("where").cloned().unwrap_or(Value::Null), parse(w), "{m}");
        assert_eq!(f.get("where_document").cloned().unwrap_or(Value::Null), parse(d), "{m}");
        assert_eq!(m["collections"][0]["count"], want.len() as u64);
        assert!(!m["collections"][0]["changed_during_export"].as_bool().unwrap());
        let shown = ok(&["inspect", out.to_str().unwrap()]);
        assert!(shown.contains("partial: ") && shown.contains("holds only the records selected by"), "{shown}");
        // Verified against its source with the same filter: the records outside it are not extra.
        ok(&["verify", out.to_str().unwrap(), "--against", &server.url, "--quiet"]);
        ok(&["diff", out.to_str().unwrap(), &server.url, "--collection", &docs]);
    }

    // Loadable like any snapshot, and verified with the filter applied to the target.
    let web = dir.path().join("f0");
    let copy = format!("{p}_web_copy");
    let summary = ok(&[
        "load",
        web.to_str().unwrap(),
        "--to",
        &server.url,
        "--collection",
        &format!("{docs}={copy}"),
        "--json",
        "--quiet",
    ]);
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert!(summary["collections"][0]["comparison"]["target_digest"].is_string(), "{summary}");
    assert_eq!(
        client_ids(server, &copy, ("null", "null")),
        client_ids(server, &docs, (r#"{"source": "web"}"#, "null"))
    );
    // A record the filter selects, added to the source afterwards, is one the snapshot lacks; one
    // it does not select is none of the comparison's business.
    let py = |id: &str, source: &str| {
        harness::run_py(server.version, "tests/py/selective.py", &["add", &server.url, &docs, id, source]);
    };
    py("late-pdf", "pdf");
    ok(&["verify", web.to_str().unwrap(), "--against", &server.url, "--collection", &docs, "--quiet"]);
    py("late-web", "web");
    let o = snap(&["verify", web.to_str().unwrap(), "--against", &server.url, "--collection", &docs, "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let against = &report["against"][0];
    assert_eq!(
        (against["extra_count"].as_u64(), against["extra"][0].as_str()),
        (Some(1), Some("late-web")),
        "{report}"
    );
    assert_eq!(against["target_records"], against["expected_records"].as_u64().unwrap() + 1);
    // diff sees the server through the partial snapshot's filter too.
    let o = snap(&["diff", web.to_str().unwrap(), &server.url, "--collection", &docs, "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &d["diff"]["collections"][0];
    assert_eq!((c["only_in_b_count"].as_u64(), c["only_in_b"][0].as_str()), (Some(1), Some("late-web")), "{d}");
    assert_eq!((c["only_in_a_count"].as_u64(), c["changed_count"].as_u64()), (Some(0), Some(0)), "{d}");
    assert_eq!(c["b_records"], c["a_records"].as_u64().unwrap() + 1, "{d}");
}

#[test]
fn a_filtered_export_from_1_5_9_holds_what_the_client_returns() {
    filtered_export(V1);
}

#[test]
fn a_filtered_export_from_0_4_24_holds_what_the_client_returns() {
    filtered_export(V0);
}

/// A refusal: exit 2, the message holds `needle`, and no snapshot was written.
fn refused(args: &[String], out: &Path, needle: &str) {
    let o = snap(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(!out.join("manifest.json").exists(), "{args:?} wrote a manifest");
    assert!(!out.join("parts").exists(), "{args:?} wrote parts");
}

fn bad_filters_and_patterns(version: &'static str) {
    let server = harness::shared(version);
    let p = seed(server);
    let docs = format!("{p}_alpha_docs");
    let dir = tmp();
    let out = dir.path().join("snap");
    let o = out.to_str().unwrap();
    let export = |extra: &[&str]| -> Vec<String> {
        ["export", "--from", &server.url, "--out", o, "--quiet"].iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    refused(
        &export(&["--collection", &docs, "--where", r#"{"n": {"$bogus": 1}}"#]),
        &out,
        r#"--where: n: unknown operator "$bogus""#,
    );
    refused(&export(&["--collection", &docs, "--where", "{source"]), &out, "--where: not JSON");
    refused(&export(&["--collection", &docs, "--where-document", r#"{"$has": "x"}"#]), &out, "--where-document: $has");
    refused(
        &export(&["--collection", &format!("{p}_nothing_*")]),
        &out,
        &format!("--collection \"{p}_nothing_*\" matches no collection"),
    );
    refused(
        &export(&["--collection", &format!("{p}_*"), "--exclude", "zzz_*"]),
        &out,
        "--exclude \"zzz_*\" matches no collection",
    );
    if version == V0 {
        // 0.4.24 has no `$regex`: the server's refusal is named too, at once (no retries).
        let t = std::time::Instant::now();
        refused(
            &export(&["--collection", &docs, "--where-document", r#"{"$regex": "app.*"}"#]),
            &out,
            &format!("collection \"{docs}\": the server refused the filter where_document"),
        );
        assert!(t.elapsed().as_secs() < 10, "the refusal was retried");
    }
}

#[test]
fn bad_filters_and_patterns_are_refused_before_anything_is_written_on_1_5_9() {
    bad_filters_and_patterns(V1);
}

#[test]
fn bad_filters_and_patterns_are_refused_before_anything_is_written_on_0_4_24() {
    bad_filters_and_patterns(V0);
}

fn globs_pick_exactly(version: &'static str) {
    let server = harness::shared(version);
    let p = seed(server);
    let [docs, faq, tmp_c, beta] = ["alpha_docs", "alpha_faq", "alpha_tmp", "beta_docs"].map(|s| format!("{p}_{s}"));
    let dir = tmp();
    let out = dir.path().join("snap");
    let o = out.to_str().unwrap();
    ok(&[
        "export",
        "--from",
        &server.url,
        "--out",
        o,
        "--collection",
        &format!("{p}_alpha_*"),
        "--exclude",
        "*_tmp",
        "--quiet",
    ]);
    assert_eq!(names_in(&out), [docs.clone(), faq.clone()]);
    let all = dir.path().join("all");
    let a = all.to_str().unwrap();
    ok(&[
        "export",
        "--from",
        &server.url,
        "--out",
        a,
        "--collection",
        &format!("{p}_*"),
        "--exclude",
        &tmp_c,
        "--quiet",
    ]);
    assert_eq!(names_in(&all), [docs.clone(), faq.clone(), beta.clone()]);

    // load: a glob and an exclude over the snapshot's collections (into a fresh server).
    let target = Server::start(version);
    let summary = ok(&[
        "load",
        a,
        "--to",
        &target.url,
        "--collection",
        &format!("{p}_*_docs"),
        "--exclude",
        &beta,
        "--json",
        "--quiet",
    ]);
    let summary: Value = serde_json::from_str(&summary).unwrap();
    let loaded: Vec<&str> =
        summary["collections"].as_array().unwrap().iter().map(|c| c["target"].as_str().unwrap()).collect();
    assert_eq!(loaded, [docs.as_str()]);
    let bad = snap(&["load", a, "--to", &target.url, "--collection", "nope_*"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains(&format!("--collection \"nope_*\" matches no collection of snapshot {a}")),
        "{}",
        stderr(&bad)
    );

    // verify and diff take the same patterns.
    let v = ok(&[
        "verify",
        a,
        "--against",
        &target.url,
        "--collection",
        &format!("{p}_alpha_*"),
        "--exclude",
        &faq,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&v).unwrap();
    let compared: Vec<&str> = v["against"].as_array().unwrap().iter().map(|c| c["target"].as_str().unwrap()).collect();
    assert_eq!(compared, [docs.as_str()]);
    let d = ok(&["diff", a, o, "--collection", &format!("{p}_alpha_*"), "--json"]);
    let d: Value = serde_json::from_str(&d).unwrap();
    let diffed: Vec<&str> =
        d["diff"]["collections"].as_array().unwrap().iter().map(|c| c["a"].as_str().unwrap()).collect();
    assert_eq!(diffed, [docs.as_str(), faq.as_str()], "{d}");
    assert_eq!(d["identical"], true, "{d}");
    let bad = snap(&["diff", a, o, "--exclude", "nope"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn globs_and_excludes_pick_exactly_the_named_collections_on_1_5_9() {
    globs_pick_exactly(V1);
}

#[test]
fn globs_and_excludes_pick_exactly_the_named_collections_on_0_4_24() {
    globs_pick_exactly(V0);
}
