//! The demo script: zigbee2mqtt messages of real device models, as zigbee2mqtt publishes them.

use std::time::Duration;

/// `(IEEE, friendly name, model, vendor, description)` of the scripted devices.
const DEVICES: [(&str, &str, &str, &str, &str); 7] = [
    (
        "0x00158d0001a2b3c4",
        "bathroom/leak",
        "SJCGQ11LM",
        "Aqara",
        "Water leak sensor",
    ),
    (
        "0x0015bc001e00a1b2",
        "kitchen/smoke",
        "SMSZB-120",
        "frient",
        "Intelligent smoke alarm",
    ),
    (
        "0xa4c138d2f0e1b2c3",
        "living/sos",
        "TS0215A_sos",
        "Tuya",
        "SOS button",
    ),
    (
        "0x00158d00045f6e7d",
        "hallway/door",
        "MCCGQ11LM",
        "Aqara",
        "Door and window contact sensor",
    ),
    (
        "0x00158d0002c8d9e0",
        "bedroom/bed",
        "RTCGQ11LM",
        "Aqara",
        "Human body movement and illuminance sensor",
    ),
    (
        "0x00158d0003a1b2c3",
        "bedroom/climate",
        "WSDCGQ11LM",
        "Aqara",
        "Temperature, humidity and pressure sensor",
    ),
    (
        "0x00124b0022334455",
        "hallway/motion",
        "SNZB-03",
        "SONOFF",
        "Motion sensor",
    ),
];

/// A demo of about 10 s (base topic `zigbee2mqtt`): the bridge comes online and lists its
/// devices, then a water leak, a smoke alarm, an SOS button press, a door opened and closed, a
/// bed occupancy sensor, a climate sensor with a low battery and a motion sensor going offline.
/// Each entry is (time since start, topic, payload).
pub fn scripted_messages() -> Vec<(Duration, String, String)> {
    let mut devices = vec![
        r#"{"ieee_address":"0x00124b0018e1a2b3","type":"Coordinator","network_address":0,"friendly_name":"Coordinator","supported":true,"disabled":false,"interview_completed":true,"definition":null}"#.to_owned(),
    ];
    for (ieee, name, model, vendor, description) in DEVICES {
        devices.push(format!(
            r#"{{"ieee_address":"{ieee}","type":"EndDevice","network_address":4660,"friendly_name":"{name}","supported":true,"disabled":false,"interview_completed":true,"power_source":"Battery","definition":{{"model":"{model}","vendor":"{vendor}","description":"{description}","supports_ota":false,"exposes":[]}}}}"#
        ));
    }
    let at = |ms: u64| Duration::from_millis(ms);
    let m = |t: u64, topic: &str, payload: &str| {
        (at(t), format!("zigbee2mqtt/{topic}"), payload.to_owned())
    };
    vec![
        m(0, "bridge/state", r#"{"state":"online"}"#),
        (
            at(100),
            "zigbee2mqtt/bridge/devices".to_owned(),
            format!("[{}]", devices.join(",")),
        ),
        m(
            500,
            "bedroom/climate",
            r#"{"battery":15,"humidity":41.26,"linkquality":66,"power_outage_count":2,"pressure":1012.4,"temperature":21.53,"voltage":2785}"#,
        ),
        m(
            1_000,
            "bathroom/leak",
            r#"{"battery":100,"battery_low":false,"device_temperature":26,"linkquality":120,"power_outage_count":5,"tamper":false,"voltage":3005,"water_leak":false}"#,
        ),
        m(
            1_500,
            "hallway/door",
            r#"{"battery":100,"contact":true,"device_temperature":23,"linkquality":96,"power_outage_count":1,"voltage":3045}"#,
        ),
        m(
            2_000,
            "bedroom/bed",
            r#"{"battery":97,"device_temperature":22,"illuminance":12,"linkquality":84,"occupancy":true,"power_outage_count":3,"voltage":3025}"#,
        ),
        m(
            3_000,
            "bathroom/leak",
            r#"{"battery":100,"battery_low":false,"device_temperature":26,"linkquality":117,"power_outage_count":5,"tamper":false,"voltage":3005,"water_leak":true}"#,
        ),
        m(
            4_000,
            "kitchen/smoke",
            r#"{"battery":90,"battery_low":false,"linkquality":102,"reliability":"no_fault_detected","smoke":false,"supervision_reports":true,"tamper":false,"temperature":22.1,"test":false,"voltage":3000}"#,
        ),
        m(
            5_000,
            "hallway/door",
            r#"{"battery":100,"contact":false,"device_temperature":23,"linkquality":93,"power_outage_count":1,"voltage":3045}"#,
        ),
        m(
            5_500,
            "kitchen/smoke",
            r#"{"battery":90,"battery_low":false,"linkquality":99,"reliability":"no_fault_detected","smoke":true,"supervision_reports":true,"tamper":false,"temperature":24.6,"test":false,"voltage":3000}"#,
        ),
        m(
            6_000,
            "living/sos",
            r#"{"action":"emergency","battery":76,"linkquality":78,"voltage":2900}"#,
        ),
        m(
            6_300,
            "living/sos",
            r#"{"action":"emergency","battery":76,"linkquality":75,"voltage":2900}"#,
        ),
        m(
            7_000,
            "bedroom/bed",
            r#"{"battery":97,"device_temperature":22,"illuminance":3,"linkquality":81,"occupancy":false,"power_outage_count":3,"voltage":3025}"#,
        ),
        m(
            7_500,
            "hallway/door",
            r#"{"battery":100,"contact":true,"device_temperature":23,"linkquality":95,"power_outage_count":1,"voltage":3045}"#,
        ),
        m(
            8_000,
            "hallway/motion/availability",
            r#"{"state":"offline"}"#,
        ),
        m(
            9_000,
            "bathroom/leak",
            r#"{"battery":100,"battery_low":false,"device_temperature":26,"linkquality":118,"power_outage_count":5,"tamper":false,"voltage":3005,"water_leak":false}"#,
        ),
        m(
            9_500,
            "kitchen/smoke",
            r#"{"battery":90,"battery_low":false,"linkquality":101,"reliability":"no_fault_detected","smoke":false,"supervision_reports":true,"tamper":false,"temperature":23.2,"test":false,"voltage":3000}"#,
        ),
        m(
            10_000,
            "bedroom/climate",
            r#"{"battery":15,"humidity":42.02,"linkquality":63,"power_outage_count":2,"pressure":1012.6,"temperature":21.61,"voltage":2780}"#,
        ),
    ]
}
