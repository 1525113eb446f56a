//! Fetching one page of records: by listed ids (reordered to the request, vanished and unreadable
//! ids set apart) or by offset.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::ExportError;
use crate::chroma::{Client, CollectionInfo};
use crate::error::Result;
use crate::record::RecordPage;

/// One fetched page: the records that came back, and ids that did not.
pub(super) struct Fetched {
    pub page: RecordPage,
    pub vanished: Vec<String>,
    pub unreadable: Vec<String>,
}

pub(super) async fn fetch_page(client: Arc<Client>, info: Arc<CollectionInfo>, ids: Vec<String>) -> Result<Fetched> {
    let body = client.fetch_records(&info, &ids).await?;
    let parsed = client.parse_records_off_thread(body, &info.name).await?;
    if parsed.short_arrays.is_some() {
        // Rows cannot be matched to ids: fetch one by one to name the records that cannot be read.
        tracing::warn!(
            "collection {:?}: {}; fetching that page record by record",
            info.name,
            parsed.short_arrays.unwrap_or_default()
        );
        let mut out = Fetched { page: RecordPage::default(), vanished: Vec::new(), unreadable: Vec::new() };
        for id in ids {
            let body = client.fetch_records(&info, std::slice::from_ref(&id)).await?;
            let p = client.parse_records(&body, &info.name)?;
            if p.short_arrays.is_some() || !p.missing_embedding.is_empty() {
                out.unreadable.push(id);
            } else if p.page.is_empty() {
                out.vanished.push(id);
            } else {
                append(&mut out.page, &p.page, &info.name)?;
            }
        }
        return Ok(out);
    }
    let unreadable = parsed.missing_embedding;
    let page = in_request_order(parsed.page, &ids);
    let returned: std::collections::HashSet<&str> =
        page.ids.iter().map(String::as_str).chain(unreadable.iter().map(String::as_str)).collect();
    let vanished = ids.iter().filter(|id| !returned.contains(id.as_str())).cloned().collect();
    Ok(Fetched { page, vanished, unreadable })
}

pub(super) async fn fetch_range(
    client: Arc<Client>,
    info: Arc<CollectionInfo>,
    offset: usize,
    limit: usize,
) -> Result<Fetched> {
    let body = client.fetch_range(&info, offset, limit).await?;
    let parsed = client.parse_records_off_thread(body, &info.name).await?;
    if let Some(why) = parsed.short_arrays {
        let (collection, start, end) = (info.name.clone(), offset, offset + limit);
        return Err(ExportError::UnmatchedRows { collection, start, end, why }.into());
    }
    Ok(Fetched { page: parsed.page, vanished: Vec::new(), unreadable: parsed.missing_embedding })
}

fn append(dst: &mut RecordPage, src: &RecordPage, collection: &str) -> Result<()> {
    if dst.is_empty() && dst.embeddings.is_empty() {
        dst.dim = src.dim;
    }
    if src.dim != dst.dim {
        let (collection, id) = (collection.to_owned(), src.ids[0].clone());
        return Err(ExportError::Dimension { collection, id, found: src.dim, expected: dst.dim }.into());
    }
    for i in 0..src.len() {
        dst.push(src.record(i));
    }
    Ok(())
}

/// Reorders rows to the order the ids were asked in (servers answer in insertion order).
fn in_request_order(page: RecordPage, ids: &[String]) -> RecordPage {
    if page.ids.iter().zip(ids).all(|(a, b)| a == b) {
        return page;
    }
    let pos: HashMap<&str, usize> = page.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut out = RecordPage::with_capacity(page.dim, page.len());
    for id in ids {
        if let Some(&i) = pos.get(id.as_str()) {
            out.push(page.record(i));
        }
    }
    out
}
