//! Check: readings and alarms follow the model rules.

use super::DriverFactory;
use hearth_model::{Record, Timestamp, Value};

use super::{Observed, describe, observe};
use crate::{Check, ConformanceError, RunLimit};

/// 2000-01-01T00:00:00Z: earlier device times mean a clock that was never set.
const EARLIEST_MS: i64 = 946_684_800_000;
/// A device time may be at most this far ahead of hearth's clock.
const FUTURE_SLACK_MS: i64 = 24 * 60 * 60 * 1000;

/// Check records a driver produced: every numeric value finite; numeric and compound readings
/// carry a unit; MDC codes non-zero; device id schemes non-empty; device times (if any) not
/// before 2000-01-01 (unless the reading is flagged `device_clock_unset`) and not more than a
/// day in the future; technical alarms name their source and say what to do.
///
/// Each problem names the record (its position, id, device, MDC code) and what to fix.
pub fn check_readings_valid(records: &[Record]) -> Result<(), ConformanceError> {
    let now = Timestamp::now();
    let mut problems = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let mut found = Vec::new();
        problems_of(record, now, &mut found);
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("record #{i}, {}: {p}", describe(record))),
        );
    }
    ConformanceError::from_problems(Check::ReadingsValid, problems)
}

/// [`check_readings_valid`], panicking with the problems (for tests).
#[track_caller]
pub fn assert_readings_valid(records: &[Record]) {
    if let Err(e) = check_readings_valid(records) {
        panic!("{e}");
    }
}

/// Run a fresh driver on a fresh harness and check what it stored with
/// [`check_readings_valid`]. Also fails when the outbox refused records as invalid (they never
/// reach the route, so only its counter shows them), when the driver stored nothing, and when
/// the run itself broke the contract (panic, error on a healthy outbox, not stopping).
pub async fn check_driver_readings<F>(
    mut make: F,
    limit: impl Into<RunLimit>,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    let limit = limit.into();
    let observed = observe(&mut make, limit)
        .await
        .map_err(|p| ConformanceError::new(Check::ReadingsValid, vec![p]))?;
    readings_of_run(&observed, limit)
}

/// [`check_driver_readings`], panicking with the problems (for tests).
pub async fn assert_driver_readings<F>(make: F, limit: impl Into<RunLimit>)
where
    F: DriverFactory,
{
    if let Err(e) = check_driver_readings(make, limit).await {
        panic!("{e}");
    }
}

/// The readings check on a run that was already observed (shared with `run_all`).
pub(crate) fn readings_of_run(
    observed: &Observed,
    limit: RunLimit,
) -> Result<(), ConformanceError> {
    let mut problems = observed.run.problems();
    let invalid = observed.stats.counter("invalid");
    if invalid > 0 {
        problems.push(format!(
            "the outbox refused {invalid} record(s) as breaking a model rule (a numeric value \
             that is NaN or infinite) and dead-lettered them; use \
             Value::Absent(AbsentReason::…) for a device's NaN, NRes or ±INF"
        ));
    }
    if observed.records.is_empty() && invalid == 0 {
        problems.push(no_data(limit, 0));
    }
    if let Err(e) = check_readings_valid(&observed.records) {
        problems.extend(e.problems);
    }
    ConformanceError::from_problems(Check::ReadingsValid, problems)
}

/// The problem text when a run stored nothing to check; `invalid` records were refused.
pub(crate) fn no_data(limit: RunLimit, invalid: i64) -> String {
    let refused = if invalid > 0 {
        format!(
            " ({invalid} were refused as invalid: see the \"{}\" check)",
            Check::ReadingsValid
        )
    } else {
        String::new()
    };
    format!(
        "the driver stored no readings or alarms within {limit}{refused}; give the check a \
         factory whose driver produces data from a simulated device, or a longer limit"
    )
}

fn problems_of(record: &Record, now: Timestamp, out: &mut Vec<String>) {
    match record {
        Record::Reading(r) => {
            if r.mdc.0 == 0 {
                out.push(
                    "MDC code is 0; set the IEEE 11073-10101 code of what was measured (e.g. \
                     150364 for body temperature; hearth-ieee11073 has the table)"
                        .into(),
                );
            }
            scheme(r.device.scheme(), out);
            value_problems(&r.value, r.unit.as_ref().map(|u| u.as_str()), out);
            if let Some(t) = r.device_time {
                time_problems(t, now, r.flags.device_clock_unset, "device time", out);
            }
        }
        Record::Alarm(a) => {
            scheme(a.device.scheme(), out);
            time_problems(a.at, now, false, "alarm time", out);
        }
        Record::Technical(t) => {
            if t.source.trim().is_empty() {
                out.push(
                    "the technical alarm has an empty source; name the device id or component \
                     it is about"
                        .into(),
                );
            }
            if t.message.trim().is_empty() {
                out.push(
                    "the technical alarm has an empty message; say what happened and what to do"
                        .into(),
                );
            }
        }
    }
}

fn scheme(scheme: &str, out: &mut Vec<String>) {
    if scheme.is_empty() {
        out.push(
            "the device id has an empty scheme; build it with DeviceId::new(\"ble\", …) (or \
             \"z2m\", \"ext\" …)"
                .into(),
        );
    }
}

fn value_problems(value: &Value, unit: Option<&str>, out: &mut Vec<String>) {
    let needs_unit = match value {
        Value::Numeric { value, .. } => {
            finite(*value, "the value", out);
            true
        }
        Value::Compound(parts) => {
            if parts.is_empty() {
                out.push(
                    "the compound value has no components; send an Absent value instead".into(),
                );
            }
            for (j, part) in parts.iter().enumerate() {
                if part.mdc.0 == 0 {
                    out.push(format!(
                        "component {j} has MDC code 0; set the code of what it measures (e.g. \
                         150021 for systolic pressure)"
                    ));
                }
                match &part.value {
                    Value::Numeric { value, .. } => {
                        finite(*value, &format!("component {j} (MDC {})", part.mdc), out);
                    }
                    Value::Compound(_) => out.push(format!(
                        "component {j} (MDC {}) is itself compound; components are numeric, \
                         enumerated or absent",
                        part.mdc
                    )),
                    Value::Enumerated(_) | Value::Absent(_) => {}
                }
            }
            true
        }
        Value::Enumerated(_) | Value::Absent(_) => false,
    };
    if needs_unit && unit.is_none_or(|u| u.trim().is_empty()) {
        out.push(
            "the numeric value has no unit; set its UCUM code with .unit(Ucum::new(\"Cel\")) \
             (hearth-ieee11073 maps MDC units to UCUM)"
                .into(),
        );
    }
}

fn finite(v: f64, what: &str, out: &mut Vec<String>) {
    if !v.is_finite() {
        out.push(format!(
            "{what} is {v}, not a finite number; use Value::Absent(AbsentReason::…) for a \
             device's NaN, NRes or ±INF"
        ));
    }
}

fn time_problems(
    t: Timestamp,
    now: Timestamp,
    clock_unset: bool,
    what: &str,
    out: &mut Vec<String>,
) {
    let ms = t.unix_millis();
    if ms < EARLIEST_MS && !clock_unset {
        out.push(format!(
            "{what} {t} is before 2000-01-01, so the device clock was probably never set; set \
             ReadingFlags::device_clock_unset (and set the device clock if the profile allows), \
             or fix the driver's epoch conversion"
        ));
    }
    if ms > now.unix_millis().saturating_add(FUTURE_SLACK_MS) {
        out.push(format!(
            "{what} {t} is more than a day ahead of this machine's clock ({now}); device times \
             are UTC: check the driver's time-zone conversion and epoch"
        ));
    }
}
