//! The documents' promises: every query and snippet in docs/inspect-with-*.md runs against a
//! migrated demo snapshot (on disk, and a copy in the local S3 server for the "Straight from S3"
//! snippets), pyarrow and DuckDB read a transform's output with no custom code, and the
//! Kubernetes Jobs of docs/scale-out.md load and verify a snapshot when run as their pods.

use std::path::Path;
use std::process::{Command, Stdio};

use chroma_snap::record::{RecordPage, RecordRef};
use chroma_snap::snapshot::store::Store;
use serde_json::Value;

use crate::harness::{self, V1};
use crate::s3_server::{BUCKET, s3, upload};
use crate::support::{SnapCollection, write_snapshot};
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

// ---------- docs/scale-out.md: the Kubernetes Jobs, run as their pods would run them ----------

/// One synthetic collection of `n` records (8 dims, two metadata keys).
fn scale_collection(name: &str, n: usize) -> SnapCollection {
    let mut page = RecordPage::with_capacity(8, n);
    for i in 0..n {
        let id = format!("{name}-{i:06}");
        let emb: Vec<f32> = (0..8).map(|k| ((i * 8 + k) % 97) as f32 / 97.0 - 0.5).collect();
        let meta = format!(r#"{{"chunk":{i},"source":"file_{}.txt"}}"#, i % 13);
        page.push(RecordRef { id: &id, embedding: &emb, document: None, uri: None, metadata: Some(&meta) });
    }
    SnapCollection { name: name.into(), dim: 8, space: "cosine".into(), metadata: None, configuration: None, page }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("array expected: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// The load Job of docs/scale-out.md (an Indexed Job of N pods, `--shard auto/N`, the snapshot
/// read-only, one journal per index) and its verify Job, run as their pods would run them: every
/// index at once with JOB_COMPLETION_INDEX set, the mounts mapped to local directories and the
/// Chroma Cloud settings replaced by a local 1.5.9 server's. The verify Job must then find the
/// target identical to the snapshot.
#[test]
fn the_scale_out_jobs_load_and_verify_a_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let snap = write_snapshot(
        &t.path().join("snap"),
        vec![scale_collection("scale_a", 2_500), scale_collection("scale_b", 700)],
    );
    let state = t.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let server = harness::Server::start(V1);
    let doc = harness::repo().join("docs/scale-out.md");
    let env = [
        format!("CHROMA_URL={}", server.url),
        "CHROMA_TENANT=default_tenant".into(),
        "CHROMA_DATABASE=default_database".into(),
        "CHROMA_API_KEY=stand-in-key".into(),
    ];
    let mounts = [format!("/snap={}", snap.display()), format!("/state={}", state.display())];
    let mut args = vec![doc.to_str().unwrap()];
    for e in &env {
        args.extend(["--env", e.as_str()]);
    }
    for m in &mounts {
        args.extend(["--mount", m.as_str()]);
    }
    let v: Value = serde_json::from_str(run_in(t.path(), "tests/py/job_commands.py", &args).trim()).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "a load Job and a verify Job: {v}");
    let (load, verify) = (&jobs[0], &jobs[1]);

    // The load Job: N pods at once, retried per index, never on bad input or differences.
    assert_eq!(load["indexed"], true, "{load}");
    let n = load["completions"].as_u64().unwrap();
    assert!(n >= 2, "{load}");
    assert_eq!(load["parallelism"], n, "all shards at once: {load}");
    assert_eq!(load["restart_policy"], "Never", "backoffLimitPerIndex needs it: {load}");
    assert!(load["backoff_limit_per_index"].as_u64().is_some_and(|b| b >= 1), "{load}");
    assert_eq!(load["fail_index_exit_codes"], serde_json::json!([2, 3]), "{load}");
    // The snapshot read-only from a ReadOnlyMany claim; journals on a ReadWriteMany one.
    let claim = |path: &str| {
        let m = &load["mounts"][path];
        (m["read_only"].as_bool().unwrap(), strings(&load["claims"][m["claim"].as_str().unwrap()]))
    };
    assert_eq!(claim("/snap"), (true, vec!["ReadOnlyMany"]));
    assert_eq!(claim("/state"), (false, vec!["ReadWriteMany"]));
    // Each pod: the same command but for its journal, one per index.
    let pods = load["pods"].as_array().unwrap();
    assert_eq!(pods.len() as u64, n);
    let mut journals = std::collections::BTreeSet::new();
    for (i, pod) in pods.iter().enumerate() {
        let a = strings(&pod["args"]);
        assert_eq!(a[..2], ["load", snap.to_str().unwrap()], "{pod}");
        assert!(a.contains(&format!("--shard=auto/{n}").as_str()), "{pod}");
        assert!(a.contains(&format!("--to={}", server.url).as_str()), "{pod}");
        let journal = a.iter().find_map(|x| x.strip_prefix("--journal=")).expect("a --journal per pod");
        assert!(journal.starts_with(state.to_str().unwrap()) && journal.contains(&format!("-{i}.")), "{journal}");
        journals.insert(journal.to_owned());
    }
    assert_eq!(journals.len() as u64, n, "one journal per index: {journals:?}");
    assert_eq!(verify["indexed"], false, "{verify}");
    let check = strings(&verify["pods"][0]["args"]);
    let against = format!("--against={}", server.url);
    assert_eq!(check[..3], ["verify", snap.to_str().unwrap(), against.as_str()], "{verify}");

    let untouched = harness::files_under(&snap);
    let running: Vec<_> = pods
        .iter()
        .map(|pod| {
            Command::new(harness::bin())
                .args(strings(&pod["args"]))
                .env("JOB_COMPLETION_INDEX", pod["env"]["JOB_COMPLETION_INDEX"].as_str().unwrap())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    for (i, child) in running.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "pod {i} of {n}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    // The snapshot is mounted read-only: nothing may be written beside it; the journals went to
    // the state volume, one per index.
    assert!(harness::files_under(&snap) == untouched, "a shard wrote into the read-only snapshot");
    let written: Vec<String> = harness::files_under(&state)
        .into_iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".jsonl"))
        .collect();
    assert_eq!(written.len() as u64, n, "{written:?}");
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    for (name, count) in [("scale_a", 2_500), ("scale_b", 700)] {
        let (status, body) = harness::http(&server.url, "GET", &format!("{base}/{name}"), None, &[]);
        assert_eq!(status, 200, "{name}: {body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
        let (_, got) = harness::http(&server.url, "GET", &format!("{base}/{id}/count"), None, &[]);
        assert_eq!(got.trim(), count.to_string(), "{name}");
    }
    let out = Command::new(harness::bin()).args(&check).output().unwrap();
    assert!(out.status.success(), "the verify Job: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
}
