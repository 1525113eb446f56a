//! API detection: which of v1 and v2 a server speaks, checked against a forced `--api`.

use reqwest::StatusCode;
use serde_json::Value;

use super::ChromaError;
use super::connect::Client;
use super::request::{Noise, Transient, describe_reqwest, with_retries};
use super::retry::RetryPolicy;
use super::types::Api;

impl Client {
    pub(super) async fn detect_api(&self, forced: Option<Api>) -> Result<Api, ChromaError> {
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
    pub(super) async fn probe(&self, path: &str) -> Result<(StatusCode, Value), ChromaError> {
        let url = self.join(path);
        let attempt = |_| {
            let req = self.http.get(url.clone());
            async move {
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.bytes().await.unwrap_or_default();
                        Ok(Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null))))
                    }
                    Err(e) => Err(Transient { why: describe_reqwest(&e), retry_after: None }),
                }
            }
        };
        let exhausted = |_, why| ChromaError::Unreachable { url: self.display.clone(), why };
        with_retries(&RetryPolicy::probe(), &format!("probe {path}"), Noise::Debug, attempt, exhausted).await
    }
}
