//! Saved sessions: the conversation as JSON, optionally with the backend cache in a binary
//! file next to it (`<path>.cache`), so a restored session continues without prefilling again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::Checkpoint;
use super::{Session, SessionOptions};
use crate::chat::Message;
use crate::engine::{CacheState, Engine};
use crate::error::{Error, Result};

impl Session {
    /// Saves the conversation (messages and options) as JSON at `path`; with `include_cache`
    /// also the backend cache next to it (`<path>.cache`), so a restored session continues
    /// without prefilling again. Files are written atomically.
    pub fn save(&self, path: &Path, include_cache: bool) -> Result<()> {
        // A released cache holds nothing to save: the restored session prefills.
        let state = match self.seq.allocated() {
            Some(seq) if include_cache => Some(seq.save(0)?),
            _ => None,
        };
        let include_cache = state.is_some();
        let mut saved = SavedSession {
            format: SAVE_FORMAT,
            options: self.options.clone(),
            messages: self.messages.clone(),
            cached_tokens: include_cache.then(|| self.cached.clone()),
            cache_checksum: None,
        };
        if let Some(state) = state {
            let mut blobs = vec![state.to_bytes()];
            for c in &self.checkpoints {
                blobs.push(c.state.to_bytes());
                blobs.push(c.logits.iter().flat_map(|x| x.to_le_bytes()).collect());
            }
            let cache = pack_blobs(&blobs);
            saved.cache_checksum = Some(checksum(&cache));
            write_atomic(&cache_path(path), &cache)?;
        }
        let json = serde_json::to_vec_pretty(&saved)
            .map_err(|e| Error::Internal(format!("cannot serialize session: {e}")))?;
        // Last: a crash before this rename leaves the previous JSON, which the checksum then
        // shows does not belong to the new cache file.
        write_atomic(path, &json)
    }

    /// Restores a session saved with [`Session::save`]. A missing or unusable cache file is not
    /// an error: the conversation is then prefilled again on the next turn.
    pub fn restore(engine: &Engine, path: &Path) -> Result<Session> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let saved: SavedSession = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt("saved session", e.to_string()))?;
        if saved.format != SAVE_FORMAT {
            return Err(Error::corrupt(
                "saved session",
                format!("format {} is not supported", saved.format),
            ));
        }
        let mut session = Session::new(engine, saved.options)?;
        session.messages = saved.messages;
        if let Some(tokens) = saved.cached_tokens {
            let cache = cache_path(path);
            let loaded = std::fs::read(&cache)
                .map_err(|source| Error::Io {
                    path: cache.display().to_string(),
                    source,
                })
                .and_then(|b| {
                    if saved.cache_checksum.is_some_and(|sum| sum != checksum(&b)) {
                        return Err(Error::corrupt(
                            "session cache file",
                            "it belongs to another save (interrupted or concurrent)",
                        ));
                    }
                    session.load_cache(&b, tokens)
                });
            if let Err(e) = loaded {
                log::warn!("session cache not restored ({e}); it will be rebuilt");
            }
        }
        Ok(session)
    }

    fn load_cache(&mut self, bytes: &[u8], tokens: Vec<u32>) -> Result<()> {
        let bad = |reason: &str| Error::corrupt("session cache file", reason);
        let blobs = unpack_blobs(bytes).ok_or_else(|| bad("malformed"))?;
        let (full, rest) = blobs.split_first().ok_or_else(|| bad("empty"))?;
        let full = CacheState::from_bytes(full)?;
        if full.from != 0 || full.n_past != tokens.len() {
            return Err(bad("it does not match the saved tokens"));
        }
        let mut checkpoints = Vec::new();
        for pair in rest.chunks(2) {
            let [state, logits] = pair else {
                return Err(bad("a checkpoint is incomplete"));
            };
            let state = CacheState::from_bytes(state)?;
            let logits: Vec<f32> = logits
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if state.n_past > tokens.len() || logits.len() != self.engine.config().vocab {
                return Err(bad("a checkpoint does not match the saved tokens"));
            }
            checkpoints.push(Checkpoint { state, logits });
        }
        self.seq.load(&full)?;
        self.cached = tokens;
        self.checkpoints = checkpoints;
        Ok(())
    }
}

const SAVE_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SavedSession {
    format: u32,
    options: SessionOptions,
    messages: Vec<Message>,
    cached_tokens: Option<Vec<u32>>,
    /// [`checksum`] of the cache file written with this JSON: pairs the two files, which are
    /// renamed into place one after the other (absent in older saves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_checksum: Option<u64>,
}

const CACHE_MAGIC: &[u8; 8] = b"HRTHCCH2";

/// `magic, count, (len, bytes)*, checksum` — the cache file of a saved session. The checksum
/// (of everything before it) catches a damaged file, which would otherwise load as a valid
/// but wrong cache and silently change every later answer.
fn pack_blobs(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = CACHE_MAGIC.to_vec();
    out.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn unpack_blobs(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let (body, sum) = bytes.split_last_chunk::<8>()?;
    if checksum(body) != u64::from_le_bytes(*sum) {
        return None;
    }
    let rest = body.strip_prefix(CACHE_MAGIC)?;
    let (count, mut rest) = rest.split_first_chunk::<8>()?;
    let count = u64::from_le_bytes(*count);
    let mut blobs = Vec::new();
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        if len > tail.len() {
            return None;
        }
        let (blob, tail) = tail.split_at(len);
        blobs.push(blob);
        rest = tail;
    }
    rest.is_empty().then_some(blobs)
}

/// A 64-bit checksum against accidental damage (flipped bits, truncation, stray writes), not
/// against an attacker: four independent multiply-rotate lanes over 8-byte words, so hashing a
/// cache of hundreds of MiB costs about as much as reading it.
fn checksum(bytes: &[u8]) -> u64 {
    const K: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x85EB_CA77_C2B2_AE63,
    ];
    let mut lanes = K;
    let mut words = bytes.chunks_exact(32);
    for chunk in &mut words {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(chunk[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
            *lane = (*lane ^ w).wrapping_mul(K[i]).rotate_left(29);
        }
    }
    let mut h = (bytes.len() as u64).wrapping_mul(K[0]);
    for (i, &lane) in lanes.iter().enumerate() {
        h = (h ^ lane).wrapping_mul(K[(i + 1) % 4]).rotate_left(31);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(K[1]).rotate_left(23);
    }
    h ^ (h >> 32)
}

fn cache_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".cache");
    p.into()
}

/// Writes via a temporary file and a rename, so a crash never leaves a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        // On disk before the rename: a crash leaves the old file or the new one, never a torn one.
        f.sync_all()
    };
    write().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    // The rename itself is durable once the directory is synced (a power cut after a rename
    // can otherwise bring back the old name). Best effort: not every platform can open one.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl CacheState {
    /// Serializes to little-endian bytes (for saved sessions).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        put(&mut out, self.n_past as u64);
        put(&mut out, self.from as u64);
        let mut arrays: Vec<&Vec<f32>> = self.conv.iter().collect();
        arrays.extend(self.kv.iter().flat_map(|(k, v)| [k, v]));
        put(&mut out, self.conv.len() as u64);
        put(&mut out, self.kv.len() as u64);
        for a in arrays {
            put(&mut out, a.len() as u64);
            out.extend(a.iter().flat_map(|x| x.to_le_bytes()));
        }
        out
    }

    /// Parses [`CacheState::to_bytes`] output; malformed input is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = || Error::corrupt("cache state", "truncated or malformed");
        let mut pos = 0usize;
        let u64_at = |pos: &mut usize| -> Result<u64> {
            let b = bytes.get(*pos..*pos + 8).ok_or_else(bad)?;
            *pos += 8;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| bad())?))
        };
        let n_past = u64_at(&mut pos)? as usize;
        let from = u64_at(&mut pos)? as usize;
        let n_conv = u64_at(&mut pos)? as usize;
        let n_kv = u64_at(&mut pos)? as usize;
        if n_conv > 4096 || n_kv > 4096 || from > n_past {
            return Err(bad());
        }
        let mut arrays = Vec::new();
        for _ in 0..n_conv + 2 * n_kv {
            let len = u64_at(&mut pos)? as usize;
            let end = len
                .checked_mul(4)
                .and_then(|b| b.checked_add(pos))
                .filter(|&e| e <= bytes.len())
                .ok_or_else(bad)?;
            arrays.push(
                bytes[pos..end]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<f32>>(),
            );
            pos = end;
        }
        let kv_arrays = arrays.split_off(n_conv);
        let mut it = kv_arrays.into_iter();
        let kv = (0..n_kv)
            .map(|_| (it.next().unwrap_or_default(), it.next().unwrap_or_default()))
            .collect();
        Ok(CacheState {
            n_past,
            from,
            conv: arrays,
            kv,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_blobs_round_trip_and_any_damage_is_caught() {
        let blobs = vec![
            vec![1u8; 100],
            vec![],
            (0..=255u8).cycle().take(1001).collect(),
        ];
        let packed = pack_blobs(&blobs);
        let back = unpack_blobs(&packed).expect("intact file");
        assert_eq!(back, blobs.iter().map(Vec::as_slice).collect::<Vec<_>>());
        // Every single flipped bit, a truncation and a stray appended byte are all refused.
        for i in 0..packed.len() {
            for bit in [0, 3, 7] {
                let mut bad = packed.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    unpack_blobs(&bad).is_none(),
                    "flip of bit {bit} at byte {i}"
                );
            }
        }
        assert!(unpack_blobs(&packed[..packed.len() - 1]).is_none());
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack_blobs(&longer).is_none());
    }
}
