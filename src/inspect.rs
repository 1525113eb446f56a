//! What a snapshot holds, for people: collections, counts, dimensions, spaces, parts, samples.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::snapshot::Manifest;
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::Snapshot;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub manifest: Manifest,
    /// A few rows per collection, embeddings shortened to their first values.
    pub samples: Vec<Sample>,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub collection: String,
    pub id: String,
    pub embedding_head: Vec<f32>,
    pub document: Option<String>,
    pub uri: Option<String>,
    pub metadata: Option<Value>,
}

pub fn inspect(dir: &Path, samples_per_collection: usize) -> Result<Inspection> {
    let snap = Snapshot::open(dir)?;
    let mut samples = Vec::new();
    for c in &snap.manifest.collections {
        let mut left = samples_per_collection;
        for batch in snap.collection_batches(c) {
            if left == 0 {
                break;
            }
            let batch = batch?;
            let view = BatchView::new(&batch);
            for r in view.records().take(left) {
                samples.push(Sample {
                    collection: c.name.clone(),
                    id: r.id.to_owned(),
                    embedding_head: r.embedding.iter().take(4).copied().collect(),
                    document: r.document.map(|d| shorten(d, 80)),
                    uri: r.uri.map(str::to_owned),
                    metadata: r
                        .metadata
                        .map(|m| serde_json::from_str(m).unwrap_or_else(|_| format!("(invalid) {m}").into())),
                });
                left -= 1;
            }
        }
    }
    Ok(Inspection { manifest: snap.manifest, samples })
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n).collect();
    out.push('…');
    out
}

/// The human-readable form.
pub fn render(i: &Inspection) -> String {
    use std::fmt::Write;
    let m = &i.manifest;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "snapshot format {} by {} {}, created {}",
        m.format_version, m.tool.name, m.tool.version, m.created_at
    );
    if let Some(s) = &m.source {
        let _ = writeln!(
            o,
            "source: {} ({} API, server {}, tenant {}, database {})",
            s.url,
            s.api,
            s.server_version.as_deref().unwrap_or("?"),
            s.tenant,
            s.database
        );
    }
    if let Some(l) = &m.lineage {
        let _ = writeln!(o, "lineage: {l}");
    }
    let _ = writeln!(
        o,
        "\n{:<32} {:>10} {:>6} {:>7} {:>6} {:>12}",
        "collection", "records", "dim", "space", "parts", "bytes"
    );
    for c in &m.collections {
        let bytes: u64 = c.parts.iter().map(|p| p.bytes).sum();
        let dim = c.dimension.map_or("-".into(), |d| d.to_string());
        let flag = if c.changed_during_export { "  (changed during export)" } else { "" };
        let _ = writeln!(
            o,
            "{:<32} {:>10} {:>6} {:>7} {:>6} {:>12}{flag}",
            c.name,
            c.count,
            dim,
            c.space,
            c.parts.len(),
            bytes
        );
    }
    let total: u64 = m.collections.iter().map(|c| c.count).sum();
    let _ = writeln!(o, "{:<32} {:>10}", "total", total);
    if !i.samples.is_empty() {
        let _ = writeln!(o, "\nsamples:");
        for s in &i.samples {
            let meta = shorten(&s.metadata.as_ref().map_or("null".into(), Value::to_string), 200);
            let _ = writeln!(
                o,
                "  {} / {:?}: embedding {:?}…, document {:?}, uri {:?}, metadata {}",
                s.collection, s.id, s.embedding_head, s.document, s.uri, meta
            );
        }
    }
    o
}
