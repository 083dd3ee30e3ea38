//! # hearth-driver-external
//!
//! The external-driver contract: how a vendor's own program (any language, its own process)
//! publishes readings, safety alarms and technical alarms to hearth over MQTT. The vendor-facing
//! description is `docs/drivers/external.md`; the machine-readable one is
//! `docs/drivers/external.schema.json` (JSON Schema draft 2020-12).
//!
//! ## What it owns
//! - The topics ([`parse_topic`], [`error_topic`], [`input_topic`], [`subscription`]): a driver
//!   `<driver>` (`[a-z0-9_-]{1,32}`) publishes to `<prefix>/<driver>/in` with QoS 1; hearth
//!   answers invalid messages on `<prefix>/<driver>/error` (QoS 1, not retained).
//! - The message: [`parse`] checks one payload against contract version [`CONTRACT_VERSION`]
//!   and turns it into hearth [`Record`]s, or a [`ContractError`] that names the offending
//!   element by its JSON pointer and says what to do; [`ContractError::reply_json`] is the reply
//!   for the error topic.
//! - Record identity: every record's id is derived from (driver, message id, section, index), so
//!   a driver that re-sends a message (same `id`) produces identical records, which the outbox
//!   and the receivers deduplicate.
//!
//! ## What it must not do
//! No I/O: no MQTT client, no clock (the receipt time comes in as an argument), no files, no
//! logging of payloads. The MQTT session, acknowledging after the commit, dead-lettering and
//! publishing the error reply belong to the caller (`drivers/mqtt`). It never panics on input.
//!
//! ## Mapping onto the model
//! - Device: `DeviceId` `ext:<driver>:<device.id>` (e.g. `ext:acme_bed:SN-1234`); the optional
//!   `model`, `manufacturer`, `serial`, `firmware` come back in [`Accepted::device`].
//! - Readings: `mdc` → [`Mdc`](hearth_model::Mdc); a number → `Value::Numeric` (decimals as
//!   serde_json prints the number), `{"components": […]}` → `Value::Compound`, `{"state": …}` →
//!   `Enumerated::Text`, `{"code": <mdc>}` → `Enumerated::Code`, `{"absent": <reason>}` →
//!   `Value::Absent` ([`AbsentReason::from_name`](hearth_model::AbsentReason::from_name));
//!   `unit` → `Ucum`; `time` (RFC 3339, offset required) → device time in UTC; `sequence`.
//!   The optional `name` is for people reading payloads; hearth does not store it.
//! - Alarms: `AlarmKind::from_name` (unknown snake_case names become `AlarmKind::Other`).
//! - Technical alarms: `TechnicalKind::from_name` (unknown names become `TechnicalKind::Other`),
//!   source `external:<driver>:<device id>`, category administrative (as the model fixes).
//!   Technical names in `alarms`, alarm names in `technical`, and hearth's own technical names
//!   (`disk_full`, …) are refused, so a fall never travels in the technical lane.
//! - `category` (health, welfare, administrative) applies to the message's readings and alarms;
//!   without it the source's category (`default_category`) applies. `person` → `PersonRef`.
//!
//! ## Invariants (each with its test)
//! - Re-sending a message gives identical records; another message id gives other record ids:
//!   `tests/contract.rs` `resending_a_message_gives_identical_records`,
//!   `another_message_id_gives_other_record_ids`, `ids_do_not_depend_on_receipt_time`.
//! - Every invalid message is an error naming the JSON pointer of the offending element and
//!   what to do, on one line: `tests/contract.rs` `invalid_messages_name_pointer_and_fix`,
//!   `tests/fuzz.rs` `errors_are_one_line_and_replies_are_json`.
//! - No panic on any input (bytes or JSON values): `tests/fuzz.rs`.
//! - Unknown keys are errors except under `x`: `tests/contract.rs`
//!   `invalid_messages_name_pointer_and_fix` (typos), `vendor_extensions_are_ignored`.
//! - The JSON Schema and [`parse`] agree on every corpus file: `tests/schema.rs`
//!   `schema_and_parser_agree_on_the_corpus` (needs `python3` with `jsonschema`).
//! - RFC 3339 times convert as the `time` crate converts them (leap seconds refused):
//!   `tests/fuzz.rs` `times_agree_with_the_time_crate`.
//! - The examples of `docs/drivers/external.md` are accepted and its error reply is the real
//!   one: `tests/contract.rs` `documented_examples_are_accepted`.
//! - The example driver's payloads pass [`parse`]: `tests/example_driver.rs`
//!   `the_example_driver_publishes_valid_messages`.
//!
//! ## What the schema cannot say
//! The byte limit ([`MAX_PAYLOAD_BYTES`]), the total entry limit ([`MAX_ENTRIES`]; the schema
//! limits each array to 1000), and JSON that serde_json refuses but some parsers accept (numbers
//! beyond the f64 range, lone UTF-16 surrogates, `NaN`, nesting deeper than 128).

#![forbid(unsafe_code)]

mod contract;
mod error;
mod fields;
pub use fields::{MAX_COMPONENTS, MAX_MESSAGE_ID_LEN};
mod rfc3339;
mod topic;

use hearth_model::{Category, Device, Record, Timestamp};

pub use contract::{ALARM_TYPES, RESERVED_TECHNICAL_TYPES, TECHNICAL_TYPES};
pub use error::ContractError;
pub use topic::{
    DEFAULT_PREFIX, MAX_DRIVER_ID_LEN, error_topic, input_topic, is_valid_driver_id, parse_topic,
    subscription,
};

/// The contract version this crate speaks (`"v"` of every message).
pub const CONTRACT_VERSION: u32 = 1;
/// Largest payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most entries (readings + alarms + technical alarms) in one message.
pub const MAX_ENTRIES: usize = 1000;

/// A valid message: its id, what it says about the device, and its records in message order
/// (readings, then alarms, then technical alarms).
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The driver's message id (`"id"`).
    pub message_id: String,
    /// The device facts of `"device"` (id `ext:<driver>:<device id>`).
    pub device: Device,
    /// The records, with ids derived from (driver, message id, section, index).
    pub records: Vec<Record>,
}

/// Parse and validate one message that `driver` published (the driver id from
/// [`parse_topic`]).
///
/// `received_at` is stamped on readings and alarms (it never enters an id);
/// `default_category` applies when the message names no `category`.
pub fn parse(
    driver: &str,
    payload: &[u8],
    received_at: Timestamp,
    default_category: Category,
) -> Result<Accepted, ContractError> {
    contract::parse(driver, payload, received_at, default_category)
}
