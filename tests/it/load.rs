//! Load against real servers: export → load → read back with the official Python client, kill -9
//! at seeded random points and rerun, faults from a proxy (resets, 5xx/429, slow, truncated and
//! stalled answers), a batch beyond the 1.x body limit, rollback with replace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chroma_snap::record::{RecordPage, RecordRef};
use chroma_snap::snapshot::convert::BatchView;
use chroma_snap::snapshot::reader::Snapshot;
use chroma_snap::snapshot::writer::WriterOptions;
use serde_json::{Map, Value, json};

use crate::export::{ok, snap, tmp, typed};
use crate::harness::{self, Server, V0, V1};
use crate::proxy::{Fault, Proxy};
use crate::support::{Rng, SnapCollection, stderr, write_snapshot_with, xorshift};

/// Cosine embeddings may come back this many ulps off (see src/load/drift.rs).
const COSINE_ULPS: u64 = 4;

// ---------- synthetic snapshots, written with the library's own snapshot layer ----------

pub struct Synth<'a> {
    pub name: &'a str,
    pub n: usize,
    pub dim: usize,
    pub space: &'a str,
    pub seed: u64,
    pub docs: bool,
}

fn page_of(s: &Synth<'_>) -> RecordPage {
    let mut rng = s.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut page = RecordPage::with_capacity(s.dim, s.n);
    for i in 0..s.n {
        let emb: Vec<f32> =
            (0..s.dim).map(|_| (xorshift(&mut rng) >> 40) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0).collect();
        let id = format!("r{i:06}");
        let doc = (s.docs && i % 7 != 0).then(|| format!("document {i} of {} (seed {}) ✓", s.name, s.seed));
        let uri = (i % 5 == 0).then(|| format!("s3://bucket/{i}"));
        let meta = (i % 11 != 0).then(|| {
            let f = (xorshift(&mut rng) % 1_000_000) as f64 / 7.0;
            format!(r#"{{"b":{},"f":{f:?},"i":{},"s":"x{i}"}}"#, i % 2 == 0, i as i64 - 50)
        });
        page.push(RecordRef {
            id: &id,
            embedding: &emb,
            document: doc.as_deref(),
            uri: uri.as_deref(),
            metadata: meta.as_deref(),
        });
    }
    page
}

/// Writes a snapshot holding the given collections under `root`; returns its directory.
fn synth_snapshot(root: &Path, cols: &[Synth<'_>]) -> PathBuf {
    synth_snapshot_with(root, cols, WriterOptions::default())
}

/// [`synth_snapshot`] with the writer's part and row-group sizes given.
pub fn synth_snapshot_with(root: &Path, cols: &[Synth<'_>], opts: WriterOptions) -> PathBuf {
    let dir = root.join(format!("snap-{}", harness::unique("s")));
    let cols = cols
        .iter()
        .map(|s| SnapCollection {
            name: s.name.into(),
            dim: s.dim,
            space: s.space.into(),
            metadata: json!({"purpose": "load test", "seed": s.seed}).as_object().cloned(),
            configuration: Some(json!({"hnsw": {"space": s.space, "ef_construction": 100, "ef_search": 100,
                "max_neighbors": 16, "resize_factor": 1.2, "sync_threshold": 1000}, "spann": null})),
            page: page_of(s),
        })
        .collect();
    write_snapshot_with(&dir, cols, opts)
}

// ---------- comparing what the Python client reads ----------

/// Parses Python's `float.hex()` back into a double (finite values).
fn parse_float_hex(s: &str) -> f64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let s = s.strip_prefix("0x").expect("0x");
    let (mant, exp) = s.split_once('p').expect("p");
    let (lead, frac) = mant.split_once('.').unwrap_or((mant, "0"));
    let frac_bits = u64::from_str_radix(&format!("{frac:0<13}")[..13], 16).expect("hex fraction");
    let exp: i64 = exp.parse().expect("exponent");
    let bits = if lead == "0" { frac_bits } else { (((exp + 1023) as u64) << 52) | frac_bits };
    let v = f64::from_bits(bits);
    if neg { -v } else { v }
}

/// One snapshot collection in the shape of `tests/py/dump_collection.py`: (header, rows by id).
pub fn snapshot_dump(dir: &Path, name: &str) -> (Value, Vec<Value>) {
    let snap = Snapshot::open(dir).unwrap();
    let c = snap.manifest.collection(name).unwrap().clone();
    let mut rows = Vec::new();
    for b in snap.collection_batches(&c) {
        let b = b.unwrap();
        for r in BatchView::new(&b).records() {
            let meta: Option<Map<String, Value>> = r.metadata.map(|m| serde_json::from_str(m).unwrap());
            rows.push(json!({
                "id": r.id,
                "embedding_f32_hex": r.embedding.iter().map(|v| format!("{:08x}", v.to_bits())).collect::<Vec<_>>(),
                "document": r.document, "uri": r.uri,
                "metadata": meta.map(|m| m.iter().map(|(k, v)| (k.clone(), typed(v))).collect::<Map<_, _>>()),
            }));
        }
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    (json!({"count": c.count, "space": c.space, "metadata": c.metadata}), rows)
}

pub fn server_dump(server: &Server, name: &str) -> (Value, Vec<Value>) {
    let out = harness::dump(server, name);
    let mut lines = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// Drift counted while comparing dumps.
#[derive(Debug, Default)]
pub struct Seen {
    embedding_values: u64,
    max_embedding_ulps: u64,
    metadata_values: u64,
}

fn ulps32(a: &str, b: &str) -> u64 {
    let ord = |h: &str| {
        let bits = u32::from_str_radix(h, 16).unwrap();
        if bits >> 31 == 1 { -i64::from(bits & 0x7fff_ffff) } else { i64::from(bits) }
    };
    ord(a).abs_diff(ord(b))
}

fn same_typed(path: &str, want: &Value, got: &Value, meta_ulps: u64, seen: &mut Seen) {
    if want == got {
        return;
    }
    let (wt, gt) = (&want["type"], &got["type"]);
    assert_eq!(wt, gt, "{path}: type differs: {got} instead of {want}");
    match wt.as_str() {
        Some("float") => {
            let (w, g) =
                (parse_float_hex(want["value"].as_str().unwrap()), parse_float_hex(got["value"].as_str().unwrap()));
            let d = (w.to_bits() as i128 - g.to_bits() as i128).unsigned_abs();
            assert!(d <= u128::from(meta_ulps), "{path}: {g} instead of {w} ({d} ulps)");
            seen.metadata_values += 1;
        }
        Some("list") => {
            let (w, g) = (want["value"].as_array().unwrap(), got["value"].as_array().unwrap());
            assert_eq!(w.len(), g.len(), "{path}: list length");
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                same_typed(&format!("{path}[{i}]"), a, b, meta_ulps, seen);
            }
        }
        _ => panic!("{path}: {got} instead of {want}"),
    }
}

/// Asserts two dumps hold the same collection up to the documented drift; returns the drift seen.
pub fn assert_same_records(what: &str, want: &(Value, Vec<Value>), got: &(Value, Vec<Value>), meta_ulps: u64) -> Seen {
    let strip = |m: &Value| -> Value {
        match m.as_object() {
            Some(o) => {
                let k: Map<String, Value> =
                    o.iter().filter(|(k, _)| !k.starts_with("hnsw:")).map(|(k, v)| (k.clone(), v.clone())).collect();
                if k.is_empty() { Value::Null } else { Value::Object(k) }
            }
            None => Value::Null,
        }
    };
    assert_eq!(want.0["count"], got.0["count"], "{what}: count");
    assert_eq!(want.0["space"], got.0["space"], "{what}: distance space");
    assert_eq!(strip(&want.0["metadata"]), strip(&got.0["metadata"]), "{what}: collection metadata");
    let ulps = if want.0["space"] == "cosine" { COSINE_ULPS } else { 0 };
    assert_eq!(want.1.len(), got.1.len(), "{what}: rows");
    let mut seen = Seen::default();
    for (w, g) in want.1.iter().zip(&got.1) {
        let id = w["id"].as_str().unwrap();
        let here = format!("{what}: record {id:?}");
        assert_eq!(w["id"], g["id"], "{what}: ids differ");
        assert_eq!(w["document"], g["document"], "{here}: document");
        assert_eq!(w["uri"], g["uri"], "{here}: uri");
        let (we, ge) = (w["embedding_f32_hex"].as_array().unwrap(), g["embedding_f32_hex"].as_array().unwrap());
        assert_eq!(we.len(), ge.len(), "{here}: dimensions");
        for (j, (a, b)) in we.iter().zip(ge).enumerate() {
            let d = ulps32(a.as_str().unwrap(), b.as_str().unwrap());
            assert!(d <= ulps, "{here}: embedding[{j}] {b} instead of {a} ({d} ulps)");
            if d > 0 {
                seen.embedding_values += 1;
                seen.max_embedding_ulps = seen.max_embedding_ulps.max(d);
            }
        }
        // 1.x reads a record with a uri and no metadata back as `{}`: the same as null.
        let meta = |v: &Value| v.as_object().filter(|m| !m.is_empty()).cloned();
        match (meta(&w["metadata"]), meta(&g["metadata"])) {
            (Some(wm), Some(gm)) => {
                assert_eq!(wm.keys().collect::<Vec<_>>(), gm.keys().collect::<Vec<_>>(), "{here}: metadata keys");
                for (k, v) in &wm {
                    same_typed(&format!("{here}: metadata.{k}"), v, &gm[k], meta_ulps, &mut seen);
                }
            }
            (None, None) => {}
            _ => panic!("{here}: metadata {} instead of {}", g["metadata"], w["metadata"]),
        }
    }
    seen
}

// ---------- running the binary ----------

pub fn load_cmd(dir: &Path, url: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(harness::bin());
    c.args(["load", dir.to_str().unwrap(), "--to", url, "--quiet"]).args(extra).env("NO_COLOR", "1");
    c
}

pub fn run(mut c: Command) -> Output {
    c.output().expect("run chroma-snap")
}

pub fn load_ok(dir: &Path, url: &str, extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.push("--json");
    let out = run(load_cmd(dir, url, &args));
    assert!(out.status.success(), "load {extra:?} failed ({}):\n{}", out.status, stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    for c in v["collections"].as_array().unwrap() {
        if !c["comparison"].is_null() {
            assert!(c["comparison"]["different_count"] == 0 && c["comparison"]["missing_count"] == 0, "{c}");
        }
    }
    v
}

/// Asserts a read-back comparison found the target equal to the snapshot; with `bit_exact`
/// (l2/ip), no embedding value moved either.
fn assert_loaded(c: &Value, bit_exact: bool) {
    let cmp = &c["comparison"];
    for k in ["missing_count", "extra_count", "different_count"] {
        assert_eq!(cmp[k], 0, "{k}: {c}");
    }
    assert_eq!(cmp["target_records"], cmp["expected_records"], "{c}");
    if bit_exact {
        assert_eq!(cmp["drift"]["embedding_values"], 0, "{c}");
    }
}

fn verify_against(dir: &Path, url: &str, mapping: &str) -> Value {
    let v = ok(&["verify", dir.to_str().unwrap(), "--against", url, "--collection", mapping, "--json", "--quiet"]);
    serde_json::from_str(&v).unwrap()
}

fn seeded_names(counts: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(counts.lines().last().unwrap()).unwrap();
    v.as_object().unwrap().keys().cloned().collect()
}

// ---------- 1. export → load → verify ----------

fn roundtrip(source_version: &'static str) {
    let source = harness::shared(source_version);
    let prefix = harness::unique("rt");
    let names = seeded_names(&harness::seed_edge_cases(source, &prefix));
    let dir = tmp();
    let out = dir.path().join("snap");
    let mut args = vec!["export", "--from", &source.url, "--out", out.to_str().unwrap(), "--quiet"];
    for n in &names {
        args.extend(["--collection", n]);
    }
    ok(&args);
    let target = Server::start(V1);
    let summary = load_ok(&out, &target.url, &[]);
    assert_eq!(summary["encoding"], "base64");
    let report = ok(&["verify", out.to_str().unwrap(), "--against", &target.url, "--json", "--quiet"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["against"].as_array().unwrap().len(), names.len());
    let conf = |server: &Server, n: &str| -> Value {
        let (_, body) =
            server.get(&format!("/api/v2/tenants/default_tenant/databases/default_database/collections/{n}"));
        serde_json::from_str::<Value>(&body).unwrap()["configuration_json"].clone()
    };
    for n in &names {
        if source_version == V1 {
            // HNSW settings and the embedding-function record survive, not only the space.
            assert_eq!(conf(source, n), conf(&target, n), "{n}: configuration");
        }
        let seen = assert_same_records(
            &format!("{source_version} → 1.5.9 {n}"),
            &server_dump(source, n),
            &server_dump(&target, n),
            1, // the 1.x target parses float metadata up to 1 ulp off
        );
        eprintln!(
            "drift {source_version}→1.5.9 {n}: {} embedding values (max {} ulp), {} float metadata values",
            seen.embedding_values, seen.max_embedding_ulps, seen.metadata_values
        );
    }
}

#[test]
fn export_load_verify_between_two_1_5_9_servers() {
    roundtrip(V1);
}

#[test]
fn export_load_verify_from_0_4_24_into_1_5_9() {
    roundtrip(V0);
}

#[test]
fn load_into_the_legacy_server_keeps_the_space_in_metadata() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 300, dim: 16, space: "ip", seed: 3, docs: true }]);
    let server = harness::shared(V0);
    let name = harness::unique("legacy");
    let summary = load_ok(&s, &server.url, &["--collection", &format!("docs={name}")]);
    assert_eq!((summary["api"].as_str(), summary["encoding"].as_str()), (Some("v1"), Some("json")));
    let want = snapshot_dump(&s, "docs");
    let got = server_dump(server, &name);
    assert_eq!(got.0["metadata"]["hnsw:space"], "ip");
    assert_eq!(got.0["metadata"]["hnsw:M"], 16);
    let seen = assert_same_records("synthetic → 0.4.24", &want, &got, 0);
    assert_eq!(seen.metadata_values + seen.embedding_values, 0, "0.4.24 stores what it is sent");
}

// ---------- 5. rollback with --if-exists replace ----------

#[test]
fn replace_rolls_a_target_back_to_an_older_snapshot() {
    let dir = tmp();
    let old =
        synth_snapshot(dir.path(), &[Synth { name: "docs", n: 300, dim: 32, space: "cosine", seed: 1, docs: true }]);
    let new =
        synth_snapshot(dir.path(), &[Synth { name: "docs", n: 450, dim: 32, space: "cosine", seed: 2, docs: true }]);
    let server = harness::shared(V1);
    let name = harness::unique("rollback");
    let map = format!("docs={name}");
    load_ok(&new, &server.url, &["--collection", &map]);
    // The target exists and no journal of the old snapshot knows it: refused by default.
    let out = run(load_cmd(&old, &server.url, &["--collection", &map]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists") && stderr(&out).contains("--if-exists"), "{}", stderr(&out));
    let summary = load_ok(&old, &server.url, &["--collection", &map, "--if-exists", "replace"]);
    assert_eq!(summary["collections"][0]["action"], "replaced");
    let report = verify_against(&old, &server.url, &map);
    assert_eq!(report["against"][0]["target_records"], 300);
    assert_same_records("rollback", &snapshot_dump(&old, "docs"), &server_dump(server, &name), 1);
    // And the newer snapshot no longer matches.
    let out = snap(&["verify", new.to_str().unwrap(), "--against", &server.url, "--collection", &map]);
    assert_eq!(out.status.code(), Some(3));
}

// ---------- 4. a batch beyond the 1.x body limit ----------

#[test]
fn a_batch_over_40_mb_as_json_loads() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "wide", n: 5000, dim: 1536, space: "l2", seed: 4, docs: true }]);
    let server = harness::shared(V1);
    let name = harness::unique("wide");
    let started = Instant::now();
    let summary = load_ok(&s, &server.url, &["--collection", &format!("wide={name}"), "--batch-size", "5000"]);
    let c = &summary["collections"][0];
    eprintln!("5000 x 1536 loaded in {:.1}s: {c}", started.elapsed().as_secs_f64());
    assert!(c["limits"]["max_bytes"].as_u64().unwrap() < 40 << 20);
    assert_loaded(c, true);
    assert_eq!(c["comparison"]["target_records"], 5000);
}

// ---------- 2. kill -9 and rerun ----------

pub fn batch_lines(journal: &Path) -> usize {
    std::fs::read_to_string(journal).map(|t| t.matches("\"type\":\"batch\"").count()).unwrap_or(0)
}

#[test]
fn kill_9_at_ten_seeded_random_points_then_rerun_is_exact() {
    const BATCHES: usize = 25;
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 1000, dim: 32, space: "l2", seed: 5, docs: true }]);
    let server = harness::shared(V1);
    let want = snapshot_dump(&s, "docs");
    let mut rng = Rng(20261126);
    let mut killed_midway = 0;
    for i in 0..10 {
        // Kill once this many batches are journalled (0: after a random pause of up to 300 ms,
        // while the collection is being created).
        let after = (rng.next_f64() * BATCHES as f64) as usize;
        let pause = Duration::from_secs_f64(rng.next_f64() * 0.3);
        let name = harness::unique("kill");
        let journal = dir.path().join(format!("{name}.jsonl"));
        let map = format!("docs={name}");
        let args = ["--collection", &map, "--batch-size", "40", "--journal", journal.to_str().unwrap()];
        let mut child = load_cmd(&s, &server.url, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        if after == 0 {
            std::thread::sleep(pause);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while batch_lines(&journal) < after && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "run {i}: no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            killed_midway += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = batch_lines(&journal);
        eprintln!("run {i}: killed at {after} with {acked} of {BATCHES} batches journalled");
        let summary = load_ok(&s, &server.url, &args);
        let c = &summary["collections"][0];
        let action = c["action"].as_str().unwrap();
        assert!(["created", "resumed", "loaded already"].contains(&action), "run {i}: {action}");
        assert!(c["batches_sent"].as_u64().unwrap() <= (BATCHES - acked) as u64, "run {i}: {c}");
        assert_loaded(c, true);
        assert_eq!(c["comparison"]["target_records"], 1000, "run {i}: {c}");
        assert_same_records(&format!("run {i}"), &want, &server_dump(server, &name), 1);
    }
    assert!(killed_midway >= 8, "only {killed_midway} of 10 kills hit a running load");
}

#[test]
fn a_load_stopped_after_its_last_batch_resumes_without_resending() {
    let dir = tmp();
    let s =
        synth_snapshot(dir.path(), &[Synth { name: "docs", n: 500, dim: 8, space: "cosine", seed: 6, docs: false }]);
    let server = harness::shared(V1);
    let name = harness::unique("last");
    let map = format!("docs={name}");
    let args = ["--collection", &map, "--batch-size", "100", "--concurrency", "1"];
    let mut c = load_cmd(&s, &server.url, &args);
    c.env("CHROMA_SNAP_FAIL_AFTER_BATCHES", "5");
    let out = run(c);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary = load_ok(&s, &server.url, &args);
    assert_eq!(summary["collections"][0]["batches_sent"], 0);
    assert_eq!(summary["collections"][0]["comparison"]["target_records"], 500);
    // A third run finds the collection loaded already.
    assert_eq!(load_ok(&s, &server.url, &args)["collections"][0]["action"], "loaded already");
}

#[test]
fn a_target_server_killed_and_restarted_mid_load() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 3000, dim: 256, space: "l2", seed: 7, docs: true }]);
    let server = Server::start(V1);
    let (data_dir, port) = (server.dir.clone(), server.port().to_string());
    let journal = dir.path().join("j.jsonl");
    let args = ["--collection", "docs", "--batch-size", "100", "--journal", journal.to_str().unwrap()];
    let child = load_cmd(&s, &server.url, &args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    while batch_lines(&journal) < 5 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill").args(["-KILL", "--", &format!("-{}", server.pid)]).status().unwrap();
    assert!(kill.success());
    std::mem::forget(server); // its data directory is reused below
    std::thread::sleep(Duration::from_secs(1));
    let restarted = Server::start_args(V1, &["--dir", data_dir.to_str().unwrap(), "--port", &port]);
    let out = child.wait_with_output().unwrap();
    eprintln!("load across the restart: {} ({} batches journalled)", out.status, batch_lines(&journal));
    let summary = load_ok(&s, &restarted.url, &args);
    assert_loaded(&summary["collections"][0], true);
    assert_same_records("restart", &snapshot_dump(&s, "docs"), &server_dump(&restarted, "docs"), 1);
}

// ---------- 3. faults from a proxy ----------

#[test]
fn resets_503_429_and_slow_answers_are_survived() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 1000, dim: 64, space: "ip", seed: 8, docs: true }]);
    let server = harness::shared(V1);
    let proxy = Proxy::start(&server.url, "/add");
    proxy.script([
        Fault::Reset,
        Fault::Status(503, Some(1)),
        Fault::Status(429, Some(2)),
        Fault::Slow(Duration::from_secs(2)),
        Fault::Reset,
        Fault::Status(502, None),
    ]);
    let name = harness::unique("faults");
    let map = format!("docs={name}");
    let summary = load_ok(&s, &proxy.url, &["--collection", &map, "--batch-size", "100", "--concurrency", "1"]);
    assert_loaded(&summary["collections"][0], true);
    let seen = proxy.seen();
    let i429 = seen.iter().position(|x| matches!(x.fault, Some(Fault::Status(429, _)))).unwrap();
    let waited = seen[i429 + 1].at - seen[i429].at;
    assert!(waited >= Duration::from_millis(1900), "Retry-After: 2 honoured, waited {waited:?}");
    let forwarded = seen.iter().filter(|x| matches!(x.fault, None | Some(Fault::Slow(_)))).count();
    assert_eq!(forwarded, 10, "each batch reached the server once");
    let direct = verify_against(&s, &server.url, &map);
    assert_eq!(direct["against"][0]["different_count"], 0);
}

#[test]
fn truncated_answers_and_stalls_past_the_timeout_are_survived_and_permanent_ones_stop() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 600, dim: 16, space: "l2", seed: 16, docs: true }]);
    let server = harness::shared(V1);
    let proxy = Proxy::start(&server.url, "/add");
    // A truncated answer comes after the server applied the add: the retry must not double it.
    let pass = Fault::Slow(Duration::ZERO);
    proxy.script([Fault::Truncate, pass.clone(), Fault::Stall, Fault::Truncate, pass.clone(), Fault::Stall, pass]);
    let name = harness::unique("trunc");
    let map = format!("docs={name}");
    let args = ["--collection", &map, "--batch-size", "100", "--concurrency", "1", "--timeout", "2"];
    let summary = load_ok(&s, &proxy.url, &args);
    assert_loaded(&summary["collections"][0], true);
    assert_eq!(summary["collections"][0]["comparison"]["target_records"], 600);
    let seen = proxy.seen();
    let count = |pred: fn(&Option<Fault>) -> bool| seen.iter().filter(|x| pred(&x.fault)).count();
    assert_eq!(count(|f| matches!(f, Some(Fault::Truncate))), 2, "{seen:?}");
    assert_eq!(count(|f| matches!(f, Some(Fault::Stall))), 2, "{seen:?}");
    assert_eq!(seen.len(), 6 + 4, "six batches, each acknowledged once, and four faulted attempts");
    let i = seen.iter().position(|x| matches!(x.fault, Some(Fault::Stall))).unwrap();
    assert!(seen[i + 1].at - seen[i].at >= Duration::from_millis(1950), "the stall lasted until the timeout");
    assert_eq!(verify_against(&s, &server.url, &map)["against"][0]["different_count"], 0);

    // Always failing: one clear line after the bounded retries, and a rerun can resume.
    for (label, fault, extra) in [
        ("500", Fault::Status(500, None), ["--retries", "2", "--timeout", "5"]),
        ("stall", Fault::Stall, ["--retries", "2", "--timeout", "1"]),
        ("truncated", Fault::Truncate, ["--retries", "2", "--timeout", "5"]),
    ] {
        let proxy = Proxy::start(&server.url, "/add");
        proxy.always(Some(fault));
        let name = harness::unique("dead");
        let map = format!("docs={name}");
        let started = Instant::now();
        let out = run(load_cmd(&s, &proxy.url, &[&["--collection", &map, "--concurrency", "1"], &extra[..]].concat()));
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{label}: {err}");
        let last = err.trim().lines().last().unwrap_or_default();
        assert!(last.starts_with("error: ") && last.contains(&format!("collection \"{name}\", batch 0")), "{err}");
        assert!(last.contains("gave up after 3 attempts") && last.contains("rerun the same command"), "{err}");
        assert_eq!(err.matches("error: ").count(), 1, "{label}: one error line: {err}");
        assert_eq!(proxy.seen().len(), 3, "{label}: the first batch, tried three times");
        assert!(took < Duration::from_secs(30), "{label}: took {took:?}");
    }
}

#[test]
fn a_permanent_400_stops_with_the_collection_batch_and_record() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 300, dim: 8, space: "l2", seed: 9, docs: true }]);
    let server = harness::shared(V1);
    let proxy = Proxy::start(&server.url, "/add");
    proxy.always(Some(Fault::Status(400, None)));
    let name = harness::unique("refused");
    let out = run(load_cmd(&s, &proxy.url, &["--collection", &format!("docs={name}"), "--concurrency", "1"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("collection \"{name}\", batch 0")), "{err}");
    assert!(err.contains("record \"r000000\"") && err.contains("injected 400"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}

#[test]
fn a_413_splits_the_batch_and_carries_on() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 800, dim: 64, space: "l2", seed: 10, docs: true }]);
    let server = harness::shared(V1);
    let proxy = Proxy::start(&server.url, "/add");
    proxy.max_body(Some(60_000));
    let name = harness::unique("split");
    let summary = load_ok(&s, &proxy.url, &["--collection", &format!("docs={name}"), "--batch-size", "400"]);
    assert_loaded(&summary["collections"][0], true);
    assert!(proxy.seen().iter().any(|x| matches!(x.fault, Some(Fault::Status(413, _)))));
}

// ---------- journal and safety ----------

#[test]
fn resume_is_refused_when_the_target_was_recreated_or_the_snapshot_changed() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 400, dim: 8, space: "l2", seed: 11, docs: false }]);
    let server = harness::shared(V1);
    let name = harness::unique("recreated");
    let map = format!("docs={name}");
    let args = ["--collection", &map, "--batch-size", "100", "--concurrency", "1"];
    let mut c = load_cmd(&s, &server.url, &args);
    c.env("CHROMA_SNAP_FAIL_AFTER_BATCHES", "2");
    assert_eq!(run(c).status.code(), Some(1));
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    assert_eq!(harness::http(&server.url, "DELETE", &format!("{base}/{name}"), None, &[]).0, 200);
    let body = format!(r#"{{"name":"{name}"}}"#);
    assert_eq!(harness::http(&server.url, "POST", base, Some(&body), &[]).0, 200);
    let out = run(load_cmd(&s, &server.url, &args));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("recreated"), "{}", stderr(&out));
    // Touching the manifest makes it another snapshot: the journal refuses it.
    let m = s.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap().replace("\"purpose\"", "\"Purpose\"");
    std::fs::write(&m, text).unwrap();
    let out = run(load_cmd(&s, &server.url, &args));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("snapshot changed"), "{}", stderr(&out));
    load_ok(&s, &server.url, &[&args[..], &["--if-exists", "replace"]].concat());
}

#[test]
fn two_loads_cannot_share_a_journal_and_a_damaged_snapshot_sends_nothing() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 300, dim: 8, space: "l2", seed: 12, docs: false }]);
    let server = harness::shared(V1);
    let proxy = Proxy::start(&server.url, "/add");
    proxy.always(Some(Fault::Slow(Duration::from_millis(700))));
    let name = harness::unique("locked");
    let map = format!("docs={name}");
    let args = ["--collection", &map, "--batch-size", "50", "--concurrency", "1"];
    let mut first = load_cmd(&s, &proxy.url, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let journal = || -> Option<PathBuf> {
        std::fs::read_dir(s.join(".chroma-snap"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
    };
    while journal().is_none_or(|j| batch_lines(&j) == 0) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(load_cmd(&s, &proxy.url, &args));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("another load"), "{}", stderr(&out));
    assert!(first.wait().unwrap().success());
    ok(&["verify", s.to_str().unwrap()]); // the journal directory is not a stray file

    // Flip one byte of a part: nothing is sent, not even the collection.
    let part = s.join(&Snapshot::open(&s).unwrap().manifest.collections[0].parts[0].path);
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&part, bytes).unwrap();
    let other = harness::unique("damaged");
    let out = run(load_cmd(&s, &server.url, &["--collection", &format!("docs={other}")]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    assert_eq!(harness::http(&server.url, "GET", &format!("{base}/{other}"), None, &[]).0, 404);
}

#[test]
fn verify_against_names_missing_extra_and_different_records() {
    let dir = tmp();
    let s = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 200, dim: 8, space: "l2", seed: 13, docs: true }]);
    let server = harness::shared(V1);
    let name = harness::unique("tamper");
    let map = format!("docs={name}");
    load_ok(&s, &server.url, &["--collection", &map]);
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    let (_, info) = harness::http(&server.url, "GET", &format!("{base}/{name}"), None, &[]);
    let id = serde_json::from_str::<Value>(&info).unwrap()["id"].as_str().unwrap().to_owned();
    let post = |op: &str, body: &str| {
        let (st, b) = harness::http(&server.url, "POST", &format!("{base}/{id}/{op}"), Some(body), &[]);
        assert!(st < 300, "{op}: {st} {b}");
    };
    post("delete", r#"{"ids":["r000003"]}"#);
    post("add", r#"{"ids":["intruder"],"embeddings":[[1,2,3,4,5,6,7,8]]}"#);
    post("update", r#"{"ids":["r000010"],"documents":["changed"]}"#);
    let out = snap(&["verify", s.to_str().unwrap(), "--against", &server.url, "--collection", &map]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("1 records missing: \"r000003\""), "{err}");
    assert!(err.contains("1 records not in the snapshot: \"intruder\""), "{err}");
    assert!(err.contains("record \"r000010\": document \"changed\""), "{err}");
}

#[test]
fn append_upserts_into_a_collection_holding_other_data() {
    let dir = tmp();
    let big = synth_snapshot(dir.path(), &[Synth { name: "docs", n: 450, dim: 16, space: "l2", seed: 14, docs: true }]);
    let small =
        synth_snapshot(dir.path(), &[Synth { name: "docs", n: 300, dim: 16, space: "l2", seed: 15, docs: true }]);
    let server = harness::shared(V1);
    let name = harness::unique("append");
    let map = format!("docs={name}");
    load_ok(&big, &server.url, &["--collection", &map]);
    let summary = load_ok(&small, &server.url, &["--collection", &map, "--if-exists", "append"]);
    let c = &summary["collections"][0];
    assert_eq!((c["action"].as_str(), c["op"].as_str()), (Some("appended"), Some("upsert")));
    assert_eq!(c["comparison"]["extra_count"], 150, "{c}");
    assert_eq!(c["comparison"]["subset"], true);
    // On its own, verify --against says the collection is not exactly the smaller snapshot.
    let out = snap(&["verify", small.to_str().unwrap(), "--against", &server.url, "--collection", &map]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("150 records not in the snapshot"), "{}", stderr(&out));
}
