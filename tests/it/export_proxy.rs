//! Export through a fault-injecting proxy in front of a real server: resets, truncated answers,
//! 429/503 with Retry-After, 500s and a stall past the timeout are survived with exactly the data
//! of an unfaulted export; a server that keeps failing, stalls for good or dies stops the export
//! with one clear error line after bounded retries and time, and leaves no manifest.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::export::{ok, snap, tmp};
use crate::harness::{self, Server, V1};
use crate::proxy::{Fault, Proxy};
use crate::support::parts_and_digest;

fn export_args<'a>(url: &'a str, out: &'a Path, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["export", "--from", url, "--out", out.to_str().unwrap(), "--collection", name, "--quiet"];
    a.extend_from_slice(extra);
    if !extra.contains(&"--page-size") {
        a.extend(["--page-size", "250"]);
    }
    a.extend(["--concurrency", "1"]);
    a
}

/// Asserts a failed export: exit 1, a last line `error: …` naming the collection and `cause`,
/// no other error line, and a directory that is not a snapshot.
fn assert_failed_cleanly(o: &Output, out: &Path, name: &str, cause: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains(&format!("collection {name:?}")), "{err}");
    assert!(last.contains(cause), "no {cause:?} in {last:?}");
    assert_eq!(err.matches("error: ").count(), 1, "one error line: {err}");
    assert!(!out.join("manifest.json").exists(), "a failed export wrote a manifest");
    assert_eq!(snap(&["verify", out.to_str().unwrap()]).status.code(), Some(2), "a failed export is not a snapshot");
}

fn seeded(server: &Server, tag: &str, n: usize) -> String {
    let prefix = harness::unique(tag);
    harness::run_py(V1, "tests/py/seed_edge_cases.py", &[&server.url, &prefix, "--big", &n.to_string()]);
    format!("{prefix}_big")
}

#[test]
fn export_survives_resets_truncation_429_503_500_and_a_stall_with_identical_data() {
    let server = harness::shared(V1);
    let name = seeded(server, "pxy", 3000);
    let dir = tmp();
    let reference = dir.path().join("reference");
    ok(&export_args(&server.url, &reference, &name, &[]));

    let proxy = Proxy::start(&server.url, "/get");
    // At most three faults in a row, so that no request runs out of retries; `pass` forwards.
    let pass = Fault::Slow(Duration::ZERO);
    let faults = [
        Fault::Reset,
        Fault::Truncate,
        pass.clone(),
        Fault::Status(429, Some(2)),
        Fault::Status(503, Some(1)),
        pass.clone(),
        Fault::Status(500, None),
        Fault::Stall,
        pass.clone(),
        Fault::Truncate,
        Fault::Reset,
        Fault::Status(500, None),
        pass,
    ];
    proxy.script(faults.clone());
    let out = dir.path().join("faulted");
    ok(&export_args(&proxy.url, &out, &name, &["--timeout", "2"]));
    ok(&["verify", out.to_str().unwrap()]);
    let (want, got) = (parts_and_digest(&reference), parts_and_digest(&out));
    assert_eq!(got, want, "the faulted export differs from the unfaulted one");
    assert_eq!(got.0, 3000);

    let seen = proxy.seen();
    let served: Vec<String> = seen.iter().take(faults.len()).map(|s| format!("{:?}", s.fault)).collect();
    assert_eq!(served, faults.iter().map(|f| format!("{:?}", Some(f))).collect::<Vec<_>>(), "every fault was served");
    // The ids page and 12 record pages, each answered whole once; 9 faulted attempts on top.
    assert_eq!(seen.len(), 13 + 9, "requests seen");
    let after = |pred: fn(&Fault) -> bool| {
        let i = seen.iter().position(|s| s.fault.as_ref().is_some_and(pred)).unwrap();
        seen[i + 1].at - seen[i].at
    };
    let waited = after(|f| matches!(f, Fault::Status(429, _)));
    assert!(waited >= Duration::from_millis(1950), "Retry-After: 2 honoured, waited {waited:?}");
    let waited = after(|f| matches!(f, Fault::Status(503, _)));
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 honoured, waited {waited:?}");
    let waited = after(|f| matches!(f, Fault::Stall));
    assert!(waited >= Duration::from_millis(1950) && waited < Duration::from_secs(15), "stall: {waited:?}");
}

#[test]
fn a_source_that_always_fails_or_stalls_stops_the_export_after_bounded_retries() {
    let server = harness::shared(V1);
    let name = seeded(server, "dead", 500);
    let dir = tmp();
    for (label, fault, extra) in [
        ("500", Fault::Status(500, None), vec!["--retries", "3"]),
        ("503", Fault::Status(503, Some(1)), vec!["--retries", "2"]),
        ("stall", Fault::Stall, vec!["--retries", "2", "--timeout", "1"]),
        ("truncated", Fault::Truncate, vec!["--retries", "2"]),
    ] {
        let proxy = Proxy::start(&server.url, "/get");
        proxy.always(Some(fault));
        let out = dir.path().join(label);
        let started = Instant::now();
        let o = snap(&export_args(&proxy.url, &out, &name, &extra));
        let took = started.elapsed();
        let attempts: usize = extra[1].parse::<usize>().unwrap() + 1;
        assert_failed_cleanly(&o, &out, &name, &format!("gave up after {attempts} attempts"));
        assert_eq!(proxy.seen().len(), attempts, "{label}: one request, retried {} times", attempts - 1);
        assert!(took < Duration::from_secs(30), "{label}: took {took:?}");
    }
}

#[test]
fn a_source_server_killed_mid_export_fails_clearly_without_a_manifest() {
    let server = Server::start(V1);
    let name = seeded(&server, "killed", 6000);
    let proxy = Proxy::start(&server.url, "/get");
    proxy.always(Some(Fault::Slow(Duration::from_millis(40))));
    let dir = tmp();
    let out = dir.path().join("snap");
    let args = export_args(&proxy.url, &out, &name, &["--page-size", "50", "--part-mb", "1"]);
    let mut child =
        Command::new(harness::bin()).args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("parts/0000").exists() {
        assert!(Instant::now() < deadline, "the export never started writing");
        assert!(child.try_wait().unwrap().is_none(), "the export ended before the server was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill").args(["-KILL", "--", &format!("-{}", server.pid)]).status().unwrap();
    assert!(kill.success());
    let killed = Instant::now();
    // Default retries and timeout: the export must give up on its own, well within a minute.
    while child.try_wait().unwrap().is_none() {
        if killed.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the export hung after its server died");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    eprintln!("export gave up {:.1}s after its server died", killed.elapsed().as_secs_f64());
    assert_failed_cleanly(&o, &out, &name, "gave up after 8 attempts");
}
