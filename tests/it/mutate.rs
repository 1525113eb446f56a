//! Tools to damage a snapshot on purpose: read and rewrite a part with Arrow, edit the manifest
//! as JSON, reseal hashes and counts so that only the damage under test remains, and run the
//! binary with a time limit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use chroma_snap::snapshot::convert::BatchView;
use chroma_snap::snapshot::digest::RecordsDigest;
use chroma_snap::snapshot::schema::{check_part_schema, embedding_item, part_schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

pub fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

pub fn write_manifest(dir: &Path, v: &Value) {
    fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// Part `p` of collection `c` as listed in the manifest.
pub fn part_file(dir: &Path, c: usize, p: usize) -> PathBuf {
    dir.join(manifest(dir)["collections"][c]["parts"][p]["path"].as_str().unwrap())
}

/// Every row of a part file as one batch.
pub fn read_part(path: &Path) -> RecordBatch {
    let b = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap()).unwrap();
    let schema = b.schema().clone();
    let batches: Vec<RecordBatch> = b.build().unwrap().map(Result::unwrap).collect();
    concat_batches(&schema, &batches).unwrap()
}

pub fn write_part(path: &Path, batch: &RecordBatch) {
    let mut w = ArrowWriter::try_new(fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// `batch` with string column `col` replaced by `f(row, old value)`.
pub fn map_strings(batch: &RecordBatch, col: usize, f: impl Fn(usize, Option<&str>) -> Option<String>) -> RecordBatch {
    let old = batch.column(col).as_any().downcast_ref::<StringArray>().unwrap();
    let new: StringArray = (0..old.len()).map(|i| f(i, old.is_valid(i).then(|| old.value(i)))).collect();
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols[col] = Arc::new(new);
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

/// `batch` with every embedding cut (or zero-padded) to `dim` values: a part of another dimension.
pub fn with_dimension(batch: &RecordBatch, dim: usize) -> RecordBatch {
    let view = BatchView::new(batch);
    let mut values = Vec::with_capacity(view.len() * dim);
    for r in view.records() {
        values.extend((0..dim).map(|i| r.embedding.get(i).copied().unwrap_or(0.0)));
    }
    let emb = FixedSizeListArray::new(embedding_item(), dim as i32, Arc::new(Float32Array::from(values)), None);
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols[1] = Arc::new(emb);
    RecordBatch::try_new(part_schema(dim), cols).unwrap()
}

/// `batch` with the first embedding value of `row` set to NaN.
pub fn with_nan(batch: &RecordBatch, row: usize) -> RecordBatch {
    let view = BatchView::new(batch);
    let mut values: Vec<f32> = view.records().flat_map(|r| r.embedding.to_vec()).collect();
    values[row * view.dim] = f32::NAN;
    let emb = FixedSizeListArray::new(embedding_item(), view.dim as i32, Arc::new(Float32Array::from(values)), None);
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols[1] = Arc::new(emb);
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

/// Makes the manifest agree with the files again: every part's bytes, blake3 and rows, every
/// collection's count and (when its parts decode) records digest. What remains is the damage.
pub fn reseal(dir: &Path) {
    let mut m = manifest(dir);
    for c in m["collections"].as_array_mut().unwrap() {
        let mut count = 0u64;
        let mut digest = Some(RecordsDigest::default());
        for p in c["parts"].as_array_mut().unwrap() {
            let path = dir.join(p["path"].as_str().unwrap());
            let bytes = fs::read(&path).unwrap();
            p["bytes"] = Value::from(bytes.len() as u64);
            p["blake3"] = Value::from(blake3::hash(&bytes).to_hex().to_string());
            let Ok(b) = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()) else {
                digest = None;
                continue;
            };
            let schema_ok = check_part_schema(b.schema()).is_ok();
            let rows = b.metadata().file_metadata().num_rows() as u64;
            p["rows"] = Value::from(rows);
            count += rows;
            for batch in b.build().unwrap() {
                match (batch, digest.as_mut()) {
                    (Ok(batch), Some(d)) if schema_ok => BatchView::new(&batch).records().for_each(|r| d.add(&r)),
                    _ => digest = None,
                }
            }
        }
        c["count"] = Value::from(count);
        if let Some(d) = digest {
            c["records_digest"] = Value::from(d.to_hex());
        }
    }
    write_manifest(dir, &m);
}

/// Copies a snapshot directory (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else if ft.is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// What a run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// Runs the binary with `args`, killing it (by its own pid) after `limit`.
pub fn run(args: &[&std::ffi::OsStr], limit: Duration) -> Run {
    let out = tempfile::tempdir().unwrap();
    let (o, e) = (out.path().join("o"), out.path().join("e"));
    let mut child = Command::new(crate::harness::bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (code, timed_out) = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break (s.code(), false);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Run { code, stdout: read(&o), stderr: read(&e), timed_out }
}
