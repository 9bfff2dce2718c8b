// Element-wise ops over flat ranges: add, SwiGLU, copy (rows, whole tensors, KV-cache stores)
// and zero. Bindings: A, B read-only inputs, C output (unused ones get a dummy buffer).

struct Params {
    count: u32,
    a_off: u32,
    c_off: u32,
    // copy: rows of `width` values, `a_stride` / `c_stride` apart
    width: u32,
    a_stride: u32,
    c_stride: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

fn index(wid: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * 65535u) * WG + lid;
}

// C += A
@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, lid);
    if (i < p.count) {
        C[i] += A[i];
    }
}

// C = silu(A) * B
@compute @workgroup_size(WG)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, lid);
    if (i < p.count) {
        C[i] = silu(A[i]) * B[i];
    }
}

// C[c_off + r * c_stride + x] = A[a_off + r * a_stride + x] for i = r * width + x < count
@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, lid);
    if (i < p.count) {
        let r = i / p.width;
        let x = i % p.width;
        C[p.c_off + r * p.c_stride + x] = A[p.a_off + r * p.a_stride + x];
    }
}

// C = 0
@compute @workgroup_size(WG)
fn zero(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, lid);
    if (i < p.count) {
        C[p.c_off + i] = 0.0;
    }
}
