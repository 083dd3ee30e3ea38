//! One message → records: a walk over the `serde_json::Value` that checks every element against
//! the contract (`docs/drivers/external.schema.json`) and names the first offending one by its
//! JSON pointer.

use hearth_model::{
    AbsentReason, Alarm, AlarmKind, AlarmState, Category, Component, Device, DeviceId, Enumerated,
    Mdc, PersonRef, Reading, ReadingFlags, Record, RecordId, Severity, TechnicalAlarm,
    TechnicalKind, Timestamp, Ucum, Value,
};
use serde_json::{Map, Value as Json};

use crate::topic::is_valid_driver_id;
use crate::{Accepted, CONTRACT_VERSION, ContractError, MAX_ENTRIES, MAX_PAYLOAD_BYTES, rfc3339};

/// Longest message id, in characters.
pub const MAX_MESSAGE_ID_LEN: usize = 128;
/// Most components of a compound value.
pub const MAX_COMPONENTS: usize = 16;

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
const VALUE_KEYS: &[&str] = &["components", "state", "code", "absent"];
const COMPONENT_KEYS: &[&str] = &["mdc", "value"];
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

/// An error before it gets the message id.
struct Bad {
    pointer: String,
    message: String,
}

type R<T> = Result<T, Bad>;

fn bad<T>(pointer: &str, message: impl Into<String>) -> R<T> {
    Err(Bad {
        pointer: pointer.to_owned(),
        message: message.into(),
    })
}

/// The pointer of member `key` of the object at `ptr` (RFC 6901 escaping).
fn child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn item(ptr: &str, i: usize) -> String {
    format!("{ptr}/{i}")
}

/// A short, one-line, quoted rendering of text the driver sent (keys, names).
fn quoted(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

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

fn version(obj: &Map<String, Json>) -> R<()> {
    match obj.get("v") {
        None => bad(
            "/v",
            format!("missing \"v\": add \"v\": {CONTRACT_VERSION} (the contract version)"),
        ),
        Some(v) => match as_uint(v) {
            Some(n) if n == u64::from(CONTRACT_VERSION) => Ok(()),
            Some(n) => bad(
                "/v",
                format!(
                    "contract version {n} is not supported; this hearth speaks version \
                     {CONTRACT_VERSION}: send \"v\": {CONTRACT_VERSION}"
                ),
            ),
            None => bad(
                "/v",
                format!(
                    "\"v\" must be the integer {CONTRACT_VERSION}; got {}",
                    describe(v)
                ),
            ),
        },
    }
}

/// Why a message id is not acceptable, or `None`.
fn message_id_problem(s: &str) -> Option<String> {
    let n = s.chars().count();
    if n == 0 || n > MAX_MESSAGE_ID_LEN {
        return Some(format!(
            "the message id has {n} characters; use 1 to {MAX_MESSAGE_ID_LEN}, e.g. a UUID"
        ));
    }
    if s.chars().any(char::is_control) {
        return Some("the message id contains a control character; use printable text".into());
    }
    None
}

fn valid_device_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

fn valid_ucum(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

fn valid_type_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A JSON number that is a non-negative integer below 2^64 (`1.0` counts, as in JSON Schema).
fn as_uint(v: &Json) -> Option<u64> {
    let n = v.as_number()?;
    if let Some(u) = n.as_u64() {
        return Some(u);
    }
    let f = n.as_f64()?;
    // 18446744073709551616.0 is 2^64, exactly representable.
    if f.is_finite() && f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Some(f as u64);
    }
    None
}

/// A short description of a wrong value for an error message: its kind, and for strings and
/// small integers the value itself (they are names or codes, not measurements).
fn describe(v: &Json) -> String {
    match v {
        Json::String(s) => format!("the string {}", quoted(s)),
        other => kind_of(other).to_owned(),
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn check_keys(obj: &Map<String, Json>, ptr: &str, allowed: &[&str]) -> R<()> {
    for key in obj.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let suggestion = allowed
            .iter()
            .filter(|a| {
                key.chars().count() <= 40
                    && (a.eq_ignore_ascii_case(key) || distance(&key.to_lowercase(), a) <= 2)
            })
            .min_by_key(|a| distance(key, a))
            .map(|a| format!("did you mean \"{a}\"? "))
            .unwrap_or_default();
        let vendor = if allowed.contains(&"x") {
            "; put vendor data under \"x\""
        } else {
            ""
        };
        return bad(
            &child(ptr, key),
            format!(
                "unknown key {}; {suggestion}allowed here: {}{vendor}",
                quoted(key),
                allowed.join(", ")
            ),
        );
    }
    Ok(())
}

fn entry_object<'v>(v: &'v Json, ptr: &str, what: &str) -> R<&'v Map<String, Json>> {
    v.as_object().map_or_else(
        || {
            bad(
                ptr,
                format!("each entry must be {what}; got {}", kind_of(v)),
            )
        },
        Ok,
    )
}

/// A string member, `None` when absent; an error when present but not a string.
fn text_of<'v>(obj: &'v Map<String, Json>, ptr: &str, key: &str) -> R<Option<&'v str>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => bad(
            &child(ptr, key),
            format!("\"{key}\" must be a string; got {}", kind_of(other)),
        ),
    }
}

/// An optional text of 1 to `max` characters without control characters.
fn optional_text<'v>(
    obj: &'v Map<String, Json>,
    ptr: &str,
    key: &str,
    max: usize,
) -> R<Option<&'v str>> {
    let Some(s) = text_of(obj, ptr, key)? else {
        return Ok(None);
    };
    let n = s.chars().count();
    if n == 0 || n > max {
        return bad(
            &child(ptr, key),
            format!("\"{key}\" has {n} characters; use 1 to {max} (or leave it out)"),
        );
    }
    if s.chars().any(char::is_control) {
        return bad(
            &child(ptr, key),
            format!("\"{key}\" contains a control character (e.g. a line break); use one line"),
        );
    }
    Ok(Some(s))
}

fn optional_array<'v>(obj: &'v Map<String, Json>, ptr: &str, key: &str) -> R<&'v [Json]> {
    match obj.get(key) {
        None => Ok(&[]),
        Some(Json::Array(a)) => Ok(a),
        Some(other) => bad(
            &child(ptr, key),
            format!(
                "\"{key}\" must be an array of entries [{{…}}, …]; got {}",
                kind_of(other)
            ),
        ),
    }
}

/// `x`, the vendor extension: any object, ignored.
fn optional_extension(obj: &Map<String, Json>, ptr: &str) -> R<()> {
    match obj.get("x") {
        None | Some(Json::Object(_)) => Ok(()),
        Some(other) => bad(
            &child(ptr, "x"),
            format!(
                "\"x\" (vendor extensions) must be an object {{\"your_key\": …}}; got {}",
                kind_of(other)
            ),
        ),
    }
}

fn optional_uint(obj: &Map<String, Json>, ptr: &str, key: &str) -> R<Option<u64>> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => as_uint(v).map(Some).ok_or_else(|| Bad {
            pointer: child(ptr, key),
            message: format!(
                "\"{key}\" must be an integer from 0 to 18446744073709551615; got {}",
                describe_number(v)
            ),
        }),
    }
}

fn describe_number(v: &Json) -> String {
    match v {
        Json::Number(n) if n.as_i64().is_some_and(|i| i < 0) => "a negative number".into(),
        Json::Number(n) if n.is_u64() => format!("the number {n}"),
        Json::Number(_) => "a fraction or a number out of range".into(),
        other => describe(other),
    }
}

fn mdc_of(v: &Json, ptr: &str) -> R<Mdc> {
    match as_uint(v).and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(Mdc(n)),
        _ => bad(
            ptr,
            format!(
                "an MDC code (IEEE 11073-10101, partition × 65536 + term) is an integer from 1 \
                 to 4294967295, e.g. 150364 for body temperature; got {}",
                describe_number(v)
            ),
        ),
    }
}

fn required_mdc(obj: &Map<String, Json>, ptr: &str) -> R<Mdc> {
    let p = child(ptr, "mdc");
    match obj.get("mdc") {
        Some(v) => mdc_of(v, &p),
        None => bad(
            &p,
            "missing \"mdc\": give the IEEE 11073-10101 code of what was measured, e.g. 150364 \
             (body temperature) or 150020 (blood pressure)",
        ),
    }
}

fn required_time(obj: &Map<String, Json>, ptr: &str) -> R<Timestamp> {
    let p = child(ptr, "time");
    match obj.get("time") {
        Some(Json::String(s)) => rfc3339::parse(s).map_or_else(
            || {
                bad(
                    &p,
                    format!(
                        "time {} is not an RFC 3339 date-time with an offset; write e.g. \
                         \"2024-05-01T10:00:00Z\" or \"2024-05-01T12:00:00.250+02:00\"",
                        quoted(s)
                    ),
                )
            },
            Ok,
        ),
        Some(other) => bad(
            &p,
            format!(
                "time must be an RFC 3339 string such as \"2024-05-01T10:00:00Z\"; got {}",
                kind_of(other)
            ),
        ),
        None => bad(
            &p,
            "missing \"time\": when the device measured or the event happened, RFC 3339 with an \
             offset, e.g. \"2024-05-01T10:00:00Z\"",
        ),
    }
}

fn required_state(obj: &Map<String, Json>, ptr: &str) -> R<AlarmState> {
    match obj.get("state") {
        Some(Json::String(s)) if s == "raised" => Ok(AlarmState::Raised),
        Some(Json::String(s)) if s == "cleared" => Ok(AlarmState::Cleared),
        found => bad(
            &child(ptr, "state"),
            format!(
                "state must be \"raised\" (the condition started) or \"cleared\" (it ended); {}",
                found.map_or_else(
                    || "it is missing".to_owned(),
                    |f| format!("got {}", describe(f))
                )
            ),
        ),
    }
}

fn required_type<'v>(obj: &'v Map<String, Json>, ptr: &str) -> R<&'v str> {
    let p = child(ptr, "type");
    match obj.get("type") {
        Some(Json::String(s)) if valid_type_name(s) => Ok(s),
        found => bad(
            &p,
            format!(
                "type must be a snake_case name (a-z, 0-9, '_', starting with a letter, at most \
                 64), e.g. \"fall\" or \"low_battery\"; {}",
                found.map_or_else(
                    || "it is missing".to_owned(),
                    |f| format!("got {}", describe(f))
                )
            ),
        ),
    }
}

fn number(n: &serde_json::Number, ptr: &str) -> R<Value> {
    let Some(x) = n.as_f64().filter(|x| x.is_finite()) else {
        return bad(ptr, "the number is out of range; send a finite number");
    };
    Ok(Value::numeric_from_text(x, &n.to_string()))
}

fn absent(v: &Json, ptr: &str) -> R<Value> {
    match v {
        Json::String(s) => AbsentReason::from_name(s).map(Value::Absent),
        _ => None,
    }
    .map_or_else(
        || {
            bad(
                ptr,
                format!(
                    "absent must be one of {}; got {}",
                    AbsentReason::ALL.map(AbsentReason::as_str).join(", "),
                    describe(v)
                ),
            )
        },
        Ok,
    )
}

fn reading_value(v: &Json, ptr: &str) -> R<Value> {
    let obj = match v {
        Json::Number(n) => return number(n, ptr),
        Json::Object(o) => o,
        Json::String(_) => {
            return bad(
                ptr,
                "value is a string; write a number without quotes (36.6), or {\"state\": \"…\"} \
                 for a text state",
            );
        }
        other => {
            return bad(
                ptr,
                format!(
                    "value must be a number, {{\"components\": […]}}, {{\"state\": \"…\"}}, \
                     {{\"code\": <mdc>}} or {{\"absent\": \"<reason>\"}}; got {}",
                    kind_of(other)
                ),
            );
        }
    };
    check_keys(obj, ptr, VALUE_KEYS)?;
    let mut present = VALUE_KEYS.iter().filter(|k| obj.contains_key(**k));
    let (Some(key), None) = (present.next(), present.next()) else {
        let found: Vec<&str> = VALUE_KEYS
            .iter()
            .copied()
            .filter(|k| obj.contains_key(*k))
            .collect();
        return bad(
            ptr,
            format!(
                "a value object has exactly one of \"components\", \"state\", \"code\" or \
                 \"absent\"; this one has {}",
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(" and ")
                }
            ),
        );
    };
    let p = child(ptr, key);
    match (*key, &obj[*key]) {
        ("components", Json::Array(items)) => {
            if items.is_empty() || items.len() > MAX_COMPONENTS {
                return bad(
                    &p,
                    format!(
                        "a compound value has 1 to {MAX_COMPONENTS} components; this one has {}",
                        items.len()
                    ),
                );
            }
            let mut components = Vec::with_capacity(items.len());
            for (i, c) in items.iter().enumerate() {
                components.push(component(c, &item(&p, i))?);
            }
            Ok(Value::Compound(components))
        }
        ("components", other) => bad(
            &p,
            format!(
                "components must be an array [{{\"mdc\": …, \"value\": …}}, …]; got {}",
                kind_of(other)
            ),
        ),
        ("state", s) => match s {
            Json::String(t)
                if (1..=64).contains(&t.chars().count()) && !t.chars().any(char::is_control) =>
            {
                Ok(Value::Enumerated(Enumerated::Text(t.clone())))
            }
            other => bad(
                &p,
                format!(
                    "state must be a text of 1 to 64 characters on one line, e.g. \"in_bed\"; got {}",
                    kind_of(other)
                ),
            ),
        },
        ("code", c) => mdc_of(c, &p).map(|m| Value::Enumerated(Enumerated::Code(m))),
        (_, a) => absent(a, &p),
    }
}

fn component(v: &Json, ptr: &str) -> R<Component> {
    let Some(obj) = v.as_object() else {
        return bad(
            ptr,
            format!(
                "each component must be an object {{\"mdc\": 150021, \"value\": 120}}; got {}",
                kind_of(v)
            ),
        );
    };
    check_keys(obj, ptr, COMPONENT_KEYS)?;
    let mdc = required_mdc(obj, ptr)?;
    let p = child(ptr, "value");
    let value = match obj.get("value") {
        Some(Json::Number(n)) => number(n, &p)?,
        Some(Json::Object(o)) => {
            check_keys(o, &p, &["absent"])?;
            match o.get("absent") {
                Some(a) => absent(a, &child(&p, "absent"))?,
                None => {
                    return bad(
                        &p,
                        "a component's value is a number or {\"absent\": \"<reason>\"}; this \
                         object has no \"absent\"",
                    );
                }
            }
        }
        Some(other) => {
            return bad(
                &p,
                format!(
                    "a component's value is a number or {{\"absent\": \"<reason>\"}}; got {}",
                    kind_of(other)
                ),
            );
        }
        None => {
            return bad(
                &p,
                "missing \"value\": a component's value is a number or {\"absent\": \"<reason>\"}",
            );
        }
    };
    Ok(Component { mdc, value })
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
