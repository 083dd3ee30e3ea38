//! # hearth-driver-ble
//!
//! Bluetooth LE health devices (REQUIREMENTS 001 2.4: Continua / PCHA): decoders for the GATT
//! health profiles, turning characteristic values into typed observations with IEEE 11073
//! nomenclature.
//!
//! Decoders are pure functions (`profiles::*`), dispatched by characteristic UUID in
//! [`decode`]. They never panic: malformed or truncated input is a [`DecodeError`] naming the
//! characteristic and the byte offset.
#![forbid(unsafe_code)]

pub mod backend;
pub mod bluez;
pub mod control;
pub mod decode;
pub mod driver;
pub mod profiles;
pub mod sim;

pub use decode::{
    DecodeError, DecodeErrorKind, Decoded, DeviceFacts, DeviceTime, LocalDateTime, Observation,
    Reader,
};

/// A human name for a 16-bit characteristic UUID (for error messages).
pub fn characteristic_name(uuid: u16) -> &'static str {
    match uuid {
        0x2A35 => "Blood Pressure Measurement",
        0x2A36 => "Intermediate Cuff Pressure",
        0x2A49 => "Blood Pressure Feature",
        0x2A1C => "Temperature Measurement",
        0x2A1D => "Temperature Type",
        0x2A1E => "Intermediate Temperature",
        0x2A9D => "Weight Measurement",
        0x2A9E => "Weight Scale Feature",
        0x2A9C => "Body Composition Measurement",
        0x2A9B => "Body Composition Feature",
        0x2A18 => "Glucose Measurement",
        0x2A34 => "Glucose Measurement Context",
        0x2A51 => "Glucose Feature",
        0x2A52 => "Record Access Control Point",
        0x2A5E => "PLX Spot-Check Measurement",
        0x2A5F => "PLX Continuous Measurement",
        0x2A60 => "PLX Features",
        0x2A37 => "Heart Rate Measurement",
        0x2A38 => "Body Sensor Location",
        0x2AA7 => "CGM Measurement",
        0x2AA8 => "CGM Feature",
        0x2B8B => "Live Health Observations",
        0x2BDD => "Stored Health Observations",
        0x2A23 => "System ID",
        0x2A24 => "Model Number String",
        0x2A25 => "Serial Number String",
        0x2A26 => "Firmware Revision String",
        0x2A27 => "Hardware Revision String",
        0x2A28 => "Software Revision String",
        0x2A29 => "Manufacturer Name String",
        0x2A19 => "Battery Level",
        0x2A2B => "Current Time",
        0x2A08 => "Date Time",
        _ => "unknown characteristic",
    }
}

use profiles::*;

/// Decode one characteristic value by its 16-bit UUID.
///
/// Live values decode on their own; Body Composition multi-packet measurements and segmented
/// GHS observations set [`Decoded::more_follows`] (a session joins the parts).
pub fn decode_characteristic(uuid: u16, bytes: &[u8]) -> Result<Decoded, DecodeError> {
    match uuid {
        0x2A35 => bps::measurement(bytes),
        0x2A36 => bps::intermediate_cuff_pressure(bytes),
        0x2A1C => hts::measurement(bytes),
        0x2A1E => hts::intermediate_temperature(bytes),
        0x2A9D => wss::measurement(bytes),
        0x2A9C => bcs::measurement(bytes),
        0x2A18 => gls::measurement(bytes),
        0x2A34 => gls::context(bytes),
        0x2A52 => racp::response(bytes),
        0x2A5E => plx::spot_check(bytes),
        0x2A5F => plx::continuous(bytes),
        0x2A37 => hrs::measurement(bytes),
        0x2AA7 => cgm::measurement(bytes),
        0x2B8B => ghs::live_observation(bytes),
        // A notification of 0x2BDD is one segment; a single-segment one (header 0x03 with any
        // counter) is decoded here, longer observations need a session's reassembler.
        0x2BDD => match bytes.split_first() {
            Some((header, rest)) if header & 0x03 == 0x03 => ghs::stored_observation(rest),
            _ => Err(DecodeError {
                characteristic: uuid,
                at: 0,
                kind: DecodeErrorKind::Malformed { what: "not a single-segment stored observation (segment header must have first and last set)".into() },
            }),
        },
        0x2A23 => dis::system_id(bytes),
        0x2A24..=0x2A29 => dis::string(uuid, bytes),
        0x2A19 => bas::level(bytes),
        0x2A2B => cts::current_time(bytes),
        _ => Err(DecodeError {
            characteristic: uuid,
            at: 0,
            kind: DecodeErrorKind::Unsupported,
        }),
    }
}
