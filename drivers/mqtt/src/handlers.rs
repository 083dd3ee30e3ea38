//! The handlers: zigbee2mqtt (rules engine) and external drivers (hearth's JSON contract).

use std::time::Duration;

use hearth_driver_external as ext;
use hearth_driver_zigbee2mqtt as z2m;
use hearth_model::{Category, Timestamp};

use crate::{Handled, Handler, Incoming};

/// The zigbee2mqtt handler; fails when a rule cannot work (the message names it).
pub fn zigbee2mqtt(settings: z2m::Settings) -> Result<Box<dyn Handler>, String> {
    let engine = z2m::Engine::new(settings).map_err(|e| e.to_string())?;
    Ok(Box::new(Zigbee2mqtt { engine }))
}

/// The demo script of real device models (`backend = "simulated"`).
pub fn zigbee2mqtt_script() -> Vec<(Duration, String, String)> {
    z2m::scripted_messages()
}

/// zigbee2mqtt messages through the rules engine of `hearth-driver-zigbee2mqtt`.
pub struct Zigbee2mqtt {
    engine: z2m::Engine,
}

fn output(out: z2m::Output) -> Handled {
    Handled {
        records: out.events.into_iter().map(|e| e.record).collect(),
        state: out.state,
        dead_letter: (!out.problems.is_empty()).then(|| out.problems.join("; ")),
        reply: None,
        devices: out.devices,
    }
}

impl Handler for Zigbee2mqtt {
    fn subscriptions(&self) -> Vec<String> {
        self.engine.subscriptions()
    }

    fn safety_subscriptions(&self) -> Vec<String> {
        self.engine.safety_subscriptions()
    }

    fn state_prefix(&self) -> String {
        self.engine.state_prefix()
    }

    fn restore(&mut self, state: Vec<(String, i64)>) {
        self.engine.restore(state);
    }

    fn handle(&mut self, msg: &Incoming, sequence: u64, now: Timestamp) -> Handled {
        let m = z2m::Message {
            topic: &msg.topic,
            payload: &msg.payload,
            retained: msg.retained,
            sequence,
        };
        match self.engine.handle(&m, now) {
            Ok(out) => output(out),
            Err(e) => Handled {
                dead_letter: Some(e.to_string()),
                ..Handled::default()
            },
        }
    }

    fn tick(&mut self, now: Timestamp) -> Handled {
        output(self.engine.tick(now))
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.engine.next_deadline()
    }
}

/// What an external-driver source needs.
#[derive(Debug, Clone)]
pub struct ExternalSettings {
    /// Config `[[source]] name`.
    pub source: String,
    /// `[source.external]`.
    pub config: hearth_config::ExternalConfig,
    /// The source's category (a message may name its own).
    pub category: Category,
}

/// The external-driver handler.
pub fn external(s: ExternalSettings) -> Result<Box<dyn Handler>, String> {
    Ok(Box::new(External { s }))
}

/// Vendors' driver programs through hearth's MQTT/JSON contract (`hearth-driver-external`).
pub struct External {
    s: ExternalSettings,
}

impl External {
    fn reject(&self, driver: &str, e: &ext::ContractError) -> Handled {
        Handled {
            dead_letter: Some(format!("driver {driver}: {e}")),
            reply: Some((
                ext::error_topic(&self.s.config.topic_prefix, driver),
                e.reply_json(),
            )),
            ..Handled::default()
        }
    }
}

impl Handler for External {
    fn subscriptions(&self) -> Vec<String> {
        vec![ext::subscription(&self.s.config.topic_prefix)]
    }

    fn state_prefix(&self) -> String {
        format!("external:{}:", self.s.source)
    }

    fn restore(&mut self, _state: Vec<(String, i64)>) {}

    fn handle(&mut self, msg: &Incoming, _sequence: u64, now: Timestamp) -> Handled {
        let prefix = &self.s.config.topic_prefix;
        let Some(driver) = ext::parse_topic(prefix, &msg.topic) else {
            return Handled {
                dead_letter: Some(format!(
                    "topic {} is not {prefix}/<driver>/in with a valid driver id",
                    msg.topic
                )),
                ..Handled::default()
            };
        };
        let allowed = &self.s.config.drivers;
        if !allowed.is_empty() && !allowed.iter().any(|d| d == driver) {
            return self.reject(driver, &ext::ContractError::driver_not_allowed(driver));
        }
        match ext::parse(driver, &msg.payload, now, self.s.category) {
            Ok(accepted) => Handled {
                records: accepted.records,
                ..Handled::default()
            },
            Err(e) => self.reject(driver, &e),
        }
    }

    fn tick(&mut self, _now: Timestamp) -> Handled {
        Handled::default()
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        None
    }
}
