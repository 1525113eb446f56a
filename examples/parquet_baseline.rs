//! Baseline for docs/performance.md (the transform's ceiling in `bin/bench`): a plain Parquet
//! read + write of every part of a snapshot with the same writer settings as chroma-snap's
//! snapshot writer (zstd level 1, Parquet 2.0, byte-stream-split embeddings without dictionary
//! or statistics, row groups of ~16 MiB of embeddings), no hashing, no logic, one file per
//! thread. Usage: `cargo run --release --example parquet_baseline -- SNAPSHOT OUTDIR [--json]`;
//! `--json` prints `{"rows": n, "seconds": s}` instead of the sentence.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::datatypes::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

fn parts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable directory") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            parts(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") && p.to_string_lossy().contains("/parts/") {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    assert!(args.len() == 2, "usage: parquet_baseline SNAPSHOT OUTDIR [--json]");
    let (src, dst) = (PathBuf::from(args[0]), PathBuf::from(args[1]));
    std::fs::create_dir_all(&dst).expect("output directory");
    let mut files = Vec::new();
    parts(&src, &mut files);
    files.sort();
    let t = Instant::now();
    let rows: usize = files
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap()).unwrap();
            let schema = reader.schema().clone();
            let emb = ColumnPath::new(vec!["embedding".into(), "list".into(), "item".into()]);
            // The same settings as src/snapshot/writer.rs (its defaults).
            let dim = match schema.field_with_name("embedding").map(|f| f.data_type()) {
                Ok(DataType::FixedSizeList(_, n)) => *n as usize,
                _ => panic!("{}: no fixed-size embedding column", f.display()),
            };
            let rows = ((16 << 20) / (dim * 4 + 256)).clamp(256, 1 << 17);
            let props = WriterProperties::builder()
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
                .set_max_row_group_row_count(Some(rows))
                .set_column_dictionary_enabled(emb.clone(), false)
                .set_column_statistics_enabled(emb.clone(), EnabledStatistics::None)
                .set_column_encoding(emb, Encoding::BYTE_STREAM_SPLIT)
                .build();
            let out = BufWriter::new(File::create(dst.join(format!("{i:04}.parquet"))).unwrap());
            let mut w = ArrowWriter::try_new(out, schema, Some(props)).unwrap();
            let mut n = 0;
            for b in reader.with_batch_size(4096).build().unwrap() {
                let b = b.unwrap();
                n += b.num_rows();
                w.write(&b).unwrap();
            }
            w.close().unwrap();
            n
        })
        .sum();
    let s = t.elapsed().as_secs_f64();
    if json {
        println!("{{\"rows\": {rows}, \"seconds\": {s:.4}}}");
    } else {
        println!("parquet read+write: {rows} rows in {s:.2}s ({:.0} rows/s)", rows as f64 / s);
    }
}
