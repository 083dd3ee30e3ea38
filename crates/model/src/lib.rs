//! # hearth-model
//!
//! The typed domain values that every part of hearth speaks: [`Reading`], [`Device`], [`Alarm`],
//! [`TechnicalAlarm`], the data [`Category`] (REQUIREMENTS "Categories of data"), the priority
//! [`Lane`] and deterministic identifiers ([`RecordId`]).
//!
//! It deliberately knows no wire format and does no I/O: drivers (interface A) build these values
//! from GATT bytes or zigbee2mqtt JSON, uplinks (interface B) turn them into FHIR, HL7 v2 or SCAIP.
//! Nothing here derives `Serialize`; the outbox owns its storage encoding and each uplink its wire
//! encoding, so changing one never silently changes another.
//!
//! Where it sits: `drivers/* → model values → ingest → outbox → uplink-*` (DESIGN.md data flow).
//!
//! ## Invariants
//! - A record's identifier is a pure function of what the device said (device id, kind, device
//!   time, sequence), never of when or how often hearth received it, so a re-sent reading gets
//!   the same id (DESIGN invariant 2). Test: `ids::tests::same_inputs_give_same_id`,
//!   `ids::tests::receipt_time_does_not_change_the_id`.
//! - A value that a device marked as special (NaN, NRes, ±INF) is never a number: it is
//!   [`Value::Absent`] with a reason. Test: `value::tests::absent_is_not_numeric`.
//! - Every record maps to exactly one lane, and alarms outrank everything (DESIGN invariant 3).
//!   Test: `lane::tests::alarm_outranks_everything`.
//!
//! ## Example
//! ```
//! use hearth_model::*;
//! let device = DeviceId::new("ble", "0123456789abcdef").unwrap();
//! let r = Reading::builder(device, Mdc(150021), Value::numeric(138.0))
//!     .unit(Ucum::new("mm[Hg]"))
//!     .device_time(Timestamp::from_unix_millis(1_700_000_000_000))
//!     .sequence(7)
//!     .category(Category::Health)
//!     .build(Timestamp::from_unix_millis(1_700_000_000_500));
//! assert_eq!(r.record_kind().lane(), Lane::Measurement);
//! let again = Reading::builder(r.device.clone(), Mdc(150021), Value::numeric(138.0))
//!     .device_time(Timestamp::from_unix_millis(1_700_000_000_000))
//!     .sequence(7)
//!     .build(Timestamp::from_unix_millis(1_800_000_000_000));
//! assert_eq!(r.id, again.id);
//! ```
#![forbid(unsafe_code)]

mod alarm;
mod device;
mod error;
mod ids;
mod lane;
mod reading;
mod record;
mod time_;
mod value;

pub use alarm::{Alarm, AlarmKind, AlarmState, Severity, TechnicalAlarm, TechnicalKind};
pub use device::{Device, DeviceId, DeviceRegistry};
pub use error::ModelError;
pub use ids::{GatewayId, RecordId};
pub use lane::{Category, Lane};
pub use reading::{Mdc, PersonRef, Reading, ReadingBuilder, ReadingFlags, Ucum};
pub use record::{Record, RecordKind};
pub use time_::Timestamp;
pub use value::{AbsentReason, Component, Enumerated, Value};
