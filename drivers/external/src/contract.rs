//! One message → records: a walk over the `serde_json::Value` that checks every element against
//! the contract (`docs/drivers/external.schema.json`) and names the first offending one by its
//! JSON pointer.

use hearth_model::{
    Alarm, AlarmKind, Category, Device, DeviceId, PersonRef, Reading, ReadingFlags, Record,
    RecordId, Severity, TechnicalAlarm, TechnicalKind, Timestamp, Ucum, Value,
};
use serde_json::{Map, Value as Json};

use crate::fields::*;
use crate::topic::is_valid_driver_id;
use crate::{Accepted, ContractError, MAX_ENTRIES, MAX_PAYLOAD_BYTES};

/// 2000-01-01T00:00:00Z: a reading's device time before it means the device clock was never
/// set; the reading is flagged `device_clock_unset`.
const CLOCK_SET_FROM_MS: i64 = 946_684_800_000;

const TOP_KEYS: &[&str] = &[
    "v",
    "id",
    "device",
    "person",
    "category",
    "readings",
    "alarms",
    "technical",
    "x",
];
const DEVICE_KEYS: &[&str] = &["id", "model", "manufacturer", "serial", "firmware", "x"];
const READING_KEYS: &[&str] = &["mdc", "name", "value", "unit", "time", "sequence", "x"];
const ALARM_KEYS: &[&str] = &["type", "state", "time", "sequence", "x"];
const TECHNICAL_KEYS: &[&str] = &["type", "state", "severity", "message", "time", "x"];

/// Alarm types hearth knows (`AlarmKind`); any other snake_case name is accepted as well.
pub const ALARM_TYPES: &[&str] = &[
    "emergency",
    "fall",
    "smoke",
    "gas",
    "carbon_monoxide",
    "water_leak",
    "tamper",
    "door_open",
    "no_bed_return",
];
/// Technical-alarm types hearth knows for devices (`TechnicalKind`); any other snake_case name
/// that is neither an alarm type nor reserved is accepted as well.
pub const TECHNICAL_TYPES: &[&str] = &[
    "low_battery",
    "device_offline",
    "power_loss",
    "charging_fault",
    "poor_coverage",
];
/// Technical-alarm types only hearth itself raises.
pub const RESERVED_TECHNICAL_TYPES: &[&str] = &[
    "storage_corrupt",
    "disk_full",
    "data_dropped",
    "data_expired",
    "delivery_rejected",
    "task_crash_loop",
    "malformed_input",
];

/// Parse and validate one message of `driver` (see the crate documentation).
pub(crate) fn parse(
    driver: &str,
    payload: &[u8],
    received_at: Timestamp,
    default_category: Category,
) -> Result<Accepted, ContractError> {
    if !is_valid_driver_id(driver) {
        return Err(ContractError::new(
            None,
            "",
            format!(
                "driver id {} is invalid; use 1 to 32 of a-z, 0-9, '_' and '-' in the topic",
                quoted(driver)
            ),
        ));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(ContractError::new(
            None,
            "",
            format!(
                "the message is {} bytes, more than the limit of {MAX_PAYLOAD_BYTES}; split its \
                 entries over several messages",
                payload.len()
            ),
        ));
    }
    let root: Json = serde_json::from_slice(payload).map_err(|e| {
        ContractError::new(
            None,
            "",
            format!("the message is not JSON ({e}); send one UTF-8 JSON object per message"),
        )
    })?;
    let id = root
        .get("id")
        .and_then(Json::as_str)
        .filter(|s| message_id_problem(s).is_none())
        .map(str::to_owned);
    let walker = Walker {
        driver,
        received_at,
        default_category,
    };
    walker.message(&root).map_err(|b| ContractError {
        id,
        pointer: b.pointer,
        message: b.message,
    })
}

struct Walker<'a> {
    driver: &'a str,
    received_at: Timestamp,
    default_category: Category,
}

/// What the top level says about every entry.
struct Common<'a> {
    message_id: &'a str,
    device: DeviceId,
    person: Option<PersonRef>,
    category: Category,
    source: String,
}

impl Walker<'_> {
    fn message(&self, root: &Json) -> R<Accepted> {
        let Some(obj) = root.as_object() else {
            return bad(
                "",
                format!(
                    "the message is {}; send one JSON object {{\"v\": 1, \"id\": …, \"device\": …, \
                     \"readings\": […]}}",
                    kind_of(root)
                ),
            );
        };
        version(obj)?;
        check_keys(obj, "", TOP_KEYS)?;
        let message_id = text_of(obj, "", "id")?.ok_or_else(|| Bad {
            pointer: "/id".into(),
            message: "missing \"id\": give every message a unique id of 1 to 128 characters, \
                      e.g. a UUID, and keep it when you re-send the message"
                .into(),
        })?;
        if let Some(problem) = message_id_problem(message_id) {
            return bad("/id", problem);
        }
        let device = self.device(obj)?;
        let person = optional_text(obj, "", "person", 128)?.map(PersonRef::new);
        let category = match obj.get("category") {
            None => self.default_category,
            Some(Json::String(s)) if s == "health" => Category::Health,
            Some(Json::String(s)) if s == "welfare" => Category::Welfare,
            Some(Json::String(s)) if s == "administrative" => Category::Administrative,
            Some(other) => {
                return bad(
                    "/category",
                    format!(
                        "category must be \"health\", \"welfare\" or \"administrative\" (or left \
                         out for the source's category); got {}",
                        describe(other)
                    ),
                );
            }
        };
        optional_extension(obj, "")?;
        let readings = optional_array(obj, "", "readings")?;
        let alarms = optional_array(obj, "", "alarms")?;
        let technical = optional_array(obj, "", "technical")?;
        let total = readings.len() + alarms.len() + technical.len();
        if total == 0 {
            return bad(
                "",
                "the message has no entries; put at least one entry in \"readings\", \"alarms\" \
                 or \"technical\"",
            );
        }
        if total > MAX_ENTRIES {
            return bad(
                "",
                format!(
                    "the message has {total} entries, more than the limit of {MAX_ENTRIES}; split \
                     them over several messages"
                ),
            );
        }
        let (device_id, facts) = device;
        let common = Common {
            message_id,
            source: format!("external:{}:{}", self.driver, device_id.as_str()),
            device: device_id,
            person,
            category,
        };
        let mut records = Vec::with_capacity(total);
        for (i, r) in readings.iter().enumerate() {
            records.push(self.reading(&common, r, i)?);
        }
        for (i, a) in alarms.iter().enumerate() {
            records.push(self.alarm(&common, a, i)?);
        }
        for (i, t) in technical.iter().enumerate() {
            records.push(self.technical(&common, t, i)?);
        }
        Ok(Accepted {
            message_id: message_id.to_owned(),
            device: facts,
            records,
        })
    }

    fn device(&self, obj: &Map<String, Json>) -> R<(DeviceId, Device)> {
        let Some(d) = obj.get("device") else {
            return bad(
                "/device",
                "missing \"device\": add {\"id\": \"<the device's serial number or EUI-64>\"}",
            );
        };
        let Some(d) = d.as_object() else {
            return bad(
                "/device",
                format!(
                    "device must be an object {{\"id\": \"<serial or EUI-64>\"}}; got {}",
                    kind_of(d)
                ),
            );
        };
        check_keys(d, "/device", DEVICE_KEYS)?;
        let Some(id) = text_of(d, "/device", "id")? else {
            return bad(
                "/device/id",
                "missing device \"id\": use the device's stable serial number or EUI-64, the same \
                 in every message",
            );
        };
        if !valid_device_id(id) {
            return bad(
                "/device/id",
                format!(
                    "device id {} is invalid; use 1 to 64 of A-Z, a-z, 0-9, '.', '_', ':', '-', \
                     starting with a letter or digit (e.g. a serial number or an EUI-64)",
                    quoted(id)
                ),
            );
        }
        let text = |key| optional_text(d, "/device", key, 64).map(|t| t.map(str::to_owned));
        let facts_model = text("model")?;
        let manufacturer = text("manufacturer")?;
        let serial = text("serial")?;
        let firmware = text("firmware")?;
        optional_extension(d, "/device")?;
        let device_id =
            DeviceId::new("ext", &format!("{}:{id}", self.driver)).map_err(|e| Bad {
                pointer: "/device/id".into(),
                message: e.to_string(),
            })?;
        let facts = Device {
            id: Some(device_id.clone()),
            manufacturer,
            model: facts_model,
            serial,
            firmware,
            eui64: None,
            battery_percent: None,
        };
        Ok((device_id, facts))
    }

    fn record_id(&self, c: &Common<'_>, section: &str, i: usize) -> RecordId {
        RecordId::derive(&[
            "external",
            self.driver,
            c.message_id,
            section,
            &i.to_string(),
        ])
    }

    fn reading(&self, c: &Common<'_>, v: &Json, i: usize) -> R<Record> {
        let ptr = item("/readings", i);
        let obj = entry_object(v, &ptr, "a reading {\"mdc\": …, \"value\": …, \"time\": …}")?;
        check_keys(obj, &ptr, READING_KEYS)?;
        let mdc = required_mdc(obj, &ptr)?;
        optional_text(obj, &ptr, "name", 64)?;
        let value_ptr = child(&ptr, "value");
        let value = match obj.get("value") {
            Some(v) => reading_value(v, &value_ptr)?,
            None => {
                return bad(
                    &value_ptr,
                    "missing \"value\": give a number, {\"components\": […]}, {\"state\": \"…\"}, \
                     {\"code\": <mdc>} or {\"absent\": \"<reason>\"}",
                );
            }
        };
        let unit_ptr = child(&ptr, "unit");
        let unit = match obj.get("unit") {
            None => None,
            Some(Json::String(u)) if valid_ucum(u) => Some(Ucum::new(u.as_str())),
            Some(other) => {
                return bad(
                    &unit_ptr,
                    format!(
                        "unit must be a UCUM code of 1 to 32 printable ASCII characters, e.g. \
                         \"Cel\" (not \"°C\"), \"mm[Hg]\", \"kg\", \"%\", \"/min\"; got {}",
                        describe(other)
                    ),
                );
            }
        };
        match (&value, &unit) {
            (Value::Numeric { .. } | Value::Compound(_), None) => {
                return bad(
                    &unit_ptr,
                    "missing \"unit\": a numeric value needs its UCUM unit, e.g. \"Cel\", \
                     \"mm[Hg]\", \"kg\", \"%\" or \"/min\"",
                );
            }
            (Value::Enumerated(_), Some(_)) => {
                return bad(
                    &unit_ptr,
                    "a state or code value has no unit; remove \"unit\"",
                );
            }
            _ => {}
        }
        let time = required_time(obj, &ptr)?;
        let sequence = optional_uint(obj, &ptr, "sequence")?;
        optional_extension(obj, &ptr)?;
        let mut b = Reading::builder(c.device.clone(), mdc, value)
            .device_time(time)
            .category(c.category);
        if let Some(u) = unit {
            b = b.unit(u);
        }
        if let Some(s) = sequence {
            b = b.sequence(s);
        }
        if let Some(p) = &c.person {
            b = b.person(p.clone());
        }
        // A device time before 2000 is a clock that was never set (a device's epoch start):
        // keep the reading, flagged, as the BLE driver does, so that receivers do not take the
        // time for a real one (found by the conformance kit's readings check, issue 14).
        if time.unix_millis() < CLOCK_SET_FROM_MS {
            b = b.flags(ReadingFlags {
                device_clock_unset: true,
                ..ReadingFlags::default()
            });
        }
        let mut reading = b.build(self.received_at);
        reading.id = self.record_id(c, "readings", i);
        Ok(Record::Reading(reading))
    }

    fn alarm(&self, c: &Common<'_>, v: &Json, i: usize) -> R<Record> {
        let ptr = item("/alarms", i);
        let obj = entry_object(
            v,
            &ptr,
            "an alarm {\"type\": \"fall\", \"state\": \"raised\", \"time\": …}",
        )?;
        check_keys(obj, &ptr, ALARM_KEYS)?;
        let kind = required_type(obj, &ptr)?;
        if TECHNICAL_TYPES.contains(&kind) || RESERVED_TECHNICAL_TYPES.contains(&kind) {
            return bad(
                &child(&ptr, "type"),
                format!(
                    "{} is a technical alarm, not a safety alarm; send it in \"technical\" with a \
                     severity and a message",
                    quoted(kind)
                ),
            );
        }
        let state = required_state(obj, &ptr)?;
        let time = required_time(obj, &ptr)?;
        let sequence = optional_uint(obj, &ptr, "sequence")?;
        optional_extension(obj, &ptr)?;
        let mut alarm = Alarm::new(
            c.device.clone(),
            AlarmKind::from_name(kind),
            state,
            time,
            self.received_at,
            c.category,
            c.person.clone(),
            sequence,
        );
        alarm.id = self.record_id(c, "alarms", i);
        Ok(Record::Alarm(alarm))
    }

    fn technical(&self, c: &Common<'_>, v: &Json, i: usize) -> R<Record> {
        let ptr = item("/technical", i);
        let obj = entry_object(
            v,
            &ptr,
            "a technical alarm {\"type\": \"low_battery\", \"state\": \"raised\", \"severity\": \
             \"minor\", \"message\": …, \"time\": …}",
        )?;
        check_keys(obj, &ptr, TECHNICAL_KEYS)?;
        let kind = required_type(obj, &ptr)?;
        if ALARM_TYPES.contains(&kind) {
            return bad(
                &child(&ptr, "type"),
                format!(
                    "{} is a safety alarm; send it in \"alarms\" so that it reaches the response \
                     centre in the alarm lane",
                    quoted(kind)
                ),
            );
        }
        if RESERVED_TECHNICAL_TYPES.contains(&kind) {
            return bad(
                &child(&ptr, "type"),
                format!(
                    "{} is reserved for hearth's own technical alarms; use a name of your own, \
                     e.g. \"sensor_fault\"",
                    quoted(kind)
                ),
            );
        }
        let state = required_state(obj, &ptr)?;
        let severity_ptr = child(&ptr, "severity");
        let severity = match obj.get("severity") {
            Some(Json::String(s)) if s == "critical" => Severity::Critical,
            Some(Json::String(s)) if s == "major" => Severity::Major,
            Some(Json::String(s)) if s == "minor" => Severity::Minor,
            Some(Json::String(s)) if s == "warning" => Severity::Warning,
            found => {
                return bad(
                    &severity_ptr,
                    format!(
                        "severity must be \"critical\", \"major\", \"minor\" or \"warning\"; {}",
                        found.map_or_else(
                            || "it is missing".to_owned(),
                            |f| { format!("got {}", describe(f)) }
                        )
                    ),
                );
            }
        };
        let Some(message) = optional_text(obj, &ptr, "message", 256)? else {
            return bad(
                &child(&ptr, "message"),
                "missing \"message\": say for the operator what happened and what to do (no \
                 health data, no names), e.g. \"battery low: replace within a week\"",
            );
        };
        let time = required_time(obj, &ptr)?;
        optional_extension(obj, &ptr)?;
        let mut t = TechnicalAlarm::new(
            c.source.clone(),
            TechnicalKind::from_name(kind),
            severity,
            state,
            message,
            time,
        );
        t.id = self.record_id(c, "technical", i);
        Ok(Record::Technical(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_written_as_fractions_count_as_in_json_schema() {
        let n = |s: &str| as_uint(&serde_json::from_str(s).unwrap());
        assert_eq!(n("1"), Some(1));
        assert_eq!(n("1.0"), Some(1));
        assert_eq!(n("1e2"), Some(100));
        assert_eq!(n("18446744073709551615"), Some(u64::MAX));
        assert_eq!(n("18446744073709551616"), None);
        assert_eq!(n("1.5"), None);
        assert_eq!(n("-1"), None);
        assert_eq!(n("true"), None);
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(child("/readings/0", "a/b~c"), "/readings/0/a~1b~0c");
    }

    #[test]
    fn suggestions_use_edit_distance() {
        assert_eq!(distance("unti", "unit"), 2);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("time", "time"), 0);
    }
}
