//! # hearth-driver-simulated
//!
//! A deterministic source that stands in for real devices until (and beside) the BLE and
//! zigbee2mqtt drivers: `devices` simulated health devices (blood-pressure monitor, thermometer,
//! pulse oximeter, scale, in turn) each take one reading per `interval`, and every
//! `alarm_every`-th round an alarm button is pressed.
//!
//! It behaves like a well-made real driver, which is what the demo and the crash tests rely on:
//! - round `k` always produces the same readings with the same device times and sequence
//!   numbers, so their ids are the same whenever it is produced (DESIGN invariant 2);
//! - it submits round `k` together with the cursor `k` and moves on only after the commit, and
//!   after a restart it resumes at the committed cursor + 1 (invariant 1) — so nothing is lost
//!   and nothing is produced twice.
//!
//! ## Invariants
//! - A round is produced once: test `tests::restart_resumes_after_the_committed_round`.
#![forbid(unsafe_code)]

use std::time::Duration;

use hearth_driver_api::{BoxFuture, Driver, DriverContext, DriverError};
use hearth_model::{
    Alarm, AlarmKind, AlarmState, Category, Component, DeviceId, Mdc, Reading, Record, Timestamp,
    Ucum, Value,
};

/// Device times of round `k` are `EPOCH + k × interval`: fixed, so ids are reproducible.
const EPOCH_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Settings of one simulated source.
#[derive(Debug, Clone)]
pub struct SimulatedSettings {
    /// Source name (cursor key and device-id prefix).
    pub name: String,
    /// Number of simulated health devices.
    pub devices: u32,
    /// Time between rounds.
    pub interval: Duration,
    /// Every Nth round also presses the alarm button (0 = never).
    pub alarm_every: u64,
    /// Category of the readings.
    pub category: Category,
    /// Stop after this many rounds (tests and benchmarks); `None` runs until shutdown.
    pub max_rounds: Option<u64>,
}

/// The simulated driver.
#[derive(Debug)]
pub struct Simulated {
    settings: SimulatedSettings,
    devices: Vec<DeviceId>,
    button: Option<DeviceId>,
}

impl Simulated {
    /// Build the driver; fails only on a name that cannot be part of a device id.
    pub fn new(settings: SimulatedSettings) -> Result<Self, DriverError> {
        let devices = (0..settings.devices)
            .map(|i| DeviceId::new("sim", &format!("{}-{i}", settings.name)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DriverError::Config(e.to_string()))?;
        let button = DeviceId::new("sim", &format!("{}-button", settings.name))
            .map_err(|e| DriverError::Config(e.to_string()))?;
        Ok(Self {
            button: (settings.alarm_every > 0).then_some(button),
            settings,
            devices,
        })
    }

    /// The cursor key under which the last committed round is stored.
    pub fn cursor_key(&self) -> String {
        format!("sim:{}", self.settings.name)
    }

    /// Everything round `k` produces, received at `now`.
    pub fn round(&self, k: u64, now: Timestamp) -> Vec<Record> {
        let interval_ms = i64::try_from(self.settings.interval.as_millis()).unwrap_or(i64::MAX);
        let at = Timestamp::from_unix_millis(
            EPOCH_MS.saturating_add((k as i64).saturating_mul(interval_ms)),
        );
        let mut out: Vec<Record> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, dev)| Record::Reading(reading(dev, i, k, at, now, self.settings.category)))
            .collect();
        if let Some(button) = &self.button
            && k % self.settings.alarm_every == 0
        {
            out.push(Record::Alarm(Alarm::new(
                button.clone(),
                AlarmKind::Emergency,
                AlarmState::Raised,
                at,
                now,
                Category::Health,
                None,
                Some(k),
            )));
        }
        out
    }
}

/// A small deterministic "measurement noise" from (device, round).
fn wobble(i: usize, k: u64, span: u64) -> f64 {
    let x = (k.wrapping_mul(2_654_435_761) ^ (i as u64).wrapping_mul(40_503)) % span.max(1);
    x as f64
}

fn reading(
    dev: &DeviceId,
    i: usize,
    k: u64,
    at: Timestamp,
    now: Timestamp,
    category: Category,
) -> Reading {
    let (mdc, value, unit) = match i % 4 {
        0 => {
            let sys = 110.0 + wobble(i, k, 40);
            let dia = 70.0 + wobble(i, k, 20);
            let map = ((sys + 2.0 * dia) / 3.0).round();
            let part = |code, v| Component {
                mdc: Mdc(code),
                value: Value::numeric_with_decimals(v, 0),
            };
            (
                Mdc(150_020),
                Value::Compound(vec![
                    part(150_021, sys),
                    part(150_022, dia),
                    part(150_023, map),
                ]),
                "mm[Hg]",
            )
        }
        1 => (
            Mdc(150_364),
            Value::numeric_with_decimals(36.0 + wobble(i, k, 15) / 10.0, 1),
            "Cel",
        ),
        2 => (
            Mdc(150_456),
            Value::numeric_with_decimals(92.0 + wobble(i, k, 8), 0),
            "%",
        ),
        _ => (
            Mdc(188_736),
            Value::numeric_with_decimals(70.0 + wobble(i, k, 50) / 10.0, 1),
            "kg",
        ),
    };
    Reading::builder(dev.clone(), mdc, value)
        .unit(Ucum::new(unit))
        .device_time(at)
        .sequence(k)
        .category(category)
        .build(now)
}

impl Driver for Simulated {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let key = self.cursor_key();
            let mut k = ctx.ingest.cursor(&key).await?.map_or(1, |c| c as u64 + 1);
            tracing::info!(source = %self.settings.name, devices = self.devices.len(), next_round = k, "simulated source started");
            let mut tick = tokio::time::interval(self.settings.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if self.settings.max_rounds.is_some_and(|m| k > m) {
                    ctx.stopping().await;
                    return Ok(());
                }
                tokio::select! {
                    _ = ctx.stopping() => return Ok(()),
                    _ = tick.tick() => {}
                }
                let records = self.round(k, Timestamp::now());
                // Acknowledge-after-commit: the round counts as produced only when this returns.
                ctx.ingest
                    .submit(records, Some((key.clone(), k as i64)))
                    .await?;
                tracing::debug!(source = %self.settings.name, round = k, "round committed");
                k += 1;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_driver_api::{Ingest, TechnicalAlarms};
    use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};

    fn settings(max_rounds: u64) -> SimulatedSettings {
        SimulatedSettings {
            name: "t".into(),
            devices: 4,
            interval: Duration::from_millis(1),
            alarm_every: 3,
            category: Category::Health,
            max_rounds: Some(max_rounds),
        }
    }

    #[test]
    fn rounds_are_deterministic() {
        let s = Simulated::new(settings(1)).unwrap();
        let a = s.round(7, Timestamp::from_unix_millis(1));
        let b = s.round(7, Timestamp::from_unix_millis(99));
        let ids = |v: &[Record]| v.iter().map(Record::id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.len(), 4);
        assert_eq!(
            s.round(9, Timestamp::now()).len(),
            5,
            "round 9 presses the button"
        );
    }

    async fn run_until(dir: &std::path::Path, max_rounds: u64) {
        let route = RouteSpec {
            name: "hub".into(),
            categories: Category::ALL.to_vec(),
            retry: RetryPolicy::default(),
            readings_only: false,
            alarms_only: false,
        };
        let (ob, _) = Outbox::open(OutboxOptions::new(dir.join("o.db"), vec![route])).unwrap();
        let (writer, thread) = OutboxWriter::spawn(ob, 100).unwrap();
        let ingest = Ingest::new(writer);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let ctx = DriverContext::new(
            ingest.clone(),
            TechnicalAlarms::new(ingest.clone()),
            stop_rx,
        );
        let mut sim = Simulated::new(settings(max_rounds)).unwrap();
        let key = sim.cursor_key();
        let run = tokio::spawn(async move { sim.run(&ctx).await.map_err(|e| e.to_string()) });
        loop {
            if ingest.cursor(&key).await.unwrap() == Some(max_rounds as i64) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop_tx.send(true).unwrap();
        run.await.unwrap().unwrap();
        drop(ingest);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn restart_resumes_after_the_committed_round() {
        let dir = tempfile::tempdir().unwrap();
        tokio::time::timeout(Duration::from_secs(30), run_until(dir.path(), 5))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), run_until(dir.path(), 9))
            .await
            .unwrap();
        let s = hearth_outbox::stats(&dir.path().join("o.db")).unwrap();
        assert_eq!(
            s.counter("ingested"),
            9 * 4 + 3,
            "9 rounds of 4 readings + 3 button presses"
        );
        assert_eq!(s.counter("duplicates"), 0, "no round was produced twice");
    }
}
