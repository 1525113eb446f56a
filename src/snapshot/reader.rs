//! Opens a snapshot and streams the record batches of its parts, checking each part's schema;
//! also splits parts into row groups for readers that work on many at once (transform), and reads
//! one row range of a collection from only the row groups that hold it (`load --shard`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};

use super::SnapshotError;
use super::digest::FileHash;
use super::manifest::{CollectionEntry, Manifest, PartEntry, resolve_part};
use super::schema::check_part_schema;
use super::store::{Blob, LocalStore, Store};
use super::validate;

/// Rows per batch when reading parts.
pub const READ_BATCH_ROWS: usize = 1024;

/// A snapshot whose manifest has been read and checked.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    pub manifest: Manifest,
    /// The blake3 of the manifest bytes that were read.
    pub manifest_blake3: FileHash,
    pub store: Arc<dyn Store>,
}

impl Snapshot {
    /// Opens a snapshot, refusing one whose manifest disagrees with itself (see
    /// [`validate::manifest_problems`]).
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        Self::open_store(Arc::new(LocalStore::new(dir)))
    }

    pub fn open_store(store: Arc<dyn Store>) -> Result<Self, SnapshotError> {
        let (snap, problems) = Self::open_with_problems(store)?;
        if !problems.is_empty() {
            let path = snap.store.location(super::manifest::MANIFEST_FILE);
            return Err(SnapshotError::BadManifest { path, why: problems.join("; ") });
        }
        Ok(snap)
    }

    /// Opens a snapshot whose manifest is well formed, returning what it says inconsistently
    /// (for verify to report beside what it finds in the files).
    pub fn open_with_problems(store: Arc<dyn Store>) -> Result<(Self, Vec<String>), SnapshotError> {
        let (manifest, manifest_blake3) = Manifest::read_from(store.as_ref())?;
        let problems = validate::manifest_problems(&manifest);
        Ok((Self { root: store.location(""), manifest, manifest_blake3, store }, problems))
    }

    /// The file of a part, refusing paths that leave the snapshot directory.
    pub fn part_path(&self, coll: &CollectionEntry, part: &PartEntry) -> Result<PathBuf, SnapshotError> {
        resolve_part(&self.root, &part.path).map_err(|why| SnapshotError::BadPartPath {
            collection: coll.name.clone(),
            path: part.path.clone(),
            why,
        })
    }

    /// Opens a part for reading (a regular file inside the snapshot, or refused).
    /// A part the manifest lists but the snapshot lacks is damage (exit 2), not a failing disk.
    pub fn open_part(&self, coll: &CollectionEntry, part: &PartEntry) -> Result<Blob, SnapshotError> {
        let path = self.part_path(coll, part)?;
        self.store.open(&part.path).map_err(|e| match e {
            SnapshotError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                SnapshotError::BadPart { path, why: "missing (the manifest lists it)".into() }
            }
            other => other,
        })
    }

    /// Streams the batches of one part, after checking its schema, dimension and row count
    /// against the collection; every batch is checked as it is read ([`validate::check_batch`]).
    pub fn read_part(&self, coll: &CollectionEntry, part: &PartEntry) -> Result<PartReader, SnapshotError> {
        let reader = PartReader::new(self.open_part(coll, part)?, coll.dimension, READ_BATCH_ROWS)?;
        validate::check_part_rows(part, reader.rows)
            .map_err(|why| SnapshotError::BadPart { path: reader.path.clone(), why })?;
        Ok(reader)
    }

    /// Every batch of a collection, part after part, in manifest order.
    pub fn collection_batches<'a>(
        &'a self,
        coll: &'a CollectionEntry,
    ) -> impl Iterator<Item = Result<RecordBatch, SnapshotError>> + 'a {
        coll.parts.iter().flat_map(move |p| match self.read_part(coll, p) {
            Ok(r) => Box::new(r) as Box<dyn Iterator<Item = _>>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
    }

    /// The row groups of every part, in manifest order, checking each part's schema, dimension
    /// and row count.
    pub fn row_groups(&self) -> Result<Vec<RowGroup>, SnapshotError> {
        let mut out = Vec::new();
        for c in &self.manifest.collections {
            let name: Arc<str> = Arc::from(c.name.as_str());
            for p in &c.parts {
                let (_, path, meta) = self.part_footer(c, p)?;
                for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
                    out.push(RowGroup {
                        collection: name.clone(),
                        store: self.store.clone(),
                        key: p.path.clone(),
                        path: path.clone(),
                        meta: meta.clone(),
                        row_group: i,
                        rows: usize::try_from(rg.num_rows()).unwrap_or(0),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Opens a part and reads its footer only, checking its schema, dimension and row count
    /// (the file's and its row groups' sum) against the collection.
    fn part_footer(
        &self,
        c: &CollectionEntry,
        p: &PartEntry,
    ) -> Result<(Blob, PathBuf, ArrowReaderMetadata), SnapshotError> {
        let blob = self.open_part(c, p)?;
        let path = blob.path().to_path_buf();
        let meta = ArrowReaderMetadata::load(&blob, Default::default())
            .map_err(|e| SnapshotError::Parquet { path: path.clone(), source: e })?;
        let bad = |why| SnapshotError::BadPart { path: path.clone(), why };
        let dim = check_part_schema(meta.schema()).map_err(bad)?;
        let rows = u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(u64::MAX);
        validate::check_part_dimension(c.dimension, dim, rows).map_err(bad)?;
        validate::check_part_rows(p, rows).map_err(bad)?;
        let groups: u64 =
            meta.metadata().row_groups().iter().map(|rg| u64::try_from(rg.num_rows()).unwrap_or(u64::MAX)).sum();
        if groups != rows {
            return Err(bad(format!("its row groups hold {groups} rows, its footer says {rows}")));
        }
        Ok((blob, path, meta))
    }

    /// Where rows `range` of a collection (counted in part order) lie: one [`PartSpan`] per part
    /// that holds some of them, opened one at a time as the iterator advances. Parts outside the
    /// range are never opened; only their manifest row counts are used.
    pub fn row_spans<'a>(
        &'a self,
        coll: &'a CollectionEntry,
        range: Range<u64>,
    ) -> impl Iterator<Item = Result<PartSpan, SnapshotError>> + 'a {
        part_windows(coll, range).into_iter().map(move |(i, window)| self.span(coll, i, window))
    }

    /// The row groups of part `index` holding its rows `window`.
    fn span(&self, coll: &CollectionEntry, index: usize, window: Range<u64>) -> Result<PartSpan, SnapshotError> {
        let (blob, path, meta) = self.part_footer(coll, &coll.parts[index])?;
        let (mut row_groups, mut at, mut skip, mut rows) = (Vec::new(), 0u64, 0u64, 0u64);
        for (g, rg) in meta.metadata().row_groups().iter().enumerate() {
            let n = u64::try_from(rg.num_rows()).unwrap_or(0);
            if at < window.end && at + n > window.start {
                if row_groups.is_empty() {
                    skip = window.start - at;
                }
                row_groups.push(g);
                rows += n;
            }
            at += n;
        }
        let take = window.end - window.start;
        Ok(PartSpan { part: index, row_groups, skip, take, rest: rows - skip - take, blob, path, meta })
    }

    /// The batches of rows `range` of a collection, in part order: only the row groups that hold
    /// them are read ([`Snapshot::row_spans`]), and every batch is checked as it is read.
    pub fn collection_rows<'a>(
        &'a self,
        coll: &'a CollectionEntry,
        range: Range<u64>,
    ) -> impl Iterator<Item = Result<RecordBatch, SnapshotError>> + 'a {
        self.row_spans(coll, range).flat_map(|span| match span.and_then(|s| s.read(READ_BATCH_ROWS)) {
            Ok(r) => Box::new(r) as Box<dyn Iterator<Item = _>>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
    }
}

/// The parts holding some of rows `range` of a collection (counted in part order), from the
/// manifest's row counts alone: `(part index, the part's own rows in the range)`.
pub fn part_windows(coll: &CollectionEntry, range: Range<u64>) -> Vec<(usize, Range<u64>)> {
    let mut first = 0u64;
    coll.parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let start = first;
            first = first.saturating_add(p.rows);
            let (lo, hi) = (range.start.max(start), range.end.min(first));
            (lo < hi).then(|| (i, lo - start..hi - start))
        })
        .collect()
}

/// The row groups of one part that hold some rows of a range, and which of their rows.
pub struct PartSpan {
    /// The part's index in its collection entry.
    pub part: usize,
    /// The row groups read, in order.
    pub row_groups: Vec<usize>,
    /// Rows of those row groups (taken together) skipped, kept, then skipped again.
    skip: u64,
    take: u64,
    rest: u64,
    blob: Blob,
    path: PathBuf,
    meta: ArrowReaderMetadata,
}

impl PartSpan {
    /// Rows of the range this part holds.
    pub fn rows(&self) -> u64 {
        self.take
    }

    /// Streams the span's rows, `batch_rows` at a time.
    pub fn read(self, batch_rows: usize) -> Result<PartReader, SnapshotError> {
        let selection: Vec<RowSelector> = [
            RowSelector::skip(self.skip as usize),
            RowSelector::select(self.take as usize),
            RowSelector::skip(self.rest as usize),
        ]
        .into_iter()
        .filter(|s| s.row_count > 0)
        .collect();
        let inner = ParquetRecordBatchReaderBuilder::new_with_metadata(self.blob, self.meta)
            .with_row_groups(self.row_groups)
            .with_row_selection(RowSelection::from(selection))
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| SnapshotError::Parquet { path: self.path.clone(), source: e })?;
        Ok(PartReader { path: self.path, inner, rows: self.take })
    }
}

/// One row group of one part of one collection, readable on its own (on any thread).
#[derive(Clone)]
pub struct RowGroup {
    pub collection: Arc<str>,
    store: Arc<dyn Store>,
    key: String,
    pub path: PathBuf,
    meta: ArrowReaderMetadata,
    pub row_group: usize,
    pub rows: usize,
}

impl RowGroup {
    /// Streams the batches of this row group, `batch_rows` rows at a time.
    pub fn read(&self, batch_rows: usize) -> Result<PartReader, SnapshotError> {
        let blob = self.store.open(&self.key)?;
        let inner = ParquetRecordBatchReaderBuilder::new_with_metadata(blob, self.meta.clone())
            .with_row_groups(vec![self.row_group])
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| SnapshotError::Parquet { path: self.path.clone(), source: e })?;
        Ok(PartReader { path: self.path.clone(), inner, rows: self.rows as u64 })
    }
}

/// An iterator over the batches of one part file (or of one row group of it).
pub struct PartReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    pub rows: u64,
}

impl PartReader {
    pub fn new(blob: Blob, want_dim: Option<usize>, batch_rows: usize) -> Result<Self, SnapshotError> {
        let path = blob.path().to_path_buf();
        let pq = |e| SnapshotError::Parquet { path: path.clone(), source: e };
        let builder = ParquetRecordBatchReaderBuilder::try_new(blob).map_err(pq)?;
        let bad = |why| SnapshotError::BadPart { path: path.clone(), why };
        let dim = check_part_schema(builder.schema()).map_err(bad)?;
        let rows = u64::try_from(builder.metadata().file_metadata().num_rows())
            .map_err(|_| bad("negative row count".into()))?;
        validate::check_part_dimension(want_dim, dim, rows).map_err(bad)?;
        let inner = builder.with_batch_size(batch_rows).build().map_err(pq)?;
        Ok(Self { path, inner, rows })
    }
}

impl Iterator for PartReader {
    type Item = Result<RecordBatch, SnapshotError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| {
            let bad = |why| SnapshotError::BadPart { path: self.path.clone(), why };
            let batch = r.map_err(|e| bad(format!("cannot decode: {e}")))?;
            validate::check_batch(&batch).map_err(bad)?;
            Ok(batch)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Mutex;

    use parquet::file::reader::Length;

    use super::*;
    use crate::record::{RecordPage, RecordRef};
    use crate::snapshot::convert::BatchView;
    use crate::snapshot::manifest::CollectionEntry;
    use crate::snapshot::store::{Entry, RangeRead, StoreLock, Upload};
    use crate::snapshot::writer::{CollectionWriter, WriterOptions};

    type Reads = Arc<Mutex<Vec<(String, u64)>>>;

    /// A local store that records where every read of an opened object starts.
    #[derive(Debug)]
    struct Recording {
        inner: LocalStore,
        reads: Reads,
    }

    struct Logged {
        blob: Blob,
        key: String,
        reads: Reads,
    }

    impl RangeRead for Logged {
        fn len(&self) -> u64 {
            Length::len(&self.blob)
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            self.reads.lock().unwrap().push((self.key.clone(), offset));
            self.blob.reader_at(offset).read(buf)
        }
    }

    impl Store for Recording {
        fn location(&self, key: &str) -> PathBuf {
            self.inner.location(key)
        }
        fn list(&self, skip: &str) -> Result<Vec<Entry>, SnapshotError> {
            self.inner.list(skip)
        }
        fn open(&self, key: &str) -> Result<Blob, SnapshotError> {
            let blob = self.inner.open(key)?;
            let path = blob.path().to_path_buf();
            Ok(Blob::new(Arc::new(Logged { blob, key: key.to_owned(), reads: self.reads.clone() }), path))
        }
        fn read_small(&self, key: &str, limit: u64) -> Result<Vec<u8>, SnapshotError> {
            self.inner.read_small(key, limit)
        }
        fn create(&self, key: &str) -> Result<Box<dyn Upload>, SnapshotError> {
            self.inner.create(key)
        }
        fn put_atomic(&self, key: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
            self.inner.put_atomic(key, bytes)
        }
        fn remove_prefix(&self, prefix: &str) -> Result<(), SnapshotError> {
            self.inner.remove_prefix(prefix)
        }
        fn sync(&self, prefix: &str) -> Result<(), SnapshotError> {
            self.inner.sync(prefix)
        }
        fn prepare_dir(&self, prefix: &str) -> Result<(), SnapshotError> {
            self.inner.prepare_dir(prefix)
        }
        fn try_lock(&self, key: &str) -> Result<Option<Box<dyn StoreLock>>, SnapshotError> {
            self.inner.try_lock(key)
        }
    }

    /// 1,800 records in three parts of 600, each in row groups of 256, 256 and 88 rows.
    fn snapshot(dir: &Path) {
        let opts = WriterOptions { target_part_bytes: 1, row_group_bytes: 1, ..WriterOptions::default() };
        let mut w = CollectionWriter::new(dir, "parts/0000", 4, opts).unwrap();
        for chunk in 0..3 {
            let mut p = RecordPage::with_capacity(4, 600);
            for i in chunk * 600..(chunk + 1) * 600 {
                let id = format!("r{i:04}");
                p.push(RecordRef { id: &id, embedding: &[i as f32; 4], document: None, uri: None, metadata: None });
            }
            w.write_page(&p).unwrap();
        }
        let done = w.finish().unwrap();
        let entry = CollectionEntry::written("c".into(), "id".into(), None, None, "l2".into(), Some(4), done);
        Manifest::new(None, vec![entry]).write_atomic(dir).unwrap();
    }

    fn ids(snap: &Snapshot, range: Range<u64>) -> Vec<String> {
        let c = &snap.manifest.collections[0];
        let mut out = Vec::new();
        for b in snap.collection_rows(c, range) {
            out.extend(BatchView::new(&b.unwrap()).records().map(|r| r.id.to_owned()));
        }
        out
    }

    #[test]
    fn a_row_range_reads_only_the_row_groups_that_hold_it() {
        let dir = tempfile::tempdir().unwrap();
        snapshot(dir.path());
        let reads: Reads = Arc::default();
        let store = Recording { inner: LocalStore::new(dir.path()), reads: reads.clone() };
        let snap = Snapshot::open_store(Arc::new(store)).unwrap();
        let c = &snap.manifest.collections[0];
        assert_eq!(c.parts.iter().map(|p| p.rows).collect::<Vec<_>>(), [600, 600, 600]);

        let spans: Vec<(usize, Vec<usize>, u64)> = snap
            .row_spans(c, 300..1000)
            .map(|s| s.unwrap())
            .map(|s| (s.part, s.row_groups.clone(), s.rows()))
            .collect();
        assert_eq!(spans, [(0, vec![1, 2], 300), (1, vec![0, 1], 400)]);

        reads.lock().unwrap().clear();
        let want: Vec<String> = (300..1000).map(|i| format!("r{i:04}")).collect();
        assert_eq!(ids(&snap, 300..1000), want);
        // Where the row groups outside the range lie in their files.
        let unread: Vec<(String, Range<u64>)> = [(0usize, 0usize), (1, 2)]
            .into_iter()
            .map(|(p, g)| {
                let blob = LocalStore::new(dir.path()).open(&c.parts[p].path).unwrap();
                let meta = ArrowReaderMetadata::load(&blob, Default::default()).unwrap();
                let cols = meta.metadata().row_group(g).columns();
                let start = cols.iter().map(|c| c.byte_range().0).min().unwrap();
                let end = cols.iter().map(|c| c.byte_range().0 + c.byte_range().1).max().unwrap();
                (c.parts[p].path.clone(), start..end)
            })
            .collect();
        let reads = reads.lock().unwrap().clone();
        assert!(!reads.is_empty());
        assert!(!reads.iter().any(|(k, _)| *k == c.parts[2].path), "the third part is never opened: {reads:?}");
        for (key, at) in &reads {
            for (k, r) in &unread {
                assert!(
                    !(k == key && r.contains(at)),
                    "read at {at} of {key}, inside a row group outside the range {r:?}"
                );
            }
        }
    }

    #[test]
    fn ranges_cut_anywhere_give_exactly_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        snapshot(dir.path());
        let snap = Snapshot::open(dir.path()).unwrap();
        let all: Vec<String> = (0..1800).map(|i| format!("r{i:04}")).collect();
        assert_eq!(ids(&snap, 0..1800), all);
        assert_eq!(
            snap.collection_rows(&snap.manifest.collections[0], 0..1800).count(),
            snap.collection_batches(&snap.manifest.collections[0]).count()
        );
        for (a, b) in
            [(0, 0), (0, 1), (255, 257), (599, 601), (600, 1200), (1799, 1800), (512, 600), (0, 1800), (1000, 5000)]
        {
            let end = b.min(1800);
            assert_eq!(ids(&snap, a..b), all[a as usize..end as usize], "{a}..{b}");
        }
        assert_eq!(snap.row_spans(&snap.manifest.collections[0], 5..5).count(), 0, "an empty range opens nothing");
    }
}
