#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Table tests of the contract: valid messages and what they become, invalid messages and the
//! pointer and advice of their error, idempotent record ids.

use hearth_driver_external::{Accepted, ContractError, parse};
use hearth_model::{
    AbsentReason, AlarmKind, AlarmState, Category, Component, Enumerated, Mdc, Record, Severity,
    TechnicalKind, Timestamp, Value,
};
use serde_json::{Value as Json, json};

const RX: Timestamp = Timestamp::from_unix_millis(1_714_557_600_000);

fn run(driver: &str, v: &Json) -> Result<Accepted, ContractError> {
    parse(
        driver,
        &serde_json::to_vec(v).unwrap(),
        RX,
        Category::Welfare,
    )
}

fn ok(v: &Json) -> Accepted {
    run("acme_bed", v).unwrap_or_else(|e| panic!("{e}\n{v:#}"))
}

/// A valid message with one entry of each kind.
fn valid() -> Json {
    json!({
        "v": 1,
        "id": "m-1",
        "device": {"id": "SN-1234", "model": "T1", "manufacturer": "Acme", "firmware": "1.2"},
        "readings": [
            {"mdc": 150364, "value": 36.6, "unit": "Cel", "time": "2024-05-01T10:00:00Z"}
        ],
        "alarms": [{"type": "fall", "state": "raised", "time": "2024-05-01T10:00:01Z"}],
        "technical": [{
            "type": "low_battery", "state": "raised", "severity": "minor",
            "message": "battery low: replace within a week", "time": "2024-05-01T10:00:02Z"
        }]
    })
}

fn unescape(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

/// `v` with the element at `ptr` set to `new` (objects: inserted; arrays: replaced or pushed).
fn set(mut v: Json, ptr: &str, new: Json) -> Json {
    let (parent, last) = ptr.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap() {
        Json::Object(o) => {
            o.insert(unescape(last), new);
        }
        Json::Array(a) => {
            let i: usize = last.parse().unwrap();
            if i == a.len() {
                a.push(new);
            } else {
                a[i] = new;
            }
        }
        other => panic!("cannot set {ptr} in {other}"),
    }
    v
}

fn remove(mut v: Json, ptr: &str) -> Json {
    let (parent, last) = ptr.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap() {
        Json::Object(o) => {
            o.remove(&unescape(last)).unwrap();
        }
        Json::Array(a) => {
            a.remove(last.parse().unwrap());
        }
        other => panic!("cannot remove {ptr} from {other}"),
    }
    v
}

#[test]
fn a_valid_message_becomes_records_in_message_order() {
    let a = ok(&valid());
    assert_eq!(a.message_id, "m-1");
    assert_eq!(
        a.device.id.as_ref().unwrap().as_str(),
        "ext:acme_bed:SN-1234"
    );
    assert_eq!(a.device.model.as_deref(), Some("T1"));
    assert_eq!(a.device.manufacturer.as_deref(), Some("Acme"));
    assert_eq!(a.device.firmware.as_deref(), Some("1.2"));
    assert_eq!(a.records.len(), 3);
    let Record::Reading(r) = &a.records[0] else {
        panic!("not a reading")
    };
    assert_eq!(r.device.as_str(), "ext:acme_bed:SN-1234");
    assert_eq!(r.mdc, Mdc(150364));
    assert_eq!(r.value, Value::numeric_with_decimals(36.6, 1));
    assert_eq!(r.unit.as_ref().unwrap().as_str(), "Cel");
    assert_eq!(
        r.device_time,
        Some(Timestamp::from_unix_millis(1_714_557_600_000))
    );
    assert_eq!(r.received_at, RX);
    assert_eq!(r.category, Category::Welfare);
    assert_eq!(r.sequence, None);
    assert_eq!(r.person, None);
    let Record::Alarm(al) = &a.records[1] else {
        panic!("not an alarm")
    };
    assert_eq!(al.kind, AlarmKind::Fall);
    assert_eq!(al.state, AlarmState::Raised);
    assert_eq!(al.at, Timestamp::from_unix_millis(1_714_557_601_000));
    assert_eq!(al.category, Category::Welfare);
    let Record::Technical(t) = &a.records[2] else {
        panic!("not a technical alarm")
    };
    assert_eq!(t.kind, TechnicalKind::LowBattery);
    assert_eq!(t.severity, Severity::Minor);
    assert_eq!(t.source, "external:acme_bed:ext:acme_bed:SN-1234");
    assert_eq!(t.message, "battery low: replace within a week");
    assert_eq!(t.category(), Category::Administrative);
}

#[test]
fn value_forms_map_onto_the_model() {
    let reading = |value: Json, unit: Option<&str>| {
        let mut r = json!({"mdc": 150020, "value": value, "time": "2024-05-01T12:00:00.250+02:00"});
        if let Some(u) = unit {
            r["unit"] = json!(u);
        }
        let m = json!({"v": 1, "id": "x", "device": {"id": "d"}, "readings": [r]});
        match ok(&m).records.remove(0) {
            Record::Reading(r) => r,
            other => panic!("{other:?}"),
        }
    };
    let bp = reading(
        json!({"components": [
            {"mdc": 150021, "value": 120},
            {"mdc": 150022, "value": 80},
            {"mdc": 150023, "value": {"absent": "not-a-number"}}
        ]}),
        Some("mm[Hg]"),
    );
    assert_eq!(
        bp.value,
        Value::Compound(vec![
            Component {
                mdc: Mdc(150021),
                value: Value::numeric_with_decimals(120.0, 0)
            },
            Component {
                mdc: Mdc(150022),
                value: Value::numeric_with_decimals(80.0, 0)
            },
            Component {
                mdc: Mdc(150023),
                value: Value::Absent(AbsentReason::NotANumber)
            },
        ])
    );
    assert_eq!(
        bp.device_time,
        Some(Timestamp::from_unix_millis(1_714_557_600_250))
    );
    assert_eq!(
        reading(json!({"state": "in_bed"}), None).value,
        Value::Enumerated(Enumerated::Text("in_bed".into()))
    );
    assert_eq!(
        reading(json!({"code": 8_421_377}), None).value,
        Value::Enumerated(Enumerated::Code(Mdc(8_421_377)))
    );
    let absent = reading(json!({"absent": "error"}), None);
    assert_eq!(absent.value, Value::Absent(AbsentReason::Error));
    assert_eq!(absent.unit, None);
    assert_eq!(
        reading(json!({"absent": "positive-infinity"}), Some("Cel")).value,
        Value::Absent(AbsentReason::PositiveInfinity)
    );
    assert_eq!(
        reading(json!(1e-7), Some("g")).value,
        Value::numeric(1e-7),
        "exponent notation has no known decimals"
    );
    assert_eq!(
        reading(json!(-4.25), Some("Cel")).value,
        Value::numeric_with_decimals(-4.25, 2)
    );
}

#[test]
fn message_fields_apply_to_every_entry() {
    let m = json!({
        "v": 1.0, "id": "m-2", "device": {"id": "00:1B:44:11:3A:B7"},
        "person": "Patient/123", "category": "health",
        "readings": [{"mdc": 188736, "value": 71.5, "unit": "kg", "time": "2024-05-01T10:00:00Z",
                      "sequence": 18446744073709551615u64}],
        "alarms": [{"type": "bed_exit_at_night", "state": "cleared", "time": "2024-05-01T10:00:00Z",
                    "sequence": 7}],
        "technical": [{"type": "sensor_fault", "state": "raised", "severity": "warning",
                       "message": "pad unplugged", "time": "2024-05-01T10:00:00Z"}]
    });
    let a = ok(&m);
    let Record::Reading(r) = &a.records[0] else {
        panic!()
    };
    assert_eq!(r.person.as_ref().unwrap().as_str(), "Patient/123");
    assert_eq!(r.category, Category::Health);
    assert_eq!(r.sequence, Some(u64::MAX));
    let Record::Alarm(al) = &a.records[1] else {
        panic!()
    };
    assert_eq!(al.kind, AlarmKind::Other("bed_exit_at_night".into()));
    assert_eq!(al.state, AlarmState::Cleared);
    assert_eq!(al.category, Category::Health);
    assert_eq!(al.person.as_ref().unwrap().as_str(), "Patient/123");
    assert_eq!(al.sequence, Some(7));
    let Record::Technical(t) = &a.records[2] else {
        panic!()
    };
    assert_eq!(t.kind, TechnicalKind::Other("sensor_fault".into()));
    assert_eq!(t.category(), Category::Administrative);
}

#[test]
fn only_readings_only_alarms_or_only_technical_are_fine() {
    for keep in ["readings", "alarms", "technical"] {
        let mut m = valid();
        for k in ["readings", "alarms", "technical"] {
            if k != keep {
                m = if k == "alarms" {
                    set(m, "/alarms", json!([]))
                } else {
                    remove(m, &format!("/{k}"))
                };
            }
        }
        assert_eq!(ok(&m).records.len(), 1, "{keep}");
    }
}

#[test]
fn vendor_extensions_are_ignored() {
    let plain = ok(&valid());
    let mut m = valid();
    m["x"] = json!({"acme": {"anything": [1, {"goes": null}]}});
    m["device"]["x"] = json!({"rssi": -70});
    m["readings"][0]["x"] = json!({"raw": "0x1f"});
    m["alarms"][0]["x"] = json!({});
    m["technical"][0]["x"] = json!({"code": 17});
    assert_eq!(ok(&m), plain);
}

#[test]
fn a_device_time_before_2000_is_kept_and_flagged_as_an_unset_clock() {
    let flagged = |time: &str| {
        let a = ok(&set(valid(), "/readings/0/time", json!(time)));
        match &a.records[0] {
            Record::Reading(r) => r.flags.device_clock_unset,
            other => panic!("{other:?}"),
        }
    };
    assert!(flagged("1999-12-31T23:59:59Z"));
    assert!(flagged("1970-01-01T00:00:00Z"));
    assert!(!flagged("2000-01-01T00:00:00Z"));
    assert!(!flagged("2024-05-01T10:00:00Z"));
}

#[test]
fn resending_a_message_gives_identical_records() {
    let a = ok(&valid());
    let b = ok(&valid());
    assert_eq!(a, b);
    let ids: std::collections::HashSet<_> = a.records.iter().map(Record::id).collect();
    assert_eq!(
        ids.len(),
        a.records.len(),
        "entries of one message have distinct ids"
    );
}

#[test]
fn ids_do_not_depend_on_receipt_time() {
    let bytes = serde_json::to_vec(&valid()).unwrap();
    let a = parse("acme_bed", &bytes, RX, Category::Welfare).unwrap();
    let b = parse(
        "acme_bed",
        &bytes,
        Timestamp::from_unix_millis(RX.unix_millis() + 86_400_000),
        Category::Health,
    )
    .unwrap();
    let ids = |a: &Accepted| a.records.iter().map(Record::id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn another_message_id_gives_other_record_ids() {
    let a = ok(&valid());
    let b = ok(&set(valid(), "/id", json!("m-2")));
    let c = run("other_driver", &valid()).unwrap();
    for (x, y, z) in itertools_zip(&a.records, &b.records, &c.records) {
        assert_ne!(x.id(), y.id());
        assert_ne!(x.id(), z.id());
    }
    // The index is part of the id: the same reading twice in one message is two records.
    let r = valid()["readings"][0].clone();
    let twice = ok(&set(valid(), "/readings/1", r));
    assert_ne!(twice.records[0].id(), twice.records[1].id());
}

fn itertools_zip<'a>(
    a: &'a [Record],
    b: &'a [Record],
    c: &'a [Record],
) -> impl Iterator<Item = (&'a Record, &'a Record, &'a Record)> {
    a.iter().zip(b).zip(c).map(|((x, y), z)| (x, y, z))
}

#[test]
fn limits_are_enforced() {
    // The smallest reading, so that 1000 entries fit in 64 KiB.
    let r = json!({"mdc": 1, "value": 1, "unit": "%", "time": "2024-05-01T10:00:00Z"});
    let m = set(valid(), "/readings", json!(vec![r.clone(); 998]));
    assert_eq!(ok(&m).records.len(), 1000);
    let m = set(valid(), "/readings", json!(vec![r; 999]));
    let e = run("acme_bed", &m).unwrap_err();
    assert_eq!(e.pointer, "");
    assert!(e.message.contains("1001 entries"), "{e}");
    // 64 KiB is the limit on the bytes, whatever they hold.
    let mut big = serde_json::to_vec(&valid()).unwrap();
    big.pop();
    big.extend_from_slice(b",\"x\":{\"pad\":\"");
    big.resize(64 * 1024 - 3, b'a');
    big.extend_from_slice(b"\"}}");
    assert_eq!(big.len(), 64 * 1024);
    assert!(parse("acme_bed", &big, RX, Category::Health).is_ok());
    big.insert(big.len() - 3, b'a');
    let e = parse("acme_bed", &big, RX, Category::Health).unwrap_err();
    assert!(e.message.contains("65537 bytes"), "{e}");
    assert_eq!(e.id, None);
}

#[test]
fn invalid_messages_name_pointer_and_fix() {
    let v = valid;
    let reading = |r: Json| set(v(), "/readings/0", r);
    let num = |extra: &[(&str, Json)]| {
        let mut r =
            json!({"mdc": 150364, "value": 36.6, "unit": "Cel", "time": "2024-05-01T10:00:00Z"});
        for (k, x) in extra {
            r[*k] = x.clone();
        }
        r
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Json, &str, &str)> = vec![
        ("array at top", json!([1]), "", "is an array"),
        ("no v", remove(v(), "/v"), "/v", "add \"v\": 1"),
        ("v 2", set(v(), "/v", json!(2)), "/v", "version 2 is not supported"),
        ("v string", set(v(), "/v", json!("1")), "/v", "must be the integer 1"),
        ("unknown top key", set(v(), "/readngs", json!([])), "/readngs", "did you mean \"readings\""),
        ("key with slash", set(v(), "/a~1b", json!(1)), "/a~1b", "unknown key \"a/b\""),
        ("no id", remove(v(), "/id"), "/id", "unique id"),
        ("empty id", set(v(), "/id", json!("")), "/id", "1 to 128"),
        ("long id", set(v(), "/id", json!("a".repeat(129))), "/id", "129 characters"),
        ("id with newline", set(v(), "/id", json!("a\nb")), "/id", "control character"),
        ("numeric id", set(v(), "/id", json!(7)), "/id", "must be a string"),
        ("no device", remove(v(), "/device"), "/device", "missing \"device\""),
        ("device string", set(v(), "/device", json!("SN-1")), "/device", "must be an object"),
        ("no device id", remove(v(), "/device/id"), "/device/id", "stable serial"),
        ("device id space", set(v(), "/device/id", json!("SN 1")), "/device/id", "invalid"),
        ("device id 65", set(v(), "/device/id", json!("a".repeat(65))), "/device/id", "1 to 64"),
        ("device key typo", set(v(), "/device/modle", json!("T")), "/device/modle", "did you mean \"model\""),
        ("device model empty", set(v(), "/device/model", json!("")), "/device/model", "1 to 64"),
        ("person number", set(v(), "/person", json!(12)), "/person", "must be a string"),
        ("category", set(v(), "/category", json!("medical")), "/category", "\"health\", \"welfare\""),
        ("x array", set(v(), "/x", json!([])), "/x", "must be an object"),
        ("readings object", set(v(), "/readings", json!({})), "/readings", "must be an array"),
        ("no entries", json!({"v": 1, "id": "a", "device": {"id": "d"}, "readings": []}), "", "no entries"),
        ("reading not object", reading(json!(36.6)), "/readings/0", "each entry must be a reading"),
        ("reading typo", reading(num(&[("unti", json!("Cel"))])), "/readings/0/unti", "did you mean \"unit\""),
        ("no mdc", remove(v(), "/readings/0/mdc"), "/readings/0/mdc", "missing \"mdc\""),
        ("mdc zero", reading(num(&[("mdc", json!(0))])), "/readings/0/mdc", "from 1 to 4294967295"),
        ("mdc too big", reading(num(&[("mdc", json!(4_294_967_296u64))])), "/readings/0/mdc", "from 1 to 4294967295"),
        ("mdc string", reading(num(&[("mdc", json!("150364"))])), "/readings/0/mdc", "integer"),
        ("mdc fraction", reading(num(&[("mdc", json!(1.5))])), "/readings/0/mdc", "a fraction"),
        ("no value", remove(v(), "/readings/0/value"), "/readings/0/value", "missing \"value\""),
        ("value string", reading(num(&[("value", json!("36.6"))])), "/readings/0/value", "without quotes"),
        ("value bool", reading(num(&[("value", json!(true))])), "/readings/0/value", "a boolean"),
        ("value two forms", reading(num(&[("value", json!({"state": "a", "absent": "error"}))])), "/readings/0/value", "has state and absent"),
        ("value empty object", reading(num(&[("value", json!({}))])), "/readings/0/value", "has none"),
        ("value unknown form", reading(num(&[("value", json!({"number": 1}))])), "/readings/0/value/number", "unknown key"),
        ("no unit", remove(v(), "/readings/0/unit"), "/readings/0/unit", "needs its UCUM unit"),
        ("unit degree sign", reading(num(&[("unit", json!("°C"))])), "/readings/0/unit", "\"Cel\" (not \"°C\")"),
        ("unit empty", reading(num(&[("unit", json!(""))])), "/readings/0/unit", "UCUM"),
        ("unit on state", reading(num(&[("value", json!({"state": "x"}))])), "/readings/0/unit", "remove \"unit\""),
        ("unit on code", reading(num(&[("value", json!({"code": 5}))])), "/readings/0/unit", "remove \"unit\""),
        ("compound without unit", reading(json!({"mdc": 150020, "time": "2024-05-01T10:00:00Z", "value": {"components": [{"mdc": 150021, "value": 120}]}})), "/readings/0/unit", "needs its UCUM unit"),
        ("no components", reading(num(&[("value", json!({"components": []}))])), "/readings/0/value/components", "1 to 16 components"),
        ("17 components", reading(num(&[("value", json!({"components": vec![json!({"mdc": 1, "value": 1}); 17]}))])), "/readings/0/value/components", "this one has 17"),
        ("components object", reading(num(&[("value", json!({"components": {"mdc": 1}}))])), "/readings/0/value/components", "must be an array"),
        ("component no mdc", reading(num(&[("value", json!({"components": [{"value": 1}]}))])), "/readings/0/value/components/0/mdc", "missing \"mdc\""),
        ("component no value", reading(num(&[("value", json!({"components": [{"mdc": 1}]}))])), "/readings/0/value/components/0/value", "missing \"value\""),
        ("component state", reading(num(&[("value", json!({"components": [{"mdc": 1, "value": {"state": "x"}}]}))])), "/readings/0/value/components/0/value/state", "unknown key"),
        ("component x", reading(num(&[("value", json!({"components": [{"mdc": 1, "value": 1, "x": {}}]}))])), "/readings/0/value/components/0/x", "allowed here: mdc, value"),
        ("component nested", reading(num(&[("value", json!({"components": [{"mdc": 1, "value": {"components": []}}]}))])), "/readings/0/value/components/0/value/components", "unknown key"),
        ("absent unknown", reading(num(&[("value", json!({"absent": "nan"}))])), "/readings/0/value/absent", "not-a-number"),
        ("state empty", reading(json!({"mdc": 1, "value": {"state": ""}, "time": "2024-05-01T10:00:00Z"})), "/readings/0/value/state", "1 to 64"),
        ("code zero", reading(json!({"mdc": 1, "value": {"code": 0}, "time": "2024-05-01T10:00:00Z"})), "/readings/0/value/code", "from 1"),
        ("no time", remove(v(), "/readings/0/time"), "/readings/0/time", "missing \"time\""),
        ("time without offset", reading(num(&[("time", json!("2024-05-01T10:00:00"))])), "/readings/0/time", "with an offset"),
        ("time epoch number", reading(num(&[("time", json!(1_714_557_600))])), "/readings/0/time", "got a number"),
        ("time feb 30", reading(num(&[("time", json!("2024-02-30T10:00:00Z"))])), "/readings/0/time", "RFC 3339"),
        ("sequence negative", reading(num(&[("sequence", json!(-1))])), "/readings/0/sequence", "a negative number"),
        ("sequence too big", reading(num(&[("sequence", json!(18_446_744_073_709_551_616.0))])), "/readings/0/sequence", "out of range"),
        ("name too long", reading(num(&[("name", json!("n".repeat(65)))])), "/readings/0/name", "1 to 64"),
        ("second reading bad", set(v(), "/readings/1", json!({"mdc": 1})), "/readings/1/value", "missing \"value\""),
        ("alarm typo", set(v(), "/alarms/0/stat", json!("raised")), "/alarms/0/stat", "did you mean \"state\""),
        ("alarm no type", remove(v(), "/alarms/0/type"), "/alarms/0/type", "it is missing"),
        ("alarm type case", set(v(), "/alarms/0/type", json!("Fall")), "/alarms/0/type", "snake_case"),
        ("alarm technical type", set(v(), "/alarms/0/type", json!("low_battery")), "/alarms/0/type", "send it in \"technical\""),
        ("alarm state", set(v(), "/alarms/0/state", json!("active")), "/alarms/0/state", "\"raised\""),
        ("alarm severity", set(v(), "/alarms/0/severity", json!("major")), "/alarms/0/severity", "unknown key"),
        ("alarm not object", set(v(), "/alarms/0", json!("fall")), "/alarms/0", "each entry must be an alarm"),
        ("technical alarm type", set(v(), "/technical/0/type", json!("fall")), "/technical/0/type", "send it in \"alarms\""),
        ("technical reserved", set(v(), "/technical/0/type", json!("disk_full")), "/technical/0/type", "reserved"),
        ("technical severity", set(v(), "/technical/0/severity", json!("high")), "/technical/0/severity", "\"critical\", \"major\""),
        ("technical no severity", remove(v(), "/technical/0/severity"), "/technical/0/severity", "it is missing"),
        ("technical no message", remove(v(), "/technical/0/message"), "/technical/0/message", "for the operator"),
        ("technical message lines", set(v(), "/technical/0/message", json!("a\nb")), "/technical/0/message", "one line"),
        ("technical long message", set(v(), "/technical/0/message", json!("m".repeat(257))), "/technical/0/message", "1 to 256"),
        ("technical sequence", set(v(), "/technical/0/sequence", json!(1)), "/technical/0/sequence", "unknown key"),
    ];
    for (name, message, pointer, fragment) in cases {
        let e = match run("acme_bed", &message) {
            Ok(a) => panic!("{name}: accepted {} records", a.records.len()),
            Err(e) => e,
        };
        assert_eq!(e.pointer, pointer, "{name}: {e}");
        assert!(
            e.message.contains(fragment),
            "{name}: {:?} lacks {fragment:?}",
            e.message
        );
        assert!(!e.to_string().contains('\n'), "{name}: {e}");
        let id_valid = message.get("id").and_then(Json::as_str).is_some_and(|s| {
            (1..=128).contains(&s.chars().count()) && !s.chars().any(char::is_control)
        });
        assert_eq!(e.id.is_some(), id_valid, "{name}: {e:?}");
    }
}

#[test]
fn bytes_that_are_not_a_message_are_errors_at_the_top() {
    for (bytes, fragment) in [
        (&b""[..], "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"{\"v\":1} trailing", "not JSON"),
        (b"{\"v\": NaN}", "not JSON"),
        (b"null", "is null"),
        (b"\"text\"", "is a string"),
    ] {
        let e = parse("acme", bytes, RX, Category::Health).unwrap_err();
        assert_eq!(e.pointer, "", "{e}");
        assert_eq!(e.id, None);
        assert!(e.message.contains(fragment), "{e}");
    }
}

#[test]
fn an_invalid_driver_id_is_refused() {
    for d in ["", "Acme", "acme/bed", &"a".repeat(33)] {
        let e = run(d, &valid()).unwrap_err();
        assert!(e.message.contains("driver id"), "{e}");
    }
}

#[test]
fn the_error_reply_carries_the_id_and_the_pointer() {
    let e = run("acme_bed", &remove(valid(), "/readings/0/unit")).unwrap_err();
    let reply: Json = serde_json::from_slice(&e.reply_json()).unwrap();
    assert_eq!(reply["v"], 1);
    assert_eq!(reply["id"], "m-1");
    assert_eq!(reply["pointer"], "/readings/0/unit");
    assert!(reply["error"].as_str().unwrap().contains("UCUM"));
    assert_eq!(
        e.to_string(),
        format!(
            "invalid external-driver message at /readings/0/unit: {}",
            e.message
        )
    );
}

/// The ```json blocks of `docs/drivers/external.md`: every message is accepted, and the error
/// reply shown is the one hearth gives for the blood-pressure example without its unit.
#[test]
fn documented_examples_are_accepted() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/drivers/external.md"
    ))
    .unwrap();
    let blocks: Vec<Json> = doc
        .split("```json\n")
        .skip(1)
        .map(|b| serde_json::from_str(b.split("```").next().unwrap()).unwrap())
        .collect();
    let (messages, replies): (Vec<_>, Vec<_>) =
        blocks.iter().partition(|b| b.get("device").is_some());
    assert_eq!(messages.len(), 4);
    for m in &messages {
        ok(m);
    }
    let bp = messages
        .iter()
        .find(|m| m["id"] == "bp-2024-05-01-0001")
        .unwrap();
    let e = run("acme_bp", &remove((*bp).clone(), "/readings/0/unit")).unwrap_err();
    let reply: Json = serde_json::from_slice(&e.reply_json()).unwrap();
    assert_eq!(replies, vec![&reply]);
}
