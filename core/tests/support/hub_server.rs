//! A tiny HTTP/1.1 file server on 127.0.0.1 for the hub tests, with fault injection.
//!
//! It serves one file under `/{repo}/resolve/main/{file}` (and `/cdn/{file}` when the resolve
//! step redirects), like the Hugging Face hub: `HEAD` answers with `X-Linked-ETag` /
//! `X-Linked-Size`, `GET` honours `Range: bytes=N-`. Each `GET` of the file consumes the next
//! [`Fault`] of the list; once they are used up the file is served correctly. Every request is
//! logged. The server stops when dropped, and by itself after two minutes.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What goes wrong with one `GET` of the file.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Headers as usual, then only this many body bytes, then the connection is closed.
    DropAfter(usize),
    /// `200` with this `Content-Length` (the body is sent up to it or to the end of the file).
    ContentLength(u64),
    /// `Range` ignored: `200` with the whole file.
    IgnoreRange,
    /// An empty answer with this status.
    Status(u16),
    /// `416` with `Content-Range: bytes */<len>`.
    Unsatisfiable,
    /// One byte of the body is flipped.
    Corrupt,
    /// `206` whose `Content-Range` starts one byte later than asked.
    ShiftedRange,
    /// The body is sent in `chunk`-byte pieces, `delay` apart.
    Slow { chunk: usize, delay: Duration },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub repo: String,
    pub file: String,
    pub data: Vec<u8>,
    /// `X-Linked-ETag` value (hex SHA-256), quoted like the hub does.
    pub etag: Option<String>,
    /// Send `X-Linked-Size` on `HEAD`.
    pub linked_size: bool,
    /// `HEAD`/`GET` on the resolve URL answer `302` to `/cdn/{file}` (metadata on the 302).
    pub redirect: bool,
    /// Host name put in the redirect's `Location` (absolute URL, same port), to act as another
    /// host; `None` gives a relative `Location`.
    pub redirect_host: Option<String>,
    /// `HEAD` answers this status instead.
    pub head_status: Option<u16>,
    pub faults: Vec<Fault>,
}

impl Config {
    pub fn new(repo: &str, file: &str, data: Vec<u8>, etag: Option<String>) -> Config {
        Config {
            repo: repo.into(),
            file: file.into(),
            data,
            etag,
            linked_size: true,
            redirect: false,
            redirect_host: None,
            head_status: None,
            faults: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

struct State {
    config: Config,
    faults: Mutex<VecDeque<Fault>>,
    log: Mutex<Vec<Request>>,
}

pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            faults: Mutex::new(config.faults.iter().cloned().collect()),
            config,
            log: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let state = state.clone();
                            std::thread::spawn(move || handle(stream, &state));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Server {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.log.lock().unwrap().clone()
    }

    /// The `GET`s that fetched file bytes (not the redirects).
    pub fn file_gets(&self) -> Vec<Request> {
        let redirect = self.state.config.redirect;
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET" && (!redirect || r.path.starts_with("/cdn/")))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, state: &State) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if !buf[0].is_ascii_uppercase() {
            // Not HTTP (e.g. a TLS ClientHello): answer in plain text, like a misconfigured host.
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if buf.len() > 64 << 10 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let header = |name: &str| {
        text.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let req = Request {
        method: method.clone(),
        path: path.clone(),
        range: header("range"),
        authorization: header("authorization"),
    };
    state.log.lock().unwrap().push(req.clone());
    respond(&mut stream, state, &req);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    // Let the client read everything before the socket goes away.
    let _ = stream.read(&mut chunk);
}

fn respond(stream: &mut TcpStream, state: &State, req: &Request) {
    let c = &state.config;
    let resolve_path = format!("/{}/resolve/main/{}", c.repo, c.file);
    let cdn_path = format!("/cdn/{}", c.file);
    let location = match (&c.redirect_host, stream.local_addr()) {
        (Some(host), Ok(addr)) => format!("http://{host}:{}{cdn_path}", addr.port()),
        _ => cdn_path.clone(),
    };
    let len = c.data.len() as u64;
    let mut meta = String::new();
    if let Some(etag) = &c.etag {
        meta += &format!("X-Linked-ETag: \"{etag}\"\r\n");
    }
    if c.linked_size {
        meta += &format!("X-Linked-Size: {len}\r\n");
    }
    let is_resolve = req.path == resolve_path;
    let is_file = (is_resolve && !c.redirect) || (c.redirect && req.path == cdn_path);
    if req.method == "HEAD" && is_resolve {
        if let Some(status) = c.head_status {
            return head(stream, status, "");
        }
        if c.redirect {
            return head(
                stream,
                302,
                &format!("Location: {location}\r\n{meta}Content-Length: 0\r\n"),
            );
        }
        return head(
            stream,
            200,
            &format!("{meta}Content-Length: {len}\r\nAccept-Ranges: bytes\r\n"),
        );
    }
    if req.method == "GET" && is_resolve && c.redirect {
        return head(
            stream,
            302,
            &format!("Location: {location}\r\nContent-Length: 0\r\n"),
        );
    }
    if req.method != "GET" || !is_file {
        return head(stream, 404, "Content-Length: 0\r\n");
    }

    let fault = state.faults.lock().unwrap().pop_front();
    let from = req
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let mut body: Vec<u8> = c.data.clone();
    match fault {
        Some(Fault::Status(s)) => return head(stream, s, "Content-Length: 0\r\n"),
        Some(Fault::Unsatisfiable) => {
            return head(
                stream,
                416,
                &format!("Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"),
            );
        }
        Some(Fault::ContentLength(n)) => {
            body.truncate(n as usize);
            let _ = stream.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let _ = stream.write_all(&body);
            return;
        }
        Some(Fault::Corrupt) => {
            let mid = body.len() / 2;
            body[mid] ^= 0x55;
        }
        _ => {}
    }
    let ignore_range = matches!(fault, Some(Fault::IgnoreRange));
    let (status_line, start, extra) = match from {
        Some(n) if !ignore_range && n >= len => {
            return head(
                stream,
                416,
                &format!("Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"),
            );
        }
        Some(n) if !ignore_range => {
            let shown = if matches!(fault, Some(Fault::ShiftedRange)) {
                n + 1
            } else {
                n
            };
            (
                "206 Partial Content",
                n as usize,
                format!("Content-Range: bytes {shown}-{}/{len}\r\n", len - 1),
            )
        }
        _ => ("200 OK", 0, String::new()),
    };
    let body = &body[start..];
    let head_text = format!(
        "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\n{extra}Accept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if stream.write_all(head_text.as_bytes()).is_err() {
        return;
    }
    match fault {
        Some(Fault::DropAfter(n)) => {
            let _ = stream.write_all(&body[..n.min(body.len())]);
        }
        Some(Fault::Slow { chunk, delay }) => {
            for piece in body.chunks(chunk) {
                if stream.write_all(piece).is_err() {
                    return;
                }
                let _ = stream.flush();
                std::thread::sleep(delay);
            }
        }
        _ => {
            let _ = stream.write_all(body);
        }
    }
}

fn head(stream: &mut TcpStream, status: u16, headers: &str) {
    let reason = match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status} {reason}\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    );
}
