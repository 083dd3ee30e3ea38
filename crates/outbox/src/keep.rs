//! What the dead-letter table keeps of a payload, and its running totals' keys: shared by the
//! dead-letter writes (`store/append.rs`), the migration that bounded old rows (`schema.rs`) and
//! the operator's tools (`dead.rs`), so that `schema` and `dead` do not import each other.

/// Raw input (`input:` rows) keeps at most this many bytes; the original length and an FNV-1a
/// hash of the whole input are kept beside it.
pub const KEEP_INPUT_BYTES: usize = 4096;

/// `meta` keys of the dead-letter table's running totals (rows, stored payload bytes).
pub(crate) const META_ROWS: &str = "dead_letter_rows";
pub(crate) const META_BYTES: &str = "dead_letter_bytes";

/// FNV-1a, 64 bits: identifies a payload in listings without showing it.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The part of a payload a dead letter of `origin` keeps: raw input only its prefix, a record
/// all of it (so that it can be requeued).
pub(crate) fn kept_payload<'a>(origin: &str, payload: &'a [u8]) -> &'a [u8] {
    if origin.starts_with("input:") && payload.len() > KEEP_INPUT_BYTES {
        &payload[..KEEP_INPUT_BYTES]
    } else {
        payload
    }
}
