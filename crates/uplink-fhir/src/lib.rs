//! # hearth-uplink-fhir
//!
//! FHIR R4 (4.0.1) encoding of hearth's readings for central receivers, per the HL7 Personal
//! Health Device IG 2.0.0 (`Profile::Phd`), and the reading of the receiver's answer.
//!
//! **Owns**
//! - [`encode_bundle`]: records → one `transaction` [`Bundle`]: a PhgDevice for the gateway, a
//!   PhdDevice per sensor and one Observation per reading (PhdNumericObservation,
//!   PhdCompoundNumericObservation, PhdCodedEnumerationObservation, PhdStringObservation,
//!   PhdBitsEnumerationObservation), every entry a conditional create
//!   (`ifNoneExist: identifier=<system>|<value>`);
//! - the tables that go with it: MDC → LOINC and vital-signs category ([`codes::LOINC`]),
//!   absent reasons → FHIR data-absent-reason, BITs bit numbering, device specializations;
//! - [`parse_transaction_response`]: the receiver's transaction-response → one [`EntryOutcome`]
//!   per entry (delivered / retry / rejected with the diagnostics text);
//! - [`check::phd_problems`]: our own check of the PHD elements a generic validator misses;
//! - the Norwegian profiles (`national` module, `PROFILES.md`): `Profile::Vkp` → a `transaction`
//!   of HL7 Norway VkpObservation Observations (conditional create on the record id),
//!   `Profile::Pmd` → a `batch` per `pmd-Bundle-Observation` (`PUT Observation/<record id>`,
//!   municipality tag); [`codes::NATIONAL`], [`check::vkp_problems`], [`check::pmd_problems`].
//!
//! **Must not**: do I/O of any kind (no HTTP, TLS, OAuth, files, clock — time comes in the
//! records), log personal identifiers (error messages name record ids, never patients), or know
//! the outbox. The HTTP uplink built on this crate sends [`Bundle::to_json_bytes`] and feeds the
//! reply to [`parse_transaction_response`].
//!
//! ## Identifiers (deduplication)
//! - Observation: `identifier = { system: "urn:ietf:rfc:3986", value: "urn:uuid:<RecordId>" }`,
//!   and the same `urn:uuid:` as the entry's `fullUrl`. hearth's [`hearth_model::RecordId`] is a
//!   UUID v5 of device id + MDC code + device time + sequence, so a resend carries the same
//!   identifier and the receiver's conditional create answers `200 OK` instead of storing it
//!   again. Deviation from the IG's `conditionalCreate` slice (system `…/PhdBaseObservation`,
//!   value `device-patient-type-timestamp`): hearth has no raw PHD local time, the sequence number
//!   is needed to tell records apart, a patient change in the configuration must not make a resend
//!   a new resource, and a patient id has no place in a URL query (FHIR.md).
//! - PhdDevice: `ble:<16 hex>` → SYSID EUI-64 (`urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680`,
//!   `0A-1B-…`), `z2m:0x<16 hex>` → `http://hl7.org/fhir/sid/eui-64/zigbee`, any other scheme →
//!   [`Context::device_id_system`] with the hearth device id. PhgDevice: the configured EUI-64,
//!   else the gateway's device id.
//! - `fullUrl`s of devices are UUID v5 of the device ids: the same input always gives the same
//!   Bundle, byte for byte.
//!
//! ## Invariants
//! - Encoding is deterministic: the same records and context give the same bytes. Test:
//!   `tests/golden.rs::golden_bundles_match` (and `encoding_is_deterministic`).
//! - Every entry is a conditional create keyed by a stable identifier, so a retry never creates
//!   a duplicate. Test: `tests/encode.rs::every_entry_is_a_conditional_create_on_its_identifier`.
//! - Device precision is kept (`2.00` stays `2.00`); special values are `dataAbsentReason`, never
//!   numbers; non-finite numbers are an error, never output. Tests:
//!   `json::tests::decimals_keep_their_precision`, `tests/encode.rs::absent_values_become_data_absent_reasons`,
//!   `tests/encode.rs::non_finite_numbers_are_refused`.
//! - Alarms and technical alarms are never encoded as Observations: a typed error, or a listed
//!   skip under [`Unsupported::Skip`]. Test: `tests/encode.rs::alarms_are_refused_or_skipped`.
//! - No panics on input: arbitrary readings encode or fail with a typed error, arbitrary reply
//!   bytes give outcomes or a typed error. Tests: `tests/props.rs`.
//! - Generated Bundles are valid FHIR R4 for an independent implementation (Python
//!   `fhir.resources`, R4B models) and carry the PHD elements. Tests:
//!   `tests/validate.rs::golden_files_pass_fhir_resources`, `tests/golden.rs::golden_bundles_have_the_phd_elements`.
//!
//! ## Example
//! ```
//! use hearth_model::*;
//! use hearth_uplink_fhir::*;
//! let gw = Gateway::new(DeviceId::new("hearth", "gw-1").unwrap());
//! let ctx = Context::new(gw, Some(PatientRef::Reference("Patient/123".into())));
//! let r = Reading::builder(DeviceId::new("ble", "0a1b2c0001d4e5f6").unwrap(), Mdc(150364),
//!         Value::numeric_with_decimals(36.5, 1))
//!     .unit(Ucum::new("Cel"))
//!     .device_time(Timestamp::from_unix_millis(1_741_935_909_000))
//!     .build(Timestamp::from_unix_millis(1_741_935_911_000));
//! let bundle = encode_bundle(&[Record::Reading(r)], &ctx, Profile::Phd).unwrap();
//! assert_eq!(bundle.len(), 3); // PhgDevice, PhdDevice, Observation
//! let body = String::from_utf8(bundle.to_json_bytes()).unwrap();
//! assert!(body.contains(r#""value":36.5"#));
//! ```
#![forbid(unsafe_code)]

pub mod check;
pub mod codes;
mod context;
mod encode;
mod json;
mod national;
mod response;

pub use context::{
    Context, DEFAULT_DEVICE_ID_SYSTEM, Gateway, Municipality, National, Options, Organization,
    PatientRef, PmdBundleType, Profile, Unsupported, VKP_PROFILE_BASE,
};
pub use encode::{Bundle, EntryRole, Skipped, eui64_text, if_none_exist};
pub use json::Json;
pub use response::{
    Blame, EntryOutcome, ResponseError, blame_of_status, parse_transaction_response,
};

use hearth_model::RecordId;

/// Why records could not be encoded. Per-record variants name the record (position in the input
/// and id) so the sender can dead-letter it and encode the others again; messages never contain
/// personal identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The route's profile has no encoder yet.
    #[error("FHIR profile {0:?} is not implemented yet; use profile \"phd\" for this route")]
    ProfileNotImplemented(&'static str),
    /// A safety alarm or technical alarm reached the FHIR encoder.
    #[error(
        "record {index} ({record}) is a {kind}, which hearth does not send as a FHIR Observation \
         (alarms go to SCAIP, technical alarms to management); take its category off this route \
         or set the route to skip them"
    )]
    NotAnObservation {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
        /// `safety alarm` or `technical alarm`.
        kind: &'static str,
    },
    /// A number that JSON cannot carry (NaN, ±∞) — the driver should have made it absent.
    #[error("record {index} ({record}): {what} is not a finite number; dead-letter the record")]
    NonFinite {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
        /// `value` or the component's MDC code.
        what: String,
    },
    /// A numeric value without a unit (PHD requires a UCUM code).
    #[error("record {index} ({record}): numeric value without a unit; the driver must set one")]
    MissingUnit {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
    },
    /// A compound value whose component is itself compound or enumerated.
    #[error("record {index} ({record}): component {component} must be numeric or absent")]
    BadComponent {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
        /// The component's MDC code.
        component: String,
    },
    /// A compound value without components.
    #[error("record {index} ({record}): compound value without components")]
    EmptyCompound {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
    },
    /// A BITs field whose bit numbering has no checked mapping to IEEE 11073 BITs codes.
    #[error(
        "record {index} ({record}): no checked mapping of the bits of MDC {mdc} to ASN1ToHL7 codes; \
         set the route to skip such records or add the mapping to codes::bit_mapping"
    )]
    UnmappedBits {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
        /// The field's MDC code.
        mdc: u32,
    },
    /// Neither the reading nor the route names a patient.
    #[error(
        "record {index} ({record}): no patient; configure the route's patient or the device's person"
    )]
    NoPatient {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
    },
    /// A person reference text that is neither `Patient/<id>` nor `<system>|<value>`.
    #[error(
        "a person reference is neither `Patient/<id>` nor `<system>|<value>`; fix the device's person in the configuration"
    )]
    BadPersonRef,
    /// As [`EncodeError::BadPersonRef`], for a record of the batch.
    #[error(
        "record {index} ({record}): its person reference is neither `Patient/<id>` nor \
         `<system>|<value>`; fix the device's person in the configuration"
    )]
    BadPersonRefAt {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
    },
    /// A time FHIR cannot write (year outside 1…9999).
    #[error("record {index} ({record}): its time is outside the years 1–9999")]
    TimeOutOfRange {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
    },
    /// The same record twice in one batch (two entries would share a fullUrl).
    #[error("record {index} ({record}) appears twice in the batch")]
    DuplicateRecord {
        /// Position of the second occurrence.
        index: usize,
        /// The record.
        record: RecordId,
    },
    /// A reading the route's national profile (VKP, PMD) has no mapping for: a measurement
    /// without a VKP profile, a unit the profile does not allow, a blood pressure without
    /// systolic and diastolic parts, a coded/text/bits value.
    #[error(
        "record {index} ({record}) cannot be sent in profile {profile}: {why}; take its category \
         off this route or set the route to skip such records"
    )]
    NotInProfile {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
        /// `vkp` or `pmd`.
        profile: &'static str,
        /// What is missing (codes and units only, never personal data).
        why: String,
    },
    /// VKP and PMD identify the patient by Norwegian national identity number (FNR, DNR or
    /// FHN system, 11 digits); the reading's or route's patient is something else.
    #[error(
        "record {index} ({record}): profile {profile} needs the patient as a Norwegian national \
         identity number (urn:oid:2.16.578.1.12.4.1.4.1|<11 digits>, or DNR/FHN); fix the \
         device's person or the route's patient"
    )]
    NotNationalId {
        /// Position in the input.
        index: usize,
        /// The record.
        record: RecordId,
        /// `vkp` or `pmd`.
        profile: &'static str,
    },
    /// A setting the profile requires is missing or malformed (e.g. PMD's municipality).
    #[error("profile {profile}: {what}; fix the route's configuration")]
    BadSetting {
        /// `vkp` or `pmd`.
        profile: &'static str,
        /// What is wrong.
        what: &'static str,
    },
    /// The configured gateway EUI-64 is not 16 hex digits.
    #[error("the gateway's EUI-64 {0:?} is not 16 hex digits; fix it in the configuration")]
    BadGatewayEui64(String),
}

impl EncodeError {
    /// The record the error is about (position in the input, id), when it is about one: dead-letter
    /// it and encode the rest again. `None` for errors of the route or context.
    pub fn record(&self) -> Option<(usize, RecordId)> {
        use EncodeError::*;
        match self {
            NotAnObservation { index, record, .. }
            | NonFinite { index, record, .. }
            | MissingUnit { index, record }
            | BadComponent { index, record, .. }
            | EmptyCompound { index, record }
            | UnmappedBits { index, record, .. }
            | NoPatient { index, record }
            | BadPersonRefAt { index, record }
            | TimeOutOfRange { index, record }
            | DuplicateRecord { index, record }
            | NotInProfile { index, record, .. }
            | NotNationalId { index, record, .. } => Some((*index, *record)),
            ProfileNotImplemented(_) | BadPersonRef | BadGatewayEui64(_) | BadSetting { .. } => {
                None
            }
        }
    }
}

/// Encode records as one FHIR R4 transaction Bundle.
///
/// Entries: the gateway's PhgDevice, one PhdDevice per sensor, one Observation per reading — each
/// a conditional create (`POST`, `ifNoneExist: identifier=<system>|<value>`), so a resend never
/// creates a second resource. Every `fullUrl` is a `urn:uuid:` derived from hearth ids, so the
/// same records always give the same Bundle.
///
/// Errors name the record (index and id, [`EncodeError::record`]) so the caller can dead-letter
/// that one and encode the rest again. Takes records or references to them, so a sender need
/// not copy its batch.
pub fn encode_bundle<R: std::borrow::Borrow<hearth_model::Record>>(
    records: &[R],
    ctx: &Context,
    profile: Profile,
) -> Result<Bundle, EncodeError> {
    // The profiles share the encoder's helpers (`encode.rs`); choosing between them here keeps
    // `encode` and `national` from depending on each other (issue 14).
    match profile {
        Profile::Phd => encode::encode_phd(records, ctx),
        Profile::Vkp | Profile::Pmd => national::encode(records, ctx, profile),
    }
}
