//! # hearth-test-kit
//!
//! What hearth's own tests and a vendor's driver tests use: a [`Harness`] (a throw-away real
//! outbox with an `Ingest`, `TechnicalAlarms` and a shutdown switch, which can also pretend
//! the disk is full), the driver [`conformance`] kit (four checks a new `Driver` must pass
//! before it joins hearth), and [`golden`]-file helpers for the protocol crates. It is a test
//! dependency only: nothing in hearth's binary links it, and it never fakes the outbox — the
//! driver under test commits through the same writer thread and SQLite file as in production.
//!
//! Real peers for black-box tests: [`mosquitto`] (an MQTT broker), [`sipp`] (SIPp playing the
//! SIP alarm centre from a scenario file) and [`kamailio`] (Kamailio as the TLS front of a SIPp
//! centre, since Debian's SIPp has no TLS).
//!
//! Where it sits: beside the data flow of DESIGN.md, at interface A — it plays the part of
//! `ingest → outbox` (and of the supervisor that restarts drivers) for one driver under test.
//!
//! ## Invariants
//! - Every conformance check fails on a driver that breaks its rule, and passes on the
//!   reference driver (`hearth-driver-simulated`). Tests: `tests/conformance.rs`
//!   (`simulated_driver_passes_every_check`, `nan_readings_fail_the_readings_check`,
//!   `receipt_time_ids_fail_the_determinism_check`, `panicking_decoder_fails_with_the_input_in_hex`,
//!   `cursor_advanced_before_submit_fails_the_ack_check`,
//!   `cursor_committed_apart_from_its_records_fails_the_ack_check`,
//!   `device_told_before_the_commit_fails_the_ack_check`).
//! - Declared live data (no device time, no sequence) is compared by content, never left out:
//!   a declaration passes only records with receipt-time ids, and live values that differ
//!   between runs or are stored again after a restart fail. Tests: `tests/conformance.rs`
//!   (`declared_live_data_is_compared_by_content_and_passes`,
//!   `declaring_replayable_records_live_fails`,
//!   `live_data_that_differs_between_runs_fails_the_determinism_check`,
//!   `live_data_sent_again_after_a_restart_fails_the_ack_check`).
//! - The kit passes on the real drivers over their real transports: BLE over the simulated
//!   radio (`drivers/ble/tests/conformance.rs`), zigbee2mqtt and external drivers over a real
//!   mosquitto (`drivers/zigbee2mqtt/tests/conformance.rs`,
//!   `drivers/external/tests/conformance.rs`); the checks those files leave out are named in
//!   their headers with why.
//! - The worked example of `docs/drivers.md` passes the kit. Test:
//!   `tests/guide_example.rs::acme_driver_passes_the_conformance_kit`.
//! - A simulated full disk stores nothing and is reported as the transient "disk full" error,
//!   and the harness's switch row never shows in `stats`. Test:
//!   `tests/harness.rs::storage_full_stores_nothing_and_recovers`.
//! - [`Harness::records`] leaves the outbox as it found it. Test:
//!   `tests/harness.rs::records_are_read_without_being_consumed`.
//! - A golden file is rewritten only in bless mode. Test: `tests/golden.rs`.
//!
//! ## Example
//! ```
//! use hearth_model::*;
//! use hearth_test_kit::conformance::check_readings_valid;
//!
//! let device = DeviceId::new("ble", "0123456789abcdef").unwrap();
//! let good = Reading::builder(device.clone(), Mdc(150364), Value::numeric(36.6))
//!     .unit(Ucum::new("Cel"))
//!     .device_time(Timestamp::from_unix_millis(1_700_000_000_000))
//!     .sequence(1)
//!     .build(Timestamp::now());
//! assert!(check_readings_valid(&[Record::Reading(good)]).is_ok());
//!
//! let no_unit = Reading::builder(device, Mdc(150364), Value::numeric(f64::NAN))
//!     .sequence(2)
//!     .build(Timestamp::now());
//! let err = check_readings_valid(&[Record::Reading(no_unit)]).unwrap_err();
//! assert!(err.mentions("not a finite number"));
//! assert!(err.mentions("no unit"));
//! ```
#![forbid(unsafe_code)]
// This crate's job is to fail tests: its `assert_*` helpers panic with a clear message when a
// check fails, as `assert!` does. Library paths that are not assertions still return errors.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod config_keys;
pub mod conformance;
mod error;
pub mod golden;
mod harness;
pub mod kamailio;
pub mod mosquitto;
pub mod pki;
pub mod sipp;

pub use conformance::{
    Conformance, DriverFactory, LiveData, OnDevice, Summary, assert_ack_after_commit,
    assert_driver_readings, assert_ids_deterministic, assert_no_panic_on_input,
    assert_readings_valid, check_ack_after_commit, check_ack_after_commit_with,
    check_driver_readings, check_ids_deterministic, check_ids_deterministic_with,
    check_no_panic_on_input, check_readings_valid, run_all,
};
pub use error::{Check, ConformanceError, HarnessError};
pub use golden::{assert_golden, check_golden};
pub use harness::{Harness, ROUTE, RunEnd, RunLimit, RunReport, RunningDriver, STOP_GRACE};

/// Claim `records` from a real outbox in a throw-away directory, as a route sender does, so
/// uplink tests deliver real `Claimed` values (claim order is the outbox's: highest lane first).
pub fn claimed(records: Vec<hearth_model::Record>) -> Vec<hearth_outbox::Claimed> {
    use hearth_outbox::{Outbox, OutboxOptions, RetryPolicy, RouteSpec};
    let dir = tempfile::tempdir().unwrap();
    let route = RouteSpec {
        name: "hub".into(),
        categories: hearth_model::Category::ALL.to_vec(),
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let (mut ob, _) =
        Outbox::open(OutboxOptions::new(dir.path().join("o.db"), vec![route])).unwrap();
    ob.append_all(&records, hearth_model::Timestamp::now())
        .unwrap();
    let r = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    let c = b.claim(r, 10_000, hearth_model::Timestamp::now()).unwrap();
    b.commit().unwrap();
    assert_eq!(c.len(), records.len(), "every record claimed");
    c
}
