#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shipped rules against the alarm exposes of real device models
//! (`tests/data/alarm_exposes.json`, taken from zigbee-herdsman-converters): every alarm value
//! raises the alarm of its type once, and every normal value raises nothing and clears it.
//!
//! The table is the corpus of alarm semantics: a device that reports an alarm through a string
//! state (`"ON"`) or an enum value (`fall_status = "fall_alarm"`) is a row here, so a rule
//! that misses it fails this test.

use hearth_driver_zigbee2mqtt::{Engine, Message, Output, Settings};
use hearth_model::Timestamp;
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000_000;

/// One row of the table.
struct Expose {
    name: String,
    property: String,
    kind: String,
    alarm_values: Vec<Value>,
    normal_values: Vec<Value>,
    event_type: String,
}

fn corpus() -> Vec<Expose> {
    let text = include_str!("data/alarm_exposes.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["exposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let s = |k: &str| {
                row[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("{row}: {k}"))
                    .to_owned()
            };
            let kind = s("kind");
            let (alarm_values, normal_values) = if kind == "binary" {
                (
                    vec![row["value_on"].clone()],
                    vec![row["value_off"].clone()],
                )
            } else {
                let alarm = row["alarm"].as_array().unwrap().clone();
                let normal = row["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| !alarm.contains(v))
                    .cloned()
                    .collect();
                (alarm, normal)
            };
            Expose {
                name: format!("{} {} {}", s("vendor"), s("model"), s("property")),
                property: s("property"),
                kind,
                alarm_values,
                normal_values,
                event_type: s("type"),
            }
        })
        .collect()
}

/// Feeds `{property: value}` of one device at `at` ms; asserts the engine found no problem.
fn send(e: &mut Engine, x: &Expose, value: &Value, seq: u64, at: i64) -> Output {
    let payload = json!({ x.property.as_str(): value, "linkquality": 90 }).to_string();
    let out = e
        .handle(
            &Message {
                topic: "zigbee2mqtt/sensor",
                payload: payload.as_bytes(),
                retained: false,
                sequence: seq,
            },
            Timestamp::from_unix_millis(T0 + at),
        )
        .unwrap();
    assert!(
        out.problems.is_empty(),
        "{}: {value}: {:?}",
        x.name,
        out.problems
    );
    out
}

/// The `(type, raised|cleared)` edges of safety alarms.
fn edges(out: &Output) -> Vec<(String, &'static str)> {
    out.events
        .iter()
        .filter_map(|e| e.state().map(|s| (e.event_type.clone(), s.as_str())))
        .collect()
}

fn engine() -> (Engine, i64) {
    let settings = Settings::new("home");
    let debounce = settings.config.debounce.get().as_millis();
    (
        Engine::new(settings).unwrap(),
        i64::try_from(debounce).unwrap(),
    )
}

/// A state (binary or enum): normal raises nothing; each alarm value raises once, a repeat
/// nothing; each normal value then clears it after the debounce.
fn check_state(x: &Expose) {
    for normal in &x.normal_values {
        let (mut e, _) = engine();
        assert!(
            edges(&send(&mut e, x, normal, 1, 0)).is_empty(),
            "{}: {normal}",
            x.name
        );
    }
    for alarm in &x.alarm_values {
        for normal in &x.normal_values {
            let (mut e, debounce) = engine();
            let raised = vec![(x.event_type.clone(), "raised")];
            assert_eq!(
                edges(&send(&mut e, x, alarm, 1, 0)),
                raised,
                "{}: {alarm}",
                x.name
            );
            assert!(
                edges(&send(&mut e, x, alarm, 2, 1_000)).is_empty(),
                "{}: repeat",
                x.name
            );
            assert!(
                edges(&send(&mut e, x, normal, 3, 2_000)).is_empty(),
                "{}: {normal}",
                x.name
            );
            let out = e.tick(Timestamp::from_unix_millis(T0 + 2_000 + debounce));
            let cleared = vec![(x.event_type.clone(), "cleared")];
            assert_eq!(edges(&out), cleared, "{}: {alarm} then {normal}", x.name);
        }
    }
}

/// A button action: each alarm value raises (momentary, never cleared); others raise nothing.
fn check_action(x: &Expose) {
    for alarm in &x.alarm_values {
        let (mut e, _) = engine();
        let raised = vec![(x.event_type.clone(), "raised")];
        assert_eq!(
            edges(&send(&mut e, x, alarm, 1, 0)),
            raised,
            "{}: {alarm}",
            x.name
        );
    }
    for other in &x.normal_values {
        let (mut e, _) = engine();
        assert!(
            edges(&send(&mut e, x, other, 1, 0)).is_empty(),
            "{}: {other}",
            x.name
        );
    }
}

#[test]
fn every_alarm_expose_of_the_corpus_raises_and_clears() {
    let corpus = corpus();
    assert!(corpus.len() >= 25, "the corpus lost rows");
    for x in &corpus {
        match x.kind.as_str() {
            "binary" | "enum" => check_state(x),
            "action" => check_action(x),
            other => panic!("{}: unknown kind {other}", x.name),
        }
    }
}

#[test]
fn binary_exposes_come_as_booleans_and_as_on_off() {
    let corpus = corpus();
    let binary: Vec<_> = corpus.iter().filter(|x| x.kind == "binary").collect();
    assert!(binary.iter().any(|x| x.alarm_values == [json!(true)]));
    assert!(binary.iter().any(|x| x.alarm_values == [json!("ON")]));
}
