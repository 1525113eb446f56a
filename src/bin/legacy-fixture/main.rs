//! `legacy-fixture`: the shipped example's legacy data. `--snapshot DIR` writes it as a snapshot;
//! `--seed URL` writes the same records into a running Chroma server (v1 or v2).
//! `--records N` scales the dataset (same shape and defect rate), e.g. for benchmarks.

mod data;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

use chroma_snap::chroma::{Api, Client, ConnectOptions};
use chroma_snap::record::{RecordPage, parse_metadata};
use chroma_snap::snapshot::manifest::derived_id;
use chroma_snap::snapshot::writer::{CollectionWriter, WriterOptions};
use chroma_snap::snapshot::{CollectionEntry, Manifest};

const USAGE: &str = "usage: legacy-fixture (--snapshot DIR | --seed URL) [--records N] [--dim D]
  --snapshot DIR   write the legacy dataset as a snapshot (DIR must be absent or empty)
  --seed URL       write the same records into a running Chroma server (v1 or v2)
  --records N      number of records (default 9832, the shipped example)
  --dim D          embedding dimension of the valid records (default 768)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legacy-fixture: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (mut snapshot, mut seed, mut records, mut dim) = (None, None, data::BASE_RECORDS, 768usize);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--snapshot" => snapshot = Some(PathBuf::from(val()?)),
            "--seed" => seed = Some(val()?),
            "--records" => records = val()?.parse().map_err(|_| "--records needs a number".to_string())?,
            "--dim" => dim = val()?.parse().map_err(|_| "--dim needs a number".to_string())?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let colls = data::generate(records, dim);
    let total: usize = colls.iter().map(|c| c.page.len()).sum();
    match (snapshot, seed) {
        (Some(dir), None) => write_snapshot(&dir, &colls).map_err(|e| e.to_string())?,
        (None, Some(url)) => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(seed_server(&url, &colls))?;
        }
        _ => return Err(format!("give exactly one of --snapshot or --seed\n{USAGE}")),
    }
    eprintln!("legacy-fixture: {total} records in {} source collections", colls.len());
    Ok(())
}

fn legacy_metadata() -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("hnsw:space".into(), json!("cosine"));
    m.insert("owner".into(), json!("sergio-legacy"));
    m
}

fn write_snapshot(dir: &Path, colls: &[data::SourceCollection]) -> chroma_snap::Result<()> {
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(chroma_snap::Error::Input(format!("{} is not empty", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| chroma_snap::Error::Failed(format!("{}: {e}", dir.display())))?;
    let mut entries = Vec::new();
    for (i, c) in colls.iter().enumerate() {
        let mut w = CollectionWriter::new(dir, &format!("parts/{i:04}"), c.page.dim, WriterOptions::default())?;
        w.write_page(&c.page)?;
        let done = w.finish()?;
        entries.push(CollectionEntry::written(
            c.name.clone(),
            derived_id(&c.name),
            Some(legacy_metadata()),
            None,
            "cosine".into(),
            Some(c.page.dim),
            done,
        ));
    }
    let mut m = Manifest::new(None, entries);
    m.created_at = "2024-03-01T00:00:00Z".into();
    m.lineage = Some(json!({"kind": "legacy-fixture", "records": colls.iter().map(|c| c.page.len()).sum::<usize>()}));
    m.write_atomic(dir)?;
    Ok(())
}

async fn seed_server(url: &str, colls: &[data::SourceCollection]) -> Result<(), String> {
    let client = Client::connect(&ConnectOptions::new(url)).await.map_err(|e| e.to_string())?;
    let max = client.max_batch_size.unwrap_or(1000).clamp(1, 1000);
    let mut refused = Vec::new();
    for c in colls {
        let info =
            client.create_collection(&c.name, Some(&legacy_metadata()), None).await.map_err(|e| e.to_string())?;
        // ~9 KB of JSON per 768-dim record: 500 records stay far below any body limit.
        let batch = max.min(500);
        let mut start = 0;
        while start < c.page.len() {
            let end = (start + batch).min(c.page.len());
            let body = add_body(&c.page, start..end, client.api);
            let what = format!("add {start}..{end} to {:?}", c.name);
            if let Err(e) = client.post_records(&info, "add", body.into(), &what).await {
                // A stricter (1.x) server refuses some legacy records: add one by one, keep going.
                eprintln!("legacy-fixture: {what}: {e}; adding record by record");
                for i in start..end {
                    let body = add_body(&c.page, i..i + 1, client.api);
                    if let Err(e) = client.post_records(&info, "add", body.into(), "add one record").await {
                        refused.push(format!("{}/{:?}: {e}", c.name, c.page.ids[i]));
                    }
                }
            }
            start = end;
        }
        eprintln!("legacy-fixture: seeded {} ({} records)", c.name, c.page.len());
    }
    if !refused.is_empty() {
        eprintln!("legacy-fixture: the server refused {} record(s), e.g. {}", refused.len(), refused[0]);
    }
    Ok(())
}

/// An `add` body with JSON float embeddings (accepted by every server version).
fn add_body(page: &RecordPage, rows: std::ops::Range<usize>, _api: Api) -> Vec<u8> {
    let rows: Vec<usize> = rows.collect();
    let metas: Vec<Value> = rows
        .iter()
        .map(|&i| page.metadatas[i].as_deref().and_then(|m| parse_metadata(m).ok()).map_or(Value::Null, Value::Object))
        .collect();
    let body = json!({
        "ids": rows.iter().map(|&i| &page.ids[i]).collect::<Vec<_>>(),
        "embeddings": rows.iter().map(|&i| page.embedding(i)).collect::<Vec<_>>(),
        "documents": rows.iter().map(|&i| &page.documents[i]).collect::<Vec<_>>(),
        "metadatas": metas,
    });
    serde_json::to_vec(&body).expect("JSON serialises")
}
