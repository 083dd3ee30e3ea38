#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `handle` and `classify` never panic, whatever arrives.

use hearth_driver_zigbee2mqtt::{Engine, Message, Settings, classify};
use hearth_model::Timestamp;
use proptest::prelude::*;
use serde_json::{Map, Value};

const TOPICS: [&str; 8] = [
    "zigbee2mqtt/bridge/devices",
    "zigbee2mqtt/bridge/state",
    "zigbee2mqtt/a/b",
    "zigbee2mqtt/a/b/availability",
    "zigbee2mqtt/0x00158d0001a2b3c4",
    "zigbee2mqtt/a/b/set",
    "zigbee2mqtt/",
    "zigbee2mqtt",
];

const PROPS: [&str; 14] = [
    "water_leak",
    "smoke",
    "action",
    "battery",
    "battery_low",
    "temperature",
    "contact",
    "occupancy",
    "last_seen",
    "fall_down_status",
    "ieee_address",
    "friendly_name",
    "state",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9 %:/._-]{0,12}".prop_map(Value::String),
        Just(Value::String("0x00158d0001a2b3c4".into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(PROPS.to_vec()), inner), 0..6).prop_map(
                |kv| Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>()
                )
            ),
        ]
    })
}

fn engine() -> Engine {
    let mut s = Settings::new("fuzz");
    s.config.offline_after = hearth_config::ConfigDuration::from_secs(1);
    Engine::new(s).unwrap()
}

proptest! {
    #[test]
    fn handle_never_panics_on_bytes(
        msgs in prop::collection::vec((prop::sample::select(TOPICS.to_vec()), any::<String>(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>(), any::<i64>()), 1..8),
    ) {
        let mut e = engine();
        for (i, (topic, suffix, payload, retained, at)) in msgs.iter().enumerate() {
            let topic = if i % 2 == 0 { (*topic).to_owned() } else { format!("{topic}{suffix}") };
            let now = Timestamp::from_unix_millis(*at);
            let _ = e.handle(&Message { topic: &topic, payload, retained: *retained, sequence: i as u64 }, now);
            let _ = e.tick(now);
            let _ = e.next_deadline();
            let _ = classify(&topic, payload, now);
        }
    }

    #[test]
    fn handle_never_panics_on_json_objects(
        msgs in prop::collection::vec((prop::sample::select(TOPICS.to_vec()), json_value(), any::<bool>(), -10_000_000_000_000i64..10_000_000_000_000i64), 1..12),
    ) {
        let mut e = engine();
        let mut state = Vec::new();
        for (i, (topic, v, retained, at)) in msgs.iter().enumerate() {
            let payload = v.to_string();
            let now = Timestamp::from_unix_millis(*at);
            if let Ok(out) = e.handle(&Message { topic, payload: payload.as_bytes(), retained: *retained, sequence: i as u64 }, now) {
                for ev in &out.events {
                    let _ = ev.to_json();
                }
                state.extend(out.state);
            }
            state.extend(e.tick(now).state);
        }
        let mut again = engine();
        again.restore(state);
        let _ = again.tick(Timestamp::from_unix_millis(i64::MAX));
        let _ = again.next_deadline();
    }

    #[test]
    fn classify_never_panics(topic in "\\PC{0,40}", payload in prop::collection::vec(any::<u8>(), 0..128), at in any::<i64>()) {
        let _ = classify(&topic, &payload, Timestamp::from_unix_millis(at));
        let _ = classify(&format!("zigbee2mqtt/{topic}"), &payload, Timestamp::from_unix_millis(at));
    }
}
