//! The README's first command, end to end: `bin/demo` prints the migration's figures, leaves the
//! target holding the four collections with the 12-field metadata, and killing it half-way
//! leaves no server behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness;

const FIELDS: [&str; 11] = [
    "source",
    "source_file",
    "source_line",
    "author",
    "collection_type",
    "category",
    "language",
    "authenticity_score",
    "confidence_level",
    "disputed",
    "if_citation_uri",
];

fn line_value<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
        .trim()
}

#[test]
fn the_demo_migrates_the_legacy_chunks_into_four_collections() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(harness::repo().join("bin/demo"))
        .args(["--out", dir.path().to_str().unwrap(), "--keep-servers", "--owner-pid"])
        .arg(std::process::id().to_string())
        .current_dir(harness::repo())
        .output()
        .expect("run bin/demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "bin/demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let pids: Vec<String> = line_value(&stdout, "DEMO_SERVER_PIDS=").split(' ').map(str::to_owned).collect();
    let stop = || {
        for pid in &pids {
            let _ = Command::new(harness::repo().join("bin/chroma-server")).args(["stop", pid]).status();
        }
    };

    assert!(line_value(&stdout, "exported    ").starts_with("9,832 chunks from 8 legacy collections"), "{stdout}");
    assert!(line_value(&stdout, "transformed ").starts_with("9,687 passed (98.5%), 145 rejected ("), "{stdout}");
    let expected =
        [("sergio_personality", 2318), ("sergio_rhetorical", 1870), ("sergio_humor", 2091), ("sergio_corpus", 3408)];
    for (name, n) in expected {
        let loaded = stdout.lines().find(|l| l.starts_with("loaded") && l.contains(name)).expect("loaded line");
        assert!(loaded.contains(&format!("{} records", thousands(n))), "{loaded}");
        assert!(stdout.contains(&format!("ok  {name} = {name}: {n} records")), "{name} not verified:\n{stdout}");
    }
    assert!(stdout.contains("verified    target identical to the transformed snapshot"), "{stdout}");

    // Read the target back over HTTP: counts, the distance space, and the 12-field metadata.
    let target = line_value(&stdout, "1.5.9 target:").to_owned();
    let base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    for (name, n) in expected {
        let (status, body) = harness::http(&target, "GET", &format!("{base}/{name}"), None, &[]);
        assert_eq!(status, 200, "{name}: {body}");
        let c: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(c["configuration_json"]["hnsw"]["space"], "cosine", "{name}");
        let id = c["id"].as_str().unwrap();
        let (_, count) = harness::http(&target, "GET", &format!("{base}/{id}/count"), None, &[]);
        assert_eq!(count.trim(), n.to_string(), "{name}");
        let (_, page) = harness::http(
            &target,
            "POST",
            &format!("{base}/{id}/get"),
            Some(r#"{"limit":50,"include":["metadatas"]}"#),
            &[],
        );
        let page: Value = serde_json::from_str(&page).unwrap();
        for m in page["metadatas"].as_array().unwrap() {
            for f in FIELDS {
                assert!(m.get(f).is_some_and(|v| !v.is_null()), "{name}: field {f} missing in {m}");
            }
            let lang = m["language"].as_str().unwrap();
            assert!(["es", "en", "es_en"].contains(&lang), "{name}: language {lang}");
            let score = m["authenticity_score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score), "{name}: score {score}");
            assert!(m.as_object().unwrap().len() >= 12, "{name}: fewer than 12 fields in {m}");
        }
    }
    stop();
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn listening(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(300)).is_ok()
}

#[test]
fn killing_the_demo_half_way_leaves_no_server_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(harness::repo().join("bin/demo"))
        .args(["--out", dir.path().to_str().unwrap()])
        .current_dir(harness::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bin/demo");
    let mut urls = Vec::new();
    let reader = BufReader::new(child.stdout.take().unwrap());
    for line in reader.lines() {
        let line = line.unwrap();
        for prefix in ["legacy source:", "1.5.9 target:"] {
            if let Some(u) = line.strip_prefix(prefix) {
                urls.push(u.trim().to_owned());
            }
        }
        if line.contains("seeding the legacy server") {
            break;
        }
    }
    assert_eq!(urls.len(), 2, "the demo did not start both servers: {urls:?}");
    assert!(urls.iter().all(|u| listening(u)));
    child.kill().expect("SIGKILL the demo");
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while urls.iter().any(|u| listening(u)) {
        assert!(Instant::now() < deadline, "servers {urls:?} outlived the killed demo");
        std::thread::sleep(Duration::from_millis(200));
    }
}
