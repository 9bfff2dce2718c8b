//! The model catalogue: which LFM2-family GGUF files exist, how big they are, how much RAM they
//! need. Stored as JSON data ([`Catalogue::builtin`] is `catalogue.json` next to this file);
//! an app can load its own with [`Catalogue::from_json`] and [`Catalogue::merge`] it over the
//! built-in one.
//!
//! JSON schema (unknown keys are ignored, so a newer file still loads):
//!
//! ```json
//! { "models": [ {
//!     "id": "lfm2-1.2b", "name": "LFM2-1.2B", "repo": "LiquidAI/LFM2-1.2B-GGUF",
//!     "architecture": "lfm2", "params": 1170340608, "description": "…",
//!     "shape": { "n_layer": 16, "n_attn_layers": 6, "n_embd": 2048, "n_head": 32,
//!                "n_head_kv": 8, "head_dim": 64, "vocab": 65536, "conv_l_cache": 3,
//!                "ffn_width": 8192 },
//!     "files": [ { "quant": "Q4_K_M", "file": "LFM2-1.2B-Q4_K_M.gguf",
//!                  "size_bytes": 730893248, "sha256": "…" } ] } ] }
//! ```
//!
//! `size_bytes` and `sha256` are optional. Without `size_bytes` the size is approximated as
//! `params × bits-per-weight(quant) / 8` ([`approx_bits_per_weight`]) and
//! [`CatalogueFile::size_exact`] is false. RAM is always computed with
//! [`crate::memory::estimate`] (the engine's own fit check) at [`DEFAULT_CONTEXT`] tokens.

use serde::Deserialize;

use super::ModelRef;
use crate::memory::{self, DEFAULT_BATCH, DEFAULT_CONTEXT, Footprint, ModelShape};
use crate::{Error, Result};

const BUILTIN_JSON: &str = include_str!("catalogue.json");

/// A set of downloadable models.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    /// The models, in display order.
    pub models: Vec<CatalogueModel>,
}

/// One model (all its quantizations live in one repository).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueModel {
    /// Stable lowercase identifier, e.g. `lfm2-1.2b`.
    pub id: String,
    /// Display name, e.g. `LFM2-1.2B`.
    pub name: String,
    /// Hub repository, `owner/name`.
    pub repo: String,
    /// GGUF architecture (`lfm2` or `lfm2moe`).
    pub architecture: String,
    /// Total parameter count.
    pub params: u64,
    /// One line about the model, for people.
    pub description: String,
    /// The hyper-parameters the memory estimate needs.
    pub shape: ModelShape,
    /// Its GGUF files, one per quantization.
    pub files: Vec<CatalogueFile>,
}

/// One GGUF file of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueFile {
    /// Quantization name as in the file name: `Q4_0`, `Q4_K_M`, `Q5_K_M`, `Q6_K`, `Q8_0`, ….
    pub quant: String,
    /// File name (path) inside the repository.
    pub file: String,
    /// Size in bytes: exact when `size_exact`, else `params × bits-per-weight / 8`.
    pub size_bytes: u64,
    /// Whether `size_bytes` is the real size (else an estimate).
    pub size_exact: bool,
    /// Lowercase hex SHA-256 of the file, when the catalogue pins one.
    pub sha256: Option<String>,
    /// [`memory::estimate`] total at [`DEFAULT_CONTEXT`] tokens and [`DEFAULT_BATCH`]-token
    /// prefill chunks, with `size_bytes` as the weights.
    pub ram_bytes: u64,
}

/// Average bits per weight of a whole GGUF file (embeddings and norms included) for the common
/// llama.cpp quantization mixes; used to approximate sizes the catalogue does not give.
pub fn approx_bits_per_weight(quant: &str) -> Option<f64> {
    Some(match quant.to_ascii_uppercase().as_str() {
        "Q4_0" => 4.7,
        "Q4_K_S" => 4.8,
        "Q4_K_M" => 5.0,
        "Q5_0" => 5.6,
        "Q5_K_S" => 5.6,
        "Q5_K_M" => 5.75,
        "Q6_K" => 6.6,
        "Q8_0" => 8.5,
        "F16" | "BF16" => 16.0,
        "F32" => 32.0,
        _ => return None,
    })
}

#[derive(Deserialize)]
struct RawCatalogue {
    models: Vec<RawModel>,
}

#[derive(Deserialize)]
struct RawModel {
    id: String,
    name: String,
    repo: String,
    #[serde(default)]
    architecture: String,
    params: u64,
    #[serde(default)]
    description: String,
    shape: ModelShape,
    files: Vec<RawFile>,
}

#[derive(Deserialize)]
struct RawFile {
    quant: String,
    file: String,
    #[serde(default)]
    size_bytes: Option<u64>,
    #[serde(default)]
    sha256: Option<String>,
}

impl Catalogue {
    /// The catalogue shipped inside the crate (LFM2 and LFM2.5 GGUF files from LiquidAI).
    pub fn builtin() -> Catalogue {
        Catalogue::from_json(BUILTIN_JSON).expect("the built-in catalogue is valid (unit-tested)")
    }

    /// Parses a catalogue (schema in the module docs). Every entry is validated: repository and
    /// file names, SHA-256 format, and a size for quantizations without a known bits-per-weight.
    pub fn from_json(json: &str) -> Result<Catalogue> {
        let raw: RawCatalogue = serde_json::from_str(json)
            .map_err(|e| Error::InvalidArgument(format!("catalogue JSON: {e}")))?;
        let models = raw
            .models
            .into_iter()
            .map(CatalogueModel::from_raw)
            .collect::<Result<Vec<_>>>()?;
        Ok(Catalogue { models })
    }

    /// Adds the models of `other`, replacing those with the same `id`.
    pub fn merge(&mut self, other: Catalogue) {
        for model in other.models {
            match self.models.iter_mut().find(|m| m.id == model.id) {
                Some(slot) => *slot = model,
                None => self.models.push(model),
            }
        }
    }

    /// Finds a model by id or display name (case-insensitive).
    pub fn find(&self, id_or_name: &str) -> Option<&CatalogueModel> {
        self.models.iter().find(|m| {
            m.id.eq_ignore_ascii_case(id_or_name) || m.name.eq_ignore_ascii_case(id_or_name)
        })
    }

    /// Finds the catalogue entry of a repository file, e.g. to learn its pinned SHA-256 when the
    /// user names the file directly.
    pub fn lookup(&self, model: &ModelRef) -> Option<(&CatalogueModel, &CatalogueFile)> {
        self.models
            .iter()
            .filter(|m| m.repo.eq_ignore_ascii_case(&model.repo))
            .find_map(|m| {
                m.files
                    .iter()
                    .find(|f| f.file == model.file)
                    .map(|f| (m, f))
            })
    }
}

impl CatalogueModel {
    fn from_raw(raw: RawModel) -> Result<CatalogueModel> {
        let bad =
            |what: String| Error::InvalidArgument(format!("catalogue model '{}': {what}", raw.id));
        if raw.id.is_empty() || raw.name.is_empty() {
            return Err(bad("empty id or name".into()));
        }
        if raw.shape.n_layer == 0 || raw.shape.n_embd == 0 {
            return Err(bad("shape has zero layers or zero width".into()));
        }
        let mut files = Vec::with_capacity(raw.files.len());
        for f in &raw.files {
            // Validates the repository and the file name the same way downloads do.
            ModelRef::new(&raw.repo, &f.file).map_err(|e| bad(e.to_string()))?;
            let sha256 =
                match &f.sha256 {
                    Some(s) => Some(super::normalize_sha256(s).ok_or_else(|| {
                        bad(format!("file {}: sha256 is not 64 hex digits", f.file))
                    })?),
                    None => None,
                };
            let (size_bytes, size_exact) = match f.size_bytes {
                Some(n) => (n, true),
                None => {
                    let bpw = approx_bits_per_weight(&f.quant).ok_or_else(|| {
                        bad(format!(
                            "file {}: give size_bytes for quantization {}",
                            f.file, f.quant
                        ))
                    })?;
                    ((raw.params as f64 * bpw / 8.0).round() as u64, false)
                }
            };
            let ram_bytes =
                memory::estimate(&raw.shape, size_bytes, DEFAULT_CONTEXT, DEFAULT_BATCH, 4)
                    .total_bytes;
            files.push(CatalogueFile {
                quant: f.quant.clone(),
                file: f.file.clone(),
                size_bytes,
                size_exact,
                sha256,
                ram_bytes,
            });
        }
        Ok(CatalogueModel {
            id: raw.id,
            name: raw.name,
            repo: raw.repo,
            architecture: raw.architecture,
            params: raw.params,
            description: raw.description,
            shape: raw.shape,
            files,
        })
    }

    /// The file of a quantization (case-insensitive), if the catalogue lists it.
    pub fn file(&self, quant: &str) -> Option<&CatalogueFile> {
        self.files
            .iter()
            .find(|f| f.quant.eq_ignore_ascii_case(quant))
    }

    /// What to pass to [`super::Hub::download`] for a quantization.
    pub fn model_ref(&self, quant: &str) -> Option<ModelRef> {
        let f = self.file(quant)?;
        ModelRef::new(&self.repo, &f.file).ok()
    }

    /// The memory estimate of a quantization at another context length.
    pub fn footprint(&self, quant: &str, context_len: u32) -> Option<Footprint> {
        let f = self.file(quant)?;
        Some(memory::estimate(
            &self.shape,
            f.size_bytes,
            context_len,
            DEFAULT_BATCH,
            4,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists_the_lfm2_family_in_every_quant() {
        let c = Catalogue::builtin();
        for name in [
            "LFM2.5-8B-A1B",
            "LFM2-8B-A1B",
            "LFM2.5-1.2B-Instruct",
            "LFM2.5-1.2B-Thinking",
            "LFM2-350M",
            "LFM2-700M",
            "LFM2-2.6B",
        ] {
            let m = c.find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(m.repo, format!("LiquidAI/{name}-GGUF"));
            for q in ["Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"] {
                let f = m.file(q).unwrap_or_else(|| panic!("{name} {q} missing"));
                assert_eq!(f.file, format!("{name}-{q}.gguf"));
                assert!(!f.size_exact && f.sha256.is_none());
                assert!(f.ram_bytes > f.size_bytes);
                let r = m.model_ref(q).unwrap();
                assert_eq!(r.local_name(), f.file);
                assert_eq!(c.lookup(&r).unwrap().1, f);
            }
        }
        let lower = c.find("lfm2-1.2b").unwrap();
        assert_eq!(lower.file("q4_k_m").unwrap().file, "LFM2-1.2B-Q4_K_M.gguf");
    }

    #[test]
    fn sizes_and_ram_are_plausible() {
        let c = Catalogue::builtin();
        // LFM2-1.2B Q4_K_M is about 731 MB on the hub.
        let f = c.find("LFM2-1.2B").unwrap().file("Q4_K_M").unwrap();
        assert!(
            (700_000_000..760_000_000).contains(&f.size_bytes),
            "{}",
            f.size_bytes
        );
        let m = c.find("LFM2-8B-A1B").unwrap();
        assert!((8_300_000_000..8_400_000_000).contains(&m.params));
        let q4 = m.file("Q4_K_M").unwrap();
        let q8 = m.file("Q8_0").unwrap();
        assert!(q4.size_bytes < q8.size_bytes);
        // RAM is the engine's estimator at the default context, weights included.
        let fp = memory::estimate(&m.shape, q4.size_bytes, DEFAULT_CONTEXT, DEFAULT_BATCH, 4);
        assert_eq!(q4.ram_bytes, fp.total_bytes);
        assert!(m.footprint("Q4_K_M", 32768).unwrap().total_bytes > q4.ram_bytes);
        // LFM2.5-8B-A1B has the larger 128k vocabulary.
        assert_eq!(c.find("LFM2.5-8B-A1B").unwrap().shape.vocab, 128000);
    }

    #[test]
    fn app_catalogue_overrides_and_extends() {
        let mut c = Catalogue::builtin();
        let n = c.models.len();
        let sha = "AB".repeat(32);
        let json = format!(
            r#"{{"models": [
              {{"id": "lfm2-350m", "name": "LFM2-350M", "repo": "Me/mirror", "params": 354483968,
               "shape": {{"n_layer":16,"n_attn_layers":6,"n_embd":1024,"n_head":16,"n_head_kv":8,
                          "head_dim":64,"vocab":65536,"conv_l_cache":3,"ffn_width":4608}},
               "files": [{{"quant":"IQ2_XS","file":"sub/x.gguf","size_bytes":123,"sha256":"{sha}"}}]}},
              {{"id": "custom", "name": "Custom", "repo": "Me/custom", "params": 1,
               "shape": {{"n_layer":1,"n_attn_layers":1,"n_embd":8,"n_head":1,"n_head_kv":1,
                          "head_dim":8,"vocab":16,"conv_l_cache":3,"ffn_width":8}},
               "files": [], "future_key": true}}]}}"#
        );
        c.merge(Catalogue::from_json(&json).unwrap());
        assert_eq!(c.models.len(), n + 1);
        let m = c.find("LFM2-350M").unwrap();
        assert_eq!(m.repo, "Me/mirror");
        let f = m.file("iq2_xs").unwrap();
        assert!(f.size_exact);
        assert_eq!(f.size_bytes, 123);
        assert_eq!(f.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        assert_eq!(m.model_ref("IQ2_XS").unwrap().local_name(), "x.gguf");
        assert!(c.find("custom").is_some());
    }

    #[test]
    fn invalid_catalogues_are_typed_errors() {
        let shape = r#""shape": {"n_layer":1,"n_attn_layers":1,"n_embd":8,"n_head":1,"n_head_kv":1,"head_dim":8,"vocab":16,"conv_l_cache":3,"ffn_width":8}"#;
        let cases = [
            "not json".to_string(),
            r#"{"models": [{"id": "x"}]}"#.to_string(),
            format!(
                r#"{{"models":[{{"id":"x","name":"X","repo":"a/b","params":1,{shape},"files":[{{"quant":"IQ1_S","file":"x.gguf"}}]}}]}}"#
            ),
            format!(
                r#"{{"models":[{{"id":"x","name":"X","repo":"a/b","params":1,{shape},"files":[{{"quant":"Q8_0","file":"x.gguf","sha256":"zz"}}]}}]}}"#
            ),
            format!(
                r#"{{"models":[{{"id":"x","name":"X","repo":"a/b","params":1,{shape},"files":[{{"quant":"Q8_0","file":"../x.gguf"}}]}}]}}"#
            ),
            format!(
                r#"{{"models":[{{"id":"x","name":"X","repo":"no-slash","params":1,{shape},"files":[{{"quant":"Q8_0","file":"x.gguf"}}]}}]}}"#
            ),
        ];
        for json in cases {
            let err = Catalogue::from_json(&json).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{json}: {err}");
        }
    }
}
