//! FNV-1a: the hasher of the rule index and the value hash kept in state.

use super::*;

/// FNV-1a as a [`std::hash::Hasher`].
#[derive(Debug, Clone, Copy)]
pub(super) struct FnvHasher(Fnv);

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(Fnv::new())
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.add(bytes);
    }
}

/// FNV-1a over bytes written to it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fnv(u64);

impl Fnv {
    pub(super) const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.add(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// FNV-1a of a value's JSON text (as `to_string` prints it), never 0 (0 means "none" in
/// state).
pub(super) fn value_hash(v: &Json) -> i64 {
    let mut h = Fnv::new();
    if serde_json::to_writer(&mut h, v).is_err() {
        h = Fnv::new();
        h.add(v.to_string().as_bytes());
    }
    let h = i64::from_ne_bytes(h.0.to_ne_bytes());
    if h == 0 { 1 } else { h }
}
