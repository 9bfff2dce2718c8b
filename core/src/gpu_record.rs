//! A per-device memory of GPU failures, so [`BackendKind::Auto`](crate::BackendKind::Auto)
//! does not pay for (or crash in) a broken driver on every launch.
//!
//! When a GPU fails its self-test, cannot hold the model, or faults during a turn (invalid
//! logits, device loss), the engine writes one line for that adapter and driver into
//! `gpu-failures.json` under the directory the app gave ([`EngineOptions::gpu_failure_dir`]
//! (crate::EngineOptions::gpu_failure_dir)). The next `Auto` load on the same adapter and
//! driver picks the CPU at once; a driver update changes the key and the GPU is tried again.
//! [`forget_gpu_failures`] clears the record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const FILE: &str = "gpu-failures.json";

#[derive(Serialize, Deserialize, Default)]
struct Record {
    failures: Vec<Failure>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Failure {
    /// Adapter, API and driver: what identifies "this GPU with this driver".
    device: String,
    reason: String,
    /// Seconds since the Unix epoch.
    at: u64,
}

/// The key of an adapter with its driver.
pub(crate) fn device_key(adapter: &str, backend: &str, driver: &str) -> String {
    format!("{adapter} ({backend}, driver {driver})")
}

fn read(dir: &Path) -> Record {
    std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Why this device failed before, if it did.
pub(crate) fn lookup(dir: &Path, device: &str) -> Option<String> {
    read(dir)
        .failures
        .into_iter()
        .find(|f| f.device == device)
        .map(|f| f.reason)
}

/// Remembers a failure of `device` (best effort: a read-only or full disk only logs).
pub(crate) fn remember(dir: &Path, device: &str, reason: &str) {
    let mut record = read(dir);
    record.failures.retain(|f| f.device != device);
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    record.failures.push(Failure {
        device: device.to_string(),
        reason: reason.to_string(),
        at,
    });
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&record)?)?;
        std::fs::rename(&tmp, dir.join(FILE))
    };
    match write() {
        Ok(()) => log::warn!("GPU {device} failed ({reason}); Auto will use the CPU on it"),
        Err(e) => log::warn!("cannot record the GPU failure in {}: {e}", dir.display()),
    }
}

/// Forgets every recorded GPU failure under `dir`, so `Auto` tries the GPU again.
pub fn forget_gpu_failures(dir: impl AsRef<Path>) -> Result<()> {
    let path: PathBuf = dir.as_ref().join(FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_remembered_per_device_and_can_be_forgotten() {
        let dir = std::env::temp_dir().join(format!("hearth-gpu-record-{}", std::process::id()));
        let a = device_key("Adreno 740", "Vulkan", "512.615");
        let b = device_key("Adreno 740", "Vulkan", "512.700");
        assert_eq!(lookup(&dir, &a), None);
        remember(&dir, &a, "self-test failed");
        assert_eq!(lookup(&dir, &a).as_deref(), Some("self-test failed"));
        assert_eq!(lookup(&dir, &b), None, "another driver is another device");
        remember(&dir, &a, "device lost");
        assert_eq!(
            lookup(&dir, &a).as_deref(),
            Some("device lost"),
            "latest reason"
        );
        assert_eq!(read(&dir).failures.len(), 1);
        forget_gpu_failures(&dir).unwrap();
        assert_eq!(lookup(&dir, &a), None);
        forget_gpu_failures(&dir).unwrap();
        // A damaged record reads as empty rather than failing the load.
        std::fs::write(dir.join(FILE), b"{not json").unwrap();
        assert_eq!(lookup(&dir, &a), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
