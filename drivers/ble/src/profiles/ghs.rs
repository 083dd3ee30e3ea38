//! Generic Health Sensor Service (0x1840): segmentation of Live (0x2B8B) and Stored (0x2BDD)
//! Health Observations, and the observation body (IEEE 11073-10206 ACOM over GATT).
//!
//! **Segmentation.** Every PDU starts with a header octet `b0 first | b1 last | b2–7 rolling
//! segment counter` (0…63, incremented per segment during a connection and wrapping to 0).
//! [`Reassembler`] joins segments into one observation (or, for 0x2BDD, record number +
//! observation).
//!
//! **Observation body** (GHSS 1.0; field order per the Realtek `ghss_gatt_svc.h` GHSS 1.0
//! server, the STMicroelectronics GHS service header and the Philips GHS server/client used for
//! SIG interoperability testing, which agree):
//!
//! ```text
//! class u8 | length u16 | flags u16 | [type u32] | [time stamp 9] | [duration FLOAT s]
//! | [measurement status u16] | [object id u32] | [patient u8] | [supplemental: n u8, n × u32]
//! | [derived from: n u8, n × u32] | [has member: n u8, n × u32] | [TLVs: n u8, n × {type u32,
//! length u16, format u8, value}] | value
//! ```
//!
//! `length` counts the **whole** observation including the class and length octets: the
//! Philips server builds it with "include the length bytes in length" (`withLengthPrefix`), the
//! Philips client checks `received bytes == length`, and the Realtek GHSS 1.0 SDK formats the
//! body length the same way. That is the rule implemented here; a body whose length excludes the
//! header is reported as Malformed (trailing octets) or Incomplete.
//!
//! Values by class: 1 numeric (`unit u16` = MDC DIM term code in partition 4, FLOAT), 2 simple
//! discrete (u32 MDC code), 3 string (`length u16`, UTF-8), 4 sample array (`unit u16`, scale
//! FLOAT, offset FLOAT, period FLOAT, samples/period u8, bytes/sample u8, n u32, samples), 5
//! compound discrete event (`n u8`, n × u32), 6 compound state/event (`size u8`, supported mask,
//! state/event mask, value; `size` octets each), 7 compound (`n u8`, n × {type u32, class u8
//! (1…6), value}), 8 TLV-encoded (as the TLV attribute list), 255 bundle (`n u8`, n
//! observations). How each maps to [`Observation`]s is documented on [`observation`].
//!
//! **Time stamp** (GSS Elapsed Time, `flags u8 | value u48 | sync source u8 | TZ/DST sint8`):
//! flags b0 tick counter, b1 UTC, b2–3 resolution (1 s, 100 ms, 1 ms, 100 µs), b4 TZ/DST
//! used, b5 current timeline; the time line starts 2000-01-01T00:00:00. A tick counter becomes
//! [`DeviceTime::Relative`], a UTC time [`DeviceTime::Utc`] (ms since the Unix epoch), a local
//! time [`DeviceTime::Local`] (sub-second part dropped). [`GhsTimeStamp`] keeps the raw fields,
//! including the TZ/DST offset, for callers that want more.

use hearth_model::{AbsentReason, Component, Enumerated, Mdc, Value};

use crate::decode::{
    DecodeError, DecodeErrorKind, Decoded, DeviceTime, LocalDateTime, Observation, Reader,
    civil_from_days,
};

/// Generic Health Sensor service.
pub const SERVICE: u16 = 0x1840;
/// Live Health Observations (Notify and/or Indicate).
pub const LIVE_OBSERVATIONS: u16 = 0x2B8B;
/// Stored Health Observations (Notify and/or Indicate): record number u32 + observation.
pub const STORED_OBSERVATIONS: u16 = 0x2BDD;
/// Observation Schedule Changed (Indicate).
pub const OBSERVATION_SCHEDULE_CHANGED: u16 = 0x2BF1;
/// Current Elapsed Time (Elapsed Time Service / GHS time).
pub const CURRENT_ELAPSED_TIME: u16 = 0x2BF2;
/// Health Sensor Features (Read, Indicate).
pub const HEALTH_SENSOR_FEATURES: u16 = 0x2BF3;
/// GHS Control Point (Write, Indicate).
pub const CONTROL_POINT: u16 = 0x2BF4;
/// Record Access Control Point, see [`crate::profiles::racp`].
pub const RACP: u16 = crate::profiles::racp::UUID;

/// Largest reassembled value accepted: a whole observation is at most 65 535 octets (`length`
/// is a u16), plus the 4-octet record number of a stored observation.
pub const MAX_REASSEMBLED: usize = u16::MAX as usize + 4;

/// Nesting limit for bundles inside bundles (GHSS bundles hold single observations; deeper
/// nesting is rejected rather than recursed into).
const MAX_BUNDLE_DEPTH: usize = 2;

/// Milliseconds from 1970-01-01 to the GHS epoch 2000-01-01T00:00:00.
const EPOCH_2000_MS: i64 = 946_684_800_000;
/// Days from 1970-01-01 to 2000-01-01.
const EPOCH_2000_DAYS: i64 = 10_957;
/// 9999-12-31T23:59:59.999Z: later time stamps are rejected (the model's date range).
const MAX_UTC_MS: i64 = 253_402_300_799_999;

/// The segmentation header octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// b0: first segment of an observation.
    pub first: bool,
    /// b1: last segment of an observation.
    pub last: bool,
    /// b2–7: rolling segment counter, 0…63.
    pub counter: u8,
}

impl SegmentHeader {
    /// Split the header octet.
    pub fn parse(octet: u8) -> Self {
        Self {
            first: octet & 0x01 != 0,
            last: octet & 0x02 != 0,
            counter: octet >> 2,
        }
    }

    /// The header octet.
    pub fn to_octet(self) -> u8 {
        u8::from(self.first) | (u8::from(self.last) << 1) | ((self.counter & 0x3F) << 2)
    }
}

/// Joins GHS segments into complete observations.
///
/// Rules:
/// - a first segment starts a new observation (a first+last segment is complete at once);
/// - a non-first segment is accepted only while an observation is in progress and only with the
///   next counter value (mod 64); otherwise it is an error, the partial observation is dropped
///   and the reassembler is idle again (waiting for a first segment);
/// - a first segment while an observation is still in progress drops the incomplete one (its
///   last segment was lost) and is counted in [`Reassembler::dropped`]; a counter gap just
///   before a first segment (whole segments lost between observations) is counted in
///   [`Reassembler::gaps`]. Neither rejects the new, intact observation;
/// - more than [`MAX_REASSEMBLED`] octets is an error (and a reset): growth is bounded.
#[derive(Debug, Clone)]
pub struct Reassembler {
    characteristic: u16,
    buf: Vec<u8>,
    active: bool,
    next_counter: Option<u8>,
    gaps: u64,
    dropped: u64,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    /// A reassembler for Live Health Observations (0x2B8B).
    pub fn new() -> Self {
        Self::for_characteristic(LIVE_OBSERVATIONS)
    }

    /// A reassembler whose errors name `characteristic` (0x2B8B or 0x2BDD).
    pub fn for_characteristic(characteristic: u16) -> Self {
        Self {
            characteristic,
            buf: Vec::new(),
            active: false,
            next_counter: None,
            gaps: 0,
            dropped: 0,
        }
    }

    /// Forget any partial observation and the counter (e.g. after a reconnection).
    pub fn reset(&mut self) {
        self.abort();
        self.next_counter = None;
    }

    /// Whether an observation is partially received.
    pub fn in_progress(&self) -> bool {
        self.active
    }

    /// Counter gaps seen just before first segments (segments lost between observations).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Incomplete observations dropped because a new first segment arrived.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn abort(&mut self) {
        self.buf = Vec::new();
        self.active = false;
    }

    fn error(&mut self, what: String) -> DecodeError {
        self.abort();
        DecodeError {
            characteristic: self.characteristic,
            at: 0,
            kind: DecodeErrorKind::Malformed { what },
        }
    }

    /// Feed one PDU (header octet + payload). Returns the complete observation bytes (without
    /// segment headers) when this was the last segment.
    pub fn feed(&mut self, segment: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let Some((&octet, payload)) = segment.split_first() else {
            self.abort();
            return Err(DecodeError {
                characteristic: self.characteristic,
                at: 0,
                kind: DecodeErrorKind::Incomplete { needed: 1 },
            });
        };
        let header = SegmentHeader::parse(octet);
        let expected = self.next_counter;
        self.next_counter = Some((header.counter + 1) % 64);
        if header.first {
            if self.active {
                self.dropped += 1;
            }
            if expected.is_some_and(|e| e != header.counter) {
                self.gaps += 1;
            }
            self.buf = Vec::new();
            self.active = true;
        } else if !self.active {
            return Err(self.error(format!(
                "segment {} is not a first segment and no observation is in progress (its first segment was lost)",
                header.counter
            )));
        } else if let Some(e) = expected.filter(|&e| e != header.counter) {
            return Err(self.error(format!(
                "segment counter gap: expected {e}, got {}; the partial observation was dropped",
                header.counter
            )));
        }
        if self.buf.len() + payload.len() > MAX_REASSEMBLED {
            return Err(self.error(format!(
                "observation exceeds {MAX_REASSEMBLED} octets; the partial observation was dropped"
            )));
        }
        self.buf.extend_from_slice(payload);
        if header.last {
            self.active = false;
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
        Ok(None)
    }
}

/// A GHS time stamp / Elapsed Time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GhsTimeStamp {
    /// Flags: b0 tick counter, b1 UTC, b2–3 resolution, b4 TZ/DST used, b5 current timeline.
    pub flags: u8,
    /// Counter in units of the resolution (since 2000-01-01T00:00:00 unless a tick counter).
    pub value: u64,
    /// Time synchronisation source (0 unknown, 1 NTP, 2 GPS, 3 radio, 4 manual, 5 atomic,
    /// 6 cellular, 7 not synchronised).
    pub sync_source: u8,
    /// Combined TZ/DST offset in 15-minute units.
    pub tz_dst: i8,
}

impl GhsTimeStamp {
    /// b0: the value is a tick counter, not a time of day.
    pub fn is_tick_counter(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// b1: the value counts UTC (otherwise local time).
    pub fn is_utc(&self) -> bool {
        self.flags & 0x02 != 0
    }

    /// b5: the time stamp is from the device's current timeline.
    pub fn is_current_timeline(&self) -> bool {
        self.flags & 0x20 != 0
    }

    /// The TZ/DST offset in minutes, when flag b4 says it is used.
    pub fn tz_dst_minutes(&self) -> Option<i32> {
        (self.flags & 0x10 != 0).then_some(i32::from(self.tz_dst) * 15)
    }

    /// The value in milliseconds (100 µs resolution is truncated to whole milliseconds).
    pub fn millis(&self) -> i64 {
        // value < 2^48, so none of these overflow an i64.
        let v = self.value as i64;
        match (self.flags >> 2) & 0x03 {
            0 => v * 1000,
            1 => v * 100,
            2 => v,
            _ => v / 10,
        }
    }

    /// As a [`DeviceTime`]; `None` if a time of day lies beyond 9999-12-31.
    pub fn to_device_time(&self) -> Option<DeviceTime> {
        let ms = self.millis();
        if self.is_tick_counter() {
            return Some(DeviceTime::Relative(ms));
        }
        if self.is_utc() {
            let utc = EPOCH_2000_MS + ms;
            return (utc <= MAX_UTC_MS).then_some(DeviceTime::Utc(utc));
        }
        let secs = ms.div_euclid(1000);
        let (y, mo, d) = civil_from_days(EPOCH_2000_DAYS + secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        if y > 9999 {
            return None;
        }
        Some(DeviceTime::Local(LocalDateTime {
            year: u16::try_from(y).ok(),
            month: u8::try_from(mo).ok(),
            day: u8::try_from(d).ok(),
            hour: (sod / 3600) as u8,
            minute: (sod % 3600 / 60) as u8,
            second: (sod % 60) as u8,
        }))
    }
}

fn read_time_stamp(r: &mut Reader<'_>) -> Result<(usize, GhsTimeStamp), DecodeError> {
    let at = r.pos();
    let flags = r.u8()?;
    let value = r.u48()?;
    let sync_source = r.u8()?;
    let tz_dst = r.u8()? as i8;
    Ok((
        at,
        GhsTimeStamp {
            flags,
            value,
            sync_source,
            tz_dst,
        },
    ))
}

/// Decode an Elapsed Time value (e.g. Current Elapsed Time 0x2BF2, 9 octets).
pub fn elapsed_time(bytes: &[u8]) -> Result<GhsTimeStamp, DecodeError> {
    let mut r = Reader::new(CURRENT_ELAPSED_TIME, bytes);
    let (_, t) = read_time_stamp(&mut r)?;
    r.finish()?;
    Ok(t)
}

/// UCUM for an MDC unit given as its 16-bit DIM term code (partition 4, so the 32-bit code is
/// 262 144 + term). Codes from mdc-codes.md (PCD/PH-verified) and the Philips `UnitCode` list.
pub fn ucum_for_dim(term: u16) -> Option<&'static str> {
    Some(match term {
        512 => "1",          // MDC_DIM_DIMLESS 262656
        544 => "%",          // MDC_DIM_PERCENT 262688
        1280 => "m",         // MDC_DIM_X_M 263424
        1297 => "cm",        // MDC_DIM_CENTI_M 263441
        1298 => "mm",        // MDC_DIM_MILLI_M 263442
        1376 => "[in_i]",    // MDC_DIM_INCH 263520
        1600 => "L",         // MDC_DIM_X_L 263744
        1618 => "mL",        // MDC_DIM_MILLI_L 263762
        1728 => "g",         // MDC_DIM_X_G 263872
        1731 => "kg",        // MDC_DIM_KILO_G 263875
        1746 => "mg",        // MDC_DIM_MILLI_G 263890
        1760 => "[lb_av]",   // MDC_DIM_LB 263904
        1952 => "kg/m2",     // MDC_DIM_KG_PER_M_SQ 264096
        2112 => "g/dL",      // MDC_DIM_X_G_PER_DL 264256
        2130 => "mg/dL",     // MDC_DIM_MILLI_G_PER_DL 264274
        2176 => "s",         // MDC_DIM_SEC 264320
        2194 => "ms",        // MDC_DIM_MILLI_SEC 264338
        2208 => "min",       // MDC_DIM_MIN 264352
        2240 => "h",         // MDC_DIM_HR 264384
        2272 => "d",         // MDC_DIM_DAY 264416
        2528 => "/min",      // MDC_DIM_PER_MIN 264672
        2720 => "/min",      // MDC_DIM_BEAT_PER_MIN 264864
        2752 => "/min",      // MDC_DIM_PULS_PER_MIN 264896
        2784 => "/min",      // MDC_DIM_RESP_PER_MIN 264928
        2816 => "m/s",       // MDC_DIM_X_M_PER_SEC 264960
        3072 => "L/min",     // MDC_DIM_X_L_PER_MIN 265216
        3840 => "Pa",        // MDC_DIM_X_PASCAL 265984
        3842 => "hPa",       // MDC_DIM_HECTO_PASCAL 265986
        3843 => "kPa",       // MDC_DIM_KILO_PASCAL 265987
        3872 => "mm[Hg]",    // MDC_DIM_MMHG 266016
        3904 => "cm[H2O]",   // MDC_DIM_CM_H2O 266048
        3968 => "J",         // MDC_DIM_X_JOULES 266112
        3971 => "kJ",        // MDC_DIM_KILO_JOULES 266115 (computed)
        4032 => "W",         // MDC_DIM_X_WATT 266176
        4288 => "Ohm",       // MDC_DIM_X_OHM 266432
        4384 => "K",         // MDC_DIM_KELVIN 266528
        4416 => "[degF]",    // MDC_DIM_FAHR 266560
        4704 => "mol/L",     // MDC_DIM_X_MOLE_PER_L 266848
        4722 => "mmol/L",    // MDC_DIM_MILLI_MOLE_PER_L 266866
        4724 => "mg/dL/min", // MDC_DIM_MILLI_G_PER_DL_PER_MIN 266868 (T1)
        6048 => "Cel",       // MDC_DIM_DEGC 268192
        8355 => "kcal",      // MDC_DIM_KILO_CAL 270499
        _ => return None,
    })
}

/// A decoded observation value, before it becomes [`Observation`]s.
enum Val {
    Numeric {
        unit_at: usize,
        unit: u16,
        value: Value,
    },
    Code(u32),
    Text(String),
    Events(Vec<u32>),
    Bits {
        bits: u32,
        width: u8,
    },
    /// Sample arrays, TLV values and wide state/event sets: parsed past, not modelled.
    Skipped,
    Compound(Vec<(u32, Val)>),
}

fn skip_tlvs(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let n = r.u8()?;
    for _ in 0..n {
        let _type = r.u32()?;
        let len = r.u16()?;
        let _format = r.u8()?;
        r.take(usize::from(len))?;
    }
    Ok(())
}

fn read_value(r: &mut Reader<'_>, class: u8, class_at: usize) -> Result<Val, DecodeError> {
    Ok(match class {
        1 => {
            let unit_at = r.pos();
            let unit = r.u16()?;
            Val::Numeric {
                unit_at,
                unit,
                value: r.float_value()?,
            }
        }
        2 => Val::Code(r.u32()?),
        3 => {
            let n = r.u16()?;
            Val::Text(String::from_utf8_lossy(r.take(usize::from(n))?).into_owned())
        }
        4 => {
            let _unit = r.u16()?;
            let (_scale, _offset, _period) = (r.float()?, r.float()?, r.float()?);
            let _per_period = r.u8()?;
            let bytes_per_sample = r.u8()?;
            let count_at = r.pos();
            let count = r.u32()?;
            let total = usize::try_from(count)
                .ok()
                .and_then(|c| c.checked_mul(usize::from(bytes_per_sample)))
                .ok_or_else(|| {
                    r.malformed_at(count_at, format!("{count} samples do not fit in memory"))
                })?;
            r.take(total)?;
            Val::Skipped
        }
        5 => {
            let n = r.u8()?;
            let mut codes = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                codes.push(r.u32()?);
            }
            Val::Events(codes)
        }
        6 => {
            let size = usize::from(r.u8()?);
            let _supported = r.take(size)?;
            let _state_event = r.take(size)?;
            let value = r.take(size)?;
            if (1..=4).contains(&size) {
                let mut le = [0u8; 4];
                for (dst, src) in le.iter_mut().zip(value) {
                    *dst = *src;
                }
                Val::Bits {
                    bits: u32::from_le_bytes(le),
                    width: (size * 8) as u8,
                }
            } else {
                Val::Skipped
            }
        }
        7 => {
            let n = r.u8()?;
            let mut parts = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                let mdc = r.u32()?;
                let at = r.pos();
                let class = r.u8()?;
                if !(1..=6).contains(&class) {
                    return Err(r.malformed_at(
                        at,
                        format!("compound component class {class} is not a value class (1…6)"),
                    ));
                }
                parts.push((mdc, read_value(r, class, at)?));
            }
            Val::Compound(parts)
        }
        8 => {
            skip_tlvs(r)?;
            Val::Skipped
        }
        other => {
            return Err(r.malformed_at(class_at, format!("observation class {other} is reserved")));
        }
    })
}

/// Turn a value into observations (all with `mdc` unless a compound component says otherwise).
fn to_observations(
    r: &Reader<'_>,
    mdc: u32,
    val: Val,
    out: &mut Vec<Observation>,
) -> Result<(), DecodeError> {
    let unit_of = |unit_at: usize, unit: u16| {
        ucum_for_dim(unit).ok_or_else(|| {
            r.malformed_at(
                unit_at,
                format!(
                    "unit code {unit} (MDC {}) has no UCUM mapping in hearth",
                    262_144 + u32::from(unit)
                ),
            )
        })
    };
    match val {
        Val::Numeric {
            unit_at,
            unit,
            value,
        } => out.push(Observation::new(mdc, value, Some(unit_of(unit_at, unit)?))),
        Val::Code(c) => out.push(Observation::new(
            mdc,
            Value::Enumerated(Enumerated::Code(Mdc(c))),
            None,
        )),
        Val::Text(s) => out.push(Observation::new(
            mdc,
            Value::Enumerated(Enumerated::Text(s)),
            None,
        )),
        Val::Events(codes) => {
            for c in codes {
                out.push(Observation::new(
                    mdc,
                    Value::Enumerated(Enumerated::Code(Mdc(c))),
                    None,
                ));
            }
        }
        Val::Bits { bits, width } => {
            out.push(Observation::new(
                mdc,
                Value::Enumerated(Enumerated::Bits { bits, width }),
                None,
            ));
        }
        Val::Skipped => {}
        Val::Compound(parts) => {
            let mut shared: Option<(usize, u16)> = None;
            let all_same_numeric = !parts.is_empty()
                && parts.iter().all(|(_, v)| match v {
                    Val::Numeric { unit_at, unit, .. } => match shared {
                        None => {
                            shared = Some((*unit_at, *unit));
                            true
                        }
                        Some((_, u)) => u == *unit,
                    },
                    _ => false,
                });
            if let (true, Some((unit_at, unit))) = (all_same_numeric, shared) {
                let ucum = unit_of(unit_at, unit)?;
                let components = parts
                    .into_iter()
                    .filter_map(|(m, v)| match v {
                        Val::Numeric { value, .. } => Some(Component { mdc: Mdc(m), value }),
                        _ => None,
                    })
                    .collect();
                out.push(Observation::new(
                    mdc,
                    Value::Compound(components),
                    Some(ucum),
                ));
            } else {
                for (m, v) in parts {
                    to_observations(r, m, v, out)?;
                }
            }
        }
    }
    Ok(())
}

/// What a bundle hands down to its members.
#[derive(Debug, Clone, Copy, Default)]
struct Inherited {
    mdc: Option<u32>,
    time: Option<DeviceTime>,
    user: Option<u8>,
    sequence: Option<u64>,
}

/// The value being decoded and where its observations go.
struct Ctx<'a> {
    uuid: u16,
    bytes: &'a [u8],
    out: Vec<Observation>,
}

/// Parse the observation starting at `start`, within `bytes[..limit]`; `top` is false for
/// bundle members. Returns its end offset.
fn parse_observation(
    cx: &mut Ctx<'_>,
    start: usize,
    limit: usize,
    top: bool,
    inherited: Inherited,
    depth: usize,
) -> Result<usize, DecodeError> {
    let (uuid, bytes) = (cx.uuid, cx.bytes);
    // Inside a bundle, running out of octets means the member contradicts the bundle's length.
    let contained = |e: DecodeError| match e.kind {
        DecodeErrorKind::Incomplete { needed } if !top => DecodeError {
            characteristic: e.characteristic,
            at: e.at,
            kind: DecodeErrorKind::Malformed {
                what: format!(
                    "bundle member needs {needed} octets but the bundle ends at byte {limit}"
                ),
            },
        },
        _ => e,
    };
    let region = bytes.get(..limit).unwrap_or(bytes);
    let mut h = Reader::new(uuid, region);
    h.take(start).map_err(contained)?;
    let class = h.u8().map_err(contained)?;
    let length = usize::from(h.u16().map_err(contained)?);
    if length < 5 {
        return Err(h.malformed_at(
            start + 1,
            format!(
                "observation length {length} is shorter than its class, length and flags fields (5)"
            ),
        ));
    }
    let end = start + length;
    if end > limit {
        return Err(if top {
            DecodeError {
                characteristic: uuid,
                at: bytes.len(),
                kind: DecodeErrorKind::Incomplete { needed: end },
            }
        } else {
            h.malformed_at(
                start + 1,
                format!("bundle member length {length} runs past the bundle end at byte {limit}"),
            )
        });
    }
    let body = bytes.get(..end).unwrap_or(bytes);
    let mut r = Reader::new(uuid, body);
    r.take(start + 3)?;
    // Inside the observation, running out of octets means the fields contradict `length`.
    let within = |e: DecodeError| match e.kind {
        DecodeErrorKind::Incomplete { needed } => DecodeError {
            characteristic: e.characteristic,
            at: e.at,
            kind: DecodeErrorKind::Malformed {
                what: format!(
                    "observation fields need {needed} octets but its length {length} ends it at byte {end}"
                ),
            },
        },
        _ => e,
    };
    parse_body(cx, &mut r, class, (start, end), inherited, depth).map_err(within)?;
    Ok(end)
}

fn parse_body(
    cx: &mut Ctx<'_>,
    r: &mut Reader<'_>,
    class: u8,
    (start, end): (usize, usize),
    inherited: Inherited,
    depth: usize,
) -> Result<(), DecodeError> {
    let flags = r.u16()?;
    let mdc = if flags & 0x0001 != 0 {
        Some(r.u32()?)
    } else {
        inherited.mdc
    };
    let time = if flags & 0x0002 != 0 {
        let (at, stamp) = read_time_stamp(r)?;
        Some(
            stamp
                .to_device_time()
                .ok_or_else(|| r.malformed_at(at, "time stamp lies beyond 9999-12-31"))?,
        )
    } else {
        inherited.time
    };
    if flags & 0x0004 != 0 {
        let _duration = r.float()?;
    }
    let status = if flags & 0x0008 != 0 {
        Some(r.u16()?)
    } else {
        None
    };
    if flags & 0x0010 != 0 {
        let _object_id = r.u32()?;
    }
    let user = if flags & 0x0020 != 0 {
        let p = r.u8()?;
        (p != 0xFF).then_some(p)
    } else {
        inherited.user
    };
    // Supplemental information, derived from, has member: count + MDC codes / object ids.
    for bit in [0x0040, 0x0080, 0x0100] {
        if flags & bit != 0 {
            let n = r.u8()?;
            r.take(usize::from(n) * 4)?;
        }
    }
    if flags & 0x0200 != 0 {
        skip_tlvs(r)?;
    }

    if class == 0xFF {
        if depth >= MAX_BUNDLE_DEPTH {
            return Err(r.malformed_at(
                start,
                format!("observation bundles nested deeper than {MAX_BUNDLE_DEPTH}"),
            ));
        }
        let n = r.u8()?;
        let inner = Inherited {
            mdc,
            time,
            user,
            sequence: inherited.sequence,
        };
        let mut cur = r.pos();
        for _ in 0..n {
            cur = parse_observation(cx, cur, end, false, inner, depth + 1)?;
        }
        return Ok(());
    }

    let val = read_value(r, class, start)?;
    if matches!(val, Val::Skipped) {
        return Ok(());
    }
    let Some(mdc) = mdc else {
        return Err(r.malformed_at(
            start,
            "observation has no type (flag b0 clear and no bundle type)",
        ));
    };
    let first = cx.out.len();
    to_observations(r, mdc, val, &mut cx.out)?;
    // Measurement status b0 "invalid" / b2 "not available": the value must not be used.
    let absent = match status {
        Some(s) if s & 0x0001 != 0 => Some(AbsentReason::Error),
        Some(s) if s & 0x0004 != 0 => Some(AbsentReason::Unknown),
        _ => None,
    };
    for o in cx.out.iter_mut().skip(first) {
        o.time = time;
        o.user = user;
        o.sequence = inherited.sequence;
        if let Some(reason) = absent {
            o.value = Value::Absent(reason);
        }
    }
    Ok(())
}

fn decode_top(
    uuid: u16,
    bytes: &[u8],
    start: usize,
    sequence: Option<u64>,
) -> Result<Decoded, DecodeError> {
    let mut cx = Ctx {
        uuid,
        bytes,
        out: Vec::new(),
    };
    let inherited = Inherited {
        sequence,
        ..Inherited::default()
    };
    let end = parse_observation(&mut cx, start, bytes.len(), true, inherited, 0)?;
    if end < bytes.len() {
        return Err(DecodeError {
            characteristic: uuid,
            at: end,
            kind: DecodeErrorKind::Malformed {
                what: format!(
                    "{} octets follow the observation, whose length field ends it at byte {end} (the length counts class and length octets)",
                    bytes.len() - end
                ),
            },
        });
    }
    Ok(Decoded {
        observations: cx.out,
        ..Decoded::default()
    })
}

/// Decode one complete observation (reassembled Live Health Observation, without segment
/// header).
///
/// Mapping to [`Observation`]s:
/// - numeric → one numeric observation with the UCUM unit of its DIM code (an unknown unit
///   code is Malformed rather than a number without unit);
/// - simple discrete → [`Enumerated::Code`]; string → [`Enumerated::Text`] (invalid UTF-8 is
///   replaced, never rejected);
/// - compound discrete event → one coded observation per event code;
/// - compound state/event → [`Enumerated::Bits`] of the value when it is 1…4 octets wide
///   (little-endian), else skipped;
/// - compound → [`Value::Compound`] when all components are numeric with one unit, otherwise
///   each component as its own observation (component type as MDC);
/// - sample array and TLV-encoded observations are parsed past and produce no observation;
/// - bundle → its members' observations; the bundle's type, time stamp and patient apply to
///   members that lack their own; bundles nest at most [`MAX_BUNDLE_DEPTH`] deep;
/// - measurement status b0 "invalid" makes the value `Absent(Error)`, b2 "not available"
///   `Absent(Unknown)`;
/// - patient → [`Observation::user`] (0xFF → none).
pub fn observation(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_top(LIVE_OBSERVATIONS, bytes, 0, None)
}

/// Decode a reassembled Stored Health Observation (0x2BDD): `record number u32 | observation`.
/// Every observation gets `sequence` = record number.
pub fn stored_observation(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(STORED_OBSERVATIONS, bytes);
    let record = r.u32()?;
    decode_top(STORED_OBSERVATIONS, bytes, 4, Some(u64::from(record)))
}

/// Decode a single-segment Live Health Observations PDU (first and last set): strip the
/// header octet and decode. Offsets in errors count the header octet.
pub fn live_observation(segment: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(LIVE_OBSERVATIONS, segment);
    let header = SegmentHeader::parse(r.u8()?);
    if !(header.first && header.last) {
        return Err(r.malformed_at(
            0,
            format!(
                "segment header 0x{:02X} is part of a multi-segment observation (first={}, last={}); join the segments with ghs::Reassembler",
                header.to_octet(),
                header.first,
                header.last
            ),
        ));
    }
    decode_top(LIVE_OBSERVATIONS, segment, 1, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build an observation: class, flags, optional fields (already encoded) and value.
    fn obs(class: u8, flags: u16, fields: &[u8], value: &[u8]) -> Vec<u8> {
        let length = (5 + fields.len() + value.len()) as u16;
        let mut v = vec![class];
        v.extend_from_slice(&length.to_le_bytes());
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(fields);
        v.extend_from_slice(value);
        v
    }

    fn float(mantissa: i32, exponent: i8) -> [u8; 4] {
        ((u32::from(exponent as u8) << 24) | (mantissa as u32 & 0x00FF_FFFF)).to_le_bytes()
    }

    fn numeric(
        mdc: u32,
        unit: u16,
        mantissa: i32,
        exponent: i8,
        extra_flags: u16,
        extra: &[u8],
    ) -> Vec<u8> {
        let mut fields = mdc.to_le_bytes().to_vec();
        fields.extend_from_slice(extra);
        let mut value = unit.to_le_bytes().to_vec();
        value.extend_from_slice(&float(mantissa, exponent));
        obs(1, 0x0001 | extra_flags, &fields, &value)
    }

    #[test]
    fn numeric_observation_with_utc_time_stamp() {
        // body temperature 36.7 Cel; time stamp UTC, 1 ms resolution, value 1000 ms after
        // 2000-01-01, TZ/DST +4 (×15 min), sync NTP.
        let mut ts = vec![0x02 | 0x08 | 0x10 | 0x20];
        ts.extend_from_slice(&1000u64.to_le_bytes()[..6]);
        ts.extend_from_slice(&[1, 4]);
        let bytes = numeric(150_364, 6048, 367, -1, 0x0002, &ts);
        let d = observation(&bytes).unwrap();
        assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(150_364));
        assert_eq!(o.value, Value::numeric_with_decimals(36.7, 1));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "Cel");
        assert_eq!(o.time, Some(DeviceTime::Utc(946_684_801_000)));
        assert_eq!(o.sequence, None);
    }

    #[test]
    fn local_and_tick_time_stamps() {
        // local, 1 s resolution: 2025-03-14T07:05:09 = 795_251_109 s after 2000-01-01
        let t = GhsTimeStamp {
            flags: 0x20,
            value: 795_251_109,
            sync_source: 4,
            tz_dst: 0,
        };
        match t.to_device_time().unwrap() {
            DeviceTime::Local(l) => assert_eq!(l.to_string(), "2025-03-14T07:05:09"),
            other => panic!("{other:?}"),
        }
        // tick counter at 100 ms resolution
        let t = GhsTimeStamp {
            flags: 0x01 | 0x04,
            value: 15,
            sync_source: 0,
            tz_dst: 0,
        };
        assert_eq!(t.to_device_time(), Some(DeviceTime::Relative(1500)));
        // 100 µs resolution truncates to ms
        let t = GhsTimeStamp {
            flags: 0x02 | 0x0C,
            value: 25,
            sync_source: 0,
            tz_dst: 0,
        };
        assert_eq!(t.to_device_time(), Some(DeviceTime::Utc(EPOCH_2000_MS + 2)));
        // beyond year 9999
        let t = GhsTimeStamp {
            flags: 0x00,
            value: (1u64 << 48) - 1,
            sync_source: 0,
            tz_dst: 0,
        };
        assert_eq!(t.to_device_time(), None);
        assert_eq!(
            elapsed_time(&[0x12, 1, 0, 0, 0, 0, 0, 1, 0xFC])
                .unwrap()
                .tz_dst_minutes(),
            Some(-60)
        );
    }

    #[test]
    fn length_counts_the_whole_observation() {
        let bytes = numeric(150_364, 6048, 367, -1, 0, &[]);
        assert_eq!(
            usize::from(u16::from_le_bytes([bytes[1], bytes[2]])),
            bytes.len()
        );
        // the "length excludes header" convention is rejected: trailing octets
        let mut short = bytes.clone();
        let l = (bytes.len() - 3) as u16;
        short[1..3].copy_from_slice(&l.to_le_bytes());
        let e = observation(&short).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
        // truncated: Incomplete naming the full length
        for cut in 0..bytes.len() {
            let e = observation(&bytes[..cut]).unwrap_err();
            assert_eq!(e.at, cut, "cut {cut}");
            assert!(
                matches!(e.kind, DecodeErrorKind::Incomplete { .. }),
                "cut {cut}: {e:?}"
            );
        }
        let e = observation(&bytes[..5]).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::Incomplete {
                needed: bytes.len()
            }
        );
    }

    #[test]
    fn discrete_string_and_patient() {
        let d = observation(&obs(
            2,
            0x0021,
            &[0x10, 0x00, 0x02, 0x00, 0x07],
            &8_417_872u32.to_le_bytes(),
        ))
        .unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::Enumerated(Enumerated::Code(Mdc(8_417_872)))
        );
        assert_eq!(d.observations[0].user, Some(7));
        let mut v = 5u16.to_le_bytes().to_vec();
        v.extend_from_slice(b"hello");
        let d = observation(&obs(3, 0x0001, &1u32.to_le_bytes(), &v)).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::Enumerated(Enumerated::Text("hello".into()))
        );
    }

    #[test]
    fn compound_blood_pressure() {
        let mut value = vec![3u8];
        for (mdc, m) in [(150_021u32, 120), (150_022, 80), (150_023, 93)] {
            value.extend_from_slice(&mdc.to_le_bytes());
            value.push(1);
            value.extend_from_slice(&3872u16.to_le_bytes());
            value.extend_from_slice(&float(m, 0));
        }
        let d = observation(&obs(7, 0x0001, &150_020u32.to_le_bytes(), &value)).unwrap();
        assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(150_020));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "mm[Hg]");
        match &o.value {
            Value::Compound(c) => {
                assert_eq!(c.len(), 3);
                assert_eq!(c[1].mdc, Mdc(150_022));
                assert_eq!(c[1].value, Value::numeric_with_decimals(80.0, 0));
            }
            other => panic!("{other:?}"),
        }
        // mixed compound → separate observations
        let mut value = vec![2u8];
        value.extend_from_slice(&150_021u32.to_le_bytes());
        value.push(1);
        value.extend_from_slice(&3872u16.to_le_bytes());
        value.extend_from_slice(&float(120, 0));
        value.extend_from_slice(&68_193u32.to_le_bytes());
        value.push(2);
        value.extend_from_slice(&150_588u32.to_le_bytes());
        let d = observation(&obs(7, 0x0001, &150_020u32.to_le_bytes(), &value)).unwrap();
        assert_eq!(d.observations.len(), 2);
        assert_eq!(d.observations[1].mdc, Mdc(68_193));
    }

    #[test]
    fn bundle_hands_down_time_and_type() {
        let mut ts = vec![0x02 | 0x08];
        ts.extend_from_slice(&5u64.to_le_bytes()[..6]);
        ts.extend_from_slice(&[0, 0]);
        let a = numeric(150_456, 544, 97, 0, 0, &[]);
        let b = obs(1, 0x0000, &[], &[0xA0, 0x0A, 72, 0, 0, 0]); // no type: inherits
        let mut value = vec![2u8];
        value.extend_from_slice(&a);
        value.extend_from_slice(&b);
        let mut fields = 149_530u32.to_le_bytes().to_vec();
        fields.extend_from_slice(&ts);
        let bundle = obs(0xFF, 0x0003, &fields, &value);
        let mut stored = 42u32.to_le_bytes().to_vec();
        stored.extend_from_slice(&bundle);
        let d = stored_observation(&stored).unwrap();
        assert_eq!(d.observations.len(), 2);
        assert_eq!(d.observations[0].mdc, Mdc(150_456));
        assert_eq!(d.observations[1].mdc, Mdc(149_530));
        assert_eq!(d.observations[1].unit.as_ref().unwrap().as_str(), "/min");
        for o in &d.observations {
            assert_eq!(o.sequence, Some(42));
            assert_eq!(o.time, Some(DeviceTime::Utc(EPOCH_2000_MS + 5)));
        }
        // a member that runs past the bundle is Malformed, not Incomplete
        let mut broken = bundle.clone();
        let member_len_at = bundle.len() - b.len() + 1;
        broken[member_len_at] += 1;
        let e = observation(&broken).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn skipped_classes_and_status() {
        // sample array: unit, 3 FLOATs, spp, bps=2, n=3, 6 octets
        let mut v = 512u16.to_le_bytes().to_vec();
        for _ in 0..3 {
            v.extend_from_slice(&float(1, 0));
        }
        v.extend_from_slice(&[1, 2]);
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&[0; 6]);
        assert!(
            observation(&obs(4, 0x0001, &1u32.to_le_bytes(), &v))
                .unwrap()
                .observations
                .is_empty()
        );
        // compound discrete events
        let mut v = vec![2u8];
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            observation(&obs(5, 0x0001, &9u32.to_le_bytes(), &v))
                .unwrap()
                .observations
                .len(),
            2
        );
        // compound state/event, 2 octets
        let d = observation(&obs(
            6,
            0x0001,
            &9u32.to_le_bytes(),
            &[2, 0xFF, 0xFF, 0, 0, 0x01, 0x80],
        ))
        .unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x8001,
                width: 16
            })
        );
        // TLV observation
        let v = [1u8, 1, 0, 0, 0, 2, 0, 4, 0xAA, 0xBB];
        assert!(
            observation(&obs(8, 0x0001, &9u32.to_le_bytes(), &v))
                .unwrap()
                .observations
                .is_empty()
        );
        // reserved class
        assert!(observation(&obs(9, 0x0001, &9u32.to_le_bytes(), &[])).is_err());
        // invalid measurement status → absent value
        let d = observation(&numeric(150_364, 6048, 367, -1, 0x0008, &[0x01, 0x00])).unwrap();
        assert_eq!(d.observations[0].value, Value::Absent(AbsentReason::Error));
        // unknown unit → Malformed at the unit
        let bytes = numeric(150_364, 7, 367, -1, 0, &[]);
        assert_eq!(observation(&bytes).unwrap_err().at, 9);
    }

    #[test]
    fn reassembler_single_and_multi() {
        let body = numeric(150_364, 6048, 367, -1, 0, &[]);
        let mut r = Reassembler::new();
        let mut one = vec![
            SegmentHeader {
                first: true,
                last: true,
                counter: 0,
            }
            .to_octet(),
        ];
        one.extend_from_slice(&body);
        assert_eq!(r.feed(&one).unwrap(), Some(body.clone()));
        assert_eq!(live_observation(&one).unwrap().observations.len(), 1);
        // split into 3 segments, counters 1, 2, 3
        let parts = [&body[..4], &body[4..9], &body[9..]];
        for (i, p) in parts.iter().enumerate() {
            let h = SegmentHeader {
                first: i == 0,
                last: i == 2,
                counter: (i + 1) as u8,
            };
            let mut seg = vec![h.to_octet()];
            seg.extend_from_slice(p);
            let got = r.feed(&seg).unwrap();
            assert_eq!(got.is_some(), i == 2);
            if let Some(got) = got {
                assert_eq!(got, body);
            }
        }
        assert_eq!(r.gaps(), 0);
        assert!(live_observation(&[0x01, 0x00]).is_err());
    }

    #[test]
    fn reassembler_errors_and_resets() {
        let mut r = Reassembler::new();
        // non-first without first
        assert!(
            r.feed(&[
                SegmentHeader {
                    first: false,
                    last: true,
                    counter: 5
                }
                .to_octet(),
                1
            ])
            .is_err()
        );
        // gap in the middle
        assert_eq!(
            r.feed(&[
                SegmentHeader {
                    first: true,
                    last: false,
                    counter: 6
                }
                .to_octet(),
                1
            ])
            .unwrap(),
            None
        );
        assert!(r.in_progress());
        assert!(
            r.feed(&[
                SegmentHeader {
                    first: false,
                    last: false,
                    counter: 8
                }
                .to_octet(),
                2
            ])
            .is_err()
        );
        assert!(!r.in_progress());
        // after the reset a continuation is rejected, a new first is accepted
        assert!(
            r.feed(&[
                SegmentHeader {
                    first: false,
                    last: true,
                    counter: 9
                }
                .to_octet(),
                3
            ])
            .is_err()
        );
        let got = r
            .feed(&[
                SegmentHeader {
                    first: true,
                    last: true,
                    counter: 10,
                }
                .to_octet(),
                4,
            ])
            .unwrap();
        assert_eq!(got, Some(vec![4]));
        // counter wraps 63 → 0
        assert_eq!(
            r.feed(&[
                SegmentHeader {
                    first: true,
                    last: false,
                    counter: 63
                }
                .to_octet(),
                5
            ])
            .unwrap(),
            None
        );
        assert_eq!(r.gaps(), 1);
        let got = r
            .feed(&[
                SegmentHeader {
                    first: false,
                    last: true,
                    counter: 0,
                }
                .to_octet(),
                6,
            ])
            .unwrap();
        assert_eq!(got, Some(vec![5, 6]));
        // a new first while one is in progress drops the old one
        r.feed(&[
            SegmentHeader {
                first: true,
                last: false,
                counter: 1,
            }
            .to_octet(),
            7,
        ])
        .unwrap();
        let got = r
            .feed(&[
                SegmentHeader {
                    first: true,
                    last: true,
                    counter: 2,
                }
                .to_octet(),
                8,
            ])
            .unwrap();
        assert_eq!((got, r.dropped()), (Some(vec![8]), 1));
        // empty segment
        assert!(r.feed(&[]).is_err());
    }

    #[test]
    fn reassembler_is_bounded() {
        let mut r = Reassembler::new();
        let mut seg = vec![0u8; 501];
        let mut counter = 0u8;
        let mut failed = false;
        for i in 0..200 {
            seg[0] = SegmentHeader {
                first: i == 0,
                last: false,
                counter,
            }
            .to_octet();
            counter = (counter + 1) % 64;
            if r.feed(&seg).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "growth must be bounded");
        assert!(!r.in_progress());
    }
}
