//! What `diff` found in one pair of collections, how a record pair is judged, and how it reads
//! to people. `load --if-exists sync` counts its work with the same type.

use serde::Serialize;

use crate::escape;
use crate::load::settings::SettingsDifference;
use crate::record::RecordRef;
use crate::verify::drift::{Drift, Tolerance, changed_fields, compare_records};
use crate::verify::walk::Sink;

/// A record both sides hold that differs beyond the tolerance.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    pub id: String,
    /// `embedding`, `document`, `uri`, `metadata.KEY` …
    pub fields: Vec<String>,
    /// The first difference, in words ("… is B instead of A").
    pub why: String,
}

/// One collection of side A beside one of side B.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionDiff {
    pub a: String,
    pub b: String,
    pub a_records: u64,
    pub b_records: u64,
    pub settings: SettingsDifference,
    /// The embedding dimensions, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<String>,
    pub only_in_a_count: u64,
    pub only_in_a: Vec<String>,
    pub only_in_b_count: u64,
    pub only_in_b: Vec<String>,
    pub changed_count: u64,
    pub changed: Vec<Changed>,
    /// Equal, drift included.
    pub identical: u64,
    /// Of the identical records, those equal only up to the tolerance.
    pub drifted: u64,
    pub drift: Drift,
    pub tolerance: Tolerance,
}

impl CollectionDiff {
    pub fn new(a: String, b: String, counts: (u64, u64), settings: SettingsDifference, tolerance: Tolerance) -> Self {
        Self {
            a,
            b,
            a_records: counts.0,
            b_records: counts.1,
            settings,
            dimension: None,
            only_in_a_count: 0,
            only_in_a: Vec::new(),
            only_in_b_count: 0,
            only_in_b: Vec::new(),
            changed_count: 0,
            changed: Vec::new(),
            identical: 0,
            drifted: 0,
            drift: Drift::default(),
            tolerance,
        }
    }

    /// No difference beyond the documented server drift.
    pub fn identical(&self) -> bool {
        self.settings.is_empty()
            && self.dimension.is_none()
            && self.only_in_a_count == 0
            && self.only_in_b_count == 0
            && self.changed_count == 0
            && self.a_records == self.b_records
    }

    pub fn note_only_a(&mut self, id: &str, listed: usize) {
        self.only_in_a_count += 1;
        if self.only_in_a.len() < listed {
            self.only_in_a.push(id.to_owned());
        }
    }

    pub fn note_only_b(&mut self, id: &str, listed: usize) {
        self.only_in_b_count += 1;
        if self.only_in_b.len() < listed {
            self.only_in_b.push(id.to_owned());
        }
    }

    /// Judges a record both sides hold; true when it changed.
    pub fn judge(&mut self, a: &RecordRef<'_>, b: &RecordRef<'_>, listed: usize) -> bool {
        match compare_records(a, b, self.tolerance) {
            Ok(d) => {
                self.identical += 1;
                if !d.is_zero() {
                    self.drifted += 1;
                    self.drift.merge(&d);
                }
                false
            }
            Err(why) => {
                self.changed_count += 1;
                if self.changed.len() < listed {
                    let fields = changed_fields(a, b, self.tolerance);
                    self.changed.push(Changed { id: a.id.to_owned(), fields, why });
                }
                true
            }
        }
    }

    /// One line of counts, then one line per finding, for people.
    pub fn describe(&self) -> Vec<String> {
        let (a, b) = (escape::text(&self.a), escape::text(&self.b));
        let names = if a == b { format!("{a:?}") } else { format!("{a:?} = {b:?}") };
        let mut drift = String::new();
        if self.drifted > 0 {
            drift = format!(" ({} of them with server drift)", self.drifted);
        }
        let mut out = vec![format!(
            "{} {names}: {} records in A, {} in B: {} only in A, {} only in B, {} changed, {} identical{drift}",
            if self.identical() { "same" } else { "DIFF" },
            self.a_records,
            self.b_records,
            self.only_in_a_count,
            self.only_in_b_count,
            self.changed_count,
            self.identical
        )];
        for s in self.settings.build.iter().chain(&self.settings.embedding_function).chain(&self.settings.metadata) {
            out.push(format!("  settings: {}", escape::text(s)));
        }
        if let Some(d) = &self.dimension {
            out.push(format!("  settings: {d}"));
        }
        let list = |ids: &[String], n: u64| {
            let shown: Vec<String> = ids.iter().map(|s| format!("{:?}", escape::text(s))).collect();
            let more = n.saturating_sub(ids.len() as u64);
            format!("{}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
        };
        if self.only_in_a_count > 0 {
            out.push(format!("  only in A: {}", list(&self.only_in_a, self.only_in_a_count)));
        }
        if self.only_in_b_count > 0 {
            out.push(format!("  only in B: {}", list(&self.only_in_b, self.only_in_b_count)));
        }
        for c in &self.changed {
            out.push(format!(
                "  changed {:?}: {} ({})",
                escape::text(&c.id),
                c.fields.join(", "),
                escape::text(&c.why)
            ));
        }
        let more = self.changed_count.saturating_sub(self.changed.len() as u64);
        if more > 0 {
            out.push(format!("  and {more} more changed records"));
        }
        out
    }
}

/// The sink of a plain `diff`: counts and the first `listed` ids of each kind.
pub struct Tally<'a> {
    pub diff: &'a mut CollectionDiff,
    pub listed: usize,
}

impl Sink for Tally<'_> {
    fn only_a(&mut self, a: RecordRef<'_>) -> crate::Result<()> {
        self.diff.note_only_a(a.id, self.listed);
        Ok(())
    }
    fn both(&mut self, a: RecordRef<'_>, b: RecordRef<'_>) -> crate::Result<()> {
        self.diff.judge(&a, &b, self.listed);
        Ok(())
    }
    fn only_b(&mut self, id: &str, _b: Option<RecordRef<'_>>) -> crate::Result<()> {
        self.diff.note_only_b(id, self.listed);
        Ok(())
    }
}
