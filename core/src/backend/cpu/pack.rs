//! Q4_0, Q4_K and Q6_K weights repacked at load in groups of [`PACK`] rows (llama.cpp's
//! `q4_0_8x8` / `q4_K_8x8` idea, in a simpler layout shared by all three). A block of one row
//! is its f16 header fields (Q4_0: `d`; Q4_K: `d`, `dmin`; Q6_K: `d`, at the block's end) and
//! 4-byte words (Q4_0: 4 quant words; Q4_K: 3 words of packed 6-bit scales and mins, then 32
//! quant words; Q6_K: 32 words of low nibbles, 16 of high bits, 4 of int8 scales). The packed
//! block of eight rows holds each header field of the eight rows side by side (16 bytes), then
//! each word of the eight rows side by side (32 bytes; Q6_K's words in the order its kernels
//! read them): row `l` is 32-bit lane `l` of every word. A kernel multiplies a quad of quant words by the matching four activation bytes broadcast to all
//! lanes and ends with row `l`'s partial sum in lane `l` — no horizontal sums — converts eight
//! scales with one instruction, unpacks eight rows' Q4_K scales with the same 32-bit mask trick
//! ggml uses for one, and loads each activation block once for eight rows. Same size as the
//! original rows: the repacked copy replaces the mapped pages it was made from (see
//! `GgufFile::release_pages`).

use crate::quant::GgmlType;

/// Rows per packed group.
pub const PACK: usize = 8;
/// Bytes of one packed Q4_0 block: eight f16 scales, then four quads of eight rows' 4 quant bytes.
pub const PACKED_BLOCK: usize = PACK * 18;
/// Bytes of one packed Q4_K block (256 values of eight rows): `d` ×8, `dmin` ×8, three words
/// of scales ×8, 32 quant words ×8.
pub const PACKED_Q4_K_BLOCK: usize = PACK * 144;
/// Where the eight rows' scale words start in a packed Q4_K block.
pub const Q4_K_SCALES: usize = 32;
/// Where the quant words start in a packed Q4_K block (word `w` of the 32 at `+ 32 w`).
pub const Q4_K_QUANTS: usize = Q4_K_SCALES + 3 * 32;
/// Bytes of one packed Q6_K block: `d` ×8, then 52 words ×8.
pub const PACKED_Q6_K_BLOCK: usize = PACK * 210;
/// Where the 4 words of int8 sub-block scales start in a packed Q6_K block. The words follow
/// in the order the kernels read them (the prefetcher then streams each block front to back):
/// scales, then per 128-value half `n` its 16 `ql` words and its 8 `qh` words.
pub const Q6_K_SCALES: usize = 16;
/// Where half `n` of a packed Q6_K block starts: `ql` word `i` of the half at `+ 32 i`, `qh`
/// word `i` at `+ 32 (16 + i)`.
pub const fn q6_k_half(n: usize) -> usize {
    Q6_K_SCALES + 32 * (4 + 24 * n)
}

/// One row's block: its size, the number of its f16 header fields and where they start (the
/// block's start or its end; the words fill the rest), and the packed slot of each word.
#[derive(Clone, Copy)]
struct Format {
    block: usize,
    fields: usize,
    head_at: usize,
    slot: fn(usize) -> usize,
}

fn same_slot(w: usize) -> usize {
    w
}

/// Q6_K's words (`ql` 0..32, `qh` 32..48, scales 48..52) in the order of [`Q6_K_SCALES`].
fn q6_k_slot(w: usize) -> usize {
    match w {
        0..32 => 4 + 24 * (w / 16) + w % 16,
        32..48 => 4 + 24 * ((w - 32) / 8) + 16 + (w - 32) % 8,
        _ => w - 48,
    }
}

fn format(ty: GgmlType) -> Option<Format> {
    match ty {
        GgmlType::Q4_0 => Some(Format {
            block: 18,
            fields: 1,
            head_at: 0,
            slot: same_slot,
        }),
        GgmlType::Q4_K => Some(Format {
            block: 144,
            fields: 2,
            head_at: 0,
            slot: same_slot,
        }),
        GgmlType::Q6_K => Some(Format {
            block: 210,
            fields: 1,
            head_at: 208,
            slot: q6_k_slot,
        }),
        _ => None,
    }
}

/// Whether weights of type `ty` have a packed layout.
pub fn has_layout(ty: GgmlType) -> bool {
    format(ty).is_some()
}

/// Whether a tensor of `rows_per_matrix` rows (ggml `ne[1]`) can be packed: groups must not
/// straddle the matrices of a 3-D expert tensor.
pub fn packable(rows_per_matrix: usize) -> bool {
    rows_per_matrix > 0 && rows_per_matrix.is_multiple_of(PACK)
}

/// Where byte `i` of row `lane`'s block lies in a packed block.
fn packed_at(f: Format, lane: usize, i: usize) -> usize {
    let head = 2 * f.fields;
    if (f.head_at..f.head_at + head).contains(&i) {
        let h = i - f.head_at;
        16 * (h / 2) + 2 * lane + h % 2
    } else {
        // The word bytes' offset with the header taken out.
        let at = if i < f.head_at { i } else { i - head };
        16 * f.fields + 32 * (f.slot)(at / 4) + 4 * lane + at % 4
    }
}

/// The (offset in a row's block, length) runs that move together: header fields and words.
fn runs(f: Format) -> impl Iterator<Item = (usize, usize)> {
    let head = 2 * f.fields;
    (0..f.fields)
        .map(move |h| (f.head_at + 2 * h, 2))
        .chain((0..f.head_at).step_by(4).map(|i| (i, 4)))
        .chain((f.head_at + head..f.block).step_by(4).map(|i| (i, 4)))
}

/// Repacks `rows` rows of type `ty` (`rows` a multiple of [`PACK`], `ty` with a layout) of
/// `row_bytes` bytes each.
pub fn pack(ty: GgmlType, src: &[u8], rows: usize, row_bytes: usize) -> Vec<u8> {
    let f = format(ty).expect("a type with a packed layout");
    debug_assert!(rows.is_multiple_of(PACK) && src.len() == rows * row_bytes);
    let nb = row_bytes / f.block;
    let mut out = vec![0u8; src.len()];
    for (g, dst) in out.chunks_exact_mut(nb * PACK * f.block).enumerate() {
        for (b, blk) in dst.chunks_exact_mut(PACK * f.block).enumerate() {
            for l in 0..PACK {
                let at = (g * PACK + l) * row_bytes + b * f.block;
                let s = &src[at..at + f.block];
                for (i, n) in runs(f) {
                    let p = packed_at(f, l, i);
                    blk[p..p + n].copy_from_slice(&s[i..i + n]);
                }
            }
        }
    }
    out
}

/// [`pack`] for Q4_0.
pub fn pack_q4_0(src: &[u8], rows: usize, row_bytes: usize) -> Vec<u8> {
    pack(GgmlType::Q4_0, src, rows, row_bytes)
}

/// Block `b` of row `lane` of a packed `group` in its type's own layout, written to `out`
/// (the type's block size).
pub fn unpack_block(ty: GgmlType, group: &[u8], b: usize, lane: usize, out: &mut [u8]) {
    let f = format(ty).expect("a type with a packed layout");
    let blk = &group[b * PACK * f.block..(b + 1) * PACK * f.block];
    for (i, n) in runs(f) {
        let p = packed_at(f, lane, i);
        out[i..i + n].copy_from_slice(&blk[p..p + n]);
    }
}

/// Block `b` of row `lane` of a packed Q4_0 `group`, in Q4_0's own 18-byte form.
pub fn unpacked_block(group: &[u8], b: usize, lane: usize) -> [u8; 18] {
    let mut out = [0u8; 18];
    unpack_block(GgmlType::Q4_0, group, b, lane, &mut out);
    out
}

/// Row `lane` of a packed `group` of type `ty`, in the type's own layout.
pub fn unpacked_row_of(ty: GgmlType, group: &[u8], lane: usize) -> Vec<u8> {
    let f = format(ty).expect("a type with a packed layout");
    let mut out = vec![0u8; group.len() / PACK];
    for (b, o) in out.chunks_exact_mut(f.block).enumerate() {
        unpack_block(ty, group, b, lane, o);
    }
    out
}

/// Row `lane` of a packed Q4_0 `group` in Q4_0's own layout.
pub fn unpacked_row(group: &[u8], lane: usize) -> Vec<u8> {
    unpacked_row_of(GgmlType::Q4_0, group, lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        for (ty, block) in [
            (GgmlType::Q4_0, 18),
            (GgmlType::Q4_K, 144),
            (GgmlType::Q6_K, 210),
        ] {
            let (rows, nb) = (16, 3);
            let rb = nb * block;
            let src: Vec<u8> = (0..rows * rb).map(|i| (i * 37 % 251) as u8).collect();
            let packed = pack(ty, &src, rows, rb);
            assert_eq!(packed.len(), src.len());
            for (g, group) in packed.chunks_exact(nb * PACK * block).enumerate() {
                for lane in 0..PACK {
                    let r = g * PACK + lane;
                    assert_eq!(
                        unpacked_row_of(ty, group, lane),
                        &src[r * rb..(r + 1) * rb],
                        "{ty} row {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_q4_0_layout_is_the_documented_one() {
        let f = format(GgmlType::Q4_0).unwrap();
        for lane in 0..PACK {
            assert_eq!(packed_at(f, lane, 1), 2 * lane + 1);
            for j in 0..16 {
                assert_eq!(
                    packed_at(f, lane, 2 + j),
                    16 + 32 * (j / 4) + 4 * lane + j % 4
                );
            }
        }
        let k = format(GgmlType::Q4_K).unwrap();
        assert_eq!(packed_at(k, 3, 2), 16 + 6);
        assert_eq!(packed_at(k, 2, 4), Q4_K_SCALES + 8);
        assert_eq!(packed_at(k, 1, 16 + 5), Q4_K_QUANTS + 32 + 4 + 1);
        let q6 = format(GgmlType::Q6_K).unwrap();
        assert_eq!(packed_at(q6, 5, 209), 2 * 5 + 1);
        assert_eq!(
            packed_at(q6, 7, 192 + 4 * 2 + 3),
            Q6_K_SCALES + 32 * 2 + 28 + 3
        );
        assert_eq!(packed_at(q6, 2, 4 * 7 + 1), q6_k_half(0) + 32 * 7 + 8 + 1);
        assert_eq!(packed_at(q6, 2, 64 + 4 * 7), q6_k_half(1) + 32 * 7 + 8);
        assert_eq!(
            packed_at(q6, 3, 128 + 4 * 3),
            q6_k_half(0) + 32 * (16 + 3) + 12
        );
        assert_eq!(
            packed_at(q6, 3, 160 + 4 * 3),
            q6_k_half(1) + 32 * (16 + 3) + 12
        );
        assert_eq!(q6_k_half(2), PACKED_Q6_K_BLOCK);
        let mut slots: Vec<usize> = (0..52).map(q6_k_slot).collect();
        slots.sort();
        assert_eq!(slots, (0..52).collect::<Vec<_>>());
    }
}
