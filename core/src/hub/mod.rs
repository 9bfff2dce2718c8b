//! Models on the device (feature `hub`): a catalogue of LFM2-family GGUF files, resumable
//! SHA-256-verified downloads, and the models directory.
//!
//! This module is the only code in Hearth that opens network connections, and only when one of
//! [`Hub`]'s methods is called; the engine never does. Nothing is sent anywhere except the file
//! requests themselves (no telemetry, no analytics).
//!
//! ```no_run
//! use hearth::CancelToken;
//! use hearth::hub::{Catalogue, Hub, HubConfig};
//!
//! let catalogue = Catalogue::builtin();
//! let model = catalogue.find("LFM2-1.2B").unwrap();
//! let file = model.file("Q4_K_M").unwrap();
//! println!("{} needs about {} MB of RAM", file.file, file.ram_bytes / 1_000_000);
//!
//! let mut config = HubConfig::default();
//! config.models_dir = "/path/chosen/by/the/app".into();
//! let hub = Hub::new(config)?;
//! let cancel = CancelToken::new(); // cancel() it from another thread to stop
//! let path = hub.download(
//!     &model.model_ref("Q4_K_M").unwrap(),
//!     file.sha256.as_deref(),
//!     &|p| eprintln!("{} / {:?} bytes", p.downloaded, p.total),
//!     &cancel,
//! )?;
//! # Ok::<(), hearth::Error>(())
//! ```
//!
//! ## How a download is made safe
//!
//! 1. `HEAD {endpoint}/{repo}/resolve/main/{file}` (redirects not followed) gives the download
//!    location, the size (`X-Linked-Size` or `Content-Length`) and, for LFS files on the Hugging
//!    Face hub, the SHA-256 (`X-Linked-ETag`).
//! 2. The expected SHA-256 is the caller's (usually from the catalogue) or the announced one; if
//!    both are known they must agree. If none is known the download is refused with
//!    [`Error::NoChecksum`] unless [`HubConfig::allow_unverified`] is set, in which case the file
//!    is kept but recorded (and listed) as `verified: false`.
//! 3. The body streams into `<name>.part` while being hashed. An interrupted transfer resumes with
//!    `Range: bytes=N-` (within the same call after a backoff, or in a later call, re-hashing the
//!    existing part first). A server that ignores `Range` (answers 200) restarts from zero;
//!    `Content-Length` and `Content-Range` must agree with what is expected.
//! 4. Only a file whose full SHA-256 matched is renamed to `<name>` (atomically) and recorded as
//!    verified in a sidecar `<name>.hearth.json`. A complete file with the wrong hash is deleted;
//!    an incomplete one is kept only to be resumed.
//!
//! One download of a given file at a time: two concurrent calls for the same name would share
//! the `.part` file.

mod catalogue;
mod download;
mod storage;

use std::path::PathBuf;
use std::time::Duration;

pub use catalogue::{Catalogue, CatalogueFile, CatalogueModel, approx_bits_per_weight};
pub use storage::{LocalModel, default_models_dir};

use crate::{Error, Result};

/// The default hub: Hugging Face.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Which certificates a TLS connection is verified against.
///
/// The default is `Platform`, except on Android: there `rustls-platform-verifier` needs the
/// app's JNI context (`rustls_platform_verifier::android::init_*`) before its first use and the
/// SDK does not initialize it, so Android defaults to `WebPki`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// The operating system's verifier (Security.framework on Apple platforms, the Android
    /// trust manager, the system store elsewhere). On Android the host app must first initialize
    /// `rustls-platform-verifier` with its JNI context.
    Platform,
    /// The Mozilla root store compiled into the binary (`webpki-roots`).
    WebPki,
}

impl Default for TlsRoots {
    fn default() -> Self {
        if cfg!(target_os = "android") {
            TlsRoots::WebPki
        } else {
            TlsRoots::Platform
        }
    }
}

/// Settings of a [`Hub`]. Start from [`HubConfig::default`] and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Hub base URL; files are fetched from `{endpoint}/{repo}/resolve/main/{file}`.
    pub endpoint: String,
    /// Where models are stored. Default: [`default_models_dir`].
    pub models_dir: PathBuf,
    /// Access token sent as `Authorization: Bearer` to the endpoint (never to other hosts), for
    /// gated or private repositories.
    pub token: Option<String>,
    /// Failed attempts in a row (without any byte of progress) before giving up.
    pub retries: u32,
    /// Delay before the first retry; doubles each time, capped at 30 s.
    pub backoff: Duration,
    /// Connection establishment limit (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest silence on an open connection before it counts as dropped (and is resumed).
    pub read_timeout: Duration,
    /// Which certificate roots TLS trusts.
    pub tls_roots: TlsRoots,
    /// Keep files for which no SHA-256 is known at all, recorded as unverified. Off by default:
    /// such downloads fail with [`Error::NoChecksum`].
    pub allow_unverified: bool,
    /// Bytes that must stay free on the disk after the download.
    pub reserve_bytes: u64,
    /// Test hook: the file writer fails with "storage full" after this many bytes.
    #[doc(hidden)]
    pub fail_writes_after: Option<u64>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            models_dir: default_models_dir(),
            token: None,
            retries: 5,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(30),
            tls_roots: TlsRoots::default(),
            allow_unverified: false,
            reserve_bytes: 64 << 20,
            fail_writes_after: None,
        }
    }
}

/// What a download is doing, for [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Re-hashing a partial file left by an earlier attempt, before resuming it.
    Rehashing,
    /// Receiving bytes.
    Downloading,
}

/// A progress report. Sent at most every 100 ms, plus once at the start and once at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// What the download is doing.
    pub phase: Phase,
    /// Bytes in the partial file so far (re-hashed bytes while [`Phase::Rehashing`]).
    pub downloaded: u64,
    /// Size of the file, when known.
    pub total: Option<u64>,
    /// Recent transfer rate in bytes per second (smoothed; 0 until measurable).
    pub bytes_per_sec: f64,
}

/// A file in a hub repository: `repo` is `owner/name`, `file` the path inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// Repository, `owner/name`.
    pub repo: String,
    /// File path inside the repository.
    pub file: String,
}

impl ModelRef {
    /// Validates a repository (`owner/name`) and a file path (`.gguf`, no `..`, no empty parts).
    pub fn new(repo: &str, file: &str) -> Result<ModelRef> {
        let bad =
            |why: &str| Error::InvalidArgument(format!("model reference {repo}/{file}: {why}"));
        let repo_parts: Vec<&str> = repo.split('/').collect();
        if repo_parts.len() != 2 || !repo_parts.iter().all(|p| valid_repo_part(p)) {
            return Err(bad(
                "the repository must be 'owner/name' (letters, digits, '-', '_', '.')",
            ));
        }
        if !file.split('/').all(valid_file_part) {
            return Err(bad("invalid file path"));
        }
        if !file.to_ascii_lowercase().ends_with(".gguf") {
            return Err(bad("only .gguf files can be downloaded as models"));
        }
        Ok(ModelRef {
            repo: repo.to_string(),
            file: file.to_string(),
        })
    }

    /// Parses `owner/name/path/to/file.gguf`.
    pub fn parse(reference: &str) -> Result<ModelRef> {
        let mut parts = reference.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(owner), Some(name), Some(file)) => {
                ModelRef::new(&format!("{owner}/{name}"), file)
            }
            _ => Err(Error::InvalidArgument(format!(
                "model reference '{reference}': expected owner/name/file.gguf"
            ))),
        }
    }

    /// The name of the file in the models directory: the last component of `file`.
    pub fn local_name(&self) -> &str {
        self.file.rsplit('/').next().unwrap_or(&self.file)
    }

    /// `{endpoint}/{repo}/resolve/main/{file}`, with the file path percent-encoded.
    pub fn url(&self, endpoint: &str) -> String {
        let file: Vec<String> = self.file.split('/').map(percent_encode).collect();
        format!(
            "{}/{}/resolve/main/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            file.join("/")
        )
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.repo, self.file)
    }
}

fn valid_repo_part(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 96
        && p != "."
        && p != ".."
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_file_part(p: &str) -> bool {
    !p.is_empty()
        && p != "."
        && p != ".."
        && !p.starts_with('.')
        && p.len() <= 255
        && !p
            .chars()
            .any(|c| c.is_control() || matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'))
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lowercase 64-digit hex, or `None` if `s` is not a SHA-256 in hex.
pub(crate) fn normalize_sha256(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Downloads and manages the models in one directory. Cheap to share between threads; every
/// method blocks, so call it from a worker thread.
pub struct Hub {
    config: HubConfig,
    /// Follows redirects (file transfers).
    agent: ureq::Agent,
    /// Follows none (resolution: the first answer carries the hub's file metadata).
    head_agent: ureq::Agent,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("endpoint", &self.config.endpoint)
            .field("models_dir", &self.config.models_dir)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Checks the configuration. Nothing touches the network or the disk until a method is called.
    pub fn new(config: HubConfig) -> Result<Hub> {
        let endpoint = config.endpoint.trim_end_matches('/');
        let lower = endpoint.to_ascii_lowercase();
        let host = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .unwrap_or("");
        if host.is_empty() || host.starts_with('/') || endpoint.contains(['?', '#']) {
            return Err(Error::InvalidArgument(format!(
                "hub endpoint '{}': expected http(s)://host[:port][/path]",
                config.endpoint
            )));
        }
        if config.models_dir.as_os_str().is_empty() {
            return Err(Error::InvalidArgument("empty models directory".into()));
        }
        let agent = download::build_agent(&config, 10);
        let head_agent = download::build_agent(&config, 0);
        Ok(Hub {
            config: HubConfig {
                endpoint: endpoint.to_string(),
                ..config
            },
            agent,
            head_agent,
        })
    }

    /// The configuration this hub was made with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The directory models are stored in.
    pub fn models_dir(&self) -> &std::path::Path {
        &self.config.models_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_are_validated() {
        let r = ModelRef::parse("LiquidAI/LFM2-1.2B-GGUF/LFM2-1.2B-Q4_K_M.gguf").unwrap();
        assert_eq!(r.repo, "LiquidAI/LFM2-1.2B-GGUF");
        assert_eq!(r.file, "LFM2-1.2B-Q4_K_M.gguf");
        assert_eq!(r.local_name(), "LFM2-1.2B-Q4_K_M.gguf");
        assert_eq!(
            r.url("https://huggingface.co/"),
            "https://huggingface.co/LiquidAI/LFM2-1.2B-GGUF/resolve/main/LFM2-1.2B-Q4_K_M.gguf"
        );
        let nested = ModelRef::parse("a/b/dir/my model+1.gguf").unwrap();
        assert_eq!(nested.local_name(), "my model+1.gguf");
        assert_eq!(
            nested.url("http://h"),
            "http://h/a/b/resolve/main/dir/my%20model%2B1.gguf"
        );
        for bad in [
            "a/b",
            "a/b/",
            "a//x.gguf",
            "a/b/../x.gguf",
            "a/b/x.bin",
            "a/b/.hidden.gguf",
            "a/b/d\\x.gguf",
            "a b/c/x.gguf",
            "../b/x.gguf",
            "a/b/x.gguf\n",
        ] {
            assert!(
                matches!(ModelRef::parse(bad), Err(Error::InvalidArgument(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn sha256_is_normalized() {
        let upper = "A".repeat(64);
        assert_eq!(normalize_sha256(&upper), Some("a".repeat(64)));
        assert_eq!(normalize_sha256(&"a".repeat(63)), None);
        assert_eq!(normalize_sha256(&"g".repeat(64)), None);
    }

    #[test]
    fn endpoints_are_checked() {
        let with = |e: &str| {
            Hub::new(HubConfig {
                endpoint: e.into(),
                models_dir: "m".into(),
                ..HubConfig::default()
            })
        };
        assert_eq!(
            with("https://hf-mirror.com/").unwrap().config().endpoint,
            "https://hf-mirror.com"
        );
        assert!(with("http://127.0.0.1:8080").is_ok());
        for bad in [
            "",
            "huggingface.co",
            "ftp://x",
            "https://",
            "https://h/?q=1",
        ] {
            assert!(matches!(with(bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }
}
