//! The outbox's own storage encoding of a [`Record`]: versioned JSON.
//!
//! The model derives no `Serialize` on purpose, so this mirror is the only place that decides
//! how records look on disk. JSON keeps the database inspectable with `sqlite3` for operators;
//! the version field `v` lets a later schema read old rows.

use hearth_model::{
    AbsentReason, Alarm, AlarmKind, AlarmState, Category, Component, DeviceId, Enumerated, Mdc,
    PersonRef, Reading, ReadingFlags, Record, RecordId, Severity, TechnicalAlarm, TechnicalKind,
    Timestamp, Ucum, Value,
};
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    v: u8,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t")]
enum Body {
    #[serde(rename = "reading")]
    Reading {
        dev: String,
        mdc: u32,
        val: StoredValue,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dt: Option<i64>,
        rx: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        cat: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        clock_unset: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        stored: bool,
    },
    #[serde(rename = "alarm")]
    Alarm {
        dev: String,
        kind: String,
        raised: bool,
        at: i64,
        rx: i64,
        cat: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    #[serde(rename = "technical")]
    Technical {
        src: String,
        kind: String,
        sev: u8,
        raised: bool,
        msg: String,
        at: i64,
    },
}

#[derive(Serialize, Deserialize)]
enum StoredValue {
    #[serde(rename = "n")]
    Numeric(f64, Option<u8>),
    #[serde(rename = "c")]
    Compound(Vec<(u32, StoredValue)>),
    #[serde(rename = "code")]
    Code(u32),
    #[serde(rename = "bits")]
    Bits(u32, u8),
    #[serde(rename = "text")]
    Text(String),
    #[serde(rename = "absent")]
    Absent(String),
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn value_out(v: &Value) -> StoredValue {
    match v {
        Value::Numeric { value, decimals } => StoredValue::Numeric(*value, *decimals),
        Value::Compound(parts) => StoredValue::Compound(
            parts
                .iter()
                .map(|c| (c.mdc.0, value_out(&c.value)))
                .collect(),
        ),
        Value::Enumerated(Enumerated::Code(m)) => StoredValue::Code(m.0),
        Value::Enumerated(Enumerated::Bits { bits, width }) => StoredValue::Bits(*bits, *width),
        Value::Enumerated(Enumerated::Text(t)) => StoredValue::Text(t.clone()),
        Value::Absent(r) => StoredValue::Absent(r.as_str().to_owned()),
    }
}

fn value_in(v: StoredValue) -> Result<Value, String> {
    Ok(match v {
        StoredValue::Numeric(value, decimals) => Value::Numeric { value, decimals },
        StoredValue::Compound(parts) => Value::Compound(
            parts
                .into_iter()
                .map(|(mdc, v)| {
                    Ok(Component {
                        mdc: Mdc(mdc),
                        value: value_in(v)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        StoredValue::Code(c) => Value::Enumerated(Enumerated::Code(Mdc(c))),
        StoredValue::Bits(bits, width) => Value::Enumerated(Enumerated::Bits { bits, width }),
        StoredValue::Text(t) => Value::Enumerated(Enumerated::Text(t)),
        StoredValue::Absent(r) => Value::Absent(
            AbsentReason::from_name(&r).ok_or_else(|| format!("unknown absent reason {r:?}"))?,
        ),
    })
}

fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::Critical => 0,
        Severity::Major => 1,
        Severity::Minor => 2,
        Severity::Warning => 3,
    }
}

fn severity_from(c: u8) -> Result<Severity, String> {
    match c {
        0 => Ok(Severity::Critical),
        1 => Ok(Severity::Major),
        2 => Ok(Severity::Minor),
        3 => Ok(Severity::Warning),
        _ => Err(format!("unknown severity code {c}")),
    }
}

fn state_of(raised: bool) -> AlarmState {
    if raised {
        AlarmState::Raised
    } else {
        AlarmState::Cleared
    }
}

fn category_from(c: u8) -> Result<Category, String> {
    Category::from_code(c).ok_or_else(|| format!("unknown category code {c}"))
}

/// Encode a record for storage.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let body = match record {
        Record::Reading(r) => Body::Reading {
            dev: r.device.as_str().to_owned(),
            mdc: r.mdc.0,
            val: value_out(&r.value),
            unit: r.unit.as_ref().map(|u| u.as_str().to_owned()),
            dt: r.device_time.map(Timestamp::unix_millis),
            rx: r.received_at.unix_millis(),
            seq: r.sequence,
            cat: r.category.code(),
            person: r.person.as_ref().map(|p| p.as_str().to_owned()),
            clock_unset: r.flags.device_clock_unset,
            stored: r.flags.stored_record,
        },
        Record::Alarm(a) => Body::Alarm {
            dev: a.device.as_str().to_owned(),
            kind: a.kind.as_str().to_owned(),
            raised: a.state == AlarmState::Raised,
            at: a.at.unix_millis(),
            rx: a.received_at.unix_millis(),
            cat: a.category.code(),
            person: a.person.as_ref().map(|p| p.as_str().to_owned()),
            seq: a.sequence,
        },
        Record::Technical(t) => Body::Technical {
            src: t.source.clone(),
            kind: t.kind.as_str().to_owned(),
            sev: severity_code(t.severity),
            raised: t.state == AlarmState::Raised,
            msg: t.message.clone(),
            at: t.at.unix_millis(),
        },
    };
    // Serializing these plain structs cannot fail (no maps with non-string keys, no I/O);
    // an empty payload would be caught by decode and dead-lettered, never lost silently.
    serde_json::to_vec(&Stored { v: VERSION, body }).unwrap_or_default()
}

/// Decode a stored record; `id` is the identifier stored beside it.
pub(crate) fn decode(id: RecordId, bytes: &[u8]) -> Result<Record, String> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if stored.v != VERSION {
        return Err(format!("unknown payload version {}", stored.v));
    }
    let device = |s: &str| DeviceId::parse(s).map_err(|e| e.to_string());
    Ok(match stored.body {
        Body::Reading {
            dev,
            mdc,
            val,
            unit,
            dt,
            rx,
            seq,
            cat,
            person,
            clock_unset,
            stored,
        } => Record::Reading(Reading {
            id,
            device: device(&dev)?,
            mdc: Mdc(mdc),
            value: value_in(val)?,
            unit: unit.map(Ucum::new),
            device_time: dt.map(Timestamp::from_unix_millis),
            received_at: Timestamp::from_unix_millis(rx),
            sequence: seq,
            category: category_from(cat)?,
            person: person.map(PersonRef::new),
            flags: ReadingFlags {
                device_clock_unset: clock_unset,
                stored_record: stored,
            },
        }),
        Body::Alarm {
            dev,
            kind,
            raised,
            at,
            rx,
            cat,
            person,
            seq,
        } => Record::Alarm(Alarm {
            id,
            device: device(&dev)?,
            kind: AlarmKind::from_name(&kind),
            state: state_of(raised),
            at: Timestamp::from_unix_millis(at),
            received_at: Timestamp::from_unix_millis(rx),
            category: category_from(cat)?,
            person: person.map(PersonRef::new),
            sequence: seq,
        }),
        Body::Technical {
            src,
            kind,
            sev,
            raised,
            msg,
            at,
        } => Record::Technical(TechnicalAlarm {
            id,
            source: src,
            kind: TechnicalKind::from_name(&kind),
            severity: severity_from(sev)?,
            state: state_of(raised),
            message: msg,
            at: Timestamp::from_unix_millis(at),
        }),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn arb_record() -> impl Strategy<Value = Record> {
        let reading = (
            0u32..200_000,
            prop_oneof![
                (-1e6f64..1e6, proptest::option::of(0u8..6)).prop_map(|(v, d)| Value::Numeric {
                    value: v,
                    decimals: d
                }),
                proptest::sample::select(AbsentReason::ALL.to_vec()).prop_map(Value::Absent),
                "[a-z]{0,8}".prop_map(|t| Value::Enumerated(Enumerated::Text(t))),
                (any::<u32>(), 0u8..32)
                    .prop_map(|(bits, width)| Value::Enumerated(Enumerated::Bits { bits, width })),
                proptest::collection::vec((0u32..200_000, -500f64..500.0), 0..4).prop_map(|v| {
                    Value::Compound(
                        v.into_iter()
                            .map(|(m, x)| Component {
                                mdc: Mdc(m),
                                value: Value::numeric(x),
                            })
                            .collect(),
                    )
                }),
            ],
            proptest::option::of(0i64..4_000_000_000_000),
            proptest::option::of(any::<u64>()),
            0i64..4_000_000_000_000,
            proptest::sample::select(Category::ALL.to_vec()),
            any::<(bool, bool)>(),
        )
            .prop_map(|(mdc, value, dt, seq, rx, cat, (cu, st))| {
                let mut b = Reading::builder(
                    DeviceId::new("sim", "dev-1").unwrap_or_else(|_| unreachable!()),
                    Mdc(mdc),
                    value,
                )
                .category(cat)
                .unit(Ucum::new("mm[Hg]"))
                .flags(ReadingFlags {
                    device_clock_unset: cu,
                    stored_record: st,
                });
                if let Some(dt) = dt {
                    b = b.device_time(Timestamp::from_unix_millis(dt));
                }
                if let Some(s) = seq {
                    b = b.sequence(s);
                }
                Record::Reading(b.build(Timestamp::from_unix_millis(rx)))
            });
        let alarm = ("[a-z_]{1,12}", any::<bool>(), 0i64..4_000_000_000_000).prop_map(
            |(kind, raised, at)| {
                Record::Alarm(Alarm::new(
                    DeviceId::new("z2m", "0x00158d0001").unwrap_or_else(|_| unreachable!()),
                    AlarmKind::from_name(&kind),
                    state_of(raised),
                    Timestamp::from_unix_millis(at),
                    Timestamp::from_unix_millis(at + 3),
                    Category::Health,
                    Some(PersonRef::new("Patient/1")),
                    None,
                ))
            },
        );
        let technical = ("[a-z_]{1,12}", 0u8..4, ".{0,40}").prop_map(|(kind, sev, msg)| {
            Record::Technical(TechnicalAlarm::new(
                "outbox",
                TechnicalKind::from_name(&kind),
                severity_from(sev).unwrap_or(Severity::Warning),
                AlarmState::Raised,
                msg,
                Timestamp::from_unix_millis(42),
            ))
        });
        prop_oneof![reading, alarm, technical]
    }

    proptest! {
        #[test]
        fn storage_encoding_round_trips(record in arb_record()) {
            let bytes = encode(&record);
            let back = decode(record.id(), &bytes).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back, record);
        }

        #[test]
        fn decoding_garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(RecordId::derive(&["x"]), &bytes);
        }
    }
}
