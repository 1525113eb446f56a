//! Opens a snapshot and streams the record batches of its parts, checking each part's schema;
//! also splits parts into row groups for readers that work on many at once (transform).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

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
                let blob = self.open_part(c, p)?;
                let path = blob.path().to_path_buf();
                let meta = ArrowReaderMetadata::load(&blob, Default::default())
                    .map_err(|e| SnapshotError::Parquet { path: path.clone(), source: e })?;
                let bad = |why| SnapshotError::BadPart { path: path.clone(), why };
                let dim = check_part_schema(meta.schema()).map_err(bad)?;
                let rows = u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(u64::MAX);
                validate::check_part_dimension(c.dimension, dim, rows).map_err(bad)?;
                validate::check_part_rows(p, rows).map_err(bad)?;
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
