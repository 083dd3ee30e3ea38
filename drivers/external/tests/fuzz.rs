#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `parse` never panics, whatever arrives: arbitrary bytes, arbitrary JSON values, and valid
//! messages with one element replaced or removed. Errors are one line and their replies JSON;
//! accepted messages give one record per entry with distinct ids, the same on every parse.

use std::collections::HashSet;

use hearth_driver_external::{ContractError, parse};
use hearth_model::{Category, Record, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value};

const RX: Timestamp = Timestamp::from_unix_millis(1_714_557_600_000);

/// Keys of the contract, so that generated objects reach past the unknown-key check.
const KEYS: [&str; 28] = [
    "v",
    "id",
    "device",
    "person",
    "category",
    "readings",
    "alarms",
    "technical",
    "x",
    "model",
    "manufacturer",
    "serial",
    "firmware",
    "mdc",
    "name",
    "value",
    "unit",
    "time",
    "sequence",
    "components",
    "state",
    "code",
    "absent",
    "type",
    "severity",
    "message",
    "",
    "a/b~c",
];

const STRINGS: [&str; 14] = [
    "",
    "raised",
    "cleared",
    "fall",
    "low_battery",
    "minor",
    "Cel",
    "health",
    "not-a-number",
    "2024-05-01T10:00:00Z",
    "2024-02-29T23:59:59.999999999+14:00",
    "SN-1",
    "a\nb",
    "\u{7f}\u{1F321}",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u32..5).prop_map(Value::from),
        prop::sample::select(&STRINGS[..]).prop_map(Value::from),
        ".{0,140}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        3 => prop::sample::select(&KEYS[..]).prop_map(str::to_owned),
                        1 => ".{0,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn corpus() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/valid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// Every JSON pointer inside `v` (except the root).
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, &p, out);
            }
        }
        _ => {}
    }
}

/// Checks what holds for every outcome; returns whether the message was accepted.
fn check(driver: &str, bytes: &[u8]) -> bool {
    let first = parse(driver, bytes, RX, Category::Health);
    let again = parse(driver, bytes, RX, Category::Health);
    assert_eq!(first, again, "parse is a function of its input");
    match first {
        Ok(a) => {
            let v: Value = serde_json::from_slice(bytes).unwrap();
            let entries: usize = ["readings", "alarms", "technical"]
                .iter()
                .map(|k| v.get(k).and_then(Value::as_array).map_or(0, Vec::len))
                .sum();
            assert_eq!(a.records.len(), entries);
            let ids: HashSet<_> = a.records.iter().map(Record::id).collect();
            assert_eq!(ids.len(), a.records.len(), "record ids are distinct");
            true
        }
        Err(e) => {
            check_error(&e);
            false
        }
    }
}

fn check_error(e: &ContractError) {
    let line = e.to_string();
    assert!(
        !line
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
        "{line:?}"
    );
    assert!(e.pointer.is_empty() || e.pointer.starts_with('/'), "{e:?}");
    let reply: Value = serde_json::from_slice(&e.reply_json()).unwrap();
    assert_eq!(reply["pointer"], Value::from(e.pointer.as_str()));
    assert!(reply["error"].is_string());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check("fuzz", &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        check("fuzz", &serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn arbitrary_top_level_objects_never_panic(
        fields in prop::collection::vec((prop::sample::select(&KEYS[..9]), json_value()), 0..9),
        v in 0u32..3,
    ) {
        let mut m: Map<String, Value> = fields.into_iter().map(|(k, x)| (k.to_owned(), x)).collect();
        m.insert("v".into(), Value::from(v));
        check("fuzz", &serde_json::to_vec(&Value::Object(m)).unwrap());
    }

    #[test]
    fn valid_messages_with_one_element_changed_never_panic(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        replacement in prop::option::of(json_value()),
        driver in "[a-z0-9_-]{1,32}",
    ) {
        let messages = corpus();
        let mut m = pick.get(&messages).clone();
        let mut ptrs = Vec::new();
        pointers(&m, "", &mut ptrs);
        let target = at.get(&ptrs).clone();
        let (parent, last) = target.rsplit_once('/').unwrap();
        let last = last.replace("~1", "/").replace("~0", "~");
        match (m.pointer_mut(parent).unwrap(), replacement) {
            (Value::Object(o), Some(r)) => { o.insert(last, r); }
            (Value::Object(o), None) => { o.remove(&last); }
            (Value::Array(a), Some(r)) => { a[last.parse::<usize>().unwrap()] = r; }
            (Value::Array(a), None) => { a.remove(last.parse::<usize>().unwrap()); }
            _ => unreachable!(),
        }
        check(&driver, &serde_json::to_vec(&m).unwrap());
    }

    #[test]
    fn valid_messages_with_bytes_flipped_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let messages = corpus();
        let mut bytes = serde_json::to_vec(pick.get(&messages)).unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        check("fuzz", &bytes);
    }
}

/// The device time of a one-reading message with `time`, if accepted.
fn device_time(time: &str) -> Option<i64> {
    let m = serde_json::json!({"v": 1, "id": "t", "device": {"id": "d"},
        "readings": [{"mdc": 1, "value": 1, "unit": "1", "time": time}]});
    let a = parse(
        "fuzz",
        &serde_json::to_vec(&m).unwrap(),
        RX,
        Category::Health,
    )
    .ok()?;
    match &a.records[0] {
        Record::Reading(r) => r.device_time.map(Timestamp::unix_millis),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The hand-written RFC 3339 parser agrees with the `time` crate (which also accepts a
    /// leap second; hearth does not).
    #[test]
    fn times_agree_with_the_time_crate(
        y in 0u32..10_000, mo in 0u32..14, d in 0u32..33,
        h in 0u32..25, mi in 0u32..61, s in 0u32..60,
        frac in prop::option::of("[0-9]{1,9}"),
        off in prop_oneof![
            Just("Z".to_owned()),
            (0u32..25, 0u32..61, any::<bool>())
                .prop_map(|(h, m, neg)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
    ) {
        let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
        let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}");
        let theirs = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap());
        prop_assert_eq!(device_time(&text), theirs, "{}", text);
    }
}

#[test]
fn errors_are_one_line_and_replies_are_json() {
    for bytes in [
        &b"{\"v\":1,\"id\":\"a\\nb\",\"device\":{\"id\":\"d\"}}"[..],
        b"{\"v\":1,\"id\":\"a\",\"device\":{\"id\":\"d\"},\"r\\neadings\":[]}",
        b"{\"v\":1,\"id\":\"a\",\"device\":{\"id\":\"d\\u0000\"}}",
        b"{\"v\":1,\"id\":\"a\",\"device\":{\"id\":\"d\"},\"alarms\":[{\"type\":\"f\",\"state\":\"\\r\",\"time\":\"\"}]}",
        b"\"\\ud800\"",
        "{\"v\":1,\"id\":\"a\",\"device\":{\"id\":\"d\"},\"\u{2028}\":1}".as_bytes(),
        b"\n\n",
    ] {
        let e = parse("fuzz", bytes, RX, Category::Health).unwrap_err();
        check_error(&e);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut deep = String::from("{\"v\":1,\"id\":\"a\",\"device\":{\"id\":\"d\"},\"x\":");
    deep.push_str(&"[".repeat(100_000));
    let e = parse("fuzz", deep.as_bytes(), RX, Category::Health).unwrap_err();
    assert_eq!(e.pointer, "");
    let mut deep = String::from("{\"v\":1,\"id\":\"a\",\"device\":{\"id\":\"d\"},\"x\":");
    deep.push_str(&"{\"a\":".repeat(10_000));
    assert!(parse("fuzz", deep.as_bytes(), RX, Category::Health).is_err());
}
