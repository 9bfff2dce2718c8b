//! Q4_0 weights repacked at load in groups of [`PACK`] rows (llama.cpp's `q4_0_8x8` idea, in a
//! simpler layout). Per 32-value block: the eight rows' f16 scales side by side (16 bytes), then
//! four 32-byte quads; quad `c` holds quant bytes `4c..4c + 4` of row 0, then of row 1, … row 7.
//! So byte lane group `l` of every quad is row `l`: a kernel multiplies a quad by the matching
//! four activation bytes broadcast to all lanes and ends with row `l`'s block sum in 32-bit lane
//! `l` — no horizontal sums — converts the eight scales with one instruction and loads each
//! activation block once for eight rows. Same size as the original rows: the repacked copy
//! replaces the mapped pages it was made from (see `GgufFile::release_pages`).

/// Rows per packed group.
pub const PACK: usize = 8;
/// Bytes of one packed block: eight f16 scales, then four quads of eight rows' 4 quant bytes.
pub const PACKED_BLOCK: usize = PACK * 2 + PACK * 16;
/// Bytes of one Q4_0 block in its own layout.
const Q4_0_BLOCK: usize = 18;

/// Whether a Q4_0 tensor of `rows_per_matrix` rows (ggml `ne[1]`) can be packed: groups must
/// not straddle the matrices of a 3-D expert tensor.
pub fn packable(rows_per_matrix: usize) -> bool {
    rows_per_matrix > 0 && rows_per_matrix.is_multiple_of(PACK)
}

/// Repacks `rows` Q4_0 rows of `row_bytes` bytes each (`rows` a multiple of [`PACK`]).
pub fn pack_q4_0(src: &[u8], rows: usize, row_bytes: usize) -> Vec<u8> {
    debug_assert!(rows.is_multiple_of(PACK) && src.len() == rows * row_bytes);
    let nb = row_bytes / Q4_0_BLOCK;
    let mut out = vec![0u8; src.len()];
    for (g, dst) in out.chunks_exact_mut(nb * PACKED_BLOCK).enumerate() {
        for (b, blk) in dst.chunks_exact_mut(PACKED_BLOCK).enumerate() {
            for l in 0..PACK {
                let at = (g * PACK + l) * row_bytes + b * Q4_0_BLOCK;
                let s = &src[at..at + Q4_0_BLOCK];
                blk[2 * l..2 * l + 2].copy_from_slice(&s[..2]);
                for (j, &q) in s[2..].iter().enumerate() {
                    blk[quant_at(l, j)] = q;
                }
            }
        }
    }
    out
}

/// Block `b` of row `lane` of a packed `group`, in Q4_0's own 18-byte form.
pub fn unpacked_block(group: &[u8], b: usize, lane: usize) -> [u8; Q4_0_BLOCK] {
    let blk = &group[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
    let mut out = [0u8; Q4_0_BLOCK];
    out[..2].copy_from_slice(&blk[2 * lane..2 * lane + 2]);
    for (j, q) in out[2..].iter_mut().enumerate() {
        *q = blk[quant_at(lane, j)];
    }
    out
}

/// Where quant byte `j` (0..16) of row `lane` lies in a packed block.
fn quant_at(lane: usize, j: usize) -> usize {
    2 * PACK + 32 * (j / 4) + 4 * lane + j % 4
}

/// Row `lane` of a packed `group` in Q4_0's own layout.
pub fn unpacked_row(group: &[u8], lane: usize) -> Vec<u8> {
    (0..group.len() / PACKED_BLOCK)
        .flat_map(|b| unpacked_block(group, b, lane))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let (rows, nb) = (16, 3);
        let rb = nb * Q4_0_BLOCK;
        let src: Vec<u8> = (0..rows * rb).map(|i| (i * 37 % 251) as u8).collect();
        let packed = pack_q4_0(&src, rows, rb);
        assert_eq!(packed.len(), src.len());
        for (g, group) in packed.chunks_exact(nb * PACKED_BLOCK).enumerate() {
            for lane in 0..PACK {
                let r = g * PACK + lane;
                assert_eq!(
                    unpacked_row(group, lane),
                    &src[r * rb..(r + 1) * rb],
                    "row {r}"
                );
            }
        }
    }
}
