//! The receipt signal in the home (A2): when a response centre handled a safety alarm
//! (`snu`=0) every `[[receipt.indicator]]` shows the confirmed signal; while no centre handles
//! it, the failing signal (once per alarm until it is handled). Strength and duration come from
//! the alarm's person (`[[receipt.person]]`), else from `[receipt]`.
//!
//! One task listens to the alarm routes' events on a bounded channel (the routes never wait for
//! it). zigbee2mqtt sirens and lights get the payloads of
//! `hearth_driver_zigbee2mqtt::indicator` through an MQTT publisher of their own
//! (`<client_id>-receipt`); commands run without a shell, with a timeout, and a failure is
//! logged, never retried. On a siren or light a new signal replaces the one it is still
//! showing (a light still blinking red turns green); a command runs to its end. Logs name the
//! record, the signal and the indicator, never the person or the alarm's kind.

use std::collections::{HashSet, VecDeque};
use std::process::Stdio;
use std::time::Duration;

use hearth_config::{Config, IndicatorConfig, IndicatorKind, ReceiptConfig, ReceiptStrength};
use hearth_driver_mqtt::Publisher;
use hearth_driver_zigbee2mqtt::indicator::{self, Signal};
use hearth_model::{Alarm, AlarmState, RecordId};
use hearth_uplink_scaip::AlarmEvent;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Events waiting for the receipt task; a full channel skips an event (alarms never wait).
const CHANNEL: usize = 64;

/// A command gets this long beyond the signal's duration before it is stopped.
pub(super) const COMMAND_GRACE: Duration = Duration::from_secs(10);

/// Alarms remembered as "failing signal shown" (the oldest is forgotten beyond this).
const FAILING_MEMORY: usize = 1024;

/// The receipt listener, when `[receipt]` has indicators: a channel for the alarm events and
/// the task behind it. Starts the MQTT publisher when a siren or light is configured.
pub(super) fn listener(
    config: &Config,
    observer: Option<mpsc::Sender<String>>,
) -> anyhow::Result<Option<mpsc::Sender<AlarmEvent>>> {
    let r = &config.receipt;
    if !r.is_active() {
        return Ok(None);
    }
    let publisher = if r
        .indicators
        .iter()
        .any(|i| i.kind != IndicatorKind::Command)
    {
        Some(Publisher::start(&config.mqtt, "receipt")?)
    } else {
        None
    };
    let (tx, rx) = mpsc::channel(CHANNEL);
    let mut receipt = Receipt::new(r.clone(), publisher);
    receipt.observer = observer;
    tokio::spawn(run(receipt, rx));
    tracing::info!(indicators = r.indicators.len(), "receipt signal ready");
    Ok(Some(tx))
}

async fn run(mut receipt: Receipt, mut events: mpsc::Receiver<AlarmEvent>) {
    while let Some(event) = events.recv().await {
        receipt.on_event(&event);
    }
}

/// The receipt task's state.
pub(super) struct Receipt {
    config: ReceiptConfig,
    publisher: Option<Publisher>,
    /// Alarms whose failing signal was shown and that are not handled yet.
    failing: HashSet<RecordId>,
    failing_order: VecDeque<RecordId>,
    /// What each indicator is showing now.
    showing: Vec<Option<AbortHandle>>,
    /// Who hears about each signal shown (the demo); never waited for.
    observer: Option<mpsc::Sender<String>>,
}

impl Receipt {
    pub(super) fn new(config: ReceiptConfig, publisher: Option<Publisher>) -> Self {
        let showing = vec![None; config.indicators.len()];
        Receipt {
            config,
            publisher,
            failing: HashSet::new(),
            failing_order: VecDeque::new(),
            showing,
            observer: None,
        }
    }

    /// Which signal `event` calls for, if any: only raised safety alarms get one, the failing
    /// signal once per alarm until it is handled.
    pub(super) fn decide<'e>(&mut self, event: &'e AlarmEvent) -> Option<(Signal, &'e Alarm)> {
        let (signal, record, alarm) = match event {
            AlarmEvent::Handled { record, alarm, .. } => (Signal::Confirmed, record, alarm),
            AlarmEvent::Failing { record, alarm, .. } => (Signal::Failing, record, alarm),
            AlarmEvent::Attempt { .. } => return None,
        };
        let alarm = alarm.as_deref()?;
        if alarm.state != AlarmState::Raised {
            return None;
        }
        match signal {
            Signal::Confirmed => {
                if self.failing.remove(record) {
                    self.failing_order.retain(|r| r != record);
                }
            }
            Signal::Failing => {
                if !self.failing.insert(*record) {
                    return None;
                }
                self.failing_order.push_back(*record);
                if self.failing_order.len() > FAILING_MEMORY
                    && let Some(old) = self.failing_order.pop_front()
                {
                    self.failing.remove(&old);
                }
            }
        }
        Some((signal, alarm))
    }

    fn on_event(&mut self, event: &AlarmEvent) {
        let Some((signal, alarm)) = self.decide(event) else {
            return;
        };
        let person = alarm.person.as_ref().map(|p| p.as_str());
        let (strength, duration) = self.config.level_for(person);
        let duration = duration.get();
        for (i, ind) in self.config.indicators.iter().enumerate() {
            tracing::info!(
                record = %alarm.id,
                signal = signal.as_str(),
                indicator = %ind.describe(),
                %strength,
                duration = %humantime::format_duration(duration),
                "receipt signal"
            );
            if let Some(tx) = &self.observer {
                let _ = tx.try_send(format!(
                    "receipt signal in the home: {} on {} ({strength}, {})",
                    signal.as_str(),
                    ind.describe(),
                    humantime::format_duration(duration)
                ));
            }
            let task = match ind.kind {
                IndicatorKind::Command => {
                    // Each command runs to its end (or timeout): stopping one that a newer
                    // signal overtook could stop it before it started.
                    let args = command_args(ind, signal, strength, duration);
                    tokio::spawn(run_command(ind.clone(), args, duration + COMMAND_GRACE));
                    continue;
                }
                IndicatorKind::Siren | IndicatorKind::Light => {
                    let (Some(publisher), Some((topic, steps))) = (
                        self.publisher.clone(),
                        indicator::plan(ind, signal, strength, duration),
                    ) else {
                        continue;
                    };
                    // What is due now goes out now, so a newer signal replacing this one
                    // never swallows it; the later steps (a light's blinks, its off) follow.
                    let (now, later): (Vec<_>, Vec<_>) =
                        steps.into_iter().partition(|s| s.after.is_zero());
                    for step in now {
                        publisher.publish(&topic, step.payload.to_string().into_bytes());
                    }
                    if later.is_empty() {
                        continue;
                    }
                    tokio::spawn(publish_steps(publisher, topic, later))
                }
            };
            if let Some(previous) = self
                .showing
                .get_mut(i)
                .and_then(|s| s.replace(task.abort_handle()))
            {
                previous.abort();
            }
        }
    }
}

async fn publish_steps(publisher: Publisher, topic: String, steps: Vec<indicator::Step>) {
    let start = tokio::time::Instant::now();
    for step in steps {
        tokio::time::sleep_until(start + step.after).await;
        // A dropped step is counted and logged by the publisher; the next may get through.
        publisher.publish(&topic, step.payload.to_string().into_bytes());
    }
}

/// The command's arguments for `signal`, `{strength}` and `{duration}` (whole seconds)
/// replaced.
pub(super) fn command_args(
    ind: &IndicatorConfig,
    signal: Signal,
    strength: ReceiptStrength,
    duration: Duration,
) -> Vec<String> {
    let args = match signal {
        Signal::Confirmed => &ind.confirmed_args,
        Signal::Failing => &ind.failing_args,
    };
    let secs = duration.as_secs().max(1).to_string();
    args.iter()
        .map(|a| {
            a.replace("{strength}", strength.as_str())
                .replace("{duration}", &secs)
        })
        .collect()
}

/// Runs the indicator's program once; stopped after `timeout`. A failure is logged, not
/// retried.
async fn run_command(ind: IndicatorConfig, args: Vec<String>, timeout: Duration) {
    let Some(program) = &ind.program else {
        return;
    };
    let child = tokio::process::Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(program = %program.display(), error = %e,
                "cannot run the receipt command; check [[receipt.indicator]] program");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => {
            tracing::warn!(program = %program.display(), %status, "the receipt command failed");
        }
        Ok(Err(e)) => {
            tracing::warn!(program = %program.display(), error = %e, "cannot wait for the receipt command");
        }
        Err(_) => {
            tracing::warn!(program = %program.display(), timeout = %humantime::format_duration(timeout),
                "the receipt command did not end in time and is stopped");
            if let Err(e) = child.kill().await {
                tracing::warn!(program = %program.display(), error = %e, "cannot stop the receipt command");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::PathBuf;

    use hearth_config::{ConfigDuration, MqttConfig, ReceiptPersonConfig};
    use hearth_model::{AlarmKind, Category, DeviceId, PersonRef, Timestamp};
    use hearth_test_kit::mosquitto::Mosquitto;
    use hearth_uplink_scaip::{CentreAnswer, Ref, Verdict};

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(30);

    fn alarm(state: AlarmState, person: Option<&str>, seq: u64) -> Box<Alarm> {
        let t = Timestamp::from_unix_millis(1_760_000_000_000);
        Box::new(Alarm::new(
            DeviceId::new("zigbee", "0xa4c138f2d2e3f4a5").unwrap(),
            AlarmKind::Emergency,
            state,
            t,
            t,
            Category::Health,
            person.map(PersonRef::new),
            Some(seq),
        ))
    }

    fn handled(alarm: Option<Box<Alarm>>, record: RecordId) -> AlarmEvent {
        let reference = Ref::new("A1b2C3d4").unwrap();
        AlarmEvent::Handled {
            record,
            alarm,
            reference: reference.clone(),
            receiver: "arc".into(),
            answer: CentreAnswer {
                reference,
                verdict: Verdict::Handled,
                reason: None,
                voice: None,
                heartbeat: None,
            },
            at: hearth_model::Timestamp::now(),
        }
    }

    fn failing(alarm: Option<Box<Alarm>>, record: RecordId) -> AlarmEvent {
        AlarmEvent::Failing {
            record,
            alarm,
            reference: Ref::new("A1b2C3d4").unwrap(),
            at: hearth_model::Timestamp::now(),
        }
    }

    fn siren(device: &str) -> IndicatorConfig {
        IndicatorConfig {
            kind: IndicatorKind::Siren,
            device: Some(device.into()),
            base_topic: None,
            confirmed_payload: None,
            failing_payload: None,
            program: None,
            confirmed_args: Vec::new(),
            failing_args: Vec::new(),
        }
    }

    fn config(indicators: Vec<IndicatorConfig>) -> ReceiptConfig {
        ReceiptConfig {
            indicators,
            persons: vec![ReceiptPersonConfig {
                person: "Patient/7".into(),
                strength: Some(ReceiptStrength::VeryHigh),
                duration: Some(ConfigDuration::from_secs(3)),
            }],
            ..ReceiptConfig::default()
        }
    }

    #[test]
    fn only_raised_safety_alarms_get_a_signal_and_failing_once_until_handled() {
        let mut r = Receipt::new(config(vec![siren("s")]), None);
        let raised = alarm(AlarmState::Raised, None, 1);
        let id = raised.id;
        let signal = |r: &mut Receipt, e: &AlarmEvent| r.decide(e).map(|(s, _)| s);
        // A technical alarm (no safety alarm) and a cleared alarm: nothing.
        assert_eq!(signal(&mut r, &handled(None, id)), None);
        assert_eq!(signal(&mut r, &failing(None, id)), None);
        let cleared = alarm(AlarmState::Cleared, None, 2);
        assert_eq!(
            signal(&mut r, &handled(Some(cleared.clone()), cleared.id)),
            None
        );
        assert_eq!(
            signal(&mut r, &failing(Some(cleared.clone()), cleared.id)),
            None
        );
        // Failing: once per alarm, however many rounds fail.
        assert_eq!(
            signal(&mut r, &failing(Some(raised.clone()), id)),
            Some(Signal::Failing)
        );
        assert_eq!(signal(&mut r, &failing(Some(raised.clone()), id)), None);
        assert_eq!(signal(&mut r, &failing(Some(raised.clone()), id)), None);
        // Another alarm fails on its own.
        let other = alarm(AlarmState::Raised, None, 3);
        assert_eq!(
            signal(&mut r, &failing(Some(other.clone()), other.id)),
            Some(Signal::Failing)
        );
        // Handled: confirmed, and a later failure of the same record shows again.
        assert_eq!(
            signal(&mut r, &handled(Some(raised.clone()), id)),
            Some(Signal::Confirmed)
        );
        assert_eq!(
            signal(&mut r, &failing(Some(raised.clone()), id)),
            Some(Signal::Failing)
        );
        assert!(r.failing.len() == r.failing_order.len());
    }

    #[test]
    fn the_memory_of_failing_alarms_is_bounded() {
        let mut r = Receipt::new(config(vec![siren("s")]), None);
        for i in 0..(FAILING_MEMORY as u64 + 10) {
            let a = alarm(AlarmState::Raised, None, i);
            assert!(r.decide(&failing(Some(a.clone()), a.id)).is_some());
        }
        assert_eq!(r.failing.len(), FAILING_MEMORY);
        assert_eq!(r.failing_order.len(), FAILING_MEMORY);
    }

    #[test]
    fn command_arguments_get_strength_and_duration() {
        let ind = IndicatorConfig {
            kind: IndicatorKind::Command,
            device: None,
            program: Some(PathBuf::from("/bin/true")),
            confirmed_args: vec!["--level={strength}".into(), "{duration}".into()],
            failing_args: vec!["wait".into()],
            ..siren("x")
        };
        assert_eq!(
            command_args(
                &ind,
                Signal::Confirmed,
                ReceiptStrength::High,
                Duration::from_millis(2500)
            ),
            ["--level=high", "2"]
        );
        assert_eq!(
            command_args(&ind, Signal::Failing, ReceiptStrength::Low, Duration::ZERO),
            ["wait"]
        );
    }

    /// The receipt task with synthetic alarm events against a real mosquitto: `mosquitto_sub`
    /// sees the confirmed signal on the siren's `/set` topic at the person's strength, the
    /// failing signal once, and nothing for a technical alarm; a command indicator runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_task_publishes_to_the_sirens_set_topic_and_runs_commands() {
        let broker = Mosquitto::start();
        let sub = broker.subscribe("zigbee2mqtt/#");
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let command = IndicatorConfig {
            kind: IndicatorKind::Command,
            device: None,
            program: Some(PathBuf::from("/usr/bin/touch")),
            confirmed_args: vec![format!("{}-{{strength}}", marker.display())],
            ..siren("x")
        };
        let mut config = Config::default();
        config.mqtt = MqttConfig {
            port: broker.port(),
            ..MqttConfig::default()
        };
        config.receipt = super::tests::config(vec![siren("hall/siren"), command]);
        let tx = listener(&config, None).unwrap().expect("a listener");

        let person = alarm(AlarmState::Raised, Some("Patient/7"), 1);
        let nobody = alarm(AlarmState::Raised, None, 2);
        // A technical alarm, then one failing alarm reported twice, then handled.
        tx.send(handled(None, nobody.id)).await.unwrap();
        tx.send(failing(Some(nobody.clone()), nobody.id))
            .await
            .unwrap();
        tx.send(failing(Some(nobody.clone()), nobody.id))
            .await
            .unwrap();
        tx.send(handled(Some(person.clone()), person.id))
            .await
            .unwrap();
        // A marker: had the repeat been signalled, it would come before this.
        tx.send(handled(Some(nobody.clone()), nobody.id))
            .await
            .unwrap();

        let seen = tokio::task::spawn_blocking(move || {
            let first = sub.next(DEADLINE);
            let second = sub.next(DEADLINE);
            let third = sub.next(DEADLINE);
            (first, second, third)
        })
        .await
        .unwrap();
        let (first, second, third) = seen;
        let (topic, payload) = first.expect("the failing signal");
        assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["warning"]["mode"], "stop");
        assert_eq!(payload["warning"]["duration"], 10);
        let (topic, payload) = second.expect("the confirmed signal");
        assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["warning"]["mode"], "emergency");
        assert_eq!(payload["warning"]["level"], "very_high");
        assert_eq!(payload["warning"]["duration"], 3);
        // The marker (the default strength): the repeated failure gave no signal.
        let (_, payload) = third.expect("the marker");
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["warning"]["mode"], "emergency");
        assert_eq!(payload["warning"]["level"], "medium");

        // The command ran for the confirmed signal at the person's strength.
        let ran = dir.path().join("ran-very_high");
        let deadline = std::time::Instant::now() + DEADLINE;
        while !ran.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the command did not run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn nothing_configured_starts_nothing() {
        // No runtime is needed: nothing is spawned and no MQTT connection is made.
        assert!(listener(&Config::default(), None).unwrap().is_none());
    }
}
