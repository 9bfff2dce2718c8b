//! GGUF reader: fixtures parse with the expected metadata, and hostile files fail cleanly.

mod common;

use common::Rng;
use hearth::Error;
use hearth::gguf::{GgufFile, GgufWriter, MetaValue};
use hearth::quant::GgmlType;

#[test]
fn every_fixture_parses_with_lfm2_metadata() {
    for path in common::all_ggufs() {
        let f = GgufFile::open(&path).unwrap();
        let arch = f.get_str("general.architecture").unwrap();
        assert!(arch == "lfm2" || arch == "lfm2moe", "{}", path.display());
        assert_eq!(f.version, 3);
        assert_eq!(f.get_u32(&format!("{arch}.shortconv.l_cache")).unwrap(), 3);
        let kv = f.get(&format!("{arch}.attention.head_count_kv")).unwrap();
        assert!(kv.as_array().is_some_and(|a| !a.is_empty()));
        let tokens = f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
        assert_eq!(tokens.len(), 2048);
        let (info, data) = f.tensor("token_embd.weight").unwrap();
        assert_eq!(info.ne[1], 2048);
        assert_eq!(data.len() as u64, info.n_bytes);
        // Tensors tile the data section without gaps beyond alignment padding.
        let total: u64 = f.tensors().iter().map(|t| t.n_bytes).sum();
        assert!(total <= f.file_size() - f.data_offset);
    }
}

#[test]
fn metadata_accessors_convert_and_report() {
    let f = GgufFile::open(common::gguf_path("lfm2-dense-h64-f32")).unwrap();
    assert_eq!(f.get_u32("lfm2.embedding_length").unwrap(), 64);
    assert!((f.get_f32("lfm2.rope.freq_base").unwrap() - 1e6).abs() < 1.0);
    match f.get_u32("lfm2.nope") {
        Err(Error::Metadata { key, .. }) => assert_eq!(key, "lfm2.nope"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.get_str("lfm2.embedding_length"),
        Err(Error::Metadata { .. })
    ));
}

fn small_model() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::String("lfm2".into()))
        .meta("general.alignment", MetaValue::U32(32))
        .meta(
            "nested",
            MetaValue::Array(vec![
                MetaValue::Array(vec![MetaValue::I32(1), MetaValue::I32(-2)]),
                MetaValue::Array(vec![MetaValue::I32(3)]),
            ]),
        )
        .meta(
            "names",
            MetaValue::Array(vec![
                MetaValue::String("a".into()),
                MetaValue::String("bc".into()),
            ]),
        )
        .meta("flag", MetaValue::Bool(true))
        .meta("big", MetaValue::U64(u64::MAX))
        .meta("pi", MetaValue::F64(std::f64::consts::PI));
    w.tensor_f32("a", &[4, 3], &[1.0; 12]);
    w.tensor("b", &[64, 2], GgmlType::Q8_0, vec![0u8; 2 * 2 * 34]);
    w.tensor_f32("c", &[5], &[2.0; 5]);
    w
}

#[test]
fn writer_round_trips_every_value_type() {
    let w = small_model();
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let nested = f.get("nested").unwrap().as_array().unwrap();
    assert_eq!(
        nested[0],
        MetaValue::Array(vec![MetaValue::I32(1), MetaValue::I32(-2)])
    );
    assert_eq!(f.get("flag").unwrap().as_bool(), Some(true));
    assert_eq!(f.get("big").unwrap().as_u64(), Some(u64::MAX));
    assert_eq!(f.get("big").unwrap().as_u32(), None);
    let (info, data) = f.tensor("b").unwrap();
    assert_eq!(
        (info.ty, info.n_bytes, data.len()),
        (GgmlType::Q8_0, 136, 136)
    );
    assert_eq!(f.tensor("c").unwrap().1.len(), 20);
    assert_eq!(f.tensor("c").unwrap().0.offset % 32, 0);
}

fn parse(bytes: Vec<u8>) -> Result<GgufFile, Error> {
    GgufFile::from_bytes(bytes)
}

fn expect_gguf_error(bytes: Vec<u8>, needle: &str) {
    match parse(bytes) {
        Err(Error::Gguf { reason, .. }) | Err(Error::Metadata { reason, .. }) => {
            assert!(
                reason.contains(needle),
                "'{reason}' should mention '{needle}'"
            )
        }
        other => panic!("expected an error mentioning '{needle}', got {other:?}"),
    }
}

#[test]
fn truncation_at_every_section_boundary_is_an_error() {
    let (bytes, layout) = small_model().to_bytes_with_layout();
    let mut cuts = vec![0, 3, 4, 8, 16, 24];
    cuts.extend(&layout.kv_ends);
    cuts.extend(&layout.tensor_info_starts);
    cuts.push(layout.infos_end);
    cuts.push(layout.data_offset);
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        if cut >= bytes.len() {
            continue;
        }
        let r = parse(bytes[..cut].to_vec());
        assert!(matches!(r, Err(Error::Gguf { .. })), "cut at {cut}: {r:?}");
    }
}

#[test]
fn targeted_corruptions_name_the_problem() {
    let (bytes, layout) = small_model().to_bytes_with_layout();
    // Huge tensor count.
    let mut b = bytes.clone();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_gguf_error(b, "tensor count");
    // Huge metadata count.
    let mut b = bytes.clone();
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_gguf_error(b, "metadata count");
    // Huge key length in the first record.
    let mut b = bytes.clone();
    b[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    expect_gguf_error(b, "metadata key length");
    // Bad version and magic.
    let mut b = bytes.clone();
    b[4] = 9;
    expect_gguf_error(b, "version");
    let mut b = bytes.clone();
    b[0] = b'X';
    expect_gguf_error(b, "magic");

    // Tensor-info fields: name length(8) name n_dims(4) dims(8 each) type(4) offset(8).
    let info_a = layout.tensor_info_starts[0];
    let name_len = 1;
    let dims_at = info_a + 8 + name_len + 4;
    let type_at = dims_at + 2 * 8;
    let offset_at = type_at + 4;
    let mut b = bytes.clone();
    b[offset_at..offset_at + 8].copy_from_slice(&3u64.to_le_bytes());
    expect_gguf_error(b, "alignment");
    let mut b = bytes.clone();
    b[offset_at..offset_at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    expect_gguf_error(b, "past the end");
    let mut b = bytes.clone();
    b[dims_at..dims_at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    expect_gguf_error(b, "overflows");
    let mut b = bytes.clone();
    b[type_at..type_at + 4].copy_from_slice(&77u32.to_le_bytes());
    expect_gguf_error(b, "unknown ggml type");
    // Tensor "c" moved onto tensor "a": overlap.
    let info_c = layout.tensor_info_starts[2];
    let c_offset_at = info_c + 8 + 1 + 4 + 8 + 4;
    let mut b = bytes.clone();
    b[c_offset_at..c_offset_at + 8].copy_from_slice(&0u64.to_le_bytes());
    expect_gguf_error(b, "overlaps");
    // Q8_0 row of 64 changed to 48: not a whole number of blocks.
    let info_b = layout.tensor_info_starts[1];
    let b_dims = info_b + 8 + 1 + 4;
    let mut b = bytes.clone();
    b[b_dims..b_dims + 8].copy_from_slice(&48u64.to_le_bytes());
    expect_gguf_error(b, "block size");
    // Duplicate tensor name.
    let mut b = bytes.clone();
    b[info_b + 8] = b'a';
    expect_gguf_error(b, "duplicate");
}

#[test]
fn hostile_metadata_is_rejected() {
    let mut w = GgufWriter::new();
    w.meta("general.alignment", MetaValue::U32(3));
    assert!(matches!(parse(w.to_bytes()), Err(Error::Metadata { .. })));

    let mut w = GgufWriter::new();
    w.meta("k", MetaValue::U8(1)).meta("k", MetaValue::U8(2));
    expect_gguf_error(w.to_bytes(), "duplicate metadata key");

    // Deep nesting.
    let mut v = MetaValue::U8(0);
    for _ in 0..20 {
        v = MetaValue::Array(vec![v]);
    }
    let mut w = GgufWriter::new();
    w.meta("deep", v);
    expect_gguf_error(w.to_bytes(), "nested");

    // An array claiming 2^40 strings in a tiny file.
    let mut w = GgufWriter::new();
    w.meta("arr", MetaValue::Array(vec![MetaValue::String("x".into())]));
    let mut b = w.to_bytes();
    let count_at = 24 + 8 + 3 + 4 + 4;
    b[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_gguf_error(b, "array length");
}

/// Thousands of random mutations of real fixture files: every outcome is Ok or a typed error.
#[test]
fn random_mutations_never_panic() {
    let sources = [
        common::gguf_path("lfm2-dense-h64-q4_0"),
        common::gguf_path("lfm2moe-h64-e8k2-q4_k_m"),
    ];
    let mut rng = Rng::new(42);
    let mut outcomes = [0usize; 2];
    for src in sources {
        let original = std::fs::read(&src).unwrap();
        let header_len = GgufFile::from_bytes(original.clone()).unwrap().data_offset as usize;
        for i in 0..1500 {
            let mut b = original.clone();
            match i % 5 {
                0 => b.truncate(rng.below(original.len())),
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(header_len);
                        b[at] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    // A huge u64 written at a random 8-byte window of the header.
                    let at = rng.below(header_len - 8);
                    let huge = [u64::MAX, 1 << 40, 1 << 62, i64::MAX as u64][rng.below(4)];
                    b[at..at + 8].copy_from_slice(&huge.to_le_bytes());
                }
                3 => {
                    let at = rng.below(header_len);
                    b[at] = rng.next_u64() as u8;
                    b.truncate(header_len + rng.below(original.len() - header_len));
                }
                _ => {
                    let at = rng.below(header_len - 4);
                    b[at..at + 4].copy_from_slice(&(rng.next_u64() as u32).to_le_bytes());
                }
            }
            match GgufFile::from_bytes(b) {
                Ok(_) => outcomes[0] += 1,
                Err(Error::Gguf { .. } | Error::Metadata { .. }) => outcomes[1] += 1,
                Err(e) => panic!("untyped failure: {e:?}"),
            }
        }
    }
    assert!(
        outcomes[1] > 1000,
        "mutations should mostly fail: {outcomes:?}"
    );
}

/// A tensor of a type Hearth cannot compute with (IQ4_NL has Q4_0's block geometry, so the
/// file stays valid) is listed by the reader and refused at load with its name and type.
#[test]
fn unsupported_tensor_types_are_named_at_load() {
    let mut bytes = std::fs::read(common::gguf_path("lfm2-dense-h64-q4_0")).unwrap();
    let name = b"blk.0.ffn_gate.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let type_at = at + 4 + 8 * n_dims;
    assert_eq!(
        u32::from_le_bytes(bytes[type_at..type_at + 4].try_into().unwrap()),
        2,
        "Q4_0"
    );
    bytes[type_at..type_at + 4].copy_from_slice(&20u32.to_le_bytes());
    let f = std::sync::Arc::new(GgufFile::from_bytes(bytes).unwrap());
    assert_eq!(
        f.tensor_info("blk.0.ffn_gate.weight").unwrap().ty.name(),
        "IQ4_NL"
    );
    let err = hearth::models::lfm2::Model::load(&f, hearth::backend::cpu::CpuBackend)
        .err()
        .unwrap();
    match err {
        Error::UnsupportedType { tensor, type_name } => {
            assert_eq!(
                (tensor.as_str(), type_name.as_str()),
                ("blk.0.ffn_gate.weight", "IQ4_NL")
            )
        }
        other => panic!("{other:?}"),
    }
}
