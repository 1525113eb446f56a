//! `report.json` and the readable summary. The report holds no timings so that it, like every
//! other output file, is byte-identical across runs; seconds go to the summary only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::checks::Reason;

pub const REPORT_FILE: &str = "report.json";
const EXAMPLES_PER_RULE: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input_manifest_blake3: String,
    pub spec_blake3: String,
    pub records_in: u64,
    pub targets: Vec<TargetReport>,
    /// Records no rule sent to a target (a `reject` rule or the default).
    pub rejected_by_routing: u64,
    pub written: u64,
    pub rejected: u64,
    /// Reasons per rule; a record rejected for two reasons counts under both.
    pub reasons_by_rule: BTreeMap<String, u64>,
    pub rejected_by_source: BTreeMap<String, u64>,
    pub pass_rate: f64,
    pub min_pass_rate: f64,
    pub gate_passed: bool,
    /// True when a loadable snapshot (with manifest.json) was written.
    pub snapshot_written: bool,
    pub examples: BTreeMap<String, Vec<Example>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    pub routed: u64,
    pub written: u64,
    pub rejected: u64,
    pub dimension: Option<usize>,
    /// Documents written cut to the limits (`validate.trim_documents`); absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub trimmed_documents: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub source_collection: String,
    pub id: String,
    pub field: Option<String>,
    pub message: String,
}

impl Report {
    pub fn add_reasons(&mut self, collection: &str, id: &str, reasons: &[Reason]) {
        self.rejected += 1;
        *self.rejected_by_source.entry(collection.to_owned()).or_default() += 1;
        for r in reasons {
            *self.reasons_by_rule.entry(r.rule.to_owned()).or_default() += 1;
            let ex = self.examples.entry(r.rule.to_owned()).or_default();
            if ex.len() < EXAMPLES_PER_RULE {
                ex.push(Example {
                    source_collection: collection.to_owned(),
                    id: id.to_owned(),
                    field: r.field.clone(),
                    message: r.message.clone(),
                });
            }
        }
    }
}

/// What the command prints: the report plus where things are and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct TransformSummary {
    pub report: Report,
    pub out: Option<PathBuf>,
    pub manifest_blake3: Option<String>,
    pub dry_run: bool,
    pub seconds: f64,
}

pub fn render(s: &TransformSummary) -> String {
    let r = &s.report;
    let mut o = String::new();
    let _ = writeln!(o, "{:<32} {:>9} {:>9} {:>9} {:>6}", "target", "routed", "written", "rejected", "dim");
    for t in &r.targets {
        let dim = t.dimension.map_or("-".into(), |d| d.to_string());
        let _ = writeln!(o, "{:<32} {:>9} {:>9} {:>9} {dim:>6}", t.name, t.routed, t.written, t.rejected);
    }
    for t in r.targets.iter().filter(|t| t.trimmed_documents > 0) {
        let _ =
            writeln!(o, "{}: {} document(s) cut to the limits (validate.trim_documents)", t.name, t.trimmed_documents);
    }
    if r.rejected_by_routing > 0 {
        let _ = writeln!(
            o,
            "{:<32} {:>9} {:>9} {:>9}",
            "(rejected by routing)", r.rejected_by_routing, 0, r.rejected_by_routing
        );
    }
    if !r.reasons_by_rule.is_empty() {
        let _ = writeln!(o, "rejection reasons:");
        for (rule, n) in &r.reasons_by_rule {
            let ex = r.examples.get(rule).and_then(|e| e.first());
            let ex = ex.map_or(String::new(), |e| {
                let field = e.field.as_ref().map_or(String::new(), |f| format!(" [{f}]"));
                format!("  e.g. {}/{:?}{field}: {}", e.source_collection, e.id, e.message)
            });
            let _ = writeln!(o, "  {rule:<28} {n:>7}{ex}");
        }
    }
    let rate = r.records_in as f64 / s.seconds.max(1e-9);
    let _ = writeln!(
        o,
        "{} records in: {} passed ({:.1}%), {} rejected; gate {:.1}%: {}; {:.2}s ({rate:.0} records/s)",
        r.records_in,
        r.written,
        r.pass_rate * 100.0,
        r.rejected,
        r.min_pass_rate * 100.0,
        if r.gate_passed { "passed" } else { "FAILED" },
        s.seconds,
    );
    match (&s.out, s.dry_run, r.snapshot_written) {
        (_, true, _) => {
            let _ = writeln!(o, "dry run: no snapshot written");
        }
        (Some(out), false, true) => {
            let h = s.manifest_blake3.as_deref().unwrap_or("");
            let _ = writeln!(
                o,
                "snapshot {} (manifest blake3 {}); rejects.parquet and report.json beside it",
                out.display(),
                &h[..h.len().min(16)]
            );
        }
        (Some(out), false, false) => {
            let _ = writeln!(o, "NOT a snapshot: {} holds only rejects.parquet and report.json", out.display());
        }
        (None, false, _) => {}
    }
    o
}
