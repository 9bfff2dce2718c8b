//! Portability of every WGSL kernel variant without GPU hardware: each (kernel, f16?,
//! subgroups?) source is parsed and validated by naga with only the capabilities that variant
//! may assume, translated to MSL 2.4 (Metal, iOS) and SPIR-V 1.3 (Vulkan, Android), and the
//! SPIR-V is checked with `spirv-val --target-env vulkan1.1` when spirv-tools is installed.

use std::process::Command;

use hearth::backend::gpu::kernels::{Variant, all_variants, source};

/// `unpack2x16float` is core WGSL; naga tracks it as SHADER_FLOAT16_IN_FLOAT32, which wgpu grants
/// on every Vulkan, Metal and DX12 device (only some GLES drivers lack it), so it is baseline.
fn baseline() -> naga::valid::Capabilities {
    naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
}

fn caps(v: Variant) -> naga::valid::Capabilities {
    use naga::valid::Capabilities as C;
    let mut c = baseline();
    if v.f16 {
        c |= C::SHADER_FLOAT16;
    }
    if v.subgroups {
        c |= C::SUBGROUP;
    }
    c
}

fn spirv_val_available() -> bool {
    Command::new("spirv-val").arg("--version").output().is_ok()
}

#[test]
fn every_kernel_variant_validates_and_translates_to_msl_and_spirv() {
    let out_dir = std::env::temp_dir().join(format!("hearth-shaders-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let spirv_val = spirv_val_available();
    if !spirv_val {
        assert!(
            std::env::var("HEARTH_REQUIRE_SPIRV_VAL").is_err(),
            "spirv-val required but not installed"
        );
        eprintln!("SKIP spirv-val: spirv-tools not installed (naga checks still run)");
    }
    let mut n = 0;
    for wg in [64, 32] {
        for (k, v) in all_variants(wg) {
            let name = format!(
                "{}_{}_{}_wg{wg}",
                k.name(),
                if v.f16 { "f16" } else { "f32" },
                if v.subgroups { "sg" } else { "shared" }
            );
            let src = source(k, v);
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{name}: {}\n{src}", e.emit_to_string(&src)));
            let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps(v))
                .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
                .subgroup_operations(naga::valid::SubgroupOperationSet::all())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));

            let msl_opts = naga::back::msl::Options {
                lang_version: (2, 4),
                ..Default::default()
            };
            let msl_pipe = naga::back::msl::PipelineOptions {
                entry_point: Some((naga::ShaderStage::Compute, k.entry().to_string())),
                ..Default::default()
            };
            let (msl, _) = naga::back::msl::write_string(&module, &info, &msl_opts, &msl_pipe)
                .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
            assert!(msl.contains("kernel void"), "{name}: no MSL kernel");
            if v.subgroups {
                assert!(
                    msl.contains("simd_"),
                    "{name}: subgroup variant without simd ops"
                );
            }

            let spv_opts = naga::back::spv::Options {
                lang_version: (1, 3),
                use_storage_input_output_16: false,
                ..Default::default()
            };
            let spv_pipe = naga::back::spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: k.entry().to_string(),
            };
            let words = naga::back::spv::write_vec(&module, &info, &spv_opts, Some(&spv_pipe))
                .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
            let spv_path = out_dir.join(format!("{name}.spv"));
            std::fs::write(&spv_path, bytemuck_words(&words)).unwrap();
            std::fs::write(out_dir.join(format!("{name}.metal")), &msl).unwrap();
            if spirv_val {
                let o = Command::new("spirv-val")
                    .args(["--target-env", "vulkan1.1"])
                    .arg(&spv_path)
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "{name}: spirv-val: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            n += 1;
        }
    }
    eprintln!("{n} kernel variants: naga OK, MSL OK, SPIR-V OK (spirv-val: {spirv_val})");
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn fallback_variants_need_no_optional_capability() {
    // The f32 + shared-memory variants must validate with the baseline capability set: they are
    // what runs on GPUs without shader-f16 or subgroups.
    for (k, v) in all_variants(64) {
        if v.f16 || v.subgroups {
            continue;
        }
        let src = source(k, v);
        let module = naga::front::wgsl::parse_str(&src).unwrap();
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), baseline())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", k.name(), e.emit_to_string(&src)));
        assert!(!src.contains("enable f16"));
        assert!(!src.contains("subgroupAdd(v)") || v.subgroups);
    }
}

fn bytemuck_words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}
