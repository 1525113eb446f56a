//! `rejects.parquet`: every rejected record in full (so nothing is lost), where it came from,
//! where it was routed, and every reason, in a schema pyarrow and DuckDB read directly.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Builder, ListBuilder, StringBuilder, StructBuilder};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::checks::Reason;
use crate::error::Result;
use crate::record::RecordRef;
use crate::snapshot::sidefile::{SideLayout, SideWriter};
use crate::snapshot::store::{LocalStore, Store};

pub const REJECTS_FILE: &str = "rejects.parquet";

/// One rejected record, owned.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub source_collection: String,
    pub target: Option<String>,
    pub id: String,
    pub embedding: Vec<f32>,
    pub document: Option<String>,
    pub uri: Option<String>,
    pub metadata: Option<String>,
    pub reasons: Vec<Reason>,
}

impl Rejected {
    pub fn new(collection: &str, target: Option<&str>, r: &RecordRef<'_>, reasons: Vec<Reason>) -> Self {
        Self {
            source_collection: collection.to_owned(),
            target: target.map(str::to_owned),
            id: r.id.to_owned(),
            embedding: r.embedding.to_vec(),
            document: r.document.map(str::to_owned),
            uri: r.uri.map(str::to_owned),
            metadata: r.metadata.map(str::to_owned),
            reasons,
        }
    }
}

fn reason_fields() -> Fields {
    Fields::from(vec![
        Field::new("rule", DataType::Utf8, false),
        Field::new("field", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
    ])
}

pub fn schema() -> SchemaRef {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let reason = Arc::new(Field::new("item", DataType::Struct(reason_fields()), false));
    Arc::new(Schema::new(vec![
        Field::new("source_collection", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, true),
        Field::new("id", DataType::Utf8, false),
        Field::new("embedding", DataType::List(item), false),
        Field::new("document", DataType::Utf8, true),
        Field::new("uri", DataType::Utf8, true),
        Field::new("metadata", DataType::Utf8, true),
        Field::new("reasons", DataType::List(reason), false),
    ]))
}

/// Streams rejected records into `rejects.parquet` (written to a temp name, committed on finish).
pub struct RejectsWriter {
    writer: SideWriter,
    pub count: u64,
}

impl RejectsWriter {
    pub fn create(dir: &Path) -> Result<Self> {
        Self::create_in(&LocalStore::new(dir))
    }

    pub fn create_in(store: &dyn Store) -> Result<Self> {
        let layout = SideLayout { zstd_level: 3, row_group_rows: 4096 };
        Ok(Self { writer: SideWriter::create(store, REJECTS_FILE, schema(), layout)?, count: 0 })
    }

    pub fn write(&mut self, rows: &[Rejected]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.writer.write(&to_batch(rows))?;
        self.count += rows.len() as u64;
        Ok(())
    }

    /// Commits the file: fsync of the file and its directory, then the final name.
    pub fn finish(self) -> Result<()> {
        Ok(self.writer.finish()?)
    }
}

fn to_batch(rows: &[Rejected]) -> RecordBatch {
    let mut coll = StringBuilder::new();
    let mut target = StringBuilder::new();
    let mut id = StringBuilder::new();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let mut emb = ListBuilder::new(Float32Builder::new()).with_field(item);
    let mut doc = StringBuilder::new();
    let mut uri = StringBuilder::new();
    let mut meta = StringBuilder::new();
    let reason_item = Arc::new(Field::new("item", DataType::Struct(reason_fields()), false));
    let mut reasons = ListBuilder::new(StructBuilder::from_fields(reason_fields(), 4)).with_field(reason_item);
    for r in rows {
        coll.append_value(&r.source_collection);
        target.append_option(r.target.as_deref());
        id.append_value(&r.id);
        emb.values().append_slice(&r.embedding);
        emb.append(true);
        doc.append_option(r.document.as_deref());
        uri.append_option(r.uri.as_deref());
        meta.append_option(r.metadata.as_deref());
        let s = reasons.values();
        for reason in &r.reasons {
            s.field_builder::<StringBuilder>(0).expect("rule").append_value(reason.rule);
            s.field_builder::<StringBuilder>(1).expect("field").append_option(reason.field.as_deref());
            s.field_builder::<StringBuilder>(2).expect("message").append_value(&reason.message);
            s.append(true);
        }
        reasons.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(coll.finish()),
        Arc::new(target.finish()),
        Arc::new(id.finish()),
        Arc::new(emb.finish()),
        Arc::new(doc.finish()),
        Arc::new(uri.finish()),
        Arc::new(meta.finish()),
        Arc::new(reasons.finish()),
    ];
    RecordBatch::try_new(schema(), cols).expect("rejects columns match the schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn rejects_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RejectsWriter::create(dir.path()).unwrap();
        let r = RecordRef { id: "a", embedding: &[1.0, 2.0], document: None, uri: None, metadata: Some("{}") };
        let reasons = vec![
            Reason::new("field.range", Some("score"), "1.5 is outside [0, 1]"),
            Reason::new("document.empty", None, "document is null"),
        ];
        w.write(&[Rejected::new("old", Some("new"), &r, reasons)]).unwrap();
        w.finish().unwrap();
        let batches = crate::snapshot::sidefile::read_all(&LocalStore::new(dir.path()), REJECTS_FILE).unwrap();
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 1);
        let reasons = batch.column(7).as_list::<i32>().value(0);
        assert_eq!(reasons.len(), 2);
        let rules = reasons.as_struct().column(0).as_string::<i32>().value(1).to_owned();
        assert_eq!(rules, "document.empty");
        assert!(!dir.path().join(format!("{REJECTS_FILE}.tmp")).exists());
    }
}
