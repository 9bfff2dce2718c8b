//! Downloads against a local HTTP server with fault injection (feature `hub`).
//!
//! Invariant checked in every test: a model file (`<name>`, listed by `Hub::list`) only ever
//! exists with the full, matching SHA-256; otherwise at most a `.part` remains, for a resume.
#![cfg(feature = "hub")]

#[path = "support/hub_server.rs"]
mod hub_server;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hearth::hub::{Catalogue, Hub, HubConfig, ModelRef, Phase, Progress, TlsRoots};
use hearth::{CancelToken, Error};
use hub_server::{Config, Fault, Server};
use sha2::{Digest, Sha256};

const REPO: &str = "LiquidAI/Test-GGUF";
const FILE: &str = "lfm2-dense-h64-q4_0.gguf";

fn fixture() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(FILE);
    std::fs::read(path).expect("fixture GGUF")
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hearth-hub-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Setup {
    server: Server,
    dir: TempDir,
    data: Vec<u8>,
    sha: String,
    model: ModelRef,
}

impl Setup {
    /// A server announcing the right hash (`X-Linked-ETag`) and size, with these faults.
    fn new(tag: &str, faults: Vec<Fault>) -> Setup {
        Setup::with(tag, |c| c.faults = faults)
    }

    fn with(tag: &str, edit: impl FnOnce(&mut Config)) -> Setup {
        let data = fixture();
        let sha = sha256(&data);
        let mut config = Config::new(REPO, FILE, data.clone(), Some(sha.clone()));
        edit(&mut config);
        Setup {
            server: Server::start(config),
            dir: TempDir::new(tag),
            data,
            sha,
            model: ModelRef::new(REPO, FILE).unwrap(),
        }
    }

    fn config(&self) -> HubConfig {
        let mut c = HubConfig::default();
        c.endpoint = self.server.url();
        c.models_dir = self.dir.0.clone();
        c.retries = 3;
        c.backoff = Duration::from_millis(5);
        c.read_timeout = Duration::from_secs(5);
        c.reserve_bytes = 0;
        c
    }

    fn hub(&self) -> Hub {
        Hub::new(self.config()).unwrap()
    }

    fn download(&self, hub: &Hub) -> hearth::Result<PathBuf> {
        hub.download(&self.model, None, &|_| {}, &CancelToken::new())
    }

    fn final_path(&self) -> PathBuf {
        self.dir.0.join(FILE)
    }

    fn part_path(&self) -> PathBuf {
        self.dir.0.join(format!("{FILE}.part"))
    }

    fn part_len(&self) -> Option<u64> {
        std::fs::metadata(self.part_path()).ok().map(|m| m.len())
    }

    /// The file is in place, byte-identical, listed as verified, with nothing partial left.
    fn assert_verified_model(&self, hub: &Hub) {
        assert_eq!(std::fs::read(self.final_path()).unwrap(), self.data);
        assert_eq!(self.part_len(), None, "partial file left behind");
        let list = hub.list().unwrap();
        assert_eq!(list.len(), 1);
        let m = &list[0];
        assert_eq!(m.name, FILE);
        assert_eq!(m.size_bytes, self.data.len() as u64);
        assert_eq!(m.quant.as_deref(), Some("Q4_0"));
        assert_eq!(m.repo.as_deref(), Some(REPO));
        assert_eq!(m.sha256.as_deref(), Some(self.sha.as_str()));
        assert!(m.verified);
    }

    /// No model file exists or is listed.
    fn assert_no_model(&self, hub: &Hub) {
        assert!(
            !self.final_path().exists(),
            "a model was renamed into place"
        );
        assert!(hub.list().unwrap().is_empty(), "a model was listed");
    }
}

#[test]
fn downloads_through_a_redirect_and_verifies_the_linked_etag() {
    let s = Setup::with("redirect", |c| c.redirect = true);
    let hub = s.hub();
    let reports = Mutex::new(Vec::<Progress>::new());
    let path = hub
        .download(
            &s.model,
            None,
            &|p| reports.lock().unwrap().push(p),
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(path, s.final_path());
    s.assert_verified_model(&hub);
    // Progress: starts at 0, ends at the total, never decreases.
    let reports = reports.into_inner().unwrap();
    let total = s.data.len() as u64;
    assert_eq!(reports.first().unwrap().downloaded, 0);
    assert_eq!(reports.last().unwrap().downloaded, total);
    assert!(
        reports
            .iter()
            .all(|p| p.total == Some(total) && p.phase == Phase::Downloading)
    );
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].downloaded <= w[1].downloaded)
    );
    // HEAD on the hub (redirect not followed), then the file from the storage location.
    let reqs = s.server.requests();
    assert_eq!(reqs[0].method, "HEAD");
    assert_eq!(reqs[0].path, format!("/{REPO}/resolve/main/{FILE}"));
    assert_eq!(s.server.file_gets().len(), 1);
    assert_eq!(s.server.file_gets()[0].range, None);
    // Already there: returned without any request.
    let n = s.server.requests().len();
    assert_eq!(s.download(&hub).unwrap(), path);
    assert_eq!(
        hub.download(
            &s.model,
            Some(&s.sha.to_uppercase()),
            &|_| {},
            &CancelToken::new()
        )
        .unwrap(),
        path
    );
    assert_eq!(s.server.requests().len(), n);
}

#[test]
fn token_goes_to_the_hub_only() {
    for other_host in [false, true] {
        let s = Setup::with("token", |c| {
            c.redirect = true;
            c.redirect_host = other_host.then(|| "localhost".to_string());
        });
        let mut config = s.config();
        config.token = Some("secret".into());
        let hub = Hub::new(config).unwrap();
        s.download(&hub).unwrap();
        s.assert_verified_model(&hub);
        let reqs = s.server.requests();
        assert_eq!(reqs[0].authorization.as_deref(), Some("Bearer secret"));
        let storage = &s.server.file_gets()[0];
        let expected = (!other_host).then(|| "Bearer secret".to_string());
        assert_eq!(storage.authorization, expected, "other host: {other_host}");
    }
}

#[test]
fn expired_storage_link_is_resolved_again() {
    // The storage (another host) refuses the old link after an interruption.
    let s = Setup::with("expired", |c| {
        c.redirect = true;
        c.redirect_host = Some("localhost".into());
        c.faults = vec![Fault::DropAfter(70_000), Fault::Status(403)];
    });
    let hub = s.hub();
    s.download(&hub).unwrap();
    s.assert_verified_model(&hub);
    let methods: Vec<_> = s.server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "GET", "GET", "HEAD", "GET"]);
    assert_eq!(
        s.server.file_gets()[2].range.as_deref(),
        Some("bytes=70000-")
    );
}

#[test]
fn catalogue_entries_download_with_their_pinned_hash() {
    let s = Setup::with("catalogue", |c| c.etag = None);
    let json = format!(
        r#"{{"models": [{{"id": "test", "name": "Test", "repo": "{REPO}", "params": 1000000,
            "shape": {{"n_layer":4,"n_attn_layers":2,"n_embd":64,"n_head":4,"n_head_kv":2,
                       "head_dim":16,"vocab":512,"conv_l_cache":3,"ffn_width":128}},
            "files": [{{"quant": "Q4_0", "file": "{FILE}", "sha256": "{}"}},
                      {{"quant": "Q8_0", "file": "{FILE}", "sha256": "{}"}}]}}]}}"#,
        s.sha,
        "1".repeat(64)
    );
    let mut catalogue = Catalogue::builtin();
    catalogue.merge(Catalogue::from_json(&json).unwrap());
    let entry = catalogue.find("test").unwrap();
    let hub = s.hub();
    let none = CancelToken::new();
    // A wrong pinned hash: refused, nothing kept as a model.
    let err = hub
        .download_catalogue(entry, "Q8_0", &|_| {}, &none)
        .unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    s.assert_no_model(&hub);
    let err = hub
        .download_catalogue(entry, "Q6_K", &|_| {}, &none)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    hub.download_catalogue(entry, "q4_0", &|_| {}, &none)
        .unwrap();
    s.assert_verified_model(&hub);
}

#[test]
fn hub_is_shareable_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<Hub>();
}

#[test]
fn dropped_connection_resumes_from_the_exact_byte() {
    let s = Setup::new(
        "drop",
        vec![Fault::DropAfter(100_000), Fault::DropAfter(50_000)],
    );
    let hub = s.hub();
    s.download(&hub).unwrap();
    s.assert_verified_model(&hub);
    let ranges: Vec<_> = s.server.file_gets().into_iter().map(|r| r.range).collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=100000-".into()),
            Some("bytes=150000-".into())
        ]
    );
}

#[test]
fn interrupted_download_resumes_in_a_later_call_rehashing_the_part() {
    let s = Setup::new("later", vec![Fault::DropAfter(120_000)]);
    let mut config = s.config();
    config.retries = 0;
    let hub = Hub::new(config).unwrap();
    let err = s.download(&hub).unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    // Kept for the resume, never listed as a model.
    assert_eq!(s.part_len(), Some(120_000));
    s.assert_no_model(&hub);

    let hub = s.hub();
    let reports = Mutex::new(Vec::<Progress>::new());
    hub.download(
        &s.model,
        None,
        &|p| reports.lock().unwrap().push(p),
        &CancelToken::new(),
    )
    .unwrap();
    s.assert_verified_model(&hub);
    let gets = s.server.file_gets();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=120000-"));
    let reports = reports.into_inner().unwrap();
    assert!(
        reports
            .iter()
            .any(|p| p.phase == Phase::Rehashing && p.downloaded == 120_000)
    );
}

#[test]
fn ignored_range_restarts_from_zero_instead_of_appending() {
    let s = Setup::new(
        "norange",
        vec![Fault::DropAfter(200_000), Fault::IgnoreRange],
    );
    let hub = s.hub();
    s.download(&hub).unwrap();
    s.assert_verified_model(&hub);
    let gets = s.server.file_gets();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=200000-"));
}

#[test]
fn stale_part_of_another_version_is_discarded() {
    let s = Setup::new("stale", vec![]);
    std::fs::create_dir_all(&s.dir.0).unwrap();
    // A part with no description (or of another file) must not be resumed.
    std::fs::write(s.part_path(), vec![0xAAu8; 1000]).unwrap();
    let hub = s.hub();
    s.download(&hub).unwrap();
    s.assert_verified_model(&hub);
    assert_eq!(s.server.file_gets()[0].range, None);
}

#[test]
fn wrong_content_length_is_rejected() {
    let len = fixture().len() as u64;
    let s = Setup::new("length", vec![Fault::ContentLength(len - 1000)]);
    let hub = s.hub();
    let err = s.download(&hub).unwrap_err();
    assert!(matches!(err, Error::BadResponse { .. }), "{err}");
    s.assert_no_model(&hub);
}

#[test]
fn short_body_without_announced_size_resumes() {
    // Content-Length promises more than is sent: the short read is an interruption.
    let len = fixture().len() as u64;
    let s = Setup::with("short", |c| {
        c.linked_size = false;
        c.head_status = Some(405); // no HEAD: the hash must come from the caller
        c.faults = vec![Fault::DropAfter(10_000)];
    });
    let hub = s.hub();
    hub.download(&s.model, Some(&s.sha), &|_| {}, &CancelToken::new())
        .unwrap();
    s.assert_verified_model(&hub);
    assert_eq!(
        s.server.file_gets()[1].range.as_deref(),
        Some("bytes=10000-")
    );
    assert_eq!(std::fs::metadata(s.final_path()).unwrap().len(), len);
}

#[test]
fn inconsistent_content_range_is_rejected() {
    let s = Setup::new("crange", vec![Fault::DropAfter(1000), Fault::ShiftedRange]);
    let hub = s.hub();
    let err = s.download(&hub).unwrap_err();
    assert!(matches!(err, Error::BadResponse { .. }), "{err}");
    s.assert_no_model(&hub);
    assert_eq!(s.part_len(), Some(1000));
}

#[test]
fn unsatisfiable_range_is_a_typed_error_and_keeps_the_part() {
    let s = Setup::new("416", vec![Fault::DropAfter(5000), Fault::Unsatisfiable]);
    let hub = s.hub();
    let err = s.download(&hub).unwrap_err();
    assert!(matches!(err, Error::Http { status: 416, .. }), "{err}");
    assert!(err.to_string().contains("range not satisfiable"));
    s.assert_no_model(&hub);
    assert_eq!(s.part_len(), Some(5000));
}

#[test]
fn complete_part_answered_416_is_verified_and_moved() {
    // Interrupted between the last byte and the rename; the server does not announce the size.
    let s = Setup::with("416done", |c| {
        c.linked_size = false;
        c.head_status = Some(405);
    });
    // First call gets everything but is cancelled right after the last byte is written: simulate
    // by a full part plus a matching description from a cancelled earlier call.
    let hub = s.hub();
    let mut config = s.config();
    config.fail_writes_after = Some(fixture().len() as u64 - 1);
    let failing = Hub::new(config).unwrap();
    let err = failing
        .download(&s.model, Some(&s.sha), &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(err, Error::InsufficientDisk { .. }), "{err}");
    // Complete the part by hand with the last chunk the writer refused.
    let have = s.part_len().unwrap() as usize;
    let mut part = std::fs::read(s.part_path()).unwrap();
    part.extend_from_slice(&s.data[have..]);
    std::fs::write(s.part_path(), &part).unwrap();

    hub.download(&s.model, Some(&s.sha), &|_| {}, &CancelToken::new())
        .unwrap();
    s.assert_verified_model(&hub);
    let gets = s.server.file_gets();
    assert_eq!(
        gets.last().unwrap().range.as_deref(),
        Some(format!("bytes={}-", s.data.len()).as_str())
    );
}

#[test]
fn server_error_is_retried_then_succeeds() {
    let s = Setup::new("500", vec![Fault::Status(500), Fault::Status(503)]);
    let hub = s.hub();
    s.download(&hub).unwrap();
    s.assert_verified_model(&hub);
    assert_eq!(s.server.file_gets().len(), 3);
}

#[test]
fn persistent_server_error_gives_up_after_the_retries() {
    let s = Setup::new("500x", vec![Fault::Status(500); 10]);
    let mut config = s.config();
    config.retries = 2;
    let hub = Hub::new(config).unwrap();
    let err = s.download(&hub).unwrap_err();
    assert!(matches!(err, Error::Http { status: 500, .. }), "{err}");
    assert_eq!(s.server.file_gets().len(), 3);
    s.assert_no_model(&hub);
}

#[test]
fn hash_mismatch_is_never_renamed_and_not_kept() {
    let s = Setup::new("corrupt", vec![Fault::Corrupt]);
    let hub = s.hub();
    let err = s.download(&hub).unwrap_err();
    match &err {
        Error::HashMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &s.sha);
            assert_ne!(actual, &s.sha);
        }
        other => panic!("expected HashMismatch, got {other}"),
    }
    s.assert_no_model(&hub);
    assert_eq!(
        s.part_len(),
        None,
        "a complete but wrong file is useless for a resume"
    );
}

#[test]
fn caller_hash_disagreeing_with_the_hub_fails_before_downloading() {
    let s = Setup::new("disagree", vec![]);
    let hub = s.hub();
    let other = "0".repeat(64);
    let err = hub
        .download(&s.model, Some(&other), &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert!(s.server.file_gets().is_empty());
    s.assert_no_model(&hub);
    let bad = hub.download(&s.model, Some("xyz"), &|_| {}, &CancelToken::new());
    assert!(matches!(bad, Err(Error::InvalidArgument(_))));
}

#[test]
fn caller_hash_is_checked_when_the_hub_announces_none() {
    let s = Setup::with("nohdr", |c| {
        c.etag = None;
        c.faults = vec![Fault::Corrupt];
    });
    let hub = s.hub();
    let err = hub
        .download(&s.model, Some(&s.sha), &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    s.assert_no_model(&hub);
    hub.download(&s.model, Some(&s.sha), &|_| {}, &CancelToken::new())
        .unwrap();
    s.assert_verified_model(&hub);
}

#[test]
fn unknown_hash_is_refused_unless_explicitly_allowed() {
    let s = Setup::with("unverified", |c| c.etag = None);
    let hub = s.hub();
    let err = s.download(&hub).unwrap_err();
    assert!(matches!(err, Error::NoChecksum { .. }), "{err}");
    assert!(s.server.file_gets().is_empty());
    s.assert_no_model(&hub);

    let mut config = s.config();
    config.allow_unverified = true;
    let hub = Hub::new(config).unwrap();
    s.download(&hub).unwrap();
    let list = hub.list().unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        !list[0].verified,
        "no expected hash: recorded as unverified"
    );
    assert_eq!(list[0].sha256.as_deref(), Some(s.sha.as_str()));
    // Verifying against a known hash upgrades it.
    assert!(hub.verify(FILE, Some(&s.sha)).unwrap().verified);
    assert!(hub.list().unwrap()[0].verified);
}

#[test]
fn cancel_from_another_thread_stops_a_slow_download() {
    let s = Setup::new(
        "cancel",
        vec![Fault::Slow {
            chunk: 4096,
            delay: Duration::from_millis(20),
        }],
    );
    let hub = s.hub();
    let cancel = CancelToken::new();
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.cancel();
        Instant::now()
    });
    let seen = AtomicUsize::new(0);
    let err = hub
        .download(
            &s.model,
            None,
            &|p| seen.store(p.downloaded as usize, Ordering::Relaxed),
            &cancel,
        )
        .unwrap_err();
    let returned = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(returned.duration_since(cancelled_at) < Duration::from_secs(1));
    let part = s.part_len().expect("partial file kept for a resume");
    assert!(part > 0 && part < s.data.len() as u64);
    assert!(seen.load(Ordering::Relaxed) > 0);
    s.assert_no_model(&hub);
}

#[test]
fn disk_full_mid_write_is_typed_and_resumable() {
    let s = Setup::new("full", vec![]);
    let mut config = s.config();
    config.fail_writes_after = Some(50_000);
    let hub = Hub::new(config).unwrap();
    let err = s.download(&hub).unwrap_err();
    match &err {
        Error::InsufficientDisk {
            available, needed, ..
        } => {
            assert_eq!(*available, 0);
            assert!(*needed > 0);
        }
        other => panic!("expected InsufficientDisk, got {other}"),
    }
    s.assert_no_model(&hub);
    let part = s.part_len().unwrap();
    assert_eq!(part, 50_000);
    // Space freed: the next call resumes.
    let hub = s.hub();
    s.download(&hub).unwrap();
    s.assert_verified_model(&hub);
    assert_eq!(
        s.server.file_gets()[1].range.as_deref(),
        Some(format!("bytes={part}-").as_str())
    );
}

#[test]
fn disk_space_is_checked_before_starting() {
    let s = Setup::new("space", vec![]);
    let mut config = s.config();
    config.reserve_bytes = u64::MAX / 2;
    let hub = Hub::new(config).unwrap();
    let err = s.download(&hub).unwrap_err();
    assert!(
        matches!(err, Error::InsufficientDisk { available, .. } if available > 0),
        "{err}"
    );
    assert!(s.server.file_gets().is_empty());
    s.assert_no_model(&hub);
}

#[test]
fn gated_and_missing_files_are_clear_errors() {
    for (status, words) in [(401, "gated"), (403, "gated"), (404, "not found")] {
        let s = Setup::with(&format!("s{status}"), |c| c.head_status = Some(status));
        let hub = s.hub();
        let err = s.download(&hub).unwrap_err();
        assert!(
            matches!(err, Error::Http { status: s, .. } if s == status),
            "{err}"
        );
        assert!(err.to_string().contains(words), "{err}");
        // Not retried, nothing written.
        assert_eq!(s.server.requests().len(), 1);
        assert_eq!(s.part_len(), None);
        s.assert_no_model(&hub);
    }
}

#[test]
fn no_network_is_a_network_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = TempDir::new("offline");
    let mut config = HubConfig::default();
    config.endpoint = format!("http://127.0.0.1:{port}");
    config.models_dir = dir.0.clone();
    config.retries = 1;
    config.backoff = Duration::from_millis(1);
    let hub = Hub::new(config).unwrap();
    let model = ModelRef::new(REPO, FILE).unwrap();
    let err = hub
        .download(&model, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    assert!(hub.list().unwrap().is_empty());
}

#[test]
fn tls_failure_is_a_tls_error() {
    // An https endpoint on a plain-http port: the handshake fails.
    for roots in [TlsRoots::Platform, TlsRoots::WebPki] {
        let s = Setup::new("tls", vec![]);
        let mut config = s.config();
        config.endpoint = s.server.url().replace("http://", "https://");
        config.tls_roots = roots;
        let hub = Hub::new(config).unwrap();
        let err = s.download(&hub).unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{roots:?}: {err}");
        s.assert_no_model(&hub);
    }
}

#[test]
fn storage_verify_and_delete() {
    let s = Setup::new("storage", vec![]);
    let hub = s.hub();
    s.download(&hub).unwrap();
    assert!(hub.verify(FILE, None).unwrap().verified);

    // A file copied in by the app is listed, unverified.
    std::fs::write(s.dir.0.join("Other-Q8_0.gguf"), b"GGUF").unwrap();
    let list = hub.list().unwrap();
    assert_eq!(list.len(), 2);
    let other = list.iter().find(|m| m.name == "Other-Q8_0.gguf").unwrap();
    assert!(!other.verified && other.sha256.is_none());
    assert_eq!(other.quant.as_deref(), Some("Q8_0"));
    assert!(matches!(
        hub.verify("Other-Q8_0.gguf", None),
        Err(Error::NoChecksum { .. })
    ));

    // Tampering (same size) is caught by verify, and the model is unverified from then on.
    let mut bytes = std::fs::read(s.final_path()).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(s.final_path(), &bytes).unwrap();
    assert!(
        hub.get(FILE).unwrap().unwrap().verified,
        "size unchanged: not noticed until verify"
    );
    assert!(matches!(
        hub.verify(FILE, None),
        Err(Error::HashMismatch { .. })
    ));
    assert!(!hub.get(FILE).unwrap().unwrap().verified);
    // The next download replaces it.
    s.download(&hub).unwrap();
    assert!(hub.get(FILE).unwrap().unwrap().verified);

    // Truncation is noticed without re-hashing (size differs from the record).
    std::fs::write(s.final_path(), &s.data[..100]).unwrap();
    assert!(!hub.get(FILE).unwrap().unwrap().verified);

    hub.delete(FILE).unwrap();
    hub.delete("Other-Q8_0.gguf").unwrap();
    assert!(hub.list().unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(&s.dir.0).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(matches!(hub.delete(FILE), Err(Error::ModelNotFound(_))));
    assert!(matches!(
        hub.delete("../x.gguf"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        hub.verify(FILE, None),
        Err(Error::ModelNotFound(_))
    ));
}

#[test]
fn missing_models_dir_lists_nothing() {
    let dir = TempDir::new("none");
    let mut config = HubConfig::default();
    config.models_dir = dir.0.join("not-yet");
    let hub = Hub::new(config).unwrap();
    assert!(hub.list().unwrap().is_empty());
}
