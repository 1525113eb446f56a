//! Transform under SIGKILL at random (seeded) points: a killed output directory is never taken for
//! a snapshot, and rerunning the same command always ends with files byte-identical to an
//! uninterrupted run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Rng;
use crate::transform::{SPEC, hashes, snap_bin};

fn transform_cmd(input: &Path, out: &Path) -> Command {
    let mut c = snap_bin();
    c.arg("transform").arg(input).args(["--spec", SPEC, "--trust-input", "--part-mb", "1", "--quiet"]);
    c.arg("--out").arg(out).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn transform_ok(input: &Path, out: &Path) {
    let o = transform_cmd(input, out).output().unwrap();
    assert!(o.status.success(), "transform into {} failed: {}", out.display(), String::from_utf8_lossy(&o.stderr));
}

/// Every file's hash except the tool's state directory.
fn data_hashes(dir: &Path) -> BTreeMap<String, String> {
    hashes(dir).into_iter().filter(|(k, _)| !k.starts_with(".chroma-snap")).collect()
}

#[test]
fn transform_killed_at_ten_random_points_then_rerun_is_identical() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("legacy");
    let made = Command::new(env!("CARGO_BIN_EXE_legacy-fixture"))
        .arg("--snapshot")
        .arg(&input)
        .args(["--records", "30000"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let reference = t.path().join("reference");
    let started = Instant::now();
    transform_ok(&input, &reference);
    let span = started.elapsed().as_secs_f64();
    let expected = hashes(&reference);
    let parts = expected.keys().filter(|k| k.ends_with(".parquet") && k.starts_with("parts/")).count();
    assert!(parts > 4, "the transform should roll several parts: {expected:?}");
    assert!(expected.contains_key("manifest.json") && !expected.keys().any(|k| k.starts_with(".chroma-snap")));

    // Kill points are seeded times within the reference run; a kill that lands after the run
    // finished is checked too but not counted, until ten have landed mid-run.
    let mut rng = Rng(20261125);
    let mut killed_midway = 0;
    let mut attempts = 0;
    while killed_midway < 10 {
        attempts += 1;
        assert!(attempts <= 30, "only {killed_midway} of {attempts} kills hit a running transform");
        let i = attempts;
        let out = t.path().join(format!("run{i}"));
        let delay = Duration::from_secs_f64(rng.next_f64() * span * 0.9);
        let mut child = transform_cmd(&input, &out).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if out.join("manifest.json").exists() {
            // It wrote its manifest (last, atomically) before the kill: that output is whole.
            assert!(status.success() || status.code().is_none(), "run {i}: {status}");
            assert_eq!(data_hashes(&out), data_hashes(&reference), "run {i} finished but differs");
            continue;
        }
        killed_midway += 1;
        // A killed output is not a snapshot: verify and load refuse it.
        let v = snap_bin().arg("verify").arg(&out).output().unwrap();
        assert_eq!(v.status.code(), Some(2), "run {i} (killed after {delay:?}): verify of a killed output");
        let load = snap_bin().arg("load").arg(&out).args(["--to", "http://127.0.0.1:9", "--dry-run"]).output().unwrap();
        assert_eq!(load.status.code(), Some(2), "run {i}: load of a killed output");
        transform_ok(&input, &out);
        assert_eq!(hashes(&out), expected, "run {i} (killed after {delay:?}) then rerun differs");
    }
    eprintln!("{killed_midway} of {attempts} kills hit a running transform (reference run {span:.1}s)");
}
