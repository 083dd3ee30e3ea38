#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Real zigbee2mqtt payloads of real device models → the JSON of `classify`.

use hearth_driver_zigbee2mqtt::classify;
use hearth_model::Timestamp;
use serde_json::{Value, json};

fn events(topic: &str, payload: &str) -> Vec<Value> {
    let v = classify(
        topic,
        payload.as_bytes(),
        Timestamp::from_unix_millis(1_700_000_000_000),
    )
    .unwrap();
    assert_eq!(
        v.as_object().unwrap().len(),
        1,
        "exactly {{\"events\":[…]}}"
    );
    v["events"].as_array().unwrap().clone()
}

/// `(kind, type, state or value)` triples, sorted.
fn summary(evs: &[Value]) -> Vec<(String, String, Value)> {
    let mut s: Vec<_> = evs
        .iter()
        .map(|e| {
            let third = if e["kind"] == "observation" {
                e["value"].clone()
            } else {
                e["state"].clone()
            };
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
                third,
            )
        })
        .collect();
    s.sort_by_key(|a| (a.0.clone(), a.1.clone()));
    s
}

fn row(kind: &str, t: &str, v: Value) -> (String, String, Value) {
    (kind.to_owned(), t.to_owned(), v)
}

#[test]
fn aqara_sjcgq11lm_water_leak() {
    let evs = events(
        "zigbee2mqtt/0x00158d0001a2b3c4",
        r#"{"battery":100,"battery_low":false,"device_temperature":26,"linkquality":120,"power_outage_count":5,"tamper":false,"voltage":3005,"water_leak":true}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![row("alarm", "water_leak", json!("raised"))]
    );
    assert_eq!(
        evs[0],
        json!({"kind":"alarm","type":"water_leak","state":"raised","device":"zigbee:00158d0001a2b3c4","property":"water_leak","value":true})
    );
}

#[test]
fn heiman_hs1sa_smoke_and_frient_smszb_120() {
    let evs = events(
        "zigbee2mqtt/kitchen smoke",
        r#"{"battery":83,"battery_low":false,"linkquality":87,"smoke":true,"tamper":false}"#,
    );
    assert_eq!(summary(&evs), vec![row("alarm", "smoke", json!("raised"))]);
    assert_eq!(evs[0]["device"], "zigbee:name:kitchen%20smoke");
    let evs = events(
        "zigbee2mqtt/kitchen/smoke",
        r#"{"battery":90,"battery_low":false,"linkquality":99,"reliability":"no_fault_detected","smoke":true,"supervision_reports":true,"tamper":false,"temperature":24.6,"test":false,"voltage":3000}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![
            row("alarm", "smoke", json!("raised")),
            row("observation", "temperature", json!(24.6))
        ]
    );
}

#[test]
fn heiman_hs1cg_gas_and_hs1ca_carbon_monoxide() {
    let evs = events(
        "zigbee2mqtt/gas",
        r#"{"battery_low":false,"gas":true,"linkquality":150,"tamper":true}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![
            row("alarm", "gas", json!("raised")),
            row("alarm", "tamper", json!("raised"))
        ]
    );
    let evs = events(
        "zigbee2mqtt/co",
        r#"{"battery":100,"battery_low":false,"carbon_monoxide":true,"linkquality":51,"tamper":false}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![row("alarm", "carbon_monoxide", json!("raised"))]
    );
}

#[test]
fn tuya_ts0215a_sos_and_heiman_hs1rc_n_emergency() {
    let evs = events(
        "zigbee2mqtt/sos",
        r#"{"action":"emergency","battery":76,"linkquality":78,"voltage":2900}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![row("alarm", "emergency", json!("raised"))]
    );
    assert_eq!(evs[0]["property"], "action");
    assert!(events("zigbee2mqtt/remote", r#"{"action":"disarm","battery":100}"#).is_empty());
    // IAS emergency zone reporting a state.
    let evs = events(
        "zigbee2mqtt/panic",
        r#"{"sos":true,"battery_low":false,"tamper":false}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![row("alarm", "emergency", json!("raised"))]
    );
}

#[test]
fn tuya_mir_he200_ty_fall_radar() {
    let evs = events(
        "zigbee2mqtt/radar",
        r#"{"fall_down_status":"fall","illuminance":120,"presence":true,"occupancy":true,"motion_speed":0,"linkquality":160}"#,
    );
    let s = summary(&evs);
    assert!(s.contains(&row("alarm", "fall", json!("raised"))), "{s:?}");
    assert!(s.contains(&row("observation", "presence", json!(true))));
    assert!(events("zigbee2mqtt/radar", r#"{"fall_down_status":"none"}"#).is_empty());
}

#[test]
fn aqara_wsdcgq11lm_climate_with_low_battery() {
    let evs = events(
        "zigbee2mqtt/bedroom/climate",
        r#"{"battery":15,"humidity":41.26,"linkquality":66,"power_outage_count":2,"pressure":1012.4,"temperature":21.53,"voltage":2785}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![
            row("observation", "humidity", json!(41.26)),
            row("observation", "pressure", json!(1012.4)),
            row("observation", "temperature", json!(21.53)),
            row("technical", "low_battery", json!("raised")),
        ]
    );
    let temp = evs.iter().find(|e| e["type"] == "temperature").unwrap();
    assert_eq!(temp["unit"], "Cel");
    assert_eq!(temp["mdc"], 8_519_694);
    let hum = evs.iter().find(|e| e["type"] == "humidity").unwrap();
    assert_eq!(
        (hum["unit"].clone(), hum["mdc"].clone()),
        (json!("%"), json!(8_519_695))
    );
    let tech = evs.iter().find(|e| e["kind"] == "technical").unwrap();
    assert_eq!(tech["severity"], "minor");
    assert_eq!(tech["property"], "battery");
    assert_eq!(tech["value"], 15);
    assert!(
        !tech["message"].as_str().unwrap().contains("15"),
        "no values in operator text"
    );
}

#[test]
fn aqara_mccgq11lm_contact_and_rtcgq11lm_occupancy() {
    let evs = events(
        "zigbee2mqtt/door",
        r#"{"battery":100,"contact":false,"device_temperature":23,"linkquality":96,"voltage":3045}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![row("observation", "contact", json!(false))]
    );
    assert_eq!(evs[0]["mdc"], 130 * 65_536 + 10);
    assert_eq!(evs[0]["unit"], Value::Null);
    let evs = events(
        "zigbee2mqtt/bed",
        r#"{"battery":97,"illuminance":12,"linkquality":84,"occupancy":true,"voltage":3025}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![
            row("observation", "illuminance", json!(12)),
            row("observation", "occupancy", json!(true))
        ]
    );
    let lux = evs.iter().find(|e| e["type"] == "illuminance").unwrap();
    assert_eq!(
        (lux["unit"].clone(), lux["mdc"].clone()),
        (json!("lx"), json!(1024 * 65_536 + 1))
    );
}

#[test]
fn legacy_illuminance_pair_gives_one_observation() {
    // zigbee2mqtt 1.x: raw `illuminance` and `illuminance_lux`.
    let evs = events(
        "zigbee2mqtt/motion",
        r#"{"illuminance":15327,"illuminance_lux":34,"occupancy":false}"#,
    );
    let lux: Vec<_> = evs.iter().filter(|e| e["type"] == "illuminance").collect();
    assert_eq!(lux.len(), 1);
    assert_eq!(lux[0]["value"], 34);
}

#[test]
fn co2_sensor() {
    let evs = events(
        "zigbee2mqtt/air",
        r#"{"co2":812,"voc":120,"temperature":22.4,"humidity":38}"#,
    );
    let co2 = evs.iter().find(|e| e["type"] == "co2").unwrap();
    assert_eq!(co2["unit"], "[ppm]");
}

#[test]
fn ignored_topics_and_properties() {
    assert!(events("zigbee2mqtt/bridge/info", r#"{"version":"1.40.2"}"#).is_empty());
    assert!(
        events(
            "zigbee2mqtt/bridge/logging",
            r#"{"level":"info","message":"x"}"#
        )
        .is_empty()
    );
    assert!(events("zigbee2mqtt/lamp/set", r#"{"state":"ON"}"#).is_empty());
    assert!(events("zigbee2mqtt/lamp/get", r#"{"state":""}"#).is_empty());
    assert!(
        events(
            "zigbee2mqtt/x",
            r#"{"linkquality":12,"voltage":3000,"update":{"state":"idle"},"unknown_thing":5}"#
        )
        .is_empty()
    );
    assert!(events("zigbee2mqtt/x", "").is_empty());
    assert!(events("other/x", r#"{"water_leak":true}"#).is_empty());
}

#[test]
fn availability_offline() {
    let evs = events(
        "zigbee2mqtt/hallway/motion/availability",
        r#"{"state":"offline"}"#,
    );
    assert_eq!(
        summary(&evs),
        vec![row("technical", "device_offline", json!("raised"))]
    );
    assert_eq!(evs[0]["device"], "zigbee:name:hallway/motion");
    assert!(events("zigbee2mqtt/hallway/motion/availability", "online").is_empty());
}

#[test]
fn malformed_input_is_an_error_naming_the_topic() {
    let now = Timestamp::from_unix_millis(0);
    let err = classify("zigbee2mqtt/leak", b"{not json", now).unwrap_err();
    assert!(
        err.to_string().contains("zigbee2mqtt/leak") && err.to_string().contains("not JSON"),
        "{err}"
    );
    let err = classify("zigbee2mqtt/leak", b"[1,2]", now).unwrap_err();
    assert!(err.to_string().contains("a list"), "{err}");
    let err = classify("zigbee2mqtt/bridge/devices", br#"{"a":1}"#, now).unwrap_err();
    assert!(err.to_string().contains("array"), "{err}");
    assert!(classify("zigbee2mqtt/x/availability", b"maybe", now).is_err());
}
