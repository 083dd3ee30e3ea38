//! The field readers of the contract walk: each reads one element of a message, checks it
//! against the contract (`docs/drivers/external.schema.json`) and names the first offending one
//! by its JSON pointer ([`Bad`]).

use hearth_model::{AbsentReason, AlarmState, Component, Enumerated, Mdc, Timestamp, Value};
use serde_json::{Map, Value as Json};

use crate::{CONTRACT_VERSION, rfc3339};

/// Longest message id, in characters.
pub const MAX_MESSAGE_ID_LEN: usize = 128;
/// Most components of a compound value.
pub const MAX_COMPONENTS: usize = 16;
pub(crate) const VALUE_KEYS: &[&str] = &["components", "state", "code", "absent"];
pub(crate) const COMPONENT_KEYS: &[&str] = &["mdc", "value"];

/// An error before it gets the message id.
pub(crate) struct Bad {
    pub(crate) pointer: String,
    pub(crate) message: String,
}

pub(crate) type R<T> = Result<T, Bad>;

pub(crate) fn bad<T>(pointer: &str, message: impl Into<String>) -> R<T> {
    Err(Bad {
        pointer: pointer.to_owned(),
        message: message.into(),
    })
}

/// The pointer of member `key` of the object at `ptr` (RFC 6901 escaping).
pub(crate) fn child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

pub(crate) fn item(ptr: &str, i: usize) -> String {
    format!("{ptr}/{i}")
}

/// A short, one-line, quoted rendering of text the driver sent (keys, names).
pub(crate) fn quoted(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

pub(crate) fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

pub(crate) fn version(obj: &Map<String, Json>) -> R<()> {
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
pub(crate) fn message_id_problem(s: &str) -> Option<String> {
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

pub(crate) fn valid_device_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

pub(crate) fn valid_ucum(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

pub(crate) fn valid_type_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A JSON number that is a non-negative integer below 2^64 (`1.0` counts, as in JSON Schema).
pub(crate) fn as_uint(v: &Json) -> Option<u64> {
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
pub(crate) fn describe(v: &Json) -> String {
    match v {
        Json::String(s) => format!("the string {}", quoted(s)),
        other => kind_of(other).to_owned(),
    }
}

/// Edit distance, for "did you mean".
pub(crate) fn distance(a: &str, b: &str) -> usize {
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

pub(crate) fn check_keys(obj: &Map<String, Json>, ptr: &str, allowed: &[&str]) -> R<()> {
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

pub(crate) fn entry_object<'v>(v: &'v Json, ptr: &str, what: &str) -> R<&'v Map<String, Json>> {
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
pub(crate) fn text_of<'v>(obj: &'v Map<String, Json>, ptr: &str, key: &str) -> R<Option<&'v str>> {
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
pub(crate) fn optional_text<'v>(
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

pub(crate) fn optional_array<'v>(
    obj: &'v Map<String, Json>,
    ptr: &str,
    key: &str,
) -> R<&'v [Json]> {
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
pub(crate) fn optional_extension(obj: &Map<String, Json>, ptr: &str) -> R<()> {
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

pub(crate) fn optional_uint(obj: &Map<String, Json>, ptr: &str, key: &str) -> R<Option<u64>> {
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

pub(crate) fn describe_number(v: &Json) -> String {
    match v {
        Json::Number(n) if n.as_i64().is_some_and(|i| i < 0) => "a negative number".into(),
        Json::Number(n) if n.is_u64() => format!("the number {n}"),
        Json::Number(_) => "a fraction or a number out of range".into(),
        other => describe(other),
    }
}

pub(crate) fn mdc_of(v: &Json, ptr: &str) -> R<Mdc> {
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

pub(crate) fn required_mdc(obj: &Map<String, Json>, ptr: &str) -> R<Mdc> {
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

pub(crate) fn required_time(obj: &Map<String, Json>, ptr: &str) -> R<Timestamp> {
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

pub(crate) fn required_state(obj: &Map<String, Json>, ptr: &str) -> R<AlarmState> {
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

pub(crate) fn required_type<'v>(obj: &'v Map<String, Json>, ptr: &str) -> R<&'v str> {
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

pub(crate) fn number(n: &serde_json::Number, ptr: &str) -> R<Value> {
    let Some(x) = n.as_f64().filter(|x| x.is_finite()) else {
        return bad(ptr, "the number is out of range; send a finite number");
    };
    Ok(Value::numeric_from_text(x, &n.to_string()))
}

pub(crate) fn absent(v: &Json, ptr: &str) -> R<Value> {
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

pub(crate) fn reading_value(v: &Json, ptr: &str) -> R<Value> {
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

pub(crate) fn component(v: &Json, ptr: &str) -> R<Component> {
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
