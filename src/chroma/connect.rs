//! Connecting: options, auth headers, credential redaction, and the [`Client`] with its routes.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::ChromaError;
use super::cloud;
use super::retry::RetryPolicy;
use super::types::Api;

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
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) display: String,
    pub api: Api,
    pub tenant: String,
    pub database: String,
    /// The release on 0.x (`0.4.24`), the API version on 1.x (`1.0.0`).
    pub server_version: Option<String>,
    /// Records per request: the server's pre-flight limit, with the Chroma Cloud cap applied.
    pub max_batch_size: Option<usize>,
    pub supports_base64: bool,
    pub(super) retry: RetryPolicy,
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
        let headers = auth_headers(&base, opts)?;
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
        c.read_preflight().await;
        c.max_batch_size = cloud::batch_limit(&c.base, c.max_batch_size);
        Ok(c)
    }

    /// Reads the server version and pre-flight limits; a server without them keeps the defaults.
    async fn read_preflight(&mut self) {
        let prefix = format!("api/{}", self.api.as_str());
        self.server_version =
            self.probe(&format!("{prefix}/version")).await.ok().and_then(|(_, v)| v.as_str().map(str::to_owned));
        if let Ok((StatusCode::OK, pf)) = self.probe(&format!("{prefix}/pre-flight-checks")).await {
            self.max_batch_size = pf.get("max_batch_size").and_then(Value::as_u64).map(|n| n as usize);
            self.supports_base64 = pf.get("supports_base64_encoding").and_then(Value::as_bool).unwrap_or(false);
        }
    }

    /// The server URL without credentials.
    pub fn url(&self) -> &str {
        &self.display
    }

    /// Whether this server is Chroma Cloud (see [`cloud::is_chroma_cloud`]).
    pub fn is_chroma_cloud(&self) -> bool {
        cloud::is_chroma_cloud(&self.base)
    }

    pub(super) fn join(&self, path: &str) -> Url {
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
    pub(super) fn route(&self, rest: &[&str]) -> Url {
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
}

/// Default headers: JSON, Basic auth from URL credentials, a bearer token, extra headers; every
/// credential-bearing value is marked sensitive so it never shows in debug output.
fn auth_headers(base: &Url, opts: &ConnectOptions) -> Result<HeaderMap, ChromaError> {
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
    Ok(headers)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn sensitive(v: &str) -> Result<HeaderValue, ChromaError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| ChromaError::BadHeader("a header value is not valid".into()))?;
    h.set_sensitive(true);
    Ok(h)
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
    fn credentials_become_sensitive_headers() {
        let base = Url::parse("http://u:p@127.0.0.1:1").unwrap();
        let mut opts = ConnectOptions::new("http://127.0.0.1:1");
        opts.headers = vec![("X-Chroma-Token".into(), " abc ".into())];
        let h = auth_headers(&base, &opts).unwrap();
        assert!(h[AUTHORIZATION].is_sensitive() && h["x-chroma-token"].is_sensitive());
        assert_eq!(h["x-chroma-token"], "abc");
        opts.token = Some("t".into());
        assert_eq!(auth_headers(&base, &opts).unwrap()[AUTHORIZATION], "Bearer t");
        opts.headers = vec![("bad name".into(), "v".into())];
        assert!(matches!(auth_headers(&base, &opts), Err(ChromaError::BadHeader(_))));
    }
}
