//! Tokenizer: exact ids against HF/llama.cpp vectors from both tokenizer.json and the GGUF
//! vocabulary, prompt ids of every reference, decoding, streaming detokenization, bad inputs.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use hearth::gguf::{GgufFile, GgufWriter, MetaValue};
use hearth::{Detokenizer, Error, Tokenizer};
use serde_json::Value;

const BOS_TEXT: &str = "<|startoftext|>";
/// Two GGUFs with different chat templates and quantizations (the vocabulary is shared).
const GGUFS: [&str; 2] = ["lfm2-dense-h64-f32", "lfm2moe-h64-e16k4-q4_0"];

fn json_path() -> PathBuf {
    common::fixtures().join("hf/lfm2-dense-h64/tokenizer.json")
}

fn json_tok() -> &'static Arc<Tokenizer> {
    static T: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    T.get_or_init(|| Arc::new(Tokenizer::from_json_file(json_path()).unwrap()))
}

fn gguf_toks() -> &'static [Arc<Tokenizer>] {
    static T: OnceLock<Vec<Arc<Tokenizer>>> = OnceLock::new();
    T.get_or_init(|| {
        GGUFS
            .iter()
            .map(|name| {
                Tokenizer::from_gguf(&GgufFile::open(common::gguf_path(name)).unwrap())
                    .map(Arc::new)
            })
            .collect::<Result<_, _>>()
            .unwrap()
    })
}

/// (label, tokenizer) for every source under test.
fn all_toks() -> Vec<(String, &'static Arc<Tokenizer>)> {
    let mut v = vec![("tokenizer.json".to_string(), json_tok())];
    for (name, t) in GGUFS.iter().zip(gguf_toks()) {
        v.push((format!("{name}.gguf"), t));
    }
    v
}

struct Vector {
    text: String,
    ids: Vec<u32>,
    ids_with_bos: Vec<u32>,
    decode: String,
    pieces: Vec<String>,
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn vectors() -> &'static [Vector] {
    static V: OnceLock<Vec<Vector>> = OnceLock::new();
    V.get_or_init(|| {
        let raw = std::fs::read(common::fixtures().join("tokenizer_vectors.json")).unwrap();
        let doc: Value = serde_json::from_slice(&raw).unwrap();
        let vs = doc["vectors"].as_array().unwrap();
        assert_eq!(vs.len(), 32);
        vs.iter()
            .map(|v| {
                // HF and llama.cpp agree on every vector; check it rather than trust it.
                assert_eq!(v["hf_ids"], v["llama_ids"]);
                assert_eq!(v["hf_ids_with_bos"], v["llama_ids_with_bos"]);
                Vector {
                    text: v["text"].as_str().unwrap().to_string(),
                    ids: ids_of(&v["hf_ids"]),
                    ids_with_bos: ids_of(&v["hf_ids_with_bos"]),
                    decode: v["hf_decode"].as_str().unwrap().to_string(),
                    pieces: v["hf_pieces"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_string())
                        .collect(),
                }
            })
            .collect()
    })
}

#[test]
fn tokenizer_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tokenizer>();
    check::<Detokenizer>();
}

#[test]
fn vectors_encode_exactly_from_json_and_gguf() {
    for (label, tok) in all_toks() {
        for v in vectors() {
            let ids = tok.encode(&v.text, false).unwrap();
            assert_eq!(ids, v.ids, "{label}: {:?}", v.text);
            let with_bos = tok.encode(&v.text, true).unwrap();
            if v.text.starts_with(BOS_TEXT) {
                // HF add_special_tokens / raw llama_tokenize(add_bos) give two BOS here; we
                // deliberately never emit two (llama.cpp's chat path strips the rendered one).
                assert_eq!(&v.ids_with_bos[..2], &[1, 1], "{label}: fixture changed?");
                assert_eq!(with_bos, v.ids, "{label}: {:?}", v.text);
            } else {
                assert_eq!(with_bos, v.ids_with_bos, "{label}: {:?}", v.text);
            }
        }
    }
}

#[test]
fn vectors_decode_and_pieces_match() {
    for (label, tok) in all_toks() {
        for v in vectors() {
            assert_eq!(tok.decode(&v.ids, false).unwrap(), v.decode, "{label}");
            assert_eq!(tok.decode(&v.ids, false).unwrap(), v.text, "{label}");
            let pieces: Vec<String> = v
                .ids
                .iter()
                .map(|&id| tok.token_to_piece(id).unwrap())
                .collect();
            assert_eq!(pieces, v.pieces, "{label}: {:?}", v.text);
            for (&id, p) in v.ids.iter().zip(&v.pieces) {
                assert_eq!(tok.token_id(p), Some(id), "{label}: {p:?}");
            }
        }
    }
}

#[test]
fn special_ids_and_metadata() {
    for (label, tok) in all_toks() {
        assert_eq!(tok.vocab_size(), 2048, "{label}");
        assert_eq!(tok.bos_id(), Some(1), "{label}");
        assert_eq!(tok.eos_id(), Some(7), "{label}");
        assert_eq!(tok.eog_ids(), &[7, 2], "{label}");
        assert!(tok.is_eog(7) && tok.is_eog(2) && !tok.is_eog(1), "{label}");
        assert!(tok.add_bos_default(), "{label}");
        assert_eq!(tok.token_id("<|im_end|>"), Some(7), "{label}");
        assert_eq!(tok.token_id("<think>"), Some(2046), "{label}");
        assert_eq!(tok.token_id("no such token"), None, "{label}");
        assert!(tok.is_control(7) && tok.is_control(2045), "{label}");
        assert!(!tok.is_control(2046) && !tok.is_control(300), "{label}");
        assert_eq!(tok.token_to_piece(2048), None, "{label}");
    }
}

#[test]
fn all_fixture_ggufs_share_the_vocabulary() {
    let keys = [
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.add_bos_token",
    ];
    let first = GgufFile::open(common::gguf_path(GGUFS[0])).unwrap();
    assert_eq!(first.get_str("tokenizer.ggml.pre").unwrap(), "lfm2");
    for path in common::all_ggufs() {
        let f = GgufFile::open(&path).unwrap();
        for k in keys {
            assert_eq!(f.get(k), first.get(k), "{} {k}", path.display());
        }
    }
}

#[test]
fn reference_prompt_ids_are_reproduced() {
    let refs = common::fixtures().join("refs");
    let mut models: Vec<_> = std::fs::read_dir(&refs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    models.sort();
    assert_eq!(models.len(), 5);
    let mut n_checked = 0;
    for model in &models {
        let meta: Value = serde_json::from_slice(
            &std::fs::read(refs.join(model).join("hf_f32/meta.json")).unwrap(),
        )
        .unwrap();
        // The model's own tokenizer.json and one of its GGUFs via for_model.
        let json = Tokenizer::from_json_file(
            common::fixtures()
                .join("hf")
                .join(model)
                .join("tokenizer.json"),
        )
        .unwrap();
        let gguf = common::all_ggufs()
            .into_iter()
            .find(|p| {
                let stem = p.file_stem().unwrap().to_str().unwrap();
                stem.rsplit_once('-').unwrap().0 == model
            })
            .unwrap();
        let from_gguf = Tokenizer::for_model(&gguf).unwrap();
        for p in meta["prompts"].as_array().unwrap() {
            let text = p["text"].as_str().unwrap();
            let expected = ids_of(&p["prompt_ids"]);
            assert_eq!(expected[0], 1);
            for (label, tok) in [("json", &json), ("gguf", &from_gguf)] {
                let what = format!("{model} {} ({label})", p["name"]);
                // p0/p1: BOS added by the tokenizer; p2_chat: the template already starts
                // with BOS text, and adding BOS must not duplicate it.
                assert_eq!(
                    tok.encode(text, tok.add_bos_default()).unwrap(),
                    expected,
                    "{what}"
                );
                if p["kind"] == "chat" {
                    assert!(text.starts_with(BOS_TEXT));
                    assert_eq!(tok.encode(text, false).unwrap(), expected, "{what}");
                } else {
                    assert_eq!(tok.encode(text, false).unwrap(), expected[1..], "{what}");
                    assert_eq!(tok.encode_plain(text).unwrap(), expected[1..], "{what}");
                }
                let body = text.strip_prefix(BOS_TEXT).unwrap_or(text);
                assert_eq!(tok.decode(&expected[1..], false).unwrap(), body, "{what}");
                assert_eq!(
                    tok.decode(&expected, false).unwrap(),
                    format!("{BOS_TEXT}{body}")
                );
                n_checked += 1;
            }
        }
    }
    assert_eq!(n_checked, 5 * 3 * 2);
}

/// Streams `ids` through a detokenizer; returns (chunks, tail from finish()).
fn stream(tok: &Arc<Tokenizer>, ids: &[u32]) -> (Vec<String>, String) {
    let mut d = tok.detokenizer();
    let chunks = ids.iter().map(|&id| d.push(id)).collect();
    let tail = d.finish();
    (chunks, tail)
}

#[test]
fn detokenizer_streams_every_vector_exactly() {
    let mut split_chars = 0;
    for (label, tok) in all_toks() {
        for v in vectors() {
            let ids = &v.ids_with_bos;
            let (chunks, tail) = stream(tok, ids);
            assert_eq!(tail, "", "{label}: nothing may remain for valid input");
            let joined: String = chunks.concat();
            assert_eq!(joined, tok.decode(ids, false).unwrap(), "{label}");
            assert_eq!(joined, format!("{BOS_TEXT}{}", v.text), "{label}");
            for c in &chunks {
                assert!(!c.contains('\u{FFFD}'), "{label}: U+FFFD in {c:?}");
            }
            // A token whose bytes are not whole characters must be held back, not emitted.
            for (i, &id) in ids.iter().enumerate() {
                let alone = tok.decode(&[id], false).unwrap();
                if alone.contains('\u{FFFD}') {
                    split_chars += 1;
                    assert!(!chunks[i].contains('\u{FFFD}'));
                }
            }
        }
    }
    // The fixture vectors do split characters across tokens (emoji, Thai, Hindi...).
    assert!(split_chars > 10, "only {split_chars} split characters");
}

#[test]
fn detokenizer_buffers_partial_characters_and_flushes_invalid_bytes() {
    for (label, tok) in all_toks() {
        // The byte tokens of 🚀 (F0 9F 9A 80) one at a time: nothing until the last.
        let byte_ids: Vec<u32> = "🚀".bytes().map(|b| byte_token(tok, b)).collect();
        assert_eq!(tok.decode(&byte_ids, false).unwrap(), "🚀", "{label}");
        let mut d = Detokenizer::new(tok.clone());
        assert_eq!(d.push(byte_ids[0]), "");
        assert_eq!(d.push(byte_ids[1]), "");
        assert_eq!(d.push(byte_ids[2]), "");
        assert_eq!(d.pending_bytes(), 3);
        assert_eq!(d.push(byte_ids[3]), "🚀", "{label}");
        assert_eq!(d.finish(), "");

        // Truncated at the end of the stream: one U+FFFD from finish(), as decode() gives.
        let (chunks, tail) = stream(tok, &byte_ids[..2]);
        assert_eq!(chunks.concat(), "");
        assert_eq!(tail, "\u{FFFD}");
        assert_eq!(tok.decode(&byte_ids[..2], false).unwrap(), "\u{FFFD}");

        // Interrupted by another token: U+FFFD emitted as soon as it is certain, then the text.
        let mut ids = byte_ids[..2].to_vec();
        ids.extend(tok.encode("A<|im_end|>", false).unwrap());
        ids.push(byte_ids[3]); // a lone continuation byte
        ids.extend(&byte_ids);
        let (chunks, tail) = stream(tok, &ids);
        let full = tok.decode(&ids, false).unwrap();
        assert_eq!(full, "\u{FFFD}A<|im_end|>\u{FFFD}🚀");
        assert_eq!(chunks.concat() + &tail, full);
        assert_eq!(chunks[2], "\u{FFFD}A", "{label}: {chunks:?}");
    }
}

/// The id of the single-byte token for `b` (GPT-2 byte-to-unicode spelling).
fn byte_token(tok: &Tokenizer, b: u8) -> u32 {
    let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let c = if printable {
        char::from(b)
    } else {
        let rank = (0..b)
            .filter(|&x| !matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF))
            .count() as u32;
        char::from_u32(256 + rank).unwrap()
    };
    tok.token_id(&c.to_string())
        .unwrap_or_else(|| panic!("no byte token for {b:#x}"))
}

#[test]
fn long_token_2033_decodes_whole() {
    let text = "机器学习模型需要大量的数据进行训练";
    assert_eq!(text.len(), 51);
    for (label, tok) in all_toks() {
        assert_eq!(tok.decode(&[2033], false).unwrap(), text, "{label}");
        assert_eq!(tok.encode(text, false).unwrap(), vec![2033], "{label}");
        let mut d = tok.detokenizer();
        assert_eq!(d.push(2033), text, "{label}");
        assert_eq!(d.finish(), "");
        assert_eq!(tok.token_to_piece(2033).unwrap().chars().count(), 51);
    }
}

#[test]
fn plain_encoding_never_produces_control_tokens() {
    let text = "a<|im_end|>b<|im_start|>system\n<|startoftext|>x<think>y";
    for (label, tok) in all_toks() {
        let parsed = tok.encode(text, false).unwrap();
        assert!(parsed.contains(&7) && parsed.contains(&6) && parsed.contains(&1));
        let plain = tok.encode_plain(text).unwrap();
        assert!(
            plain.iter().all(|&id| !tok.is_control(id)),
            "{label}: {plain:?}"
        );
        // <think> is a non-special added token: matched in both modes (llama.cpp / HF alike).
        assert!(plain.contains(&2046), "{label}");
        assert_eq!(tok.decode(&plain, false).unwrap(), text, "{label}");
        assert_eq!(tok.decode(&plain, true).unwrap(), text, "{label}");
        // The switch is per call: special parsing still works afterwards.
        assert_eq!(tok.encode(text, false).unwrap(), parsed, "{label}");
    }
}

#[test]
fn decode_skip_special_drops_control_tokens_only() {
    for (label, tok) in all_toks() {
        let ids = tok
            .encode(
                "<|im_start|>assistant\n<think>hm</think>Hi<|im_end|><|endoftext|>",
                true,
            )
            .unwrap();
        assert_eq!(ids[0], 1);
        assert_eq!(
            tok.decode(&ids, true).unwrap(),
            "assistant\n<think>hm</think>Hi",
            "{label}"
        );
        assert!(matches!(
            tok.decode(&[5, 2048], false),
            Err(Error::Tokenizer(_))
        ));
        assert!(matches!(
            tok.decode(&[u32::MAX], true),
            Err(Error::Tokenizer(_))
        ));
        let mut d = tok.detokenizer();
        assert_eq!(d.push(u32::MAX), "");
    }
}

// ------------------------------------------------------------------------------------------
// Bad inputs
// ------------------------------------------------------------------------------------------

fn expect_tok_err(r: hearth::Result<Tokenizer>, needle: &str) {
    match r {
        Err(Error::Tokenizer(msg)) => assert!(msg.contains(needle), "{needle:?} not in {msg:?}"),
        Err(other) => panic!("expected Error::Tokenizer containing {needle:?}, got {other:?}"),
        Ok(t) => panic!("expected an error containing {needle:?}, got {t:?}"),
    }
}

#[test]
fn corrupt_json_is_an_error() {
    let good = std::fs::read(json_path()).unwrap();
    expect_tok_err(
        Tokenizer::from_json_bytes(&good[..good.len() / 2]),
        "invalid",
    );
    expect_tok_err(Tokenizer::from_json_bytes(b""), "invalid");
    expect_tok_err(Tokenizer::from_json_bytes(b"{}"), "invalid");
    expect_tok_err(Tokenizer::from_json_bytes(&[0xFF, 0xFE, 0x00]), "invalid");
    // Valid JSON, broken regex.
    let doc: Value = serde_json::from_slice(&good).unwrap();
    let mut bad = doc.clone();
    bad["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = Value::from("(unclosed");
    expect_tok_err(
        Tokenizer::from_json_bytes(&serde_json::to_vec(&bad).unwrap()),
        "invalid",
    );
    // A merge whose token is not in the vocabulary.
    let mut bad = doc.clone();
    bad["model"]["merges"][0][1] = Value::from("NOT_A_TOKEN");
    expect_tok_err(
        Tokenizer::from_json_bytes(&serde_json::to_vec(&bad).unwrap()),
        "invalid",
    );
    // Not byte-level BPE.
    let mut bad = doc.clone();
    bad["decoder"] = serde_json::json!({"type": "Fuse"});
    expect_tok_err(
        Tokenizer::from_json_bytes(&serde_json::to_vec(&bad).unwrap()),
        "ByteLevel",
    );
    // A vocabulary entry with an absurd id (a dense table would need 4e9 rows).
    let mut bad = doc.clone();
    bad["model"]["vocab"]["~"] = Value::from(4_000_000_000u64);
    expect_tok_err(
        Tokenizer::from_json_bytes(&serde_json::to_vec(&bad).unwrap()),
        "ids up to",
    );
    // The unmodified document still loads (the edits above are what break it).
    Tokenizer::from_json_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap();
    // Missing file.
    assert!(matches!(
        Tokenizer::from_json_file("/nonexistent/tokenizer.json"),
        Err(Error::Io { .. })
    ));
}

/// A GGUF image holding only the fixture's tokenizer metadata, with `edit` applied.
fn tokenizer_gguf(edit: impl FnOnce(&mut Vec<(String, MetaValue)>)) -> GgufFile {
    let src = GgufFile::open(common::gguf_path(GGUFS[0])).unwrap();
    let mut meta: Vec<(String, MetaValue)> = src
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .cloned()
        .collect();
    edit(&mut meta);
    let mut w = GgufWriter::new();
    for (k, v) in meta {
        w.meta(&k, v);
    }
    GgufFile::from_bytes(w.to_bytes()).unwrap()
}

fn set(meta: &mut [(String, MetaValue)], key: &str, f: impl FnOnce(&mut MetaValue)) {
    let v = &mut meta.iter_mut().find(|(k, _)| k == key).unwrap().1;
    f(v);
}

fn array_mut(v: &mut MetaValue) -> &mut Vec<MetaValue> {
    match v {
        MetaValue::Array(a) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn metadata_only_gguf_round_trips() {
    // The rewritten image is a faithful copy: same tokenizer as the fixture.
    let tok = Tokenizer::from_gguf(&tokenizer_gguf(|_| {})).unwrap();
    for v in vectors() {
        assert_eq!(tok.encode(&v.text, false).unwrap(), v.ids);
    }
}

#[test]
fn inconsistent_gguf_vocab_is_an_error() {
    let types = "tokenizer.ggml.token_type";
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, types, |v| {
                array_mut(v).pop();
            })
        })),
        "2047 entries",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, types, |v| {
                for t in array_mut(v) {
                    *t = MetaValue::String("x".into());
                }
            })
        })),
        "token_type'[0] is a string",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            m.retain(|(k, _)| k != "tokenizer.ggml.tokens")
        })),
        "no 'tokenizer.ggml.tokens'",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            m.retain(|(k, _)| k != "tokenizer.ggml.merges")
        })),
        "no 'tokenizer.ggml.merges'",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| m.retain(|(k, _)| k != types))),
        "no 'tokenizer.ggml.token_type'",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.tokens", |v| {
                for t in array_mut(v) {
                    *t = MetaValue::U32(3);
                }
            })
        })),
        "tokens'[0] is a u32",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.tokens", |v| array_mut(v).clear())
        })),
        "empty",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.merges", |v| {
                array_mut(v)[0] = MetaValue::String("à NOT_A_TOKEN".into())
            })
        })),
        "NOT_A_TOKEN",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.merges", |v| {
                array_mut(v)[3] = MetaValue::String("nospace".into())
            })
        })),
        "merge #3",
    );
    // Both halves known but their concatenation is not a token.
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.merges", |v| {
                array_mut(v)[0] = MetaValue::String("Q Z".into())
            })
        })),
        "QZ",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.model", |v| {
                *v = MetaValue::String("llama".into())
            })
        })),
        "'llama' is not supported",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.eos_token_id", |v| {
                *v = MetaValue::U32(5000)
            })
        })),
        "outside the vocabulary",
    );
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| {
            set(m, "tokenizer.ggml.add_bos_token", |v| *v = MetaValue::U8(1))
        })),
        "expected a bool",
    );
    // Not a tokenizer at all.
    expect_tok_err(
        Tokenizer::from_gguf(&tokenizer_gguf(|m| m.clear())),
        "no 'tokenizer.ggml.model'",
    );
}

#[test]
fn unknown_pre_tokenizer_falls_back_to_the_llama3_regex() {
    for pre in [Some("something-new"), None] {
        let tok = Tokenizer::from_gguf(&tokenizer_gguf(|m| match pre {
            Some(p) => set(m, "tokenizer.ggml.pre", |v| {
                *v = MetaValue::String(p.into())
            }),
            None => m.retain(|(k, _)| k != "tokenizer.ggml.pre"),
        }))
        .unwrap();
        for v in vectors() {
            assert_eq!(tok.encode(&v.text, false).unwrap(), v.ids, "{pre:?}");
        }
        // add_bos_token is present in the file, so the default does not matter here.
        assert!(tok.add_bos_default());
    }
    // Without add_bos_token: lfm2 defaults to true (llama.cpp).
    let tok = Tokenizer::from_gguf(&tokenizer_gguf(|m| {
        m.retain(|(k, _)| k != "tokenizer.ggml.add_bos_token")
    }))
    .unwrap();
    assert!(tok.add_bos_default());
    // Without BOS/EOS ids: found by name.
    let tok = Tokenizer::from_gguf(&tokenizer_gguf(|m| {
        m.retain(|(k, _)| !k.ends_with("bos_token_id") && !k.ends_with("eos_token_id"))
    }))
    .unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(7)));
}

#[test]
fn for_model_prefers_tokenizer_json_beside_the_gguf() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tokenizer_for_model");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let gguf = dir.join("model.gguf");
    std::fs::copy(common::gguf_path(GGUFS[0]), &gguf).unwrap();

    // GGUF alone.
    let tok = Tokenizer::for_model(&gguf).unwrap();
    assert_eq!(tok.encode("Hello world", true).unwrap(), [1, 1774, 1712]);

    // A broken tokenizer.json beside it is read (and reported), proving it takes precedence.
    std::fs::write(dir.join("tokenizer.json"), b"{ not json").unwrap();
    expect_tok_err(Tokenizer::for_model(&gguf), "tokenizer.json");

    // A good one: same results; BOS/EOS still from the GGUF.
    std::fs::copy(json_path(), dir.join("tokenizer.json")).unwrap();
    let tok = Tokenizer::for_model(&gguf).unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(7)));
    assert_eq!(tok.eog_ids(), &[7, 2]);
    for v in vectors() {
        assert_eq!(tok.encode(&v.text, false).unwrap(), v.ids);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_without_config_uses_post_processor_and_names() {
    let tok = Tokenizer::from_json_bytes(&std::fs::read(json_path()).unwrap()).unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(7)));
    assert!(tok.add_bos_default());
    assert_eq!(tok.eog_ids(), &[7, 2]);
}

#[test]
fn load_times() {
    let t0 = Instant::now();
    let json = Tokenizer::from_json_file(json_path()).unwrap();
    let t_json = t0.elapsed();
    let t0 = Instant::now();
    let gguf = GgufFile::open(common::gguf_path(GGUFS[0])).unwrap();
    let t_open = t0.elapsed();
    let t0 = Instant::now();
    let from_gguf = Tokenizer::from_gguf(&gguf).unwrap();
    let t_gguf = t0.elapsed();
    eprintln!(
        "tokenizer load: tokenizer.json {t_json:?}; GGUF open {t_open:?} + build {t_gguf:?} \
         (vocab {})",
        from_gguf.vocab_size()
    );
    assert_eq!(json.vocab_size(), from_gguf.vocab_size());
}

/// Load and encode cost at the real LFM2 vocabulary size (65,536 tokens, ~64k merges), on a
/// synthetic vocabulary grown by random merges. Run with `--ignored --nocapture`.
#[test]
#[ignore = "timing only"]
fn load_time_at_real_vocab_size() {
    let src = GgufFile::open(common::gguf_path(GGUFS[0])).unwrap();
    let strings = |key: &str| -> Vec<String> {
        src.get(key)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let base_tokens = strings("tokenizer.ggml.tokens");
    let base_types: Vec<i32> = src
        .get("tokenizer.ggml.token_type")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_int().unwrap() as i32)
        .collect();
    let mut merges = strings("tokenizer.ggml.merges");
    // Keep the fixture's 2034 base ids, grow to 65,536 with random merges, then the added tokens.
    let n_target = 65_536;
    let mut tokens: Vec<String> = base_tokens[..2034].to_vec();
    let mut types: Vec<i32> = base_types[..2034].to_vec();
    let mut seen: std::collections::HashSet<String> = tokens.iter().cloned().collect();
    let mut rng = common::Rng::new(7);
    let n_added = base_tokens.len() - 2034;
    while tokens.len() < n_target - n_added {
        let a = &tokens[46 + rng.below(tokens.len() - 46)];
        let b = &tokens[46 + rng.below(tokens.len() - 46)];
        let new = format!("{a}{b}");
        if new.chars().count() > 12 || seen.contains(&new) {
            continue;
        }
        merges.push(format!("{a} {b}"));
        seen.insert(new.clone());
        tokens.push(new);
        types.push(1);
    }
    tokens.extend_from_slice(&base_tokens[2034..]);
    types.extend_from_slice(&base_types[2034..]);
    let tok_values: Vec<MetaValue> = tokens
        .iter()
        .map(|t| MetaValue::String(t.clone()))
        .collect();
    let gguf = tokenizer_gguf(|m| {
        set(m, "tokenizer.ggml.tokens", |v| {
            *v = MetaValue::Array(tok_values)
        });
        set(m, "tokenizer.ggml.token_type", |v| {
            *v = MetaValue::Array(types.iter().map(|&t| MetaValue::I32(t)).collect())
        });
        set(m, "tokenizer.ggml.merges", |v| {
            *v = MetaValue::Array(
                merges
                    .iter()
                    .map(|s| MetaValue::String(s.clone()))
                    .collect(),
            )
        });
    });
    let t0 = Instant::now();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let t_gguf = t0.elapsed();

    // The same vocabulary as tokenizer.json.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(json_path()).unwrap()).unwrap();
    let n_base = tokens.len() - n_added;
    doc["model"]["vocab"] = Value::Object(
        tokens[..n_base]
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), Value::from(i)))
            .collect(),
    );
    doc["model"]["merges"] = Value::Array(
        merges
            .iter()
            .map(|m| {
                let (a, b) = m.split_once(' ').unwrap();
                serde_json::json!([a, b])
            })
            .collect(),
    );
    for t in doc["added_tokens"].as_array_mut().unwrap() {
        let id = t["id"].as_u64().unwrap() as usize;
        if id >= 2034 {
            t["id"] = Value::from(id - 2034 + n_base);
        }
    }
    let bytes = serde_json::to_vec(&doc).unwrap();
    let t0 = Instant::now();
    let json = Tokenizer::from_json_bytes(&bytes).unwrap();
    let t_json = t0.elapsed();

    let text: String = vectors()
        .iter()
        .map(|v| v.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.repeat(20);
    let t0 = Instant::now();
    let ids = tok.encode(&text, true).unwrap();
    let t_enc = t0.elapsed();
    assert_eq!(json.encode(&text, true).unwrap(), ids);
    assert_eq!(
        tok.decode(&ids, false).unwrap(),
        format!("{BOS_TEXT}{text}")
    );
    eprintln!(
        "vocab {}: GGUF build {t_gguf:?}, tokenizer.json ({} MB) {t_json:?}; encode {} bytes -> {} ids in {t_enc:?}",
        tok.vocab_size(),
        bytes.len() / 1_000_000,
        text.len(),
        ids.len()
    );
}
