//! Models on the device: [`ModelStore`] wraps the core's `hub::Hub` (catalogue, resumable
//! SHA-256-verified downloads, the models directory). Feature `store` (the core's `hub`).

use std::sync::Arc;

use hearth::hub::{Catalogue, Hub, HubConfig, ModelRef as CoreRef, Phase};

use crate::HearthError;
use crate::model::CancelHandle;
use crate::session::CallbackError;

/// A downloadable file: `repo` is `owner/name`, `file` a `.gguf` path in it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ModelRef {
    pub repo: String,
    pub file: String,
    /// Expected SHA-256 (hex); `None` = the hub's announced one.
    #[uniffi(default = None)]
    pub sha256: Option<String>,
}

/// One quantization of a catalogue model, and whether it fits this device.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CatalogueEntry {
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub description: String,
    pub quant: String,
    pub size_bytes: u64,
    /// The core's memory estimate at 4096 tokens of context.
    pub ram_bytes: u64,
    /// `ram_bytes` fits in the memory the OS reports available (`None`: it does not say).
    pub fits: Option<bool>,
    pub model_ref: ModelRef,
}

/// A model file in the store's directory.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct InstalledModel {
    pub name: String,
    pub path: String,
    pub size_bytes: u64,
    pub quant: Option<String>,
    pub repo: Option<String>,
    /// Its SHA-256 matched the expected one when it was downloaded.
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DownloadProgress {
    /// True while an existing partial file is re-hashed before resuming.
    pub rehashing: bool,
    pub downloaded_bytes: u64,
    pub total_bytes: Option<u64>,
    pub bytes_per_second: f64,
    /// `None` until the last item, which carries the installed, verified file's path.
    #[uniffi(default = None)]
    pub path: Option<String>,
}

/// Receives a download's progress on the downloading thread; an error cancels the download.
#[uniffi::export(foreign)]
pub trait DownloadListener: Send + Sync {
    fn on_progress(&self, progress: DownloadProgress) -> Result<(), CallbackError>;
}

/// The models directory of an app.
#[derive(uniffi::Object)]
pub struct ModelStore {
    hub: Hub,
}

#[uniffi::export]
impl ModelStore {
    /// A store in `directory`, downloading from `endpoint` (default: the Hugging Face hub).
    #[uniffi::constructor(default(endpoint = None))]
    pub fn new(directory: String, endpoint: Option<String>) -> Result<Arc<Self>, HearthError> {
        let mut config = HubConfig::default();
        config.models_dir = directory.into();
        if let Some(e) = endpoint {
            config.endpoint = e;
        }
        Ok(Arc::new(ModelStore {
            hub: Hub::new(config)?,
        }))
    }

    /// Every quantization of the built-in catalogue, with its fit on this device.
    pub fn catalogue(&self) -> Result<Vec<CatalogueEntry>, HearthError> {
        let available = hearth::engine::available_memory();
        let mut entries = Vec::new();
        for m in Catalogue::builtin().models {
            for f in &m.files {
                entries.push(CatalogueEntry {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    architecture: m.architecture.clone(),
                    parameters: m.params,
                    description: m.description.clone(),
                    quant: f.quant.clone(),
                    size_bytes: f.size_bytes,
                    ram_bytes: f.ram_bytes,
                    fits: available.map(|a| f.ram_bytes <= a),
                    model_ref: ModelRef {
                        repo: m.repo.clone(),
                        file: f.file.clone(),
                        sha256: f.sha256.clone(),
                    },
                });
            }
        }
        Ok(entries)
    }

    /// The models in the directory, by name.
    pub fn installed(&self) -> Result<Vec<InstalledModel>, HearthError> {
        let list = self.hub.list()?.into_iter().map(|m| InstalledModel {
            name: m.name,
            path: m.path.display().to_string(),
            size_bytes: m.size_bytes,
            quant: m.quant,
            repo: m.repo,
            verified: m.verified,
        });
        Ok(list.collect())
    }

    /// Downloads (or resumes) `model` and returns its path once verified; the listener's last
    /// item then carries the same path. Blocking: the platform wrappers run it off the main
    /// thread; `cancel` keeps the partial file.
    pub fn download(
        &self,
        model: ModelRef,
        progress: Option<Arc<dyn DownloadListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<String, HearthError> {
        let r = CoreRef::new(&model.repo, &model.file)?;
        let token = cancel.map(|c| c.token.clone()).unwrap_or_default();
        let last = std::cell::Cell::new((0, None, 0.0));
        let report = |p: hearth::hub::Progress| {
            let Some(l) = &progress else { return };
            last.set((p.downloaded, p.total, p.bytes_per_sec));
            let p = DownloadProgress {
                rehashing: p.phase == Phase::Rehashing,
                downloaded_bytes: p.downloaded,
                total_bytes: p.total,
                bytes_per_second: p.bytes_per_sec,
                path: None,
            };
            if l.on_progress(p).is_err() {
                token.cancel();
            }
        };
        let path = self
            .hub
            .download(&r, model.sha256.as_deref(), &report, &token)?;
        let path = path.display().to_string();
        if let Some(l) = &progress {
            let size = std::fs::metadata(&path).map(|m| m.len()).ok();
            let (downloaded, total, rate) = last.get();
            let done = DownloadProgress {
                rehashing: false,
                downloaded_bytes: size.unwrap_or(downloaded),
                total_bytes: size.or(total),
                bytes_per_second: rate,
                path: Some(path.clone()),
            };
            // The file is installed: a failing listener has nothing left to cancel.
            let _ = l.on_progress(done);
        }
        Ok(path)
    }

    /// Removes a model (and its partial download) by file name.
    pub fn delete(&self, name: String) -> Result<(), HearthError> {
        Ok(self.hub.delete(&name)?)
    }
}
