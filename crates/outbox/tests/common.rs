#![allow(dead_code)]
//! Helpers shared by the outbox's black-box tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::path::Path;

use hearth_model::*;
use hearth_outbox::*;

pub fn route(name: &str, categories: &[Category]) -> RouteSpec {
    RouteSpec {
        name: name.to_owned(),
        categories: categories.to_vec(),
        retry: RetryPolicy {
            initial: std::time::Duration::from_secs(1),
            max: std::time::Duration::from_secs(60),
            jitter: 0.0,
        },
        readings_only: false,
        alarms_only: false,
    }
}

/// A new temporary directory (removed when dropped) and the path of a file `name` in it.
pub fn temp_file(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// The one route `hub`, taking health records.
pub fn health_hub() -> Vec<RouteSpec> {
    vec![route("hub", &[Category::Health])]
}

pub fn open(path: &Path, routes: Vec<RouteSpec>) -> Outbox {
    open_with_report(path, routes).0
}

/// Opens the outbox at `path`, with what the open found and did.
pub fn open_with_report(path: &Path, routes: Vec<RouteSpec>) -> (Outbox, OpenReport) {
    Outbox::open(OutboxOptions::new(path, routes)).unwrap()
}

/// A receiver's refusal of a record, for `reason`.
pub fn rejected(reason: &str) -> Outcome {
    Outcome::Rejected {
        reason: reason.into(),
    }
}

pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

pub fn reading(seq: u64, category: Category, rx: i64) -> Record {
    Record::Reading(
        Reading::builder(
            DeviceId::new("sim", "dev").unwrap(),
            Mdc(150364),
            Value::numeric_with_decimals(36.5, 1),
        )
        .unit(Ucum::new("Cel"))
        .category(category)
        .sequence(seq)
        .build(at(rx)),
    )
}

pub fn alarm(seq: u64, rx: i64) -> Record {
    Record::Alarm(Alarm::new(
        DeviceId::new("z2m", "0x01").unwrap(),
        AlarmKind::Emergency,
        AlarmState::Raised,
        at(rx),
        at(rx),
        Category::Health,
        None,
        Some(seq),
    ))
}

/// Claim everything due on `route` and settle it all with `outcome`; returns the claimed records.
pub fn drain(outbox: &mut Outbox, route: &str, now: Timestamp, outcome: Outcome) -> Vec<Record> {
    let id = outbox.route(route).unwrap();
    let mut batch = outbox.batch().unwrap();
    let claimed = batch.claim(id, 100_000, now).unwrap();
    let answers: Vec<_> = claimed
        .iter()
        .map(|c| (c.ticket, outcome.clone()))
        .collect();
    batch.settle(id, &answers, now).unwrap();
    batch.commit().unwrap();
    claimed.into_iter().map(|c| c.record).collect()
}
