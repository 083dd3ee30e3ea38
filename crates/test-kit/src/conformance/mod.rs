//! The driver conformance kit: what a vendor runs against a new
//! [`Driver`](hearth_driver_api::Driver) before it joins hearth.
//!
//! Four checks, each returning `Result<(), ConformanceError>` (with a thin `assert_*` wrapper
//! that panics with the problems):
//!
//! - [`check_readings_valid`] / [`check_driver_readings`]: finite numbers, units, MDC codes,
//!   device id schemes, plausible device times.
//! - [`check_ids_deterministic`]: two fresh drivers from the same factory, each on a fresh
//!   outbox, store the same record ids (ids come from device id + kind + device time +
//!   sequence, never from the receipt time or a random number). Live data (below) is compared
//!   by content instead, with [`check_ids_deterministic_with`].
//! - [`check_no_panic_on_input`]: a decoder returns an error, never panics, on arbitrary bytes
//!   and on truncations and single-byte mutations of valid samples.
//! - [`check_ack_after_commit`]: while storage fails nothing is acknowledged (no cursor moves,
//!   nothing is dropped), and once it works again every record arrives exactly once.
//!
//! [`run_all`] (or the [`Conformance`] builder for several decoders) runs them all and prints
//! a summary.
//!
//! ## Live data
//!
//! Some values happen once and carry neither a device time nor a sequence number: a GATT heart
//! rate notification, a body-composition measurement, a zigbee2mqtt button press without
//! `last_seen`. Their id comes from the receipt time, which is right for them (the device never
//! sends them again, and a counter would collide after a reconnect), so two runs store them
//! under other ids. The kit cannot tell them from the bug the ids check exists for — a
//! receipt-time id on a record the device *does* send again — so the factory's author declares
//! them, with the reason: [`LiveData::declare`] (or [`Conformance::live`]), by device or code.
//! Then:
//!
//! - records the declaration does not match are compared by id, exactly as without one;
//! - declared records are compared by everything but the receipt time, as a multiset: both runs
//!   must store the same live readings and alarms, each as often (the ids check), and after
//!   storage failures and restarts each exactly once (the ack check, which sees a live value
//!   submitted again even though its new id hides it from the outbox's duplicate count);
//! - a declared record whose id does not come from the receipt time (a reading with a device
//!   time or sequence, an alarm whose time is not its receipt time) fails both checks: the
//!   declaration is too broad and would hide replayable records.
//!
//! Nothing is declared by default, so a driver's declaration can only move records from the id
//! comparison to the content comparison, never out of the checks.
//!
//! Drivers are given as a [`DriverFactory`] (any `FnMut() -> D` closure is one) because the
//! checks start several instances: fresh ones on fresh outboxes, and restarted ones, as
//! hearth's supervisor restarts a failed driver. A driver that talks to a device should get a
//! simulated one from the factory; a device's state that must survive a driver restart (what
//! it has not yet been told to delete) belongs outside the driver, as it is on real hardware:
//! use [`OnDevice`] for that.

mod ack;
mod factory;
mod fuzz;
mod ids;
mod live;
mod readings;
mod suite;

use hearth_model::Record;
use hearth_outbox::Stats;

use crate::{Harness, HarnessError, RunLimit, RunReport};

pub use ack::{assert_ack_after_commit, check_ack_after_commit, check_ack_after_commit_with};
pub use factory::{DriverFactory, OnDevice};
pub use fuzz::{
    FuzzOptions, assert_no_panic_on_input, check_no_panic_on_input, check_no_panic_on_input_with,
};
pub use ids::{assert_ids_deterministic, check_ids_deterministic, check_ids_deterministic_with};
pub use live::LiveData;
pub use readings::{
    assert_driver_readings, assert_readings_valid, check_driver_readings, check_readings_valid,
};
pub use suite::{CheckOutcome, Conformance, Summary, run_all};

/// What one run of a fresh driver on a fresh harness stored.
#[derive(Debug)]
pub(crate) struct Observed {
    /// How the run went.
    pub(crate) run: RunReport,
    /// Every stored record.
    pub(crate) records: Vec<Record>,
    /// The outbox statistics after the run.
    pub(crate) stats: Stats,
}

/// Run a fresh driver on a fresh harness and collect what it stored. `Err` is a problem text:
/// the kit itself could not work.
pub(crate) async fn observe<F>(make: &mut F, limit: RunLimit) -> Result<Observed, String>
where
    F: DriverFactory,
{
    let harness = Harness::new().map_err(|e| kit_problem(&e))?;
    let run = harness.run(make.fresh(), limit).await;
    let records = harness.records().await.map_err(|e| kit_problem(&e))?;
    let stats = harness.stats().map_err(|e| kit_problem(&e))?;
    harness.close().await.map_err(|e| kit_problem(&e))?;
    Ok(Observed {
        run,
        records,
        stats,
    })
}

/// A problem of the kit, not of the driver; reported as a problem so that the check fails.
pub(crate) fn kit_problem(e: &HarnessError) -> String {
    format!("the conformance kit could not run the check: {e}")
}

/// A record, as problem messages name it (never its value or person: they may be health data).
pub(crate) fn describe(record: &Record) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
    match record {
        Record::Reading(r) => format!(
            "reading {} (device {}, MDC {}, device time {}, sequence {})",
            r.id,
            r.device,
            r.mdc,
            opt(r.device_time.map(|t| t.to_string())),
            opt(r.sequence.map(|s| s.to_string())),
        ),
        Record::Alarm(a) => format!(
            "alarm {} ({} {} from {}, at {}, sequence {})",
            a.id,
            a.kind,
            a.state.as_str(),
            a.device,
            a.at,
            opt(a.sequence.map(|s| s.to_string())),
        ),
        Record::Technical(t) => format!(
            "technical alarm {} ({} {} from {:?})",
            t.id,
            t.kind.as_str(),
            t.state.as_str(),
            t.source
        ),
    }
}
