//! What the adapter can do, reduced to the few decisions the kernels make.

use std::fmt;

/// Device capabilities and the kernel variants they select. Built once from the adapter's
/// features and limits (and the `HEARTH_GPU_NO_F16` / `HEARTH_GPU_NO_SUBGROUPS` switches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCaps {
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// `shader-f16` is available and used: F16 weights are handled as f16 values (half-size
    /// prefill weight tiles, f16 conversions) and KV caches hold f16 (half the memory of long
    /// contexts); accumulation always stays f32.
    pub f16: bool,
    /// Subgroup arithmetic is available and used for reductions (else workgroup memory trees).
    pub subgroups: bool,
    pub subgroup_min: u32,
    pub subgroup_max: u32,
    /// Threads per workgroup of every kernel (a power of two within the adapter's limits).
    pub workgroup_size: u32,
    /// Largest single binding / buffer used for weights and activations.
    pub max_binding: u64,
    pub max_buffer: u64,
    pub max_workgroup_storage: u32,
    pub uniform_align: u32,
    /// Whether the adapter offered the features at all (before the switches).
    pub has_f16: bool,
    pub has_subgroups: bool,
}

impl DeviceCaps {
    /// Builds the caps from what the adapter offers; `no_f16` / `no_subgroups` force fallbacks.
    pub(crate) fn from_adapter(
        info: &wgpu::AdapterInfo,
        features: wgpu::Features,
        limits: &wgpu::Limits,
        no_f16: bool,
        no_subgroups: bool,
        max_binding_override: Option<u64>,
    ) -> Self {
        let has_f16 = features.contains(wgpu::Features::SHADER_F16);
        let has_subgroups = features.contains(wgpu::Features::SUBGROUP);
        let max_inv = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        // 64 threads: one or two subgroups on every mobile GPU; a power of two for the trees.
        let mut wg = 64u32;
        while wg > max_inv.max(16) {
            wg /= 2;
        }
        let max_buffer = limits.max_buffer_size;
        let mut max_binding = limits.max_storage_buffer_binding_size.min(max_buffer);
        if let Some(m) = max_binding_override {
            max_binding = max_binding.min(m);
        }
        // Offsets inside kernels are u32 byte addresses.
        max_binding = max_binding.min(u32::MAX as u64 - 3) & !3;
        DeviceCaps {
            adapter: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
            f16: has_f16 && !no_f16,
            subgroups: has_subgroups && !no_subgroups,
            subgroup_min: info.subgroup_min_size,
            subgroup_max: info.subgroup_max_size,
            workgroup_size: wg,
            max_binding,
            max_buffer,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            uniform_align: limits.min_uniform_buffer_offset_alignment,
            has_f16,
            has_subgroups,
        }
    }
}

impl fmt::Display for DeviceCaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let onoff = |used: bool, has: bool| match (used, has) {
            (true, _) => "on",
            (false, true) => "off (disabled)",
            (false, false) => "unavailable",
        };
        writeln!(
            f,
            "adapter: {} ({}, {}, driver {})",
            self.adapter, self.backend, self.device_type, self.driver
        )?;
        writeln!(
            f,
            "shader-f16: {} (KV cache {})",
            onoff(self.f16, self.has_f16),
            if self.f16 { "f16" } else { "f32" }
        )?;
        writeln!(
            f,
            "subgroups: {} (size {}..{})",
            onoff(self.subgroups, self.has_subgroups),
            self.subgroup_min,
            self.subgroup_max
        )?;
        writeln!(f, "workgroup size: {}", self.workgroup_size)?;
        write!(
            f,
            "max binding: {} MiB, max buffer: {} MiB, workgroup memory: {} KiB",
            self.max_binding >> 20,
            self.max_buffer >> 20,
            self.max_workgroup_storage >> 10
        )
    }
}
