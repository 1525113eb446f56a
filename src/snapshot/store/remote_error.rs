//! What an object-store failure means for a person, as one line without secrets: the endpoint
//! cannot be reached, the credentials were refused, the bucket does not exist, or another answer.
//!
//! `object_store` keeps the HTTP status and the server's error body only as text inside its error
//! chain, so the service's machine-readable error code (`<Code>NoSuchBucket</Code>`, the same
//! element on S3, GCS's XML API and Azure) is read from there; nothing else of the body is shown
//! (S3 echoes the access key id and the string it signed in some answers).

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

/// The kind of an object-store failure; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The location or the environment's configuration cannot work (exit 2).
    Config,
    /// The bucket or container does not exist (exit 2).
    NoBucket,
    /// The credentials were refused or lack a permission (exit 1).
    Denied,
    /// The endpoint could not be reached (exit 1).
    Unreachable,
    /// Any other failure of the store (exit 1).
    Failed,
}

impl RemoteFailure {
    /// Bad input rather than a failure: retrying the same command cannot help.
    pub fn is_input(self) -> bool {
        matches!(self, Self::Config | Self::NoBucket)
    }
}

/// Error codes of S3, GCS and Azure that mean the credentials were refused or lack a right.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AllAccessDisabled",
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidSecurity",
    "InvalidToken",
    "NotSignedUp",
    "SignatureDoesNotMatch",
];

/// Error codes that mean the bucket or container does not exist.
const NO_BUCKET: &[&str] = &["NoSuchBucket", "ContainerNotFound"];

/// The kind of `e` and a one-line description of it; `scheme` names the store (`az` has
/// containers, the others buckets).
pub fn classify(e: &object_store::Error, scheme: &str) -> (RemoteFailure, String) {
    let chain = chain(e);
    if let Some(http) = chain.iter().find_map(|c| c.downcast_ref::<HttpError>()) {
        use HttpErrorKind::{Connect, Interrupted, Request, Timeout};
        if matches!(http.kind(), Connect | Timeout | Request | Interrupted) {
            let deepest = chain.last().map(|c| first_line(&c.to_string())).unwrap_or_default();
            return (RemoteFailure::Unreachable, format!("cannot reach the object store: {deepest}"));
        }
    }
    let code = chain.iter().find_map(|c| error_code(&c.to_string()));
    if let Some(c) = code.as_deref() {
        if NO_BUCKET.contains(&c) {
            let noun = if scheme == "az" { "container" } else { "bucket" };
            return (RemoteFailure::NoBucket, format!("the {noun} does not exist ({c})"));
        }
        if DENIED.contains(&c) {
            return (RemoteFailure::Denied, denied(c));
        }
    }
    match e {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            (RemoteFailure::Denied, denied(code.as_deref().unwrap_or("HTTP 401/403")))
        }
        object_store::Error::NotFound { .. } => (RemoteFailure::Failed, "not found".to_owned()),
        object_store::Error::UnknownConfigurationKey { .. } => (RemoteFailure::Config, e.to_string()),
        _ => match code {
            Some(c) => (RemoteFailure::Failed, format!("the object store answered {c}")),
            None => (RemoteFailure::Failed, chain.last().map(|c| first_line(&c.to_string())).unwrap_or_default()),
        },
    }
}

fn denied(code: &str) -> String {
    format!("access denied ({code}): the object store refused the credentials from the environment")
}

/// Where the credentials of a scheme come from, for a refusal's message.
pub fn credential_sources(scheme: &str) -> &'static str {
    match scheme {
        "s3" => "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "gs" => "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
        "az" => "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or a token",
        _ => "the environment",
    }
}

/// `e` and its sources, outermost first.
fn chain(e: &object_store::Error) -> Vec<&(dyn StdError + 'static)> {
    let mut out: Vec<&(dyn StdError + 'static)> = vec![e];
    let mut cur: &(dyn StdError + 'static) = e;
    while let Some(next) = cur.source() {
        out.push(next);
        cur = next;
    }
    out
}

/// The `<Code>…</Code>` of an XML error body quoted in `text`.
fn error_code(text: &str) -> Option<String> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .then(|| code.to_owned())
}

/// The first line of a message, without a quoted body (`<…`) or URL query, at most 200 chars.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let line = line.split('<').next().unwrap_or("");
    let line = line.split('?').next().unwrap_or("");
    let line = line.trim().trim_end_matches(':');
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_read_and_nothing_else_of_the_body() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\
            <Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIA</AWSAccessKeyId></Error>";
        assert_eq!(error_code(body).as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(first_line(body), "Server returned non-2xx status code: 403 Forbidden");
        assert_eq!(error_code("<Code>a b</Code>"), None);
        assert_eq!(first_line("GET https://h/b/k?sig=SECRET failed"), "GET https://h/b/k");
    }
}
