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

pub fn open(path: &Path, routes: Vec<RouteSpec>) -> Outbox {
    Outbox::open(OutboxOptions::new(path, routes)).unwrap().0
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
