//! The worked example of `docs/drivers.md` ("A driver in one file"), compiled and put through
//! the conformance kit, so that the guide cannot drift from the API. Keep the two in step: the
//! module `acme` below is the guide's `drivers/acme/src/lib.rs`, and the test at the end is
//! the guide's `drivers/acme/tests/conformance.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod acme {
    //! Acme spot-check thermometers behind the Acme hub, which keeps records until told to
    //! delete them.

    use std::future::Future;
    use std::time::Duration;

    use hearth_driver_api::{BoxFuture, Driver, DriverContext, DriverError};
    use hearth_model::{
        AbsentReason, DeviceId, Mdc, Reading, ReadingFlags, Record, Severity, TechnicalKind,
        Timestamp, Ucum, Value,
    };

    /// MDC_TEMP_BODY (IEEE 11073-10101): body temperature, site not given.
    const MDC_TEMP_BODY: u32 = 150_364;
    /// The raw value the device sends when a measurement failed.
    const FAILED: i16 = i16::MIN;
    /// 2000-01-01T00:00:00Z: the device counts from here when its clock was never set.
    const CLOCK_SET_AFTER_MS: i64 = 946_684_800_000;

    /// What is wrong with a record, and at which byte.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum AcmeError {
        /// The record ended early ("need more bytes").
        #[error("record ends after {got} bytes but needs 6; the link truncated it")]
        Incomplete {
            /// Bytes received.
            got: usize,
        },
        /// A field holds an impossible value.
        #[error("byte {at}: {what}")]
        Malformed {
            /// Offset of the field.
            at: usize,
            /// What is impossible about it.
            what: String,
        },
    }

    /// One decoded record.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Measurement {
        /// When the device measured (UTC).
        pub at: Timestamp,
        /// The temperature in °C, or why there is none.
        pub value: Value,
    }

    /// Decode `time u32 LE (Unix seconds, UTC) | temperature i16 LE (0.01 °C; i16::MIN =
    /// failed)`. Never panics: every input is a measurement or an error.
    pub fn decode(bytes: &[u8]) -> Result<Measurement, AcmeError> {
        let &[t0, t1, t2, t3, v0, v1, ..] = bytes else {
            return Err(AcmeError::Incomplete { got: bytes.len() });
        };
        let seconds = u32::from_le_bytes([t0, t1, t2, t3]);
        let raw = i16::from_le_bytes([v0, v1]);
        let value = match raw {
            FAILED => Value::Absent(AbsentReason::Error),
            r if !(-5_000..=6_000).contains(&r) => {
                return Err(AcmeError::Malformed {
                    at: 4,
                    what: format!(
                        "temperature {} °C is outside −50…60 °C",
                        f64::from(r) / 100.0
                    ),
                });
            }
            r => Value::numeric_with_decimals(f64::from(r) / 100.0, 2),
        };
        Ok(Measurement {
            at: Timestamp::from_unix_millis(i64::from(seconds) * 1000),
            value,
        })
    }

    /// What the driver needs from the hub: a serial port in production, a simulation in tests.
    pub trait AcmeLink: Send + 'static {
        /// Records with a sequence number above `after`, oldest first, as (sequence, bytes).
        fn fetch_after(
            &mut self,
            after: u32,
        ) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>, String>> + Send;
        /// Let the hub delete records up to `seq`: the acknowledgement.
        fn acknowledge(&mut self, seq: u32) -> impl Future<Output = Result<(), String>> + Send;
        /// The thermometer's battery level in percent.
        fn battery(&mut self) -> impl Future<Output = Result<u8, String>> + Send;
    }

    /// The driver.
    #[derive(Debug)]
    pub struct AcmeDriver<L> {
        /// Source name, from `[[source]] name`.
        pub name: String,
        /// The thermometer's stable id (its serial number, not the hub's port).
        pub device: DeviceId,
        /// Below this battery level a `low_battery` technical alarm is raised.
        pub low_battery_percent: u8,
        /// How often the hub is asked for new records.
        pub poll: Duration,
        /// The hub.
        pub link: L,
    }

    impl<L: AcmeLink> AcmeDriver<L> {
        /// Store everything after the committed cursor, then let the hub delete it.
        async fn collect(&mut self, ctx: &DriverContext, key: &str) -> Result<(), DriverError> {
            let after = ctx.ingest.cursor(key).await?.unwrap_or(0);
            let after = u32::try_from(after).unwrap_or(0);
            let source = self.device.to_string();
            let frames = match self.link.fetch_after(after).await {
                Ok(frames) => {
                    alarm(ctx, &source, TechnicalKind::DeviceOffline, None).await;
                    frames
                }
                Err(e) => {
                    let message = format!("the Acme hub does not answer ({e}); check its cable");
                    alarm(ctx, &source, TechnicalKind::DeviceOffline, Some(message)).await;
                    return Ok(());
                }
            };
            let Some(last) = frames.iter().map(|(seq, _)| *seq).max() else {
                return Ok(());
            };
            let mut records = Vec::with_capacity(frames.len());
            for (seq, bytes) in frames {
                match decode(&bytes) {
                    Ok(m) => records.push(self.reading(seq, m)),
                    // Kept with its error (committed before the cursor moves past it).
                    Err(e) => {
                        ctx.ingest
                            .dead_letter(&self.name, bytes, format!("record {seq}: {e}"))
                            .await?
                    }
                }
            }
            // Records and cursor commit together; an error returns before anything is
            // acknowledged, and hearth restarts the driver, which resumes from the cursor.
            ctx.ingest
                .submit(records, Some((key.to_owned(), i64::from(last))))
                .await?;
            // Only now may the hub forget them. If this fails, the cursor still skips them.
            if let Err(e) = self.link.acknowledge(last).await {
                tracing::warn!(source = %self.name, error = %e, "hub did not take the acknowledgement");
            }
            Ok(())
        }

        fn reading(&self, seq: u32, m: Measurement) -> Record {
            let flags = ReadingFlags {
                device_clock_unset: m.at.unix_millis() < CLOCK_SET_AFTER_MS,
                stored_record: true,
            };
            Record::Reading(
                Reading::builder(self.device.clone(), Mdc(MDC_TEMP_BODY), m.value)
                    .unit(Ucum::new("Cel"))
                    .device_time(m.at)
                    .sequence(u64::from(seq))
                    .flags(flags)
                    .build(Timestamp::now()),
            )
        }

        async fn check_battery(&mut self, ctx: &DriverContext) {
            if let Ok(level) = self.link.battery().await {
                let low = (level < self.low_battery_percent)
                    .then(|| format!("battery at {level} %: replace it"));
                alarm(
                    ctx,
                    &self.device.to_string(),
                    TechnicalKind::LowBattery,
                    low,
                )
                .await;
            }
        }
    }

    /// Raise (`Some(message)`) or clear (`None`) a technical alarm about a device;
    /// edge-triggered, so calling it on every poll stores only the changes.
    async fn alarm(ctx: &DriverContext, source: &str, kind: TechnicalKind, raise: Option<String>) {
        let stored = match raise {
            Some(message) => {
                ctx.technical
                    .raise(source, kind, Severity::Minor, message)
                    .await
            }
            None => ctx.technical.clear(source, kind, "back to normal").await,
        };
        if let Err(e) = stored {
            tracing::error!(source, error = %e, "cannot store a technical alarm");
        }
    }

    impl<L: AcmeLink> Driver for AcmeDriver<L> {
        fn name(&self) -> &str {
            &self.name
        }

        fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
            Box::pin(async move {
                let key = format!("acme:{}", self.device);
                loop {
                    self.collect(ctx, &key).await?;
                    self.check_battery(ctx).await;
                    tokio::select! {
                        _ = ctx.stopping() => return Ok(()),
                        _ = tokio::time::sleep(self.poll) => {}
                    }
                }
            })
        }
    }
}

mod sim {
    //! A simulated Acme hub: its memory outlives driver restarts, as the real one does.

    use std::sync::{Arc, Mutex};

    use super::acme::AcmeLink;

    /// The hub's record memory: (sequence number, bytes).
    pub type MemoryHandle = Arc<Mutex<Vec<(u32, Vec<u8>)>>>;

    /// Ten records from 2026-01-01 on, one of them a failed measurement and one corrupt.
    pub fn memory() -> MemoryHandle {
        let records = (1..=10u32)
            .map(|seq| {
                let mut bytes = (1_767_225_600 + seq * 3_600).to_le_bytes().to_vec();
                let centi: i16 = match seq {
                    4 => i16::MIN,
                    _ => 3_650 + seq as i16,
                };
                bytes.extend(centi.to_le_bytes());
                if seq == 7 {
                    bytes.truncate(3);
                }
                (seq, bytes)
            })
            .collect();
        Arc::new(Mutex::new(records))
    }

    /// The hub, on a shared memory.
    #[derive(Debug, Clone)]
    pub struct Hub(pub MemoryHandle);

    impl AcmeLink for Hub {
        async fn fetch_after(&mut self, after: u32) -> Result<Vec<(u32, Vec<u8>)>, String> {
            let memory = self.0.lock().map_err(|e| e.to_string())?;
            Ok(memory.iter().filter(|(s, _)| *s > after).cloned().collect())
        }

        async fn acknowledge(&mut self, seq: u32) -> Result<(), String> {
            self.0
                .lock()
                .map_err(|e| e.to_string())?
                .retain(|(s, _)| *s > seq);
            Ok(())
        }

        async fn battery(&mut self) -> Result<u8, String> {
            Ok(15)
        }
    }
}

use std::time::Duration;

use hearth_model::DeviceId;
use hearth_test_kit::{OnDevice, RunLimit, run_all};

#[tokio::test]
async fn acme_driver_passes_the_conformance_kit() {
    let device = DeviceId::new("acme", "T1000-0042").unwrap();
    // A new simulated hub for each fresh outbox; restarted drivers share the last one.
    let factory = OnDevice::new(sim::memory, move |memory: &sim::MemoryHandle| {
        acme::AcmeDriver {
            name: "acme".into(),
            device: device.clone(),
            low_battery_percent: 20,
            poll: Duration::from_millis(5),
            link: sim::Hub(memory.clone()),
        }
    });
    let limit = RunLimit::until_quiet(Duration::from_millis(300), Duration::from_secs(20));
    // A valid record: 2026-01-16T11:54:56Z, 36.50 °C.
    let samples: &[&[u8]] = &[&[0x10, 0x27, 0x6a, 0x69, 0x42, 0x0e]];
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        run_all(factory, limit, acme::decode, samples),
    )
    .await
    .unwrap();
    summary.assert_passed();
}
