//! Test harness for chroma-snap's integration tests: real ChromaDB servers, Chroma's own Python
//! client and a tiny HTTP client, all std-only.
//!
//! Why: chroma-snap has to be checked against real servers of both API generations (1.5.9 serves
//! only /api/v2, 0.4.24 only /api/v1), and its results have to be judged by something other than
//! its own code. Servers come from `bin/chroma-server` (which also installs them); test data is
//! written and read back with `tests/py/seed_edge_cases.py` and `tests/py/dump_collection.py`.
//!
//! Every server is started with `--owner-pid <this test process>`, so a detached watchdog kills it
//! when the test process ends, however it ends (panic, abort, SIGKILL). Servers from [`shared`]
//! live until then; servers from [`Server::start`] are also stopped when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The 1.x release under test (v2 API only).
pub const V1: &str = "1.5.9";
/// The legacy release under test (v1 API only, token auth built in).
pub const V0: &str = "0.4.24";
/// Every server version the tests cover.
pub const VERSIONS: [&str; 2] = [V1, V0];
/// A 0.5 release, only for reading its data directories (`export --from-dir`, tests/it/from_dir.rs).
pub const V05: &str = "0.5.23";

/// Root of the cargo package (where `bin/` and `tests/py/` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built `chroma-snap` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chroma-snap"))
}

fn chroma_server() -> Command {
    let mut cmd = Command::new(repo().join("bin/chroma-server"));
    cmd.current_dir(repo()).stdin(Stdio::null());
    cmd
}

/// A running ChromaDB server on 127.0.0.1, stopped on drop.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Leader of the server's own process group.
    pub pid: u32,
    /// Server directory: `data/` is its persist path, `server.log` its output.
    pub dir: PathBuf,
    /// `V1` or `V0`.
    pub version: &'static str,
}

impl Server {
    /// Start a fresh, empty server of `version` (`V1` or `V0`).
    pub fn start(version: &'static str) -> Server {
        Self::start_args(version, &[])
    }

    /// Start a server with extra environment variables (e.g. 0.4.24 auth settings).
    pub fn start_with(version: &'static str, env: &[(&str, &str)]) -> Server {
        let args: Vec<String> = env.iter().flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")]).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_args(version, &args)
    }

    /// Start a 0.4.24 server that requires `Authorization: Bearer <token>`.
    pub fn start_with_token(version: &'static str, token: &str) -> Server {
        Self::start_args(version, &["--token", token])
    }

    /// Start a server with extra `bin/chroma-server start` arguments (`--dir DIR` to reuse a data
    /// directory, `--port N`, ...). A later `--owner-pid` overrides this process as the owner.
    pub fn start_args(version: &'static str, extra: &[&str]) -> Server {
        let owner = std::process::id().to_string();
        let out = chroma_server()
            .args(["start", "--version", version, "--owner-pid", &owner])
            .args(extra)
            .output()
            .expect("run bin/chroma-server start");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "bin/chroma-server start --version {version} {extra:?} failed ({}):\n{}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
                .unwrap_or_else(|| panic!("no {key}= in bin/chroma-server output:\n{stdout}"))
                .to_string()
        };
        Server {
            url: field("CHROMA_URL"),
            pid: field("CHROMA_PID").parse().expect("CHROMA_PID is a number"),
            dir: PathBuf::from(field("CHROMA_DIR")),
            version,
        }
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in server url")
    }

    /// `/api/v2` for 1.x, `/api/v1` for 0.x.
    pub fn api(&self) -> &'static str {
        if self.version.starts_with("0.") { "/api/v1" } else { "/api/v2" }
    }

    /// GET `path` (e.g. `/api/v2/heartbeat`) on this server.
    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.url, "GET", path, None, &[])
    }

    /// The tail of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let stopped = chroma_server().args(["stop", &self.pid.to_string()]).status();
        if !matches!(stopped, Ok(s) if s.success()) {
            eprintln!("harness: could not stop chroma server {} ({stopped:?})", self.pid);
        }
        if std::thread::panicking() {
            // Keep data and server.log for the post-mortem.
            eprintln!("harness: keeping {} ({} server, {})", self.dir.display(), self.version, self.url);
        } else if self.dir.starts_with(repo().join(".cache/servers")) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One server per version for the whole test process, started on first use. Tests sharing it
/// must use their own collection names (see [`unique`]). It dies with the test process.
pub fn shared(version: &str) -> &'static Server {
    static V1_SERVER: OnceLock<Server> = OnceLock::new();
    static V0_SERVER: OnceLock<Server> = OnceLock::new();
    match version {
        V1 => V1_SERVER.get_or_init(|| Server::start(V1)),
        V0 => V0_SERVER.get_or_init(|| Server::start(V0)),
        other => panic!("no chroma server version {other}; use {VERSIONS:?}"),
    }
}

/// The python of the venv holding the `version` client (created on first use).
pub fn python(version: &str) -> PathBuf {
    static PYTHONS: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = [V1, V0, V05].iter().position(|v| *v == version).unwrap_or_else(|| panic!("unknown version {version}"));
    PYTHONS[slot]
        .get_or_init(|| {
            let out = chroma_server().args(["python", version]).output().expect("run bin/chroma-server python");
            assert!(
                out.status.success(),
                "bin/chroma-server python {version} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
        })
        .clone()
}

/// Run `script` (relative to the repo root) with the `version` venv's python; return its stdout.
/// Panics with its stderr when it fails.
pub fn run_py(version: &str, script: &str, args: &[&str]) -> String {
    run_py_env(version, script, args, &[])
}

/// [`run_py`] with extra environment variables, e.g. `("CHROMA_TOKEN", token)` for the helpers to
/// authenticate to a 0.4.24 server started with [`Server::start_with_token`].
pub fn run_py_env(version: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(python(version))
        .arg(repo().join(script))
        .args(args)
        .current_dir(repo())
        .env("ANONYMIZED_TELEMETRY", "False")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8(out.stdout).expect("python printed UTF-8");
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n--- stderr\n{}\n--- stdout (tail)\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        &stdout[stdout.len().saturating_sub(2000)..]
    );
    stdout
}

/// Seed `server` with the edge-case collections `{prefix}_*`; returns the script's JSON
/// `{name: count}` line.
pub fn seed_edge_cases(server: &Server, prefix: &str) -> String {
    run_py(server.version, "tests/py/seed_edge_cases.py", &[&server.url, prefix])
}

/// Dump collection `name` of `server` as canonical JSON lines (header first, then records by id).
pub fn dump(server: &Server, name: &str) -> String {
    run_py(server.version, "tests/py/dump_collection.py", &[&server.url, name])
}

/// A collection-name prefix unique across tests, processes and runs: `[a-z0-9_]`, starts with a
/// letter, at most 36 characters, so `{prefix}_some_suffix` stays within 0.4.24's 3-63 limit.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut p: String =
        prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(16).collect();
    if !p.starts_with(|c: char| c.is_ascii_alphabetic()) {
        p.insert(0, 'c');
    }
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{p}_{:x}{:x}_{n}", std::process::id(), micros % 0x100_0000)
}

/// Minimal blocking HTTP/1.1 request (no TLS, `Connection: close`); returns (status, body).
/// `base` is `http://host:port`. A body is sent as JSON.
pub fn http(base: &str, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
    let host = base.strip_prefix("http://").unwrap_or_else(|| panic!("http:// url expected, got {base}"));
    let host = host.trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("set timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).expect("send request");

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read status line");
    let status: u16 =
        line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad status {line:?}"));
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read header");
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("transfer-encoding")
            && v.trim().eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let mut raw = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read chunk size");
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).expect("chunk size");
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2]; // data + CRLF
            reader.read_exact(&mut chunk).expect("read chunk");
            raw.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut raw).expect("read body");
    }
    (status, String::from_utf8_lossy(&raw).into_owned())
}

/// Whether process `pid` exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

// Self-tests of the harness and of the Python helpers.

#[test]
fn harness_token_auth_on_0_4_24() {
    let server = Server::start_with_token(V0, "s3cret-token");
    let path = "/api/v1/collections";
    assert_eq!(server.get("/api/v1/heartbeat").0, 200, "heartbeat stays public");
    let (status, body) = server.get(path);
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = http(&server.url, "GET", path, None, &[("Authorization", "Bearer wrong")]);
    assert_eq!(status, 401, "wrong token: {body}");
    let (status, body) = http(&server.url, "GET", path, None, &[("Authorization", "Bearer s3cret-token")]);
    assert_eq!((status, body.trim()), (200, "[]"));
    // The Python helpers authenticate with CHROMA_TOKEN.
    let token = [("CHROMA_TOKEN", "s3cret-token")];
    let seeded = run_py_env(V0, "tests/py/seed_edge_cases.py", &[&server.url, "auth", "--big", "10"], &token);
    assert_eq!(seeded.trim(), r#"{"auth_big": 10}"#);
    let dumped = run_py_env(V0, "tests/py/dump_collection.py", &[&server.url, "auth_big"], &token);
    assert_eq!(dumped.lines().count(), 11);
}

#[test]
fn harness_server_dies_with_its_owner() {
    let mut owner = Command::new("sleep").arg("600").spawn().expect("spawn sleep");
    let server = Server::start_args(V1, &["--owner-pid", &owner.id().to_string()]);
    assert_eq!(server.get("/api/v2/heartbeat").0, 200);
    owner.kill().expect("kill owner");
    owner.wait().expect("reap owner");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while process_alive(server.pid) {
        assert!(std::time::Instant::now() < deadline, "server {} outlived its owner", server.pid);
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..50 {
        if !server.dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("watchdog left {}", server.dir.display());
}

#[test]
fn harness_python_helpers_seed_and_dump() {
    for version in VERSIONS {
        let server = shared(version);
        let prefix = unique("seed");
        let counts = seed_edge_cases(server, &prefix);
        for expected in [format!("\"{prefix}_unicode\": 29"), format!("\"{prefix}_empty\": 0")] {
            assert!(counts.contains(&expected), "{version}: {expected} not in {counts}");
        }
        assert_eq!(counts.contains("_arrays\""), version == V1, "{version}: arrays only on 1.5+: {counts}");
        for (suffix, space, lines) in [("unicode", "l2", 30), ("cos768", "cosine", 61), ("ip768", "ip", 51)] {
            let out = dump(server, &format!("{prefix}_{suffix}"));
            let header = out.lines().next().unwrap_or_default();
            assert!(header.contains(&format!("\"space\": \"{space}\"")), "{version} {suffix}: {header}");
            assert_eq!(out.lines().count(), lines, "{version} {suffix}");
        }
    }
}

/// Every file under `dir` (recursively), with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out
}
