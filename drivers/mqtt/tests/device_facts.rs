//! Issue 6 (b): zigbee2mqtt's `bridge/devices` (vendor, model) reaches the outbox's device table
//! through the MQTT source, with the simulated transport's script of real device models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hearth_driver_api::{Driver, DriverContext, Ingest, TechnicalAlarms};
use hearth_driver_mqtt::{MqttSource, Transport, handlers};
use hearth_model::Category;
use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};

#[tokio::test]
async fn issue_6_bridge_devices_are_stored_as_device_facts() {
    let dir = tempfile::tempdir().unwrap();
    let route = RouteSpec {
        name: "hub".into(),
        categories: Category::ALL.to_vec(),
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let (ob, _) = Outbox::open(OutboxOptions::new(dir.path().join("o.db"), vec![route])).unwrap();
    let w = OutboxWriter::spawn(ob, 100).unwrap().0;
    let ingest = Ingest::new(w.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ctx = DriverContext::new(
        ingest.clone(),
        TechnicalAlarms::new(ingest.clone()),
        stop_rx,
    );
    let handler = handlers::zigbee2mqtt(hearth_driver_zigbee2mqtt::Settings::new("z2m")).unwrap();
    let transport = Transport::Simulated {
        script: handlers::zigbee2mqtt_script(),
        period: None,
    };
    let mut source = MqttSource::new("z2m", transport, handler);
    let task = tokio::spawn(async move { source.run(&ctx).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut facts = Vec::new();
    while tokio::time::Instant::now() < deadline {
        facts = w.devices().await.unwrap();
        if !facts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(!facts.is_empty(), "no device facts stored");
    for d in &facts {
        assert!(
            d.id.as_ref().unwrap().as_str().starts_with("zigbee:"),
            "{d:?}"
        );
        assert!(d.manufacturer.is_some() && d.model.is_some(), "{d:?}");
        assert_eq!(d.eui64.as_deref().map(str::len), Some(16));
    }
}
