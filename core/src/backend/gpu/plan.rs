//! Which kernels a model needs, from its tensor list alone (warm-up compiles exactly these).

use super::kernels::{self, Kernel};
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::GgmlType;

/// Tensors kernels read as plain f32 (norm weights, biases, conv kernels), and the MoE router,
/// whose top-k must not flip on f16 rounding, are dequantized to F32 at upload (F32 weights are
/// exact on every path).
pub(super) fn needs_dense(info: &TensorInfo) -> bool {
    info.ne.len() == 1
        || info.name.ends_with("shortconv.conv.weight")
        || info.name.ends_with("ffn_gate_inp.weight")
}

/// The kernels a forward pass of the model in `file` dispatches.
pub(super) fn kernels_for(file: &GgufFile) -> Vec<Kernel> {
    // Routing kernels only for MoE models (added with the router below).
    let moe_only = [Kernel::Route, Kernel::MoeGroup, Kernel::MoeCombine];
    let mut ks: Vec<Kernel> = Kernel::WEIGHTLESS
        .into_iter()
        .filter(|k| !moe_only.contains(k))
        .collect();
    let mut add = |k: Kernel| {
        if !ks.contains(&k) {
            ks.push(k);
        }
    };
    for t in file.tensors() {
        let name = t.name.as_str();
        if name.ends_with("ffn_gate_inp.weight") {
            // The router, dequantized at upload, is an F32 product.
            add(Kernel::Matvec(GgmlType::F32));
            add(Kernel::Matmul(GgmlType::F32));
            moe_only.into_iter().for_each(&mut add);
        }
        if needs_dense(t) || !kernels::WEIGHT_TYPES.contains(&t.ty) {
            continue;
        }
        if name.ends_with("ffn_gate_exps.weight") {
            let up = file.tensor_info(&name.replace("gate_exps", "up_exps"));
            if let Some(up) = up.filter(|u| kernels::WEIGHT_TYPES.contains(&u.ty)) {
                add(Kernel::GateUp(t.ty, up.ty));
                add(Kernel::GateUpTiled(t.ty, up.ty));
            }
        } else if name.ends_with("ffn_down_exps.weight") {
            add(Kernel::Down(t.ty));
            add(Kernel::DownTiled(t.ty));
        } else if !name.ends_with("ffn_up_exps.weight") {
            add(Kernel::Matvec(t.ty));
            add(Kernel::Matmul(t.ty));
            if name == "token_embd.weight" {
                add(Kernel::Embed(t.ty));
            }
        }
    }
    ks
}
