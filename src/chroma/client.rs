//! HTTP client for ChromaDB's v1 and v2 APIs: detection, auth, retries, typed errors.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::ChromaError;
use super::parse::{ParsedPage, parse_get, parse_ids};
use super::retry::{RetryPolicy, parse_retry_after, retryable_status};
use super::types::{Api, CollectionInfo};

/// Records per request on Chroma Cloud, for reads and writes.
pub const CLOUD_BATCH_LIMIT: usize = 300;

/// How to reach a server. Secrets live only here and in request headers (marked sensitive).
#[derive(Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub api: Option<Api>,
    pub tenant: String,
    pub database: String,
    pub token: Option<String>,
    /// Extra `K: V` headers (e.g. `X-Chroma-Token: …`).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &redact_url(&self.url))
            .field("api", &self.api)
            .field("tenant", &self.tenant)
            .field("database", &self.database)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            api: None,
            tenant: "default_tenant".into(),
            database: "default_database".into(),
            token: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// A URL as it may be shown or stored: no user, no password, no query.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => "<unparseable url>".into(),
    }
}

/// A connected server: its API, limits and capabilities are known.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    display: String,
    pub api: Api,
    pub tenant: String,
    pub database: String,
    /// The release on 0.x (`0.4.24`), the API version on 1.x (`1.0.0`).
    pub server_version: Option<String>,
    pub max_batch_size: Option<usize>,
    pub supports_base64: bool,
    retry: RetryPolicy,
}

impl Client {
    /// Connects, detects the API (or checks the forced one) and reads the pre-flight limits.
    pub async fn connect(opts: &ConnectOptions) -> Result<Self, ChromaError> {
        let display = redact_url(&opts.url);
        let mut base =
            Url::parse(&opts.url).map_err(|e| ChromaError::BadUrl { url: display.clone(), why: e.to_string() })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ChromaError::BadUrl { url: display, why: "only http and https are supported".into() });
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !base.username().is_empty() {
            use base64::Engine;
            let cred = format!("{}:{}", base.username(), base.password().unwrap_or(""));
            let v = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(cred));
            headers.insert(AUTHORIZATION, sensitive(&v)?);
        }
        if let Some(t) = &opts.token {
            headers.insert(AUTHORIZATION, sensitive(&format!("Bearer {t}"))?);
        }
        for (k, v) in &opts.headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| ChromaError::BadHeader(format!("invalid header name {k:?}")))?;
            headers.insert(name, sensitive(v.trim())?);
        }
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| ChromaError::BadUrl { url: display.clone(), why: e.to_string() })?;
        let mut c = Client {
            http,
            base,
            display,
            api: opts.api.unwrap_or(Api::V2),
            tenant: opts.tenant.clone(),
            database: opts.database.clone(),
            server_version: None,
            max_batch_size: None,
            supports_base64: false,
            retry: opts.retry.clone(),
        };
        c.api = c.detect_api(opts.api).await?;
        let prefix = format!("api/{}", c.api.as_str());
        c.server_version =
            c.probe(&format!("{prefix}/version")).await.ok().and_then(|(_, v)| v.as_str().map(str::to_owned));
        if let Ok((StatusCode::OK, pf)) = c.probe(&format!("{prefix}/pre-flight-checks")).await {
            c.max_batch_size = pf.get("max_batch_size").and_then(Value::as_u64).map(|n| n as usize);
            c.supports_base64 = pf.get("supports_base64_encoding").and_then(Value::as_bool).unwrap_or(false);
        }
        // Chroma Cloud caps reads and writes at 300 records whatever pre-flight says.
        if c.base.host_str().is_some_and(|h| h.ends_with(".trychroma.com")) {
            c.max_batch_size = Some(c.max_batch_size.map_or(CLOUD_BATCH_LIMIT, |m| m.min(CLOUD_BATCH_LIMIT)));
        }
        Ok(c)
    }

    /// The server URL without credentials.
    pub fn url(&self) -> &str {
        &self.display
    }

    async fn detect_api(&self, forced: Option<Api>) -> Result<Api, ChromaError> {
        let v2 = || self.probe("api/v2/heartbeat");
        let v1 = || self.probe("api/v1/heartbeat");
        match forced {
            Some(Api::V2) => match v2().await? {
                (StatusCode::OK, _) => Ok(Api::V2),
                (s, _) => Err(self.no_api(Api::V2, s, "a 0.4 server serves only v1: use --api v1 or leave --api out")),
            },
            Some(Api::V1) => match v1().await? {
                (StatusCode::OK, _) => Ok(Api::V1),
                (s, _) => Err(self.no_api(Api::V1, s, "Chroma 1.x serves only v2: use --api v2 or leave --api out")),
            },
            None => match v2().await? {
                (StatusCode::OK, _) => Ok(Api::V2),
                (s2, _) => match v1().await? {
                    (StatusCode::OK, _) => Ok(Api::V1),
                    (s1, _) => Err(ChromaError::NotChroma {
                        url: self.display.clone(),
                        why: format!("GET /api/v2/heartbeat answered {s2} and GET /api/v1/heartbeat answered {s1}"),
                    }),
                },
            },
        }
    }

    fn no_api(&self, api: Api, status: StatusCode, hint: &str) -> ChromaError {
        ChromaError::ApiUnavailable {
            url: self.display.clone(),
            api: api.as_str(),
            why: format!("GET /api/{}/heartbeat answered {status}; {hint}", api.as_str()),
        }
    }

    /// A GET for detection: transport errors are retried briefly; any status is returned.
    async fn probe(&self, path: &str) -> Result<(StatusCode, Value), ChromaError> {
        let url = self.join(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.http.get(url.clone()).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    return Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                }
                Err(e) if attempt < RetryPolicy::probe().max_attempts => {
                    tracing::debug!("probe {path}: {}", describe_reqwest(&e));
                    tokio::time::sleep(RetryPolicy::probe().delay(attempt, None)).await;
                }
                Err(e) => {
                    return Err(ChromaError::Unreachable { url: self.display.clone(), why: describe_reqwest(&e) });
                }
            }
        }
    }

    fn join(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        {
            let mut seg = u.path_segments_mut().expect("http URLs have paths");
            seg.pop_if_empty();
            for s in path.split('/') {
                seg.push(s);
            }
        }
        u
    }

    /// The URL of a collection-level route. `rest` segments are percent-encoded.
    fn route(&self, rest: &[&str]) -> Url {
        let mut u = match self.api {
            Api::V2 => self.join(&format!("api/v2/tenants/{}/databases/{}", enc(&self.tenant), enc(&self.database))),
            Api::V1 => {
                let mut u = self.join("api/v1");
                u.query_pairs_mut().append_pair("tenant", &self.tenant).append_pair("database", &self.database);
                u
            }
        };
        u.path_segments_mut().expect("http URLs have paths").extend(rest);
        u
    }

    /// Sends a request with retries for transient failures; returns the body of a 2xx answer.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<bytes::Bytes>,
        what: &str,
    ) -> Result<bytes::Bytes, ChromaError> {
        self.send_with(method, url, body, what, true).await
    }

    /// Like [`Client::send`]; with `retry_server_errors` false a 5xx answer is final (0.x servers
    /// answer 500 for a missing collection, which no retry will fix).
    async fn send_with(
        &self,
        method: Method,
        url: Url,
        body: Option<bytes::Bytes>,
        what: &str,
        retry_server_errors: bool,
    ) -> Result<bytes::Bytes, ChromaError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let (why, retry_after) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after =
                        parse_retry_after(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
                    match resp.bytes().await {
                        Ok(b) if status.is_success() => return Ok(b),
                        Ok(b)
                            if retryable_status(status.as_u16()) && (retry_server_errors || status.as_u16() < 500) =>
                        {
                            (format!("{status}: {}", error_message(&b)), retry_after)
                        }
                        Ok(b) => return Err(self.status_error(status, &b, what)),
                        Err(e) => (format!("reading the answer: {}", describe_reqwest(&e)), None),
                    }
                }
                Err(e) => {
                    if attempt == 1 && e.is_connect() && self.max_batch_size.is_none() && self.server_version.is_none()
                    {
                        return Err(ChromaError::Unreachable { url: self.display.clone(), why: describe_reqwest(&e) });
                    }
                    (describe_reqwest(&e), None)
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(ChromaError::RetriesExhausted { what: what.to_owned(), attempts: attempt, last: why });
            }
            let delay = self.retry.delay(attempt, retry_after);
            tracing::warn!(
                "{what}: {why}; retry {attempt}/{} in {:.1}s",
                self.retry.max_attempts - 1,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn status_error(&self, status: StatusCode, body: &[u8], what: &str) -> ChromaError {
        let message = error_message(body);
        match status.as_u16() {
            401 | 403 => ChromaError::Auth { url: self.display.clone(), status: status.as_u16(), message },
            404 => ChromaError::NotFound { what: what.to_owned(), message },
            410 => ChromaError::ApiUnavailable { url: self.display.clone(), api: self.api.as_str(), why: message },
            413 => ChromaError::TooLarge { what: what.to_owned() },
            s => ChromaError::Rejected { what: what.to_owned(), status: s, message },
        }
    }

    pub async fn get_json(&self, url: Url, what: &str) -> Result<Value, ChromaError> {
        let b = self.send(Method::GET, url, None, what).await?;
        serde_json::from_slice(&b).map_err(|e| ChromaError::Protocol { what: what.to_owned(), why: e.to_string() })
    }

    pub async fn post_json(&self, url: Url, body: &Value, what: &str) -> Result<bytes::Bytes, ChromaError> {
        let body = bytes::Bytes::from(serde_json::to_vec(body).expect("JSON serialises"));
        self.send(Method::POST, url, Some(body), what).await
    }

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
            // 0.x answers an unknown collection with 400/500 and "does not exist".
            Err(ChromaError::Rejected { message, .. })
                if message.contains("does not exist") || message.contains("InvalidCollection") =>
            {
                Err(missing())
            }
            Err(e) => Err(e),
        }
    }

    pub async fn count(&self, c: &CollectionInfo) -> Result<u64, ChromaError> {
        let what = format!("count of collection {:?}", c.name);
        let v = self.get_json(self.route(&["collections", &c.id, "count"]), &what).await?;
        v.as_u64().ok_or_else(|| ChromaError::Protocol { what, why: format!("count is not a number: {v}") })
    }

    /// One page of ids in the server's order (`include: []`).
    pub async fn list_ids(&self, c: &CollectionInfo, offset: usize, limit: usize) -> Result<Vec<String>, ChromaError> {
        let what = format!("ids {offset}..{} of collection {:?}", offset + limit, c.name);
        let body = serde_json::json!({"include": [], "limit": limit, "offset": offset});
        let b = self.post_json(self.route(&["collections", &c.id, "get"]), &body, &what).await?;
        parse_ids(&b).map_err(|why| ChromaError::Protocol { what, why })
    }

    /// Every id of a collection in the server's order, listed in pages.
    pub async fn list_all_ids(&self, c: &CollectionInfo) -> Result<Vec<String>, ChromaError> {
        let page = self.max_batch_size.unwrap_or(10_000).clamp(1, 10_000);
        let mut ids = Vec::new();
        loop {
            let got = self.list_ids(c, ids.len(), page).await?;
            let n = got.len();
            ids.extend(got);
            if n < page {
                return Ok(ids);
            }
        }
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
        let body = serde_json::json!({"ids": ids, "include": ["embeddings", "documents", "metadatas", "uris"]});
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
        let body = serde_json::json!({"limit": limit, "offset": offset,
            "include": ["embeddings", "documents", "metadatas", "uris"]});
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
        let b = match self.post_json(self.route(&["collections"]), &body, &what).await {
            Err(ChromaError::Rejected { status: 409, .. }) => {
                return Err(ChromaError::CollectionExists { name: name.to_owned(), url: self.display.clone() });
            }
            Err(ChromaError::Rejected { message, .. }) if message.contains("already exists") => {
                return Err(ChromaError::CollectionExists { name: name.to_owned(), url: self.display.clone() });
            }
            r => r?,
        };
        let v: Value =
            serde_json::from_slice(&b).map_err(|e| ChromaError::Protocol { what: what.clone(), why: e.to_string() })?;
        CollectionInfo::from_json(&v)
            .ok_or_else(|| ChromaError::Protocol { what, why: format!("unexpected answer {v}") })
    }

    pub async fn delete_collection(&self, name: &str) -> Result<(), ChromaError> {
        let what = format!("delete collection {name:?}");
        self.send(Method::DELETE, self.route(&["collections", name]), None, &what).await.map(|_| ())
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

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn sensitive(v: &str) -> Result<HeaderValue, ChromaError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| ChromaError::BadHeader("a header value is not valid".into()))?;
    h.set_sensitive(true);
    Ok(h)
}

/// The message of an error body in any of the shapes servers use:
/// `{"error","message"}`, `{"error"}`, `{"detail": str | list}`, or plain text.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return text.chars().take(300).collect::<String>().trim().to_owned(),
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let msg = match (s("error"), s("message"), v.get("detail")) {
        (Some(e), Some(m), _) => format!("{e}: {m}"),
        (_, Some(m), _) => m,
        (Some(e), None, _) => e,
        (_, _, Some(Value::String(d))) => d.clone(),
        (_, _, Some(d)) => d.to_string(),
        _ => v.to_string(),
    };
    msg.chars().take(500).collect()
}

/// A one-line description of a transport error, without the URL (callers name it).
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    if let Some(l) = last {
        msg.push_str(": ");
        msg.push_str(&l);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials() {
        assert_eq!(redact_url("https://user:s3cret@host:8000/x?token=abc"), "https://host:8000/x");
        assert!(!redact_url("http://a:b@h").contains('b'));
    }

    #[test]
    fn error_bodies_of_every_shape() {
        assert_eq!(error_message(br#"{"error":"NotFound","message":"nope"}"#), "NotFound: nope");
        assert_eq!(error_message(br#"{"error":"ValueError('x')"}"#), "ValueError('x')");
        assert_eq!(error_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert!(error_message(br#"{"detail":[{"loc":["body"]}]}"#).contains("loc"));
        assert_eq!(error_message(b"too large"), "too large");
    }
}
