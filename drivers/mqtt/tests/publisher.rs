#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The publisher against a real mosquitto: QoS 1 messages seen by a subscriber, not
//! retained, and a full queue drops (and counts) instead of waiting.

use std::time::Duration;

use hearth_config::MqttConfig;
use hearth_driver_mqtt::Publisher;
use hearth_driver_mqtt::publisher::QUEUE;
use hearth_test_kit::mosquitto::{Mosquitto, free_port};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_a_subscriber_in_order_and_are_not_retained() {
    let broker = Mosquitto::start();
    let sub = broker.subscribe("zigbee2mqtt/#");
    let cfg = MqttConfig {
        port: broker.port(),
        ..MqttConfig::default()
    };
    let p = Publisher::start(&cfg, "receipt").unwrap();
    assert!(p.publish("zigbee2mqtt/hall/siren/set", br#"{"a":1}"#.to_vec()));
    assert!(p.publish("zigbee2mqtt/hall/lamp/set", br#"{"b":2}"#.to_vec()));
    let got = tokio::task::spawn_blocking(move || {
        let a = sub.next(DEADLINE);
        let b = sub.next(DEADLINE);
        (a, b)
    })
    .await
    .unwrap();
    assert_eq!(
        got,
        (
            Some(("zigbee2mqtt/hall/siren/set".into(), r#"{"a":1}"#.into())),
            Some(("zigbee2mqtt/hall/lamp/set".into(), r#"{"b":2}"#.into()))
        )
    );
    assert_eq!(p.dropped(), 0);
    // Not retained: a later subscriber gets nothing (a message published after it subscribed
    // comes first).
    let late = broker.subscribe("zigbee2mqtt/#");
    assert!(p.publish("zigbee2mqtt/marker", b"m".to_vec()));
    let first = tokio::task::spawn_blocking(move || late.next(DEADLINE))
        .await
        .unwrap();
    assert_eq!(first, Some(("zigbee2mqtt/marker".into(), "m".into())));
}

#[tokio::test]
async fn without_a_broker_publishing_never_waits_and_a_full_queue_drops() {
    let cfg = MqttConfig {
        port: free_port(),
        reconnect_initial: hearth_config::ConfigDuration::from_secs(60),
        reconnect_max: hearth_config::ConfigDuration::from_secs(60),
        ..MqttConfig::default()
    };
    let p = Publisher::start(&cfg, "receipt").unwrap();
    let mut accepted = 0;
    for i in 0..QUEUE * 3 {
        if p.publish("zigbee2mqtt/x/set", format!("{i}").into_bytes()) {
            accepted += 1;
        }
    }
    assert!(accepted <= QUEUE + 1, "accepted {accepted}");
    assert_eq!(p.dropped(), u64::try_from(QUEUE * 3 - accepted).unwrap());
    assert!(p.dropped() > 0);
}
