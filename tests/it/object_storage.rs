//! Snapshots on object storage, against a real S3 server that checks signatures (s3s-fs from
//! `bin/s3-server`): the store's put/get/range/list/remove and multipart upload, `verify` and
//! `inspect` of a snapshot in a bucket (a flipped byte and a missing part named), inspect reading
//! only what it samples, one clear line for wrong credentials, a missing bucket and an unreachable
//! endpoint, and locations with a scheme never taken for local directories.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use chroma_snap::record::{RecordPage, RecordRef};
use chroma_snap::snapshot::SnapshotError;
use chroma_snap::snapshot::store::{RemoteStore, Store, hash_blob};
use chroma_snap::snapshot::verify::{NoCheck, verify_store};
use serde_json::Value;

use crate::harness::unique;
use crate::s3_server::{BUCKET, S3Server, s3, upload};
use crate::support::{SnapCollection, stderr, write_snapshot, xorshift};

/// A one-collection snapshot of `n` records of dimension `dim` (incompressible embeddings) in
/// `root/snap`.
fn synthetic(root: &Path, n: usize, dim: usize) -> PathBuf {
    let mut rng = 0x5EED_u64;
    let mut page = RecordPage::with_capacity(dim, n);
    for i in 0..n {
        let emb: Vec<f32> = (0..dim).map(|_| (xorshift(&mut rng) >> 40) as f32 / (1u64 << 24) as f32).collect();
        let (id, doc) = (format!("r{i:06}"), format!("document {i}"));
        let meta = format!(r#"{{"i":{i}}}"#);
        page.push(RecordRef { id: &id, embedding: &emb, document: Some(&doc), uri: None, metadata: Some(&meta) });
    }
    let col =
        SnapCollection { name: "docs".into(), dim, space: "l2".into(), metadata: None, configuration: None, page };
    write_snapshot(&root.join("snap"), vec![col])
}

/// A fresh prefix of the shared bucket.
fn fresh_url(what: &str) -> String {
    format!("s3://{BUCKET}/{}", unique(what))
}

/// The error lines of a finished command (log lines aside).
fn error_lines(o: &Output) -> Vec<String> {
    stderr(o).lines().filter(|l| !l.contains(" INFO ") && !l.contains(" WARN ")).map(str::to_owned).collect()
}

/// Exit `code` and exactly one `error:` line holding every needle, and never the secret key.
fn one_line_error(o: &Output, code: i32, needles: &[&str]) {
    let lines = error_lines(o);
    assert_eq!(o.status.code(), Some(code), "{lines:?}");
    assert_eq!(lines.len(), 1, "one error line expected: {lines:?}");
    assert!(lines[0].starts_with("error: "), "{lines:?}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {lines:?}");
    }
    let all = format!("{}{}", stderr(o), String::from_utf8_lossy(&o.stdout));
    assert!(!all.contains(crate::s3_server::SECRET_KEY), "the secret key was printed: {all}");
}

#[test]
fn s3_store_puts_gets_ranges_lists_and_removes() {
    let server = s3();
    let store = server.store(&fresh_url("store"));
    // 21 MiB in odd-sized writes: three parts of a multipart upload.
    let data: Vec<u8> = {
        let mut s = 7u64;
        (0..21 << 20).map(|_| (xorshift(&mut s) >> 56) as u8).collect()
    };
    let mut up = store.create("parts/0000/part-000000.parquet").unwrap();
    for chunk in data.chunks(1_000_003) {
        up.write_all(chunk).unwrap();
    }
    assert!(store.list("").unwrap().is_empty(), "invisible before commit");
    up.commit().unwrap();
    // An upload dropped before its commit never appears.
    let mut dropped = store.create("parts/0000/part-000001.parquet").unwrap();
    dropped.write_all(&data[..1000]).unwrap();
    drop(dropped);
    store.put_atomic("manifest.json", b"{}").unwrap();
    store.put_atomic(".chroma-snap/state", b"x").unwrap();

    let keys: Vec<(String, u64)> = store.list(".chroma-snap").unwrap().into_iter().map(|e| (e.key, e.size)).collect();
    assert_eq!(
        keys,
        [("manifest.json".to_owned(), 2), ("parts/0000/part-000000.parquet".to_owned(), data.len() as u64)]
    );
    assert_eq!(store.list("").unwrap().len(), 3);

    let blob = store.open("parts/0000/part-000000.parquet").unwrap();
    assert_eq!(parquet::file::reader::Length::len(&blob), data.len() as u64);
    for (at, n) in [(0usize, 10usize), (5 << 20, 3 << 20), (data.len() - 7, 7), (9 << 20, 12 << 20)] {
        let got = parquet::file::reader::ChunkReader::get_bytes(&blob, at as u64, n).unwrap();
        assert_eq!(&got[..], &data[at..at + n], "range {at}+{n}");
    }
    let mut tail = Vec::new();
    blob.reader_at(data.len() as u64 - 100).read_to_end(&mut tail).unwrap();
    assert_eq!(tail, &data[data.len() - 100..]);
    let (hash, bytes) = hash_blob(&blob).unwrap();
    assert_eq!((hash.0, bytes), (*blake3::hash(&data).as_bytes(), data.len() as u64));

    assert_eq!(store.read_small("manifest.json", 2).unwrap(), b"{}");
    let err = store.read_small("manifest.json", 1).unwrap_err();
    assert!(matches!(err, SnapshotError::TooLarge { .. }), "{err}");
    let missing = store.open("parts/nope.parquet").unwrap_err();
    assert!(
        matches!(&missing, SnapshotError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{missing}"
    );
    assert!(store.open("../escape").is_err());

    store.remove_prefix("parts").unwrap();
    let left: Vec<String> = store.list("").unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(left, [".chroma-snap/state", "manifest.json"]);
    store.remove_prefix("").unwrap();
    assert!(store.list("").unwrap().is_empty());
}

/// A snapshot written locally by the library, copied into a fresh prefix.
fn uploaded(root: &Path, n: usize, dim: usize) -> (PathBuf, String, RemoteStore) {
    let local = synthetic(root, n, dim);
    let url = fresh_url("snap");
    let store = s3().store(&url);
    upload(&local, &store);
    (local, url, store)
}

#[test]
fn verify_and_inspect_read_a_snapshot_from_s3_and_name_damage() {
    let t = tempfile::tempdir().unwrap();
    let (local, url, store) = uploaded(t.path(), 3000, 16);
    let server = s3();

    let o = server.command().args(["verify", &url]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("ok  docs: 1 parts, 3000 records") && text.contains(&format!("{url}: intact")), "{text}");

    let json = |args: &[&str]| -> Value {
        let o = server.command().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let remote = json(&["inspect", &url, "--json"]);
    let on_disk = json(&["inspect", local.to_str().unwrap(), "--json"]);
    assert_eq!(remote, on_disk, "inspect reads the same from s3 as from disk");
    assert_eq!(remote["samples"].as_array().unwrap().len(), 3);

    // A flipped byte in the remote part.
    let part = "parts/0000/part-000000.parquet";
    let mut bytes = std::fs::read(local.join(part)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    store.put_atomic(part, &bytes).unwrap();
    let o = server.command().args(["verify", &url]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("collection \"docs\", part {part}: blake3")) && err.contains("(corrupted)"), "{err}");

    // The part gone.
    store.remove_prefix(part).unwrap();
    let o = server.command().args(["verify", &url]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("part {part}: missing")), "{}", stderr(&o));
    store.remove_prefix("").unwrap();
}

#[test]
fn inspect_reads_only_the_sampled_row_group_and_verify_downloads_each_part_once() {
    let t = tempfile::tempdir().unwrap();
    // 24,000 records of dimension 384: a part of about 29 MiB in several row groups.
    let (_local, url, _) = uploaded(t.path(), 24_000, 384);
    let store = s3().store(&url);
    let part_bytes: u64 = store.list("").unwrap().iter().filter(|e| e.key.ends_with(".parquet")).map(|e| e.size).sum();
    assert!(part_bytes > 25 << 20, "part of {part_bytes} bytes");
    let i = chroma_snap::inspect::inspect(Arc::new(store.clone()), 3).unwrap();
    assert_eq!((i.samples.len(), i.manifest.collections[0].count), (3, 24_000));
    let fetched = store.bytes_fetched();
    // The manifest, the footer, and one read-ahead window (8 MiB) from the first row group.
    assert!(fetched < 9 << 20, "inspect fetched {fetched} of {part_bytes} bytes");

    // verify downloads each part once (into a temporary file), not once per pass.
    let store = s3().store(&url);
    let report = verify_store(Arc::new(store.clone()), &NoCheck).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let fetched = store.bytes_fetched();
    assert!(fetched >= part_bytes && fetched < part_bytes + (1 << 20), "verify fetched {fetched} for {part_bytes}");
    s3().store(&url).remove_prefix("").unwrap();
}

#[test]
fn wrong_credentials_a_missing_bucket_and_an_unreachable_endpoint_are_one_clear_line() {
    let t = tempfile::tempdir().unwrap();
    let (_local, url, store) = uploaded(t.path(), 10, 4);
    let server = s3();
    let with_env = |env: Vec<(&'static str, String)>, args: &[&str]| {
        let mut cmd = server.command();
        cmd.envs(env);
        cmd.args(args).output().unwrap()
    };
    for cmd in ["verify", "inspect"] {
        let o = with_env(server.env_with(crate::s3_server::ACCESS_KEY, "not-the-secret"), &[cmd, &url]);
        one_line_error(
            &o,
            1,
            &[&url, "access denied (SignatureDoesNotMatch)", "from the environment (AWS_ACCESS_KEY_ID,"],
        );
        let o = with_env(server.env_with("nobody", "not-the-secret"), &[cmd, &url]);
        one_line_error(&o, 1, &[&url, "access denied ("]);

        let o = with_env(server.env(), &[cmd, "s3://no-such-bucket/snap"]);
        one_line_error(&o, 2, &["s3://no-such-bucket/snap: the bucket does not exist (NoSuchBucket)"]);

        let o = with_env(server.env(), &[cmd, &format!("s3://{BUCKET}/{}", unique("empty"))]);
        one_line_error(&o, 2, &["is not a snapshot: it has no manifest.json"]);

        let closed = format!("http://127.0.0.1:{}", closed_port());
        let start = std::time::Instant::now();
        let o = with_env(vec![("AWS_ENDPOINT_URL", closed.clone())], &[cmd, &url]);
        one_line_error(&o, 1, &[&url, "cannot reach the object store", &format!("(endpoint {closed})")]);
        assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    }
    store.remove_prefix("").unwrap();
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_location_with_a_scheme_is_never_a_local_directory() {
    let t = tempfile::tempdir().unwrap();
    let cwd = t.path();
    let snap = synthetic(cwd, 5, 4);
    let spec = crate::harness::repo().join("fixtures/specs/four-collections.toml");
    let run = |args: &[&str]| {
        let mut cmd = S3Server::plain_command();
        cmd.current_dir(cwd).args(args).output().unwrap()
    };
    let snap = snap.to_str().unwrap();
    let spec = spec.to_str().unwrap();
    for args in [
        vec!["transform", snap, "--spec", spec, "--out", "foo://x"],
        vec!["transform", "foo://x", "--spec", spec, "--out", "out"],
    ] {
        let o = run(&args);
        one_line_error(&o, 2, &[r#"foo://x: unsupported scheme "foo""#]);
    }
    for cmd in ["verify", "inspect"] {
        let o = run(&[cmd, "foo://x"]);
        one_line_error(&o, 2, &[r#"foo://x: unsupported scheme "foo""#]);
    }
    let o = run(&["export", "--from", "http://127.0.0.1:9", "--out", "foo://x"]);
    one_line_error(&o, 2, &[r#"foo://x: unsupported scheme "foo""#]);
    let o = run(&["load", "foo://x", "--to", "http://127.0.0.1:9"]);
    one_line_error(&o, 2, &[r#"foo://x: unsupported scheme "foo""#]);
    // Object storage is taken: these fail on the unreachable source, or on an endpoint where
    // nothing listens (a test never lets a command reach for a real cloud endpoint).
    let o = run(&["export", "--from", "http://127.0.0.1:9", "--out", "s3://bucket/x"]);
    one_line_error(&o, 1, &["cannot reach ChromaDB at http://127.0.0.1:9"]);
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let unreachable = |args: &[&str]| {
        S3Server::plain_command()
            .current_dir(cwd)
            .envs([("AWS_ENDPOINT_URL", closed.as_str()), ("AWS_ALLOW_HTTP", "true")])
            .envs([("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_REGION", "us-east-1")])
            .args(args)
            .output()
            .unwrap()
    };
    let o = unreachable(&["load", "s3://bucket/x", "--to", "http://127.0.0.1:9"]);
    one_line_error(&o, 1, &["s3://bucket/x/manifest.json: cannot reach the object store"]);
    let o = unreachable(&["transform", snap, "--spec", spec, "--out", "s3://bucket/x"]);
    one_line_error(&o, 1, &["s3://bucket/x: cannot reach the object store"]);
    let mut left: Vec<String> =
        std::fs::read_dir(cwd).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["snap"], "nothing but the input in the working directory");
}
