#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 15: the safety session against a real mosquitto. A device with a safety role is
//! received on the source's second MQTT session; its alarm is committed ahead of a flood of
//! sensor messages queued in the main session, stored once, and not again after a restart.
//! Order is observed through the commits, never timing.

use std::time::Duration;

use hearth_config::{MqttConfig, SensorConfig, SensorRole};
use hearth_driver_mqtt::{CommittedBatch, MqttSource, Transport};
use hearth_model::{AlarmKind, Record};
use hearth_test_kit::mosquitto::Mosquitto;
use hearth_test_kit::{Harness, RunLimit};
use tokio::sync::mpsc;

const SENSOR: &str = r#"{"battery":97,"humidity":45.2,"temperature":21.53}"#;
/// A frient SBTZB-110 press: not an alarm by the shipped rules, an emergency by the role.
const PRESS: &str = r#"{"action":"single","battery":100,"linkquality":120}"#;

fn source(broker: &Mosquitto) -> MqttSource {
    let mut settings = hearth_driver_zigbee2mqtt::Settings::new("home");
    let mut sos = SensorConfig::new("hall/sos");
    sos.role = SensorRole::SosButton;
    settings.config.devices = vec![sos, SensorConfig::new("climate")];
    let handler = hearth_driver_mqtt::handlers::zigbee2mqtt(settings).unwrap();
    let cfg = MqttConfig {
        port: broker.port(),
        ..MqttConfig::default()
    };
    MqttSource::new("home", Transport::Broker(cfg), handler)
}

async fn run(h: &Harness, broker: &Mosquitto) {
    let report = h
        .run(
            source(broker),
            RunLimit::until_quiet(Duration::from_millis(1500), Duration::from_secs(60)),
        )
        .await;
    assert!(report.problems().is_empty(), "{:?}", report.problems());
}

async fn emergencies(h: &Harness) -> Vec<hearth_model::Alarm> {
    h.records()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Alarm(a) if a.kind == AlarmKind::Emergency => Some(a),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sos_button_is_stored_once_via_the_safety_session_while_the_main_session_is_flooded() {
    const FLOOD: usize = 20_000;
    let broker = Mosquitto::start();
    let h = Harness::new().unwrap();
    // First run: both persistent sessions and their subscriptions, recorded.
    run(&h, &broker).await;
    assert_eq!(h.cursor("mqtt:home/safety:seq").await.unwrap(), None);
    // While hearth is stopped: a flood of sensor messages queues in the main session, then
    // the button is pressed (queued in both sessions: the main one's filter is `zigbee2mqtt/#`).
    let flood: Vec<String> = (0..FLOOD).map(|_| SENSOR.to_owned()).collect();
    broker.publish_lines("zigbee2mqtt/climate", &flood, 1);
    broker.publish("zigbee2mqtt/hall/sos", PRESS, 1, false);
    let (tx, mut rx) = mpsc::unbounded_channel::<CommittedBatch>();
    let running = h.spawn(source(&broker).observe(tx));
    let mut sensors_before_alarm = None;
    let mut sensors = 0usize;
    while sensors < FLOOD {
        let b = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no commit for 60 s")
            .expect("source ended");
        for (topic, _) in &b.topics {
            if topic == "zigbee2mqtt/hall/sos" {
                assert!(sensors_before_alarm.is_none(), "the press is stored once");
                sensors_before_alarm = Some(sensors);
            } else {
                sensors += 1;
            }
        }
    }
    // Let the main session reach the press too (it acknowledges it without storing it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await.unwrap();
    let before = sensors_before_alarm.expect("the press was committed");
    assert!(
        before < FLOOD,
        "the alarm was committed ahead of the sensor backlog ({before} of {FLOOD} before it)"
    );
    let alarms = emergencies(&h).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        alarms[0].sequence.map(|s| s >> 62),
        Some(1),
        "stored from the safety session (its sequence space)"
    );
    // The safety session's ledger counted the press; the main one only the flood.
    assert_eq!(h.cursor("mqtt:home/safety:seq").await.unwrap(), Some(1));
    assert_eq!(
        h.cursor("mqtt:home:seq").await.unwrap(),
        Some(i64::try_from(FLOOD).unwrap())
    );
    // Restart: everything was acknowledged on both sessions; nothing is stored twice.
    run(&h, &broker).await;
    assert_eq!(emergencies(&h).await.len(), 1);
    assert_eq!(h.cursor("mqtt:home/safety:seq").await.unwrap(), Some(1));
}

/// Commit-then-ack holds on the safety session too: a press whose commit fails is not
/// acknowledged, the broker redelivers it on the next run, and it is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_whose_commit_failed_is_redelivered_and_stored_once() {
    let broker = Mosquitto::start();
    let h = Harness::new().unwrap();
    run(&h, &broker).await;
    h.set_storage_full(true).await.unwrap();
    broker.publish("zigbee2mqtt/hall/sos", PRESS, 1, false);
    let report = h.run(source(&broker), Duration::from_secs(10)).await;
    assert!(
        report.problems().iter().any(|p| p.contains("full")),
        "{:?}",
        report.problems()
    );
    assert!(emergencies(&h).await.is_empty());
    h.set_storage_full(false).await.unwrap();
    run(&h, &broker).await;
    assert_eq!(emergencies(&h).await.len(), 1);
    run(&h, &broker).await;
    assert_eq!(emergencies(&h).await.len(), 1);
}
