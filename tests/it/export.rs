//! Export against real servers: bit-exact against the official Python client, readable by
//! pyarrow and DuckDB, refused inputs and unreachable servers reported in one clear line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chroma_snap::snapshot::convert::BatchView;
use chroma_snap::snapshot::reader::Snapshot;
use serde_json::{Map, Value, json};

use crate::harness::{self, Server, V0, V1, VERSIONS};

/// Runs the chroma-snap binary.
pub fn snap(args: &[&str]) -> Output {
    Command::new(harness::bin()).args(args).env("NO_COLOR", "1").output().expect("run chroma-snap")
}

pub fn ok(args: &[&str]) -> String {
    let out = snap(args);
    assert!(
        out.status.success(),
        "chroma-snap {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Python's `float.hex()` of a double, to compare with `tests/py/dump_collection.py`.
pub fn py_float_hex(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let bits = x.to_bits();
    let (exp, mant) = ((bits >> 52) & 0x7ff, bits & ((1 << 52) - 1));
    match exp {
        0 if mant == 0 => format!("{sign}0x0.0p+0"),
        0 => format!("{sign}0x0.{mant:013x}p-1022"),
        e => format!("{sign}0x1.{mant:013x}p{:+}", e as i64 - 1023),
    }
}

pub fn typed(v: &Value) -> Value {
    match v {
        Value::Bool(b) => json!({"type": "bool", "value": b}),
        Value::Number(n) if n.is_f64() => json!({"type": "float", "value": py_float_hex(n.as_f64().unwrap())}),
        Value::Number(n) => json!({"type": "int", "value": n}),
        Value::String(s) => json!({"type": "str", "value": s}),
        Value::Array(a) => json!({"type": "list", "value": a.iter().map(typed).collect::<Vec<_>>()}),
        other => json!({"type": "other", "value": other.to_string()}),
    }
}

/// The records of one snapshot collection in the dump's shape, sorted by id.
pub fn snapshot_rows(dir: &Path, name: &str) -> (Value, Vec<Value>) {
    let snap = Snapshot::open(dir).expect("open snapshot");
    let c = snap.manifest.collection(name).unwrap_or_else(|| panic!("{name} not in the snapshot")).clone();
    let mut rows = Vec::new();
    for batch in snap.collection_batches(&c) {
        let batch = batch.expect("read batch");
        for r in BatchView::new(&batch).records() {
            let meta: Option<Map<String, Value>> = r.metadata.map(|m| serde_json::from_str(m).expect("metadata JSON"));
            rows.push(json!({
                "id": r.id,
                "embedding_f32_hex": r.embedding.iter().map(|v| format!("{:08x}", v.to_bits())).collect::<Vec<_>>(),
                "document": r.document,
                "uri": r.uri,
                "metadata": meta.map(|m| m.iter().map(|(k, v)| (k.clone(), typed(v))).collect::<Map<_, _>>()),
            }));
        }
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    (json!({"count": c.count, "space": c.space, "metadata": c.metadata}), rows)
}

/// Compares a snapshot collection with what the official client reads from the server.
fn assert_same_as_client(server: &Server, dir: &Path, name: &str) {
    let dump = harness::dump(server, name);
    let mut lines = dump.lines();
    let header: Value = serde_json::from_str(lines.next().expect("dump header")).expect("header JSON");
    let client_rows: Vec<Value> = lines.map(|l| serde_json::from_str(l).expect("dump line")).collect();
    let (meta, rows) = snapshot_rows(dir, name);
    assert_eq!(meta["count"], header["count"], "{} {name}: count", server.version);
    assert_eq!(meta["space"], header["space"], "{} {name}: distance space", server.version);
    assert_eq!(rows.len(), client_rows.len(), "{} {name}: rows", server.version);
    for (mine, theirs) in rows.iter().zip(&client_rows) {
        assert_eq!(mine, theirs, "{} {name}: record differs", server.version);
    }
}

fn seeded_names(counts: &str) -> Vec<(String, u64)> {
    let v: Value = serde_json::from_str(counts.lines().last().expect("seed output")).expect("seed JSON");
    v.as_object().expect("seed map").iter().map(|(k, n)| (k.clone(), n.as_u64().expect("count"))).collect()
}

fn export_is_bit_exact(version: &'static str) {
    let server = harness::shared(version);
    let prefix = harness::unique("exact");
    let seeded = seeded_names(&harness::seed_edge_cases(server, &prefix));
    assert!(seeded.len() >= 6, "{seeded:?}");
    let dir = tmp();
    let out = dir.path().join("snap");
    let mut args = vec!["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--json", "--quiet"];
    for (name, _) in &seeded {
        args.extend(["--collection", name]);
    }
    let summary: Value = serde_json::from_str(&ok(&args)).expect("summary JSON");
    let snap = Snapshot::open(&out).expect("snapshot");
    for (name, count) in &seeded {
        let c = snap.manifest.collection(name).expect("collection in manifest");
        assert_eq!(c.count, *count, "{version} {name}");
        assert_eq!((c.source_count_before, c.source_count_after), (Some(*count), Some(*count)));
        assert!(!c.changed_during_export);
        assert_same_as_client(server, &out, name);
    }
    assert_eq!(summary["records"].as_u64(), Some(seeded.iter().map(|(_, n)| n).sum::<u64>()));
    assert_eq!(snap.manifest.source.as_ref().unwrap().api, if version == V1 { "v2" } else { "v1" });
    let spaces: Vec<&str> = snap.manifest.collections.iter().map(|c| c.space.as_str()).collect();
    for s in ["cosine", "l2", "ip"] {
        assert!(spaces.contains(&s), "{version}: no {s} collection in {spaces:?}");
    }
    let dims: Vec<Option<usize>> = snap.manifest.collections.iter().map(|c| c.dimension).collect();
    for d in [3, 768, 1536] {
        assert!(dims.contains(&Some(d)), "{version}: no {d}-dim collection in {dims:?}");
    }
    ok(&["verify", out.to_str().unwrap()]);
}

#[test]
fn export_is_bit_exact_from_1_5_9() {
    export_is_bit_exact(V1);
}

#[test]
fn export_is_bit_exact_from_0_4_24() {
    export_is_bit_exact(V0);
}

/// More than 40,000 records: more than one id page, many record pages, several in flight.
#[test]
fn export_of_a_big_collection_is_exact() {
    for version in VERSIONS {
        let server = harness::shared(version);
        let prefix = harness::unique("big");
        harness::run_py(version, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", "40100"]);
        let name = format!("{prefix}_big");
        let dir = tmp();
        let out = dir.path().join("snap");
        ok(&["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--collection", &name, "--quiet"]);
        assert_eq!(Snapshot::open(&out).unwrap().manifest.collections[0].count, 40_100);
        assert_same_as_client(server, &out, &name);
    }
}

fn exported_fixture() -> (tempfile::TempDir, PathBuf) {
    let server = harness::shared(V1);
    let prefix = harness::unique("read");
    let seeded = seeded_names(&harness::seed_edge_cases(server, &prefix));
    let dir = tmp();
    let out = dir.path().join("snap");
    let mut args = vec!["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--quiet"];
    for (name, _) in &seeded {
        args.extend(["--collection", name]);
    }
    ok(&args);
    (dir, out)
}

#[test]
fn pyarrow_and_duckdb_read_every_part() {
    let (_keep, out) = exported_fixture();
    let script = r#"
import glob, json, sys
import pyarrow as pa, pyarrow.parquet as pq, duckdb
root = sys.argv[1]
manifest = json.load(open(root + "/manifest.json"))
total = 0
for c in manifest["collections"]:
    for p in c["parts"]:
        t = pq.read_table(root + "/" + p["path"])
        assert t.column_names == ["id", "embedding", "document", "uri", "metadata"], t.column_names
        et = t.schema.field("embedding").type
        assert pa.types.is_fixed_size_list(et) and et.list_size == c["dimension"] and pa.types.is_float32(et.value_type), et
        assert t.num_rows == p["rows"]
        total += t.num_rows
con = duckdb.connect()
n = con.execute("select count(*) from read_parquet(?)", [root + "/parts/*/*.parquet"]).fetchone()[0]
assert n == total, (n, total)
hits = con.execute(
    "select id, len(embedding) from read_parquet(?) where json_extract_string(metadata, '$.even') = 'true'",
    [root + "/parts/*/*.parquet"]).fetchall()
print(json.dumps({"rows": total, "even": len(hits), "dims": sorted({d for _, d in hits})}))
"#;
    let dir = tmp();
    let py = dir.path().join("read.py");
    std::fs::write(&py, script).unwrap();
    let out_json = harness::run_py(V1, py.to_str().unwrap(), &[out.to_str().unwrap()]);
    let v: Value = serde_json::from_str(out_json.trim()).expect("reader output");
    let snap = Snapshot::open(&out).unwrap();
    let total: u64 = snap.manifest.collections.iter().map(|c| c.count).sum();
    assert_eq!(v["rows"].as_u64(), Some(total));
    // Count the same filter from the snapshot with our own reader.
    let mut expected = 0;
    for c in &snap.manifest.collections {
        for b in snap.collection_batches(c) {
            let b = b.unwrap();
            expected += BatchView::new(&b)
                .records()
                .filter(|r| r.metadata.is_some_and(|m| serde_json::from_str::<Value>(m).unwrap()["even"] == true))
                .count();
        }
    }
    assert!(expected > 0, "the fixture has records with even = true");
    assert_eq!(v["even"].as_u64(), Some(expected as u64));
}

fn first_part(out: &Path) -> PathBuf {
    let snap = Snapshot::open(out).unwrap();
    let c = snap.manifest.collections.iter().find(|c| !c.parts.is_empty()).expect("a collection with parts");
    out.join(&c.parts[0].path)
}

fn verify_fails_with(out: &Path, needle: &str) {
    let res = snap(&["verify", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "verify exit code; stderr:\n{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
}

#[test]
fn verify_catches_flipped_byte_truncation_and_missing_part() {
    let (_keep, out) = exported_fixture();
    ok(&["verify", out.to_str().unwrap()]);
    let part = first_part(&out);
    let rel = part.strip_prefix(&out).unwrap().to_str().unwrap().to_owned();
    let original = std::fs::read(&part).unwrap();

    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&part, &flipped).unwrap();
    verify_fails_with(&out, &format!("part {rel}: blake3"));

    std::fs::write(&part, &original[..original.len() - 100]).unwrap();
    verify_fails_with(
        &out,
        &format!("part {rel}: {} bytes, the manifest says {}", original.len() - 100, original.len()),
    );

    std::fs::remove_file(&part).unwrap();
    verify_fails_with(&out, &format!("part {rel}: missing"));

    std::fs::write(&part, &original).unwrap();
    ok(&["verify", out.to_str().unwrap()]);
}

/// One line on stderr, starting with `error:`, exit `code`, and no snapshot written.
fn fails_in_one_line(args: &[&str], code: i32, needle: &str) {
    let started = std::time::Instant::now();
    let res = snap(args);
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(res.status.code(), Some(code), "{args:?}:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains(" INFO ")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one error line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{args:?}: {needle:?} not in {stderr}");
    assert!(started.elapsed().as_secs() < 30, "{args:?} took {:?}", started.elapsed());
}

#[test]
fn connection_and_server_errors_are_one_clear_line() {
    let dir = tmp();
    let out = dir.path().join("snap");
    let out = out.to_str().unwrap();
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}");
    fails_in_one_line(&["export", "--from", &dead, "--out", out], 1, &format!("cannot reach ChromaDB at {dead}"));

    // Something that is not Chroma answers on the port.
    let not_chroma = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let wrong = format!("http://127.0.0.1:{}", not_chroma.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in not_chroma.incoming().flatten() {
            use std::io::{Read, Write};
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        }
    });
    fails_in_one_line(&["export", "--from", &wrong, "--out", out], 1, "does not look like a ChromaDB server");

    let v1 = harness::shared(V1);
    fails_in_one_line(
        &["export", "--from", &v1.url, "--out", out, "--collection", "no_such_collection_here"],
        1,
        "collection \"no_such_collection_here\" not found",
    );
    fails_in_one_line(&["export", "--from", &v1.url, "--out", out, "--api", "v1"], 1, "does not serve the v1 API");

    let v0 = harness::shared(V0);
    fails_in_one_line(&["export", "--from", &v0.url, "--out", out, "--api", "v2"], 1, "does not serve the v2 API");
    fails_in_one_line(
        &["export", "--from", &v0.url, "--out", out, "--collection", "no_such_collection_here"],
        1,
        "collection \"no_such_collection_here\" not found",
    );
    assert!(!Path::new(out).join("manifest.json").exists());
}

#[test]
fn token_auth_on_the_legacy_server() {
    let token = "tok-9f8e7d6c5b4a";
    let server = Server::start_with_token(V0, token);
    let dir = tmp();
    let out = dir.path().join("snap");
    let out_s = out.to_str().unwrap();
    fails_in_one_line(&["export", "--from", &server.url, "--out", out_s], 1, "refused the credentials (401)");
    let wrong = snap(&["export", "--from", &server.url, "--out", out_s, "--token", "nope"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("nope"), "the token must not be printed");
    // Bearer token via flag, via environment, and via a custom header all work.
    ok(&["export", "--from", &server.url, "--out", out_s, "--token", token, "--quiet"]);
    let out2 = dir.path().join("snap2");
    let res = Command::new(harness::bin())
        .args(["export", "--from", &server.url, "--out", out2.to_str().unwrap(), "--quiet"])
        .env("CHROMA_TOKEN", token)
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let auth = format!("Authorization: Bearer {token}");
    let out3 = dir.path().join("snap3");
    ok(&["export", "--from", &server.url, "--out", out3.to_str().unwrap(), "--header", &auth, "--quiet"]);
    for d in [&out, &out2, &out3] {
        let manifest = std::fs::read_to_string(d.join("manifest.json")).unwrap();
        assert!(!manifest.contains(token), "the token leaked into {}", d.display());
    }
}

#[test]
fn credentials_in_the_url_never_reach_the_manifest() {
    let server = harness::shared(V1);
    let prefix = harness::unique("cred");
    harness::seed_edge_cases(server, &prefix);
    let dir = tmp();
    let out = dir.path().join("snap");
    let url = server.url.replace("http://", "http://admin:hunter2@");
    let name = format!("{prefix}_unicode");
    let res = snap(&["export", "--from", &url, "--out", out.to_str().unwrap(), "--collection", &name]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    for text in [manifest.as_str(), &String::from_utf8_lossy(&res.stderr), &String::from_utf8_lossy(&res.stdout)] {
        assert!(!text.contains("hunter2") && !text.contains("admin"), "credentials leaked:\n{text}");
    }
    assert!(manifest.contains(&format!("\"url\": \"{}\"", server.url)));
}

#[test]
fn an_export_never_overwrites_and_cleans_its_own_leftovers() {
    let server = harness::shared(V1);
    let prefix = harness::unique("redo");
    harness::seed_edge_cases(server, &prefix);
    let name = format!("{prefix}_unicode");
    let dir = tmp();
    let out = dir.path().join("snap");
    let out_s = out.to_str().unwrap();
    ok(&["export", "--from", &server.url, "--out", out_s, "--collection", &name, "--quiet"]);
    fails_in_one_line(
        &["export", "--from", &server.url, "--out", out_s, "--collection", &name],
        2,
        "already holds a snapshot",
    );

    // A directory with foreign files is refused.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    fails_in_one_line(
        &["export", "--from", &server.url, "--out", foreign.to_str().unwrap(), "--collection", &name],
        2,
        "is not empty and holds no snapshot",
    );

    // The leftovers of an interrupted export (marker, half-written part, no manifest) are replaced.
    let redo = dir.path().join("redo");
    std::fs::create_dir_all(redo.join(".chroma-snap")).unwrap();
    std::fs::write(redo.join(".chroma-snap/export-in-progress"), "").unwrap();
    std::fs::create_dir_all(redo.join("parts/0000")).unwrap();
    std::fs::write(redo.join("parts/0000/part-000000.parquet.tmp"), "half").unwrap();
    ok(&["export", "--from", &server.url, "--out", redo.to_str().unwrap(), "--collection", &name, "--quiet"]);
    ok(&["verify", redo.to_str().unwrap()]);
    assert!(!redo.join(".chroma-snap").exists());
    let a = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let b = std::fs::read_to_string(redo.join("manifest.json")).unwrap();
    let digest = |m: &str| serde_json::from_str::<Value>(m).unwrap()["collections"][0]["records_digest"].clone();
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn offset_paging_gives_the_same_records_as_id_paging() {
    for version in VERSIONS {
        let server = harness::shared(version);
        let prefix = harness::unique("paging");
        let seeded = seeded_names(&harness::seed_edge_cases(server, &prefix));
        let dir = tmp();
        let digests = |paging: &str| {
            let out = dir.path().join(paging);
            let mut args = vec!["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--quiet"];
            args.extend(["--paging", paging, "--page-size", "37"]);
            for (name, _) in &seeded {
                args.extend(["--collection", name]);
            }
            ok(&args);
            let m = Snapshot::open(&out).unwrap().manifest;
            assert!(m.collections.iter().all(|c| !c.changed_during_export), "{version} {paging}");
            m.collections.iter().map(|c| (c.name.clone(), c.count, c.records_digest.clone())).collect::<Vec<_>>()
        };
        assert_eq!(digests("offset"), digests("ids"), "{version}");
    }
}
