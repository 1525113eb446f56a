//! Writes a synthetic one-collection snapshot without a server, streaming (flat memory), for
//! measuring the offline steps (`verify`, `transform`) at sizes a server takes long to seed.
//!
//! Usage: cargo run --release --example synth_snapshot -- OUT RECORDS [DIM]
//! Records: `rec-NNNNNNNNN` ids, seeded pseudo-random float32 embeddings (DIM, default 64), no
//! document, 4 metadata keys (`source` str of 4 values, `n` int, `score` float, `flag` bool).

use std::path::PathBuf;

use chroma_snap::record::{RecordPage, RecordRef};
use chroma_snap::snapshot::writer::{CollectionWriter, WriterOptions};
use chroma_snap::snapshot::{CollectionEntry, Manifest};

fn main() -> chroma_snap::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || chroma_snap::Error::Input("usage: synth_snapshot OUT RECORDS [DIM]".into());
    let out = PathBuf::from(args.first().ok_or_else(usage)?);
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).ok_or_else(usage)?;
    let dim: usize = args.get(2).map_or(Some(64), |s| s.parse().ok()).ok_or_else(usage)?;
    std::fs::create_dir_all(&out).map_err(|e| chroma_snap::Error::Failed(format!("{}: {e}", out.display())))?;
    let mut w = CollectionWriter::new(&out, "parts/0000", dim, WriterOptions::default())?;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut emb = vec![0f32; dim];
    let sources = ["web", "pdf", "chat", "mail"];
    for start in (0..n).step_by(4096) {
        let mut page = RecordPage::with_capacity(dim, 4096);
        for i in start..(start + 4096).min(n) {
            for v in &mut emb {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            let id = format!("rec-{i:09}");
            let meta = format!(
                r#"{{"flag":{},"n":{},"score":{},"source":"{}"}}"#,
                i % 3 == 0,
                i,
                (i % 1000) as f64 / 8.0 + 0.5,
                sources[i % 4]
            );
            page.push(RecordRef { id: &id, embedding: &emb, document: None, uri: None, metadata: Some(&meta) });
        }
        w.write_page(&page)?;
    }
    let written = w.finish()?;
    let entry =
        CollectionEntry::written("scale".into(), "synthetic".into(), None, None, "l2".into(), Some(dim), written);
    Manifest::new(None, vec![entry]).write_atomic(&out)?;
    eprintln!("synth_snapshot: {n} records of {dim} dims in {}", out.display());
    Ok(())
}
