//! The object-storage [`Store`]: S3, GCS and Azure through the `object_store` crate, driven from
//! the synchronous seam. Ranged GETs behind [`Blob`], a multipart upload with bounded buffers
//! behind [`Upload`], one PUT for [`Store::put_atomic`]. Credentials and endpoints come only from
//! each cloud's standard environment; no message names a key.

use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};

use super::remote_error::{RemoteFailure, classify, credential_sources};
use super::{Blob, Entry, RangeRead, Store, StoreLock, Upload};
use crate::snapshot::SnapshotError;
use crate::snapshot::manifest::check_part_path;

/// Bytes of one multipart part (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 8 << 20;
/// Parts uploading at once per object: memory of an upload stays under
/// `PART_BYTES * (PARTS_IN_FLIGHT + 1)` plus what one `write` hands over.
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes fetched by one ranged GET for small reads (page headers, hashing), kept for the reads
/// that follow; a row group of the default 8 MiB is one or two GETs.
const WINDOW: u64 = 8 << 20;
/// Windows kept per open object (the columns of a row group read alternately).
const WINDOWS: usize = 2;

/// The object-store I/O runs on its own small runtime, so the synchronous callers (rayon threads,
/// `block_in_place` inside export and load, plain threads) never block or nest in theirs.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()
            .expect("the object-store runtime starts")
    })
}

/// Runs `f` on the object-store runtime and waits for it from any thread, through a plain
/// channel: no tokio future is polled on the caller's thread, so a caller inside another runtime's
/// task (whose cooperative budget may be spent) cannot spin.
pub(super) fn block<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    drop(runtime().spawn(async move {
        let _ = tx.send(f.await);
    }));
    rx.recv().expect("an object-store task ended without an answer (it panicked)")
}

/// Retries of one request: enough for a throttled bucket, few enough that an unreachable endpoint
/// is reported in seconds (backoff 0.1 s doubling: about 3 s in all).
fn retry() -> RetryConfig {
    RetryConfig { max_retries: 5, retry_timeout: Duration::from_secs(60), ..RetryConfig::default() }
}

/// A snapshot under a prefix of a bucket (S3, GCS) or container (Azure).
#[derive(Debug, Clone)]
pub struct RemoteStore {
    inner: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix`, without a trailing `/`.
    url: String,
    prefix: ObjectPath,
    /// The endpoint from the environment, if any, without credentials (for messages).
    endpoint: Option<String>,
    fetched: Arc<AtomicU64>,
}

impl RemoteStore {
    /// Opens `url` (`s3://`, `gs://` or `az://`), configured from the environment and then from
    /// `options` (`object_store` configuration keys such as `aws_endpoint`; the command line
    /// passes none). Nothing is sent before the first read or write.
    pub fn open(url: &str, options: &[(&str, &str)]) -> Result<Self, SnapshotError> {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        let base = format!("{scheme}://{bucket}");
        let config = |why: String| SnapshotError::Remote { location: base.clone(), kind: RemoteFailure::Config, why };
        let unknown = |k: &str| config(format!("unknown object-store option {k}"));
        let (inner, endpoint): (Arc<dyn ObjectStore>, Option<String>) = match scheme {
            "s3" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env().with_url(&base).with_retry(retry());
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, *v);
                }
                let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
                (Arc::new(b.build().map_err(|e| config(classify(&e, scheme).1))?), endpoint)
            }
            "gs" => {
                use object_store::gcp::GoogleCloudStorageBuilder;
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(&base).with_retry(retry());
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, *v);
                }
                (Arc::new(b.build().map_err(|e| config(classify(&e, scheme).1))?), None)
            }
            "az" => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env().with_url(&base).with_retry(retry());
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, *v);
                }
                let endpoint = b.get_config_value(&AzureConfigKey::Endpoint);
                (Arc::new(b.build().map_err(|e| config(classify(&e, scheme).1))?), endpoint)
            }
            other => return Err(config(format!("no object store for scheme {other:?}"))),
        };
        let prefix = ObjectPath::from_url_path(prefix).map_err(|e| config(format!("bad prefix: {e}")))?;
        let url = if prefix.as_ref().is_empty() { base } else { format!("{base}/{prefix}") };
        Ok(Self { inner, url, prefix, endpoint: endpoint.map(|e| without_userinfo(&e)), fetched: Arc::default() })
    }

    /// Bytes read from the object store so far through this store and its blobs.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object path of a key (plain names only: no `..`, no empty segment).
    fn path(&self, key: &str) -> Result<ObjectPath, SnapshotError> {
        if key.is_empty() {
            return Ok(self.prefix.clone());
        }
        check_part_path(key)
            .map_err(|why| SnapshotError::Refused(format!("{}: {why}", self.location(key).display())))?;
        let full = if self.prefix.as_ref().is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        ObjectPath::parse(&full).map_err(|e| {
            SnapshotError::Refused(format!("{}: not a valid object key: {e}", self.location(key).display()))
        })
    }

    /// What went wrong at `key`, as one line without secrets. Not found is a `NotFound` I/O
    /// error, so that a missing part or manifest reads as it does on disk.
    fn error(&self, key: &str, e: object_store::Error) -> SnapshotError {
        let location = self.location(key).display().to_string();
        if matches!(e, object_store::Error::NotFound { .. }) {
            return SnapshotError::Io {
                path: location.into(),
                source: io::Error::new(io::ErrorKind::NotFound, "not found"),
            };
        }
        let scheme = self.url.split("://").next().unwrap_or("");
        let (kind, why) = classify(&e, scheme);
        let why = match (kind, &self.endpoint) {
            (RemoteFailure::Unreachable, Some(ep)) => format!("{why} (endpoint {ep})"),
            (RemoteFailure::Denied, _) => format!("{why} ({})", credential_sources(scheme)),
            _ => why,
        };
        SnapshotError::Remote { location, kind, why }
    }

    /// After a key was not found: the bucket itself missing or refused is the clearer answer.
    fn not_found(&self, key: &str, e: object_store::Error) -> SnapshotError {
        let (inner, prefix) = (self.inner.clone(), self.prefix.clone());
        let probe = block(async move {
            let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
            inner.list_with_delimiter(prefix.as_ref()).await.map(|_| ())
        });
        match probe {
            Err(p) => self.error("", p),
            Ok(()) => self.error(key, e),
        }
    }

    /// Every object under the prefix: its key, path and size.
    fn objects(&self) -> Result<Vec<(String, ObjectPath, u64)>, SnapshotError> {
        let (inner, prefix) = (self.inner.clone(), self.prefix.clone());
        let metas = block(async move {
            let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
            inner.list(prefix.as_ref()).try_collect::<Vec<_>>().await
        })
        .map_err(|e| self.error("", e))?;
        Ok(metas.into_iter().filter_map(|m| Some((self.key_of(&m.location)?, m.location, m.size))).collect())
    }

    /// The key of a listed object, relative to the prefix.
    fn key_of(&self, path: &ObjectPath) -> Option<String> {
        let parts: Vec<String> = path.prefix_match(&self.prefix)?.map(|p| p.as_ref().to_owned()).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }
}

/// `https://user:pass@host/` → `https://host/`: an endpoint in a message never carries a secret.
fn without_userinfo(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => "(unparsable endpoint)".to_owned(),
    }
}

/// One object opened for ranged reads, with a few windows of read-ahead.
struct RemoteObject {
    inner: Arc<dyn ObjectStore>,
    path: ObjectPath,
    len: u64,
    /// Recently fetched `(offset, bytes)`, the most recent last.
    windows: Mutex<Vec<(u64, Bytes)>>,
    fetched: Arc<AtomicU64>,
}

impl RemoteObject {
    fn fetch(&self, start: u64, end: u64) -> io::Result<Bytes> {
        let (inner, path) = (self.inner.clone(), self.path.clone());
        let bytes = block(async move { inner.get_range(&path, start..end).await }).map_err(io::Error::other)?;
        self.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if bytes.len() as u64 != end - start {
            let why = format!("asked for {} bytes at {start}, got {}", end - start, bytes.len());
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
        }
        Ok(bytes)
    }

    /// Bytes `[offset, offset + want)` (fewer at the end), from a window or a new GET.
    fn range(&self, offset: u64, want: usize) -> io::Result<Bytes> {
        let end = offset.saturating_add(want as u64).min(self.len);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = windows.iter().position(|(s, b)| *s <= offset && end <= s + b.len() as u64) {
            let w = windows.remove(i);
            let out = w.1.slice((offset - w.0) as usize..(end - w.0) as usize);
            windows.push(w);
            return Ok(out);
        }
        if end - offset >= WINDOW {
            return self.fetch(offset, end);
        }
        let bytes = self.fetch(offset, (offset + WINDOW).min(self.len))?;
        let out = bytes.slice(..(end - offset) as usize);
        windows.push((offset, bytes));
        if windows.len() > WINDOWS {
            windows.remove(0);
        }
        Ok(out)
    }
}

impl RangeRead for RemoteObject {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let bytes = self.range(offset, buf.len())?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}

/// A multipart upload: parts of [`PART_BYTES`] go up while the caller writes, at most
/// [`PARTS_IN_FLIGHT`] at once; nothing is visible until `commit` completes it. Dropped
/// uncommitted, it is aborted.
struct RemoteUpload {
    inner: Option<WriteMultipart>,
    store: RemoteStore,
    key: String,
}

impl RemoteUpload {
    /// The failure as an I/O error of the upload (the writer names the part itself).
    fn io_error(&self, e: object_store::Error) -> io::Error {
        match self.store.error(&self.key, e) {
            SnapshotError::Remote { why, .. } => io::Error::other(why),
            SnapshotError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

impl Write for RemoteUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(w) = self.inner.as_mut() else { return Err(io::Error::other("upload already finished")) };
        // Unconstrained: the parts' join handles are polled here, outside their runtime.
        let room = tokio::task::unconstrained(w.wait_for_capacity(PARTS_IN_FLIGHT));
        if let Err(e) = futures::executor::block_on(room) {
            return Err(self.io_error(e));
        }
        // Starting a part spawns its request, on the object-store runtime.
        let _rt = runtime().enter();
        w.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Upload for RemoteUpload {
    fn commit(mut self: Box<Self>) -> Result<(), SnapshotError> {
        let w = self.inner.take().ok_or_else(|| SnapshotError::Refused("upload already finished".into()))?;
        block(async move { w.finish().await }).map(|_| ()).map_err(|e| self.store.error(&self.key, e))
    }
    fn location(&self) -> PathBuf {
        self.store.location(&self.key)
    }
}

impl Drop for RemoteUpload {
    fn drop(&mut self) {
        if let Some(w) = self.inner.take() {
            // Best effort: parts of an abandoned upload are never visible, only billed until a
            // bucket lifecycle rule removes them.
            drop(runtime().spawn(async move { w.abort().await }));
        }
    }
}

impl Store for RemoteStore {
    fn location(&self, key: &str) -> PathBuf {
        if key.is_empty() { PathBuf::from(&self.url) } else { PathBuf::from(format!("{}/{key}", self.url)) }
    }

    fn list(&self, skip: &str) -> Result<Vec<Entry>, SnapshotError> {
        let mut out: Vec<Entry> = self
            .objects()?
            .into_iter()
            .map(|(key, _, size)| Entry { key, size })
            .filter(|e| skip.is_empty() || e.key.split('/').next() != Some(skip))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn open(&self, key: &str) -> Result<Blob, SnapshotError> {
        let path = self.path(key)?;
        let (inner, p) = (self.inner.clone(), path.clone());
        let meta = block(async move { inner.head(&p).await }).map_err(|e| match e {
            e @ object_store::Error::NotFound { .. } => self.not_found(key, e),
            e => self.error(key, e),
        })?;
        let object = RemoteObject {
            inner: self.inner.clone(),
            path,
            len: meta.size,
            windows: Mutex::default(),
            fetched: self.fetched.clone(),
        };
        Ok(Blob::new(Arc::new(object), self.location(key)))
    }

    fn read_small(&self, key: &str, limit: u64) -> Result<Vec<u8>, SnapshotError> {
        let (inner, path) = (self.inner.clone(), self.path(key)?);
        let got = block(async move {
            let res = inner.get(&path).await?;
            if res.meta.size > limit {
                return Ok(None);
            }
            res.bytes().await.map(Some)
        });
        match got {
            Ok(Some(bytes)) => {
                self.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(bytes.to_vec())
            }
            Ok(None) => Err(SnapshotError::TooLarge { path: self.location(key), limit }),
            Err(e @ object_store::Error::NotFound { .. }) => Err(self.not_found(key, e)),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn create(&self, key: &str) -> Result<Box<dyn Upload>, SnapshotError> {
        let (inner, path) = (self.inner.clone(), self.path(key)?);
        let upload = block(async move { inner.put_multipart(&path).await }).map_err(|e| self.error(key, e))?;
        let inner = Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES));
        Ok(Box::new(RemoteUpload { inner, store: self.clone(), key: key.to_owned() }))
    }

    fn put_atomic(&self, key: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (inner, path) = (self.inner.clone(), self.path(key)?);
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        block(async move { inner.put(&path, payload).await }).map(|_| ()).map_err(|e| self.error(key, e))
    }

    fn remove_prefix(&self, prefix: &str) -> Result<(), SnapshotError> {
        // Objects have no directories: the object named `prefix` and every object under it.
        let under = format!("{prefix}/");
        let doomed: Vec<object_store::Result<ObjectPath>> = self
            .objects()?
            .into_iter()
            .filter(|(key, _, _)| prefix.is_empty() || key == prefix || key.starts_with(&under))
            .map(|(_, path, _)| Ok(path))
            .collect();
        let inner = self.inner.clone();
        block(async move {
            let mut deleted = inner.delete_stream(futures::stream::iter(doomed).boxed());
            while let Some(r) = deleted.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .map_err(|e| self.error(prefix, e))
    }

    fn sync(&self, _prefix: &str) -> Result<(), SnapshotError> {
        Ok(()) // a completed upload or PUT is durable
    }

    fn prepare_dir(&self, _prefix: &str) -> Result<(), SnapshotError> {
        Ok(()) // prefixes need no creating
    }

    fn remote(&self) -> bool {
        true
    }

    fn bytes_fetched(&self) -> Option<u64> {
        Some(RemoteStore::bytes_fetched(self))
    }

    fn try_lock(&self, key: &str) -> Result<Option<Box<dyn StoreLock>>, SnapshotError> {
        let (inner, path) = (self.inner.clone(), self.path(key)?);
        let got = block(async move { super::lease::acquire(inner, path).await }).map_err(|e| self.error(key, e))?;
        Ok(got.map(|l| Box::new(l) as Box<dyn StoreLock>))
    }
}
