//! The driver conformance kit (`crates/test-kit`, what a vendor runs) on the external-driver
//! source as hearth runs it (issue 14): the MQTT source of `hearth-driver-mqtt` with this crate's
//! contract as its handler, connected to a real mosquitto, fed the documented JSON envelope
//! (`docs/drivers/external.md`) by a vendor's program: every message of the valid corpus
//! (`tests/corpus/valid/`: readings with and without sequence numbers, compound values, absent
//! values, safety and technical alarms, vendor extensions), one message sent twice with the same
//! id (a vendor re-sending after a lost PUBACK), and one that breaks the contract (dead-lettered
//! and answered). The contract's parser is fuzzed with the corpus as samples.
//!
//! Each fresh driver gets a new broker (a new "device"): hearth's persistent session (client id
//! `hearth-vendors`) is created first, then the messages are published at QoS 1, so the broker
//! queues them for the driver, in order, as it does for a vendor's program publishing while
//! hearth restarts; a restarted driver reconnects to the same session and gets what was not
//! acknowledged.
//!
//! All four checks run and nothing is declared live: every record's id comes from the driver
//! id, the message id and the entry's position, never from the receipt time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::sync::Arc;
use std::time::Duration;

use hearth_config::{ExternalConfig, MqttConfig};
use hearth_driver_external::parse;
use hearth_driver_mqtt::handlers::{self, ExternalSettings};
use hearth_driver_mqtt::{MqttSource, Transport};
use hearth_model::{Category, Timestamp};
use hearth_test_kit::RunLimit;
use hearth_test_kit::conformance::{Conformance, OnDevice};
use hearth_test_kit::mosquitto::Mosquitto;

/// The source's name; hearth connects as `hearth-<name>`.
const SOURCE: &str = "vendors";

/// The vendor's driver id: it publishes to `hearth/v1/driver/acme_bed/in`.
const DRIVER: &str = "acme_bed";

/// Quiet for a second: the driver has connected, received the queue and committed it.
const LIMIT: RunLimit = RunLimit::until_quiet(Duration::from_millis(1000), Duration::from_secs(30));

/// A message that breaks the contract (no device): dead-lettered and answered.
const INVALID: &str = r#"{"v":1,"id":"bad-1","readings":[{"mdc":150364,"value":36.6,"unit":"Cel","time":"2026-03-14T08:00:00Z"}]}"#;

/// The valid corpus, each message on one line, in file name order.
fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/valid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

/// What the vendor's program publishes, in order.
fn messages() -> Vec<String> {
    let mut m = corpus();
    // The first message again, same id and content: sent again after a lost PUBACK.
    m.insert(2, m[0].clone());
    m.insert(4, INVALID.to_owned());
    m
}

fn settings() -> ExternalSettings {
    ExternalSettings {
        source: SOURCE.into(),
        config: ExternalConfig::default(),
        category: Category::Health,
    }
}

/// A broker with hearth's session and the vendor's messages queued in it.
fn device() -> Arc<Mosquitto> {
    let broker = Mosquitto::start();
    let handler = handlers::external(settings()).unwrap();
    broker.create_session(&format!("hearth-{SOURCE}"), &handler.subscriptions());
    let topic = format!("{}/{DRIVER}/in", ExternalConfig::default().topic_prefix);
    broker.publish_lines(&topic, &messages(), 1);
    Arc::new(broker)
}

/// The driver hearth runs for a `kind = "external"` source, on `broker`.
fn driver(broker: &Arc<Mosquitto>) -> MqttSource {
    let config = MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port(),
        ..MqttConfig::default()
    };
    let handler = handlers::external(settings()).unwrap();
    MqttSource::new(SOURCE, Transport::Broker(config), handler)
}

fn decode(payload: &[u8]) -> Result<usize, String> {
    parse(
        DRIVER,
        payload,
        Timestamp::from_unix_millis(1_773_471_900_000),
        Category::Health,
    )
    .map(|a| a.records.len())
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_external_driver_source_passes_the_conformance_kit_over_mosquitto() {
    let corpus = corpus();
    for m in &corpus {
        decode(m.as_bytes()).unwrap_or_else(|e| panic!("{e}: {m}"));
    }
    assert!(decode(INVALID.as_bytes()).is_err());
    // The envelope's typical sizes: a reading, an alarm, a technical alarm, a compound value.
    let samples: Vec<&[u8]> = corpus
        .iter()
        .filter(|m| m.len() <= 700)
        .map(|m| m.as_bytes())
        .collect();
    assert!(samples.len() >= 4, "{} small samples", samples.len());
    let summary = tokio::time::timeout(
        Duration::from_secs(300),
        Conformance::new(OnDevice::new(device, driver))
            .limit(LIMIT)
            .decoder("external contract", decode, &samples)
            .run(),
    )
    .await
    .expect("the conformance kit finished within 300 s");
    summary.assert_passed();
}
