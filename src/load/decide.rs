//! Decides what happens to each target collection, from the journal and the server: create,
//! resume, replace, append, or refuse (a recreated collection, a changed snapshot, no journal).

use super::batcher::BatchLimits;
use super::error::LoadError;
use super::journal::{Journal, Line, WriteOp};
use super::shard::Shard;
use super::{IfExists, LoadPlan, settings};
use crate::chroma::{ChromaError, Client, CollectionInfo};
use crate::error::Result;
use crate::snapshot::CollectionEntry;
use crate::verify::compare::drifts_float_metadata;
use crate::verify::drift::Tolerance;

pub(super) fn check_journal_start(
    journal: &mut Journal,
    manifest: &str,
    client: &Client,
    plan: &LoadPlan,
) -> Result<()> {
    let start = Line::Start {
        manifest_blake3: manifest.to_owned(),
        target: client.url().to_owned(),
        tenant: client.tenant.clone(),
        database: client.database.clone(),
        at: crate::snapshot::manifest::now_rfc3339(),
        shard: plan.shard,
    };
    match journal.state.start.clone() {
        None => journal.append(start),
        Some(Line::Start { manifest_blake3, target, tenant, database, shard, .. }) => {
            let same_target = target == client.url() && tenant == client.tenant && database == client.database;
            if manifest_blake3 == manifest && same_target && shard == plan.shard {
                return Ok(());
            }
            let why = if shard != plan.shard {
                format!("it was written by {}, this run is {}", split_name(shard), split_name(plan.shard))
            } else if same_target {
                format!(
                    "the snapshot changed since it was started (manifest {} then, {} now)",
                    &manifest_blake3[..16],
                    &manifest[..16]
                )
            } else {
                format!("it belongs to a load into {target} ({tenant}/{database})")
            };
            if plan.shard.is_some() || shard.is_some() {
                // A shard never starts over alone: what it loaded sits beside its siblings' records.
                Err(LoadError::ShardJournal { path: journal.path.clone(), why }.into())
            } else if matches!(plan.if_exists, Some(IfExists::Replace | IfExists::Sync)) {
                // A sync recomputes what to write from the target itself: another journal holds nothing it needs.
                tracing::warn!("journal {}: {why}; starting a new one", journal.path.display());
                journal.restart()?;
                journal.append(start)
            } else {
                Err(LoadError::ForeignJournal { path: journal.path.clone(), why }.into())
            }
        }
        Some(_) => Err(LoadError::journal(&journal.path, "does not start with a start line").into()),
    }
}

/// `shard 1/3` or `an unsharded load`, for messages.
fn split_name(shard: Option<Shard>) -> String {
    shard.map_or_else(|| "an unsharded load".to_owned(), |s| format!("shard {s}"))
}

/// Looks a collection up; `None` when it does not exist.
pub(super) async fn find(client: &Client, name: &str) -> Result<Option<CollectionInfo>> {
    match client.get_collection(name).await {
        Ok(c) => Ok(Some(c)),
        Err(ChromaError::NoSuchCollection { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn check_dimension(entry: &CollectionEntry, info: &CollectionInfo) -> Result<()> {
    match (entry.dimension, info.dimension) {
        (Some(want), Some(have)) if want != have => {
            Err(LoadError::Dimension { target: info.name.clone(), have, source_collection: entry.name.clone(), want }
                .into())
        }
        _ => Ok(()),
    }
}

/// The action of a collection that exists and is synced.
pub(super) const SYNCED: &str = "synced";

/// What the journal and the target say should happen to one collection.
pub(super) struct Decision {
    pub info: CollectionInfo,
    pub action: &'static str,
    pub op: WriteOp,
    pub limits: BatchLimits,
    /// The collection held other data before (`--if-exists append`).
    pub appended: bool,
}

pub(super) async fn decide(
    entry: &CollectionEntry,
    dst: &str,
    client: &Client,
    limits: BatchLimits,
    plan: &LoadPlan,
    journal: &mut Journal,
) -> Result<Decision> {
    if plan.shard.is_some() {
        return join(entry, dst, client, limits, plan, journal).await;
    }
    let existing = find(client, dst).await?;
    if let Some(info) = &existing {
        check_dimension(entry, info)?;
    }
    let state = journal.state.collections.get(dst).cloned();
    let add = if plan.upsert { WriteOp::Upsert } else { WriteOp::Add };
    // A sync compares the target with the snapshot whatever the journal says (see sync.rs).
    if let (Some(IfExists::Sync), Some(info)) = (plan.if_exists, &existing) {
        journal.append(collection_line(entry, dst, info, WriteOp::Add, limits, false))?;
        return Ok(Decision { info: info.clone(), action: SYNCED, op: WriteOp::Add, limits, appended: false });
    }
    // A load of this snapshot into this very collection was journalled: carry on.
    if let (Some(st), Some(info)) = (&state, &existing)
        && st.collection_id.as_deref() == Some(info.id.as_str())
        && st.src == entry.name
        && !(st.done && plan.if_exists == Some(IfExists::Replace))
    {
        if plan.if_exists == Some(IfExists::Fail) {
            return Err(LoadError::ExistsJournalled { target: dst.to_owned(), complete: st.done }.into());
        }
        let limits = st.limits.unwrap_or(limits);
        let action = if st.done { "loaded already" } else { "resumed" };
        return Ok(Decision { info: info.clone(), action, op: st.op, limits, appended: st.appended });
    }
    // The load was killed between announcing a creation and journalling the collection.
    if let (Some(st), Some(info)) = (&state, &existing)
        && st.collection_id.is_none()
        && client.count(info).await? == 0
    {
        journal.append(collection_line(entry, dst, info, add, limits, false))?;
        return Ok(Decision { info: info.clone(), action: "created", op: add, limits, appended: false });
    }
    match (existing, plan.if_exists) {
        (None, _) => {
            if let Some(st) = state.as_ref().filter(|s| s.collection_id.is_some() && !s.done) {
                tracing::warn!(
                    "collection {dst:?} was deleted since the journal began ({} batches were done); loading it anew",
                    st.acked.len()
                );
            }
            let info = create(entry, dst, client, journal).await?;
            journal.append(collection_line(entry, dst, &info, add, limits, false))?;
            Ok(Decision { info, action: "created", op: add, limits, appended: false })
        }
        (Some(_), Some(IfExists::Replace)) => {
            client.delete_collection(dst).await?;
            let info = create(entry, dst, client, journal).await?;
            journal.append(collection_line(entry, dst, &info, add, limits, false))?;
            Ok(Decision { info, action: "replaced", op: add, limits, appended: false })
        }
        (Some(info), Some(IfExists::Append)) => {
            let limits = match &state {
                Some(st) if st.collection_id.as_deref() == Some(info.id.as_str()) => st.limits.unwrap_or(limits),
                _ => limits,
            };
            journal.append(collection_line(entry, dst, &info, WriteOp::Upsert, limits, true))?;
            Ok(Decision { info, action: "appended", op: WriteOp::Upsert, limits, appended: true })
        }
        (Some(info), mode) => {
            let why = match &state {
                Some(st) if st.collection_id.as_deref().is_some_and(|id| id != info.id) => format!(
                    "it was recreated since the journal began (id {} then, {} now)",
                    st.collection_id.as_deref().unwrap_or("?"),
                    info.id
                ),
                Some(st) if st.src != entry.name && !st.src.is_empty() => {
                    format!("the journal loaded snapshot collection {:?} into it, not {:?}", st.src, entry.name)
                }
                _ if mode == Some(IfExists::Resume) => "no journal knows it, so there is nothing to resume".into(),
                _ => "no journal of this snapshot knows it".into(),
            };
            Err(LoadError::Exists { target: dst.to_owned(), url: client.url().to_owned(), why }.into())
        }
    }
}

/// Under `--shard`: carry on from the shard's journal; else create the collection, or join the
/// one another shard created (or that was there before), but only when its settings are the
/// snapshot's. Records are added (a record already there is left as it is; the read-back and
/// `verify --against` judge the result), upserted with `--upsert` or `--if-exists append`.
async fn join(
    entry: &CollectionEntry,
    dst: &str,
    client: &Client,
    limits: BatchLimits,
    plan: &LoadPlan,
    journal: &mut Journal,
) -> Result<Decision> {
    let state = journal.state.collections.get(dst).cloned();
    let (info, action) = match find(client, dst).await? {
        Some(info) => (info, "joined"),
        None => {
            let s = settings::create_settings(entry, client.api);
            match client.create_collection(dst, s.metadata.as_ref(), s.configuration.as_ref()).await {
                Ok(info) => (info, "created"),
                // Another shard created it first (or a retried create had gone through).
                Err(ChromaError::CollectionExists { .. }) => (client.get_collection(dst).await?, "joined"),
                Err(e) => return Err(e.into()),
            }
        }
    };
    check_dimension(entry, &info)?;
    if let Some(st) = &state
        && st.collection_id.as_deref() == Some(info.id.as_str())
        && st.src == entry.name
    {
        let action = if st.done { "loaded already" } else { "resumed" };
        let limits = st.limits.unwrap_or(limits);
        return Ok(Decision { info, action, op: st.op, limits, appended: st.appended });
    }
    let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
    let differ = settings::differences(entry, &info, tol);
    if !differ.is_empty() {
        let (target, url) = (dst.to_owned(), client.url().to_owned());
        let why = differ.join("; ");
        return Err(LoadError::ShardSettings { target, url, source_collection: entry.name.clone(), why }.into());
    }
    if let Some(st) = state.as_ref().filter(|s| s.collection_id.is_some()) {
        tracing::warn!(
            "collection {dst:?} is not the one this shard's journal began with ({} batches were done); loading this shard's records into it anew",
            st.acked.len()
        );
    }
    let appended = plan.if_exists == Some(IfExists::Append);
    let op = if plan.upsert || appended { WriteOp::Upsert } else { WriteOp::Add };
    journal.append(collection_line(entry, dst, &info, op, limits, appended))?;
    Ok(Decision { info, action, op, limits, appended })
}

fn collection_line(
    entry: &CollectionEntry,
    dst: &str,
    info: &CollectionInfo,
    op: WriteOp,
    limits: BatchLimits,
    appended: bool,
) -> Line {
    Line::Collection {
        src: entry.name.clone(),
        dst: dst.to_owned(),
        collection_id: info.id.clone(),
        op,
        limits,
        appended,
    }
}

async fn create(entry: &CollectionEntry, dst: &str, client: &Client, journal: &mut Journal) -> Result<CollectionInfo> {
    journal.append(Line::Creating { dst: dst.to_owned() })?;
    let s = settings::create_settings(entry, client.api);
    Ok(client.create_collection(dst, s.metadata.as_ref(), s.configuration.as_ref()).await?)
}
