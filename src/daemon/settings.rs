//! Configuration → driver settings: THE place where a source's configuration becomes the
//! settings its driver runs with.
//!
//! One function per driver. The daemon (and the CLI commands that run a driver's engine, such
//! as `hearth config check` and `hearth zigbee2mqtt test`) use only these, so a new capability
//! (SCAIP alarms, voice, connectivity) adds its translation here rather than in the wiring or
//! in the configuration crate. The demo-only allow-list of the simulated BLE radio lives here
//! too, next to the translation that falls back to it.

use std::time::Duration;

use anyhow::Context;
use hearth_config::{Config, SourceConfig};
use hearth_driver_ble::backend::Address;
use hearth_driver_ble::driver::{BleSettings, DeviceEntry};
use hearth_driver_simulated::SimulatedSettings;
use jiff::tz::TimeZone;

/// `gateway.time_zone`, the zone drivers read local times in.
pub fn gateway_time_zone(config: &Config) -> anyhow::Result<TimeZone> {
    config
        .gateway
        .time_zone()
        .map_err(|e| anyhow::anyhow!("gateway.time_zone: {e}"))
}

/// A `kind = "simulated"` source.
pub fn simulated(source: &SourceConfig) -> SimulatedSettings {
    let sim = source.simulated_settings();
    SimulatedSettings {
        name: source.name.clone(),
        devices: sim.devices,
        interval: sim.interval.get(),
        alarm_every: sim.alarm_every,
        category: source.category,
        max_rounds: None,
    }
}

/// A `kind = "ble"` source. A simulated backend without configured devices allows every
/// scripted device of the simulated radio ([`demo_ble_allow_list`]).
pub fn ble(config: &Config, source: &SourceConfig) -> anyhow::Result<BleSettings> {
    let ble = source.ble_settings();
    let time_zone = gateway_time_zone(config)?;
    let mut devices = Vec::new();
    for d in &ble.devices {
        let address = Address::parse(&d.address).with_context(|| {
            format!(
                "source {:?}: device address {:?} is not AA:BB:CC:DD:EE:FF",
                source.name, d.address
            )
        })?;
        // The stable id: the configured System ID (EUI-64) if given, else the address.
        let id_value = d
            .system_id
            .as_ref()
            .map_or_else(|| address.compact(), |s| s.to_ascii_lowercase());
        devices.push(DeviceEntry {
            address,
            id: hearth_model::DeviceId::new("ble", &id_value)?,
            person: d.person.clone().map(hearth_model::PersonRef::new),
            category: d.category_or(source.category),
        });
    }
    if devices.is_empty() && matches!(ble.backend, hearth_config::BleBackendKind::Simulated) {
        devices = demo_ble_allow_list(source.category);
    }
    Ok(BleSettings {
        name: source.name.clone(),
        devices,
        offline_after: ble.offline_after.get(),
        low_battery_percent: ble.low_battery_percent,
        clock_tolerance: ble.clock_tolerance.get(),
        time_zone,
        idle_timeout: ble.idle_timeout.get(),
        reconnect_initial: ble.reconnect_initial.get(),
        reconnect_max: ble.reconnect_max.get(),
        commit_chunk: usize::try_from(ble.commit_chunk).unwrap_or(100),
    })
}

/// The allow-list of the demo and of simulated BLE sources without devices: every scripted
/// device of the simulated radio ([`hearth_driver_ble::sim::scripted_devices`] and
/// [`hearth_driver_ble::sim::more_scripted_devices`]), identified by its address.
pub fn demo_ble_allow_list(category: hearth_model::Category) -> Vec<DeviceEntry> {
    hearth_driver_ble::sim::scripted_devices(0)
        .into_iter()
        .chain(hearth_driver_ble::sim::more_scripted_devices(0))
        .filter_map(|d| {
            let id = hearth_model::DeviceId::new("ble", &d.address.compact()).ok()?;
            Some(DeviceEntry {
                address: d.address,
                id,
                person: None,
                category,
            })
        })
        .collect()
}

/// A `kind = "zigbee2mqtt"` source (its table or the defaults), with the gateway's time zone
/// (`rule.hours` are local to it).
pub fn zigbee2mqtt(
    source: &SourceConfig,
    time_zone: TimeZone,
) -> hearth_driver_zigbee2mqtt::Settings {
    hearth_driver_zigbee2mqtt::Settings {
        source: source.name.clone(),
        config: source.zigbee2mqtt_settings(),
        category: source.category,
        time_zone,
    }
}

/// How a zigbee2mqtt source reaches its messages: the configured broker, or the simulated
/// transport that replays the shipped script every 20 s.
pub fn zigbee2mqtt_transport(
    config: &Config,
    source: &SourceConfig,
) -> hearth_driver_mqtt::Transport {
    match source.zigbee2mqtt_settings().backend {
        hearth_config::Zigbee2mqttBackendKind::Mqtt => mqtt_broker(config),
        hearth_config::Zigbee2mqttBackendKind::Simulated => {
            hearth_driver_mqtt::Transport::Simulated {
                script: hearth_driver_mqtt::handlers::zigbee2mqtt_script(),
                period: Some(Duration::from_secs(20)),
            }
        }
    }
}

/// A `kind = "external"` source: an external driver publishing over MQTT.
pub fn external(source: &SourceConfig) -> hearth_driver_mqtt::handlers::ExternalSettings {
    hearth_driver_mqtt::handlers::ExternalSettings {
        source: source.name.clone(),
        config: source.external_settings(),
        category: source.category,
    }
}

/// The `[mqtt]` broker every MQTT source connects to.
pub fn mqtt_broker(config: &Config) -> hearth_driver_mqtt::Transport {
    hearth_driver_mqtt::Transport::Broker(config.mqtt.clone())
}
