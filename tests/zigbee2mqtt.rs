//! zigbee2mqtt black-box test (issue 3): a real mosquitto, the hearth binary, and payloads of
//! real device models as zigbee2mqtt publishes them; the receiver must get the safety alarms,
//! technical alarms and observations they mean, under the devices' IEEE addresses, and a
//! malformed payload must end in the dead-letter table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{hub_config, start_connected, stop};
use hearth_test_kit::mosquitto::Mosquitto;

/// `zigbee2mqtt/bridge/devices` as zigbee2mqtt 1.x/2.x publishes it (retained), trimmed to the
/// fields hearth reads plus a few it must ignore.
const BRIDGE_DEVICES: &str = r#"[
 {"ieee_address":"0x00124b0022aabbcc","friendly_name":"Coordinator","type":"Coordinator","network_address":0,"supported":true,"definition":null},
 {"ieee_address":"0x00158d0001a2b3c4","friendly_name":"bathroom/leak","type":"EndDevice","network_address":11041,"supported":true,"definition":{"model":"SJCGQ11LM","vendor":"Aqara","description":"Water leak sensor","exposes":[]}},
 {"ieee_address":"0x0015bc001e00a1b2","friendly_name":"kitchen/smoke","type":"EndDevice","network_address":50021,"supported":true,"definition":{"model":"HS1SA","vendor":"HEIMAN","description":"Smoke detector","exposes":[]}},
 {"ieee_address":"0xa4c138f2d2e3f4a5","friendly_name":"sos button","type":"EndDevice","network_address":6012,"supported":true,"definition":{"model":"TS0215A_sos","vendor":"Tuya","description":"SOS button","exposes":[]}},
 {"ieee_address":"0x00158d000443c2d1","friendly_name":"hallway/door","type":"EndDevice","network_address":20177,"supported":true,"definition":{"model":"MCCGQ11LM","vendor":"Aqara","description":"Door and window contact sensor","exposes":[]}},
 {"ieee_address":"0x00158d00045a1b2c","friendly_name":"living room climate","type":"EndDevice","network_address":3321,"supported":true,"definition":{"model":"WSDCGQ11LM","vendor":"Aqara","description":"Temperature, humidity and pressure sensor","exposes":[]}}
]"#;

/// (kind, source, detail, mdc, value) of everything the receiver got.
type Row = (String, String, String, Option<i64>, Option<f64>);

fn received(path: &Path) -> Vec<Row> {
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, source, detail, mdc, value FROM received ORDER BY first_ms, id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn has(rows: &[Row], kind: &str, source: &str, detail: &str) -> bool {
    rows.iter()
        .any(|r| r.0 == kind && r.1.contains(source) && r.2 == detail)
}

#[test]
fn real_device_payloads_become_alarms_technical_alarms_and_observations() {
    let broker = Mosquitto::start();
    // zigbee2mqtt was there first: its retained device list and state wait in the broker.
    broker.publish("zigbee2mqtt/bridge/devices", BRIDGE_DEVICES, 1, true);
    broker.publish("zigbee2mqtt/bridge/state", r#"{"state":"online"}"#, 1, true);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("hearth.toml");
    let sources = "[[source]]\nname = \"zigbee\"\nkind = \"zigbee2mqtt\"\ncategory = \"welfare\"\n";
    std::fs::write(&config, hub_config(&data, broker.port(), sources)).unwrap();
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config, &log);

    let z = |topic: &str, payload: &str| {
        broker.publish(&format!("zigbee2mqtt/{topic}"), payload, 1, false)
    };
    // Aqara SJCGQ11LM water leak sensor.
    z(
        "bathroom/leak",
        r#"{"battery":100,"battery_low":false,"device_temperature":28,"linkquality":87,"power_outage_count":1,"voltage":3005,"water_leak":true}"#,
    );
    // HEIMAN HS1SA smoke detector, reporting twice (a repeat is not a second alarm).
    let smoke = r#"{"battery":100,"battery_low":false,"linkquality":102,"smoke":true,"tamper":false,"test":false}"#;
    z("kitchen/smoke", smoke);
    z("kitchen/smoke", smoke);
    // Tuya TS0215A_sos button.
    z(
        "sos button",
        r#"{"action":"emergency","battery":95,"linkquality":120}"#,
    );
    // Aqara MCCGQ11LM door contact: opened.
    z(
        "hallway/door",
        r#"{"battery":97,"contact":false,"device_temperature":24,"linkquality":60,"power_outage_count":3,"voltage":3015}"#,
    );
    // Aqara WSDCGQ11LM climate sensor with a weak battery.
    z(
        "living room climate",
        r#"{"battery":12,"humidity":45.61,"linkquality":84,"pressure":1008.4,"temperature":21.85,"voltage":2815}"#,
    );
    // The door sensor drops off the network; then a payload that is not JSON.
    z("hallway/door/availability", r#"{"state":"offline"}"#);
    z("hallway/door", "not json at all");
    // The leak is mopped up: cleared after the debounce (2 s).
    z(
        "bathroom/leak",
        r#"{"battery":100,"battery_low":false,"linkquality":90,"voltage":3005,"water_leak":false}"#,
    );

    let receiver = data.join("loopback-hub.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = received(&receiver);
        if has(&rows, "alarm", "00158d0001a2b3c4", "water_leak cleared") {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "the leak was not cleared; received: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(500));
    let rows = {
        let later = received(&receiver);
        if later.len() > rows.len() {
            later
        } else {
            rows
        }
    };
    stop(child);

    // Safety alarms, under the IEEE addresses learnt from bridge/devices.
    assert!(
        has(
            &rows,
            "alarm",
            "zigbee:00158d0001a2b3c4",
            "water_leak raised"
        ),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "alarm", "zigbee:0015bc001e00a1b2", "smoke raised"),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            "alarm",
            "zigbee:a4c138f2d2e3f4a5",
            "emergency raised"
        ),
        "{rows:#?}"
    );
    let smoke_alarms = rows
        .iter()
        .filter(|r| r.0 == "alarm" && r.2 == "smoke raised")
        .count();
    assert_eq!(smoke_alarms, 1, "a repeated state is not a new alarm");
    // Technical alarms: the weak battery and the door sensor gone offline.
    assert!(
        has(&rows, "technical", "00158d00045a1b2c", "low_battery raised"),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            "technical",
            "00158d000443c2d1",
            "device_offline raised"
        ),
        "{rows:#?}"
    );
    // Observations with IEEE 11073-10471 codes: temperature and humidity of the climate sensor
    // with their values, and the door's contact state.
    let obs = |mdc: i64| {
        rows.iter()
            .find(|r| r.0 == "reading" && r.1 == "zigbee:00158d00045a1b2c" && r.3 == Some(mdc))
            .and_then(|r| r.4)
    };
    assert_eq!(obs(8_519_694), Some(21.85), "temperature; {rows:#?}");
    assert_eq!(obs(8_519_695), Some(45.61), "humidity; {rows:#?}");
    assert!(
        rows.iter().any(|r| r.0 == "reading"
            && r.1 == "zigbee:00158d000443c2d1"
            && r.3 == Some(8_519_690)),
        "contact; {rows:#?}"
    );
    // The malformed payload is kept with its reason, counted, and nothing else was lost.
    let stats = hearth_outbox::stats(&data.join("outbox.db")).unwrap();
    assert_eq!(stats.counter("malformed:zigbee"), 1, "{:?}", stats.counters);
    let conn = rusqlite::Connection::open(data.join("outbox.db")).unwrap();
    let (origin, error): (String, String) = conn
        .query_row(
            "SELECT origin, reason FROM dead_letter WHERE origin LIKE 'input:%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(origin, "input:zigbee");
    assert!(
        error.contains("zigbee2mqtt/hallway/door") && error.contains("not JSON"),
        "{error}"
    );
}
