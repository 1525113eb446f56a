//! `diff A B`: what differs between two sets of collections, each a snapshot or a live server.
//! Collections are paired by name (or `--collection a=b`); per pair, settings, counts, records
//! only on one side, changed records (which fields) and identical ones, Chroma's documented write
//! drift counted as identical. The record walk is `verify`'s ([`crate::verify::walk`]): past a
//! server by id, or two snapshots sorted on disk, so memory stays flat at any size.

pub mod report;

use serde::Serialize;

pub use report::{Changed, CollectionDiff, Tally};

use crate::chroma::{ChromaError, Client, ConnectOptions};
use crate::error::{Error, Result};
use crate::load::settings::{self, entry_of};
use crate::record::RecordFilter;
use crate::snapshot::CollectionEntry;
use crate::snapshot::location::Location;
use crate::snapshot::reader::Snapshot;
use crate::verify::compare::drifts_float_metadata;
use crate::verify::drift::Tolerance;
use crate::verify::source::Side;
use crate::verify::walk;

/// One side of a diff, as given.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Snapshot(Location),
    Server(ConnectOptions),
}

/// A validated diff.
#[derive(Debug, Clone)]
pub struct DiffPlan {
    pub a: Endpoint,
    pub b: Endpoint,
    /// `NAME_IN_A=NAME_IN_B` pairs, globs and excludes (matched against A's names, then B's
    /// others); none named: every collection of either side, paired by name.
    pub selection: crate::select::Selection,
    /// Ids listed per kind of difference.
    pub listed: usize,
}

/// A collection only one side holds.
#[derive(Debug, Clone, Serialize)]
pub struct Lone {
    pub name: String,
    pub records: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub a: String,
    pub b: String,
    pub collections: Vec<CollectionDiff>,
    pub collections_only_in_a: Vec<Lone>,
    pub collections_only_in_b: Vec<Lone>,
    pub seconds: f64,
}

impl DiffReport {
    pub fn identical(&self) -> bool {
        self.collections_only_in_a.is_empty()
            && self.collections_only_in_b.is_empty()
            && self.collections.iter().all(CollectionDiff::identical)
    }
}

/// An endpoint, open.
pub enum Opened {
    Snapshot(Snapshot),
    Server(Client),
}

impl Opened {
    pub async fn open(e: &Endpoint) -> Result<Self> {
        Ok(match e {
            Endpoint::Snapshot(loc) => Opened::Snapshot(Snapshot::open_store(loc.open_store()?)?),
            Endpoint::Server(c) => Opened::Server(Client::connect(c).await?),
        })
    }

    fn label(&self) -> String {
        match self {
            Opened::Snapshot(s) => s.store.location("").display().to_string(),
            Opened::Server(c) => c.url().to_owned(),
        }
    }

    async fn names(&self) -> Result<Vec<String>> {
        Ok(match self {
            Opened::Snapshot(s) => s.manifest.collections.iter().map(|c| c.name.clone()).collect(),
            Opened::Server(c) => c.list_collections().await?.into_iter().map(|c| c.name).collect(),
        })
    }

    /// A collection's records and settings; `None` when this side has no such collection. A server
    /// side is seen through `filter` (a partial snapshot's on the other side).
    async fn side(&self, name: &str, filter: Option<&RecordFilter>) -> Result<Option<(Side, CollectionEntry)>> {
        match self {
            Opened::Snapshot(s) => Ok(s.manifest.collection(name).map(|e| (Side::snapshot(s, e), e.clone()))),
            Opened::Server(c) => match c.get_collection(name).await {
                Ok(info) => {
                    let info = info.filtered(filter);
                    let count = c.count(&info).await?;
                    Ok(Some((Side::server(c, &info), entry_of(&info, count))))
                }
                Err(ChromaError::NoSuchCollection { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Whether float metadata on this side may have moved by the 1.x server's parsing: a 1.x
    /// server, or a snapshot exported from one.
    fn drifts_float_metadata(&self) -> bool {
        match self {
            Opened::Server(c) => drifts_float_metadata(c),
            Opened::Snapshot(s) => s.manifest.source.as_ref().is_some_and(|src| {
                src.api == "v2" && !src.server_version.as_deref().is_some_and(|v| v.starts_with("0."))
            }),
        }
    }
}

pub async fn diff(plan: &DiffPlan) -> Result<DiffReport> {
    let started = std::time::Instant::now();
    let (a, b) = futures::try_join!(Opened::open(&plan.a), Opened::open(&plan.b))?;
    let mut report = DiffReport {
        a: a.label(),
        b: b.label(),
        collections: Vec::new(),
        collections_only_in_a: Vec::new(),
        collections_only_in_b: Vec::new(),
        seconds: 0.0,
    };
    let drifts = a.drifts_float_metadata() || b.drifts_float_metadata();
    for (an, bn) in pairs(&a, &b, &plan.selection).await? {
        let (mut x, mut y) = (a.side(&an, None).await?, b.side(&bn, None).await?);
        // A partial snapshot (export --where) is compared with the records its filter selects.
        let filter = [&x, &y].into_iter().flatten().find_map(|(_, e)| e.filter.clone());
        if let Some(f) = filter {
            (x, y) = (a.side(&an, Some(&f)).await?, b.side(&bn, Some(&f)).await?);
        }
        match (x, y) {
            (Some(x), Some(y)) => report.collections.push(compare(x, y, drifts, plan.listed).await?),
            (Some((_, e)), None) => report.collections_only_in_a.push(Lone { name: an, records: e.count }),
            (None, Some((_, e))) => report.collections_only_in_b.push(Lone { name: bn, records: e.count }),
            (None, None) if plan.selection.include.is_empty() => {}
            (None, None) => {
                return Err(Error::Input(format!("--collection {an}={bn}: neither side has such a collection")));
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The pairs to compare: those asked, else every name of A (in A's order), then B's others;
/// globs and excludes are matched against the same names.
async fn pairs(a: &Opened, b: &Opened, asked: &crate::select::Selection) -> Result<Vec<(String, String)>> {
    if !asked.needs_listing() {
        return Ok(asked.include.clone());
    }
    let (an, bn) = (a.names().await?, b.names().await?);
    let mut names = an.clone();
    names.extend(bn.into_iter().filter(|n| !an.contains(n)));
    Ok(asked.resolve(&names, &format!("{} or {}", a.label(), b.label()))?)
}

/// Compares one pair of collections: settings, then every record.
pub async fn compare(
    (a, ea): (Side, CollectionEntry),
    (b, eb): (Side, CollectionEntry),
    drifts: bool,
    listed: usize,
) -> Result<CollectionDiff> {
    let tol = Tolerance::for_target(&ea.space, drifts);
    let mut d = CollectionDiff::new(
        ea.name.clone(),
        eb.name.clone(),
        (ea.count, eb.count),
        settings::compare(&ea, &eb, tol),
        tol,
    );
    if let (Some(x), Some(y)) = (ea.dimension, eb.dimension)
        && x != y
    {
        d.dimension = Some(format!("dimension {y} instead of {x}"));
    }
    let dim = ea.dimension.or(eb.dimension);
    walk::walk(&a, &b, (ea.count, eb.count), dim, &mut Tally { diff: &mut d, listed }).await?;
    Ok(d)
}
