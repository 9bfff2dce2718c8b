//! Resumable, verified file transfer over HTTP(S). See the `hub` module docs for the protocol.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ureq::Body;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};

use super::storage::{
    PART_META_SUFFIX, PART_SUFFIX, PartMeta, SIDECAR_SUFFIX, Sidecar, available_space, hash_prefix,
    hex, io_err, quant_from_name, read_json, remove_if_exists, sync_dir, with_suffix, write_json,
};
use super::{
    CatalogueModel, Hub, HubConfig, ModelRef, Phase, Progress, TlsRoots, normalize_sha256,
};
use crate::{CancelToken, Error, Result};

const CHUNK: usize = 256 << 10;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
const MAX_REFRESHES: u32 = 3;

pub(crate) fn build_agent(config: &HubConfig, max_redirects: u32) -> ureq::Agent {
    let roots = match config.tls_roots {
        TlsRoots::Platform => RootCerts::PlatformVerifier,
        TlsRoots::WebPki => RootCerts::WebPki,
    };
    let https = config.endpoint.to_ascii_lowercase().starts_with("https://");
    let mut builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(max_redirects)
        .max_redirects_will_error(max_redirects > 0)
        // An https hub can never be downgraded to plain http by a redirect.
        .https_only(https)
        .timeout_connect(Some(config.connect_timeout))
        .timeout_per_read(Some(config.read_timeout))
        .user_agent(format!("hearth/{}", env!("CARGO_PKG_VERSION")))
        .tls_config(tls_config(roots));
    if is_loopback(&config.endpoint) {
        builder = builder.proxy(None);
    }
    builder.build().into()
}

/// Desktops: rustls with its default provider (ring).
#[cfg(not(any(target_os = "ios", target_os = "android")))]
fn tls_config(roots: RootCerts) -> TlsConfig {
    TlsConfig::builder().root_certs(roots).build()
}

/// iOS/Android: rustls with the pure-Rust RustCrypto provider (ring's C code would need a C
/// cross compiler for these targets). An unaudited provider: the downloaded bytes are still
/// checked against the expected SHA-256 before a model is installed.
#[cfg(any(target_os = "ios", target_os = "android"))]
fn tls_config(roots: RootCerts) -> TlsConfig {
    use std::sync::Arc;
    use ureq::tls::TlsProvider;
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls_rustcrypto::provider()))
        .root_certs(roots)
        .build()
}

/// Where and what to download, as learned from the hub.
#[derive(Debug)]
struct Remote {
    url: String,
    /// Send the token to `url` (same origin as the endpoint).
    auth: bool,
    sha256: Option<String>,
    size: Option<u64>,
}

/// Why an attempt failed: try again (after a backoff) or give up.
enum Failure {
    Retry(Error),
    Fatal(Error),
}

type Attempt<T = ()> = std::result::Result<T, Failure>;

impl Hub {
    /// Downloads `model` into the models directory and returns its path, once its SHA-256 is
    /// verified (see the module docs). `expected_sha256` (hex) usually comes from the catalogue;
    /// without it the hub's `X-Linked-ETag` is used. A model already present and verified (with
    /// the same hash, when one is given) is returned at once without touching the network.
    ///
    /// `progress` is called from this thread; setting `cancel` from another thread stops the
    /// download within one read ([`HubConfig::read_timeout`] at worst), keeping the partial file
    /// for a later resume, and returns [`Error::Cancelled`].
    pub fn download(
        &self,
        model: &ModelRef,
        expected_sha256: Option<&str>,
        progress: &dyn Fn(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf> {
        let expected = match expected_sha256 {
            Some(s) => Some(normalize_sha256(s).ok_or_else(|| {
                Error::InvalidArgument(format!("expected SHA-256 '{s}' is not 64 hex digits"))
            })?),
            None => None,
        };
        let dir = self.models_dir();
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let name = model.local_name();
        let final_path = dir.join(name);

        if let Some(local) = self.local_model(name)? {
            let same = match &expected {
                Some(e) => local.sha256.as_ref() == Some(e),
                None => local.repo.as_deref() == Some(model.repo.as_str()),
            };
            if local.verified && same {
                return Ok(final_path);
            }
        }
        check_cancel(cancel)?;

        let remote = self.resolve(model, cancel)?;
        let sha256 = match (expected, remote.sha256.clone()) {
            (Some(e), Some(announced)) if e != announced => {
                return Err(Error::HashMismatch {
                    file: model.to_string(),
                    expected: e,
                    actual: announced,
                });
            }
            (Some(e), _) => Some(e),
            (None, announced) => announced,
        };
        if sha256.is_none() && !self.config.allow_unverified {
            return Err(Error::NoChecksum {
                file: model.to_string(),
            });
        }

        let part_path = with_suffix(&final_path, PART_SUFFIX);
        let meta_path = with_suffix(&final_path, PART_META_SUFFIX);
        let meta = PartMeta {
            repo: model.repo.clone(),
            file: model.file.clone(),
            sha256: sha256.clone(),
            size: remote.size,
        };
        let part_len = fs::metadata(&part_path).map(|m| m.len()).unwrap_or(0);
        let resumable = part_len > 0
            && read_json::<PartMeta>(&meta_path).as_ref() == Some(&meta)
            && remote.size.is_none_or(|t| part_len <= t);
        // The description goes first: a part without a matching one is never resumed.
        write_json(&meta_path, &meta)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part_path)
            .map_err(io_err(&part_path))?;

        let mut t = Transfer {
            hub: self,
            model,
            remote,
            refreshes: 0,
            part_path,
            file,
            hasher: Sha256::new(),
            offset: 0,
            total: None,
            space_checked: false,
            written: 0,
            reporter: Reporter::new(progress),
            cancel,
        };
        t.total = t.remote.size;
        if resumable {
            let path = t.part_path.clone();
            let total = t.total;
            let reporter = &mut t.reporter;
            hash_prefix(
                &mut t.file,
                &path,
                part_len,
                &mut t.hasher,
                cancel,
                |done| reporter.report(Phase::Rehashing, done, total, false),
            )?;
            t.offset = part_len;
            t.file
                .seek(SeekFrom::Start(part_len))
                .map_err(io_err(&path))?;
        } else {
            t.restart()?;
        }
        t.run()?;

        // Verify, then (and only then) move into place.
        let Transfer {
            file,
            hasher,
            offset,
            part_path,
            ..
        } = t;
        file.sync_all().map_err(io_err(&part_path))?;
        drop(file);
        let actual = hex(&hasher.finalize());
        if let Some(expected) = &sha256 {
            if *expected != actual {
                // Complete but wrong: useless for a resume.
                remove_if_exists(&part_path)?;
                remove_if_exists(&meta_path)?;
                return Err(Error::HashMismatch {
                    file: model.to_string(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let sidecar_path = with_suffix(&final_path, SIDECAR_SUFFIX);
        // An older sidecar must never vouch for the new file, even after a crash here.
        remove_if_exists(&sidecar_path)?;
        fs::rename(&part_path, &final_path).map_err(io_err(&final_path))?;
        sync_dir(dir);
        write_json(
            &sidecar_path,
            &Sidecar {
                repo: Some(model.repo.clone()),
                file: Some(model.file.clone()),
                quant: quant_from_name(name),
                size: offset,
                verified: sha256.is_some(),
                sha256: actual,
            },
        )?;
        remove_if_exists(&meta_path)?;
        Ok(final_path)
    }

    /// Downloads a catalogue model in the given quantization, checked against the catalogue's
    /// SHA-256 when it pins one (else the hub's), like [`Hub::download`].
    pub fn download_catalogue(
        &self,
        model: &CatalogueModel,
        quant: &str,
        progress: &dyn Fn(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf> {
        let (Some(file), Some(reference)) = (model.file(quant), model.model_ref(quant)) else {
            return Err(Error::InvalidArgument(format!(
                "{} has no {quant} file in the catalogue",
                model.name
            )));
        };
        self.download(&reference, file.sha256.as_deref(), progress, cancel)
    }

    /// `HEAD` the resolve URL without following redirects to another host: the hub's first
    /// answer carries the file's metadata (`X-Linked-ETag`, `X-Linked-Size`, `Location`).
    fn resolve(&self, model: &ModelRef, cancel: &CancelToken) -> Result<Remote> {
        let origin = origin_of(&self.config.endpoint);
        let mut url = model.url(&self.config.endpoint);
        let mut failures = 0;
        let mut hops = 0;
        loop {
            check_cancel(cancel)?;
            let auth = origin_of(&url) == origin;
            let outcome = match self.send(true, &url, auth, None) {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let size = header(&resp, "x-linked-size").and_then(|v| v.parse().ok());
                    let sha256 = linked_etag(&resp);
                    match status {
                        200..=299 => {
                            let size = size.or_else(|| content_length(&resp));
                            return Ok(Remote {
                                url,
                                auth,
                                sha256,
                                size,
                            });
                        }
                        301 | 302 | 303 | 307 | 308 => {
                            let Some(location) = header(&resp, "location") else {
                                return Err(bad_response(&url, "redirect without Location"));
                            };
                            let next = join_url(&url, location);
                            let same_origin = origin_of(&next) == origin;
                            // A same-host redirect (renamed repository) is followed to find the
                            // metadata; another host is the storage itself.
                            if same_origin && sha256.is_none() && hops < 5 {
                                hops += 1;
                                url = next;
                                continue;
                            }
                            return Ok(Remote {
                                url: next,
                                auth: same_origin,
                                sha256,
                                size,
                            });
                        }
                        // No HEAD support: the GET will tell the size; no announced hash.
                        405 | 501 => {
                            return Ok(Remote {
                                url,
                                auth,
                                sha256: None,
                                size: None,
                            });
                        }
                        s if retryable_status(s) => Failure::Retry(Error::Http {
                            status: s,
                            url: url.clone(),
                        }),
                        s => Failure::Fatal(Error::Http {
                            status: s,
                            url: url.clone(),
                        }),
                    }
                }
                Err(e) => classify(e, &url),
            };
            match outcome {
                Failure::Fatal(e) => return Err(e),
                Failure::Retry(e) => {
                    failures += 1;
                    if failures > self.config.retries {
                        return Err(e);
                    }
                    log::info!("hub: {e}; retrying");
                    self.backoff(failures, cancel)?;
                }
            }
        }
    }

    fn send(
        &self,
        head: bool,
        url: &str,
        auth: bool,
        range_from: Option<u64>,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let mut req = if head {
            self.head_agent.head(url)
        } else {
            self.agent.get(url)
        };
        req = req.header("Accept-Encoding", "identity");
        if let Some(from) = range_from {
            req = req.header("Range", format!("bytes={from}-"));
        }
        if let (true, Some(token)) = (auth, &self.config.token) {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        req.call()
    }

    /// Sleeps `backoff · 2^(failures−1)` (capped), waking early on cancel.
    fn backoff(&self, failures: u32, cancel: &CancelToken) -> Result<()> {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        let delay = self.config.backoff.saturating_mul(factor).min(MAX_BACKOFF);
        let deadline = Instant::now() + delay;
        loop {
            check_cancel(cancel)?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
        }
    }

    fn check_space(&self, remaining: u64) -> Result<()> {
        let dir = self.models_dir();
        let needed = remaining.saturating_add(self.config.reserve_bytes);
        match available_space(dir) {
            Some(available) if available < needed => Err(Error::InsufficientDisk {
                path: dir.display().to_string(),
                needed,
                available,
            }),
            _ => Ok(()),
        }
    }
}

/// One download in progress: the partial file, its running hash and position.
struct Transfer<'a> {
    hub: &'a Hub,
    model: &'a ModelRef,
    remote: Remote,
    /// Times the download location was resolved again after it stopped working.
    refreshes: u32,
    part_path: PathBuf,
    file: File,
    hasher: Sha256,
    /// Bytes in the part file, all of them hashed.
    offset: u64,
    total: Option<u64>,
    space_checked: bool,
    /// Bytes written by this call (for the storage-full test hook).
    written: u64,
    reporter: Reporter<'a>,
    cancel: &'a CancelToken,
}

impl Transfer<'_> {
    /// Attempts until the part holds the whole file; bounded by `retries` failures in a row
    /// without progress.
    fn run(&mut self) -> Result<()> {
        self.reporter
            .report(Phase::Downloading, self.offset, self.total, true);
        let mut failures = 0;
        loop {
            check_cancel(self.cancel)?;
            if let Some(total) = self.total {
                if self.offset == total {
                    break;
                }
                if self.offset > total {
                    self.restart()?;
                }
                self.ensure_space()?;
            }
            let before = self.offset;
            match self.attempt() {
                Ok(true) => break,
                Ok(false) => {}
                // Storage links handed out by the hub expire (signed URLs): ask the hub again.
                Err(Failure::Fatal(Error::Http { status, url }))
                    if matches!(status, 401 | 403 | 404 | 410)
                        && !self.remote.auth
                        && self.refreshes < MAX_REFRESHES =>
                {
                    self.refreshes += 1;
                    log::info!(
                        "hub: HTTP {status} from {url}; resolving {} again",
                        self.model
                    );
                    let fresh = self.hub.resolve(self.model, self.cancel)?;
                    if let (Some(old), Some(new)) = (&self.remote.sha256, &fresh.sha256) {
                        if old != new {
                            return Err(Error::HashMismatch {
                                file: self.model.to_string(),
                                expected: old.clone(),
                                actual: new.clone(),
                            });
                        }
                    }
                    self.remote = fresh;
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) => {
                    if self.offset > before {
                        failures = 0;
                    }
                    failures += 1;
                    if failures > self.hub.config.retries {
                        return Err(e);
                    }
                    log::info!("hub: {e}; resuming at byte {}", self.offset);
                    self.hub.backoff(failures, self.cancel)?;
                }
            }
        }
        self.reporter
            .report(Phase::Downloading, self.offset, self.total, true);
        Ok(())
    }

    /// One request. `Ok(true)` when the file is complete (body ended with no size known).
    fn attempt(&mut self) -> Attempt<bool> {
        let url = self.remote.url.clone();
        let range_from = (self.offset > 0).then_some(self.offset);
        let resp = self
            .hub
            .send(false, &url, self.remote.auth, range_from)
            .map_err(|e| classify(e, &url))?;
        let status = resp.status().as_u16();
        let length = content_length(&resp);
        let end = match status {
            200 => {
                if self.offset > 0 {
                    log::info!("hub: server ignored Range; restarting {url} from byte 0");
                    self.restart().map_err(Failure::Fatal)?;
                }
                match (self.total, length) {
                    (Some(total), Some(len)) if total != len => {
                        return Err(Failure::Fatal(bad_response(
                            &url,
                            &format!("Content-Length {len} but the file has {total} bytes"),
                        )));
                    }
                    (None, len) => self.total = len,
                    _ => {}
                }
                self.total
            }
            206 => {
                let Some((first, last, size)) =
                    header(&resp, "content-range").and_then(parse_content_range)
                else {
                    return Err(Failure::Fatal(bad_response(
                        &url,
                        "206 without a valid Content-Range",
                    )));
                };
                let problem = if first != self.offset {
                    Some(format!(
                        "range starts at byte {first}, asked for {}",
                        self.offset
                    ))
                } else if let (Some(total), Some(size)) = (self.total, size) {
                    (total != size).then(|| format!("file size {size}, expected {total}"))
                } else {
                    None
                };
                let problem = problem.or_else(|| {
                    let span = last - first + 1;
                    match length {
                        Some(len) if len != span => {
                            Some(format!("Content-Length {len} for a {span}-byte range"))
                        }
                        _ => None,
                    }
                });
                if let Some(p) = problem {
                    return Err(Failure::Fatal(bad_response(&url, &p)));
                }
                if self.total.is_none() {
                    self.total = size;
                }
                if self.total.is_some_and(|t| last >= t) {
                    return Err(Failure::Fatal(bad_response(
                        &url,
                        "range ends past the file",
                    )));
                }
                Some(last + 1)
            }
            416 => {
                let size = header(&resp, "content-range").and_then(parse_unsatisfied_range);
                return match size {
                    // The part is already the whole file (e.g. interrupted before the rename).
                    Some(size) if size == self.offset && self.total.is_none_or(|t| t == size) => {
                        self.total = Some(size);
                        Ok(true)
                    }
                    // The part is longer than the file: stale, start over.
                    Some(size) if self.offset > size => {
                        self.restart().map_err(Failure::Fatal)?;
                        Ok(false)
                    }
                    _ => Err(Failure::Fatal(Error::Http { status, url })),
                };
            }
            s if retryable_status(s) => return Err(Failure::Retry(Error::Http { status: s, url })),
            s => return Err(Failure::Fatal(Error::Http { status: s, url })),
        };
        self.ensure_space().map_err(Failure::Fatal)?;

        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        loop {
            check_cancel(self.cancel).map_err(Failure::Fatal)?;
            let want = match end {
                Some(end) if self.offset >= end => break,
                Some(end) => (end - self.offset).min(CHUNK as u64) as usize,
                None => CHUNK,
            };
            let n = match reader.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let (err, _) = split(classify(ureq::Error::from(e), &url));
                    return Err(Failure::Retry(err));
                }
            };
            if n == 0 {
                return match end {
                    Some(end) => Err(Failure::Retry(Error::Network {
                        url,
                        reason: format!("connection closed at byte {} of {end}", self.offset),
                    })),
                    None => {
                        self.total = Some(self.offset);
                        Ok(true)
                    }
                };
            }
            if self.total.is_some_and(|t| self.offset + n as u64 > t) {
                return Err(Failure::Fatal(bad_response(
                    &url,
                    "more bytes than the file has",
                )));
            }
            self.write(&buf[..n]).map_err(Failure::Fatal)?;
            self.reporter
                .report(Phase::Downloading, self.offset, self.total, false);
        }
        Ok(false)
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let result = match self.hub.config.fail_writes_after {
            // Like a real full disk: what fits is written, then the write fails.
            Some(limit) if self.written + data.len() as u64 > limit => {
                let fits = limit.saturating_sub(self.written) as usize;
                self.file.write_all(&data[..fits]).and(Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device (injected)",
                )))
            }
            _ => self.file.write_all(data),
        };
        if let Err(e) = result {
            // Bytes of this chunk that reached the file are not counted: the part is re-hashed
            // from the disk when the download is resumed.
            return Err(
                if matches!(
                    e.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
                ) {
                    Error::InsufficientDisk {
                        path: self.hub.models_dir().display().to_string(),
                        needed: self.total.map_or(0, |t| t.saturating_sub(self.offset)),
                        available: 0,
                    }
                } else {
                    io_err(&self.part_path)(e)
                },
            );
        }
        self.hasher.update(data);
        self.offset += data.len() as u64;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Empties the part file and the hash.
    fn restart(&mut self) -> Result<()> {
        let path = &self.part_path;
        self.file.set_len(0).map_err(io_err(path))?;
        self.file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        Ok(())
    }

    /// Once the size is known: is there room for the rest (plus the reserve)?
    fn ensure_space(&mut self) -> Result<()> {
        if let (false, Some(total)) = (self.space_checked, self.total) {
            self.hub.check_space(total.saturating_sub(self.offset))?;
            self.space_checked = true;
        }
        Ok(())
    }
}

/// Throttled progress with a smoothed rate.
struct Reporter<'a> {
    callback: &'a dyn Fn(Progress),
    last_call: Option<Instant>,
    sample: (Instant, u64),
    rate: f64,
}

impl<'a> Reporter<'a> {
    fn new(callback: &'a dyn Fn(Progress)) -> Self {
        Reporter {
            callback,
            last_call: None,
            sample: (Instant::now(), 0),
            rate: 0.0,
        }
    }

    fn report(&mut self, phase: Phase, done: u64, total: Option<u64>, force: bool) {
        let now = Instant::now();
        if phase == Phase::Rehashing || done < self.sample.1 {
            self.sample = (now, done);
        } else {
            let dt = now.duration_since(self.sample.0).as_secs_f64();
            if dt >= 0.5 {
                let instant = (done - self.sample.1) as f64 / dt;
                self.rate = if self.rate == 0.0 {
                    instant
                } else {
                    0.7 * self.rate + 0.3 * instant
                };
                self.sample = (now, done);
            }
        }
        if force
            || self
                .last_call
                .is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY)
        {
            self.last_call = Some(now);
            // Until the first half-second sample: the average so far.
            let dt = now.duration_since(self.sample.0).as_secs_f64();
            let bytes_per_sec = if self.rate == 0.0 && dt > 0.0 && phase == Phase::Downloading {
                done.saturating_sub(self.sample.1) as f64 / dt
            } else {
                self.rate
            };
            (self.callback)(Progress {
                phase,
                downloaded: done,
                total,
                bytes_per_sec,
            });
        }
    }
}

fn check_cancel(cancel: &CancelToken) -> Result<()> {
    cancel.check()
}

fn split(f: Failure) -> (Error, bool) {
    match f {
        Failure::Retry(e) => (e, true),
        Failure::Fatal(e) => (e, false),
    }
}

/// Maps a transport error to a typed error, and says whether trying again may help.
fn classify(e: ureq::Error, url: &str) -> Failure {
    let network = |reason: String| Error::Network {
        url: url.to_string(),
        reason,
    };
    let tls = |reason: String| {
        Failure::Fatal(Error::Tls {
            url: url.to_string(),
            reason,
        })
    };
    match e {
        ureq::Error::Rustls(e) => tls(e.to_string()),
        ureq::Error::Tls(e) => tls(e.to_string()),
        ureq::Error::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(t) => tls(t.to_string()),
            None => Failure::Retry(network(io.to_string())),
        },
        ureq::Error::HostNotFound => Failure::Retry(network(
            "could not resolve the host name (no network?)".into(),
        )),
        e @ (ureq::Error::ConnectionFailed
        | ureq::Error::Timeout(_)
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled) => Failure::Retry(network(e.to_string())),
        e @ (ureq::Error::TooManyRedirects
        | ureq::Error::RedirectFailed
        | ureq::Error::BadUri(_)
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::Http(_)) => Failure::Fatal(bad_response(url, &e.to_string())),
        e => Failure::Fatal(network(e.to_string())),
    }
}

/// Statuses worth another attempt: timeouts, rate limits, server errors.
fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

fn bad_response(url: &str, reason: &str) -> Error {
    Error::BadResponse {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name)?.to_str().ok().map(str::trim)
}

fn content_length(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-length")?.parse().ok()
}

/// The SHA-256 of an LFS file from the hub's `X-Linked-ETag` (`"<hex>"`, maybe weak `W/`).
fn linked_etag(resp: &Response<Body>) -> Option<String> {
    let v = header(resp, "x-linked-etag")?;
    let v = v.strip_prefix("W/").unwrap_or(v);
    normalize_sha256(v.trim_matches('"'))
}

/// `bytes first-last/size` (size may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, size) = v.strip_prefix("bytes ")?.trim().split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let size = match size.trim() {
        "*" => None,
        s => Some(s.parse().ok()?),
    };
    (first <= last && size.is_none_or(|s| last < s)).then_some((first, last, size))
}

/// `bytes */size` of a 416 answer.
fn parse_unsatisfied_range(v: &str) -> Option<u64> {
    v.strip_prefix("bytes */")?.trim().parse().ok()
}

/// `scheme://authority`, lowercase.
fn origin_of(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let Some(i) = lower.find("://") else {
        return lower;
    };
    let rest = &lower[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    lower[..i + 3 + end].to_string()
}

fn is_loopback(url: &str) -> bool {
    let origin = origin_of(url);
    let authority = origin.split("://").nth(1).unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| &h[1..]).unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Resolves a `Location` against the URL that returned it.
fn join_url(base: &str, location: &str) -> String {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        location.to_string()
    } else if location.starts_with("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin_of(base))
    } else {
        let path = base.split(['?', '#']).next().unwrap_or(base);
        let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_parsed_strictly() {
        assert_eq!(
            parse_content_range("bytes 10-19/100"),
            Some((10, 19, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
        assert_eq!(parse_content_range("bytes 10-9/100"), None);
        assert_eq!(parse_content_range("bytes 10-100/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
        assert_eq!(parse_unsatisfied_range("bytes */355"), Some(355));
        assert_eq!(parse_unsatisfied_range("bytes 0-1/2"), None);
    }

    #[test]
    fn urls_and_origins() {
        assert_eq!(origin_of("https://HF.co/a/b?x"), "https://hf.co");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            join_url("https://hf.co/a/b", "https://cdn/x"),
            "https://cdn/x"
        );
        assert_eq!(join_url("https://hf.co/a/b", "/c/d"), "https://hf.co/c/d");
        assert_eq!(join_url("https://hf.co/a/b", "//cdn/x"), "https://cdn/x");
        assert_eq!(join_url("https://hf.co/a/b?q", "c"), "https://hf.co/a/c");
        assert!(is_loopback("http://127.0.0.1:9/x"));
        assert!(is_loopback("http://localhost"));
        assert!(is_loopback("http://[::1]:80"));
        assert!(!is_loopback("https://huggingface.co"));
    }

    #[test]
    fn statuses() {
        assert!(retryable_status(500) && retryable_status(503) && retryable_status(429));
        assert!(!retryable_status(401) && !retryable_status(404) && !retryable_status(416));
    }
}
