//! chroma-snap: migrate ChromaDB collections through offline, content-hashed Parquet snapshots.
//!
//! Data flows one way, in three pipelines:
//! - `export`: chroma → snapshot. List ids, fetch records by id in pages, write zstd Parquet parts,
//!   then the manifest with blake3 hashes and a records digest per collection.
//!   `export --from-dir` ([`fromdir`]) writes the same snapshot from a stopped server's data
//!   directory: SQLite read-only, the HNSW files and the write-ahead log replayed, no server.
//! - `transform`: snapshot → snapshot, offline (no network). Compile a TOML spec, verify the input,
//!   route/map/validate row groups in parallel, write in input order; rejects and a report beside.
//! - `load`: snapshot → chroma, journalled and verified by reading back.
//!
//! [`snapshot`] never speaks HTTP; [`chroma`] never touches Parquet; [`record`] is what they share.
//! [`limits`] states a target's quotas once, for load's pre-flight and transform's validation.

pub mod chroma;
pub mod diff;
pub mod error;
pub mod escape;
pub mod export;
pub mod fromdir;
pub mod fsmode;
pub mod inspect;
pub mod limits;
pub mod load;
pub mod progress;
pub mod record;
pub mod select;
pub mod snapshot;
pub mod spill;
pub mod transform;
pub mod verify;

pub use error::{Error, Result};

/// Property-test cases per property: `PROPTEST_CASES` when set (longer runs), 512 in CI.
#[cfg(test)]
pub(crate) fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}
