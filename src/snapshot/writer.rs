//! Streams record pages of one collection into zstd Parquet part files, rolling at a size target.
//!
//! Each part is written to a `.tmp` name, hashed as it is written, fsynced and only then renamed,
//! so a part under its final name is always complete. The records digest is computed on the way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::SnapshotError;
use super::convert::{BatchView, page_to_batch};
use super::digest::RecordsDigest;
use super::manifest::PartEntry;
use super::schema::{COL_EMBEDDING, check_part_schema};
use super::store::{HashingWriter, LocalStore, Store, Upload};
use crate::record::RecordPage;

/// How parts are laid out. Defaults are the measured choice (docs/snapshot-format.md).
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Start a new part once the current one reaches this many bytes.
    pub target_part_bytes: u64,
    /// Approximate uncompressed bytes per row group (bounds memory while writing and reading).
    pub row_group_bytes: usize,
    pub zstd_level: i32,
    /// Byte-stream-split encoding for embedding values (else plain).
    pub byte_stream_split: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { target_part_bytes: 256 << 20, row_group_bytes: 8 << 20, zstd_level: 1, byte_stream_split: true }
    }
}

/// The result of writing one collection (the default: no records, no parts).
#[derive(Debug, Clone, Default)]
pub struct WrittenCollection {
    pub parts: Vec<PartEntry>,
    pub digest: RecordsDigest,
    pub count: u64,
}

struct OpenPart {
    writer: ArrowWriter<HashingWriter<Box<dyn Upload>>>,
    tmp: PathBuf,
    rel: String,
    rows: u64,
}

/// A failed write is an I/O failure (a full disk, a file-size limit), not a bad input: keep the
/// `io::Error` that Parquet wraps so the message and the exit code say so.
pub(crate) fn write_error(path: &Path, e: parquet::errors::ParquetError) -> SnapshotError {
    match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => SnapshotError::io(path, *io),
            Err(other) => SnapshotError::Parquet {
                path: path.to_path_buf(),
                source: parquet::errors::ParquetError::External(other),
            },
        },
        other => SnapshotError::Parquet { path: path.to_path_buf(), source: other },
    }
}

/// Writes the parts of one collection under `root/rel_dir/`.
pub struct CollectionWriter {
    store: Arc<dyn Store>,
    root: PathBuf,
    rel_dir: String,
    dim: usize,
    opts: WriterOptions,
    open: Option<OpenPart>,
    parts: Vec<PartEntry>,
    digest: RecordsDigest,
    count: u64,
}

impl CollectionWriter {
    pub fn new(root: &Path, rel_dir: &str, dim: usize, opts: WriterOptions) -> Result<Self, SnapshotError> {
        Self::with_store(Arc::new(LocalStore::new(root)), rel_dir, dim, opts)
    }

    /// Writes the parts under `rel_dir/` of any store.
    pub fn with_store(
        store: Arc<dyn Store>,
        rel_dir: &str,
        dim: usize,
        opts: WriterOptions,
    ) -> Result<Self, SnapshotError> {
        store.prepare_dir(rel_dir)?;
        Ok(Self {
            root: store.location(""),
            store,
            rel_dir: rel_dir.to_owned(),
            dim,
            opts,
            open: None,
            parts: Vec::new(),
            digest: RecordsDigest::default(),
            count: 0,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn write_page(&mut self, page: &RecordPage) -> Result<(), SnapshotError> {
        if page.is_empty() {
            return Ok(());
        }
        self.write_batch(&page_to_batch(page))
    }

    /// Writes a batch of the part schema (checked), adding its records to the digest.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), SnapshotError> {
        let dim = check_part_schema(batch.schema_ref())
            .map_err(|why| SnapshotError::BadPart { path: self.root.join(&self.rel_dir), why })?;
        if dim != self.dim {
            return Err(SnapshotError::BadPart {
                path: self.root.join(&self.rel_dir),
                why: format!("batch has {dim}-dim embeddings, collection has {}", self.dim),
            });
        }
        let view = BatchView::new(batch);
        for r in view.records() {
            self.digest.add(&r);
        }
        self.write_unhashed(batch)?;
        self.count += batch.num_rows() as u64;
        Ok(())
    }

    fn write_unhashed(&mut self, batch: &RecordBatch) -> Result<(), SnapshotError> {
        if self.open.is_none() {
            self.open = Some(self.start_part()?);
        }
        let part = self.open.as_mut().expect("just opened");
        part.writer.write(batch).map_err(|e| write_error(&part.tmp, e))?;
        part.rows += batch.num_rows() as u64;
        let size = part.writer.bytes_written() + part.writer.in_progress_size();
        if size as u64 >= self.opts.target_part_bytes {
            self.close_part()?;
        }
        Ok(())
    }

    fn props(&self) -> WriterProperties {
        let rows = (self.opts.row_group_bytes / (self.dim * 4 + 256)).clamp(256, 1 << 17);
        let emb = ColumnPath::new(vec![COL_EMBEDDING.into(), "list".into(), "item".into()]);
        let mut b = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.opts.zstd_level).unwrap_or_default()))
            .set_max_row_group_row_count(Some(rows))
            .set_created_by(format!("chroma-snap {}", env!("CARGO_PKG_VERSION")))
            .set_column_dictionary_enabled(emb.clone(), false)
            .set_column_statistics_enabled(emb.clone(), EnabledStatistics::None);
        if self.opts.byte_stream_split {
            b = b.set_column_encoding(emb, Encoding::BYTE_STREAM_SPLIT);
        }
        b.build()
    }

    fn start_part(&mut self) -> Result<OpenPart, SnapshotError> {
        let n = self.parts.len();
        let rel = format!("{}/part-{n:06}.parquet", self.rel_dir);
        let upload = self.store.create(&rel)?;
        let tmp = upload.location();
        let sink = HashingWriter::new(upload);
        let writer = ArrowWriter::try_new(sink, super::schema::part_schema(self.dim), Some(self.props()))
            .map_err(|e| write_error(&tmp, e))?;
        Ok(OpenPart { writer, tmp, rel, rows: 0 })
    }

    fn close_part(&mut self) -> Result<(), SnapshotError> {
        let Some(part) = self.open.take() else { return Ok(()) };
        let sink = part.writer.into_inner().map_err(|e| write_error(&part.tmp, e))?;
        let (upload, hash, bytes) = sink.into_parts();
        upload.commit()?;
        self.parts.push(PartEntry { path: part.rel, rows: part.rows, bytes, blake3: hash.to_hex() });
        Ok(())
    }

    /// Closes the last part and fsyncs its directory and the directories above it up to the
    /// root (the root itself is synced when the manifest is written there).
    pub fn finish(mut self) -> Result<WrittenCollection, SnapshotError> {
        self.close_part()?;
        let mut dir = self.rel_dir.as_str();
        while !dir.is_empty() {
            self.store.sync(dir)?;
            dir = dir.rsplit_once('/').map_or("", |(up, _)| up);
        }
        Ok(WrittenCollection { parts: self.parts, digest: self.digest, count: self.count })
    }
}

/// A [`CollectionWriter`] on a thread of its own, fed batches in order through a bounded queue:
/// encoding and hashing one target's parts then overlaps everything else (reading, deciding, the
/// other targets' writes), and the bytes are those the writer would write inline, since it
/// receives the same batches in the same order. Dropped without [`WriterThread::finish`], it
/// commits nothing: the open part is abandoned as an inline writer's would be.
pub struct WriterThread {
    tx: Option<std::sync::mpsc::SyncSender<Message>>,
    handle: Option<std::thread::JoinHandle<Result<Option<WrittenCollection>, SnapshotError>>>,
}

enum Message {
    Batch(RecordBatch),
    Finish,
}

impl WriterThread {
    /// Starts the thread; at most `queue` batches wait for it (the sender blocks beyond that), and
    /// it encodes a batch only while holding one of `permits` (shared by the writers of one job:
    /// encoding a batch takes several times its size in transient buffers, so the number of
    /// batches encoded at once, not the number of writers, bounds that memory).
    pub fn spawn(mut writer: CollectionWriter, queue: usize, permits: Arc<Permits>) -> Result<Self, SnapshotError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Message>(queue);
        let dir = writer.root.join(&writer.rel_dir);
        let handle = std::thread::Builder::new()
            .name("chroma-snap writer".into())
            .spawn(move || {
                for m in rx {
                    match m {
                        Message::Batch(b) => {
                            let _permit = permits.acquire();
                            writer.write_batch(&b)?;
                        }
                        Message::Finish => return writer.finish().map(Some),
                    }
                }
                Ok(None) // abandoned: nothing is committed
            })
            .map_err(|e| SnapshotError::io(&dir, e))?;
        Ok(Self { tx: Some(tx), handle: Some(handle) })
    }

    /// Queues a batch; when the writer has failed, returns its error (the batch is not written).
    pub fn write_batch(&mut self, batch: RecordBatch) -> Result<(), SnapshotError> {
        self.send(Message::Batch(batch))
    }

    /// Writes what is queued, closes the last part and returns what was written.
    pub fn finish(mut self) -> Result<WrittenCollection, SnapshotError> {
        self.send(Message::Finish)?;
        self.tx = None;
        Ok(self.join()?.expect("a finished writer returns what it wrote"))
    }

    fn send(&mut self, m: Message) -> Result<(), SnapshotError> {
        let tx = self.tx.as_ref().expect("the queue is open until the writer stops");
        if tx.send(m).is_err() {
            self.tx = None;
            return Err(self.join().expect_err("a writer stops early only on an error"));
        }
        Ok(())
    }

    fn join(&mut self) -> Result<Option<WrittenCollection>, SnapshotError> {
        let handle = self.handle.take().expect("joined once");
        handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join(); // abandoned: its error, if any, is not the one being reported
        }
    }
}

/// A counting semaphore: at most `n` holders at once.
#[derive(Debug)]
pub struct Permits {
    free: std::sync::Mutex<usize>,
    returned: std::sync::Condvar,
}

/// One permit, given back when dropped.
pub struct Permit<'a>(&'a Permits);

impl Permits {
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Self { free: std::sync::Mutex::new(n.max(1)), returned: std::sync::Condvar::new() })
    }

    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *free == 0 {
            free = self.returned.wait(free).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        self.0.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordPage, RecordRef};

    fn batch(dim: usize, from: usize, n: usize) -> RecordBatch {
        let mut p = RecordPage::with_capacity(dim, n);
        for i in from..from + n {
            let (id, e) = (format!("id-{i}"), vec![i as f32; dim]);
            p.push(RecordRef { id: &id, embedding: &e, document: Some("doc"), uri: None, metadata: None });
        }
        page_to_batch(&p)
    }

    fn opts() -> WriterOptions {
        WriterOptions { target_part_bytes: 4096, ..WriterOptions::default() } // several parts
    }

    /// The thread writes the very bytes the inline writer writes, parts and digest alike.
    #[test]
    fn a_writer_thread_writes_what_the_inline_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut inline = CollectionWriter::new(dir.path(), "inline", 3, opts()).unwrap();
        let w = CollectionWriter::new(dir.path(), "thread", 3, opts()).unwrap();
        let mut thread = WriterThread::spawn(w, 0, Permits::new(1)).unwrap();
        for k in 0..5 {
            inline.write_batch(&batch(3, k * 100, 100)).unwrap();
            thread.write_batch(batch(3, k * 100, 100)).unwrap();
        }
        let (a, b) = (inline.finish().unwrap(), thread.finish().unwrap());
        assert!(a.parts.len() > 1, "{} parts", a.parts.len());
        assert_eq!((a.count, a.digest), (b.count, b.digest));
        for (pa, pb) in a.parts.iter().zip(&b.parts) {
            assert_eq!((pa.rows, pa.bytes, &pa.blake3), (pb.rows, pb.bytes, &pb.blake3));
            let read = |rel: &str| std::fs::read(dir.path().join(rel)).unwrap();
            assert_eq!(read(&pa.path), read(&pb.path));
        }
    }

    /// A writer's failure is the caller's error; a writer dropped unfinished commits no part.
    #[test]
    fn failures_are_returned_and_an_abandoned_writer_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let w = CollectionWriter::new(dir.path(), "bad", 3, opts()).unwrap();
        let mut t = WriterThread::spawn(w, 0, Permits::new(1)).unwrap();
        t.write_batch(batch(2, 0, 10)).unwrap(); // taken; refused on the writer's thread
        let err = t.write_batch(batch(3, 0, 10)).and_then(|()| t.finish().map(|_| ())).unwrap_err();
        assert!(err.to_string().contains("2-dim embeddings, collection has 3"), "{err}");

        let w = CollectionWriter::new(dir.path(), "dropped", 3, opts()).unwrap();
        let mut t = WriterThread::spawn(w, 0, Permits::new(1)).unwrap();
        t.write_batch(batch(3, 0, 10)).unwrap();
        drop(t);
        assert!(!dir.path().join("dropped/part-000000.parquet").exists());
    }

    #[test]
    fn permits_bound_the_holders_at_once() {
        let permits = Permits::new(2);
        let (now, most) = (std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _p = permits.acquire();
                        let n = now.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                        std::thread::yield_now();
                        now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert!((1..=2).contains(&most.into_inner()), "never more than 2 at once");
    }
}
