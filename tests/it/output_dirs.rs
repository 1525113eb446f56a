//! Outputs that would clobber inputs or each other: `--out` inside the input snapshot (or holding
//! it) is refused before anything is written, and two runs into one `--out` at once cannot both
//! write: the second is refused while the first holds the directory's lock.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::transform::{SPEC, legacy, snap_bin};

fn copy_tree(from: &Path, to: &Path) {
    for (p, bytes) in crate::harness::files_under(from) {
        let dest = to.join(p.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

fn verify_ok(dir: &Path) {
    let o = snap_bin().arg("verify").arg(dir).output().unwrap();
    assert!(o.status.success(), "verify {}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_output_inside_the_input_is_refused_and_the_input_stays_intact() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("legacy");
    copy_tree(legacy(), &input);
    for out in [input.join("out"), input.join("parts/x"), input.clone(), t.path().to_path_buf()] {
        let o =
            snap_bin().args(["transform"]).arg(&input).arg("--spec").arg(SPEC).arg("--out").arg(&out).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--out {}: {err}", out.display());
        assert!(err.contains("overlaps the input snapshot"), "--out {}: {err}", out.display());
        assert_eq!(err.trim().lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    }
    assert!(!input.join("out").exists() && !input.join("parts/x").exists());
    verify_ok(&input);
}

#[test]
fn two_transforms_into_one_out_at_once_cannot_both_write() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let run = || {
        let mut c: Command = snap_bin();
        c.arg("transform").arg(legacy()).arg("--spec").arg(SPEC).arg("--out").arg(&out).arg("--quiet");
        c.env("RAYON_NUM_THREADS", "1");
        c
    };
    let mut first = run().stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let marker = out.join(".chroma-snap/transform-in-progress");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the first transform never marked its output");
        if first.try_wait().unwrap().is_some() {
            // Finished before we could look: the machine is fast; the lock unit test covers it.
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = run().output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "first: {}", String::from_utf8_lossy(&first.stderr));
    let err = String::from_utf8_lossy(&second.stderr);
    if second.status.success() {
        panic!("the second transform wrote into a directory the first was writing");
    }
    assert!(err.contains("another run is writing into") || err.contains("already holds a snapshot"), "second: {err}");
    verify_ok(&out);
    let stray: Vec<_> = crate::harness::files_under(&out)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().ends_with(".tmp") || p.to_string_lossy().contains(".chroma-snap"))
        .collect();
    assert!(stray.is_empty(), "left behind: {stray:?}");
}
