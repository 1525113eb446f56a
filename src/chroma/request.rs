//! Requests: the one retry loop (policy in retry.rs), status-to-error mapping, error-body parsing.

use std::future::Future;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::ChromaError;
use super::connect::Client;
use super::retry::{RetryPolicy, parse_retry_after, retryable_status};

/// How one attempt ended when it did not settle the request.
pub(super) struct Transient {
    pub why: String,
    pub retry_after: Option<Duration>,
}

/// How retries are reported: a warning per retry, or only a debug line (first contact).
#[derive(Clone, Copy)]
pub(super) enum Noise {
    Warn,
    Debug,
}

/// Runs `attempt` (given its number, from 1) until it settles or `policy` runs out of attempts;
/// then `exhausted(attempts, last failure)` names the failure.
pub(super) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    noise: Noise,
    mut attempt: F,
    exhausted: impl FnOnce(u32, String) -> ChromaError,
) -> Result<T, ChromaError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Result<T, ChromaError>, Transient>>,
{
    let mut n = 0u32;
    loop {
        n += 1;
        let Transient { why, retry_after } = match attempt(n).await {
            Ok(settled) => return settled,
            Err(t) => t,
        };
        if n >= policy.max_attempts {
            return Err(exhausted(n, why));
        }
        let delay = policy.delay(n, retry_after);
        match noise {
            Noise::Warn => {
                tracing::warn!("{what}: {why}; retry {n}/{} in {:.1}s", policy.max_attempts - 1, delay.as_secs_f64())
            }
            Noise::Debug => tracing::debug!("{what}: {why}"),
        }
        tokio::time::sleep(delay).await;
    }
}

impl Client {
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
    pub(super) async fn send_with(
        &self,
        method: Method,
        url: Url,
        body: Option<bytes::Bytes>,
        what: &str,
        retry_server_errors: bool,
    ) -> Result<bytes::Bytes, ChromaError> {
        let attempt = |n: u32| {
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            async move { self.settle(req.send().await, n, what, retry_server_errors).await }
        };
        let exhausted = |attempts, last| ChromaError::RetriesExhausted { what: what.to_owned(), attempts, last };
        with_retries(&self.retry, what, Noise::Warn, attempt, exhausted).await
    }

    /// Turns one attempt's outcome into a settled result or a transient failure.
    async fn settle(
        &self,
        sent: reqwest::Result<reqwest::Response>,
        attempt: u32,
        what: &str,
        retry_server_errors: bool,
    ) -> Result<Result<bytes::Bytes, ChromaError>, Transient> {
        let resp = match sent {
            Ok(resp) => resp,
            // Nothing ever answered: a wrong URL, not a hiccup.
            Err(e)
                if attempt == 1 && e.is_connect() && self.max_batch_size.is_none() && self.server_version.is_none() =>
            {
                return Ok(Err(ChromaError::Unreachable { url: self.display.clone(), why: describe_reqwest(&e) }));
            }
            Err(e) => return Err(Transient { why: describe_reqwest(&e), retry_after: None }),
        };
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
        match resp.bytes().await {
            Ok(b) if status.is_success() => Ok(Ok(b)),
            Ok(b) if retryable_status(status.as_u16()) && (retry_server_errors || status.as_u16() < 500) => {
                Err(Transient { why: format!("{status}: {}", error_message(&b)), retry_after })
            }
            Ok(b) => Ok(Err(self.status_error(status, &b, what))),
            Err(e) => {
                Err(Transient { why: format!("reading the answer: {}", describe_reqwest(&e)), retry_after: None })
            }
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
    fn error_bodies_of_every_shape() {
        assert_eq!(error_message(br#"{"error":"NotFound","message":"nope"}"#), "NotFound: nope");
        assert_eq!(error_message(br#"{"error":"ValueError('x')"}"#), "ValueError('x')");
        assert_eq!(error_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert!(error_message(br#"{"detail":[{"loc":["body"]}]}"#).contains("loc"));
        assert_eq!(error_message(b"too large"), "too large");
    }

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy { max_attempts, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) }
    }

    #[tokio::test]
    async fn the_loop_retries_transient_failures_then_gives_up() {
        let mut seen = Vec::new();
        let res: Result<(), _> = with_retries(
            &quick(3),
            "thing",
            Noise::Debug,
            |n| {
                seen.push(n);
                async move { Err(Transient { why: format!("hiccup {n}"), retry_after: None }) }
            },
            |attempts, last| ChromaError::RetriesExhausted { what: "thing".into(), attempts, last },
        )
        .await;
        assert_eq!(seen, [1, 2, 3]);
        let err = res.unwrap_err().to_string();
        assert_eq!(err, "thing: gave up after 3 attempts; last failure: hiccup 3");
    }

    #[tokio::test]
    async fn a_settled_attempt_ends_the_loop() {
        let ok = with_retries(
            &quick(5),
            "x",
            Noise::Warn,
            |n| async move { if n < 2 { Err(Transient { why: "again".into(), retry_after: None }) } else { Ok(Ok(n)) } },
            |_, _| unreachable!(),
        )
        .await;
        assert_eq!(ok.unwrap(), 2);
        let refused: Result<(), _> = with_retries(
            &quick(5),
            "x",
            Noise::Warn,
            |_| async { Ok(Err(ChromaError::TooLarge { what: "x".into() })) },
            |_, _| unreachable!(),
        )
        .await;
        assert!(matches!(refused, Err(ChromaError::TooLarge { .. })));
    }
}
