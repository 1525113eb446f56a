//! The one Arrow schema every part file has: id, embedding, document, uri, metadata.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub const COL_ID: &str = "id";
pub const COL_EMBEDDING: &str = "embedding";
pub const COL_DOCUMENT: &str = "document";
pub const COL_URI: &str = "uri";
pub const COL_METADATA: &str = "metadata";

/// The element field of the embedding list (Arrow's conventional name).
pub fn embedding_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

/// The part schema for embeddings of `dim` dimensions.
pub fn part_schema(dim: usize) -> SchemaRef {
    let dim = i32::try_from(dim).expect("dimension fits in i32");
    Arc::new(Schema::new(vec![
        Field::new(COL_ID, DataType::Utf8, false),
        Field::new(COL_EMBEDDING, DataType::FixedSizeList(embedding_item(), dim), false),
        Field::new(COL_DOCUMENT, DataType::Utf8, true),
        Field::new(COL_URI, DataType::Utf8, true),
        Field::new(COL_METADATA, DataType::Utf8, true),
    ]))
}

/// Checks that `schema` is the part schema; returns the embedding dimension or what differs.
pub fn check_part_schema(schema: &Schema) -> Result<usize, String> {
    let dim = match schema.field_with_name(COL_EMBEDDING).map(|f| f.data_type()) {
        Ok(DataType::FixedSizeList(item, n)) if item.data_type() == &DataType::Float32 => {
            usize::try_from(*n).map_err(|_| format!("negative embedding dimension {n}"))?
        }
        Ok(other) => return Err(format!("column embedding has type {other}, expected fixed_size_list<float32>")),
        Err(_) => return Err("column embedding is missing".into()),
    };
    let want = part_schema(dim);
    let names = |s: &Schema| s.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    if names(schema) != names(&want) {
        return Err(format!("columns are {:?}, expected {:?}", names(schema), names(&want)));
    }
    for (got, exp) in schema.fields().iter().zip(want.fields()) {
        if got.data_type() != exp.data_type() {
            return Err(format!("column {} has type {}, expected {}", got.name(), got.data_type(), exp.data_type()));
        }
        if got.is_nullable() && !exp.is_nullable() {
            return Err(format!("column {} is nullable, expected not null", got.name()));
        }
    }
    Ok(dim)
}
