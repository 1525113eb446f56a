//! A side Parquet file beside a snapshot's parts (a transform's `rejects.parquet`): any schema,
//! written through the store under a temporary name and committed (fsync of the file and its
//! directory, then visible) only when finished.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};

use super::SnapshotError;
use super::store::{Store, Upload};
use super::writer::write_error;

/// How a side file is laid out (Parquet 2.0, zstd, created by this chroma-snap).
#[derive(Debug, Clone, Copy)]
pub struct SideLayout {
    pub zstd_level: i32,
    pub row_group_rows: usize,
}

impl SideLayout {
    fn properties(self) -> WriterProperties {
        WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level).unwrap_or_default()))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_created_by(format!("chroma-snap {}", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// Streams batches of one schema into a Parquet file of a store.
pub struct SideWriter {
    writer: ArrowWriter<Box<dyn Upload>>,
    location: std::path::PathBuf,
}

impl SideWriter {
    pub fn create(store: &dyn Store, key: &str, schema: SchemaRef, layout: SideLayout) -> Result<Self, SnapshotError> {
        let upload = store.create(key)?;
        let location = upload.location();
        let writer =
            ArrowWriter::try_new(upload, schema, Some(layout.properties())).map_err(|e| write_error(&location, e))?;
        Ok(Self { writer, location })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SnapshotError> {
        self.writer.write(batch).map_err(|e| write_error(&self.location, e))
    }

    /// Writes the footer and commits the file.
    pub fn finish(self) -> Result<(), SnapshotError> {
        let upload = self.writer.into_inner().map_err(|e| write_error(&self.location, e))?;
        upload.commit()
    }
}

/// Reads every batch of a side Parquet file (for checks and tests; side files are small).
pub fn read_all(store: &dyn Store, key: &str) -> Result<Vec<RecordBatch>, SnapshotError> {
    let blob = store.open(key)?;
    let path = blob.path().to_path_buf();
    let pq = |e| SnapshotError::Parquet { path: path.clone(), source: e };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(blob).map_err(pq)?;
    let batches = reader.build().map_err(pq)?.collect::<Result<Vec<_>, _>>();
    batches.map_err(|e| SnapshotError::BadPart { path: path.clone(), why: format!("cannot decode: {e}") })
}
