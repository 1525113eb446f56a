//! A tiny fault-injecting HTTP proxy (std only) between chroma-snap and a real server.
//!
//! Why: export and load must survive connection resets, 5xx/429 with Retry-After, slow, truncated
//! and missing answers, and stop cleanly on permanent failures; a real server never does these on
//! demand. The proxy serves
//! one request per connection (it answers `Connection: close`), forwards it to the server, and
//! for requests whose path ends with a chosen suffix applies the next fault of a script.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Fault {
    /// Read the request, then close the connection without answering.
    Reset,
    /// Answer this status with an optional Retry-After (seconds) instead of forwarding.
    Status(u16, Option<u64>),
    /// Wait this long, then forward.
    Slow(Duration),
    /// Forward, then send the answer's headers (its full Content-Length) and only half its body,
    /// and close the connection.
    Truncate,
    /// Read the request and never answer: hold the connection until the client gives up (at most
    /// five minutes). The request never reaches the server.
    Stall,
}

/// What the proxy saw: one entry per request to a matching path.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub bytes: usize,
    pub fault: Option<Fault>,
}

struct Shared {
    script: VecDeque<Fault>,
    /// Applied to every matching request once the script is used up.
    always: Option<Fault>,
    /// Answer 413 to matching bodies above this size.
    max_body: Option<usize>,
    seen: Vec<Seen>,
}

pub struct Proxy {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl Proxy {
    /// Proxies to `upstream` (`http://127.0.0.1:PORT`); faults apply to paths ending in `suffix`.
    pub fn start(upstream: &str, suffix: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let shared =
            Arc::new(Mutex::new(Shared { script: VecDeque::new(), always: None, max_body: None, seen: Vec::new() }));
        let up = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let s = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, up) = (s.clone(), up.clone());
                thread::spawn(move || {
                    let _ = serve(conn, &up, suffix, &s);
                });
            }
        });
        Proxy { url, shared }
    }

    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().unwrap().script.extend(faults);
    }

    pub fn always(&self, fault: Option<Fault>) {
        self.shared.lock().unwrap().always = fault;
    }

    pub fn max_body(&self, bytes: Option<usize>) {
        self.shared.lock().unwrap().max_body = bytes;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }
}

fn serve(client: TcpStream, upstream: &str, suffix: &str, shared: &Mutex<Shared>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    if head.is_empty() {
        return Ok(());
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let h = line.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("connection") {
                continue;
            }
        }
        headers.push(h);
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let mut client = client;

    let fault = if path.split('?').next().unwrap_or("").ends_with(suffix) {
        let mut s = shared.lock().unwrap();
        let f = if s.max_body.is_some_and(|m| len > m) {
            Some(Fault::Status(413, None))
        } else {
            s.script.pop_front().or_else(|| s.always.clone())
        };
        s.seen.push(Seen { at: Instant::now(), bytes: len, fault: f.clone() });
        f
    } else {
        None
    };
    match fault {
        Some(Fault::Reset) => return Ok(()), // dropping both ends closes the connection unanswered
        Some(Fault::Status(status, retry_after)) => {
            let msg = format!(r#"{{"error":"Injected","message":"injected {status} by the test proxy"}}"#);
            let ra = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
            write!(
                client,
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n{ra}Content-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )?;
            return client.flush();
        }
        Some(Fault::Slow(d)) => thread::sleep(d),
        Some(Fault::Stall) => {
            client.set_read_timeout(Some(Duration::from_secs(300)))?;
            let mut byte = [0u8; 1];
            let _ = client.read(&mut byte); // returns when the client closes its end
            return Ok(());
        }
        Some(Fault::Truncate) | None => {}
    }
    let truncate = matches!(fault, Some(Fault::Truncate));
    let mut up = TcpStream::connect(upstream)?;
    let mut req = format!("{}\r\nConnection: close\r\n", head.trim_end());
    for h in &headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    up.write_all(req.as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if truncate {
        let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |p| p + 4);
        answer.truncate(body + (answer.len() - body) / 2);
    }
    // Tell the client this connection ends here, so it never reuses it.
    let split = answer.windows(2).position(|w| w == b"\r\n").map_or(answer.len(), |p| p + 2);
    client.write_all(&answer[..split])?;
    let rest = &answer[split..];
    let has_close =
        String::from_utf8_lossy(&rest[..rest.len().min(2048)]).to_ascii_lowercase().contains("connection: close");
    if !has_close {
        client.write_all(b"Connection: close\r\n")?;
    }
    client.write_all(rest)?;
    client.flush()
}
