//! WGSL sources and their variants. Kernels live in `kernels/*.wgsl`, one op family per file;
//! a variant is spliced together from the shared prelude (`common.wgsl`: FT, WG, the chosen
//! reduction, the mat-mat tile for the tiled kernels), the fused dequantizers of its weight types
//! (`quant.wgsl`) and the kernel file (or one `//@ section` of it), whose `//% tile_loop` lines
//! expand to the shared mat-mat K loop.

use super::tuning::Tuning;
use crate::quant::GgmlType;

const COMMON: &str = include_str!("kernels/common.wgsl");
const QUANT: &str = include_str!("kernels/quant.wgsl");
const MATVEC: &str = include_str!("kernels/matvec.wgsl");
const MATMUL: &str = include_str!("kernels/matmul.wgsl");
const EMBED: &str = include_str!("kernels/embed.wgsl");
const NORM: &str = include_str!("kernels/norm.wgsl");
const ELEMENTWISE: &str = include_str!("kernels/elementwise.wgsl");
const CONV: &str = include_str!("kernels/conv.wgsl");
const ATTENTION: &str = include_str!("kernels/attention.wgsl");
const MOE: &str = include_str!("kernels/moe.wgsl");

/// Every weight type the mat-vec / mat-mat / embedding kernels decode: all supported types.
pub const WEIGHT_TYPES: [GgmlType; 13] = GgmlType::SUPPORTED;

/// A kernel's parameter block: a `#[repr(C)]` mirror of its WGSL `Params` struct (declared with
/// the `params!` macro in `ops`), written into the uniform arena per dispatch.
pub trait KernelParams: bytemuck::Pod {
    /// `(field name, byte offset)` in declaration order, what the WGSL `Params` must match.
    const FIELDS: &'static [(&'static str, usize)];
}

/// Feature choices and tuning constants that change the generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub f16: bool,
    pub subgroups: bool,
    pub workgroup_size: u32,
    /// Mat-mat tile rows (`TR`) and tokens (`TT`).
    pub tile_rows: u32,
    pub tile_tokens: u32,
    /// Workgroup arrays of one head (`MAX_HD`) and the router's selection (`MAX_K`).
    pub max_head_dim: u32,
    pub max_experts_used: u32,
}

impl Variant {
    pub fn new(f16: bool, subgroups: bool, t: &Tuning) -> Variant {
        Variant {
            f16,
            subgroups,
            workgroup_size: t.workgroup,
            tile_rows: t.tile_rows,
            tile_tokens: t.tile_tokens,
            max_head_dim: t.max_head_dim as u32,
            max_experts_used: t.max_experts_used as u32,
        }
    }
}

/// One compute entry point, with the weight types it decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matvec(GgmlType),
    Matmul(GgmlType),
    Embed(GgmlType),
    RmsNorm,
    QkNormRope,
    KNormRopeStore,
    Add,
    Swiglu,
    Copy,
    Zero,
    ShortConv,
    Attn,
    AttnMerge,
    Route,
    GateUp(GgmlType, GgmlType),
    Down(GgmlType),
    MoeGroup,
    GateUpTiled(GgmlType, GgmlType),
    DownTiled(GgmlType),
    MoeCombine,
}

impl Kernel {
    /// (file name, source, section) of the kernel.
    fn file(self) -> (&'static str, &'static str, Option<&'static str>) {
        match self {
            Kernel::Matvec(_) => ("matvec", MATVEC, None),
            Kernel::Matmul(_) => ("matmul", MATMUL, None),
            Kernel::Embed(_) => ("embed", EMBED, None),
            Kernel::RmsNorm | Kernel::QkNormRope => ("norm", NORM, Some("rows")),
            Kernel::KNormRopeStore => ("norm", NORM, Some("store")),
            Kernel::Add | Kernel::Swiglu | Kernel::Copy | Kernel::Zero => {
                ("elementwise", ELEMENTWISE, None)
            }
            Kernel::ShortConv => ("conv", CONV, None),
            Kernel::Attn | Kernel::AttnMerge => ("attention", ATTENTION, None),
            Kernel::Route => ("moe", MOE, Some("route")),
            Kernel::GateUp(..) => ("moe", MOE, Some("gate_up")),
            Kernel::Down(_) => ("moe", MOE, Some("down")),
            Kernel::MoeGroup => ("moe", MOE, Some("group")),
            Kernel::GateUpTiled(..) => ("moe", MOE, Some("gate_up_tiled")),
            Kernel::DownTiled(_) => ("moe", MOE, Some("down_tiled")),
            Kernel::MoeCombine => ("moe", MOE, Some("combine")),
        }
    }

    pub fn entry(self) -> &'static str {
        match self {
            Kernel::Matvec(_) => "matvec",
            Kernel::Matmul(_) => "matmul",
            Kernel::Embed(_) => "embed",
            Kernel::RmsNorm => "rms_norm",
            Kernel::QkNormRope => "qk_norm_rope",
            Kernel::KNormRopeStore => "k_norm_rope_store",
            Kernel::Add => "add",
            Kernel::Swiglu => "swiglu",
            Kernel::Copy => "copy",
            Kernel::Zero => "zero",
            Kernel::ShortConv => "short_conv",
            Kernel::Attn => "attn",
            Kernel::AttnMerge => "attn_merge",
            Kernel::Route => "route",
            Kernel::GateUp(..) => "gate_up",
            Kernel::Down(_) => "down",
            Kernel::MoeGroup => "moe_group",
            Kernel::GateUpTiled(..) => "gate_up_tiled",
            Kernel::DownTiled(_) => "down_tiled",
            Kernel::MoeCombine => "moe_combine",
        }
    }

    /// Weight bindings and their types (each gets its own dequantizer).
    fn weights(self) -> Vec<(&'static str, GgmlType)> {
        match self {
            Kernel::Matvec(t) | Kernel::Matmul(t) | Kernel::Embed(t) => vec![("W", t)],
            Kernel::GateUp(a, b) | Kernel::GateUpTiled(a, b) => vec![("A", a), ("B", b)],
            Kernel::Down(a) | Kernel::DownTiled(a) => vec![("A", a)],
            _ => vec![],
        }
    }

    /// Read-only flag of each storage binding (bindings 1..); binding 0 is the uniform block.
    pub fn storage(self) -> &'static [bool] {
        match self {
            Kernel::Matvec(_) | Kernel::Matmul(_) | Kernel::Embed(_) => &[true, true, false],
            Kernel::RmsNorm | Kernel::QkNormRope => &[true, true, false],
            Kernel::KNormRopeStore => &[true, true, false, true, false],
            Kernel::Add | Kernel::Swiglu | Kernel::Copy | Kernel::Zero => &[true, true, false],
            Kernel::ShortConv => &[true, true, false, false],
            Kernel::Attn | Kernel::AttnMerge => &[true, true, true, false, false],
            Kernel::Route => &[true, true, false, false],
            Kernel::GateUp(..) => &[true, true, true, true, false],
            Kernel::Down(_) => &[true, true, true, true, false],
            Kernel::MoeGroup => &[false],
            Kernel::GateUpTiled(..) => &[true, true, true, true, false],
            Kernel::DownTiled(_) => &[true, true, false],
            Kernel::MoeCombine => &[true, true, false],
        }
    }

    /// Shared sections spliced in front of the kernel's own source, as (source, section): from
    /// common.wgsl the weight kernels' bindings (`weight_io`), the two weight products' Params
    /// and activations (`product`) and the mat-mat tile of the tiled kernels (`tile`; its K loop
    /// `tile_loop` expands `//% tile_loop` lines); from moe.wgsl the Params both expert gate/up
    /// kernels take (`gate_up_params`), those both down kernels take (`down_params`) and the
    /// grouped prefill kernels' slot-list tile (`expert_tile`).
    fn shared_sections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kernel::Matvec(_) => &[(COMMON, "weight_io"), (COMMON, "product")],
            Kernel::Matmul(_) => &[(COMMON, "weight_io"), (COMMON, "product"), (COMMON, "tile")],
            Kernel::Embed(_) => &[(COMMON, "weight_io")],
            Kernel::GateUp(..) => &[(MOE, "gate_up_params")],
            Kernel::GateUpTiled(..) => &[
                (MOE, "gate_up_params"),
                (COMMON, "tile"),
                (MOE, "expert_tile"),
            ],
            Kernel::Down(_) => &[(MOE, "down_params")],
            Kernel::DownTiled(_) => &[(MOE, "down_params"), (COMMON, "tile"), (MOE, "expert_tile")],
            _ => &[],
        }
    }

    /// A stable name for pipeline labels and caches.
    pub fn name(self) -> String {
        let types: Vec<&str> = self.weights().iter().map(|(_, t)| t.name()).collect();
        if types.is_empty() {
            self.entry().to_string()
        } else {
            format!("{}_{}", self.entry(), types.join("_"))
        }
    }

    /// The file it comes from.
    pub fn file_name(self) -> &'static str {
        self.file().0
    }

    /// The kernels that read no weight matrix (one variant whatever the model's types).
    pub const WEIGHTLESS: [Kernel; 13] = [
        Kernel::RmsNorm,
        Kernel::QkNormRope,
        Kernel::KNormRopeStore,
        Kernel::Add,
        Kernel::Swiglu,
        Kernel::Copy,
        Kernel::Zero,
        Kernel::ShortConv,
        Kernel::Attn,
        Kernel::AttnMerge,
        Kernel::Route,
        Kernel::MoeGroup,
        Kernel::MoeCombine,
    ];

    /// Every kernel (expert gate/up only with equal types; mixed pairs use the same code).
    pub fn all() -> Vec<Kernel> {
        let mut v = Vec::new();
        for t in WEIGHT_TYPES {
            v.extend([
                Kernel::Matvec(t),
                Kernel::Matmul(t),
                Kernel::Embed(t),
                Kernel::GateUp(t, t),
                Kernel::Down(t),
                Kernel::GateUpTiled(t, t),
                Kernel::DownTiled(t),
            ]);
        }
        v.extend(Kernel::WEIGHTLESS);
        v
    }
}

/// The text before the first `//@ ` marker.
fn header(src: &str) -> &str {
    match src.find("\n//@ ") {
        Some(i) => &src[..i + 1],
        None => src,
    }
}

/// The text of section `name` (up to the next marker).
fn section<'a>(src: &'a str, name: &str) -> &'a str {
    let marker = format!("//@ {name}\n");
    let start = src
        .find(&marker)
        .unwrap_or_else(|| panic!("missing WGSL section {name}"))
        + marker.len();
    let rest = &src[start..];
    match rest.find("\n//@ ") {
        Some(i) => &rest[..i + 1],
        None => rest,
    }
}

fn quant_section(t: GgmlType) -> &'static str {
    match t {
        GgmlType::F32 => "F32",
        GgmlType::F16 => "F16",
        GgmlType::BF16 => "BF16",
        GgmlType::Q4_0 => "Q4_0",
        GgmlType::Q4_1 => "Q4_1",
        GgmlType::Q5_0 => "Q5_0",
        GgmlType::Q5_1 => "Q5_1",
        GgmlType::Q8_0 => "Q8_0",
        GgmlType::Q2_K => "Q2_K",
        GgmlType::Q3_K => "Q3_K",
        GgmlType::Q4_K => "Q4_K",
        GgmlType::Q5_K => "Q5_K",
        GgmlType::Q6_K => "Q6_K",
        GgmlType::Other { .. } => unreachable!("unsupported types are rejected at upload"),
    }
}

/// Expands each `//% tile_loop TILE:ACC ...` line with the `tile_loop` section of common.wgsl
/// (the mat-mat K loop, written once): template lines naming `ACC` are repeated for each pair,
/// with `TILE` the workgroup weight tile and `ACC` the register tile it accumulates into.
fn expand_tile_loops(body: &str) -> String {
    let mut out = String::with_capacity(body.len() * 2);
    for line in body.lines() {
        let Some(args) = line.trim_start().strip_prefix("//% tile_loop ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let pairs: Vec<(&str, &str)> = args
            .split_whitespace()
            .filter_map(|p| p.split_once(':'))
            .collect();
        for t in section(COMMON, "tile_loop").lines() {
            if t.contains("ACC") {
                for (tile, acc) in &pairs {
                    out.push_str(&t.replace("TILE", tile).replace("ACC", acc));
                    out.push('\n');
                }
            } else {
                out.push_str(t);
                out.push('\n');
            }
        }
    }
    out
}

/// The complete WGSL of `kernel` in variant `v`.
pub fn source(kernel: Kernel, v: Variant) -> String {
    let mut s = String::new();
    if v.f16 {
        s.push_str("enable f16;\n");
    }
    // FT: prefill tile element; KT: KV-cache element.
    let half = if v.f16 { "f16" } else { "f32" };
    s.push_str(&format!(
        "alias FT = {half};\nalias KT = {half};\nconst WG: u32 = {}u;\nconst TR: u32 = {}u;\n\
         const TT: u32 = {}u;\nconst MAX_HD: u32 = {}u;\nconst MAX_K: u32 = {}u;\n",
        v.workgroup_size, v.tile_rows, v.tile_tokens, v.max_head_dim, v.max_experts_used
    ));
    s.push_str(section(COMMON, "base"));
    s.push_str(section(
        COMMON,
        if v.subgroups {
            "reduce_subgroup"
        } else {
            "reduce_shared"
        },
    ));
    for &(src, name) in kernel.shared_sections() {
        s.push_str(section(src, name));
    }
    let (_, src, sec) = kernel.file();
    let mut body = header(src).to_string();
    if let Some(name) = sec {
        body.push_str(section(src, name));
    }
    s.push_str(&expand_tile_loops(&body));
    for (buf, t) in kernel.weights() {
        // Half-precision weight values only where they are exact (F16 weights): rounding
        // dequantized 4/5/6/8-bit values to f16 moves MoE top-k decisions near ties.
        let wt = if v.f16 && t == GgmlType::F16 {
            "f16"
        } else {
            "f32"
        };
        s.push_str(&format!("alias WT_{buf} = {wt};\n"));
        s.push_str(&section(QUANT, "common").replace("BUF", buf));
        s.push_str(&section(QUANT, quant_section(t)).replace("BUF", buf));
    }
    let (args, init) = if v.subgroups {
        (
            ", @builtin(subgroup_invocation_id) sg_lid: u32, @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) nsg: u32",
            "g_sg_lid = sg_lid;\n    g_sg_id = sg_id;\n    g_nsg = nsg;",
        )
    } else {
        ("", "")
    };
    s.replace("SG_ARGS", args).replace("SG_INIT", init)
}

/// Every (kernel, variant) the backend can build, for the portability test.
pub fn all_variants(workgroup_size: u32) -> Vec<(Kernel, Variant)> {
    let t = Tuning::for_workgroup(workgroup_size);
    let mut v = Vec::new();
    for k in Kernel::all() {
        for f16 in [false, true] {
            for subgroups in [false, true] {
                v.push((k, Variant::new(f16, subgroups, &t)));
            }
        }
    }
    v
}
