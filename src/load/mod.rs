//! Load: snapshot → chroma. Connect → pre-flight (every part's hash, every record against the
//! target's write rules and, when checked, its quotas) → per collection: decide (create,
//! resume, replace, append) → cut deterministic batches → send several in flight, journalling each
//! acknowledged batch → read the target back and compare it with the snapshot. Under `--shard I/N`
//! the same steps run on the shard's rows of each collection only ([`shard`]).

pub mod batcher;
pub mod body;
mod decide;
mod dry;
pub mod error;
pub mod journal;
pub mod preflight;
mod send;
pub mod settings;
pub mod shard;
pub mod sync;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use self::batcher::{BatchLimits, Batcher};
use self::body::{Encoding, encode};
use self::decide::{check_journal_start, decide};
use self::error::LoadError;
use self::journal::{Journal, Line, WriteOp};
use self::shard::{Shard, Share};
use crate::chroma::{Api, Client, ConnectOptions};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::progress::{Bar, Progress};
use crate::record::RecordPage;
use crate::snapshot::CollectionEntry;
use crate::snapshot::location::Location;
use crate::snapshot::reader::{Snapshot, part_windows};
use crate::snapshot::store::SpoolStore;
use crate::verify::Comparison;

/// What to do when a target collection already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IfExists {
    /// Stop (the default when no journal knows the collection).
    Fail,
    /// Carry on from the journal.
    Resume,
    /// Delete it and load it anew (how an older snapshot rolls a target back).
    Replace,
    /// Upsert the snapshot's records into it.
    Append,
    /// Make it equal to the snapshot with the fewest writes: delete what the snapshot lacks,
    /// rewrite changed records, add missing ones ([`sync`]).
    Sync,
}

/// Which target quotas the pre-flight checks (`--limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetLimits {
    /// Chroma Cloud's documented quotas when the target is Chroma Cloud (by host), none otherwise.
    Auto,
    /// None (`--limits none`), even on Chroma Cloud.
    Off,
    /// These (`--limits cloud`, `--limits FILE.toml`).
    Given(Box<Limits>),
}

impl TargetLimits {
    /// The quotas to check against a target (`on_cloud`: it is Chroma Cloud), if any.
    pub fn resolve(&self, on_cloud: bool) -> Option<Limits> {
        match self {
            Self::Auto => on_cloud.then(Limits::cloud),
            Self::Off => None,
            Self::Given(l) => Some((**l).clone()),
        }
    }
}

/// The 1.x server refuses bodies over 40 MiB; stay well under it.
pub const MAX_BODY_BYTES_V2: usize = 38 << 20;

/// A validated load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// A directory or an object-store prefix.
    pub snapshot: Location,
    pub connect: ConnectOptions,
    /// Collections to load (`SRC=DST` renames, globs, excludes); none named means every
    /// collection under its own name.
    pub selection: crate::select::Selection,
    /// `None`: resume what the journal knows, fail on any other existing collection.
    pub if_exists: Option<IfExists>,
    pub dry_run: bool,
    pub verify: bool,
    /// Records per request (also capped by the server's max_batch_size).
    pub batch_size: usize,
    /// Upper bound of one request body in bytes.
    pub batch_bytes: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Use upsert even into collections the load creates.
    pub upsert: bool,
    pub journal: Option<PathBuf>,
    /// Ids listed per kind of difference in the read-back report.
    pub listed: usize,
    /// For tests: stop with an error once this many batches were acknowledged in this run.
    pub fail_after_batches: Option<u64>,
    /// Load only this shard's rows of each collection (`--shard I/N`).
    pub shard: Option<Shard>,
    /// The target quotas checked before any write (`--limits`).
    pub limits: TargetLimits,
}

impl LoadPlan {
    /// The rows of a collection of `count` records this load sends: all, or the shard's.
    pub fn rows(&self, count: u64) -> Range<u64> {
        self.shard.map_or(0..count, |s| s.rows(count))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub snapshot: PathBuf,
    pub manifest_blake3: String,
    pub target: String,
    pub api: &'static str,
    pub server_version: Option<String>,
    pub encoding: &'static str,
    pub dry_run: bool,
    pub journal: Option<PathBuf>,
    /// The target quotas the pre-flight checked (`cloud` or the limits file), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<String>,
    /// `--shard I/N`: only this shard's rows were loaded and read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub collections: Vec<CollectionLoad>,
    pub records_sent: u64,
    /// From an object store: the bytes downloaded (each part once when `TMPDIR` has room).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloaded_bytes: Option<u64>,
    pub seconds: f64,
}

impl LoadSummary {
    /// Every read-back comparison found the target equal (up to drift).
    pub fn verified_ok(&self) -> bool {
        self.collections.iter().all(|c| c.comparison.as_ref().is_none_or(Comparison::ok))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionLoad {
    pub source: String,
    pub target: String,
    /// created, resumed, replaced, appended, joined (a shard), loaded already; `would …` in a
    /// dry run.
    pub action: String,
    pub op: WriteOp,
    /// Records this load is responsible for (a shard's share of the collection).
    pub records: u64,
    /// `--shard`: which rows of the collection, and what is read to get them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    pub batches: u64,
    pub batches_sent: u64,
    pub records_sent: u64,
    pub bytes: u64,
    pub limits: BatchLimits,
    pub seconds: f64,
    /// Records sent per second in this run.
    pub rate: f64,
    pub estimated_seconds: Option<f64>,
    /// `--if-exists sync`: `added`, `updated`, `deleted`, `unchanged` (a created collection: all
    /// added).
    #[serde(flatten)]
    pub sync: Option<sync::SyncCounts>,
    pub comparison: Option<Comparison>,
}

pub async fn load(plan: &LoadPlan, progress: &dyn Progress) -> Result<LoadSummary> {
    let started = Instant::now();
    shard::check_if_exists(plan)?;
    let mut snap = Snapshot::open_store(plan.snapshot.open_store()?)?;
    let manifest_blake3 = snap.manifest_blake3.to_hex();
    let names: Vec<String> = select(&snap, &plan.selection)?.into_iter().map(|(e, _)| e.name.clone()).collect();
    read_once(&mut snap, plan, &names);
    let pairs = select(&snap, &plan.selection)?;

    let client = connect(plan).await?;
    let quotas = plan.limits.resolve(client.is_chroma_cloud());
    if let Some(q) = &quotas {
        tracing::info!("checking every record and collection against the {} limits before any write", q.origin);
    }
    let limits = limits_for(&client, plan, quotas.as_ref());
    // Only GETs went out so far: refuse a damaged or unloadable snapshot before any write.
    let over_quota = quotas.as_ref().map(|q| preflight::collection_problems(&pairs, client.api, q)).unwrap_or_default();
    let rules = preflight::WriteRules::for_target(&client, limits, names.into_iter().collect(), quotas.clone());
    let verdict = if plan.shard.is_some() {
        let shares: Vec<(&CollectionEntry, Range<u64>)> = pairs.iter().map(|(e, _)| (*e, plan.rows(e.count))).collect();
        preflight::check_share(&snap, &shares, &rules)
    } else {
        preflight::check(snap.store.clone(), &rules)
    };
    preflight::with_collections(verdict, snap.store.location(""), over_quota)?;
    if plan.if_exists == Some(IfExists::Sync) {
        sync::check_settings(&pairs, &client).await?;
    }
    let mut summary = LoadSummary {
        snapshot: PathBuf::from(plan.snapshot.to_string()),
        manifest_blake3: manifest_blake3.clone(),
        target: client.url().to_owned(),
        api: client.api.as_str(),
        server_version: client.server_version.clone(),
        encoding: limits.encoding.as_str(),
        dry_run: plan.dry_run,
        journal: None,
        quotas: quotas.map(|q| q.origin),
        shard: plan.shard,
        collections: Vec::new(),
        records_sent: 0,
        downloaded_bytes: None,
        seconds: 0.0,
    };
    let journals = journal::DefaultJournals::new(
        &plan.snapshot,
        &manifest_blake3,
        client.url(),
        &client.tenant,
        &client.database,
    )?;
    let jpath = plan.journal.clone().unwrap_or_else(|| journals.path(plan.shard));
    if let Some(s) = plan.shard
        && let Some((path, theirs)) = journals.other_split(s)
    {
        return Err(LoadError::OtherSplit { path, theirs, ours: format!("shard {s}") }.into());
    }
    if plan.dry_run {
        summary.collections = dry::plan_all(&snap, &pairs, &client, limits, plan, &jpath).await?;
        summary.downloaded_bytes = snap.store.bytes_fetched();
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    let mut journal = Journal::open(&jpath)?;
    summary.journal = Some(jpath.clone());
    check_journal_start(&mut journal, &manifest_blake3, &client, plan)?;

    let total: u64 = pairs.iter().map(|(e, _)| plan.rows(e.count)).map(|r| r.end - r.start).sum();
    let mut run = Run {
        snap: &snap,
        client: &client,
        limits,
        plan,
        progress,
        overall: progress.bar("all collections", Some(total), "records"),
        acked_in_run: 0,
    };
    for (entry, dst) in &pairs {
        let c = load_collection(&mut run, &mut journal, entry, dst).await?;
        summary.records_sent += c.records_sent;
        summary.collections.push(c);
    }
    run.overall.finish();
    summary.downloaded_bytes = snap.store.bytes_fetched();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// A snapshot on an object store is downloaded once: the pre-flight's reads fill local copies
/// (in `TMPDIR`) that the load then sends, so what is sent is what was checked. Without room for
/// the copies, each part is downloaded twice (pre-flight, then load), and the log says so.
fn read_once(snap: &mut Snapshot, plan: &LoadPlan, loaded: &[String]) {
    if !snap.store.remote() {
        return;
    }
    // The pre-flight reads every part (the whole snapshot's hashes), a shard only its parts.
    let needed: u64 = snap
        .manifest
        .collections
        .iter()
        .filter(|c| plan.shard.is_none() || loaded.contains(&c.name))
        .flat_map(|c| match plan.shard {
            None => c.parts.iter().collect::<Vec<_>>(),
            Some(_) => part_windows(c, plan.rows(c.count)).into_iter().map(|(i, _)| &c.parts[i]).collect(),
        })
        .map(|p| p.bytes)
        .sum();
    match SpoolStore::with_room(snap.store.clone(), needed) {
        Ok(Ok(spool)) => {
            tracing::info!("downloading {needed} bytes of parts once, into {}", spool.dir().display());
            snap.store = Arc::new(spool);
        }
        Ok(Err(free)) => tracing::warn!(
            "{} has {free} bytes free and a local copy of the parts needs {needed}: each part is downloaded \
             twice (pre-flight, then load); point TMPDIR at a larger disk to download once",
            std::env::temp_dir().display()
        ),
        Err(e) => tracing::warn!(
            "cannot keep local copies in {} ({e}): each part is downloaded twice (pre-flight, then load)",
            std::env::temp_dir().display()
        ),
    }
}

async fn connect(plan: &LoadPlan) -> Result<Client> {
    let client = Client::connect(&plan.connect).await?;
    tracing::info!(
        "connected to {} ({} API, server {}, max_batch_size {}, base64 {})",
        client.url(),
        client.api.as_str(),
        client.server_version.as_deref().unwrap_or("?"),
        client.max_batch_size.map_or("?".into(), |n| n.to_string()),
        client.supports_base64
    );
    Ok(client)
}

/// The `(entry, target name)` pairs to load, in the order asked (all collections when none).
pub fn select<'a>(
    snap: &'a Snapshot,
    selection: &crate::select::Selection,
) -> Result<Vec<(&'a CollectionEntry, String)>> {
    let known: Vec<String> = snap.manifest.collections.iter().map(|c| c.name.clone()).collect();
    let mut out: Vec<(&CollectionEntry, String)> = Vec::new();
    for (src, dst) in selection.resolve(&known, &format!("snapshot {}", snap.root.display()))? {
        let entry = snap
            .manifest
            .collection(&src)
            .ok_or_else(|| LoadError::UnknownCollection { name: src.clone(), known: known.clone() })?;
        if out.iter().any(|(_, d)| *d == dst) {
            return Err(LoadError::SameTarget { target: dst }.into());
        }
        out.push((entry, dst));
    }
    Ok(out)
}

/// Batch limits for this server: count (flag, then the client's max_batch_size, which carries
/// the Chroma Cloud cap, then the quotas' `max_records_per_write`) and body bytes.
pub fn limits_for(client: &Client, plan: &LoadPlan, quotas: Option<&Limits>) -> BatchLimits {
    let mut rows = plan.batch_size.max(1);
    for m in [client.max_batch_size, quotas.and_then(|q| q.max_records_per_write)].into_iter().flatten() {
        rows = rows.min(m.max(1));
    }
    let encoding = if client.api == Api::V2 && client.supports_base64 { Encoding::Base64 } else { Encoding::Json };
    let mut bytes = plan.batch_bytes.max(1 << 16);
    if client.api == Api::V2 {
        bytes = bytes.min(MAX_BODY_BYTES_V2);
    }
    BatchLimits { max_rows: rows, max_bytes: bytes, encoding }
}

/// What every collection of one load shares.
struct Run<'a> {
    snap: &'a Snapshot,
    client: &'a Client,
    limits: BatchLimits,
    plan: &'a LoadPlan,
    progress: &'a dyn Progress,
    /// The bar over all collections.
    overall: Box<dyn Bar>,
    /// Batches acknowledged in this run (for `--fail-after-batches`).
    acked_in_run: u64,
}

/// A batch ready to send.
struct Ready {
    index: u64,
    page: RecordPage,
    body: Vec<u8>,
}

/// What the batch reader cut: batches, their bytes, and duplicate ids skipped.
#[derive(Default)]
struct Cut {
    batches: u64,
    bytes: u64,
    duplicates: usize,
}

/// Loads one collection: decide what to do with the target, send the batches the journal does
/// not know, journal the end, and read the target back.
async fn load_collection(
    run: &mut Run<'_>,
    journal: &mut Journal,
    entry: &CollectionEntry,
    dst: &str,
) -> Result<CollectionLoad> {
    let t0 = Instant::now();
    let rows = run.plan.rows(entry.count);
    let records = rows.end - rows.start;
    let share = match run.plan.shard {
        Some(s) => Some(tokio::task::block_in_place(|| shard::share_of(run.snap, entry, s))?),
        None => None,
    };
    let d = decide(entry, dst, run.client, run.limits, run.plan, journal).await?;
    let st = journal.state.collections.get(dst).cloned();
    let acked = st.as_ref().map(|s| s.acked.clone()).unwrap_or_default();
    let already = st.as_ref().map_or(0, |s| s.rows).min(records);
    tracing::info!(
        "collection {:?} → {dst:?}: {} ({} with batches of ≤{} records / ≤{} bytes, {}); {} batches already acknowledged",
        entry.name,
        d.action,
        d.op.as_str(),
        d.limits.max_rows,
        d.limits.max_bytes,
        d.limits.encoding.as_str(),
        acked.len()
    );
    let bar = run.progress.bar(dst, Some(records), "records");
    bar.inc(already);
    run.overall.inc(already);
    let mut out = CollectionLoad {
        source: entry.name.clone(),
        target: dst.to_owned(),
        action: d.action.to_owned(),
        op: d.op,
        records,
        share,
        batches: 0,
        batches_sent: 0,
        records_sent: 0,
        bytes: 0,
        limits: d.limits,
        seconds: 0.0,
        rate: 0.0,
        estimated_seconds: None,
        sync: None,
        comparison: None,
    };
    if d.action == decide::SYNCED {
        tracing::info!("collection {dst:?}: comparing every record with the snapshot's {:?}", entry.name);
        let (diff, work) =
            sync::difference(run.snap, entry, run.client, &d.info, Some(sync::Rewrite::for_server(run.client))).await?;
        let counts = sync::SyncCounts::of(&diff);
        tracing::info!(
            "collection {dst:?}: {} to add, {} to rewrite, {} to delete, {} unchanged",
            counts.added,
            counts.updated,
            counts.deleted,
            counts.unchanged
        );
        let written = sync::apply(run, journal, (entry, &d), work.expect("spilled"), &mut out).await?;
        out.sync = Some(counts);
        journal.append(Line::Done { dst: dst.to_owned() })?;
        if run.plan.verify {
            let info = run.client.get_collection(dst).await?;
            let cmp = sync::read_back(entry, run.client, &info, run.plan.listed, (&diff, written)).await?;
            // Not clean, or not bit-exact without drift to explain it: compare in full to name all.
            if cmp.ok() && (cmp.exact() || !cmp.drift.is_zero()) {
                out.comparison = Some(cmp);
            }
        }
    } else if !st.as_ref().is_some_and(|s| s.done) {
        let cut = send_batches(run, journal, (entry, rows.clone()), &d, acked, &mut out, bar.as_ref()).await?;
        (out.batches, out.bytes) = (cut.batches, cut.bytes);
        if cut.duplicates > 0 {
            tracing::warn!(
                "collection {:?}: {} duplicate ids within batches were skipped (first kept)",
                entry.name,
                cut.duplicates
            );
        }
        journal.append(Line::Done { dst: dst.to_owned() })?;
    }
    if run.plan.if_exists == Some(IfExists::Sync) && out.sync.is_none() {
        out.sync = Some(sync::SyncCounts { added: records, ..Default::default() });
    }
    bar.finish();
    out.seconds = t0.elapsed().as_secs_f64();
    out.rate = out.records_sent as f64 / out.seconds.max(1e-9);
    if run.plan.verify && out.comparison.is_none() {
        let info = run.client.get_collection(dst).await?;
        let (snap, client, listed) = (run.snap, run.client, run.plan.listed);
        out.comparison = Some(match run.plan.shard {
            None => crate::verify::compare(snap, entry, client, &info, listed, d.appended).await?,
            Some(_) => {
                crate::verify::compare::compare_share(snap, entry, client, &info, listed, d.appended, rows).await?
            }
        });
    }
    Ok(out)
}

/// Sends every batch the journal does not know, `concurrency` in flight, journalling each
/// acknowledged one; counts what was sent into `out`.
async fn send_batches(
    run: &mut Run<'_>,
    journal: &mut Journal,
    (entry, rows): (&CollectionEntry, Range<u64>),
    d: &decide::Decision,
    acked: std::collections::BTreeSet<u64>,
    out: &mut CollectionLoad,
    bar: &dyn Bar,
) -> Result<Cut> {
    let in_flight = run.plan.concurrency.max(1);
    let (rx, producer) = cut_batches(run.snap, (entry, rows), d.limits, acked, in_flight);
    let target = send::Target { client: run.client, info: &d.info, op: d.op, encoding: d.limits.encoding };
    let target = &target;
    let mut acks = std::pin::pin!(
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
            .map(|item: Result<Ready>| async move {
                let r = item?;
                let rows = r.page.len() as u64;
                send::send(target, r.page, r.body, r.index).await?;
                Ok::<_, Error>((r.index, rows))
            })
            .buffer_unordered(in_flight)
    );
    while let Some(res) = acks.next().await {
        let (index, rows) = res?;
        journal.append(Line::Batch { dst: out.target.clone(), index, rows })?;
        out.batches_sent += 1;
        out.records_sent += rows;
        bar.inc(rows);
        run.overall.inc(rows);
        run.acked_in_run += 1;
        if run.plan.fail_after_batches.is_some_and(|n| run.acked_in_run >= n) {
            return Err(LoadError::StoppedForTest(run.acked_in_run).into());
        }
    }
    Ok(producer.await.map_err(|e| LoadError::Worker { what: "batch reader", why: e.to_string() })?)
}

/// Cuts and encodes the batches of one collection's `rows` on a blocking thread, a few ahead of
/// the senders, skipping those already acknowledged.
fn cut_batches(
    snap: &Snapshot,
    (entry, rows): (&CollectionEntry, Range<u64>),
    limits: BatchLimits,
    acked: std::collections::BTreeSet<u64>,
    ahead: usize,
) -> (tokio::sync::mpsc::Receiver<Result<Ready>>, tokio::task::JoinHandle<Cut>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Ready>>(ahead);
    let (snap, entry) = (snap.clone(), entry.clone());
    let producer = tokio::task::spawn_blocking(move || {
        let mut cut = Cut::default();
        for b in Batcher::new(snap.collection_rows(&entry, rows), limits, |i| acked.contains(&i)) {
            let ready = b.map_err(Error::from).map(|b| {
                cut.batches += 1;
                cut.bytes += b.bytes as u64;
                cut.duplicates += b.duplicates.len();
                b.page.map(|page| (b.index, page))
            });
            let item = match ready {
                Ok(None) => continue,
                Ok(Some((index, page))) => encode(&page, limits.encoding)
                    .map(|body| Ready { index, page, body })
                    .map_err(|why| LoadError::Encode { collection: entry.name.clone(), why }.into()),
                Err(e) => Err(e),
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                break;
            }
        }
        cut
    });
    (rx, producer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_limits_by_default_on_chroma_cloud_only() {
        assert_eq!(TargetLimits::Auto.resolve(true), Some(Limits::cloud()));
        assert_eq!(TargetLimits::Auto.resolve(false), None);
        assert_eq!(TargetLimits::Off.resolve(true), None, "--limits none opts out");
        let own = Limits { max_id_bytes: Some(8), origin: "own.toml".into(), ..Limits::default() };
        assert_eq!(TargetLimits::Given(Box::new(own.clone())).resolve(true), Some(own.clone()));
        assert_eq!(TargetLimits::Given(Box::new(own.clone())).resolve(false), Some(own));
    }
}
