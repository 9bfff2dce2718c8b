//! Text ⇄ token ids for LFM2 models: byte-level BPE built on the `tokenizers` crate.
//!
//! Two sources give the same tokenizer: the HF `tokenizer.json` ([`Tokenizer::from_json_file`])
//! or the vocabulary stored in the GGUF ([`Tokenizer::from_gguf`], rebuilt the way llama.cpp reads
//! it: `tokenizer.ggml.model = gpt2`, pre-tokenizer `lfm2` = Llama-3 split regex, BPE with
//! `ignore_merges`). [`Tokenizer::for_model`] picks `tokenizer.json` beside the model if there is
//! one.
//!
//! Encoding runs through `tokenizers`; decoding does not: every id's bytes are precomputed once
//! (byte-level pieces mapped back through the GPT-2 byte table, control and user-defined tokens
//! as their literal text), so [`Tokenizer::decode`] and the streaming [`Detokenizer`] are exact
//! and O(1) per token.
//!
//! BOS policy: [`Tokenizer::encode`] with `add_bos = true` prepends BOS unless the encoded text
//! already starts with it, so a rendered chat template (which begins with `<|startoftext|>`)
//! yields exactly one BOS whether or not the caller asks for one. That is the stream llama.cpp
//! feeds the model in chat mode (it strips the rendered BOS text); plain
//! `llama_tokenize(add_bos = true)` and HF `add_special_tokens = True` would emit two.

mod bytelevel;
mod from_gguf;
mod stream;

pub use stream::Detokenizer;
pub(crate) use stream::take_complete_utf8;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::ModelWrapper;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use bytelevel::ByteDecoder;

/// What a token id is, for decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Ordinary byte-level BPE piece.
    Normal,
    /// Special token (GGUF CONTROL, HF `special: true`): parsed from text only by
    /// [`Tokenizer::encode`], dropped by `decode(.., skip_special = true)`.
    Control,
    /// Added but not special (GGUF USER_DEFINED, e.g. `<think>`): always parsed, always shown.
    UserDefined,
    /// No token has this id.
    Missing,
}

/// Ids the generation loop and the prompt builder need.
#[derive(Clone, Debug, Default)]
struct Specials {
    bos: Option<u32>,
    eos: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
}

/// An LFM2 tokenizer. `Send + Sync`; share it with an `Arc`.
pub struct Tokenizer {
    /// Used for encoding only. Behind a mutex because plain encoding flips the crate's
    /// "encode special tokens" switch for the duration of one call; one instance, not two copies
    /// of the vocabulary.
    inner: Mutex<tokenizers::Tokenizer>,
    /// Bytes of every id, concatenated; id `i` is `bytes[offsets[i]..offsets[i + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    kinds: Vec<Kind>,
    specials: Specials,
    /// The text of every control token, for keeping them out of message text.
    controls: Vec<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.specials.bos)
            .field("eos", &self.specials.eos)
            .field("eog", &self.specials.eog)
            .field("add_bos", &self.specials.add_bos)
            .finish()
    }
}

/// `tokenizers` trusts a deserialized `TemplateProcessing` (its builder's checks do not run):
/// a template naming a special token missing from `special_tokens`, or a special token whose
/// `ids` and `tokens` differ in length, panics at the first encode (found by
/// fuzz/tokenizer_json). Checks every template processor, also inside a `Sequence`.
fn check_post_processor(v: &serde_json::Value) -> std::result::Result<(), String> {
    use serde_json::Value;
    match v {
        Value::Array(items) => items.iter().try_for_each(check_post_processor),
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("TemplateProcessing") {
                let specials = map.get("special_tokens").and_then(Value::as_object);
                for (name, token) in specials.into_iter().flatten() {
                    let len = |k: &str| token.get(k).and_then(Value::as_array).map(Vec::len);
                    if len("ids") != len("tokens") {
                        return Err(format!("special token {name:?}: ids and tokens differ"));
                    }
                }
                for template in ["single", "pair"].iter().filter_map(|k| map.get(*k)) {
                    for piece in template.as_array().into_iter().flatten() {
                        let id = piece.pointer("/SpecialToken/id").and_then(Value::as_str);
                        if let Some(id) =
                            id.filter(|id| !specials.is_some_and(|s| s.contains_key(*id)))
                        {
                            return Err(format!("the template names {id:?}, not a special token"));
                        }
                    }
                }
            }
            map.values().try_for_each(check_post_processor)
        }
        _ => Ok(()),
    }
}

fn tok_err(msg: impl Into<String>) -> Error {
    Error::Tokenizer(msg.into())
}

impl Tokenizer {
    // ----------------------------------------------------------------------------------------
    // Construction
    // ----------------------------------------------------------------------------------------

    /// Loads an HF `tokenizer.json`. If a `tokenizer_config.json` sits beside it, its
    /// `bos_token`, `eos_token` and `add_bos_token` are used; otherwise BOS is taken from the
    /// post-processor and EOS is `<|im_end|>` (LFM2's), else `<|endoftext|>`.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut tok = Self::from_json_bytes(&bytes)
            .map_err(|e| tok_err(format!("{}: {}", path.display(), strip_prefix(&e))))?;
        if let Some(dir) = path.parent() {
            let cfg = dir.join("tokenizer_config.json");
            if cfg.is_file() {
                tok.apply_tokenizer_config(&cfg)?;
            }
        }
        Ok(tok)
    }

    /// Parses the bytes of an HF `tokenizer.json` (byte-level BPE only).
    pub fn from_json_bytes(json: &[u8]) -> Result<Self> {
        // `tokenizers` panics (an `expect` in its decoder deserializer) on some malformed
        // JSON instead of returning an error, found by fuzz/tokenizer_json: check the syntax
        // first (UTF-8 included: skipping a string does not decode it), and turn any panic of
        // the parse that is left into the same typed error.
        let text = std::str::from_utf8(json)
            .map_err(|e| tok_err(format!("invalid tokenizer.json: not UTF-8 ({e})")))?;
        // Only the post-processor is kept as a tree (the vocabulary and merges are skipped).
        #[derive(serde::Deserialize)]
        struct PostProcessor {
            #[serde(default)]
            post_processor: serde_json::Value,
        }
        let parsed = serde_json::from_str::<PostProcessor>(text)
            .map_err(|e| tok_err(format!("invalid tokenizer.json: {e}")))?;
        check_post_processor(&parsed.post_processor)
            .map_err(|e| tok_err(format!("invalid tokenizer.json: post_processor: {e}")))?;
        let inner = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(json))
            .map_err(|_| tok_err("invalid tokenizer.json: rejected by the tokenizers parser"))?
            .map_err(|e| tok_err(format!("invalid tokenizer.json: {e}")))?;
        if !matches!(inner.get_model(), ModelWrapper::BPE(_)) {
            return Err(tok_err(
                "tokenizer.json: only BPE models are supported (LFM2 uses byte-level BPE)",
            ));
        }
        if !matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_))) {
            return Err(tok_err(
                "tokenizer.json: only the ByteLevel decoder is supported (LFM2 uses byte-level BPE)",
            ));
        }

        let added = inner.get_added_tokens_decoder();
        let vocab = inner.get_vocab(true);
        let n_vocab = vocab.values().max().map_or(0, |&m| m as usize + 1);
        if n_vocab == 0 {
            return Err(tok_err("tokenizer.json: empty vocabulary"));
        }
        // Ids index a dense table: refuse absurdly sparse ones instead of allocating for them.
        if n_vocab > 2 * vocab.len() + 1024 {
            return Err(tok_err(format!(
                "tokenizer.json: {} tokens but ids up to {}",
                vocab.len(),
                n_vocab - 1
            )));
        }
        drop(vocab);
        let model = inner.get_model();
        let byte_decoder = ByteDecoder::new();
        let mut table = TableBuilder::with_capacity(n_vocab);
        for id in 0..n_vocab as u32 {
            if let Some(t) = added.get(&id) {
                let kind = if t.special {
                    Kind::Control
                } else {
                    Kind::UserDefined
                };
                table.push(kind, t.content.as_bytes())?;
            } else if let Some(piece) = tokenizers::Model::id_to_token(model, id) {
                table.push_piece(&byte_decoder, &piece)?;
            } else {
                table.push(Kind::Missing, &[])?;
            }
        }

        // BOS from the post-processor: what does it put around an empty input?
        let mut specials = Specials::default();
        let wrapped = inner
            .encode_fast("", true)
            .map_err(|e| tok_err(format!("tokenizer.json: post-processor failed: {e}")))?;
        match wrapped.get_ids().first() {
            Some(&id) => {
                specials.bos = Some(id);
                specials.add_bos = true;
            }
            None => specials.bos = inner.token_to_id("<|startoftext|>"),
        }
        specials.eos = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .find_map(|t| inner.token_to_id(t));

        Ok(Self::from_parts(inner, table, specials, &[]))
    }

    /// Builds the tokenizer from the vocabulary stored in a GGUF file (`tokenizer.ggml.*`).
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        from_gguf::build(gguf)
    }

    /// The tokenizer for a model file: `tokenizer.json` in the same directory if present (with
    /// BOS/EOS/`add_bos` still taken from the GGUF, which is what the model was converted with),
    /// else the GGUF vocabulary.
    pub fn for_model(gguf_path: impl AsRef<Path>) -> Result<Self> {
        let gguf_path = gguf_path.as_ref();
        let gguf = GgufFile::open(gguf_path)?;
        let json = gguf_path
            .parent()
            .map(|d| d.join("tokenizer.json"))
            .filter(|p| p.is_file());
        let Some(json) = json else {
            return Self::from_gguf(&gguf);
        };
        log::info!("tokenizer: using {}", json.display());
        let mut tok = Self::from_json_file(&json)?;
        if let Some(n_gguf) = gguf
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .map(|a| a.len())
        {
            if tok.vocab_size() > n_gguf {
                return Err(tok_err(format!(
                    "{} has {} tokens but the model's GGUF vocabulary only {n_gguf}",
                    json.display(),
                    tok.vocab_size()
                )));
            }
            if tok.vocab_size() < n_gguf {
                log::warn!(
                    "{}: {} tokens, GGUF has {n_gguf} (padding ids will not decode)",
                    json.display(),
                    tok.vocab_size()
                );
            }
        }
        let default_add_bos = tok.specials.add_bos;
        let specials = from_gguf::read_specials(&gguf, tok.vocab_size(), default_add_bos, |s| {
            tok.token_id(s)
        })?;
        tok.specials.bos = specials.bos.or(tok.specials.bos);
        tok.specials.eos = specials.eos.or(tok.specials.eos);
        tok.specials.add_bos = specials.add_bos;
        tok.finish_specials(&specials.eog);
        Ok(tok)
    }

    /// Assembles a tokenizer from a built `tokenizers` instance and the per-id table.
    fn from_parts(
        inner: tokenizers::Tokenizer,
        table: TableBuilder,
        specials: Specials,
        extra_eog: &[u32],
    ) -> Self {
        let mut tok = Tokenizer {
            inner: Mutex::new(inner),
            bytes: table.bytes,
            offsets: table.offsets,
            kinds: table.kinds,
            specials,
            controls: Vec::new(),
        };
        tok.controls = (0..tok.vocab_size() as u32)
            .filter(|&id| tok.is_control(id))
            .filter_map(|id| tok.piece_bytes(id))
            .filter_map(|b| std::str::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        tok.finish_specials(extra_eog);
        tok
    }

    /// The text of every control token (`<|im_start|>`, `<|im_end|>`, ...).
    pub fn control_strings(&self) -> &[String] {
        &self.controls
    }

    /// Encodes a rendered prompt whose literal spans are marked
    /// ([`crate::chat::literal::mark`]): marked spans as plain text, the rest with
    /// special-token parsing, as [`Tokenizer::encode`] without BOS.
    pub fn encode_marked(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for (piece, literal) in crate::chat::literal::pieces(text) {
            ids.extend(self.encode_with(piece, !literal)?);
        }
        Ok(ids)
    }

    /// EOG set: EOS, the given extra ids, and `<|im_end|>` / `<|endoftext|>` when present.
    fn finish_specials(&mut self, extra_eog: &[u32]) {
        let mut eog: Vec<u32> = self.specials.eos.into_iter().collect();
        eog.extend_from_slice(extra_eog);
        for name in ["<|im_end|>", "<|endoftext|>"] {
            if let Some(id) = self.token_id(name) {
                eog.push(id);
            }
        }
        let mut seen = Vec::with_capacity(eog.len());
        for id in eog {
            if !seen.contains(&id) && (id as usize) < self.vocab_size() {
                seen.push(id);
            }
        }
        self.specials.eog = seen;
    }

    fn apply_tokenizer_config(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let cfg: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| tok_err(format!("{}: invalid JSON: {e}", path.display())))?;
        let token_of = |key: &str| -> Result<Option<u32>> {
            let content = match cfg.get(key) {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(serde_json::Value::String(s)) => s.as_str(),
                Some(v) => match v.get("content").and_then(|c| c.as_str()) {
                    Some(s) => s,
                    None => {
                        return Err(tok_err(format!(
                            "{}: '{key}' is neither a string nor {{\"content\": ...}}",
                            path.display()
                        )));
                    }
                },
            };
            self.token_id(content).map(Some).ok_or_else(|| {
                tok_err(format!(
                    "{}: {key} '{content}' is not in the vocabulary",
                    path.display()
                ))
            })
        };
        let bos = token_of("bos_token")?;
        let eos = token_of("eos_token")?;
        if bos.is_some() {
            self.specials.bos = bos;
        }
        if eos.is_some() {
            self.specials.eos = eos;
        }
        if let Some(add) = cfg.get("add_bos_token").and_then(|v| v.as_bool()) {
            self.specials.add_bos = add;
        }
        self.finish_specials(&[]);
        Ok(())
    }

    fn inner(&self) -> MutexGuard<'_, tokenizers::Tokenizer> {
        // A panic inside `tokenizers` cannot leave our settings half-applied (every call sets
        // the switch it needs first), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----------------------------------------------------------------------------------------
    // Encoding
    // ----------------------------------------------------------------------------------------

    /// Encodes text with special-token parsing: `<|im_start|>` etc. in the text become their
    /// ids (use this for rendered chat templates). With `add_bos`, BOS is prepended unless the
    /// result already starts with BOS (see the module docs: never two BOS).
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let mut ids = self.encode_with(text, true)?;
        if add_bos {
            if let Some(bos) = self.specials.bos {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }

    /// Encodes user text literally: special (control) token strings such as `<|im_end|>` are
    /// tokenized as ordinary text, so user input cannot inject control tokens. Non-special added
    /// tokens (`<think>`, `</think>`) are still matched, as in llama.cpp with
    /// `parse_special = false` and HF with `split_special_tokens = True`. No BOS is added.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with(text, false)
    }

    fn encode_with(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut inner = self.inner();
        inner.set_encode_special_tokens(!parse_special);
        let enc = inner
            .encode_fast(text, false)
            .map_err(|e| tok_err(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    // ----------------------------------------------------------------------------------------
    // Decoding
    // ----------------------------------------------------------------------------------------

    /// Decodes ids to text. Byte sequences that are not valid UTF-8 become U+FFFD. With
    /// `skip_special`, control tokens are left out (user-defined ones like `<think>` stay).
    /// An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut buf = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let bytes = self.piece_bytes(id).ok_or_else(|| {
                tok_err(format!(
                    "cannot decode id {id}: not in the vocabulary (size {})",
                    self.vocab_size()
                ))
            })?;
            if skip_special && self.is_control(id) {
                continue;
            }
            buf.extend_from_slice(bytes);
        }
        Ok(match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// A streaming decoder over this tokenizer.
    pub fn detokenizer(self: &Arc<Self>) -> Detokenizer {
        Detokenizer::new(self.clone())
    }

    /// The bytes id `id` decodes to; `None` if no token has that id.
    pub(crate) fn piece_bytes(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        match self.kinds.get(i) {
            None | Some(Kind::Missing) => None,
            Some(_) => Some(&self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Vocabulary
    // ----------------------------------------------------------------------------------------

    /// The raw vocabulary string of a token (`"Ġworld"`, `"<|im_end|>"`), as in the vocab file.
    pub fn token_to_piece(&self, id: u32) -> Option<String> {
        self.inner().id_to_token(id)
    }

    /// The id of a raw vocabulary string (`"<|im_end|>"`, `"Ġworld"`).
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.inner().token_to_id(piece)
    }

    /// Number of ids (largest id + 1); the model's embedding has this many rows.
    pub fn vocab_size(&self) -> usize {
        self.kinds.len()
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.specials.bos
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos_id(&self) -> Option<u32> {
        self.specials.eos
    }

    /// Every id that ends generation: EOS (`<|im_end|>`), plus `<|endoftext|>` and any
    /// EOT/EOM id the GGUF declares.
    pub fn eog_ids(&self) -> &[u32] {
        &self.specials.eog
    }

    /// Whether `id` ends generation (EOS, `<|im_end|>`, `<|endoftext|>`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.specials.eog.contains(&id)
    }

    /// Whether the model's metadata asks for BOS at the start of a prompt.
    pub fn add_bos_default(&self) -> bool {
        self.specials.add_bos
    }

    /// Whether `id` is a special (control) token such as `<|im_end|>`; `false` for
    /// `<think>`-style user-defined tokens and ordinary text.
    pub fn is_control(&self, id: u32) -> bool {
        self.kinds.get(id as usize) == Some(&Kind::Control)
    }
}

/// `Error::Tokenizer("x")` → `"x"`, for re-wrapping with more context.
fn strip_prefix(e: &Error) -> String {
    match e {
        Error::Tokenizer(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Accumulates the per-id byte table.
struct TableBuilder {
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    kinds: Vec<Kind>,
}

impl TableBuilder {
    fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        TableBuilder {
            bytes: Vec::with_capacity(n * 6),
            offsets,
            kinds: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, kind: Kind, bytes: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(bytes);
        self.close(kind)
    }

    fn push_piece(&mut self, dec: &ByteDecoder, piece: &str) -> Result<()> {
        dec.decode_piece_into(piece, &mut self.bytes);
        self.close(Kind::Normal)
    }

    fn close(&mut self, kind: Kind) -> Result<()> {
        let end = u32::try_from(self.bytes.len())
            .map_err(|_| tok_err("vocabulary text exceeds 4 GiB"))?;
        self.offsets.push(end);
        self.kinds.push(kind);
        Ok(())
    }
}
