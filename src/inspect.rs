//! What a snapshot holds, for people: collections, counts, dimensions, spaces, parts, samples.

use std::fmt::Write;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::escape::text;
use crate::snapshot::Manifest;
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::Snapshot;
use crate::snapshot::store::Store;

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

/// Reads the manifest and, per collection, only the row groups the samples come from.
pub fn inspect(store: Arc<dyn Store>, samples_per_collection: usize) -> Result<Inspection> {
    let snap = Snapshot::open_store(store)?;
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

/// The human-readable form: a header, a table of collections, then a few samples as a person
/// reads them (untrusted text escaped, documents quoted and cut, `—` for an absent value).
pub fn render(i: &Inspection) -> String {
    let mut o = header(&i.manifest);
    o.push_str(&table(&i.manifest));
    if !i.samples.is_empty() {
        o.push_str("\nsamples:\n");
        for s in &i.samples {
            let dim = i.manifest.collection(&s.collection).and_then(|c| c.dimension);
            o.push_str(&sample(s, dim));
        }
    }
    o
}

fn header(m: &Manifest) -> String {
    let mut o = format!(
        "snapshot format {} by {} {}, created {}\n",
        m.format_version,
        text(&m.tool.name),
        text(&m.tool.version),
        text(&m.created_at)
    );
    match &m.source {
        Some(s) if s.kind.as_deref() == Some("directory") => {
            let _ = writeln!(
                o,
                "source: the data directory {} (Chroma schema {}, read by the {} server rules; tenant {}, database {})",
                text(&s.url),
                text(s.schema_version.as_deref().unwrap_or("?")),
                text(s.server_version.as_deref().unwrap_or("?")),
                text(&s.tenant),
                text(&s.database)
            );
        }
        Some(s) => {
            let _ = writeln!(
                o,
                "source: {} ({} API, server {}, tenant {}, database {})",
                text(&s.url),
                text(&s.api),
                text(s.server_version.as_deref().unwrap_or("?")),
                text(&s.tenant),
                text(&s.database)
            );
        }
        None => {}
    }
    if let Some(l) = &m.lineage {
        let _ = writeln!(o, "lineage: {}", text(&l.to_string()));
    }
    o
}

fn table(m: &Manifest) -> String {
    let mut o = format!(
        "\n{:<32} {:>10} {:>6} {:>7} {:>6} {:>12}\n",
        "collection", "records", "dim", "space", "parts", "bytes"
    );
    for c in &m.collections {
        let bytes: u64 = c.parts.iter().map(|p| p.bytes).sum();
        let dim = c.dimension.map_or("-".into(), |d| d.to_string());
        let flag = if c.changed_during_export { "  (changed during export)" } else { "" };
        let _ = writeln!(
            o,
            "{:<32} {:>10} {:>6} {:>7} {:>6} {:>12}{flag}",
            text(&c.name),
            c.count,
            dim,
            text(&c.space),
            c.parts.len(),
            bytes
        );
    }
    let total: u64 = m.collections.iter().map(|c| c.count).sum();
    let _ = writeln!(o, "{:<32} {:>10}", "total", total);
    for c in m.collections.iter().filter(|c| c.filter.is_some()) {
        let f = c.filter.as_ref().map(ToString::to_string).unwrap_or_default();
        let _ = writeln!(o, "partial: {} holds only the records selected by {}", text(&c.name), text(&f));
    }
    o
}

/// One sample as a small block: where it is, then one value per line.
fn sample(s: &Sample, dim: Option<usize>) -> String {
    let head: Vec<String> = s.embedding_head.iter().map(f32::to_string).collect();
    let more = if dim.is_some_and(|d| d > head.len()) { ", …" } else { "" };
    let quoted = |v: &str| format!("\"{}\"", text(v));
    let none = || NONE.to_owned();
    let meta = s.metadata.as_ref().map_or_else(none, |m| text(&shorten(&m.to_string(), 200)).into_owned());
    format!(
        "  {}, id {}\n    embedding [{}{more}]\n    document  {}\n    uri       {}\n    metadata  {meta}\n",
        text(&s.collection),
        text(&s.id),
        head.join(", "),
        s.document.as_deref().map_or_else(none, quoted),
        s.uri.as_deref().map_or_else(none, quoted),
    )
}

/// Shown for an absent value.
const NONE: &str = "—";
