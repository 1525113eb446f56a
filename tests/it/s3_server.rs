//! The S3 half of the test harness: one real S3-compatible server (s3s-fs, which checks SigV4
//! signatures) per test process, started by `bin/s3-server` like the Chroma servers are by
//! `bin/chroma-server`, and what a test needs to reach it: the environment for the CLI, options
//! for the library, and a copy of a local snapshot into a bucket through the library's own store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use chroma_snap::snapshot::store::{LocalStore, RemoteStore, Store};

use crate::harness::repo;

/// The bucket every test shares (each under its own prefix, see [`crate::harness::unique`]).
pub const BUCKET: &str = "snapshots";
/// The fixed test key pair `bin/s3-server` starts the server with (not a secret).
pub const ACCESS_KEY: &str = "chroma-snap-test";
pub const SECRET_KEY: &str = "chroma-snap-test-secret";

/// A running s3s-fs server; it dies with the test process (the script's watchdog).
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub pid: u32,
    /// `data/<bucket>/` holds a bucket's objects as files.
    pub dir: PathBuf,
}

impl S3Server {
    /// The environment a chroma-snap process needs to reach this server with the right keys.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.env_with(ACCESS_KEY, SECRET_KEY)
    }

    /// [`Self::env`] with other credentials.
    pub fn env_with(&self, key: &str, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", key.into()),
            ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ]
    }

    /// The same settings as `object_store` options, for the library inside this process.
    pub fn store(&self, url: &str) -> RemoteStore {
        let opts = [
            ("aws_endpoint", self.url.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", ACCESS_KEY),
            ("aws_secret_access_key", SECRET_KEY),
        ];
        RemoteStore::open(url, &opts).unwrap_or_else(|e| panic!("open {url}: {e}"))
    }

    /// A `chroma-snap` command that reaches this server.
    pub fn command(&self) -> Command {
        let mut cmd = Self::plain_command();
        cmd.envs(self.env());
        cmd
    }

    /// A `chroma-snap` command without any object-store setting (the caller's AWS_* removed).
    pub fn plain_command() -> Command {
        let mut cmd = Command::new(crate::harness::bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1").stdin(Stdio::null());
        cmd
    }

    /// The file holding object `key` of `bucket` (s3s-fs keeps objects as plain files).
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.dir.join("data").join(bucket).join(key)
    }
}

/// The shared server, started on first use.
pub fn s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let owner = std::process::id().to_string();
        let out = Command::new(repo().join("bin/s3-server"))
            .args(["start", "--owner-pid", &owner, "--bucket", BUCKET])
            .current_dir(repo())
            .stdin(Stdio::null())
            .output()
            .expect("run bin/s3-server start");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "bin/s3-server start failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_else(|| panic!("no {key}= in bin/s3-server output:\n{stdout}"))
                .to_owned()
        };
        S3Server {
            url: field("S3_URL"),
            pid: field("S3_PID").parse().expect("S3_PID is a number"),
            dir: PathBuf::from(field("S3_DIR")),
        }
    })
}

/// Copies every file of the snapshot in `dir` to `to` through the store seam: parts by multipart
/// upload, the manifest last by one PUT, as an export would.
pub fn upload(dir: &Path, to: &RemoteStore) {
    let local = LocalStore::new(dir);
    let entries = local.list("").unwrap();
    let (manifest, rest): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.key == "manifest.json");
    for e in rest.iter().chain(&manifest) {
        let bytes = std::fs::read(dir.join(&e.key)).unwrap();
        if e.key == "manifest.json" {
            to.put_atomic(&e.key, &bytes).unwrap();
        } else {
            let mut up = to.create(&e.key).unwrap();
            std::io::Write::write_all(&mut up, &bytes).unwrap();
            up.commit().unwrap();
        }
    }
}
