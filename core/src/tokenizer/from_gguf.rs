//! Rebuilding the tokenizer from the GGUF vocabulary, as llama.cpp reads it.

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use super::bytelevel::ByteDecoder;
use super::{Kind, Specials, TableBuilder, Tokenizer, tok_err};
use crate::error::Result;
use crate::gguf::{GgufFile, MetaValue};

/// llama.cpp's case-insensitive spelling of the Llama-3 split regex (`LLAMA_VOCAB_PRE_TYPE_LLAMA3`),
/// which `lfm2` maps to. Numbers split into runs of at most 3 digits.
pub(crate) const LLAMA3_REGEX: &str = concat!(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])",
    r"|[^\r\n\p{L}\p{N}]?\p{L}+",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);

// llama.cpp token types (`llama_token_type`).
const TYPE_CONTROL: i128 = 3;
const TYPE_USER_DEFINED: i128 = 4;

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";

fn string_array<'a>(gguf: &'a GgufFile, key: &str) -> Result<Vec<&'a str>> {
    let arr = gguf
        .get(key)
        .ok_or_else(|| tok_err(format!("GGUF has no '{key}'")))?
        .as_array()
        .ok_or_else(|| tok_err(format!("'{key}' is not an array")))?;
    arr.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().ok_or_else(|| {
                tok_err(format!(
                    "'{key}'[{i}] is a {}, expected a string",
                    v.type_name()
                ))
            })
        })
        .collect()
}

pub(super) fn build(gguf: &GgufFile) -> Result<Tokenizer> {
    let model = gguf
        .get(KEY_MODEL)
        .ok_or_else(|| tok_err(format!("GGUF has no '{KEY_MODEL}'")))?
        .as_str()
        .ok_or_else(|| tok_err(format!("'{KEY_MODEL}' is not a string")))?;
    if model != "gpt2" {
        return Err(tok_err(format!(
            "tokenizer model '{model}' is not supported (LFM2 uses byte-level BPE, 'gpt2')"
        )));
    }
    let pre = gguf.get(KEY_PRE).and_then(MetaValue::as_str);
    let known_pre = match pre {
        Some("lfm2" | "llama3" | "llama-bpe") => true,
        other => {
            log::warn!(
                "tokenizer: pre-tokenizer {other:?} is not known; using the Llama-3/LFM2 split \
                 regex with ignore_merges"
            );
            false
        }
    };

    let tokens = string_array(gguf, KEY_TOKENS)?;
    if tokens.is_empty() {
        return Err(tok_err(format!("'{KEY_TOKENS}' is empty")));
    }
    let n = tokens.len();
    if u32::try_from(n).is_err() {
        return Err(tok_err(format!("{n} tokens do not fit u32 ids")));
    }
    let types = gguf
        .get(KEY_TYPES)
        .ok_or_else(|| tok_err(format!("GGUF has no '{KEY_TYPES}'")))?
        .as_array()
        .ok_or_else(|| tok_err(format!("'{KEY_TYPES}' is not an array")))?;
    if types.len() != n {
        return Err(tok_err(format!(
            "'{KEY_TYPES}' has {} entries but '{KEY_TOKENS}' has {n}",
            types.len()
        )));
    }
    let kinds = types
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_int() {
            Some(TYPE_CONTROL) => Ok(Kind::Control),
            Some(TYPE_USER_DEFINED) => Ok(Kind::UserDefined),
            Some(_) => Ok(Kind::Normal),
            None => Err(tok_err(format!(
                "'{KEY_TYPES}'[{i}] is a {}, expected an integer",
                v.type_name()
            ))),
        })
        .collect::<Result<Vec<Kind>>>()?;

    // Vocabulary. With duplicate strings the last id wins, as in llama.cpp's token_to_id map.
    let mut vocab = Vocab::with_capacity(n);
    for (id, t) in tokens.iter().enumerate() {
        vocab.insert((*t).to_string(), id as u32);
    }
    if vocab.len() != n {
        log::warn!(
            "tokenizer: {} duplicate token strings in the GGUF vocabulary",
            n - vocab.len()
        );
    }

    let merges = string_array(gguf, KEY_MERGES)?
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            // Split at the first space after the first character (llama.cpp: find(' ', 1)).
            let split = m
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == ' ')
                .map(|(p, _)| p);
            let Some(p) = split else {
                return Err(tok_err(format!(
                    "merge #{i} {m:?} is not of the form 'a b'"
                )));
            };
            let (a, b) = (&m[..p], &m[p + 1..]);
            for part in [a, b] {
                if !vocab.contains_key(part) {
                    return Err(tok_err(format!(
                        "merge #{i} {m:?} references {part:?}, which is not in the vocabulary"
                    )));
                }
            }
            Ok((a.to_string(), b.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(true)
        .build()
        .map_err(|e| tok_err(format!("invalid BPE vocabulary/merges: {e}")))?;

    let split = Split::new(
        SplitPattern::Regex(LLAMA3_REGEX.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| tok_err(format!("split regex: {e}")))?;
    let pre_tokenizer = Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
    ]);

    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner
        .with_pre_tokenizer(Some(pre_tokenizer))
        .with_decoder(Some(ByteLevel::default()));
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| matches!(k, Kind::Control | Kind::UserDefined))
        .map(|(t, k)| AddedToken::from(*t, *k == Kind::Control).normalized(false))
        .collect();
    inner
        .add_tokens(added)
        .map_err(|e| tok_err(format!("adding special tokens: {e}")))?;

    let byte_decoder = ByteDecoder::new();
    let mut table = TableBuilder::with_capacity(n);
    for (t, &k) in tokens.iter().zip(&kinds) {
        match k {
            Kind::Normal => table.push_piece(&byte_decoder, t)?,
            _ => table.push(k, t.as_bytes())?,
        }
    }

    let lookup = |s: &str| inner.token_to_id(s);
    let specials = read_specials(gguf, n, known_pre, lookup)?;
    let extra_eog = specials.eog.clone();
    Ok(Tokenizer::from_parts(inner, table, specials, &extra_eog))
}

/// BOS/EOS/EOT/EOM ids and `add_bos_token` from the GGUF. A missing BOS/EOS id falls back to the
/// LFM2 token names; `eog` holds only the declared EOT/EOM ids. `default_add_bos` applies when
/// `add_bos_token` is absent (llama.cpp: true for the Llama-3/LFM2 pre-tokenizer).
pub(super) fn read_specials(
    gguf: &GgufFile,
    n_vocab: usize,
    default_add_bos: bool,
    lookup: impl Fn(&str) -> Option<u32>,
) -> Result<Specials> {
    let id_of = |key: &str| -> Result<Option<u32>> {
        let full = format!("tokenizer.ggml.{key}");
        match gguf.get(&full) {
            None => Ok(None),
            Some(v) => match v.as_u32() {
                Some(id) if (id as usize) < n_vocab => Ok(Some(id)),
                Some(id) => Err(tok_err(format!(
                    "'{full}' = {id} is outside the vocabulary (size {n_vocab})"
                ))),
                None => Err(tok_err(format!(
                    "'{full}' is a {}, expected an unsigned integer",
                    v.type_name()
                ))),
            },
        }
    };
    let bos = match id_of("bos_token_id")? {
        Some(id) => Some(id),
        None => lookup("<|startoftext|>"),
    };
    let eos = match id_of("eos_token_id")? {
        Some(id) => Some(id),
        None => lookup("<|im_end|>").or_else(|| lookup("<|endoftext|>")),
    };
    let eog = [id_of("eot_token_id")?, id_of("eom_token_id")?]
        .into_iter()
        .flatten()
        .collect();
    let add_bos = match gguf.get("tokenizer.ggml.add_bos_token") {
        None => default_add_bos,
        Some(v) => v.as_bool().ok_or_else(|| {
            tok_err(format!(
                "'tokenizer.ggml.add_bos_token' is a {}, expected a bool",
                v.type_name()
            ))
        })?,
    };
    if gguf
        .get("tokenizer.ggml.add_eos_token")
        .and_then(MetaValue::as_bool)
        == Some(true)
    {
        log::warn!("tokenizer: add_eos_token = true is ignored (no EOS is appended)");
    }
    Ok(Specials {
        bos,
        eos,
        eog,
        add_bos,
    })
}
