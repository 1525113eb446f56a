//! Opens a snapshot and streams the record batches of its parts, checking each part's schema.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::SnapshotError;
use super::manifest::{CollectionEntry, Manifest, PartEntry, resolve_part};
use super::schema::check_part_schema;
use super::validate;

/// Rows per batch when reading parts.
pub const READ_BATCH_ROWS: usize = 1024;

/// A snapshot directory whose manifest has been read and checked.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    pub manifest: Manifest,
}

impl Snapshot {
    /// Opens a snapshot, refusing one whose manifest disagrees with itself (see
    /// [`validate::manifest_problems`]).
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        let (snap, problems) = Self::open_with_problems(dir)?;
        if !problems.is_empty() {
            let path = dir.join(super::manifest::MANIFEST_FILE);
            return Err(SnapshotError::BadManifest { path, why: problems.join("; ") });
        }
        Ok(snap)
    }

    /// Opens a snapshot whose manifest is well formed, returning what it says inconsistently
    /// (for verify to report beside what it finds in the files).
    pub fn open_with_problems(dir: &Path) -> Result<(Self, Vec<String>), SnapshotError> {
        let manifest = Manifest::read(dir)?;
        let problems = validate::manifest_problems(&manifest);
        Ok((Self { root: dir.to_path_buf(), manifest }, problems))
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
        let reader = PartReader::open(&path, coll.dimension, READ_BATCH_ROWS)?;
        validate::check_part_rows(part, reader.rows).map_err(|why| SnapshotError::BadPart { path, why })?;
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
}

/// A part the manifest lists but the directory lacks is damage (exit 2), not a failing disk.
pub fn missing_part(path: &Path, e: std::io::Error) -> SnapshotError {
    if e.kind() == std::io::ErrorKind::NotFound {
        SnapshotError::BadPart { path: path.to_path_buf(), why: "missing (the manifest lists it)".into() }
    } else {
        SnapshotError::io(path, e)
    }
}

/// An iterator over the batches of one part file.
pub struct PartReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    pub rows: u64,
}

impl PartReader {
    /// Opens a part of a collection of `want_dim` dimensions, checking its schema and dimension; every batch is checked as it is
    /// read ([`validate::check_batch`]).
    pub fn open(path: &Path, want_dim: Option<usize>, batch_rows: usize) -> Result<Self, SnapshotError> {
        let file = File::open(path).map_err(|e| missing_part(path, e))?;
        let pq = |e| SnapshotError::Parquet { path: path.to_path_buf(), source: e };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
        let dim = check_part_schema(builder.schema())
            .map_err(|why| SnapshotError::BadPart { path: path.to_path_buf(), why })?;
        let rows = u64::try_from(builder.metadata().file_metadata().num_rows())
            .map_err(|_| SnapshotError::BadPart { path: path.to_path_buf(), why: "negative row count".into() })?;
        validate::check_part_dimension(want_dim, dim, rows)
            .map_err(|why| SnapshotError::BadPart { path: path.to_path_buf(), why })?;
        let inner = builder.with_batch_size(batch_rows).build().map_err(pq)?;
        Ok(Self { path: path.to_path_buf(), inner, rows })
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
