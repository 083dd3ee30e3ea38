//! Sources: one supervised task per enabled source, one function per source kind (simulated,
//! BLE, MQTT-based: zigbee2mqtt and external drivers). Their settings come from
//! [`super::settings`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hearth_config::{Config, SourceConfig, SourceKind};
use hearth_driver_api::{Driver, DriverContext};
use hearth_driver_simulated::Simulated;
use hearth_runtime::{Supervisor, TaskError, TaskSpec};

use super::Observers;
use super::settings;

/// What every source task shares: the driver context and the count of sources still inside a
/// submission (the drain waits for them before it counts the backlog).
pub(super) struct SourceWiring {
    pub ctx: DriverContext,
    pub running: Arc<AtomicUsize>,
}

/// Add a task for every enabled source. A configuration that cannot work (a bad address, a
/// rule that does not compile) stops start-up here, not in a restart loop.
pub(super) fn start(
    config: &Config,
    observers: &Observers,
    supervisor: &mut Supervisor,
    wiring: &SourceWiring,
) -> anyhow::Result<()> {
    for source in config.sources.iter().filter(|s| s.enabled) {
        let task = match source.kind {
            SourceKind::Simulated => simulated(source, wiring),
            SourceKind::Ble => ble(config, source, observers, wiring)?,
            SourceKind::Zigbee2mqtt | SourceKind::External => mqtt(config, source, wiring)?,
        };
        supervisor.add(task)?;
    }
    Ok(())
}

fn simulated(source: &SourceConfig, wiring: &SourceWiring) -> TaskSpec {
    let settings = settings::simulated(source);
    source_task(
        &source.name,
        wiring.ctx.clone(),
        wiring.running.clone(),
        move || {
            Simulated::new(settings.clone())
                .map(|d| Box::new(d) as Box<dyn Driver>)
                .map_err(|e| e.to_string())
        },
    )
}

fn ble(
    config: &Config,
    source: &SourceConfig,
    observers: &Observers,
    wiring: &SourceWiring,
) -> anyhow::Result<TaskSpec> {
    let settings = settings::ble(config, source)?;
    let ble = source.ble_settings();
    let ctx = wiring.ctx.clone();
    let running = wiring.running.clone();
    let simulated = matches!(ble.backend, hearth_config::BleBackendKind::Simulated);
    let adapter = ble.adapter.clone();
    let glucose_records = observers.simulated_glucose_records;
    Ok(TaskSpec::new(
        format!("source/{}", source.name),
        true,
        move |task| {
            let settings = settings.clone();
            let ctx = ctx.clone();
            let running = running.clone();
            let adapter = adapter.clone();
            async move {
                running.fetch_add(1, Ordering::SeqCst);
                let result = if simulated {
                    let backend = demo_radio(glucose_records);
                    hearth_driver_ble::driver::BleDriver::new(settings, backend)
                        .run(&ctx)
                        .await
                } else {
                    match hearth_driver_ble::bluez::BluezBackend::open(&adapter).await {
                        Ok(backend) => {
                            hearth_driver_ble::driver::BleDriver::new(settings, backend)
                                .run(&ctx)
                                .await
                        }
                        Err(e) => Err(hearth_driver_api::DriverError::Link(e.to_string())),
                    }
                };
                running.fetch_sub(1, Ordering::SeqCst);
                result.map_err(TaskError::new)?;
                task.shutdown_requested().await;
                Ok(())
            }
        },
    ))
}

/// The simulated radio of the demo: every scripted device, advertising every 700 ms.
fn demo_radio(glucose_records: u16) -> hearth_driver_ble::sim::SimBackend {
    let mut devices = hearth_driver_ble::sim::scripted_devices(glucose_records);
    devices.extend(hearth_driver_ble::sim::more_scripted_devices(600));
    // Keep the stored-record devices' memories demo-sized.
    for d in &mut devices {
        let keep: std::collections::BTreeMap<u16, Vec<u8>> = d
            .stored
            .iter()
            .take(30)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        d.stored = keep;
    }
    hearth_driver_ble::sim::SimBackend::new(devices, Duration::from_millis(700))
}

fn mqtt(config: &Config, source: &SourceConfig, wiring: &SourceWiring) -> anyhow::Result<TaskSpec> {
    let plan = mqtt_plan(config, source)?;
    Ok(source_task(
        &source.name,
        wiring.ctx.clone(),
        wiring.running.clone(),
        move || plan.source().map(|d| Box::new(d) as Box<dyn Driver>),
    ))
}

/// What an MQTT source is made of; rebuilt on every (re)start of its task.
#[derive(Clone)]
struct MqttPlan {
    name: String,
    transport: hearth_driver_mqtt::Transport,
    handler: HandlerPlan,
}

#[derive(Clone)]
enum HandlerPlan {
    Zigbee2mqtt(hearth_driver_zigbee2mqtt::Settings),
    External(hearth_driver_mqtt::handlers::ExternalSettings),
}

impl MqttPlan {
    fn source(&self) -> Result<hearth_driver_mqtt::MqttSource, String> {
        let handler: Box<dyn hearth_driver_mqtt::Handler> = match &self.handler {
            HandlerPlan::Zigbee2mqtt(s) => hearth_driver_mqtt::handlers::zigbee2mqtt(s.clone())?,
            HandlerPlan::External(s) => hearth_driver_mqtt::handlers::external(s.clone())?,
        };
        Ok(hearth_driver_mqtt::MqttSource::new(
            &self.name,
            self.transport.clone(),
            handler,
        ))
    }
}

/// The transport and handler of a zigbee2mqtt or external source; the rules are compiled here
/// once, so a bad rule stops start-up instead of a restart loop.
fn mqtt_plan(config: &Config, source: &SourceConfig) -> anyhow::Result<MqttPlan> {
    let (transport, handler) = match source.kind {
        SourceKind::Zigbee2mqtt => {
            let time_zone = settings::gateway_time_zone(config)?;
            let transport = settings::zigbee2mqtt_transport(config, source);
            let settings = settings::zigbee2mqtt(source, time_zone);
            // Compile once now: a rule that cannot work stops start-up with its message.
            hearth_driver_mqtt::handlers::zigbee2mqtt(settings.clone())
                .map_err(|e| anyhow::anyhow!("source {:?}: {e}", source.name))?;
            (transport, HandlerPlan::Zigbee2mqtt(settings))
        }
        _ => (
            settings::mqtt_broker(config),
            HandlerPlan::External(settings::external(source)),
        ),
    };
    Ok(MqttPlan {
        name: source.name.clone(),
        transport,
        handler,
    })
}

/// A supervised source: `make` builds the driver on every (re)start (an error there is fatal:
/// the configuration cannot work); the task counts itself in `running` while the driver runs,
/// and once the driver returned (sources stop first in the two-phase shutdown) it stays
/// "running" until the supervisor's own shutdown, so that is no unexpected exit.
fn source_task<M>(name: &str, ctx: DriverContext, running: Arc<AtomicUsize>, make: M) -> TaskSpec
where
    M: Fn() -> Result<Box<dyn Driver>, String> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    TaskSpec::new(format!("source/{name}"), true, move |task| {
        let ctx = ctx.clone();
        let running = running.clone();
        let make = make.clone();
        async move {
            let mut driver = make().map_err(TaskError::fatal)?;
            running.fetch_add(1, Ordering::SeqCst);
            let result = driver.run(&ctx).await;
            running.fetch_sub(1, Ordering::SeqCst);
            result.map_err(TaskError::new)?;
            task.shutdown_requested().await;
            Ok(())
        }
    })
}
