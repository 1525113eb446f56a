//! Collection endpoints: list, get by name, count, create, delete.

use reqwest::Method;
use serde_json::Value;

use super::ChromaError;
use super::connect::Client;
use super::types::{Api, CollectionInfo};

impl Client {
    /// Every collection of the tenant/database, paged.
    pub async fn list_collections(&self) -> Result<Vec<CollectionInfo>, ChromaError> {
        let mut out = Vec::new();
        let page = 100;
        loop {
            let mut url = self.route(&["collections"]);
            url.query_pairs_mut().append_pair("limit", &page.to_string()).append_pair("offset", &out.len().to_string());
            let v = self.get_json(url, "list collections").await?;
            let arr = v.as_array().ok_or_else(|| ChromaError::Protocol {
                what: "list collections".into(),
                why: "the answer is not a list".into(),
            })?;
            let n = arr.len();
            for c in arr {
                out.push(CollectionInfo::from_json(c).ok_or_else(|| ChromaError::Protocol {
                    what: "list collections".into(),
                    why: format!("unexpected collection shape: {c}"),
                })?);
            }
            if n < page {
                return Ok(out);
            }
        }
    }

    /// One collection by name; a missing one is [`ChromaError::NoSuchCollection`].
    pub async fn get_collection(&self, name: &str) -> Result<CollectionInfo, ChromaError> {
        let what = format!("collection {name:?}");
        let res =
            self.send_with(Method::GET, self.route(&["collections", name]), None, &what, false).await.and_then(|b| {
                serde_json::from_slice::<Value>(&b)
                    .map_err(|e| ChromaError::Protocol { what: what.clone(), why: e.to_string() })
            });
        let missing = || ChromaError::NoSuchCollection {
            name: name.to_owned(),
            url: self.display.clone(),
            tenant: self.tenant.clone(),
            database: self.database.clone(),
        };
        match res {
            Ok(v) => CollectionInfo::from_json(&v).ok_or_else(missing),
            Err(ChromaError::NotFound { .. }) => Err(missing()),
            // 0.x answers an unknown collection with 400/500 and "does not exist": the server's
            // text is the only signal it gives.
            Err(ChromaError::Rejected { message, .. })
                if message.contains("does not exist") || message.contains("InvalidCollection") =>
            {
                Err(missing())
            }
            Err(e) => Err(e),
        }
    }

    /// Records in the collection (those its filter selects, when it has one).
    pub async fn count(&self, c: &CollectionInfo) -> Result<u64, ChromaError> {
        if c.filter.is_some() {
            // Neither API counts with a filter: the ids it selects are listed and counted.
            let mut pages = std::pin::pin!(self.id_pages(c, self.id_page_rows(30_000)));
            let mut n = 0u64;
            while let Some(ids) = futures::TryStreamExt::try_next(&mut pages).await? {
                n += ids.len() as u64;
            }
            return Ok(n);
        }
        let what = format!("count of collection {:?}", c.name);
        let v = self.get_json(self.route(&["collections", &c.id, "count"]), &what).await?;
        v.as_u64().ok_or_else(|| ChromaError::Protocol { what, why: format!("count is not a number: {v}") })
    }

    /// Creates a collection; `configuration` is sent only on v2.
    pub async fn create_collection(
        &self,
        name: &str,
        metadata: Option<&crate::record::Metadata>,
        configuration: Option<&Value>,
    ) -> Result<CollectionInfo, ChromaError> {
        let what = format!("create collection {name:?}");
        let mut body = serde_json::json!({"name": name, "metadata": metadata, "get_or_create": false});
        if let (Api::V2, Some(conf)) = (self.api, configuration) {
            body["configuration"] = conf.clone();
        }
        let exists = || ChromaError::CollectionExists { name: name.to_owned(), url: self.display.clone() };
        let b = match self.post_json(self.route(&["collections"]), &body, &what).await {
            Err(ChromaError::Rejected { status: 409, .. }) => return Err(exists()),
            // 0.x answers a duplicate name with 400/500 and "already exists" in the text.
            Err(ChromaError::Rejected { message, .. }) if message.contains("already exists") => return Err(exists()),
            r => r?,
        };
        let v: Value =
            serde_json::from_slice(&b).map_err(|e| ChromaError::Protocol { what: what.clone(), why: e.to_string() })?;
        CollectionInfo::from_json(&v)
            .ok_or_else(|| ChromaError::Protocol { what, why: format!("unexpected answer {v}") })
    }

    /// Replaces a collection's metadata (both APIs replace the whole map; 0.x keeps its `hnsw:*`
    /// settings there, so the caller sends them along). 1.x refuses an empty map.
    pub async fn modify_metadata(
        &self,
        c: &CollectionInfo,
        metadata: &crate::record::Metadata,
    ) -> Result<(), ChromaError> {
        let what = format!("metadata of collection {:?}", c.name);
        let body = serde_json::to_vec(&serde_json::json!({ "new_metadata": metadata })).expect("metadata serialises");
        self.send(Method::PUT, self.route(&["collections", &c.id]), Some(body.into()), &what).await.map(|_| ())
    }

    pub async fn delete_collection(&self, name: &str) -> Result<(), ChromaError> {
        let what = format!("delete collection {name:?}");
        self.send(Method::DELETE, self.route(&["collections", name]), None, &what).await.map(|_| ())
    }
}
