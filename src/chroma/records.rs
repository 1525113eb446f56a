//! Record endpoints: list ids, fetch whole records (by id or position), parse answers, write.

use reqwest::Method;

use super::ChromaError;
use super::connect::Client;
use super::parse::{ParsedPage, parse_get, parse_ids};
use super::types::{Api, CollectionInfo};

impl Client {
    /// One page of ids in the server's order (`include: []`).
    pub async fn list_ids(&self, c: &CollectionInfo, offset: usize, limit: usize) -> Result<Vec<String>, ChromaError> {
        let what = format!("ids {offset}..{} of collection {:?}", offset + limit, c.name);
        let mut body = serde_json::json!({"include": [], "limit": limit, "offset": offset});
        if let Some(f) = &c.filter {
            f.apply_to(&mut body);
        }
        let b = self.post_json(self.route(&["collections", &c.id, "get"]), &body, &what).await?;
        parse_ids(&b).map_err(|why| ChromaError::Protocol { what, why })
    }

    /// Asks for one id through the collection's filter, without retrying a server error: 0.x
    /// answers a filter it cannot parse with 500, which no retry fixes.
    pub async fn probe_filter(&self, c: &CollectionInfo) -> Result<(), ChromaError> {
        let what = format!("filtered ids of collection {:?}", c.name);
        let mut body = serde_json::json!({"include": [], "limit": 1, "offset": 0});
        if let Some(f) = &c.filter {
            f.apply_to(&mut body);
        }
        let bytes = bytes::Bytes::from(serde_json::to_vec(&body).expect("JSON"));
        self.send_with(Method::POST, self.route(&["collections", &c.id, "get"]), Some(bytes), &what, false).await?;
        Ok(())
    }

    /// Ids per listing request: `wanted` (ids-only answers are small; the cost of a page is its
    /// offset, ~0.15 µs per skipped row, so fewer, larger pages list faster), capped on Chroma Cloud.
    pub fn id_page_rows(&self, wanted: usize) -> usize {
        let cap =
            if self.is_chroma_cloud() { self.max_batch_size.unwrap_or(super::CLOUD_BATCH_LIMIT) } else { usize::MAX };
        wanted.min(cap).max(1)
    }

    /// Every id of a collection in the server's order, as a stream of pages of `page` ids (the
    /// caller decides where they go, so no list of the whole collection is ever held here).
    pub fn id_pages<'a>(
        &'a self,
        c: &'a CollectionInfo,
        page: usize,
    ) -> impl futures::Stream<Item = Result<Vec<String>, ChromaError>> + 'a {
        futures::stream::try_unfold(Some(0usize), move |offset| async move {
            let Some(offset) = offset else { return Ok(None) };
            let t = std::time::Instant::now();
            let got = self.list_ids(c, offset, page).await?;
            tracing::debug!(
                "collection {:?}: listed ids {offset}..{} in {:.1} ms",
                c.name,
                offset + got.len(),
                t.elapsed().as_secs_f64() * 1e3
            );
            let next = (got.len() == page).then_some(offset + page);
            Ok(if got.is_empty() { None } else { Some((got, next)) })
        })
    }

    /// Records per `get` of whole records: at most `wanted`, within the server's batch limit and
    /// answers of about `budget` bytes (a v1 answer spells each value as f64 text, ~22 bytes; a
    /// v2 answer as the shortest f32 text, ~13).
    pub fn read_page_rows(&self, wanted: usize, budget: usize, dim: Option<usize>) -> usize {
        let per_value = if self.api == Api::V1 { 22 } else { 13 };
        let by_budget = (budget / (dim.unwrap_or(1536) * per_value + 2048)).max(1);
        wanted.min(by_budget).min(self.max_batch_size.unwrap_or(usize::MAX)).max(1)
    }

    /// Fetches whole records by id. The raw answer is returned so parsing can happen off the
    /// async threads; see [`Client::parse_records`].
    pub async fn fetch_records(&self, c: &CollectionInfo, ids: &[String]) -> Result<bytes::Bytes, ChromaError> {
        let what =
            format!("{} records of collection {:?} from id {:?}", ids.len(), c.name, ids.first().map_or("", |s| s));
        let mut body = serde_json::json!({"ids": ids, "include": ["embeddings", "documents", "metadatas", "uris"]});
        if let Some(f) = &c.filter {
            f.apply_to(&mut body);
        }
        self.post_json(self.route(&["collections", &c.id, "get"]), &body, &what).await
    }

    /// Fetches whole records by position (`limit`/`offset`, the server's insertion order).
    pub async fn fetch_range(
        &self,
        c: &CollectionInfo,
        offset: usize,
        limit: usize,
    ) -> Result<bytes::Bytes, ChromaError> {
        let what = format!("records {offset}..{} of collection {:?}", offset + limit, c.name);
        let mut body = serde_json::json!({"limit": limit, "offset": offset,
            "include": ["embeddings", "documents", "metadatas", "uris"]});
        if let Some(f) = &c.filter {
            f.apply_to(&mut body);
        }
        self.post_json(self.route(&["collections", &c.id, "get"]), &body, &what).await
    }

    /// Parses a `get` answer on the blocking pool, off the async threads (parsing is the
    /// client's main cost: ~9 KB of JSON per 768-dim record).
    pub async fn parse_records_off_thread(
        &self,
        body: bytes::Bytes,
        collection: &str,
    ) -> Result<ParsedPage, ChromaError> {
        let api = self.api;
        let what = format!("records of collection {collection:?}");
        let w = what.clone();
        tokio::task::spawn_blocking(move || parse_get(&body, api).map_err(|why| ChromaError::Protocol { what: w, why }))
            .await
            .map_err(|e| ChromaError::Protocol { what, why: format!("parser task failed: {e}") })?
    }

    pub fn parse_records(&self, body: &[u8], collection: &str) -> Result<ParsedPage, ChromaError> {
        parse_get(body, self.api)
            .map_err(|why| ChromaError::Protocol { what: format!("records of collection {collection:?}"), why })
    }

    /// POSTs a prepared body to a record route (`add`, `upsert`, `delete`).
    pub async fn post_records(
        &self,
        c: &CollectionInfo,
        op: &str,
        body: bytes::Bytes,
        what: &str,
    ) -> Result<(), ChromaError> {
        self.send(Method::POST, self.route(&["collections", &c.id, op]), Some(body), what).await.map(|_| ())
    }
}
