//! Body Composition Service (0x181B): Body Composition Measurement (0x2A9C) and Body
//! Composition Feature (0x2A9B).
//!
//! Layout (GSS "Body Composition Measurement"; SIG XML `body_composition_measurement`):
//!
//! ```text
//! flags u16 | body fat u16 (0.1 %) | [Date Time, 7] | [user u8] | [basal metabolism u16 kJ]
//!   | [muscle % u16 0.1 %] | [muscle mass u16] | [fat-free mass u16] | [soft lean mass u16]
//!   | [body water mass u16] | [impedance u16 0.1 Ω] | [weight u16] | [height u16]
//! flags: b0 units (0 kg/m, 1 lb/in), b1 time stamp, b2 user, b3 basal metabolism, b4 muscle %,
//!        b5 muscle mass, b6 fat-free mass, b7 soft lean mass, b8 body water mass, b9 impedance,
//!        b10 weight, b11 height, b12 multiple packet measurement, b13–b15 RFU (ignored)
//! masses: 0.005 kg or 0.01 lb; height 0.001 m or 0.1 in (as the Weight Scale)
//! body fat 0xFFFF = "Measurement Unsuccessful"
//! ```
//!
//! (The SIG XML labels "Soft Lean Mass - Pounds" with unit kilogram and "Height - Inches" as
//! "meters with a resolution of 0.1"; both are copy errors — the GSS gives pounds / inches.)
//!
//! Observations (codes from mdc-codes.md): body fat 188748 MDC_BODY_FAT `%`; basal metabolism
//! 188768 MDC_BASAL_METABOLISM `kJ` (one nomenclature source only); fat-free mass 188756;
//! soft lean mass 188760; body water mass 188764 (`kg` / `[lb_av]`); impedance 188780
//! MDC_BODY_ELECTRICAL_IMPEDANCE `Ohm` (one source only); weight 188736 and height 188740 as the
//! Weight Scale. Muscle percentage and muscle mass are parsed (see [`BodyComposition`]) but
//! **not emitted**: their codes (188772 / 188776) come from one header only and the Philips GHS
//! code list assigns 188772 to something else (MDC_COMM_STATUS).
//!
//! Body fat 0xFFFF becomes an absent value (reason error); the other fields are still decoded
//! as the flags announce them (the flags define the layout). Masses other than body fat have no
//! special values in the GSS and are decoded as numbers.
//!
//! Multiple-packet measurements: a server whose measurement does not fit one indication splits
//! it in two; each packet carries flags and body fat and announces only its own fields, and the
//! first packet has flag b12 set. (The BCS 1.0 prose on this could not be consulted; this is how
//! the Realtek BCS server splits and the Omron collector joins.) Implementations differ on whether the second packet also
//! sets b12 (Realtek's BCS server sets it on both; Omron's collector joins the next packet
//! whatever its b12), and a BCS value never needs more than two packets (32 octets at most,
//! 20 per packet at the default ATT MTU). [`measurement`] decodes one packet and reports
//! `more_follows` = b12; [`BcsAssembler`] joins exactly two packets.

use hearth_model::{AbsentReason, Value};

use crate::decode::{DecodeError, Decoded, LocalDateTime, Observation, Reader, fixed};
use crate::profiles::wss::{self, Resolution};

/// Body Composition service.
pub const SERVICE: u16 = 0x181B;
/// Body Composition Measurement (Indicate).
pub const MEASUREMENT: u16 = 0x2A9C;
/// Body Composition Feature (Read).
pub const FEATURE: u16 = 0x2A9B;

/// MDC_BODY_FAT (percent).
pub const MDC_BODY_FAT: u32 = 188_748;
/// MDC_MASS_BODY_FAT_FREE.
pub const MDC_MASS_BODY_FAT_FREE: u32 = 188_756;
/// MDC_MASS_BODY_SOFT_LEAN.
pub const MDC_MASS_BODY_SOFT_LEAN: u32 = 188_760;
/// MDC_BODY_WATER (mass).
pub const MDC_BODY_WATER: u32 = 188_764;
/// MDC_BASAL_METABOLISM (single-source code).
pub const MDC_BASAL_METABOLISM: u32 = 188_768;
/// MDC_BODY_ELECTRICAL_IMPEDANCE (single-source code).
pub const MDC_BODY_ELECTRICAL_IMPEDANCE: u32 = 188_780;

/// The raw body fat value meaning "Measurement Unsuccessful".
pub const MEASUREMENT_UNSUCCESSFUL: u16 = 0xFFFF;

const FLAG_IMPERIAL: u16 = 1 << 0;
const FLAG_TIME: u16 = 1 << 1;
const FLAG_USER: u16 = 1 << 2;
const FLAG_BASAL: u16 = 1 << 3;
const FLAG_MUSCLE_PERCENT: u16 = 1 << 4;
const FLAG_MUSCLE_MASS: u16 = 1 << 5;
const FLAG_FAT_FREE: u16 = 1 << 6;
const FLAG_SOFT_LEAN: u16 = 1 << 7;
const FLAG_WATER: u16 = 1 << 8;
const FLAG_IMPEDANCE: u16 = 1 << 9;
const FLAG_WEIGHT: u16 = 1 << 10;
const FLAG_HEIGHT: u16 = 1 << 11;
const FLAG_MULTIPLE_PACKET: u16 = 1 << 12;
const UNKNOWN_USER: u8 = 0xFF;

/// One Body Composition Measurement packet, field by field (values already in their units).
#[derive(Debug, Clone, PartialEq)]
pub struct BodyComposition {
    /// Flag b0: pounds and inches instead of kilograms and metres.
    pub imperial: bool,
    /// Body fat in % (0.1 resolution); absent (error) when the measurement was unsuccessful.
    pub body_fat: Value,
    /// Time stamp.
    pub time: Option<LocalDateTime>,
    /// User index (0xFF unknown → `None`).
    pub user: Option<u8>,
    /// Basal metabolism in kJ.
    pub basal_metabolism: Option<Value>,
    /// Muscle percentage in % (not emitted as an observation, see the module doc).
    pub muscle_percentage: Option<Value>,
    /// Muscle mass (not emitted as an observation, see the module doc).
    pub muscle_mass: Option<Value>,
    /// Fat-free mass.
    pub fat_free_mass: Option<Value>,
    /// Soft lean mass.
    pub soft_lean_mass: Option<Value>,
    /// Body water mass.
    pub body_water_mass: Option<Value>,
    /// Impedance in Ω (0.1 resolution).
    pub impedance: Option<Value>,
    /// Weight.
    pub weight: Option<Value>,
    /// Height.
    pub height: Option<Value>,
    /// Flag b12: part of a multiple-packet measurement.
    pub multiple_packet: bool,
}

fn body_mass(raw: u16, imperial: bool) -> Value {
    if imperial {
        fixed(i64::from(raw), 1, 2)
    } else {
        fixed(i64::from(raw), 5, 3)
    }
}

fn announced_len(flags: u16) -> usize {
    let mut n = 2;
    if flags & FLAG_TIME != 0 {
        n += 7;
    }
    if flags & FLAG_USER != 0 {
        n += 1;
    }
    for f in [
        FLAG_BASAL,
        FLAG_MUSCLE_PERCENT,
        FLAG_MUSCLE_MASS,
        FLAG_FAT_FREE,
        FLAG_SOFT_LEAN,
        FLAG_WATER,
        FLAG_IMPEDANCE,
        FLAG_WEIGHT,
        FLAG_HEIGHT,
    ] {
        if flags & f != 0 {
            n += 2;
        }
    }
    n
}

/// Decode one Body Composition Measurement packet (0x2A9C) into its fields.
pub fn parse_measurement(bytes: &[u8]) -> Result<BodyComposition, DecodeError> {
    let mut r = Reader::new(MEASUREMENT, bytes);
    let flags = r.u16()?;
    r.need(announced_len(flags))?;
    let imperial = flags & FLAG_IMPERIAL != 0;
    let fat_raw = r.u16()?;
    let body_fat = if fat_raw == MEASUREMENT_UNSUCCESSFUL {
        Value::Absent(AbsentReason::Error)
    } else {
        fixed(i64::from(fat_raw), 1, 1)
    };
    let time = if flags & FLAG_TIME != 0 {
        Some(r.date_time()?)
    } else {
        None
    };
    let user = if flags & FLAG_USER != 0 {
        let u = r.u8()?;
        (u != UNKNOWN_USER).then_some(u)
    } else {
        None
    };
    let mut field =
        |flag: u16, convert: &dyn Fn(u16) -> Value| -> Result<Option<Value>, DecodeError> {
            if flags & flag != 0 {
                Ok(Some(convert(r.u16()?)))
            } else {
                Ok(None)
            }
        };
    let mass = |raw: u16| body_mass(raw, imperial);
    let basal_metabolism = field(FLAG_BASAL, &|raw| fixed(i64::from(raw), 1, 0))?;
    let muscle_percentage = field(FLAG_MUSCLE_PERCENT, &|raw| fixed(i64::from(raw), 1, 1))?;
    let muscle_mass = field(FLAG_MUSCLE_MASS, &mass)?;
    let fat_free_mass = field(FLAG_FAT_FREE, &mass)?;
    let soft_lean_mass = field(FLAG_SOFT_LEAN, &mass)?;
    let body_water_mass = field(FLAG_WATER, &mass)?;
    let impedance = field(FLAG_IMPEDANCE, &|raw| fixed(i64::from(raw), 1, 1))?;
    let weight = field(FLAG_WEIGHT, &mass)?;
    let height = field(FLAG_HEIGHT, &|raw| wss::height_value(raw, imperial))?;
    r.finish()?;
    Ok(BodyComposition {
        imperial,
        body_fat,
        time,
        user,
        basal_metabolism,
        muscle_percentage,
        muscle_mass,
        fat_free_mass,
        soft_lean_mass,
        body_water_mass,
        impedance,
        weight,
        height,
        multiple_packet: flags & FLAG_MULTIPLE_PACKET != 0,
    })
}

/// The observations of a (complete or partial) body composition measurement.
pub fn observations(bc: &BodyComposition) -> Vec<Observation> {
    let (mass_unit, height_unit) = wss::units(bc.imperial);
    let mut out = vec![Observation::new(
        MDC_BODY_FAT,
        bc.body_fat.clone(),
        Some("%"),
    )];
    let optional = [
        (MDC_BASAL_METABOLISM, &bc.basal_metabolism, "kJ"),
        (MDC_MASS_BODY_FAT_FREE, &bc.fat_free_mass, mass_unit),
        (MDC_MASS_BODY_SOFT_LEAN, &bc.soft_lean_mass, mass_unit),
        (MDC_BODY_WATER, &bc.body_water_mass, mass_unit),
        (MDC_BODY_ELECTRICAL_IMPEDANCE, &bc.impedance, "Ohm"),
        (wss::MDC_MASS_BODY_ACTUAL, &bc.weight, mass_unit),
        (wss::MDC_LEN_BODY_ACTUAL, &bc.height, height_unit),
    ];
    for (mdc, value, unit) in optional {
        if let Some(v) = value {
            out.push(Observation::new(mdc, v.clone(), Some(unit)));
        }
    }
    wss::stamp(&mut out, bc.time, bc.user);
    out
}

/// Decode one Body Composition Measurement packet (0x2A9C). `more_follows` is flag b12: the
/// session should feed the packets to a [`BcsAssembler`] instead.
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let bc = parse_measurement(bytes)?;
    Ok(Decoded {
        observations: observations(&bc),
        more_follows: bc.multiple_packet,
        ..Decoded::default()
    })
}

/// Joins the two packets of a multiple-packet Body Composition Measurement.
///
/// A packet with flag b12 set while nothing is pending starts a measurement; the next packet
/// (b12 set or not) completes it. A packet without b12 while nothing is pending is a complete
/// measurement by itself. Fields of the two packets are combined; body fat, time stamp and
/// user are taken from the first packet that has them. A failed packet discards the pending
/// half, and so does a packet that repeats one of the pending half's measurement fields (it
/// starts a new measurement; the lost second half cannot be recovered). Call
/// [`BcsAssembler::reset`] on disconnect.
#[derive(Debug, Clone, Default)]
pub struct BcsAssembler {
    pending: Option<BodyComposition>,
}

impl BcsAssembler {
    /// An assembler with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a first packet waits for its second.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Drop a pending first packet (disconnect, timeout).
    pub fn reset(&mut self) {
        self.pending = None;
    }

    /// Feed one packet; returns the complete measurement when there is one.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Decoded>, DecodeError> {
        let packet = match parse_measurement(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.pending = None;
                return Err(e);
            }
        };
        // A "second" packet that repeats a measurement field of the pending first packet is
        // the start of a new measurement: the pending half lost its partner and is dropped.
        let pending = self
            .pending
            .take()
            .filter(|first| !overlaps(first, &packet));
        let complete = match pending {
            None if packet.multiple_packet => {
                self.pending = Some(packet);
                return Ok(None);
            }
            None => packet,
            Some(first) => {
                if first.imperial != packet.imperial {
                    return Err(Reader::new(MEASUREMENT, bytes).malformed_at(
                        0,
                        "second packet of a multiple-packet measurement uses other units (flag b0) than the first",
                    ));
                }
                merge(first, packet)
            }
        };
        Ok(Some(Decoded {
            observations: observations(&complete),
            ..Decoded::default()
        }))
    }
}

fn fields(bc: &BodyComposition) -> [bool; 9] {
    [
        bc.basal_metabolism.is_some(),
        bc.muscle_percentage.is_some(),
        bc.muscle_mass.is_some(),
        bc.fat_free_mass.is_some(),
        bc.soft_lean_mass.is_some(),
        bc.body_water_mass.is_some(),
        bc.impedance.is_some(),
        bc.weight.is_some(),
        bc.height.is_some(),
    ]
}

fn overlaps(first: &BodyComposition, second: &BodyComposition) -> bool {
    fields(first)
        .iter()
        .zip(fields(second))
        .any(|(a, b)| *a && b)
}

fn merge(first: BodyComposition, second: BodyComposition) -> BodyComposition {
    let body_fat = if first.body_fat == Value::Absent(AbsentReason::Error) {
        second.body_fat
    } else {
        first.body_fat
    };
    BodyComposition {
        imperial: first.imperial,
        body_fat,
        time: first.time.or(second.time),
        user: first.user.or(second.user),
        basal_metabolism: first.basal_metabolism.or(second.basal_metabolism),
        muscle_percentage: first.muscle_percentage.or(second.muscle_percentage),
        muscle_mass: first.muscle_mass.or(second.muscle_mass),
        fat_free_mass: first.fat_free_mass.or(second.fat_free_mass),
        soft_lean_mass: first.soft_lean_mass.or(second.soft_lean_mass),
        body_water_mass: first.body_water_mass.or(second.body_water_mass),
        impedance: first.impedance.or(second.impedance),
        weight: first.weight.or(second.weight),
        height: first.height.or(second.height),
        multiple_packet: false,
    }
}

/// Body Composition Feature (0x2A9B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BcsFeature {
    /// The raw 32-bit field.
    pub raw: u32,
    /// b0 time stamp, b1 multiple users, b2 basal metabolism, b3 muscle %, b4 muscle mass,
    /// b5 fat-free mass, b6 soft lean mass, b7 body water mass, b8 impedance, b9 weight,
    /// b10 height (each: supported).
    pub supported: u16,
    /// b11–b14: mass resolution (`None` = not specified or RFU).
    pub mass_resolution: Option<Resolution>,
    /// b15–b17: height resolution (`None` = not specified or RFU).
    pub height_resolution: Option<Resolution>,
}

/// Decode the Body Composition Feature (0x2A9B), bit layout per the SIG XML.
pub fn parse_feature(bytes: &[u8]) -> Result<BcsFeature, DecodeError> {
    let mut r = Reader::new(FEATURE, bytes);
    let raw = r.u32()?;
    r.finish()?;
    Ok(BcsFeature {
        raw,
        supported: (raw & 0x07FF) as u16,
        mass_resolution: wss::mass_resolution(((raw >> 11) & 0xF) as u8),
        height_resolution: wss::height_resolution(((raw >> 15) & 0x7) as u8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeErrorKind, DeviceTime};
    use hearth_model::Mdc;

    fn codes(d: &Decoded) -> Vec<u32> {
        d.observations.iter().map(|o| o.mdc.0).collect()
    }

    fn le(words: &[u16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn minimal_body_fat() {
        let d = measurement(&[0x00, 0x00, 0xE8, 0x00]).unwrap();
        assert_eq!(codes(&d), [188_748]);
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(23.2, 1)
        );
        assert_eq!(d.observations[0].unit.as_ref().unwrap().as_str(), "%");
        assert!(!d.more_follows);
    }

    #[test]
    fn every_field_metric() {
        // All fields except multi-packet.
        let flags: u16 = 0x0FFE;
        let mut bytes = le(&[flags, 232]);
        bytes.extend_from_slice(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x02]);
        // basal 6500 kJ, muscle 40.1 %, muscle mass 30 kg, fat-free 55 kg, soft lean 52 kg,
        // water 40 kg, impedance 520.3 Ω, weight 72.45 kg, height 1.780 m.
        bytes.extend(le(&[
            6500, 401, 6000, 11000, 10400, 8000, 5203, 14490, 1780,
        ]));
        let d = measurement(&bytes).unwrap();
        assert_eq!(
            codes(&d),
            [
                188_748, 188_768, 188_756, 188_760, 188_764, 188_780, 188_736, 188_740
            ]
        );
        let v: Vec<_> = d
            .observations
            .iter()
            .map(|o| {
                (
                    o.value.clone(),
                    o.unit.as_ref().unwrap().as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(v[1], (Value::numeric_with_decimals(6500.0, 0), "kJ".into()));
        assert_eq!(v[2], (Value::numeric_with_decimals(55.0, 3), "kg".into()));
        assert_eq!(v[3], (Value::numeric_with_decimals(52.0, 3), "kg".into()));
        assert_eq!(v[4], (Value::numeric_with_decimals(40.0, 3), "kg".into()));
        assert_eq!(v[5], (Value::numeric_with_decimals(520.3, 1), "Ohm".into()));
        assert_eq!(v[6], (Value::numeric_with_decimals(72.45, 3), "kg".into()));
        assert_eq!(v[7], (Value::numeric_with_decimals(1.78, 3), "m".into()));
        let t = LocalDateTime {
            year: Some(2025),
            month: Some(3),
            day: Some(14),
            hour: 7,
            minute: 5,
            second: 9,
        };
        assert!(
            d.observations
                .iter()
                .all(|o| o.time == Some(DeviceTime::Local(t)) && o.user == Some(2))
        );
        // Muscle fields parsed, not emitted.
        let bc = parse_measurement(&bytes).unwrap();
        assert_eq!(
            bc.muscle_percentage,
            Some(Value::numeric_with_decimals(40.1, 1))
        );
        assert_eq!(bc.muscle_mass, Some(Value::numeric_with_decimals(30.0, 3)));
    }

    #[test]
    fn imperial_units() {
        let flags: u16 = FLAG_IMPERIAL | FLAG_SOFT_LEAN | FLAG_WEIGHT | FLAG_HEIGHT;
        let bytes = le(&[flags, 150, 11000, 15972, 700]);
        let d = measurement(&bytes).unwrap();
        let units: Vec<_> = d
            .observations
            .iter()
            .map(|o| o.unit.as_ref().unwrap().as_str())
            .collect();
        assert_eq!(units, ["%", "[lb_av]", "[lb_av]", "[in_i]"]);
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(110.0, 2)
        );
        assert_eq!(
            d.observations[2].value,
            Value::numeric_with_decimals(159.72, 2)
        );
        assert_eq!(
            d.observations[3].value,
            Value::numeric_with_decimals(70.0, 1)
        );
    }

    #[test]
    fn unsuccessful_and_unknown_user() {
        let d = measurement(&[0x04, 0x00, 0xFF, 0xFF, 0xFF]).unwrap();
        assert_eq!(d.observations[0].value, Value::Absent(AbsentReason::Error));
        assert_eq!(d.observations[0].user, None);
    }

    #[test]
    fn every_flag_layout_and_truncation() {
        for flags in 0u16..(1 << 13) {
            let len = 2 + announced_len(flags);
            let mut bytes = vec![0u8; len];
            bytes[..2].copy_from_slice(&flags.to_le_bytes());
            let d = measurement(&bytes).unwrap();
            assert_eq!(d.more_follows, flags & FLAG_MULTIPLE_PACKET != 0);
            let e = measurement(&bytes[..len - 1]).unwrap_err();
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len }),
                "flags {flags:#06x}"
            );
        }
        let e = measurement(&[0x00]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A9C, 1, DecodeErrorKind::Incomplete { needed: 2 })
        );
    }

    #[test]
    fn assembler_joins_two_packets() {
        // First: time, user, basal, muscle %, fat-free, soft lean (+ b12).
        let f1 = FLAG_MULTIPLE_PACKET
            | FLAG_TIME
            | FLAG_USER
            | FLAG_BASAL
            | FLAG_FAT_FREE
            | FLAG_SOFT_LEAN;
        let mut p1 = le(&[f1, 232]);
        p1.extend_from_slice(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x01]);
        p1.extend(le(&[6500, 11000, 10400]));
        // Second: water, impedance, weight, height; b12 set as well (Realtek style).
        let f2 = FLAG_MULTIPLE_PACKET | FLAG_WATER | FLAG_IMPEDANCE | FLAG_WEIGHT | FLAG_HEIGHT;
        let p2 = le(&[f2, 232, 8000, 5203, 14490, 1780]);
        let mut a = BcsAssembler::new();
        assert_eq!(a.feed(&p1).unwrap(), None);
        assert!(a.is_pending());
        let d = a.feed(&p2).unwrap().unwrap();
        assert!(!a.is_pending());
        assert!(!d.more_follows);
        assert_eq!(
            codes(&d),
            [
                188_748, 188_768, 188_756, 188_760, 188_764, 188_780, 188_736, 188_740
            ]
        );
        assert!(
            d.observations
                .iter()
                .all(|o| o.user == Some(1) && o.time.is_some())
        );
        // Second packet without b12 (also accepted), then a single packet.
        let p2b = le(&[f2 & !FLAG_MULTIPLE_PACKET, 232, 8000, 5203, 14490, 1780]);
        assert_eq!(a.feed(&p1).unwrap(), None);
        assert_eq!(a.feed(&p2b).unwrap().unwrap().observations.len(), 8);
        let single = a.feed(&[0x00, 0x00, 0xE8, 0x00]).unwrap().unwrap();
        assert_eq!(codes(&single), [188_748]);
    }

    #[test]
    fn assembler_errors_reset() {
        let mut a = BcsAssembler::new();
        assert_eq!(a.feed(&le(&[FLAG_MULTIPLE_PACKET, 232])).unwrap(), None);
        let e = a.feed(&le(&[FLAG_IMPERIAL, 232])).unwrap_err();
        assert_eq!(e.at, 0);
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
        assert!(!a.is_pending());
        assert_eq!(a.feed(&le(&[FLAG_MULTIPLE_PACKET, 232])).unwrap(), None);
        assert!(a.feed(&[0x00]).is_err());
        assert!(!a.is_pending());
        assert_eq!(a.feed(&le(&[FLAG_MULTIPLE_PACKET, 232])).unwrap(), None);
        a.reset();
        assert!(!a.is_pending());
        // A repeated field starts a new measurement (the pending half is dropped).
        let first = le(&[FLAG_MULTIPLE_PACKET | FLAG_WEIGHT, 232, 14490]);
        assert_eq!(a.feed(&first).unwrap(), None);
        assert_eq!(a.feed(&first).unwrap(), None);
        assert!(a.is_pending());
        let d = a.feed(&le(&[FLAG_HEIGHT, 232, 1780])).unwrap().unwrap();
        assert_eq!(codes(&d), [188_748, 188_736, 188_740]);
    }

    #[test]
    fn feature_layout() {
        let raw: u32 = 0x0000_0201 | (4 << 11) | (3 << 15);
        let f = parse_feature(&raw.to_le_bytes()).unwrap();
        assert_eq!(f.supported, 0x0201);
        assert_eq!(f.mass_resolution.map(|r| r.metric), Some(0.05));
        assert_eq!(f.height_resolution.map(|r| r.metric), Some(0.001));
        let e = parse_feature(&[1, 2]).unwrap_err();
        assert_eq!((e.characteristic, e.at), (0x2A9B, 2));
        assert_eq!(Mdc(MDC_BODY_FAT), Mdc(188_748));
    }
}
