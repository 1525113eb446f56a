//! Chroma Cloud's rules in one place: which hosts are Chroma Cloud, and its per-request record cap.
//! Its other documented quotas (sizes, key counts, records per collection) are
//! `crate::limits::Limits::cloud`, which takes the cap from here.

use url::Url;

/// Records per request on Chroma Cloud, for reads and writes, whatever pre-flight says.
pub const CLOUD_BATCH_LIMIT: usize = 300;

/// Whether a server URL is Chroma Cloud (`trychroma.com` or one of its subdomains).
pub fn is_chroma_cloud(url: &Url) -> bool {
    url.host_str().is_some_and(|h| {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        h == "trychroma.com" || h.ends_with(".trychroma.com")
    })
}

/// The records-per-request limit of a server: its pre-flight `max_batch_size`, capped on Chroma
/// Cloud.
pub fn batch_limit(url: &Url, max_batch_size: Option<usize>) -> Option<usize> {
    if is_chroma_cloud(url) {
        Some(max_batch_size.map_or(CLOUD_BATCH_LIMIT, |m| m.min(CLOUD_BATCH_LIMIT)))
    } else {
        max_batch_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn cloud_hosts_and_others() {
        assert!(is_chroma_cloud(&url("https://api.trychroma.com")));
        assert!(is_chroma_cloud(&url("https://API.TryChroma.com.:443/x")));
        assert!(is_chroma_cloud(&url("https://trychroma.com")));
        assert!(!is_chroma_cloud(&url("https://nottrychroma.com")));
        assert!(!is_chroma_cloud(&url("https://trychroma.com.evil.example")));
        assert!(!is_chroma_cloud(&url("http://127.0.0.1:8000")));
    }

    #[test]
    fn the_cap_applies_only_on_cloud() {
        let cloud = url("https://api.trychroma.com");
        assert_eq!(batch_limit(&cloud, None), Some(CLOUD_BATCH_LIMIT));
        assert_eq!(batch_limit(&cloud, Some(5000)), Some(CLOUD_BATCH_LIMIT));
        assert_eq!(batch_limit(&cloud, Some(100)), Some(100));
        let local = url("http://127.0.0.1:8000");
        assert_eq!(batch_limit(&local, None), None);
        assert_eq!(batch_limit(&local, Some(5000)), Some(5000));
    }
}
