//! The conformance kit checked against itself: every check passes on the reference driver
//! (`hearth-driver-simulated`) and on a well-made toy driver, and each check fails, saying
//! why, on a toy driver with exactly the flaw that check exists for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_driver_api::{BoxFuture, Driver, DriverContext, DriverError};
use hearth_driver_simulated::{Simulated, SimulatedSettings};
use hearth_model::{
    Category, Component, DeviceId, Mdc, Reading, ReadingFlags, Record, Timestamp, Ucum, Value,
};
use hearth_test_kit::conformance::{
    Conformance, FuzzOptions, LiveData, check_ack_after_commit_with, check_ids_deterministic_with,
    check_no_panic_on_input_with,
};
use hearth_test_kit::{
    Check, OnDevice, RunLimit, check_ack_after_commit, check_driver_readings,
    check_ids_deterministic, check_no_panic_on_input, check_readings_valid, run_all,
};

const LIMIT: RunLimit = RunLimit::until_quiet(Duration::from_millis(300), Duration::from_secs(20));

/// Every async test has a timeout.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("the test did not finish within 120 s")
}

fn simulated() -> Simulated {
    Simulated::new(SimulatedSettings {
        name: "kit".into(),
        devices: 4,
        interval: Duration::from_millis(1),
        alarm_every: 3,
        category: Category::Health,
        max_rounds: Some(12),
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A toy driver, correct unless given a flaw.

const EPOCH_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const ROUNDS: u64 = 10;
const CURSOR: &str = "toy:cursor";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// Passes a device's NaN through as a number.
    NanValues,
    /// Leaves out device time and sequence: ids fall back to the receipt time.
    ReceiptTimeIds,
    /// Moves its in-memory cursor before `submit`, and carries on when `submit` fails.
    CursorBeforeSubmit,
    /// Commits the cursor in a submission of its own, before the records.
    CursorApart,
}

struct Toy {
    flaw: Flaw,
}

fn toy(flaw: Flaw) -> impl FnMut() -> Toy {
    move || Toy { flaw }
}

impl Toy {
    fn round(&self, k: u64) -> Vec<Record> {
        ["a", "b"]
            .iter()
            .map(|dev| {
                let value = if self.flaw == Flaw::NanValues {
                    Value::numeric(f64::NAN)
                } else {
                    Value::numeric_with_decimals(36.0 + k as f64 / 10.0, 1)
                };
                let b = Reading::builder(DeviceId::new("toy", dev).unwrap(), Mdc(150_364), value)
                    .unit(Ucum::new("Cel"));
                let b = if self.flaw == Flaw::ReceiptTimeIds {
                    b
                } else {
                    b.device_time(Timestamp::from_unix_millis(EPOCH_MS + k as i64 * 60_000))
                        .sequence(k)
                };
                Record::Reading(b.build(Timestamp::now()))
            })
            .collect()
    }
}

impl Driver for Toy {
    fn name(&self) -> &str {
        "toy"
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let mut k = ctx.ingest.cursor(CURSOR).await?.map_or(1, |c| c as u64 + 1);
            loop {
                if k > ROUNDS {
                    ctx.stopping().await;
                    return Ok(());
                }
                tokio::select! {
                    _ = ctx.stopping() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
                match self.flaw {
                    Flaw::CursorBeforeSubmit => {
                        let round = k;
                        k += 1;
                        // The flaw: a failed round is simply gone.
                        let _ = ctx
                            .ingest
                            .submit(self.round(round), Some((CURSOR.into(), round as i64)))
                            .await;
                    }
                    Flaw::CursorApart => {
                        ctx.ingest
                            .submit(Vec::new(), Some((CURSOR.into(), k as i64)))
                            .await?;
                        ctx.ingest.submit(self.round(k), None).await?;
                        k += 1;
                    }
                    Flaw::None | Flaw::NanValues | Flaw::ReceiptTimeIds => {
                        ctx.ingest
                            .submit(self.round(k), Some((CURSOR.into(), k as i64)))
                            .await?;
                        k += 1;
                    }
                }
            }
        })
    }
}

/// A tiny, careful decoder: `[flags, value lo, value hi, (seq lo, seq hi if flags & 1)]`.
fn careful_decode(bytes: &[u8]) -> Result<(u16, Option<u16>), String> {
    let need = |n: usize| {
        if bytes.len() < n {
            Err(format!("needs {n} bytes, got {}", bytes.len()))
        } else {
            Ok(())
        }
    };
    need(3)?;
    let value = u16::from_le_bytes([bytes[1], bytes[2]]);
    let seq = if bytes[0] & 1 == 1 {
        need(5)?;
        Some(u16::from_le_bytes([bytes[3], bytes[4]]))
    } else {
        None
    };
    Ok((value, seq))
}

/// The same format, decoded carelessly: trusts the flags without checking the length.
fn careless_decode(bytes: &[u8]) -> Result<(u16, Option<u16>), String> {
    let first = *bytes.first().ok_or("empty")?;
    let value = u16::from_le_bytes([bytes[1], bytes[2]]);
    let seq = (first & 1 == 1).then(|| u16::from_le_bytes([bytes[3], bytes[4]]));
    Ok((value, seq))
}

const SAMPLES: &[&[u8]] = &[&[0x00, 0x6e, 0x01], &[0x01, 0x6e, 0x01, 0x07, 0x00]];

// ---------------------------------------------------------------------------------------------
// Passing.

#[tokio::test]
async fn simulated_driver_passes_every_check() {
    let summary = within(run_all(simulated, LIMIT, careful_decode, SAMPLES)).await;
    summary.assert_passed();
    assert_eq!(summary.outcomes.len(), 4, "{summary}");
    let report = summary.to_string();
    assert!(
        report.starts_with("hearth driver conformance: 4 of 4 checks passed"),
        "{report}"
    );
}

#[tokio::test]
async fn well_made_toy_passes_each_check_on_its_own() {
    within(async {
        check_driver_readings(toy(Flaw::None), LIMIT).await.unwrap();
        check_ids_deterministic(toy(Flaw::None), LIMIT)
            .await
            .unwrap();
        check_ack_after_commit(toy(Flaw::None), LIMIT)
            .await
            .unwrap();
        check_no_panic_on_input(careful_decode, SAMPLES).unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Readings.

#[tokio::test]
async fn nan_readings_fail_the_readings_check() {
    let err = within(check_driver_readings(toy(Flaw::NanValues), LIMIT))
        .await
        .unwrap_err();
    assert_eq!(err.check, Check::ReadingsValid);
    assert!(err.mentions("refused 20 record(s)"), "{err}");
    assert!(err.mentions("Value::Absent"), "{err}");
}

fn base() -> hearth_model::ReadingBuilder {
    Reading::builder(
        DeviceId::new("toy", "a").unwrap(),
        Mdc(150_364),
        Value::numeric(36.6),
    )
    .unit(Ucum::new("Cel"))
    .sequence(1)
}

#[test]
fn each_reading_rule_is_reported_with_the_record_and_the_fix() {
    let now = Timestamp::now();
    let future = Timestamp::from_unix_millis(now.unix_millis() + 3 * 24 * 3_600_000);
    let old = Timestamp::from_unix_millis(0);
    let records = [
        base().build(now),
        Reading::builder(
            DeviceId::new("toy", "a").unwrap(),
            Mdc(150_364),
            Value::numeric(f64::INFINITY),
        )
        .unit(Ucum::new("Cel"))
        .build(now),
        Reading::builder(
            DeviceId::new("toy", "a").unwrap(),
            Mdc(150_364),
            Value::numeric(1.0),
        )
        .build(now),
        Reading::builder(
            DeviceId::new("toy", "a").unwrap(),
            Mdc(0),
            Value::numeric(1.0),
        )
        .unit(Ucum::new("Cel"))
        .build(now),
        base().device_time(old).build(now),
        base().device_time(future).build(now),
        base()
            .device_time(old)
            .flags(ReadingFlags {
                device_clock_unset: true,
                stored_record: false,
            })
            .build(now),
        Reading::builder(
            DeviceId::new("toy", "bp").unwrap(),
            Mdc(150_020),
            Value::Compound(vec![
                Component {
                    mdc: Mdc(150_021),
                    value: Value::numeric(f64::NAN),
                },
                Component {
                    mdc: Mdc(0),
                    value: Value::numeric(80.0),
                },
            ]),
        )
        .unit(Ucum::new("mm[Hg]"))
        .build(now),
    ]
    .map(Record::Reading);
    let err = check_readings_valid(&records).unwrap_err();
    let has = |needle: &str| {
        assert!(
            err.mentions(needle),
            "expected a problem mentioning {needle:?} in:\n{err}"
        );
    };
    has("record #1, reading");
    has("the value is inf, not a finite number");
    has("record #2");
    has("has no unit");
    has("record #3");
    has("MDC code is 0");
    has("record #4");
    has("before 2000-01-01");
    has("record #5");
    has("more than a day ahead");
    has("component 0 (MDC 150021) is NaN");
    has("component 1 has MDC code 0");
    assert!(
        !err.problems
            .iter()
            .any(|p| p.starts_with("record #0,") || p.starts_with("record #6,")),
        "a good reading, and an old time flagged device_clock_unset, pass:\n{err}"
    );
    assert_eq!(err.problems.len(), 7, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Ids.

#[tokio::test]
async fn receipt_time_ids_fail_the_determinism_check() {
    let err = within(check_ids_deterministic(toy(Flaw::ReceiptTimeIds), LIMIT))
        .await
        .unwrap_err();
    assert_eq!(err.check, Check::IdsDeterministic);
    assert!(err.mentions("stored different record ids"), "{err}");
    assert!(
        err.mentions("neither a device time nor a sequence number"),
        "{err}"
    );
    assert!(err.mentions("only in the first run: reading"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// No panic on input.

#[test]
fn panicking_decoder_fails_with_the_input_in_hex() {
    let err = check_no_panic_on_input(careless_decode, SAMPLES).unwrap_err();
    assert_eq!(err.check, Check::NoPanicOnInput);
    // The shortest truncation of the first sample that panics: one byte.
    assert!(
        err.mentions("input 00 (1 bytes, hex; sample #0 truncated to 1 bytes)"),
        "{err}"
    );
    assert!(err.mentions("index out of bounds"), "{err}");
    assert!(
        err.mentions("tests/conformance.rs"),
        "the panic's location is named: {err}"
    );
}

#[test]
fn a_panic_only_random_input_reaches_is_found_and_shrunk() {
    // Valid on every sample, truncation and single-byte mutation; panics only on inputs longer
    // than 10 bytes whose byte 10 is 0x42.
    let decode = |b: &[u8]| -> Result<(), String> {
        if b.len() > 10 && b[10] == 0x42 {
            panic!("byte 10 is 0x42");
        }
        Ok(())
    };
    let err = check_no_panic_on_input(decode, &[]).unwrap_err();
    assert!(
        err.mentions("input 0000000000000000000042 (11 bytes, hex; random input, shrunk)"),
        "{err}"
    );
    assert!(err.mentions("byte 10 is 0x42"), "{err}");
}

#[test]
fn careful_decoder_passes_with_more_cases() {
    let options = FuzzOptions {
        cases: 10_000,
        ..FuzzOptions::default()
    };
    check_no_panic_on_input_with(careful_decode, SAMPLES, options).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Ack after commit.

#[tokio::test]
async fn cursor_advanced_before_submit_fails_the_ack_check() {
    let err = within(check_ack_after_commit(toy(Flaw::CursorBeforeSubmit), LIMIT))
        .await
        .unwrap_err();
    assert_eq!(err.check, Check::AckAfterCommit);
    assert!(
        err.mentions("never arrived after storage recovered"),
        "{err}"
    );
    assert!(
        err.mentions("missing after storage recovered: reading"),
        "{err}"
    );
}

#[tokio::test]
async fn cursor_committed_apart_from_its_records_fails_the_ack_check() {
    let err = within(check_ack_after_commit(toy(Flaw::CursorApart), LIMIT))
        .await
        .unwrap_err();
    assert_eq!(err.check, Check::AckAfterCommit);
    assert!(err.mentions("cursor \"toy:cursor\" moved to"), "{err}");
    assert!(err.mentions("same Ingest::submit call"), "{err}");
    assert!(err.mentions("never arrived"), "{err}");
}

/// A driver for a device that keeps records until told to forget them (its memory is the
/// cursor), optionally telling it before the commit.
struct Forgetful {
    memory: Arc<Mutex<Vec<u64>>>,
    tell_before_commit: bool,
}

fn forgetful(tell_before_commit: bool) -> impl hearth_test_kit::DriverFactory {
    OnDevice::new(
        || Arc::new(Mutex::new((1..=ROUNDS).collect::<Vec<u64>>())),
        move |memory: &Arc<Mutex<Vec<u64>>>| Forgetful {
            memory: memory.clone(),
            tell_before_commit,
        },
    )
}

impl Driver for Forgetful {
    fn name(&self) -> &str {
        "forgetful"
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let toy = Toy { flaw: Flaw::None };
            loop {
                tokio::select! {
                    _ = ctx.stopping() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
                let pending: Vec<u64> = self.memory.lock().unwrap().clone();
                let Some(&k) = pending.first() else { continue };
                if self.tell_before_commit {
                    self.memory.lock().unwrap().retain(|&x| x != k);
                }
                ctx.ingest.submit(toy.round(k), None).await?;
                self.memory.lock().unwrap().retain(|&x| x != k);
            }
        })
    }
}

#[tokio::test]
async fn device_told_before_the_commit_fails_the_ack_check() {
    within(check_ack_after_commit(forgetful(false), LIMIT))
        .await
        .unwrap();
    let err = within(check_ack_after_commit(forgetful(true), LIMIT))
        .await
        .unwrap_err();
    assert!(
        err.mentions("never arrived after storage recovered"),
        "{err}"
    );
    assert!(err.mentions("never arrived after a restart"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Live data.

/// MDC_PULS_RATE: the live value of the pulse driver.
const PULSE: Mdc = Mdc(149_530);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PulseFlaw {
    None,
    /// Each fresh driver reports other live values (as if they depended on timing).
    LiveDiffersBetweenRuns,
    /// On start, sends the live value of the last committed round again.
    LiveRepeatedOnRestart,
}

/// Each round, one stored temperature (device time and sequence: replayable) and one live
/// pulse value (neither: its id comes from the receipt time), with the cursor, in one submit.
struct Pulse {
    flaw: PulseFlaw,
    offset: u64,
}

fn pulse(flaw: PulseFlaw) -> impl FnMut() -> Pulse {
    let mut fresh = 0;
    move || {
        fresh += 1;
        Pulse {
            flaw,
            offset: if flaw == PulseFlaw::LiveDiffersBetweenRuns {
                fresh
            } else {
                0
            },
        }
    }
}

impl Pulse {
    fn live(&self, k: u64) -> Record {
        let device = DeviceId::new("toy", "strap").unwrap();
        let value = Value::numeric((60 + k + self.offset) as f64);
        Record::Reading(
            Reading::builder(device, PULSE, value)
                .unit(Ucum::new("/min"))
                .build(Timestamp::now()),
        )
    }
}

impl Driver for Pulse {
    fn name(&self) -> &str {
        "pulse"
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let committed = ctx.ingest.cursor(CURSOR).await?.map(|c| c as u64);
            if let (PulseFlaw::LiveRepeatedOnRestart, Some(last)) = (self.flaw, committed) {
                ctx.ingest.submit(vec![self.live(last)], None).await?;
            }
            let toy = Toy { flaw: Flaw::None };
            let mut k = committed.map_or(1, |c| c + 1);
            while k <= ROUNDS {
                tokio::select! {
                    _ = ctx.stopping() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
                let mut records = toy.round(k);
                records.push(self.live(k));
                ctx.ingest
                    .submit(records, Some((CURSOR.into(), k as i64)))
                    .await?;
                k += 1;
            }
            ctx.stopping().await;
            Ok(())
        })
    }
}

fn pulse_is_live() -> LiveData {
    LiveData::none().declare(
        "pulse notifications carry no time",
        |r| matches!(r, Record::Reading(x) if x.mdc == PULSE),
    )
}

#[tokio::test]
async fn declared_live_data_is_compared_by_content_and_passes() {
    let summary = within(
        Conformance::new(pulse(PulseFlaw::None))
            .limit(LIMIT)
            .live(
                "pulse notifications carry no time",
                |r| matches!(r, Record::Reading(x) if x.mdc == PULSE),
            )
            .run(),
    )
    .await;
    summary.assert_passed();
    // Without the declaration the same driver fails: the declaration is what lets it pass.
    let err = within(check_ids_deterministic(pulse(PulseFlaw::None), LIMIT))
        .await
        .unwrap_err();
    assert!(err.mentions("stored different record ids"), "{err}");
    assert!(err.mentions("declare them with LiveData"), "{err}");
    assert!(err.mentions(&format!("MDC {PULSE}")), "{err}");
    assert!(!err.mentions("MDC 150364"), "stored records match: {err}");
}

#[tokio::test]
async fn declaring_replayable_records_live_fails() {
    let everything = LiveData::none().declare("every reading", |r| matches!(r, Record::Reading(_)));
    let err = within(check_ids_deterministic_with(
        pulse(PulseFlaw::None),
        LIMIT,
        &everything,
    ))
    .await
    .unwrap_err();
    assert!(
        err.mentions("declared live data but carry a device time or sequence number"),
        "{err}"
    );
    assert!(
        err.mentions("declared live (every reading) but replayable: reading"),
        "{err}"
    );
    let err = within(check_ack_after_commit_with(
        pulse(PulseFlaw::None),
        LIMIT,
        &everything,
    ))
    .await
    .unwrap_err();
    assert!(err.mentions("declared live data"), "{err}");
}

#[tokio::test]
async fn live_data_that_differs_between_runs_fails_the_determinism_check() {
    let err = within(check_ids_deterministic_with(
        pulse(PulseFlaw::LiveDiffersBetweenRuns),
        LIMIT,
        &pulse_is_live(),
    ))
    .await
    .unwrap_err();
    assert!(err.mentions("stored different live data"), "{err}");
    assert!(
        err.mentions("live, 1 more in the first run: reading"),
        "{err}"
    );
    assert!(!err.mentions("stored different record ids"), "{err}");
}

#[tokio::test]
async fn live_data_sent_again_after_a_restart_fails_the_ack_check() {
    within(check_ack_after_commit_with(
        pulse(PulseFlaw::None),
        LIMIT,
        &pulse_is_live(),
    ))
    .await
    .unwrap();
    let err = within(check_ack_after_commit_with(
        pulse(PulseFlaw::LiveRepeatedOnRestart),
        LIMIT,
        &pulse_is_live(),
    ))
    .await
    .unwrap_err();
    assert!(
        err.mentions("live record(s) were stored more often than in an undisturbed run"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The summary.

#[tokio::test]
async fn summary_lists_each_check_and_explains_failures() {
    let summary = within(
        Conformance::new(toy(Flaw::None))
            .limit(LIMIT)
            .decoder("careful", careful_decode, SAMPLES)
            .decoder("careless", careless_decode, SAMPLES)
            .run(),
    )
    .await;
    assert!(!summary.passed());
    let report = summary.to_string();
    assert!(
        report.starts_with("hearth driver conformance: 4 of 5 checks passed"),
        "{report}"
    );
    assert!(
        report.contains("pass  record ids are deterministic"),
        "{report}"
    );
    assert!(
        report.contains("pass  no panic on input (careful)"),
        "{report}"
    );
    assert!(
        report.contains("FAIL  no panic on input (careless)"),
        "{report}"
    );
    assert!(
        report.contains("decoder \"careless\": the decoder panicked"),
        "{report}"
    );
    assert!(
        summary.outcome(Check::ReadingsValid).unwrap().is_ok(),
        "{report}"
    );
    assert_eq!(summary.into_result().unwrap_err().len(), 1);

    let without_decoder = within(Conformance::new(simulated).limit(LIMIT).run()).await;
    without_decoder.assert_passed();
    assert!(
        without_decoder
            .to_string()
            .contains("skip  no panic on input"),
        "{without_decoder}"
    );
}
