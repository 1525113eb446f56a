//! `load --shard I/N`: which rows of each collection shard I of N owns. N processes (on one
//! machine or many) load one snapshot together; every row belongs to exactly one shard, and the
//! split depends only on the snapshot, so a rerun of a shard owns the same rows.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::error::LoadError;
use super::{IfExists, LoadPlan};
use crate::error::{Error, Result};
use crate::snapshot::reader::Snapshot;
use crate::snapshot::{CollectionEntry, SnapshotError};

/// The environment variable a Kubernetes Indexed Job sets to the pod's index (`--shard auto/N`).
pub const JOB_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `I/N`, or `auto/N` with I taken from `job_index` (the value of
    /// [`JOB_INDEX_VAR`], passed in so the library never reads the environment).
    pub fn parse(spec: &str, job_index: Option<&str>) -> Result<Self> {
        let bad = |why: String| Error::from(LoadError::BadShard { spec: spec.to_owned(), why });
        let (i, n) = spec.split_once('/').ok_or_else(|| bad("expected I/N, e.g. 0/3".into()))?;
        let count = number(n).ok_or_else(|| bad(format!("N must be a whole number, not {n:?}")))?;
        if count == 0 {
            return Err(bad("N must be at least 1".into()));
        }
        let index = if i == "auto" {
            let v = job_index.ok_or_else(|| bad(format!("I is auto but {JOB_INDEX_VAR} is not set")))?;
            number(v).ok_or_else(|| bad(format!("{JOB_INDEX_VAR}={v:?} is not a whole number")))?
        } else {
            number(i).ok_or_else(|| bad(format!("I must be a whole number or auto, not {i:?}")))?
        };
        if index >= count {
            let from = if i == "auto" { format!(" ({JOB_INDEX_VAR})") } else { String::new() };
            return Err(bad(format!(
                "I{from} is {index}; it must be below N ({count}): shards are 0 to {}",
                count - 1
            )));
        }
        Ok(Self { index, count })
    }

    /// The rows of a collection of `total` rows (in part order) this shard owns:
    /// `[index·total/count, (index+1)·total/count)`, possibly empty.
    pub fn rows(&self, total: u64) -> Range<u64> {
        let at = |i: u64| (u128::from(i) * u128::from(total) / u128::from(self.count)) as u64;
        at(self.index)..at(self.index + 1)
    }

    /// How the shard appears in file names: `shard-1-of-3`.
    pub fn file_tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// Digits only (no sign, no spaces), as a u64.
fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// The part of one collection a shard loads: its rows and what it reads to get them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Share {
    pub shard: Shard,
    /// Rows `[first_row, end_row)` of the collection, in part order.
    pub first_row: u64,
    pub end_row: u64,
    /// Parts and row groups read for them (the others are never opened).
    pub parts: usize,
    pub row_groups: usize,
}

/// Rows `[first_row, end_row)` of `entry` that `shard` owns, and the parts and row groups that
/// hold them (read from part footers).
pub fn share_of(snap: &Snapshot, entry: &CollectionEntry, shard: Shard) -> Result<Share, SnapshotError> {
    let rows = shard.rows(entry.count);
    let (mut parts, mut row_groups) = (0, 0);
    for span in snap.row_spans(entry, rows.clone()) {
        parts += 1;
        row_groups += span?.row_groups.len();
    }
    Ok(Share { shard, first_row: rows.start, end_row: rows.end, parts, row_groups })
}

/// Refuses the `--if-exists` modes a shard cannot honour: `replace` would delete what other
/// shards wrote, and `fail` would stop every shard but the one that created the collection.
pub fn check_if_exists(plan: &LoadPlan) -> Result<()> {
    let refuse = |mode, why| Err(LoadError::ShardIfExists { mode, why }.into());
    match (plan.shard, plan.if_exists) {
        (Some(_), Some(IfExists::Replace)) => refuse(
            "replace",
            "a shard never deletes what another wrote; replace first (delete the target collections), then run the shards",
        ),
        (Some(_), Some(IfExists::Sync)) => {
            refuse("sync", "a shard never deletes what another wrote; sync without --shard")
        }
        (Some(_), Some(IfExists::Fail)) => {
            refuse("fail", "the shards join the collection one of them creates; leave --if-exists out")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_belongs_to_exactly_one_shard() {
        for total in [0u64, 1, 2, 3, 7, 10, 1000, 1001, u64::MAX] {
            for count in [1u64, 2, 3, 4, 7, 13] {
                let ranges: Vec<Range<u64>> = (0..count).map(|index| Shard { index, count }.rows(total)).collect();
                assert_eq!(ranges[0].start, 0, "{total} rows, {count} shards");
                assert_eq!(ranges.last().unwrap().end, total, "{total} rows, {count} shards");
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "{total} rows, {count} shards: {ranges:?}");
                }
                let sizes: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{total} rows, {count} shards: balanced within one row: {sizes:?}");
            }
        }
        assert_eq!(Shard { index: 1, count: 3 }.rows(10), 3..6);
        assert_eq!(Shard { index: 2, count: 3 }.rows(2), 1..2);
        assert_eq!(Shard { index: 0, count: 3 }.rows(2), 0..0, "an empty share is allowed");
    }

    #[test]
    fn specs() {
        assert_eq!(Shard::parse("0/3", None).unwrap(), Shard { index: 0, count: 3 });
        assert_eq!(Shard::parse("2/3", Some("0")).unwrap(), Shard { index: 2, count: 3 }, "an explicit I wins");
        assert_eq!(Shard::parse("auto/4", Some("3")).unwrap(), Shard { index: 3, count: 4 });
        assert_eq!(Shard::parse("0/1", None).unwrap().to_string(), "0/1");
        assert_eq!(Shard { index: 1, count: 3 }.file_tag(), "shard-1-of-3");
        for (spec, job, needle) in [
            ("3/3", None, "must be below N (3): shards are 0 to 2"),
            ("0/0", None, "N must be at least 1"),
            ("x/2", None, "I must be a whole number or auto, not \"x\""),
            ("1/", None, "N must be a whole number"),
            ("-1/2", None, "I must be a whole number"),
            ("+1/2", None, "I must be a whole number"),
            (" 1/2", None, "I must be a whole number"),
            ("1/2/3", None, "N must be a whole number"),
            ("1", None, "expected I/N"),
            ("auto/2", None, "JOB_COMPLETION_INDEX is not set"),
            ("auto/2", Some("2"), "I (JOB_COMPLETION_INDEX) is 2; it must be below N (2)"),
            ("auto/2", Some("one"), "JOB_COMPLETION_INDEX=\"one\" is not a whole number"),
            ("0/99999999999999999999", None, "N must be a whole number"),
        ] {
            let err = Shard::parse(spec, job).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::INPUT, "{spec}");
            let text = err.to_string();
            assert!(text.contains(needle) && text.contains(&format!("--shard {spec:?}")), "{spec}: {text}");
        }
    }
}
