//! Per-op dispatch planning, one module per kernel family: each kernel's parameter block (a
//! `#[repr(C)]` mirror of its WGSL `Params`, checked against the WGSL by naga reflection in
//! `tests/gpu_params.rs`) and the launches of its kernels.

/// Declares a kernel's parameter block: a `#[repr(C)]` [`bytemuck::Pod`] struct of 4-byte
/// fields, with [`super::kernels::KernelParams::FIELDS`] listing (name, offset) in order.
macro_rules! params {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident: $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }
        impl $crate::backend::gpu::kernels::KernelParams for $name {
            const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($f), std::mem::offset_of!($name, $f))),*];
        }
    };
}

pub mod attention;
pub mod elementwise;
pub mod matmul;
pub mod moe;
pub mod norm;

use super::kernels::{Kernel, KernelParams};

/// `(name, byte offset)` of each field of `kernel`'s parameter block, in order (what its WGSL
/// `Params` must declare).
pub fn params_fields(kernel: Kernel) -> &'static [(&'static str, usize)] {
    use Kernel as K;
    match kernel {
        K::Matvec(_) | K::Matmul(_) => matmul::ProductParams::FIELDS,
        K::Embed(_) => matmul::EmbedParams::FIELDS,
        K::RmsNorm | K::QkNormRope | K::KNormRopeStore => norm::NormParams::FIELDS,
        K::Attn | K::AttnMerge => attention::AttnParams::FIELDS,
        K::Add | K::Swiglu | K::Copy | K::Zero => elementwise::ElementwiseParams::FIELDS,
        K::ShortConv => elementwise::ConvParams::FIELDS,
        K::Route => moe::RouteParams::FIELDS,
        K::GateUp(..) | K::GateUpTiled(..) => moe::GateUpParams::FIELDS,
        K::Down(_) | K::DownTiled(_) => moe::DownParams::FIELDS,
        K::MoeGroup => moe::GroupParams::FIELDS,
        K::MoeCombine => moe::CombineParams::FIELDS,
    }
}

/// `(x, y)` workgroup counts covering `n` groups with at most 65535 per dimension.
fn grid(n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    (n.min(65535), n.div_ceil(65535))
}
