//! The host's typed kernel parameters agree with the WGSL: for every kernel variant, naga parses
//! the spliced source, and its `Params` struct has the Rust struct's field names, in the same
//! order, at the same byte offsets (a swapped or missing field fails here instead of computing
//! garbage on a GPU). Needs no adapter.

use hearth::backend::gpu::kernels::{all_variants, source};
use hearth::backend::gpu::params_fields;

/// (member name, offset) of the struct type named `Params` in `module`.
fn wgsl_params(module: &naga::Module) -> Option<Vec<(String, usize)>> {
    module.types.iter().find_map(|(_, ty)| {
        if ty.name.as_deref() != Some("Params") {
            return None;
        }
        match &ty.inner {
            naga::TypeInner::Struct { members, .. } => Some(
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                    .collect(),
            ),
            _ => None,
        }
    })
}

#[test]
fn every_wgsl_params_struct_matches_its_rust_mirror() {
    let mut n = 0;
    for wg in [64, 32] {
        for (k, v) in all_variants(wg) {
            let src = source(k, v);
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{}: {}", k.name(), e.emit_to_string(&src)));
            let wgsl =
                wgsl_params(&module).unwrap_or_else(|| panic!("{}: no `struct Params`", k.name()));
            let rust: Vec<(String, usize)> = params_fields(k)
                .iter()
                .map(|&(name, off)| (name.to_string(), off))
                .collect();
            assert_eq!(wgsl, rust, "{} (f16 {}, wg {wg})", k.name(), v.f16);
            n += 1;
        }
    }
    eprintln!("{n} kernel variants: Params match");
}

#[test]
fn parameter_blocks_are_dense_and_fit_the_uniform_slot() {
    for (k, _) in all_variants(64) {
        let fields = params_fields(k);
        assert!(!fields.is_empty(), "{}", k.name());
        for (i, &(name, off)) in fields.iter().enumerate() {
            // 4-byte fields, no padding: what the WGSL uniform layout gives u32/f32 members.
            assert_eq!(off, 4 * i, "{}.{name}", k.name());
        }
        assert!(fields.len() * 4 <= 64, "{}: over 64 bytes", k.name());
    }
}
