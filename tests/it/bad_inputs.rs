//! The rest of the bad-input catalogue: records no Chroma server may take (load refuses them
//! before anything is sent), hostile part paths for every command, an output directory that holds
//! a snapshot, a full disk, NaN embeddings in a transform, and the target's answers to a load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::AsArray;
use chroma_snap::record::{RecordPage, RecordRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use crate::export::{ok, snap, tmp};
use crate::harness::{self, V1};
use crate::support::{SnapCollection, copy_dir, stderr, write_snapshot};

/// One record of a synthetic snapshot.
pub struct Rec {
    pub id: String,
    pub emb: Vec<f32>,
    pub doc: Option<String>,
    pub uri: Option<String>,
    pub meta: Option<String>,
}

pub fn rec(id: &str, emb: &[f32], meta: Option<&str>) -> Rec {
    Rec { id: id.into(), emb: emb.to_vec(), doc: Some(format!("doc {id}")), uri: None, meta: meta.map(str::to_owned) }
}

/// Good 4-dimension records `g0…`, with metadata (one `{}` with a uri, as 1.x exports it).
pub fn good(n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let mut r = rec(&format!("g{i}"), &[i as f32, 0.5, -1.0, 2.0], Some(&format!(r#"{{"i":{i},"s":"x"}}"#)));
            if i == 1 {
                r.meta = Some("{}".into());
                r.uri = Some("s3://b/g1".into());
            }
            r
        })
        .collect()
}

/// Writes a snapshot of `(name, dim, records)` collections (space l2) into `dir`.
pub fn records_snapshot(dir: &Path, cols: Vec<(&str, usize, Vec<Rec>)>) -> PathBuf {
    let cols = cols
        .into_iter()
        .map(|(name, dim, recs)| {
            let mut page = RecordPage::with_capacity(dim, recs.len());
            for r in &recs {
                page.push(RecordRef {
                    id: &r.id,
                    embedding: &r.emb,
                    document: r.doc.as_deref(),
                    uri: r.uri.as_deref(),
                    metadata: r.meta.as_deref(),
                });
            }
            SnapCollection { name: name.into(), dim, space: "l2".into(), metadata: None, configuration: None, page }
        })
        .collect();
    write_snapshot(dir, cols)
}

/// Exit `code`, one `error:` line on stderr holding every needle.
pub fn refused(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains(" INFO ") && !l.contains(" WARN ")).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in:\n{err}");
    }
}

const BASE: &str = "/api/v2/tenants/default_tenant/databases/default_database/collections";

pub fn exists_on_v1(name: &str) -> bool {
    let (status, body) = harness::http(&harness::shared(V1).url, "GET", &format!("{BASE}/{name}"), None, &[]);
    assert!(status == 200 || status == 404, "{status} {body}");
    status == 200
}

pub fn load(dir: &Path, url: &str, extra: &[&str]) -> Output {
    let d = dir.to_str().unwrap();
    snap(&[&["load", d, "--to", url, "--quiet"], extra].concat())
}

#[test]
fn load_refuses_records_the_target_cannot_take_before_sending_anything() {
    let t = tmp();
    let mut emb = good(3);
    emb.push(rec("nan", &[1.0, f32::NAN, 2.0, f32::INFINITY], None));
    emb.push(rec("inf", &[f32::NEG_INFINITY, 0.0, 0.0, 0.0], None));
    let mut meta = good(2);
    for (id, m) in
        [("meta-doc", r#"{"chroma:document":"d"}"#), ("meta-hash", r##"{"#k":1}"##), ("meta-dollar", r#"{"$k":1}"#)]
    {
        meta.push(rec(id, &[1.0, 2.0, 3.0, 4.0], Some(m)));
    }
    let mut keys = good(2);
    keys.push(rec("meta-empty-key", &[1.0; 4], Some(r#"{"":1}"#)));
    keys.push(rec("", &[1.0; 4], None));
    keys.push(rec("meta-null", &[1.0; 4], Some(r#"{"k":null}"#)));
    let mut big = good(1);
    let mut huge = rec("huge", &[1.0; 4], None);
    huge.doc = Some("x".repeat(41 << 20));
    big.push(huge);
    let s = records_snapshot(
        &t.path().join("s"),
        vec![("c_emb", 4, emb), ("c_meta", 4, meta), ("c_keys", 4, keys), ("c_big", 4, big), ("c_ok", 4, good(5))],
    );
    ok(&["verify", s.to_str().unwrap()]); // intact: the records are faithful, just not loadable

    let server = harness::shared(V1);
    let p = harness::unique("unloadable");
    let targets: Vec<String> = ["c_emb", "c_meta", "c_keys", "c_big"].iter().map(|c| format!("{c}={p}_{c}")).collect();
    let mut args = Vec::new();
    for m in &targets {
        args.extend(["--collection", m.as_str()]);
    }
    let o = load(&s, &server.url, &args);
    let at = |c: &str, part: usize, id: &str| {
        format!("collection \"{c}\", part parts/{part:04}/part-000000.parquet, record \"{id}\": ")
    };
    refused(
        &o,
        2,
        &[
            "holds records the target cannot take, nothing was sent",
            &format!("{}embedding has 2 NaN/Inf value(s), first NaN at index 1", at("c_emb", 0, "nan")),
            &format!("{}embedding has 1 NaN/Inf value(s), first -inf at index 0", at("c_emb", 0, "inf")),
            &format!("{}metadata key \"chroma:document\" is reserved by Chroma", at("c_meta", 1, "meta-doc")),
            &format!("{}metadata key \"#k\" starts with '#'", at("c_meta", 1, "meta-hash")),
            &format!("{}metadata key \"$k\" starts with '$'", at("c_meta", 1, "meta-dollar")),
            &format!("{}metadata key is empty", at("c_keys", 2, "meta-empty-key")),
            &format!("{}the id is empty", at("c_keys", 2, "")),
            &format!("{}metadata key \"k\": null metadata values are refused", at("c_keys", 2, "meta-null")),
            &format!("{}the record alone needs a ", at("c_big", 3, "huge")),
            "over the target's 40 MiB limit",
        ],
    );
    for c in ["c_emb", "c_meta", "c_keys", "c_big"] {
        assert!(!exists_on_v1(&format!("{p}_{c}")), "{c}: a collection was created");
    }

    // Metadata that is not JSON (NaN, 1e999) or holds an int beyond i64 is not a faithful
    // record but damage: verify says so, and load refuses the snapshot before any write.
    let mut bad = good(2);
    bad.push(rec("meta-nan", &[1.0; 4], Some(r#"{"x":NaN}"#)));
    bad.push(rec("meta-inf", &[1.0; 4], Some(r#"{"x":1e999}"#)));
    bad.push(rec("meta-i64", &[1.0; 4], Some(r#"{"k":18446744073709551615}"#)));
    let d = records_snapshot(&t.path().join("d"), vec![("c_bad", 4, bad)]);
    let v = snap(&["verify", d.to_str().unwrap()]);
    let err = stderr(&v);
    assert_eq!(v.status.code(), Some(3), "{err}");
    assert!(err.contains("parts/0000/part-000000.parquet") && err.contains("record \"meta-nan\""), "{err}");
    let o = load(&d, &server.url, &["--collection", &format!("c_bad={p}_c_bad")]);
    refused(&o, 2, &["is damaged, nothing was sent", "record \"meta-nan\": metadata is not a JSON object"]);
    assert!(!exists_on_v1(&format!("{p}_c_bad")), "c_bad: a collection was created");
    assert!(!s.join(".chroma-snap").exists(), "no journal: nothing was started");

    // Only the collections loaded are checked: the good one (with a `{}` metadata) loads.
    let o = load(&s, &server.url, &["--collection", &format!("c_ok={p}_ok"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["collections"][0]["comparison"]["target_records"], 5, "{v}");
    assert_eq!(v["collections"][0]["comparison"]["different_count"], 0, "{v}");

    // Wrong dimensions against the manifest: the parts hold 4, the manifest says 5.
    let mpath = s.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["collections"][4]["dimension"] = json!(5);
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let o = load(&s, &server.url, &["--collection", &format!("c_ok={p}_dim")]);
    refused(&o, 2, &["is damaged, nothing was sent", "embeddings have 4 dimensions, the manifest says 5"]);
    assert!(!exists_on_v1(&format!("{p}_dim")));
}

#[test]
fn load_into_an_existing_collection_is_refused_by_name() {
    let t = tmp();
    let s = records_snapshot(&t.path().join("s"), vec![("docs", 4, good(5))]);
    let server = harness::shared(V1);
    let name = harness::unique("taken");
    let (st, body) = harness::http(&server.url, "POST", BASE, Some(&format!(r#"{{"name":"{name}"}}"#)), &[]);
    assert_eq!(st, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    let count = || harness::http(&server.url, "GET", &format!("{BASE}/{id}/count"), None, &[]).1.trim().to_owned();

    // The default policy (no --if-exists, no journal): refused, naming the collection and the way out.
    let o = load(&s, &server.url, &["--collection", &format!("docs={name}")]);
    refused(
        &o,
        2,
        &[&format!("collection \"{name}\" already exists on {}", server.url), "--if-exists replace", "append"],
    );
    assert_eq!(count(), "0", "nothing was written into it");
    let add = r#"{"ids":["theirs"],"embeddings":[[1,2,3]]}"#;
    assert!(harness::http(&server.url, "POST", &format!("{BASE}/{id}/add"), Some(add), &[]).0 < 300);
    // Appending 4-dimension records into a 3-dimension collection: refused before any write.
    let o = load(&s, &server.url, &["--collection", &format!("docs={name}"), "--if-exists", "append"]);
    refused(
        &o,
        2,
        &[&format!("collection \"{name}\" on the target holds 3-dimension embeddings; the snapshot's \"docs\" has 4")],
    );
    assert_eq!(count(), "1", "the existing collection was left alone");
}

/// A minimal spec sending every record to one target.
pub fn one_target_spec(dir: &Path) -> PathBuf {
    let p = dir.join("spec.toml");
    std::fs::write(&p, "version = 1\n[targets.out_docs]\nspace = \"l2\"\n[routing]\ndefault = \"out_docs\"\n").unwrap();
    p
}

#[test]
fn hostile_part_paths_are_refused_by_every_command() {
    let t = tmp();
    let good_snap = records_snapshot(&t.path().join("good"), vec![("docs", 4, good(5))]);
    let spec = one_target_spec(t.path());
    let server = harness::shared(V1);
    let rel = "parts/0000/part-000000.parquet";
    let run_all = |s: &Path, case: &str, verify_code: i32, needle: &str| {
        let sd = s.to_str().unwrap();
        let out = t.path().join(format!("out-{case}"));
        let target = format!("docs={}", harness::unique("hostile"));
        for (cmd, o, code) in [
            ("verify", snap(&["verify", sd]), verify_code),
            ("inspect", snap(&["inspect", sd]), 2),
            (
                "transform",
                snap(&["transform", sd, "--spec", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]),
                2,
            ),
            ("load", load(s, &server.url, &["--collection", &target]), 2),
        ] {
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(code), "{case} {cmd}: {err}");
            assert!(err.contains(needle), "{case} {cmd}: {needle:?} not in:\n{err}");
        }
        assert!(!out.join("manifest.json").exists(), "{case}: transform wrote a snapshot");
        assert!(!exists_on_v1(target.split('=').nth(1).unwrap()), "{case}: load created the target");
    };
    for (case, bad, why) in
        [("dotdot", "../outside.parquet", "contains '..'"), ("absolute", "/etc/passwd", "is absolute")]
    {
        let s = t.path().join(case);
        copy_dir(&good_snap, &s);
        let mpath = s.join("manifest.json");
        let text = std::fs::read_to_string(&mpath).unwrap().replace(rel, bad);
        std::fs::write(&mpath, text).unwrap();
        run_all(&s, case, 2, &format!("part path \"{bad}\" {why}"));
    }
    // A part that is a symlink to a file outside the snapshot (an exact copy: only where it is
    // differs). verify reports it as a problem (3); the others refuse the input (2).
    let s = t.path().join("symlink");
    copy_dir(&good_snap, &s);
    let outside = t.path().join("outside.parquet");
    std::fs::rename(s.join(rel), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, s.join(rel)).unwrap();
    run_all(&s, "symlink", 3, &format!("part path \"{rel}\" resolves outside the snapshot"));
}

#[test]
fn an_output_directory_holding_a_snapshot_is_left_untouched() {
    let t = tmp();
    let existing = records_snapshot(&t.path().join("existing"), vec![("docs", 4, good(5))]);
    let input = records_snapshot(&t.path().join("input"), vec![("other", 4, good(3))]);
    let spec = one_target_spec(t.path());
    let before = crate::transform::hashes(&existing);
    let e = existing.to_str().unwrap();
    let server = harness::shared(V1);
    let needle = format!("{e} already holds a snapshot (manifest.json); choose another --out");
    refused(&snap(&["export", "--from", &server.url, "--out", e]), 2, &[&needle]);
    let o = snap(&["transform", input.to_str().unwrap(), "--spec", spec.to_str().unwrap(), "--out", e]);
    refused(&o, 2, &[&needle]);
    assert_eq!(crate::transform::hashes(&existing), before, "the existing snapshot changed");
    ok(&["verify", e]);
}

#[test]
fn a_full_disk_while_transforming_fails_naming_the_file_and_leaves_no_snapshot() {
    let t = tmp();
    let out = t.path().join("out");
    let spec = crate::transform::SPEC;
    // RLIMIT_FSIZE of 1 MiB (512-byte blocks) with SIGXFSZ ignored (an ignored signal survives
    // exec): every write past 1 MiB fails with EFBIG, as on a full disk.
    let o = Command::new("sh")
        .args(["-c", "ulimit -f 2048 && trap '' XFSZ && exec \"$@\"", "sh"])
        .arg(harness::bin())
        .arg("transform")
        .arg(crate::transform::legacy())
        .args(["--spec", spec, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "an I/O failure, not a bad input:\n{err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{err}"));
    assert!(line.contains(&format!("error: {}/", out.display())), "the file is named: {line}");
    assert!(line.contains("File too large"), "{line}");
    assert!(!out.join("manifest.json").exists(), "a manifest was left behind");
    let v = snap(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2), "{}", stderr(&v));
    assert!(stderr(&v).contains("is not a snapshot: it has no manifest.json"), "{}", stderr(&v));
    // Without the limit, the same command into the same directory clears the leftovers and succeeds.
    let o = crate::transform::transform(crate::transform::legacy(), Path::new(spec), &out, None);
    assert!(o.status.success(), "{}", stderr(&o));
    ok(&["verify", out.to_str().unwrap()]);
    assert!(!out.join(".chroma-snap").exists());
}

#[test]
fn transform_rejects_nan_and_inf_embeddings_with_a_reason() {
    let t = tmp();
    let mut recs = good(3);
    recs.push(rec("nan", &[1.0, f32::NAN, 2.0, 3.0], None));
    recs.push(rec("inf", &[1.0, 2.0, f32::INFINITY, 3.0], None));
    let s = records_snapshot(&t.path().join("s"), vec![("docs", 4, recs)]);
    let out = t.path().join("out");
    let o = crate::transform::transform(&s, &one_target_spec(t.path()), &out, None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let f = std::fs::File::open(out.join("rejects.parquet")).unwrap();
    let mut found = BTreeMap::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap() {
        let b = b.unwrap();
        let ids = b.column_by_name("id").unwrap().as_string::<i32>();
        let reasons = b.column_by_name("reasons").unwrap().as_list::<i32>();
        for i in 0..b.num_rows() {
            let r = reasons.value(i);
            let r = r.as_struct();
            let rules = r.column(0).as_string::<i32>();
            let msgs = r.column(2).as_string::<i32>();
            found.insert(ids.value(i).to_owned(), (rules.value(0).to_owned(), msgs.value(0).to_owned()));
        }
    }
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found["nan"], ("embedding.non_finite".into(), "1 NaN/Inf value(s), first at index 1 (NaN)".into()));
    assert_eq!(found["inf"], ("embedding.non_finite".into(), "1 NaN/Inf value(s), first at index 2 (inf)".into()));
    let m: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["collections"][0]["count"], 3);
}
