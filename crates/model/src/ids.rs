use std::fmt;

use uuid::Uuid;

/// hearth's UUID v5 namespace for record identifiers (a random v4 UUID fixed once, forever).
const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_2a8e_7d3b_4c61_9a0e_4b8f_2d17_c3e9);

/// A deterministic record identifier: a UUID v5 of what the device said.
///
/// Built from device id + kind + device timestamp + sequence (DESIGN invariant 2), so a reading
/// that a device or a driver sends again gets the same identifier, and receivers can deduplicate
/// (FHIR conditional create, HL7 message control id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(Uuid);

impl RecordId {
    /// Derive the identifier from its parts. Parts are joined with a separator that cannot occur
    /// inside them (NUL), so `("ab","c")` and `("a","bc")` never collide.
    pub fn derive(parts: &[&str]) -> Self {
        let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                name.push(0);
            }
            name.extend_from_slice(p.as_bytes());
        }
        Self(Uuid::new_v5(&NAMESPACE, &name))
    }

    /// From the 16 raw bytes (storage).
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(b))
    }

    /// The 16 raw bytes (storage).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Parse the hyphenated text form.
    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok().map(Self)
    }

    /// `urn:uuid:…` form, as FHIR wants it for fullUrl.
    pub fn urn(&self) -> String {
        self.0.urn().to_string()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn reading(received_ms: i64) -> Reading {
        Reading::builder(
            DeviceId::new("ble", "0011223344556677").unwrap(),
            Mdc(150364),
            Value::numeric(36.6),
        )
        .device_time(Timestamp::from_unix_millis(1_000))
        .sequence(3)
        .build(Timestamp::from_unix_millis(received_ms))
    }

    #[test]
    fn same_inputs_give_same_id() {
        assert_eq!(reading(5).id, reading(5).id);
        assert_eq!(
            RecordId::derive(&["a", "b"]).to_string(),
            RecordId::derive(&["a", "b"]).to_string()
        );
    }

    #[test]
    fn receipt_time_does_not_change_the_id() {
        assert_eq!(reading(5).id, reading(99_999).id);
    }

    #[test]
    fn parts_do_not_run_together() {
        assert_ne!(
            RecordId::derive(&["ab", "c"]),
            RecordId::derive(&["a", "bc"])
        );
    }

    #[test]
    fn text_and_bytes_round_trip() {
        let id = reading(1).id;
        assert_eq!(RecordId::parse(&id.to_string()), Some(id));
        assert_eq!(RecordId::from_bytes(*id.as_bytes()), id);
        assert!(id.urn().starts_with("urn:uuid:"));
    }
}
