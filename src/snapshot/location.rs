//! Where a snapshot lives, from what a person typed: a plain path or `file://` URL (a local
//! directory), or `s3://`, `gs://`, `az://` (object storage). The one place that decides; a
//! scheme it does not know is refused by name, never taken for a directory called `foo:`.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::SnapshotError;
use super::store::{LocalStore, RemoteStore, Store};

/// Object-storage schemes and what they are.
const REMOTE_SCHEMES: &[(&str, &str)] = &[("s3", "S3"), ("gs", "Google Cloud Storage"), ("az", "Azure Blob Storage")];

/// A snapshot location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local filesystem.
    Dir(PathBuf),
    /// A prefix in a bucket: `s3://bucket/prefix` (no trailing `/`, no credentials).
    Remote(String),
}

impl Location {
    /// Reads a command-line argument: a URL when it starts with `scheme://`, else a path.
    pub fn from_arg(arg: &OsStr) -> Result<Self, SnapshotError> {
        match arg.to_str() {
            Some(s) => Self::parse(s),
            None => Ok(Self::Dir(PathBuf::from(arg))), // not UTF-8: never a URL
        }
    }

    pub fn parse(s: &str) -> Result<Self, SnapshotError> {
        let Some(scheme) = scheme(s) else { return Ok(Self::Dir(PathBuf::from(s))) };
        let bad = |why: String| SnapshotError::BadLocation { given: redacted(s), why };
        let url = url::Url::parse(s).map_err(|e| bad(format!("not a valid URL: {e}")))?;
        let lower = scheme.to_ascii_lowercase();
        if lower == "file" {
            if url.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                return Err(bad("a file:// URL names a local path: file:///absolute/dir".into()));
            }
            return url.to_file_path().map(Self::Dir).map_err(|()| bad("not a local path".into()));
        }
        if !REMOTE_SCHEMES.iter().any(|(k, _)| *k == lower) {
            let known: Vec<String> = REMOTE_SCHEMES.iter().map(|(k, _)| format!("{k}://")).collect();
            return Err(bad(format!(
                "unsupported scheme {scheme:?}: a snapshot location is a directory, file://, {}",
                known.join(", ")
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials come from the environment, never from the URL".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a snapshot URL has no query or fragment".into()));
        }
        let bucket = url.host_str().unwrap_or("");
        if bucket.is_empty() {
            return Err(bad(format!("no bucket: {lower}://BUCKET/PREFIX")));
        }
        // Checked as typed: URL parsing would resolve `a/../b` silently.
        let raw = s.split_once("://").map_or("", |(_, r)| r).trim_end_matches('/');
        if raw.split('/').skip(1).any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(bad("the prefix has an empty, '.' or '..' segment".into()));
        }
        let prefix = url.path().trim_matches('/');
        let base = format!("{lower}://{bucket}");
        Ok(Self::Remote(if prefix.is_empty() { base } else { format!("{base}/{prefix}") }))
    }

    /// The store holding the snapshot (nothing is sent to an object store yet).
    pub fn open_store(&self) -> Result<Arc<dyn Store>, SnapshotError> {
        match self {
            Self::Dir(d) => Ok(Arc::new(LocalStore::new(d))),
            Self::Remote(url) => Ok(Arc::new(RemoteStore::open(url, &[])?)),
        }
    }

    pub fn as_dir(&self) -> Option<&Path> {
        match self {
            Self::Dir(d) => Some(d),
            Self::Remote(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "{}", d.display()),
            Self::Remote(u) => f.write_str(u),
        }
    }
}

/// The scheme of `scheme://…` (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`).
fn scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))).then_some(scheme)
}

/// `s` with any `user:password@` removed, for messages.
fn redacted(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else { return s.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_urls_and_refusals() {
        let dir = |s: &str| Location::Dir(PathBuf::from(s));
        assert_eq!(Location::parse("snap/").unwrap(), dir("snap/"));
        assert_eq!(Location::parse("a:b/c").unwrap(), dir("a:b/c"));
        assert_eq!(Location::parse("file:///tmp/snap").unwrap(), dir("/tmp/snap"));
        let remote = |s: &str| Location::Remote(s.to_owned());
        assert_eq!(Location::parse("s3://bucket/a/b/").unwrap(), remote("s3://bucket/a/b"));
        assert_eq!(Location::parse("S3://bucket").unwrap(), remote("s3://bucket"));
        assert_eq!(Location::parse("gs://b/p").unwrap(), remote("gs://b/p"));
        assert_eq!(Location::parse("az://container/p").unwrap(), remote("az://container/p"));
        let err = |s: &str| Location::parse(s).unwrap_err().to_string();
        assert!(err("foo://x").contains(r#"unsupported scheme "foo""#), "{}", err("foo://x"));
        assert!(err("s3://").contains("no bucket"), "{}", err("s3://"));
        assert!(err("s3://b/a/../c").contains("'..'"), "{}", err("s3://b/a/../c"));
        assert!(err("file://host/x").contains("file:///"));
        let secret = err("s3://key:hunter2@bucket/p");
        assert!(secret.contains("environment") && !secret.contains("hunter2"), "{secret}");
        assert!(err("s3://b/p?x=1").contains("query"));
    }
}
