//! # hearth-uplink-pcd01
//!
//! IHE PCD-01 "Communicate PCD Data" (DEC profile) for hearth's interface B, **sans-I/O**:
//! - [`encode_oru`]: a batch of readings → one HL7 v2.6 `ORU^R01^ORU_R01` ([`Message`]) with MSH
//!   (profile `IHE_PCD_001`), PID, OBR and OBX rows in the MDS.VMD.CHAN.METRIC hierarchy, MDC
//!   codes and units (with UCUM alternates), EUI-64 equipment identifiers;
//! - [`mod@escape`]: HL7 delimiter escaping of every text written;
//! - [`mllp`]: MLLP framing ([`frame`]) and an incremental [`Deframer`];
//! - [`parse_ack`]: the receiver's ACK → delivered / retry / rejected; [`parse_any_ack`] also
//!   returns the control id it answers, for senders with several messages in flight.
//!
//! Integrator documentation (segment layout, numbering, control id, ACK table): `PCD01.md`.
//!
//! ## What it must not do
//! No I/O of any kind: no sockets, TLS, files, clocks or environment (the caller passes the
//! message time in [`Context`]); the MLLP-over-TCP/TLS transport, timeouts and reconnects live in
//! the uplink that uses this crate. It knows no outbox schema and no FHIR. It never logs: health
//! values and personal identifiers stay out of logs (`Patient`'s `Debug` is redacted).
//!
//! ## Alarms
//! Alarms and technical alarms are not PCD-01 (DEC) content (IHE PCD carries alarms in PCD-04,
//! ACM): [`encode_oru`] refuses them with [`EncodeError::NotAReading`], or leaves them out with
//! [`NonReadings::Skip`] and lists them in [`Message::skipped`].
//!
//! ## Invariants
//! - A resend is recognisable: the control id (MSH-10, ≤ 20 characters) is a pure function of
//!   the set of record ids (the PCD-01 uplink sends one reading per message, so a resend is the
//!   same message whatever was claimed with it; ADR 0007). Tests:
//!   `encode::tests::control_id_is_order_independent_and_20_chars`,
//!   `tests/encode.rs` `resending_the_same_records_gives_the_same_control_id`.
//! - No raw delimiter survives in any text field, and escaping round-trips. Tests:
//!   `escape::tests::unescape_inverts_escape`, `escape::tests::no_raw_delimiter_survives`,
//!   `tests/encode.rs` `hostile_text_never_breaks_the_segment_structure`.
//! - Decimals are preserved (`Value::Numeric { decimals }`: `36.50` stays `36.50`). Test:
//!   `tests/encode.rs` `decimals_are_preserved`.
//! - Absent values are never numbers: OBX-5 empty, OBX-8 flag, OBX-11 `X`. Test: golden
//!   `blood_pressure_absent_map.hl7`.
//! - The deframer never panics, tells incomplete from malformed, and stays bounded. Tests:
//!   `tests/mllp.rs`.
//! - Every golden message validates in hl7apy strict mode for v2.6 (`tests/hl7apy.rs`).
//! - ACK: AA/CA → delivered, AE/CE → retry, AR/CR → rejected, wrong MSA-2 → error. Tests:
//!   `ack::tests::*`.
#![forbid(unsafe_code)]

pub mod ack;
mod encode;
pub mod escape;
pub mod mllp;

pub use ack::{AckCode, AckError, AckOutcome, parse_ack, parse_any_ack};
pub use encode::{
    AckRequest, AssigningAuthority, CONTROL_ID_LEN, Coded, Context, DNR_OID, EncodeError, FHN_OID,
    FNR_OID, HL7_VERSION, MESSAGE_TYPE, Message, NonReadings, Patient, ProcessingId, absent_flag,
    control_id_for, encode_oru, profile_for,
};
pub use escape::{escape, unescape};
pub use mllp::{DeframeError, Deframer, frame};
