//! Spec and snapshot holes: integers beyond i64 are refused (never written as floats), and
//! contradictory specs or templates that would drop a field are refused before any data is read.

use std::fs;

use crate::bad_inputs::{rec, records_snapshot as write_snapshot};
use crate::transform::{legacy, transform};

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn integers_beyond_i64_are_refused_never_written_as_floats() {
    let t = tempfile::tempdir().unwrap();
    let recs = vec![
        rec("ok", &[1.0, 2.0], Some(r#"{"k":9223372036854775807}"#)),
        rec("big", &[1.0, 2.0], Some(r#"{"k":18446744073709551616}"#)),
        rec("neg", &[1.0, 2.0], Some(r#"{"k":-9223372036854775809}"#)),
    ];
    let snap = write_snapshot(&t.path().join("s"), vec![("docs", 2, recs)]);
    let spec = t.path().join("spec.toml");
    fs::write(&spec, "version = 1\n[targets.out_docs]\nunmapped = \"keep\"\n[routing]\ndefault = \"out_docs\"\n")
        .unwrap();
    // Such a snapshot is damaged (its metadata is not what the format allows): transform refuses
    // it by part and record, with or without --trust-input, and writes no snapshot.
    for trust in [false, true] {
        let out = t.path().join(format!("out-{trust}"));
        let mut c = crate::transform::snap_bin();
        c.arg("transform").arg(&snap).arg("--spec").arg(&spec).arg("--out").arg(&out).arg("--quiet");
        if trust {
            c.arg("--trust-input");
        }
        let o = c.output().unwrap();
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "trust {trust}: {all}");
        assert!(
            all.contains("record \"big\"") && all.contains("integer 18446744073709551616 does not fit in i64"),
            "{all}"
        );
        assert!(all.contains("part-000000.parquet"), "the part is named: {all}");
        assert!(!out.join("manifest.json").exists(), "no snapshot written");
        let written: Vec<u8> = walk(&out).iter().flat_map(|p| fs::read(p).unwrap()).collect();
        let hay = String::from_utf8_lossy(&written);
        assert!(
            !hay.contains("1.8446744073709552e19") && !hay.contains("e+19"),
            "a big integer was written as a float"
        );
    }
    // The i64 bounds themselves are ints, kept as they are.
    let edge = write_snapshot(
        &t.path().join("e"),
        vec![("docs", 2, vec![rec("ok", &[1.0, 2.0], Some(r#"{"k":-9223372036854775808}"#))])],
    );
    let out = t.path().join("edge-out");
    let o = transform(&edge, &spec, &out, Some(1));
    assert!(o.status.success(), "{}", text(&o));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn contradictions_and_template_holes_are_refused_before_reading_data() {
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("spec.toml");
    fs::write(
        &spec,
        r#"version = 1
[targets.out_docs.fields]
a = { from = "x", cast = "int", type = "string" }
b = { from = "x", allowed = [] }
c = { from = "x", default = "z", allowed = ["x"] }
d = { template = "{e}-{id}" }
e = { template = "{id}" }
f = { template = "{g}" }
g = { value = [1, 2] }
[routing]
default = "out_docs"
"#,
    )
    .unwrap();
    let out = t.path().join("out");
    let o = transform(legacy(), &spec, &out, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for path in ["fields.a.type", "fields.b.allowed", "fields.c.default", "fields.d.template", "fields.f.template"] {
        assert!(err.contains(&format!("  targets.out_docs.{path}: ")), "no error at {path}:\n{err}");
    }
    assert!(err.contains("5 problem(s)"), "{err}");
    assert!(!out.exists());
}
