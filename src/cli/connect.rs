//! The connection flags shared by every command that talks to a server.

use std::time::Duration;

use clap::Args as ClapArgs;

use chroma_snap::chroma::{Api, ConnectOptions};
use chroma_snap::{Error, Result};

#[derive(Debug, Clone, ClapArgs)]
pub struct Connect {
    /// Tenant (v2 API; a query parameter on v1).
    #[arg(long, default_value = "default_tenant")]
    pub tenant: String,
    /// Database.
    #[arg(long, default_value = "default_database")]
    pub database: String,
    /// Bearer token sent as `Authorization: Bearer …`.
    #[arg(long, env = "CHROMA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Extra request header, `'Name: value'` (e.g. `'X-Chroma-Token: …'`). Repeatable.
    #[arg(long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// Force the HTTP API instead of detecting it.
    #[arg(long, value_parser = ["v1", "v2"])]
    pub api: Option<String>,
    /// Seconds before a request is abandoned (and retried).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Retries of a request that failed transiently (reset, timeout, 429, 5xx) before giving up.
    #[arg(long, default_value_t = 7)]
    pub retries: u32,
}

impl Connect {
    pub fn options(&self, url: &str) -> Result<ConnectOptions> {
        let mut o = ConnectOptions::new(url);
        o.tenant = self.tenant.clone();
        o.database = self.database.clone();
        o.token = self.token.clone().filter(|t| !t.is_empty());
        o.api = self.api.as_deref().map(|a| a.parse::<Api>().map_err(Error::Input)).transpose()?;
        o.timeout = Duration::from_secs(self.timeout.max(1));
        o.retry.max_attempts = self.retries.saturating_add(1);
        for h in &self.headers {
            let (k, v) =
                h.split_once(':').ok_or_else(|| Error::Input("--header must look like 'Name: value'".into()))?;
            o.headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(o)
    }
}
