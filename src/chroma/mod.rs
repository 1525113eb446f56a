//! Talking to ChromaDB over HTTP (v1 for 0.4/0.5 servers, v2 for 0.5.16+ and 1.x).
//!
//! connect.rs (options, auth, the client and its routes), detect.rs (which API), request.rs (the
//! one retry loop, status → error), collections.rs and records.rs (endpoints), cloud.rs (Chroma
//! Cloud rules), parse.rs (answers → pages), retry.rs (policy), types.rs (DTOs).
//!
//! This layer never touches Parquet: it turns server answers into [`crate::record::RecordPage`]s.

pub mod cloud;
mod collections;
pub mod connect;
mod detect;
pub mod parse;
mod records;
pub mod request;
pub mod retry;
pub mod types;

pub use cloud::{CLOUD_BATCH_LIMIT, is_chroma_cloud};
pub use connect::{Client, ConnectOptions, redact_url};
pub use types::{Api, CollectionInfo};

#[derive(Debug, thiserror::Error)]
pub enum ChromaError {
    #[error("bad server URL {url}: {why}")]
    BadUrl { url: String, why: String },
    #[error("{0}")]
    BadHeader(String),
    #[error("cannot reach ChromaDB at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("{url} does not look like a ChromaDB server: {why}")]
    NotChroma { url: String, why: String },
    #[error("{url} does not serve the {api} API: {why}")]
    ApiUnavailable { url: String, api: &'static str, why: String },
    #[error("{url} refused the credentials ({status}): {message}; check --token / CHROMA_TOKEN / --header")]
    Auth { url: String, status: u16, message: String },
    #[error("collection {name:?} not found on {url} (tenant {tenant:?}, database {database:?})")]
    NoSuchCollection { name: String, url: String, tenant: String, database: String },
    #[error("collection {name:?} already exists on {url}")]
    CollectionExists { name: String, url: String },
    #[error("{what}: not found: {message}")]
    NotFound { what: String, message: String },
    #[error("{what}: the request is too large for the server (413)")]
    TooLarge { what: String },
    #[error("{what}: the server refused it ({status}): {message}")]
    Rejected { what: String, status: u16, message: String },
    #[error("{what}: gave up after {attempts} attempts; last failure: {last}")]
    RetriesExhausted { what: String, attempts: u32, last: String },
    #[error("{what}: unexpected answer: {why}")]
    Protocol { what: String, why: String },
}

impl ChromaError {
    /// Whether a later attempt (e.g. a rerun) might succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::RetriesExhausted { .. })
    }
}
