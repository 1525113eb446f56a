//! Load's pre-flight: before anything is sent, prove the snapshot intact and every record of the
//! collections to load writable by the target (Chroma's write rules, shared with transform), in
//! one pass over the parts. A refusal names the part file, the collection and the record. With
//! target quotas ([`Limits`]: `--limits`, Chroma Cloud's by default on Chroma Cloud) every record
//! and every collection is also checked against them, all refused at once.

use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::batcher::BatchLimits;
use super::body::{BODY_OVERHEAD, Encoding, record_bytes};
use super::error::LoadError;
use super::settings::create_settings;
use crate::chroma::{Api, Client};
use crate::error::{Error, Result};
use crate::limits::{Breach, Limits};
use crate::record::{MetadataError, RecordRef, parse_metadata};
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::{Snapshot, part_windows};
use crate::snapshot::store::Store;
use crate::snapshot::verify::{RECORD_PROBLEMS_PER_PART, RecordCheck, check_part_bytes, verify_store};
use crate::snapshot::{CollectionEntry, SnapshotError};
use crate::transform::checks::chroma_metadata;

/// The 1.x server's HTTP body limit: a record whose body alone is larger can never be sent.
pub const SERVER_BODY_LIMIT_V2: usize = 40 << 20;

/// What the target accepts, as far as a record on its own decides it.
#[derive(Debug, Clone)]
pub struct WriteRules {
    /// Snapshot collections that will be loaded.
    pub collections: HashSet<String>,
    /// Array metadata values (1.5+; 0.x servers drop them without a word).
    pub arrays_allowed: bool,
    pub encoding: Encoding,
    /// The largest body the server takes, when it has a limit.
    pub max_body_bytes: Option<usize>,
    /// The target's quotas, when they are checked.
    pub limits: Option<Limits>,
}

impl WriteRules {
    pub fn for_target(
        client: &Client,
        batches: BatchLimits,
        collections: HashSet<String>,
        limits: Option<Limits>,
    ) -> Self {
        let v2 = client.api == Api::V2;
        Self {
            collections,
            arrays_allowed: v2,
            encoding: batches.encoding,
            max_body_bytes: v2.then_some(SERVER_BODY_LIMIT_V2),
            limits,
        }
    }

    /// Why Chroma would refuse (or silently change) this record, if it would.
    pub fn problem(&self, dim: usize, r: &RecordRef<'_>) -> Option<String> {
        let mut why = Vec::new();
        if r.id.is_empty() {
            why.push("the id is empty".to_owned());
        }
        if let Some(i) = r.embedding.iter().position(|x| !x.is_finite()) {
            let n = r.embedding.iter().filter(|x| !x.is_finite()).count();
            why.push(format!("embedding has {n} NaN/Inf value(s), first {} at index {i}", r.embedding[i]));
        }
        let meta = match r.metadata.map(parse_metadata) {
            None => None,
            Some(Err(e @ MetadataError::IntRange { .. })) => {
                why.push(e.to_string());
                None
            }
            Some(Err(e)) => {
                why.push(format!("metadata is not a JSON object of finite values: {e}"));
                None
            }
            Some(Ok(m)) => {
                let mut reasons = Vec::new();
                chroma_metadata(&m, self.arrays_allowed, &mut reasons);
                why.extend(reasons.into_iter().map(|x| match x.field {
                    Some(k) if !x.rule.starts_with("chroma.key") => format!("metadata key {k:?}: {}", x.message),
                    _ => x.message,
                }));
                Some(m)
            }
        };
        if let Some(l) = &self.limits {
            let mut breaches = Vec::new();
            l.id(r.id, &mut breaches);
            l.record(r, meta.as_ref(), &mut breaches);
            why.extend(breaches.into_iter().map(|b| b.message));
        }
        if let Some(limit) = self.max_body_bytes {
            let size = BODY_OVERHEAD + record_bytes(self.encoding, r.id, dim, r.document, r.uri, r.metadata);
            if size > limit {
                why.push(format!(
                    "the record alone needs a {size}-byte request, over the target's {} MiB limit",
                    limit >> 20
                ));
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

impl RecordCheck for WriteRules {
    fn wants(&self, c: &CollectionEntry) -> bool {
        self.collections.contains(&c.name)
    }
    fn check(&self, c: &CollectionEntry, r: &RecordRef<'_>) -> Option<String> {
        self.problem(c.dimension.unwrap_or(r.embedding.len()), r)
    }
}

/// Each collection as the target would get it (its target name, the metadata it is created with,
/// its record count) against the quotas: one line per breach, naming the collection.
pub fn collection_problems(pairs: &[(&CollectionEntry, String)], api: Api, limits: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    for (entry, dst) in pairs {
        let mut found: Vec<Breach> = Vec::new();
        let meta = create_settings(entry, api).metadata;
        limits.collection(dst, meta.as_ref(), entry.count, &mut found);
        let at = if *dst == entry.name {
            format!("collection {:?}", entry.name)
        } else {
            format!("collection {:?} (loaded as {dst:?})", entry.name)
        };
        out.extend(found.into_iter().map(|b| format!("{at}: {}", b.message)));
    }
    out
}

/// The record pre-flight's verdict with the collections' problems ([`collection_problems`]) put
/// first: a damaged snapshot is refused as damaged; otherwise every problem is refused at once.
pub fn with_collections(verdict: Result<()>, snapshot: PathBuf, collections: Vec<String>) -> Result<()> {
    if collections.is_empty() {
        return verdict;
    }
    match verdict {
        Ok(()) => Err(LoadError::Unloadable { snapshot, problems: collections }.into()),
        Err(Error::Load(e)) => match *e {
            LoadError::Unloadable { snapshot, problems } => {
                Err(LoadError::Unloadable { snapshot, problems: collections.into_iter().chain(problems).collect() }
                    .into())
            }
            other => Err(other.into()),
        },
        Err(e) => Err(e),
    }
}

/// Refuses a damaged snapshot, or one holding records the target cannot take, before anything
/// is sent.
pub fn check(store: Arc<dyn Store>, rules: &WriteRules) -> Result<()> {
    let snapshot = store.location("");
    let report = tokio::task::block_in_place(|| verify_store(store, rules))?;
    if !report.ok() {
        return Err(LoadError::Damaged { snapshot, problems: report.problems }.into());
    }
    if !report.record_problems.is_empty() {
        return Err(LoadError::Unloadable { snapshot, problems: report.record_problems }.into());
    }
    Ok(())
}

/// A shard's pre-flight: the size and blake3 of every part holding some of its rows (whole parts:
/// a part's hash covers its file, so the parts at the edges of a share are read beyond it), then
/// each of its own rows against the target's write rules. What only the whole snapshot can show
/// (ids repeated across shards, the records digest) is left to `verify` and `verify --against`.
pub fn check_share(snap: &Snapshot, shares: &[(&CollectionEntry, Range<u64>)], rules: &WriteRules) -> Result<()> {
    let parts: Vec<(&CollectionEntry, usize)> = shares
        .iter()
        .flat_map(|(c, rows)| part_windows(c, rows.clone()).into_iter().map(move |(i, _)| (*c, i)))
        .collect();
    let checked: Vec<Result<Option<String>, SnapshotError>> = tokio::task::block_in_place(|| {
        parts
            .par_iter()
            .map(|(c, i)| {
                let here = format!("collection {:?}, part {}", c.name, c.parts[*i].path);
                check_part_bytes(snap, c, &c.parts[*i], &here).map(Result::err)
            })
            .collect()
    });
    let mut problems = Vec::new();
    for r in checked {
        problems.extend(r?);
    }
    if !problems.is_empty() {
        return Err(LoadError::Damaged { snapshot: snap.root.clone(), problems }.into());
    }
    let mut problems = Vec::new();
    for (c, rows) in shares {
        let (mut bad, mut listed) = (0usize, Vec::new());
        tokio::task::block_in_place(|| -> Result<()> {
            for b in snap.collection_rows(c, rows.clone()) {
                for r in BatchView::new(&b?).records() {
                    if let Some(why) = rules.check(c, &r) {
                        bad += 1;
                        if listed.len() < RECORD_PROBLEMS_PER_PART {
                            listed.push(format!("collection {:?}, record {:?}: {why}", c.name, r.id));
                        }
                    }
                }
            }
            Ok(())
        })?;
        if bad > listed.len() {
            listed.push(format!("collection {:?}: {} more record(s) like these", c.name, bad - listed.len()));
        }
        problems.extend(listed);
    }
    if !problems.is_empty() {
        return Err(LoadError::Unloadable { snapshot: snap.root.clone(), problems }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(arrays: bool, limit: Option<usize>) -> WriteRules {
        WriteRules {
            collections: HashSet::new(),
            arrays_allowed: arrays,
            encoding: Encoding::Base64,
            max_body_bytes: limit,
            limits: None,
        }
    }

    fn rec<'a>(id: &'a str, e: &'a [f32], meta: Option<&'a str>) -> RecordRef<'a> {
        RecordRef { id, embedding: e, document: Some("doc"), uri: None, metadata: meta }
    }

    #[test]
    fn chroma_write_rules() {
        let r = rules(true, Some(SERVER_BODY_LIMIT_V2));
        let p = |x: RecordRef<'_>| r.problem(x.embedding.len(), &x);
        assert_eq!(p(rec("a", &[1.0, 2.0], Some(r#"{"k":[1,2],"f":0.5}"#))), None);
        assert_eq!(p(rec("a", &[1.0], Some("{}"))), None, "{{}} is sent as null");
        assert!(p(rec("", &[1.0], None)).unwrap().contains("the id is empty"));
        let nan = p(rec("a", &[1.0, f32::NAN, f32::INFINITY], None)).unwrap();
        assert!(nan.contains("2 NaN/Inf value(s), first NaN at index 1"), "{nan}");
        for (meta, needle) in [
            (r#"{"x":NaN}"#, "not a JSON object"),
            (r#"{"x":1e999}"#, "not a JSON object"),
            ("[1]", "not a JSON object"),
            (r##"{"#k":1}"##, "\"#k\" starts with '#'"),
            (r#"{"$k":1}"#, "\"$k\" starts with '$'"),
            (r#"{"chroma:document":"x"}"#, "\"chroma:document\" is reserved"),
            (r#"{"":1}"#, "metadata key is empty"),
            (r#"{"k":null}"#, "metadata key \"k\": null metadata values are refused"),
            (r#"{"k":18446744073709551615}"#, "metadata key \"k\": integer 18446744073709551615 does not fit in i64"),
            (r#"{"k":18446744073709551616}"#, "metadata key \"k\": integer 18446744073709551616 does not fit in i64"),
            (r#"{"k":[-9223372036854775809]}"#, "metadata key \"k\": integer -9223372036854775809 does not fit in i64"),
            (r#"{"k":-1e400}"#, "not a JSON object"),
        ] {
            let got = p(rec("a", &[1.0], Some(meta))).unwrap_or_default();
            assert!(got.contains(needle), "{meta}: {needle:?} not in {got:?}");
        }
        let arrays = rules(false, None);
        assert!(arrays.problem(1, &rec("a", &[1.0], Some(r#"{"k":[1]}"#))).unwrap().contains("1.5 or later"));
        let big = "x".repeat(2000);
        let r = RecordRef { id: "big", embedding: &[1.0], document: Some(&big), uri: None, metadata: None };
        assert!(rules(true, Some(1000)).problem(1, &r).unwrap().contains("over the target's 0 MiB limit"));
        assert_eq!(rules(true, None).problem(1, &r), None, "0.x servers have no body limit");
    }

    #[test]
    fn cloud_quotas_in_the_write_rules() {
        let r = WriteRules { limits: Some(Limits::cloud()), ..rules(true, Some(SERVER_BODY_LIMIT_V2)) };
        let doc = "d".repeat(16_385);
        let long =
            RecordRef { id: "a", embedding: &[1.0], document: Some(&doc), uri: None, metadata: Some(r#"{"k":null}"#) };
        let why = r.problem(1, &long).unwrap();
        assert_eq!(
            why,
            "metadata key \"k\": null metadata values are refused; document is 16385 bytes, over max_document_bytes = 16384 (cloud limits)"
        );
        let id = "i".repeat(129);
        assert!(r.problem(1, &rec(&id, &[1.0], None)).unwrap().starts_with("id is 129 bytes"));
        assert_eq!(r.problem(1, &rec("a", &[1.0], Some(r#"{"k":"v"}"#))), None);
    }

    #[test]
    fn collection_problems_come_first_and_damage_wins() {
        let snapshot = PathBuf::from("snap");
        let found = vec!["collection \"c\": too long".to_owned()];
        let unloadable =
            |p: &str| Err(LoadError::Unloadable { snapshot: snapshot.clone(), problems: vec![p.into()] }.into());
        let got = with_collections(unloadable("record"), snapshot.clone(), found.clone()).unwrap_err();
        assert!(got.to_string().ends_with("collection \"c\": too long; record"), "{got}");
        let got = with_collections(Ok(()), snapshot.clone(), found.clone()).unwrap_err();
        assert!(got.to_string().ends_with(": collection \"c\": too long"), "{got}");
        let damaged = Err(LoadError::Damaged { snapshot: snapshot.clone(), problems: vec!["bad".into()] }.into());
        assert!(with_collections(damaged, snapshot.clone(), found).unwrap_err().to_string().contains("is damaged"));
        assert!(with_collections(Ok(()), snapshot, Vec::new()).is_ok());
    }
}
