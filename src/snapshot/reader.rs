//! Opens a snapshot and streams the record batches of its parts, checking each part's schema.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::SnapshotError;
use super::manifest::{CollectionEntry, Manifest, PartEntry, resolve_part};
use super::schema::check_part_schema;

/// Rows per batch when reading parts.
pub const READ_BATCH_ROWS: usize = 1024;

/// A snapshot directory whose manifest has been read and checked.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    pub manifest: Manifest,
}

impl Snapshot {
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        let manifest = Manifest::read(dir)?;
        Ok(Self { root: dir.to_path_buf(), manifest })
    }

    /// The file of a part, refusing paths that leave the snapshot directory.
    pub fn part_path(&self, coll: &CollectionEntry, part: &PartEntry) -> Result<PathBuf, SnapshotError> {
        resolve_part(&self.root, &part.path).map_err(|why| SnapshotError::BadPartPath {
            collection: coll.name.clone(),
            path: part.path.clone(),
            why,
        })
    }

    /// Streams the batches of one part, after checking its schema against the collection.
    pub fn read_part(&self, coll: &CollectionEntry, part: &PartEntry) -> Result<PartReader, SnapshotError> {
        let path = self.part_path(coll, part)?;
        PartReader::open(&path, coll.dimension, READ_BATCH_ROWS)
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
}

/// An iterator over the batches of one part file.
pub struct PartReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    pub rows: u64,
}

impl PartReader {
    pub fn open(path: &Path, want_dim: Option<usize>, batch_rows: usize) -> Result<Self, SnapshotError> {
        let file = File::open(path).map_err(|e| SnapshotError::io(path, e))?;
        let pq = |e| SnapshotError::Parquet { path: path.to_path_buf(), source: e };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
        let dim = check_part_schema(builder.schema())
            .map_err(|why| SnapshotError::BadPart { path: path.to_path_buf(), why })?;
        if let Some(want) = want_dim.filter(|w| *w != dim) {
            return Err(SnapshotError::BadPart {
                path: path.to_path_buf(),
                why: format!("embeddings have {dim} dimensions, the manifest says {want}"),
            });
        }
        let rows = builder.metadata().file_metadata().num_rows() as u64;
        let inner = builder.with_batch_size(batch_rows).build().map_err(pq)?;
        Ok(Self { path: path.to_path_buf(), inner, rows })
    }
}

impl Iterator for PartReader {
    type Item = Result<RecordBatch, SnapshotError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| {
            r.map_err(|e| SnapshotError::BadPart { path: self.path.clone(), why: format!("cannot decode: {e}") })
        })
    }
}
