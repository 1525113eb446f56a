//! The result of comparing a snapshot collection with a live one, and how it reads to people.

use serde::Serialize;

use super::drift::{Drift, Tolerance};

/// How many ids of each kind a report lists.
pub const DEFAULT_LISTED: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub source: String,
    pub target: String,
    pub expected_records: u64,
    pub target_records: u64,
    pub expected_space: String,
    pub target_space: String,
    /// A difference in the collection's own metadata (the `hnsw:*` keys aside), if any.
    pub metadata_difference: Option<String>,
    pub expected_digest: String,
    pub target_digest: String,
    pub missing_count: u64,
    pub missing: Vec<String>,
    pub extra_count: u64,
    pub extra: Vec<String>,
    pub different_count: u64,
    pub different: Vec<RecordDifference>,
    /// Records equal only up to the tolerance.
    pub drifted_records: u64,
    pub drift: Drift,
    pub tolerance: Tolerance,
    /// The target may hold more than the snapshot (`--if-exists append`): extra records, a
    /// larger count and other collection metadata are reported but not differences.
    pub subset: bool,
    /// Only these rows of the snapshot collection were compared (a shard's, `load --shard`): the
    /// record counts are the share's, and extra records and digests were not looked at (empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<std::ops::Range<u64>>,
    /// After `load --if-exists sync`: only the records written were read back (their count here),
    /// the ids deleted looked for, and the records left alone taken from the difference walk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_back: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordDifference {
    pub id: String,
    pub why: String,
}

impl Comparison {
    /// Equal up to the documented server drift.
    pub fn ok(&self) -> bool {
        let whole =
            self.expected_records == self.target_records && self.metadata_difference.is_none() && self.extra_count == 0;
        (whole || self.subset)
            && self.expected_space == self.target_space
            && self.missing_count == 0
            && self.different_count == 0
    }

    /// Bit-for-bit equal (the digests agree; for a share, no record drifted).
    pub fn exact(&self) -> bool {
        match self.share {
            Some(_) => self.ok() && self.drift.is_zero(),
            None => self.ok() && self.expected_digest == self.target_digest,
        }
    }

    /// One line per finding, for people.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let here = format!("collection {:?} (snapshot {:?})", self.target, self.source);
        if self.expected_records != self.target_records && !self.subset && self.share.is_none() {
            out.push(format!("{here}: {} records, the snapshot has {}", self.target_records, self.expected_records));
        }
        if self.expected_space != self.target_space {
            out.push(format!("{here}: distance space {}, the snapshot has {}", self.target_space, self.expected_space));
        }
        if let Some(m) = self.metadata_difference.as_ref().filter(|_| !self.subset) {
            out.push(format!("{here}: collection {m}"));
        }
        let list = |ids: &[String], n: u64| {
            let more = n.saturating_sub(ids.len() as u64);
            let shown: Vec<String> = ids.iter().map(|s| format!("{s:?}")).collect();
            format!("{}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
        };
        if self.missing_count > 0 {
            out.push(format!(
                "{here}: {} records missing: {}",
                self.missing_count,
                list(&self.missing, self.missing_count)
            ));
        }
        if self.extra_count > 0 && !self.subset {
            out.push(format!(
                "{here}: {} records not in the snapshot: {}",
                self.extra_count,
                list(&self.extra, self.extra_count)
            ));
        }
        for d in &self.different {
            out.push(format!("{here}: record {:?}: {}", d.id, d.why));
        }
        let more = self.different_count.saturating_sub(self.different.len() as u64);
        if more > 0 {
            out.push(format!("{here}: {more} more records differ"));
        }
        out
    }

    /// The drift, in words ("" when there was none).
    pub fn drift_note(&self) -> String {
        if self.drift.is_zero() {
            return String::new();
        }
        let mut parts = Vec::new();
        let d = &self.drift;
        if d.embedding_values > 0 {
            parts.push(format!("{} embedding values (max {} ulp)", d.embedding_values, d.max_embedding_ulps));
        }
        if d.metadata_values > 0 {
            parts.push(format!("{} float metadata values (max {} ulp)", d.metadata_values, d.max_metadata_ulps));
        }
        if d.empty_metadata > 0 {
            parts.push(format!("{} null metadata read back as {{}}", d.empty_metadata));
        }
        format!("server drift in {} records: {}", self.drifted_records, parts.join(", "))
    }
}
