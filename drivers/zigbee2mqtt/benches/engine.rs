//! Rules-engine cost per zigbee2mqtt message, without storage: messages/s on one core, and the
//! records and state entries each message produces (what the commit has to write).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

use std::time::Instant;

use hearth_driver_zigbee2mqtt::{Engine, Message, Settings};
use hearth_model::Timestamp;

const SENSOR: &str =
    r#"{"battery":97,"humidity":45.2,"linkquality":120,"temperature":21.53,"voltage":3000}"#;

fn main() {
    let mut engine = Engine::new(Settings::new("bench")).unwrap();
    let n = 200_000u64;
    let topics: Vec<String> = (0..50).map(|i| format!("zigbee2mqtt/sensor_{i}")).collect();
    let t0 = Timestamp::now().unix_millis();
    let start = Instant::now();
    let (mut records, mut state) = (0usize, 0usize);
    for i in 0..n {
        let m = Message {
            topic: &topics[(i % 50) as usize],
            payload: SENSOR.as_bytes(),
            retained: false,
            sequence: i + 1,
        };
        let out = engine
            .handle(&m, Timestamp::from_unix_millis(t0 + i as i64))
            .unwrap();
        records += out.events.len();
        state += out.state.len();
    }
    let secs = start.elapsed().as_secs_f64();
    let baseline = Instant::now();
    let mut keys = 0usize;
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_str(std::hint::black_box(SENSOR)).unwrap();
        keys += v.as_object().map_or(0, |o| o.len());
    }
    let base = baseline.elapsed().as_secs_f64();
    println!(
        "{:<46} {:>9.0} msg/s   baseline serde_json parse only {:>9.0} msg/s   ratio {:>5.2}",
        "zigbee2mqtt rules engine, sensor message",
        n as f64 / secs,
        n as f64 / base,
        (n as f64 / secs) / (n as f64 / base)
    );
    println!(
        "  per message: {:.2} records, {:.2} state entries ({keys} keys parsed in the baseline)",
        records as f64 / n as f64,
        state as f64 / n as f64
    );
}
