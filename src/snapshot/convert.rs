//! Converts between a [`RecordPage`] and an Arrow [`RecordBatch`] of the part schema, and reads
//! records out of a batch without copying.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, StringArray};
use arrow::datatypes::Float32Type;
use arrow::record_batch::RecordBatch;

use super::schema::{embedding_item, part_schema};
use crate::record::{RecordPage, RecordRef};

/// Builds a part-schema batch from a page.
pub fn page_to_batch(page: &RecordPage) -> RecordBatch {
    let dim = i32::try_from(page.dim).expect("dimension fits in i32");
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values(page.ids.iter()));
    let values = Float32Array::from(page.embeddings.clone());
    let emb: ArrayRef = Arc::new(FixedSizeListArray::new(embedding_item(), dim, Arc::new(values), None));
    let opt =
        |v: &Vec<Option<String>>| -> ArrayRef { Arc::new(v.iter().map(|s| s.as_deref()).collect::<StringArray>()) };
    RecordBatch::try_new(
        part_schema(page.dim),
        vec![ids, emb, opt(&page.documents), opt(&page.uris), opt(&page.metadatas)],
    )
    .expect("page columns match the part schema")
}

/// Borrowed, typed columns of a part-schema batch.
pub struct BatchView<'a> {
    pub dim: usize,
    ids: &'a StringArray,
    values: &'a [f32],
    documents: &'a StringArray,
    uris: &'a StringArray,
    metadatas: &'a StringArray,
}

impl<'a> BatchView<'a> {
    /// Views a batch whose schema was already checked with `check_part_schema`.
    pub fn new(batch: &'a RecordBatch) -> Self {
        let emb = batch.column(1).as_fixed_size_list();
        let dim = emb.value_length() as usize;
        // A sliced batch keeps the whole child array; offset into it by the list's own offset.
        let all: &[f32] = emb.values().as_primitive::<Float32Type>().values();
        let start = emb.offset() * dim;
        Self {
            dim,
            ids: batch.column(0).as_string::<i32>(),
            values: &all[start..start + emb.len() * dim],
            documents: batch.column(2).as_string::<i32>(),
            uris: batch.column(3).as_string::<i32>(),
            metadatas: batch.column(4).as_string::<i32>(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn record(&self, i: usize) -> RecordRef<'a> {
        let opt = |a: &'a StringArray| if a.is_null(i) { None } else { Some(a.value(i)) };
        RecordRef {
            id: self.ids.value(i),
            embedding: &self.values[i * self.dim..(i + 1) * self.dim],
            document: opt(self.documents),
            uri: opt(self.uris),
            metadata: opt(self.metadatas),
        }
    }

    pub fn records(&self) -> impl Iterator<Item = RecordRef<'a>> + '_ {
        (0..self.len()).map(|i| self.record(i))
    }

    /// Copies the rows into an owned page.
    pub fn to_page(&self) -> RecordPage {
        let mut page = RecordPage::with_capacity(self.dim, self.len());
        for r in self.records() {
            page.push(r);
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_roundtrips_through_a_batch() {
        let mut page = RecordPage::with_capacity(2, 2);
        page.push(RecordRef {
            id: "a",
            embedding: &[1.0, -0.0],
            document: Some("d"),
            uri: None,
            metadata: Some("{\"k\":1}"),
        });
        page.push(RecordRef {
            id: "b",
            embedding: &[f32::MIN_POSITIVE, 3.0],
            document: None,
            uri: Some("u"),
            metadata: None,
        });
        let batch = page_to_batch(&page);
        let view = BatchView::new(&batch);
        assert_eq!(view.to_page(), page);
        let sliced = batch.slice(1, 1);
        let v = BatchView::new(&sliced);
        assert_eq!(v.record(0), page.record(1));
    }
}
