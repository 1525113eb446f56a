//! The documents' promises: every query and snippet in docs/inspect-with-*.md runs against a
//! migrated demo snapshot (on disk, and a copy in the local S3 server for the "Straight from S3"
//! snippets), and pyarrow and DuckDB read a transform's output with no custom code.

use std::path::Path;

use crate::harness::{self, V1};
use chroma_snap::snapshot::store::Store;

use crate::s3_server::{BUCKET, s3, upload};
use crate::transform::{SPEC, legacy, transform};

/// A directory holding `snap`, the four-collection transform of the legacy fixture.
fn migrated() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let out = transform(legacy(), Path::new(SPEC), &t.path().join("snap"), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    t
}

fn run_in(dir: &Path, script: &str, args: &[&str]) -> String {
    run_in_env(dir, script, args, &[])
}

fn run_in_env(dir: &Path, script: &str, args: &[&str], env: &[(&str, String)]) -> String {
    let out = std::process::Command::new(harness::python(V1))
        .arg(harness::repo().join(script))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script} {args:?}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn every_block_of_the_inspect_documents_runs() {
    let t = migrated();
    let docs: Vec<String> = ["docs/inspect-with-duckdb.md", "docs/inspect-with-pandas.md"]
        .iter()
        .map(|d| harness::repo().join(d).to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = docs.iter().map(String::as_str).collect();
    // The same snapshot in a bucket, for the snippets that read from S3.
    let prefix = harness::unique("docs");
    let store = s3().store(&format!("s3://{BUCKET}/{prefix}"));
    upload(&t.path().join("snap"), &store);
    let mut env = s3().env();
    env.push(("SNAPSHOT_S3", format!("{BUCKET}/{prefix}")));
    let out = run_in_env(t.path(), "tests/py/run_doc_blocks.py", &args, &env);
    store.remove_prefix("").unwrap();
    // Every block reported, none skipped.
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let blocks = text.matches("```sql\n").count() + text.matches("```python\n").count();
        assert_eq!(out.lines().filter(|l| l.starts_with(doc.as_str())).count(), blocks, "{doc}:\n{out}");
    }
}

#[test]
fn pyarrow_and_duckdb_read_a_transform_output() {
    let t = migrated();
    let script = t.path().join("read.py");
    std::fs::write(
        &script,
        r#"
import json, duckdb, pyarrow.parquet as pq
m = json.load(open("snap/manifest.json"))
rows = sum(pq.read_table("snap/" + p["path"]).num_rows for c in m["collections"] for p in c["parts"])
distinct = duckdb.sql("select count(distinct id) from read_parquet('snap/parts/*/*.parquet')").fetchone()[0]
rejects = pq.read_table("snap/rejects.parquet")
rules = duckdb.sql("select count(*) from read_parquet('snap/rejects.parquet'), unnest(reasons) t(r)").fetchone()[0]
print(json.dumps({"rows": rows, "distinct": distinct, "rejects": rejects.num_rows, "reasons": rules}))
"#,
    )
    .unwrap();
    let out = run_in(t.path(), script.to_str().unwrap(), &[]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["rows"], 9687);
    assert_eq!(v["rejects"], 145);
    assert!(v["reasons"].as_u64().unwrap() >= 145);
    // Ids are unique per target; the same id in two targets would be counted once.
    assert!(v["distinct"].as_u64().unwrap() <= 9687);
}
