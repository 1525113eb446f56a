//! A lock on an object store, which has no `flock`: an object created only if absent (a
//! conditional PUT), holding who holds it and until when, renewed while its holder runs by
//! conditional updates on its version. A lock whose lease ran out, or whose holder is a process
//! of this same machine that is gone (a run killed with SIGKILL), is taken over by a conditional
//! update on the version read, so of two runs racing for it one wins.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(120);
/// How often its holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// What the lock object says.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Holder {
    /// This machine's boot id and host name: a pid means something only here.
    machine: String,
    pid: u32,
    /// Seconds since the epoch when the lease runs out unless renewed.
    expires: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
    format!("{}/{}", read("/proc/sys/kernel/hostname"), read("/proc/sys/kernel/random/boot_id"))
}

impl Holder {
    fn me() -> Self {
        Self { machine: machine(), pid: std::process::id(), expires: now() + LEASE.as_secs() }
    }

    /// Whether the lock it describes can be taken over: its lease ran out, or its holder was a
    /// process of this machine that no longer runs.
    fn stale(&self) -> bool {
        self.expires < now()
            || (self.machine == machine()
                && self.pid != std::process::id()
                && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists())
    }

    fn payload(&self) -> PutPayload {
        PutPayload::from(serde_json::to_vec(self).expect("a holder serialises"))
    }
}

/// A held lock; released (the object deleted) when dropped, unless it was lost.
pub struct Lease {
    inner: Arc<dyn ObjectStore>,
    path: ObjectPath,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
}

impl Lease {
    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl super::StoreLock for Lease {
    fn lost(&self) -> bool {
        self.is_lost()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if !self.is_lost() {
            let (inner, path) = (self.inner.clone(), self.path.clone());
            let _ = super::object::block(async move { inner.delete(&path).await });
        }
    }
}

/// Takes the lock at `path`; `None` when a live run holds it.
pub async fn acquire(inner: Arc<dyn ObjectStore>, path: ObjectPath) -> object_store::Result<Option<Lease>> {
    let create = PutOptions { mode: PutMode::Create, ..Default::default() };
    let version = match inner.put_opts(&path, Holder::me().payload(), create).await {
        Ok(r) => UpdateVersion { e_tag: r.e_tag, version: r.version },
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
            let found = inner.get(&path).await?;
            let seen = UpdateVersion { e_tag: found.meta.e_tag.clone(), version: found.meta.version.clone() };
            let holder: Option<Holder> = serde_json::from_slice(&found.bytes().await?).ok();
            if !holder.is_some_and(|h| h.stale()) {
                return Ok(None);
            }
            let take = PutOptions { mode: PutMode::Update(seen), ..Default::default() };
            match inner.put_opts(&path, Holder::me().payload(), take).await {
                Ok(r) => UpdateVersion { e_tag: r.e_tag, version: r.version },
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                    return Ok(None); // another run took it over first
                }
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let (stop, lost) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    tokio::spawn(renew(inner.clone(), path.clone(), version, stop.clone(), lost.clone()));
    Ok(Some(Lease { inner, path, stop, lost }))
}

/// Renews the lease until stopped; marks it lost when the object changed under it.
async fn renew(
    inner: Arc<dyn ObjectStore>,
    path: ObjectPath,
    mut version: UpdateVersion,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
) {
    let tick = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(tick).await;
        waited += tick;
        if waited < RENEW_EVERY || stop.load(Ordering::Relaxed) {
            continue;
        }
        waited = Duration::ZERO;
        let update = PutOptions { mode: PutMode::Update(version.clone()), ..Default::default() };
        match inner.put_opts(&path, Holder::me().payload(), update).await {
            Ok(r) => version = UpdateVersion { e_tag: r.e_tag, version: r.version },
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                lost.store(true, Ordering::Relaxed);
                return;
            }
            // Tried again next time; the reason is shown as any other failure is (no body, no key).
            Err(e) => tracing::warn!("renewing the lock {path}: {}", super::remote_error::classify(&e, "").1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_stale_when_it_ran_out_or_its_local_holder_is_gone() {
        let live = Holder::me();
        assert!(!live.stale());
        assert!(Holder { expires: now() - 1, ..Holder::me() }.stale());
        assert!(Holder { pid: u32::MAX, ..Holder::me() }.stale(), "no such process here");
        assert!(!Holder { pid: u32::MAX, machine: "elsewhere/boot".into(), ..Holder::me() }.stale());
    }
}
