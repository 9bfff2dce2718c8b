//! The models directory: what is there, whether it was verified, deleting and re-verifying.
//!
//! Layout, all in one flat directory:
//!
//! | File | Meaning |
//! |---|---|
//! | `<name>.gguf` | a model; only ever created by renaming a fully verified download |
//! | `<name>.gguf.hearth.json` | sidecar: origin, SHA-256, size, `verified` |
//! | `<name>.gguf.part` | an interrupted download, kept only to be resumed |
//! | `<name>.gguf.part.json` | what the partial file is a part of (to never mix versions) |
//!
//! A `.gguf` without a sidecar (copied there by the app) is listed with `verified: false`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Hub, normalize_sha256};
use crate::{CancelToken, Error, Result};

pub(crate) const SIDECAR_SUFFIX: &str = ".hearth.json";
pub(crate) const PART_SUFFIX: &str = ".part";
pub(crate) const PART_META_SUFFIX: &str = ".part.json";

/// A model file in the models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    /// File name in the models directory, e.g. `LFM2-1.2B-Q4_K_M.gguf`.
    pub name: String,
    /// Full path of the file.
    pub path: PathBuf,
    /// Size of the file.
    pub size_bytes: u64,
    /// Quantization, from the sidecar or guessed from the file name (`…-Q4_K_M.gguf`).
    pub quant: Option<String>,
    /// `owner/name` it was downloaded from, when Hearth downloaded it.
    pub repo: Option<String>,
    /// SHA-256 recorded for the file (the expected one when verified).
    pub sha256: Option<String>,
    /// The file's full SHA-256 matched the expected one when it was downloaded (or last
    /// verified) and its size has not changed since.
    pub verified: bool,
}

/// What Hearth remembers about a model file (`<name>.hearth.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sidecar {
    pub repo: Option<String>,
    pub file: Option<String>,
    pub quant: Option<String>,
    pub size: u64,
    /// SHA-256 of the file as computed when it was written or last verified.
    pub sha256: String,
    /// True when `sha256` matched an expected hash (catalogue, caller or hub).
    pub verified: bool,
}

/// What a `.part` file belongs to (`<name>.part.json`); a part is resumed only if this matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartMeta {
    pub repo: String,
    pub file: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

/// The default models directory of the platform:
/// iOS and macOS `~/Library/Application Support/hearth/models` (an iOS app should exclude it from
/// iCloud backup), Linux `$XDG_DATA_HOME/hearth/models` or `~/.local/share/hearth/models`,
/// Windows `%LOCALAPPDATA%\hearth\models`. Android has no discoverable per-app directory
/// without JNI: there (and wherever no home is known) it is the relative `hearth-models`, and the
/// app should pass `Context.getFilesDir()` instead.
pub fn default_models_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(target_os = "android") {
        None
    } else if cfg!(any(target_vendor = "apple")) {
        env("HOME").map(|h| h.join("Library").join("Application Support"))
    } else if cfg!(windows) {
        env("LOCALAPPDATA")
    } else {
        env("XDG_DATA_HOME").or_else(|| env("HOME").map(|h| h.join(".local").join("share")))
    };
    match base {
        Some(b) => b.join("hearth").join("models"),
        None => PathBuf::from("hearth-models"),
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `path` + `suffix` (appended to the file name, not replacing the extension).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Reads a JSON file; `Ok(None)` if it is absent or unreadable as the expected type (a corrupt
/// sidecar only costs the "verified" mark, never an error).
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes a JSON file atomically (temporary file + rename).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = with_suffix(path, ".tmp");
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("serializing {}: {e}", path.display())))?;
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(io_err(path))
}

/// Removes a file, ignoring "not found".
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Makes a rename durable (directory entry flushed) where the platform allows it.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Free bytes for an unprivileged user on the file system holding `dir`, if the OS can tell.
pub(crate) fn available_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid NUL-terminated path and `st` is a writable statvfs.
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it filled `st`.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Feeds the first `len` bytes of `file` (from its start) to `hasher`, checking `cancel`
/// between chunks and reporting the bytes done.
pub(crate) fn hash_prefix(
    file: &mut File,
    path: &Path,
    len: u64,
    hasher: &mut Sha256,
    cancel: &CancelToken,
    mut report: impl FnMut(u64),
) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        cancel.check()?;
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want]).map_err(io_err(path))?;
        if n == 0 {
            return Err(io_err(path)(io::ErrorKind::UnexpectedEof.into()));
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        report(done);
    }
    Ok(())
}

/// Guesses the quantization from a file name: the last `-` or `.` separated token of the stem,
/// when it looks like a ggml type (`Q4_K_M`, `IQ2_XS`, `F16`, `BF16`, …).
pub(crate) fn quant_from_name(name: &str) -> Option<String> {
    let stem = name.get(..name.len().checked_sub(5)?)?; // strip ".gguf"
    let token = stem.rsplit(['-', '.']).next()?.to_ascii_uppercase();
    let t = token.as_str();
    let quantish = matches!(t, "F16" | "BF16" | "F32")
        || (t.starts_with('Q') && t[1..].starts_with(|c: char| c.is_ascii_digit()))
        || (t.starts_with("IQ") && t[2..].starts_with(|c: char| c.is_ascii_digit()))
        || (t.starts_with("TQ") && t[2..].starts_with(|c: char| c.is_ascii_digit()));
    quantish.then_some(token)
}

impl Hub {
    /// The models in the models directory (`*.gguf`; partial downloads are not models), sorted
    /// by name. A missing directory is an empty list.
    pub fn list(&self) -> Result<Vec<LocalModel>> {
        let dir = self.models_dir();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(dir)(e)),
        };
        let mut models = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.to_ascii_lowercase().ends_with(".gguf") {
                continue;
            }
            if let Some(model) = self.local_model(&name)? {
                models.push(model);
            }
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(models)
    }

    /// The model called `name`, if it is in the models directory.
    pub fn get(&self, name: &str) -> Result<Option<LocalModel>> {
        check_name(name)?;
        self.local_model(name)
    }

    pub(crate) fn local_model(&self, name: &str) -> Result<Option<LocalModel>> {
        let path = self.models_dir().join(name);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let sidecar: Option<Sidecar> = read_json(&with_suffix(&path, SIDECAR_SUFFIX));
        let size_bytes = meta.len();
        let verified = sidecar
            .as_ref()
            .is_some_and(|s| s.verified && s.size == size_bytes);
        Ok(Some(LocalModel {
            name: name.to_string(),
            size_bytes,
            quant: sidecar
                .as_ref()
                .and_then(|s| s.quant.clone())
                .or_else(|| quant_from_name(name)),
            repo: sidecar.as_ref().and_then(|s| s.repo.clone()),
            sha256: sidecar.map(|s| s.sha256),
            verified,
            path,
        }))
    }

    /// Deletes a model with its sidecar, and any partial download of that name.
    /// [`Error::ModelNotFound`] if there was nothing to delete.
    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let path = self.models_dir().join(name);
        let mut any = false;
        for p in [
            path.clone(),
            with_suffix(&path, PART_SUFFIX),
            with_suffix(&path, PART_META_SUFFIX),
            with_suffix(&path, SIDECAR_SUFFIX),
        ] {
            any |= remove_if_exists(&p)?;
        }
        if any {
            Ok(())
        } else {
            Err(Error::ModelNotFound(name.to_string()))
        }
    }

    /// Re-hashes a model and compares it with `expected_sha256`, or else with the hash recorded
    /// when it was downloaded verified. Updates the sidecar either way. A mismatch is
    /// [`Error::HashMismatch`] (and the model is listed unverified from then on); a file without
    /// any expected hash is [`Error::NoChecksum`]. Reads the whole file: call from a worker thread.
    pub fn verify(&self, name: &str, expected_sha256: Option<&str>) -> Result<LocalModel> {
        check_name(name)?;
        let path = self.models_dir().join(name);
        if !path.is_file() {
            return Err(Error::ModelNotFound(name.to_string()));
        }
        let sidecar_path = with_suffix(&path, SIDECAR_SUFFIX);
        let old: Option<Sidecar> = read_json(&sidecar_path);
        let expected =
            match expected_sha256 {
                Some(s) => Some(normalize_sha256(s).ok_or_else(|| {
                    Error::InvalidArgument(format!("'{s}' is not a SHA-256 in hex"))
                })?),
                None => old
                    .as_ref()
                    .filter(|s| s.verified)
                    .map(|s| s.sha256.clone()),
            };
        let Some(expected) = expected else {
            return Err(Error::NoChecksum {
                file: name.to_string(),
            });
        };
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        let mut hasher = Sha256::new();
        hash_prefix(
            &mut file,
            &path,
            size,
            &mut hasher,
            &CancelToken::new(),
            |_| {},
        )?;
        let actual = hex(&hasher.finalize());
        let verified = actual == expected;
        let sidecar = Sidecar {
            repo: old.as_ref().and_then(|s| s.repo.clone()),
            file: old.as_ref().and_then(|s| s.file.clone()),
            quant: old.as_ref().and_then(|s| s.quant.clone()),
            size,
            sha256: if verified {
                expected.clone()
            } else {
                actual.clone()
            },
            verified,
        };
        write_json(&sidecar_path, &sidecar)?;
        if !verified {
            return Err(Error::HashMismatch {
                file: name.to_string(),
                expected,
                actual,
            });
        }
        self.local_model(name)?
            .ok_or_else(|| Error::ModelNotFound(name.to_string()))
    }
}

/// A model name is a plain file name ending in `.gguf` (no directories).
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && name.to_ascii_lowercase().ends_with(".gguf");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "'{name}' is not a model file name (expected NAME.gguf)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quant_is_guessed_from_the_name() {
        assert_eq!(
            quant_from_name("LFM2-1.2B-Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(
            quant_from_name("lfm2-dense-h64-q4_0.gguf").as_deref(),
            Some("Q4_0")
        );
        assert_eq!(quant_from_name("model.bf16.gguf").as_deref(), Some("BF16"));
        assert_eq!(quant_from_name("x-IQ2_XS.gguf").as_deref(), Some("IQ2_XS"));
        assert_eq!(quant_from_name("LFM2-1.2B.gguf"), None);
        assert_eq!(quant_from_name("Q.gguf"), None);
        assert_eq!(quant_from_name(".gguf"), None);
    }

    #[test]
    fn hex_and_suffix() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(
            with_suffix(Path::new("/m/a.gguf"), PART_SUFFIX),
            PathBuf::from("/m/a.gguf.part")
        );
    }

    #[test]
    fn names_are_plain_files() {
        for ok in ["a.gguf", "LFM2-1.2B-Q4_K_M.GGUF"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".gguf",
            "../a.gguf",
            "d/a.gguf",
            "a.gguf.part",
            "a\\b.gguf",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn free_space_is_known_on_unix() {
        if cfg!(unix) {
            assert!(available_space(Path::new(".")).is_some());
            assert!(available_space(Path::new("/definitely/not/here")).is_none());
        }
    }
}
