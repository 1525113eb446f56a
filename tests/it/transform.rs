//! `chroma-snap transform` end to end on the shipped four-collection example: exact counts,
//! rejects, determinism across thread counts, spec errors, damaged input, the quality gate.
//!
//! Not here yet: reading the output with pyarrow/DuckDB goes through `harness::run_py` once the
//! lead's harness is merged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use arrow::array::{Array, AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::support::copy_dir;

pub const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/specs/four-collections.toml");

pub fn snap_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chroma-snap"))
}

/// The legacy snapshot, generated once per test run.
pub fn legacy() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("legacy");
        let out = Command::new(env!("CARGO_BIN_EXE_legacy-fixture")).arg("--snapshot").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (t, dir)
    })
    .1
}

pub fn transform(input: &Path, spec: &Path, out: &Path, threads: Option<usize>) -> Output {
    let mut c = snap_bin();
    c.arg("transform").arg(input).arg("--spec").arg(spec).arg("--out").arg(out).arg("--json").arg("--quiet");
    if let Some(n) = threads {
        c.env("RAYON_NUM_THREADS", n.to_string());
    }
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

/// blake3 of every file under `dir`, by relative path.
pub fn hashes(dir: &Path) -> BTreeMap<String, String> {
    crate::harness::files_under(dir)
        .into_iter()
        .map(|(p, bytes)| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, blake3::hash(&bytes).to_hex().to_string())
        })
        .collect()
}

#[test]
fn four_collections_routes_writes_and_rejects_exactly() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let o = transform(legacy(), Path::new(SPEC), &out, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = &json(&o)["report"];
    assert_eq!(r["records_in"], 9832);
    let routed: BTreeMap<String, u64> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().into(), t["routed"].as_u64().unwrap()))
        .collect();
    let want =
        [("sergio_corpus", 3442), ("sergio_humor", 2150), ("sergio_personality", 2350), ("sergio_rhetorical", 1890)];
    assert_eq!(routed, want.iter().map(|(n, c)| (n.to_string(), *c)).collect());
    assert_eq!((r["written"].as_u64(), r["rejected"].as_u64()), (Some(9687), Some(145)));
    assert!((r["pass_rate"].as_f64().unwrap() - 0.98525).abs() < 1e-4);
    assert_eq!(r["gate_passed"], true);

    // Every rejected record is in rejects.parquet, whole, with at least one reason.
    let f = fs::File::open(out.join("rejects.parquet")).unwrap();
    let mut rows = 0;
    let mut reasons_total = 0;
    for b in ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap() {
        let b = b.unwrap();
        rows += b.num_rows();
        let reasons = b.column_by_name("reasons").unwrap().as_list::<i32>();
        let emb = b.column_by_name("embedding").unwrap().as_list::<i32>();
        for i in 0..b.num_rows() {
            assert!(!reasons.value(i).is_empty(), "row {i} has no reason");
            reasons_total += reasons.value(i).len();
            assert!([384, 768].contains(&emb.value(i).len()));
        }
    }
    assert_eq!(rows, 145);
    let by_rule: u64 = r["reasons_by_rule"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(reasons_total as u64, by_rule);
    assert!(by_rule > 145, "some records carry several reasons");

    // The output is a snapshot that verifies (side files allowed), with its lineage.
    let v = snap_bin().arg("verify").arg(&out).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let m: Value = serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let input_hash = blake3::hash(&fs::read(legacy().join("manifest.json")).unwrap()).to_hex().to_string();
    let spec_hash = blake3::hash(&fs::read(SPEC).unwrap()).to_hex().to_string();
    assert_eq!(m["lineage"]["input_manifest_blake3"], input_hash.as_str());
    assert_eq!(m["lineage"]["spec_blake3"], spec_hash.as_str());
    let counts: u64 = m["collections"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(counts, 9687);
}

#[test]
fn output_is_identical_across_thread_counts_and_runs() {
    let t = tempfile::tempdir().unwrap();
    let runs = [(Some(1), "one"), (None, "all"), (None, "again"), (Some(3), "three")];
    let mut seen: Option<BTreeMap<String, String>> = None;
    for (threads, name) in runs {
        let out = t.path().join(name);
        let o = transform(legacy(), Path::new(SPEC), &out, threads);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let h = hashes(&out);
        assert!(h.contains_key("manifest.json") && h.contains_key("rejects.parquet") && h.contains_key("report.json"));
        match &seen {
            None => seen = Some(h),
            Some(first) => assert_eq!(first, &h, "run {name} differs"),
        }
    }
}

#[test]
fn spec_mistakes_are_all_reported_before_reading_data() {
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("bad.toml");
    fs::write(
        &spec,
        r#"version = 1
colour = "blue"
[gate]
min_pass_rate = "high"
[targets.good_target.fields.x]
from = "x"
regex = "([unclosed"
[[routing.rules]]
to = "no_such_target"
collection = { contains = "a" }
"#,
    )
    .unwrap();
    let out = t.path().join("out");
    // The input does not exist: a spec error must come first, without touching data.
    let o = transform(&t.path().join("missing-input"), &spec, &out, None);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for path in ["colour", "gate.min_pass_rate", "targets.good_target.fields.x.regex", "routing.rules[0].to"] {
        assert!(err.contains(&format!("  {path}: ")), "no error at {path}:\n{err}");
    }
    assert!(err.contains("4 problem(s)"), "{err}");
    assert!(!err.contains("missing-input"), "data was looked at: {err}");
    assert!(!out.exists());
}

#[test]
fn damaged_input_is_refused_before_writing() {
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("legacy");
    copy_dir(legacy(), &copy);
    let part = copy.join("parts/0001/part-000000.parquet");
    let mut bytes = fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&part, bytes).unwrap();
    let out = t.path().join("out");
    let o = transform(&copy, Path::new(SPEC), &out, None);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("damaged") && err.contains("corrupted"), "{err}");
    assert!(!out.exists(), "output written for a damaged input");
}

/// Damage that only the records show (the files match their hashes, the records do not match
/// the manifest's digest) is found by the transform's own pass over the input, which is read
/// once: exit 2 naming the collection, and what was written is removed; no manifest.
#[test]
fn records_that_disagree_with_the_manifest_are_found_in_the_same_pass_and_nothing_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("legacy");
    copy_dir(legacy(), &copy);
    let manifest = copy.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    let name = m["collections"][1]["name"].as_str().unwrap().to_owned();
    m["collections"][1]["records_digest"] = Value::from("0".repeat(64));
    fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let out = t.path().join("out");
    let o = transform(&copy, Path::new(SPEC), &out, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("collection {name:?}: records digest")), "{err}");
    assert!(!out.join("manifest.json").exists() && !out.join("parts").exists(), "output kept");
    assert!(!out.join("rejects.parquet").exists(), "rejects kept");
    // --trust-input takes the input as it is.
    let trusted = t.path().join("trusted");
    let o = snap_bin()
        .args(["transform", copy.to_str().unwrap(), "--spec", SPEC, "--out", trusted.to_str().unwrap()])
        .args(["--trust-input", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn below_the_gate_exits_4_without_a_manifest() {
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("strict.toml");
    let text = fs::read_to_string(SPEC).unwrap().replace("min_pass_rate = 0.95", "min_pass_rate = 0.99");
    fs::write(&spec, text).unwrap();
    let out = t.path().join("out");
    let o = transform(legacy(), &spec, &out, None);
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("quality gate"));
    assert!(!out.join("manifest.json").exists());
    assert!(!out.join("parts").exists());
    let report: Value = serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!((report["gate_passed"].as_bool(), report["snapshot_written"].as_bool()), (Some(false), Some(false)));
    assert!(out.join("rejects.parquet").exists());
    let v = snap_bin().arg("verify").arg(&out).output().unwrap();
    assert_eq!(v.status.code(), Some(2), "a gated output is not a snapshot");
}

#[test]
fn dry_run_writes_no_snapshot() {
    let o = snap_bin()
        .args(["transform", "--dry-run", "--json", "--quiet", "--spec", SPEC])
        .arg(legacy())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&o);
    assert_eq!(s["report"]["written"], 9687);
    assert_eq!(s["report"]["snapshot_written"], false);
}

/// Duplicate ids are rejected where they can happen (two input collections into one target, or an
/// id template) and only the first of each is written.
#[test]
fn duplicate_ids_into_one_target_are_rejected_after_the_first() {
    use crate::support::{SnapCollection, write_snapshot};
    use chroma_snap::record::{RecordPage, RecordRef};
    let t = tempfile::tempdir().unwrap();
    let col = |name: &str| {
        let mut page = RecordPage::with_capacity(2, 10);
        for i in 0..10 {
            let id = format!("r{i}");
            page.push(RecordRef { id: &id, embedding: &[i as f32, 1.0], document: None, uri: None, metadata: None });
        }
        SnapCollection { name: name.into(), dim: 2, space: "l2".into(), metadata: None, configuration: None, page }
    };
    let two = write_snapshot(&t.path().join("two"), vec![col("a"), col("b")]);
    let one = write_snapshot(&t.path().join("one"), vec![col("a")]);
    let spec = |ids: &str| {
        let p = t.path().join(format!("spec-{}.toml", ids.len()));
        let text = format!(
            "version = 1\n[gate]\nmin_pass_rate = 0.0\n[defaults]\nspace = \"l2\"\nids = \"{ids}\"\n[targets.all]\n[routing]\ndefault = \"all\"\n"
        );
        fs::write(&p, text).unwrap();
        p
    };
    for (input, ids, written) in [(&two, "keep", 10), (&one, "{target}-{n}", 10), (&one, "same-{target}", 1)] {
        let out = t.path().join(format!("out-{}-{}", input.file_name().unwrap().to_string_lossy(), ids.len()));
        let o = transform(input, &spec(ids), &out, None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = &json(&o)["report"];
        let total = if input == &two { 20 } else { 10 };
        assert_eq!(r["written"], written, "{ids}: {r}");
        assert_eq!(r["rejected"], total - written, "{ids}: {r}");
        assert_eq!(r["reasons_by_rule"].get("id.duplicate").and_then(Value::as_u64).unwrap_or(0), total - written);
        let v = snap_bin().arg("verify").arg(&out).output().unwrap();
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    }
}
