//! The GPT-2 byte ↔ unicode table used by byte-level BPE vocabularies.
//!
//! Every byte maps to one printable code point: bytes `!`..=`~`, `¡`..=`¬` and `®`..=`ÿ` map to
//! themselves, the other 68 bytes to U+0100.. in increasing byte order (space → `Ġ`, `\n` → `Ċ`).

/// Byte → code point.
fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + n).unwrap_or('\u{FFFD}');
            n += 1;
            c
        };
    }
    table
}

/// Maps code points back to bytes; all table entries are below U+0144.
pub(crate) struct ByteDecoder {
    byte_of: Vec<Option<u8>>,
    char_of: [char; 256],
}

impl ByteDecoder {
    pub(crate) fn new() -> Self {
        let char_of = byte_to_char_table();
        let max = char_of.iter().map(|&c| c as usize).max().unwrap_or(0);
        let mut byte_of = vec![None; max + 1];
        for (b, &c) in char_of.iter().enumerate() {
            byte_of[c as usize] = Some(b as u8);
        }
        ByteDecoder { byte_of, char_of }
    }

    /// Appends the bytes a byte-level piece stands for. A piece holding a code point outside the
    /// table (not produced by byte-level BPE) is appended as its own UTF-8 text, whole, as the
    /// `tokenizers` ByteLevel decoder does.
    pub(crate) fn decode_piece_into(&self, piece: &str, out: &mut Vec<u8>) {
        let start = out.len();
        for c in piece.chars() {
            match self.byte_of.get(c as usize).copied().flatten() {
                Some(b) => out.push(b),
                None => {
                    out.truncate(start);
                    out.extend_from_slice(piece.as_bytes());
                    return;
                }
            }
        }
    }

    /// The byte-level piece spelling of raw bytes (inverse of [`Self::decode_piece_into`]).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn encode_bytes(&self, bytes: &[u8]) -> String {
        bytes.iter().map(|&b| self.char_of[b as usize]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_a_bijection_with_known_entries() {
        let d = ByteDecoder::new();
        let all: Vec<u8> = (0..=255u8).collect();
        let s = d.encode_bytes(&all);
        assert_eq!(s.chars().count(), 256);
        let mut back = Vec::new();
        d.decode_piece_into(&s, &mut back);
        assert_eq!(back, all);
        assert_eq!(d.encode_bytes(b" \n\t!"), "ĠĊĉ!");
        assert_eq!(d.encode_bytes(&[0xAD]), "Ń");
    }

    #[test]
    fn foreign_code_points_fall_back_to_utf8() {
        let d = ByteDecoder::new();
        let mut out = Vec::new();
        d.decode_piece_into("Ġa€", &mut out);
        assert_eq!(out, "Ġa€".as_bytes());
    }
}
