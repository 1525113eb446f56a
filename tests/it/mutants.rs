//! The mutation suite: valid snapshots (legacy data, its transform output, exports from real
//! 1.5.9 and 0.4.24 servers) and the shipped spec, damaged by seeded random mutations. Every
//! offline command must end in a clear refusal or in a success whose data is exact to the input.
//!
//! CI runs a fixed seed; `MUTANTS=2000 MUTANT_SEED=random cargo test --release --test it -- mutants`
//! runs more (see docs/reliability.md).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::harness::{self, V0, V1};
use crate::hostile_verify::small_legacy;
use crate::mutate::{self, Run, copy_dir, manifest, map_strings, read_part, reseal, write_manifest, write_part};
use crate::transform::SPEC;
use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use chroma_snap::snapshot::convert::BatchView;
use std::sync::Arc;

const LIMIT: Duration = Duration::from_secs(20);
const CI_MUTANTS: u64 = 240;
const CI_SEED: u64 = 0x5eed_2026;

/// A valid snapshot to damage, with the records digest verify computes for each collection.
struct Base {
    name: String,
    dir: PathBuf,
    /// `name=records digest` per collection.
    digests: Vec<String>,
    /// The four-collection spec routes its collections (legacy data).
    transformable: bool,
}

fn run(args: &[&OsStr]) -> Run {
    mutate::run(args, LIMIT)
}

fn verify_digests(dir: &Path) -> Option<Vec<String>> {
    let r = run(&[OsStr::new("verify"), dir.as_os_str(), OsStr::new("--json")]);
    if r.code != Some(0) {
        return None;
    }
    let v: Value = serde_json::from_str(&r.stdout).ok()?;
    Some(named_digests(&v))
}

/// `name=records digest` of every collection of a `verify --json` answer.
fn named_digests(v: &Value) -> Vec<String> {
    let cs = v["snapshot"]["collections"].as_array().map(Vec::as_slice).unwrap_or_default();
    cs.iter()
        .map(|c| format!("{}={}", c["name"].as_str().unwrap_or("?"), c["records_digest"].as_str().unwrap_or("?")))
        .collect()
}

fn base(name: &str, keep: &Path, dir: PathBuf, transformable: bool) -> Base {
    let digests = verify_digests(&dir).unwrap_or_else(|| panic!("base {name} does not verify"));
    let stable = keep.join(name);
    copy_dir(&dir, &stable);
    Base { name: name.into(), dir: stable, digests, transformable }
}

/// A small export from a real server: the edge-case collections.
fn export_from(version: &'static str, keep: &Path) -> PathBuf {
    let server = harness::shared(version);
    let prefix = harness::unique("mut");
    let counts = harness::seed_edge_cases(server, &prefix);
    let seeded: Value = serde_json::from_str(counts.lines().last().unwrap()).unwrap();
    let out = keep.join(format!("src-export-{version}")); // base() copies it to export-{version}
    let mut args: Vec<String> = ["export", "--from", &server.url, "--out", out.to_str().unwrap(), "--quiet"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for name in seeded.as_object().unwrap().keys() {
        args.extend(["--collection".to_string(), name.clone()]);
    }
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let r = mutate::run(&args, Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "export from {version}: {}", r.stderr);
    out
}

fn bases(keep: &Path) -> Vec<Base> {
    let (_t, legacy) = small_legacy(400, 768);
    let mut out = vec![base("legacy", keep, legacy.clone(), true)];
    let derived = keep.join("derived-src");
    let r = run(&[
        OsStr::new("transform"),
        legacy.as_os_str(),
        OsStr::new("--spec"),
        OsStr::new(SPEC),
        OsStr::new("--out"),
        derived.as_os_str(),
        OsStr::new("--quiet"),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    out.push(base("four-collections", keep, derived, false));
    if std::env::var("MUTANT_SERVERS").as_deref() != Ok("0") {
        for v in [V1, V0] {
            let dir = export_from(v, keep);
            out.push(base(&format!("export-{v}"), keep, dir, false));
        }
    }
    out
}

/// A refusal: an `error:` line (or verify's summary) naming what is wrong, no panic, no raw control characters.
fn clean_refusal(what: &str, r: &Run) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{what}: {why}:\n{}", r.stderr));
    if r.stderr.contains("panicked") || r.stderr.contains("RUST_BACKTRACE") {
        return bad("panicked");
    }
    if r.stderr.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return bad("raw control characters on stderr");
    }
    // verify --json reports its problems on stdout and one summary line on stderr.
    let named = |l: &str| (l.starts_with("error: ") && l.len() > 12) || l.contains("problem(s) found");
    if !r.stderr.lines().any(named) {
        return bad("no error line");
    }
    Ok(())
}

/// The records digest of a collection without records.
fn empty_digest() -> String {
    chroma_snap::snapshot::RecordsDigest::default().to_hex()
}

/// Runs every offline command on a mutant and checks how each ended.
fn check(b: &Base, dir: &Path, scratch: &Path) -> Result<(), String> {
    let d = dir.as_os_str();
    let verify = run(&[OsStr::new("verify"), d]);
    let vjson = run(&[OsStr::new("verify"), d, OsStr::new("--json")]);
    for (what, r) in [("verify", &verify), ("verify --json", &vjson)] {
        match r.code {
            _ if r.timed_out => return Err(format!("{what} ran over {LIMIT:?}")),
            Some(0) => {}
            Some(2 | 3) => clean_refusal(what, r)?,
            other => return Err(format!("{what} exited {other:?}: {}", r.stderr)),
        }
    }
    if verify.code != vjson.code {
        return Err(format!("verify exited {:?}, verify --json {:?}", verify.code, vjson.code));
    }
    if verify.code == Some(0) {
        let v: Value = serde_json::from_str(&vjson.stdout).map_err(|e| format!("verify --json: {e}"))?;
        let got = named_digests(&v);
        // The manifest is the root of trust: removing an empty collection from it leaves a valid,
        // smaller snapshot (users compare the manifest's blake3 with the one export printed).
        // Every collection that remains must hold exactly what it held.
        let mut left: Vec<&str> = b.digests.iter().map(String::as_str).collect();
        let kept = got.iter().all(|g| left.iter().position(|d| d == g).map(|i| left.remove(i)).is_some());
        if !kept || left.iter().any(|d| !d.ends_with(&format!("={}", empty_digest()))) {
            return Err(format!("verify passed a snapshot whose data changed: digests {got:?}, base {:?}", b.digests));
        }
    }
    for args in [&["inspect"][..], &["inspect", "--json"]] {
        let mut a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        a.insert(1, d);
        let r = run(&a);
        let what = args.join(" ");
        match r.code {
            _ if r.timed_out => return Err(format!("{what} ran over {LIMIT:?}")),
            Some(0) if r.stdout.chars().any(|c| c.is_control() && c != '\n') => {
                return Err(format!("{what} printed raw control characters"));
            }
            Some(0) => {}
            Some(2) if verify.code == Some(0) => return Err(format!("{what} refused a snapshot verify passed")),
            Some(2) => clean_refusal(&what, &r)?,
            other => return Err(format!("{what} exited {other:?}: {}", r.stderr)),
        }
    }
    if b.transformable {
        transform_check(dir, Path::new(SPEC), scratch, verify.code == Some(0))?;
    }
    Ok(())
}

/// `transform --spec SPEC --out NEW`: refused without a manifest, or a verified output.
fn transform_check(input: &Path, spec: &Path, scratch: &Path, input_ok: bool) -> Result<(), String> {
    let out = scratch.join("out");
    let _ = fs::remove_dir_all(&out);
    let r = run(&[
        OsStr::new("transform"),
        input.as_os_str(),
        OsStr::new("--spec"),
        spec.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--quiet"),
    ]);
    let written = out.join("manifest.json").exists();
    match r.code {
        _ if r.timed_out => Err(format!("transform ran over {LIMIT:?}")),
        Some(0 | 4) if !input_ok => Err(format!("transform accepted an input verify refused: {}", r.stderr)),
        Some(0) if verify_digests(&out).is_none() => Err("transform wrote an output that does not verify".into()),
        Some(0) => Ok(()),
        Some(2..=4) if written => Err(format!("transform exited {:?} but wrote a manifest", r.code)),
        Some(4) => Ok(()),
        Some(2 | 3) => clean_refusal("transform", &r),
        other => Err(format!("transform exited {other:?}: {}", r.stderr)),
    }
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

/// (collection, part) of a random part, if the snapshot has one.
fn some_part(rng: &mut StdRng, m: &Value) -> Option<(usize, usize)> {
    let all: Vec<(usize, usize)> = m["collections"]
        .as_array()?
        .iter()
        .enumerate()
        .flat_map(|(c, e)| (0..e["parts"].as_array().map_or(0, Vec::len)).map(move |p| (c, p)))
        .collect();
    (!all.is_empty()).then(|| *pick(rng, &all))
}

const BAD_META: &[&str] = &["{not json", "NaN", "[1]", "1e400", "18446744073709551616", r#"{"a":1} x"#, "null"];

/// Bytes of a part or the manifest flipped, cut or extended; the manifest is not resealed.
fn mutate_bytes(rng: &mut StdRng, dir: &Path) -> String {
    let m = manifest(dir);
    let target = match some_part(rng, &m) {
        Some((c, p)) if rng.random_bool(0.7) => mutate::part_file(dir, c, p),
        _ => dir.join("manifest.json"),
    };
    let mut bytes = fs::read(&target).unwrap();
    let rel = target.strip_prefix(dir).unwrap().display().to_string();
    let at = rng.random_range(0..bytes.len().max(1));
    let how = match rng.random_range(0..3) {
        0 if !bytes.is_empty() => {
            bytes[at] ^= 1 << rng.random_range(0..8);
            format!("flip a bit of byte {at} of {rel}")
        }
        1 => {
            bytes.truncate(at);
            format!("truncate {rel} to {at} bytes")
        }
        _ => {
            bytes.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()));
            format!("extend {rel} with random bytes")
        }
    };
    fs::write(&target, bytes).unwrap();
    how
}

/// A part rewritten with one row changed; resealed when the change is what a part must not be.
fn mutate_rows(rng: &mut StdRng, dir: &Path) -> String {
    let Some((c, p)) = some_part(rng, &manifest(dir)) else { return "no part to change".into() };
    let path = mutate::part_file(dir, c, p);
    let b = read_part(&path);
    if b.num_rows() < 2 {
        return "part too small to change".into();
    }
    let row = rng.random_range(0..b.num_rows());
    let other = (row + 1) % b.num_rows();
    let (batch, how, seal) = match rng.random_range(0..7) {
        0 => (b.slice(0, b.num_rows() - 1), "drop the last row".to_string(), false),
        1 => {
            let both = arrow::compute::concat_batches(&b.schema(), &[b.clone(), b.slice(row, 1)]).unwrap();
            (both, format!("duplicate row {row}"), rng.random_bool(0.5))
        }
        2 => (
            map_strings(&b, 0, |i, v| if i == row { Some(String::new()) } else { v.map(Into::into) }),
            format!("empty the id of row {row}"),
            false,
        ),
        3 => {
            let id = id_of(&b, other);
            (
                map_strings(&b, 0, |i, v| if i == row { Some(id.clone()) } else { v.map(Into::into) }),
                format!("give row {row} the id of row {other}"),
                true,
            )
        }
        4 => {
            let dim = BatchView::new(&b).dim;
            (mutate::with_dimension(&b, dim.saturating_sub(1).max(1)), "shorten every embedding".to_string(), true)
        }
        5 => (mutate::with_nan(&b, row), format!("NaN in the embedding of row {row}"), false),
        _ => {
            let meta = *pick(rng, BAD_META);
            (
                map_strings(&b, 4, |i, v| if i == row { Some(meta.into()) } else { v.map(Into::into) }),
                format!("metadata of row {row} = {meta}"),
                true,
            )
        }
    };
    write_part(&path, &batch);
    if seal {
        reseal(dir);
    }
    format!("collection {c} part {p}: {how}{}", if seal { ", resealed" } else { "" })
}

/// The id of one row of a part-schema batch.
fn id_of(b: &RecordBatch, row: usize) -> String {
    BatchView::new(b).record(row).id.to_owned()
}

/// A part rewritten with a column dropped, renamed or retyped, and resealed.
fn mutate_schema(rng: &mut StdRng, dir: &Path) -> String {
    let Some((c, p)) = some_part(rng, &manifest(dir)) else { return "no part to change".into() };
    let path = mutate::part_file(dir, c, p);
    let b = read_part(&path);
    let col = rng.random_range(0..b.num_columns());
    let mut fields: Vec<Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    let how = match rng.random_range(0..3) {
        0 => {
            fields.remove(col);
            cols.remove(col);
            format!("drop column {col}")
        }
        1 => {
            fields[col] = fields[col].clone().with_name("renamed");
            format!("rename column {col}")
        }
        _ => {
            let n = b.num_rows() as i64;
            fields[col] = Field::new(fields[col].name(), DataType::Int64, false);
            cols[col] = Arc::new(Int64Array::from_iter_values(0..n));
            format!("column {col} becomes int64")
        }
    };
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    write_part(&path, &batch);
    reseal(dir);
    format!("collection {c} part {p}: {how}, resealed")
}

fn edge_value(rng: &mut StdRng) -> Value {
    let v: Value = match rng.random_range(0..10) {
        0 => 0.into(),
        1 => (-1).into(),
        2 => u64::MAX.into(),
        3 => ((1u64 << 53) + 1).into(),
        4 => 1.5.into(),
        5 => Value::Null,
        6 => "\u{1b}[31mred\u{1b}[0m".into(),
        7 => "line\nbreak\r".into(),
        8 => i64::MIN.into(),
        _ => serde_json::json!({"x": [1]}),
    };
    v
}

/// One manifest field set to a value at the edge: numbers, control characters, nulls.
fn mutate_field(rng: &mut StdRng, dir: &Path) -> String {
    let mut m = manifest(dir);
    let v = edge_value(rng);
    let ncol = m["collections"].as_array().map_or(0, Vec::len);
    let field = if ncol == 0 || rng.random_bool(0.15) {
        let f = *pick(rng, &["format_version", "created_at", "tool", "source", "lineage", "collections"]);
        m[f] = v.clone();
        f.to_string()
    } else {
        let c = rng.random_range(0..ncol);
        let coll = &mut m["collections"][c];
        let parts = coll["parts"].as_array().map_or(0, Vec::len);
        if parts > 0 && rng.random_bool(0.4) {
            let p = rng.random_range(0..parts);
            let f = *pick(rng, &["path", "rows", "bytes", "blake3"]);
            coll["parts"][p][f] = v.clone();
            format!("collections[{c}].parts[{p}].{f}")
        } else {
            let f = *pick(
                rng,
                &[
                    "name",
                    "id",
                    "metadata",
                    "configuration",
                    "space",
                    "dimension",
                    "count",
                    "source_count_before",
                    "changed_during_export",
                    "records_digest",
                    "parts",
                ],
            );
            coll[f] = v.clone();
            format!("collections[{c}].{f}")
        }
    };
    write_manifest(dir, &m);
    format!("{field} = {v}")
}

/// The manifest's structure: collections duplicated or swapped parts, format versions, removals.
fn mutate_structure(rng: &mut StdRng, dir: &Path) -> String {
    let mut m = manifest(dir);
    let colls = m["collections"].as_array_mut().unwrap();
    let n = colls.len();
    let how = match rng.random_range(0..6) {
        0 if n > 0 => {
            let i = rng.random_range(0..n);
            colls.push(colls[i].clone());
            format!("collection {i} listed twice")
        }
        1 if n > 1 => {
            let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
            let pa = colls[a]["parts"].take();
            colls[a]["parts"] = colls[b]["parts"].take();
            colls[b]["parts"] = pa;
            format!("parts of collections {a} and {b} swapped")
        }
        2 if n > 0 => {
            let i = rng.random_range(0..n);
            colls.remove(i);
            format!("collection {i} removed")
        }
        3 => {
            let v = *pick(rng, &[0, 2]);
            m["format_version"] = v.into();
            format!("format_version {v}")
        }
        4 if n > 0 => {
            let i = rng.random_range(0..n);
            let name = format!(
                "{}{}",
                colls[i]["name"].as_str().unwrap_or(""),
                pick(rng, &["\u{1b}[2J", "\n", "\u{7f}", "\u{0}"])
            );
            colls[i]["name"] = name.clone().into();
            format!("collection {i} renamed {name:?}")
        }
        _ => {
            let Some((c, p)) = some_part(rng, &m) else { return "no part to move".into() };
            let to =
                pick(rng, &[".chroma-snap/p.parquet", "report.json", "parts/x\u{1b}y.parquet", "parts/a\nb.parquet"]);
            let from = mutate::part_file(dir, c, p);
            fs::create_dir_all(dir.join(".chroma-snap")).unwrap();
            fs::rename(&from, dir.join(to)).unwrap();
            m["collections"][c]["parts"][p]["path"] = Value::from(*to);
            format!("collection {c} part {p} moved to {to:?}")
        }
    };
    write_manifest(dir, &m);
    how
}

/// A directory, a symlink, a FIFO or a symlink to `/dev/zero` where a part file should be.
fn mutate_kind(rng: &mut StdRng, dir: &Path) -> String {
    let m = manifest(dir);
    let Some((c, p)) = some_part(rng, &m) else { return "no part to replace".into() };
    let path = mutate::part_file(dir, c, p);
    let other = some_part(rng, &m).map(|(c2, p2)| mutate::part_file(dir, c2, p2)).unwrap();
    fs::remove_file(&path).unwrap();
    match rng.random_range(0..5) {
        0 => {
            fs::create_dir(&path).unwrap();
            format!("collection {c} part {p} is a directory")
        }
        1 => {
            std::os::unix::fs::symlink(&other, &path).unwrap();
            format!("collection {c} part {p} is a symlink to another part")
        }
        2 => {
            std::os::unix::fs::symlink(path.with_extension("nowhere"), &path).unwrap();
            format!("collection {c} part {p} is a dangling symlink")
        }
        3 => {
            let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
            assert!(status.success());
            format!("collection {c} part {p} is a FIFO")
        }
        _ => {
            std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
            format!("collection {c} part {p} is a symlink to /dev/zero")
        }
    }
}

/// The shipped spec with a key dropped, a value's type changed, a line doubled or cut.
fn mutate_spec(rng: &mut StdRng, text: &str) -> (String, String) {
    let mut lines: Vec<String> = text.lines().map(Into::into).collect();
    let i = rng.random_range(0..lines.len());
    let how = match rng.random_range(0..4) {
        0 => {
            let l = lines.remove(i);
            format!("drop line {}: {l}", i + 1)
        }
        1 if lines[i].contains('=') => {
            let key = lines[i].split('=').next().unwrap().to_string();
            let v = *pick(
                rng,
                &["1", "-1", "\"x\"", "true", "[]", "{}", "1e400", "18446744073709551616", "\"\\u001b[2J\""],
            );
            lines[i] = format!("{key}= {v}");
            format!("line {}: {key}= {v}", i + 1)
        }
        2 => {
            let l = lines[i].clone();
            lines.insert(i, l.clone());
            format!("line {} doubled: {l}", i + 1)
        }
        _ => {
            lines.truncate(i);
            format!("cut after line {i}")
        }
    };
    (lines.join("\n"), how)
}

/// One mutant of `b` in `scratch/snap`: returns what was done.
fn mutate_snapshot(rng: &mut StdRng, dir: &Path) -> String {
    match rng.random_range(0..6) {
        0 => mutate_bytes(rng, dir),
        1 => mutate_rows(rng, dir),
        2 => mutate_schema(rng, dir),
        3 => mutate_field(rng, dir),
        4 => mutate_structure(rng, dir),
        _ => mutate_kind(rng, dir),
    }
}

fn seed() -> u64 {
    match std::env::var("MUTANT_SEED").as_deref() {
        Ok("random") => rand::random(),
        Ok(s) => s.parse().expect("MUTANT_SEED is a number or `random`"),
        Err(_) => CI_SEED,
    }
}

#[test]
fn mutants_end_in_a_refusal_or_exact_data() {
    let keep = tempfile::tempdir().unwrap();
    let bases = bases(keep.path());
    let total: u64 = std::env::var("MUTANTS").ok().and_then(|n| n.parse().ok()).unwrap_or(CI_MUTANTS);
    let seed = seed();
    let spec_text = fs::read_to_string(SPEC).unwrap();
    let started = Instant::now();
    let mut failures = Vec::new();
    for k in 0..total {
        // Each mutant has its own seed, so one can be replayed alone: MUTANT_SEED=s MUTANTS=1.
        let s = if total == 1 { seed } else { seed.wrapping_add(k) };
        let mut rng = StdRng::seed_from_u64(s);
        let b = &bases[rng.random_range(0..bases.len())];
        let scratch = tempfile::tempdir().unwrap();
        let result = if b.transformable && rng.random_bool(0.1) {
            let (text, how) = mutate_spec(&mut rng, &spec_text);
            let spec = scratch.path().join("spec.toml");
            fs::write(&spec, text).unwrap();
            (how, transform_check(&b.dir, &spec, scratch.path(), true))
        } else {
            let dir = scratch.path().join("snap");
            copy_dir(&b.dir, &dir);
            let how = mutate_snapshot(&mut rng, &dir);
            let res = check(b, &dir, scratch.path());
            (how, res)
        };
        if let (how, Err(why)) = result {
            eprintln!("MUTANT FAILED: MUTANT_SEED={s} MUTANTS=1 base {}: {how}: {why}", b.name);
            failures.push(format!("seed {s} ({} / {how}): {why}", b.name));
        }
    }
    eprintln!("{total} mutants from seed {seed} in {:.1?}, {} failed", started.elapsed(), failures.len());
    assert!(failures.is_empty(), "{} of {total} mutants failed:\n{}", failures.len(), failures.join("\n"));
}
