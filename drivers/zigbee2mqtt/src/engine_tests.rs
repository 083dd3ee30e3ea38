#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hearth_config::{ConfigDuration, RuleConfig, RuleEmit, RuleValue, SensorConfig};
use hearth_model::{Category, Record, Timestamp};
use jiff::tz::TimeZone;
use serde_json::json;

use super::*;

const T0: i64 = 1_700_000_000_000;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + ms)
}

fn engine() -> Engine {
    Engine::new(Settings::new("home")).unwrap()
}

fn send(e: &mut Engine, topic: &str, payload: &str, seq: u64, at: i64) -> Output {
    e.handle(
        &Message {
            topic,
            payload: payload.as_bytes(),
            retained: false,
            sequence: seq,
        },
        t(at),
    )
    .unwrap()
}

fn retained(e: &mut Engine, topic: &str, payload: &str, seq: u64, at: i64) -> Output {
    e.handle(
        &Message {
            topic,
            payload: payload.as_bytes(),
            retained: true,
            sequence: seq,
        },
        t(at),
    )
    .unwrap()
}

/// `(type, state)` of alarms and technical alarms.
fn edges(out: &Output) -> Vec<(String, &'static str)> {
    out.events
        .iter()
        .filter_map(|e| e.state().map(|s| (e.event_type.clone(), s.as_str())))
        .collect()
}

fn e(kind: &str, state: &'static str) -> (String, &'static str) {
    (kind.to_owned(), state)
}

fn oslo_engine(rules: Vec<RuleConfig>) -> Engine {
    let mut s = Settings::new("home");
    s.time_zone = TimeZone::get("Europe/Oslo").unwrap();
    s.config.rules = rules;
    Engine::new(s).unwrap()
}

/// Local Oslo time (winter, UTC+1) on 2024-01-15 as a Timestamp offset from T0.
fn oslo(h: i64, m: i64) -> i64 {
    // 2024-01-15T00:00:00+01:00 = 2024-01-14T23:00:00Z = 1705273200000
    1_705_273_200_000 + (h * 60 + m) * 60_000 - T0
}

#[test]
fn shipped_rules_parse() {
    let r = rules::try_default_rules().unwrap();
    assert!(r.len() >= 20);
    assert_eq!(default_rules(), r);
    for p in [
        "water_leak",
        "smoke",
        "gas",
        "carbon_monoxide",
        "tamper",
        "action",
        "battery",
        "temperature",
        "linkquality",
    ] {
        assert!(r.iter().any(|x| x.property == p), "{p}");
    }
}

#[test]
fn repeated_state_raises_once() {
    let mut en = engine();
    let topic = "zigbee2mqtt/bathroom/leak";
    let out = send(&mut en, topic, r#"{"water_leak":true,"battery":100}"#, 1, 0);
    assert_eq!(edges(&out), vec![e("water_leak", "raised")]);
    let out = send(
        &mut en,
        topic,
        r#"{"water_leak":true,"battery":100}"#,
        2,
        10_000,
    );
    assert!(edges(&out).is_empty());
}

#[test]
fn clear_waits_for_debounce() {
    let mut en = engine();
    let topic = "zigbee2mqtt/bathroom/leak";
    send(&mut en, topic, r#"{"water_leak":true}"#, 1, 0);
    let out = send(&mut en, topic, r#"{"water_leak":false}"#, 2, 1_000);
    assert!(edges(&out).is_empty());
    assert_eq!(en.next_deadline(), Some(t(3_000)));
    assert!(edges(&en.tick(t(2_999))).is_empty());
    let out = en.tick(t(3_000));
    assert_eq!(edges(&out), vec![e("water_leak", "cleared")]);
    // The clear is dated when the condition ended.
    match &out.events[0].record {
        Record::Alarm(a) => assert_eq!(a.at, t(1_000)),
        other => panic!("{other:?}"),
    }
    assert!(edges(&en.tick(t(10_000))).is_empty());
}

#[test]
fn reactivation_cancels_pending_clear() {
    let mut en = engine();
    let topic = "zigbee2mqtt/kitchen/smoke";
    send(&mut en, topic, r#"{"smoke":true}"#, 1, 0);
    send(&mut en, topic, r#"{"smoke":false}"#, 2, 500);
    let out = send(&mut en, topic, r#"{"smoke":true}"#, 3, 1_000);
    assert!(edges(&out).is_empty());
    assert!(edges(&en.tick(t(5_000))).is_empty());
    // A late message after the debounce clears in handle too.
    send(&mut en, topic, r#"{"smoke":false}"#, 4, 6_000);
    let out = send(&mut en, topic, r#"{"smoke":false}"#, 5, 9_000);
    assert_eq!(edges(&out), vec![e("smoke", "cleared")]);
}

#[test]
fn momentary_repeats_within_debounce_count_once() {
    // Tuya TS0215A_sos SOS button: {"action":"emergency"}.
    let mut en = engine();
    let topic = "zigbee2mqtt/living/sos";
    let p = r#"{"action":"emergency","battery":76,"linkquality":78,"voltage":2900}"#;
    assert_eq!(
        edges(&send(&mut en, topic, p, 1, 0)),
        vec![e("emergency", "raised")]
    );
    assert!(edges(&send(&mut en, topic, p, 2, 1_500)).is_empty());
    assert_eq!(
        edges(&send(&mut en, topic, p, 3, 2_000)),
        vec![e("emergency", "raised")]
    );
    // No clear ever, and a retained replay of an old action raises nothing.
    assert!(edges(&en.tick(t(60_000))).is_empty());
    assert!(edges(&retained(&mut en, topic, p, 4, 70_000)).is_empty());
    assert!(edges(&send(&mut en, topic, r#"{"action":""}"#, 5, 80_000)).is_empty());
}

#[test]
fn low_battery_from_percent_and_flag_is_one_alarm() {
    let mut en = engine();
    let topic = "zigbee2mqtt/climate";
    let out = send(
        &mut en,
        topic,
        r#"{"battery":12,"battery_low":true,"temperature":21.5}"#,
        1,
        0,
    );
    assert_eq!(edges(&out), vec![e("low_battery", "raised")]);
    let j = out
        .events
        .iter()
        .find(|e| e.event_type == "low_battery")
        .unwrap()
        .to_json();
    assert_eq!(j["severity"], "minor");
    assert_eq!(j["kind"], "technical");
    // Flag clears but percent still low: stays raised.
    send(
        &mut en,
        topic,
        r#"{"battery":12,"battery_low":false}"#,
        2,
        1_000,
    );
    assert!(edges(&en.tick(t(10_000))).is_empty());
    send(
        &mut en,
        topic,
        r#"{"battery":90,"battery_low":false}"#,
        3,
        20_000,
    );
    assert_eq!(
        edges(&en.tick(t(22_000))),
        vec![e("low_battery", "cleared")]
    );
}

#[test]
fn wrong_kind_is_a_problem_and_the_rest_still_counts() {
    let mut en = engine();
    let out = send(
        &mut en,
        "zigbee2mqtt/leak",
        r#"{"water_leak":"yes","temperature":20}"#,
        1,
        0,
    );
    assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
    assert!(out.problems[0].contains("water_leak"));
    assert!(
        !out.problems[0].contains("yes"),
        "no payload values in problems"
    );
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].event_type, "temperature");
}

fn night_rule(property: &str, when: bool, event_type: &str, for_: u64) -> RuleConfig {
    let mut r = RuleConfig::new(property, RuleEmit::Alarm, Some(event_type));
    r.when = Some(RuleValue::Bool(when));
    r.for_ = Some(ConfigDuration::from_secs(for_));
    r.hours = Some("22:00-07:00".into());
    r
}

#[test]
fn no_bed_return_at_night_in_oslo() {
    let mut rule = night_rule("occupancy", false, "no_bed_return", 30 * 60);
    rule.device = Some("bedroom/bed".into());
    let mut en = oslo_engine(vec![rule]);
    let bed = "zigbee2mqtt/bedroom/bed";
    // Out of bed at 02:00 local; back at 02:20: nothing.
    send(&mut en, bed, r#"{"occupancy":false}"#, 1, oslo(2, 0));
    assert_eq!(en.next_deadline(), Some(t(oslo(2, 30))));
    assert!(edges(&en.tick(t(oslo(2, 19)))).is_empty());
    send(&mut en, bed, r#"{"occupancy":true}"#, 2, oslo(2, 20));
    assert!(edges(&en.tick(t(oslo(2, 40)))).is_empty());
    // Out again at 03:00, not back: raised at 03:30 exactly, even if the tick is late.
    send(&mut en, bed, r#"{"occupancy":false}"#, 3, oslo(3, 0));
    let out = en.tick(t(oslo(3, 31)));
    assert_eq!(edges(&out), vec![e("no_bed_return", "raised")]);
    match &out.events[0].record {
        Record::Alarm(a) => assert_eq!(a.at, t(oslo(3, 30))),
        other => panic!("{other:?}"),
    }
    // Daytime absence (10:00) raises nothing: outside hours.
    send(&mut en, bed, r#"{"occupancy":true}"#, 4, oslo(3, 40));
    assert_eq!(
        edges(&en.tick(t(oslo(3, 43)))),
        vec![e("no_bed_return", "cleared")]
    );
    send(&mut en, bed, r#"{"occupancy":false}"#, 5, oslo(10, 0));
    assert!(edges(&en.tick(t(oslo(12, 0)))).is_empty());
    // ... until the window opens: 22:00 + 30 min.
    assert_eq!(en.next_deadline(), Some(t(oslo(22, 30))));
    assert_eq!(
        edges(&en.tick(t(oslo(22, 30)))),
        vec![e("no_bed_return", "raised")]
    );
}

#[test]
fn door_open_waits_for_hours_to_start() {
    // Aqara MCCGQ11LM: contact false = open.
    let mut en = oslo_engine(vec![night_rule("contact", false, "door_open", 0)]);
    let door = "zigbee2mqtt/hallway/door";
    let out = send(
        &mut en,
        door,
        r#"{"contact":false,"battery":100}"#,
        1,
        oslo(21, 0),
    );
    assert!(edges(&out).is_empty());
    assert_eq!(out.events.len(), 1, "the contact observation");
    assert_eq!(
        edges(&en.tick(t(oslo(22, 0)))),
        vec![e("door_open", "raised")]
    );
    send(&mut en, door, r#"{"contact":true}"#, 2, oslo(23, 0));
    assert_eq!(
        edges(&en.tick(t(oslo(23, 1)))),
        vec![e("door_open", "cleared")]
    );
    // Opened inside the window: at once.
    let out = send(&mut en, door, r#"{"contact":false}"#, 3, oslo(23, 30));
    assert_eq!(edges(&out), vec![e("door_open", "raised")]);
}

#[test]
fn restore_then_retained_replay_does_not_raise_again() {
    let mut en = engine();
    let topic = "zigbee2mqtt/bathroom/leak";
    let mut committed = Vec::new();
    let out = send(
        &mut en,
        topic,
        r#"{"water_leak":true,"contact":true}"#,
        1,
        0,
    );
    assert_eq!(edges(&out), vec![e("water_leak", "raised")]);
    committed.extend(out.state.clone());
    assert!(
        out.state
            .iter()
            .all(|(k, _)| k.starts_with(&en.state_prefix()))
    );
    let mut again = engine();
    again.restore(committed.clone());
    let out = retained(
        &mut again,
        topic,
        r#"{"water_leak":true,"contact":true}"#,
        2,
        5_000,
    );
    assert!(out.events.is_empty(), "{:?}", out.events);
    // on_change value survived too: same contact → no observation.
    let out = send(&mut again, topic, r#"{"contact":true}"#, 3, 6_000);
    assert!(out.events.is_empty());
    // And the clear still works after the restart.
    committed.extend(send(&mut again, topic, r#"{"water_leak":false}"#, 4, 7_000).state);
    let mut third = engine();
    third.restore(committed);
    assert_eq!(
        edges(&third.tick(t(9_000))),
        vec![e("water_leak", "cleared")]
    );
}

fn devices(name: &str) -> String {
    json!([
        {"ieee_address":"0x00124b0018e1a2b3","type":"Coordinator","friendly_name":"Coordinator"},
        {"ieee_address":"0x00158D0001A2B3C4","type":"EndDevice","friendly_name":name,
         "definition":{"model":"SJCGQ11LM","vendor":"Aqara","description":"Water leak sensor"}}
    ])
    .to_string()
}

/// Issue 14 (found by the conformance kit): a restarted source rejoins its persistent MQTT
/// session and gets no retained replay of `bridge/devices`, so the friendly-name → IEEE map is
/// committed with the state and restored: a device keeps its `zigbee:<IEEE>` id after a
/// restart; a renamed device's old name is forgotten.
#[test]
fn friendly_names_survive_a_restart() {
    let mut en = engine();
    let committed = send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bathroom/leak"),
        1,
        0,
    )
    .state;
    let mut again = engine();
    again.restore(committed.clone());
    let out = send(
        &mut again,
        "zigbee2mqtt/bathroom/leak",
        r#"{"water_leak":true}"#,
        2,
        1_000,
    );
    let ids: Vec<_> = out.events.iter().map(|e| e.device.clone()).collect();
    assert!(!ids.is_empty());
    assert!(
        ids.iter()
            .all(|d| d.as_ref().map(|d| d.as_str()) == Some("zigbee:00158d0001a2b3c4")),
        "{ids:?}"
    );
    // Renamed in zigbee2mqtt: the old name is forgotten in the committed state.
    let mut state = committed;
    state.extend(
        send(
            &mut again,
            "zigbee2mqtt/bridge/devices",
            &devices("bath/leak"),
            3,
            2_000,
        )
        .state,
    );
    let mut third = engine();
    third.restore(state);
    let out = send(
        &mut third,
        "zigbee2mqtt/bathroom/leak",
        r#"{"water_leak":true}"#,
        4,
        3_000,
    );
    assert!(!out.events.is_empty());
    assert!(
        out.events
            .iter()
            .all(|e| e.device.as_ref().map(|d| d.as_str()) != Some("zigbee:00158d0001a2b3c4"))
    );
}

/// Issue 6 (b): `bridge/devices` gives each device's vendor and model as device facts (not the
/// coordinator's).
#[test]
fn issue_6_bridge_devices_gives_vendor_and_model_as_device_facts() {
    let mut en = engine();
    let out = send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bathroom/leak"),
        1,
        0,
    );
    assert_eq!(out.devices.len(), 1, "{:?}", out.devices);
    let d = &out.devices[0];
    assert_eq!(d.id.as_ref().unwrap().as_str(), "zigbee:00158d0001a2b3c4");
    assert_eq!(d.manufacturer.as_deref(), Some("Aqara"));
    assert_eq!(d.model.as_deref(), Some("SJCGQ11LM"));
    assert_eq!(d.eui64.as_deref(), Some("00158d0001a2b3c4"));
}

#[test]
fn rename_keeps_the_device_id() {
    let mut en = engine();
    send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bathroom/leak"),
        1,
        0,
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/bathroom/leak",
        r#"{"water_leak":true}"#,
        2,
        100,
    );
    let id = out.events[0].device.clone().unwrap();
    assert_eq!(id.as_str(), "zigbee:00158d0001a2b3c4");
    send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bad/leak"),
        3,
        200,
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/bad/leak",
        r#"{"water_leak":false,"temperature":20.5}"#,
        4,
        300,
    );
    assert_eq!(out.events[0].device.as_ref(), Some(&id));
    // Same alarm: the clear belongs to the same device.
    assert_eq!(edges(&en.tick(t(5_000))), vec![e("water_leak", "cleared")]);
}

#[test]
fn fallback_id_moves_to_ieee() {
    let mut en = engine();
    let out = send(
        &mut en,
        "zigbee2mqtt/bathroom/leak",
        r#"{"water_leak":true}"#,
        1,
        0,
    );
    assert_eq!(
        out.events[0].device.as_ref().unwrap().as_str(),
        "zigbee:name:bathroom/leak"
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bathroom/leak"),
        2,
        100,
    );
    assert!(
        out.state
            .iter()
            .any(|(k, v)| k.contains("zigbee:00158d0001a2b3c4") && *v != 0)
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/bathroom/leak",
        r#"{"water_leak":true}"#,
        3,
        200,
    );
    assert!(edges(&out).is_empty(), "still the same raised alarm");
    let out = send(
        &mut en,
        "zigbee2mqtt/0x00158d0001a2b3c4",
        r#"{"water_leak":false}"#,
        4,
        300,
    );
    assert!(out.problems.is_empty());
    assert_eq!(edges(&en.tick(t(3_000))), vec![e("water_leak", "cleared")]);
}

#[test]
fn same_message_gives_same_ids() {
    let p = r#"{"water_leak":true,"temperature":21.5,"battery":5}"#;
    let a = send(&mut engine(), "zigbee2mqtt/x", p, 7, 0);
    let b = send(&mut engine(), "zigbee2mqtt/x", p, 7, 0);
    let ids = |o: &Output| o.events.iter().map(|e| e.record.id()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.events.len(), 3);
}

#[test]
fn availability_and_silence_raise_device_offline() {
    let mut s = Settings::new("home");
    s.config.offline_after = ConfigDuration::from_secs(3_600);
    let mut en = Engine::new(s).unwrap();
    let out = send(
        &mut en,
        "zigbee2mqtt/hall/motion/availability",
        r#"{"state":"offline"}"#,
        1,
        0,
    );
    assert_eq!(edges(&out), vec![e("device_offline", "raised")]);
    assert_eq!(out.events[0].to_json()["severity"], "major");
    assert!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/hall/motion/availability",
            "offline",
            2,
            10
        ))
        .is_empty()
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/hall/motion/availability",
        "online",
        3,
        20,
    );
    assert_eq!(edges(&out), vec![e("device_offline", "cleared")]);
    // Silence.
    send(
        &mut en,
        "zigbee2mqtt/hall/motion",
        r#"{"occupancy":true}"#,
        4,
        1_000,
    );
    assert_eq!(en.next_deadline(), Some(t(3_601_000)));
    assert_eq!(
        edges(&en.tick(t(3_601_000))),
        vec![e("device_offline", "raised")]
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/hall/motion",
        r#"{"occupancy":true}"#,
        5,
        4_000_000,
    );
    assert_eq!(edges(&out), vec![e("device_offline", "cleared")]);
}

#[test]
fn bridge_offline_is_critical() {
    let mut en = engine();
    let out = send(&mut en, "zigbee2mqtt/bridge/state", "offline", 1, 0);
    assert_eq!(edges(&out), vec![e("device_offline", "raised")]);
    assert_eq!(out.events[0].to_json()["severity"], "critical");
    assert!(
        send(
            &mut en,
            "zigbee2mqtt/bridge/state",
            r#"{"state":"offline"}"#,
            2,
            1
        )
        .events
        .is_empty()
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/bridge/state",
        r#"{"state":"online"}"#,
        3,
        2,
    );
    assert_eq!(edges(&out), vec![e("device_offline", "cleared")]);
    assert!(
        en.handle(
            &Message {
                topic: "zigbee2mqtt/bridge/state",
                payload: b"{}",
                retained: false,
                sequence: 4
            },
            t(3)
        )
        .is_err()
    );
}

#[test]
fn sensor_config_sets_person_and_category() {
    let mut s = Settings::new("home");
    s.config.devices = vec![SensorConfig {
        name: "0x00158d0001a2b3c4".into(),
        person: Some("Patient/1".into()),
        category: Some(Category::Welfare),
        label: None,
        role: hearth_config::SensorRole::None,
    }];
    let mut en = Engine::new(s).unwrap();
    send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bath"),
        1,
        0,
    );
    let out = send(
        &mut en,
        "zigbee2mqtt/bath",
        r#"{"water_leak":true,"temperature":19}"#,
        2,
        10,
    );
    for ev in &out.events {
        match &ev.record {
            Record::Alarm(a) => {
                assert_eq!(a.person.as_ref().unwrap().as_str(), "Patient/1");
                assert_eq!(a.category, Category::Health);
                assert_eq!(a.sequence, Some(2));
            }
            Record::Reading(r) => {
                assert_eq!(r.category, Category::Welfare);
                assert_eq!(r.person.as_ref().unwrap().as_str(), "Patient/1");
            }
            Record::Technical(_) => panic!("no technical"),
        }
    }
}

#[test]
fn config_rule_replaces_shipped_rule_and_ignore_stops() {
    let mut s = Settings::new("home");
    let mut r = RuleConfig::new("water_leak", RuleEmit::Alarm, Some("water_leak"));
    r.debounce = Some(ConfigDuration::from_secs(60));
    s.config.rules = vec![r, RuleConfig::new("temperature", RuleEmit::Ignore, None)];
    let mut en = Engine::new(s).unwrap();
    let out = send(
        &mut en,
        "zigbee2mqtt/l",
        r#"{"water_leak":true,"temperature":20}"#,
        1,
        0,
    );
    assert_eq!(out.events.len(), 1);
    send(
        &mut en,
        "zigbee2mqtt/l",
        r#"{"water_leak":false}"#,
        2,
        1_000,
    );
    assert!(edges(&en.tick(t(10_000))).is_empty());
    assert_eq!(edges(&en.tick(t(61_000))), vec![e("water_leak", "cleared")]);
}

#[test]
fn last_seen_is_the_device_time() {
    let mut en = engine();
    let out = send(
        &mut en,
        "zigbee2mqtt/x",
        r#"{"temperature":20.25,"last_seen":"2024-01-15T10:00:00.000+01:00"}"#,
        1,
        0,
    );
    match &out.events[0].record {
        Record::Reading(r) => {
            assert_eq!(
                r.device_time,
                Some(Timestamp::from_unix_millis(1_705_309_200_000))
            );
            assert_eq!(
                r.value,
                hearth_model::Value::numeric_with_decimals(20.25, 2)
            );
        }
        other => panic!("{other:?}"),
    }
    let out = send(
        &mut en,
        "zigbee2mqtt/y",
        r#"{"smoke":true,"last_seen":1705309200000}"#,
        2,
        0,
    );
    match &out.events[0].record {
        Record::Alarm(a) => assert_eq!(a.at, Timestamp::from_unix_millis(1_705_309_200_000)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn script_raises_a_safety_alarm() {
    let mut en = engine();
    let mut kinds = Vec::new();
    for (i, (at, topic, payload)) in scripted_messages().into_iter().enumerate() {
        let now = t(i64::try_from(at.as_millis()).unwrap());
        let out = en
            .handle(
                &Message {
                    topic: &topic,
                    payload: payload.as_bytes(),
                    retained: false,
                    sequence: i as u64,
                },
                now,
            )
            .unwrap();
        assert!(out.problems.is_empty(), "{topic}: {:?}", out.problems);
        kinds.extend(edges(&out));
        kinds.extend(edges(&en.tick(now)));
    }
    for k in [
        "water_leak",
        "smoke",
        "emergency",
        "low_battery",
        "device_offline",
    ] {
        assert!(kinds.contains(&e(k, "raised")), "{k}: {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| k.0 == "emergency").count(),
        1,
        "repeat suppressed"
    );
    let _ = Duration::ZERO;
}

#[test]
fn bad_observation_type_is_an_engine_error() {
    let mut s = Settings::new("home");
    s.config.rules = vec![RuleConfig::new("foo", RuleEmit::Observation, Some("foo"))];
    let err = Engine::new(s).unwrap_err();
    assert!(err.to_string().contains("set mdc"), "{err}");
}

#[test]
fn seen_is_persisted_coarsely() {
    // offline_after 1 h: `seen` is written when first heard of, then only once it moved by
    // min(1 h / 100, 5 min) = 36 s; offline detection still uses the exact time.
    let mut s = Settings::new("home");
    s.config.offline_after = ConfigDuration::from_secs(3_600);
    let mut en = Engine::new(s).unwrap();
    let topic = "zigbee2mqtt/hall/climate";
    let key = format!("{}seen:zigbee:name:hall/climate ", en.state_prefix());
    let seen = |o: &Output| {
        o.state
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect::<Vec<_>>()
    };
    let mut committed = Vec::new();
    let out = send(&mut en, topic, r#"{"temperature":21.5}"#, 1, 0);
    assert_eq!(seen(&out), vec![T0], "the first message is written");
    committed.extend(out.state);
    for (i, at) in [1_000, 20_000, 35_999].into_iter().enumerate() {
        let out = send(&mut en, topic, r#"{"temperature":21.5}"#, 2 + i as u64, at);
        assert!(out.state.is_empty(), "{at}: {:?}", out.state);
    }
    let out = send(&mut en, topic, r#"{"temperature":21.5}"#, 5, 36_000);
    assert_eq!(seen(&out), vec![T0 + 36_000], "moved a step");
    committed.extend(out.state);
    let out = send(&mut en, topic, r#"{"temperature":21.5}"#, 6, 50_000);
    assert!(out.state.is_empty());
    // In memory the time is exact: offline an hour after the last message.
    assert_eq!(en.next_deadline(), Some(t(3_650_000)));
    // After a restart the persisted time is at most a step old: offline detection is earlier,
    // never later.
    let mut again = Engine::new({
        let mut s = Settings::new("home");
        s.config.offline_after = ConfigDuration::from_secs(3_600);
        s
    })
    .unwrap();
    again.restore(committed);
    assert_eq!(again.next_deadline(), Some(t(3_636_000)));
    assert_eq!(
        edges(&again.tick(t(3_636_000))),
        vec![e("device_offline", "raised")]
    );
    // Unsetting is written at once (a device removed from bridge/devices).
    let out = send(
        &mut en,
        "zigbee2mqtt/bridge/devices",
        &devices("bathroom/leak"),
        7,
        51_000,
    );
    assert!(
        out.state.iter().all(|(k, _)| *k != key),
        "not an IEEE device"
    );
    let ieee_key = format!("{}seen:zigbee:00158d0001a2b3c4 ", en.state_prefix());
    assert!(out.state.contains(&(ieee_key.clone(), T0 + 51_000)));
    let out = send(&mut en, "zigbee2mqtt/bridge/devices", "[]", 8, 52_000);
    assert!(out.state.contains(&(ieee_key, 0)));
}

/// Issue 13: zigbee2mqtt payloads had no size limit. A device message over the limit is an
/// input error naming its size (never its content), so it is dead-lettered with a bounded
/// prefix; `bridge/devices` may be far larger.
#[test]
fn oversized_payloads_are_refused_naming_their_size() {
    let mut en = engine();
    let big = format!(
        r#"{{"temperature": 21.5, "pad": "{}"}}"#,
        "x".repeat(MAX_DEVICE_PAYLOAD)
    );
    let err = en
        .handle(
            &Message {
                topic: "zigbee2mqtt/kitchen/climate",
                payload: big.as_bytes(),
                retained: false,
                sequence: 1,
            },
            t(0),
        )
        .unwrap_err();
    assert!(err.reason.contains("more than the limit"), "{err}");
    assert!(!err.reason.contains("21.5"), "{err}");
    // A large bridge/devices (many devices with their exposes) is still taken.
    let devices: Vec<_> = (0..400)
        .map(|i| {
            json!({
                "ieee_address": format!("0x00158d00{i:08x}"),
                "friendly_name": format!("sensor {i}"),
                "type": "EndDevice",
                "definition": {"vendor": "Aqara", "model": "WSDCGQ11LM", "description": "x".repeat(200)}
            })
        })
        .collect();
    let payload = serde_json::to_vec(&devices).unwrap();
    assert!(payload.len() > MAX_DEVICE_PAYLOAD);
    en.handle(
        &Message {
            topic: "zigbee2mqtt/bridge/devices",
            payload: &payload,
            retained: true,
            sequence: 2,
        },
        t(1),
    )
    .unwrap();
}

fn role_engine(devices: Vec<SensorConfig>) -> Engine {
    let mut s = Settings::new("home");
    s.config.devices = devices;
    Engine::new(s).unwrap()
}

fn with_role(name: &str, role: hearth_config::SensorRole) -> SensorConfig {
    let mut d = SensorConfig::new(name);
    d.role = role;
    d
}

/// Issue 15: the role comes from the config, not the payload. A frient SBTZB-110 sends
/// `{"action":"single"}`, which the shipped rules do not know; as an `sos_button` any non-empty
/// action is an emergency alarm (momentary: repeats within `debounce` count once, a retained
/// replay raises nothing); the same press of a device without the role raises nothing.
#[test]
fn sos_button_role_makes_any_action_an_emergency() {
    use hearth_config::SensorRole;
    let mut en = role_engine(vec![
        with_role("hall/sos", SensorRole::SosButton),
        SensorConfig::new("hall/remote"),
    ]);
    let press = r#"{"action":"single","battery":100,"linkquality":120}"#;
    assert_eq!(
        edges(&send(&mut en, "zigbee2mqtt/hall/sos", press, 1, 0)),
        vec![e("emergency", "raised")]
    );
    assert!(edges(&send(&mut en, "zigbee2mqtt/hall/sos", press, 2, 500)).is_empty());
    assert!(edges(&retained(&mut en, "zigbee2mqtt/hall/sos", press, 3, 10_000)).is_empty());
    assert_eq!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/hall/sos",
            r#"{"action":"hold"}"#,
            4,
            20_000
        )),
        vec![e("emergency", "raised")]
    );
    assert!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/hall/sos",
            r#"{"action":""}"#,
            5,
            30_000
        ))
        .is_empty()
    );
    assert!(edges(&send(&mut en, "zigbee2mqtt/hall/remote", press, 6, 40_000)).is_empty());
    // The shipped action rule still serves devices without the role.
    assert_eq!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/hall/remote",
            r#"{"action":"emergency"}"#,
            7,
            50_000
        )),
        vec![e("emergency", "raised")]
    );
}

/// The other safety roles hold without the shipped rules, and every safety device is
/// subscribed by the safety session (its state topic and its sub-topics).
#[test]
fn safety_roles_give_their_rule_and_safety_subscriptions() {
    use hearth_config::SensorRole;
    let mut s = Settings::new("home");
    s.config.default_rules = false;
    s.config.devices = vec![
        with_role("kitchen/smoke", SensorRole::SmokeDetector),
        with_role("bath/leak", SensorRole::WaterLeak),
        with_role("bed/fall", SensorRole::FallDetector),
        SensorConfig::new("climate"),
    ];
    let mut en = Engine::new(s).unwrap();
    assert_eq!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/kitchen/smoke",
            r#"{"smoke":true}"#,
            1,
            0
        )),
        vec![e("smoke", "raised")]
    );
    assert_eq!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/bath/leak",
            r#"{"water_leak":true}"#,
            2,
            0
        )),
        vec![e("water_leak", "raised")]
    );
    assert_eq!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/bed/fall",
            r#"{"fall":true}"#,
            3,
            0
        )),
        vec![e("fall", "raised")]
    );
    assert!(
        edges(&send(
            &mut en,
            "zigbee2mqtt/climate",
            r#"{"smoke":true}"#,
            4,
            0
        ))
        .is_empty()
    );
    assert_eq!(
        en.safety_subscriptions(),
        vec![
            "zigbee2mqtt/kitchen/smoke",
            "zigbee2mqtt/kitchen/smoke/+",
            "zigbee2mqtt/bath/leak",
            "zigbee2mqtt/bath/leak/+",
            "zigbee2mqtt/bed/fall",
            "zigbee2mqtt/bed/fall/+",
        ]
    );
    assert!(engine().safety_subscriptions().is_empty());
}
