//! The Azure half of the object-storage harness: one Azurite blob service (which checks SharedKey
//! signatures) per test process, started by `bin/azurite-server` like the S3 server is by
//! `bin/s3-server`, and a `chroma-snap` command that reaches it.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::harness::repo;
use crate::s3_server::S3Server;

/// The container every test shares (each under its own prefix).
pub const CONTAINER: &str = "snapshots";

/// A running Azurite; it dies with the test process (the script's watchdog).
pub struct Azurite {
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Azurite {
    /// A `chroma-snap` command that reaches this service with the emulator's development account.
    pub fn command(&self) -> Command {
        let mut cmd = S3Server::plain_command();
        for (k, _) in std::env::vars() {
            if k.starts_with("AZURE") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AZURE_STORAGE_USE_EMULATOR", "true").env("AZURITE_BLOB_STORAGE_URL", &self.url);
        cmd
    }
}

/// The shared service, started on first use.
pub fn azurite() -> &'static Azurite {
    static SERVER: OnceLock<Azurite> = OnceLock::new();
    SERVER.get_or_init(|| {
        let owner = std::process::id().to_string();
        let out = Command::new(repo().join("bin/azurite-server"))
            .args(["start", "--owner-pid", &owner, "--container", CONTAINER])
            .current_dir(repo())
            .stdin(Stdio::null())
            .output()
            .expect("run bin/azurite-server start");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "bin/azurite-server start failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = stdout
            .lines()
            .find_map(|l| l.strip_prefix("AZURITE_URL="))
            .unwrap_or_else(|| panic!("no AZURITE_URL= in:\n{stdout}"))
            .to_owned();
        Azurite { url }
    })
}
