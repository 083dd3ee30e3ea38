//! Scenario tests of the outbox, one behaviour per test, named as sentences.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use common::*;
use hearth_model::*;
use hearth_outbox::*;

#[test]
fn committed_records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
        let recs: Vec<_> = (0..50)
            .map(|i| reading(i, Category::Health, 1000))
            .collect();
        let (outcomes, _) = ob.append_all(&recs, at(1000)).unwrap();
        assert!(outcomes.iter().all(|o| *o == AppendOutcome::Stored));
    }
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    assert_eq!(ob.len(), 50);
    assert_eq!(
        drain(&mut ob, "hub", at(2000), Outcome::Delivered).len(),
        50
    );
    assert!(ob.is_empty());
}

#[test]
fn rolled_back_batch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    {
        let mut b = ob.batch().unwrap();
        b.append(&reading(1, Category::Health, 1), at(1)).unwrap();
        b.set_cursor("sim", 1).unwrap();
        // dropped without commit: what a crash before COMMIT does
    }
    assert!(ob.is_empty());
    assert_eq!(ob.cursor("sim").unwrap(), None);
    drop(ob);
    let ob = open(&path, vec![route("hub", &[Category::Health])]);
    assert!(ob.is_empty());
}

#[test]
fn resent_record_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    let r = reading(7, Category::Health, 5);
    let (o, _) = ob.append_all(&[r.clone(), r.clone()], at(5)).unwrap();
    assert_eq!(o, vec![AppendOutcome::Stored, AppendOutcome::Duplicate]);
    assert_eq!(ob.len(), 1);
    assert_eq!(ob.stats(at(5)).unwrap().counter("duplicates"), 1);
}

#[test]
fn routes_only_see_their_categories() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![
            route("health-hub", &[Category::Health]),
            route("welfare-hub", &[Category::Welfare]),
            route("both", &[Category::Health, Category::Welfare]),
        ],
    );
    let recs = vec![
        reading(1, Category::Health, 1),
        reading(2, Category::Welfare, 1),
    ];
    ob.append_all(&recs, at(1)).unwrap();
    let h = drain(&mut ob, "health-hub", at(2), Outcome::Delivered);
    let w = drain(&mut ob, "welfare-hub", at(2), Outcome::Delivered);
    let b = drain(&mut ob, "both", at(2), Outcome::Delivered);
    assert!(h.iter().all(|r| r.category() == Category::Health) && h.len() == 1);
    assert!(w.iter().all(|r| r.category() == Category::Welfare) && w.len() == 1);
    assert_eq!(b.len(), 2);
    assert!(ob.is_empty());
}

#[test]
fn record_stays_until_every_route_delivered_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![
            route("a", &[Category::Health]),
            route("b", &[Category::Health]),
        ],
    );
    ob.append_all(&[reading(1, Category::Health, 1)], at(1))
        .unwrap();
    assert_eq!(drain(&mut ob, "a", at(2), Outcome::Delivered).len(), 1);
    assert_eq!(ob.len(), 1, "route b still needs it");
    assert_eq!(
        drain(&mut ob, "a", at(3), Outcome::Delivered).len(),
        0,
        "a never sees it twice"
    );
    assert_eq!(drain(&mut ob, "b", at(3), Outcome::Delivered).len(), 1);
    assert!(ob.is_empty());
}

#[test]
fn alarms_are_claimed_before_older_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route(
            "hub",
            &[
                Category::Health,
                Category::Welfare,
                Category::Administrative,
            ],
        )],
    );
    let mut recs: Vec<_> = (0..10).map(|i| reading(i, Category::Welfare, 1)).collect();
    recs.extend((0..10).map(|i| reading(100 + i, Category::Health, 2)));
    recs.push(Record::Technical(TechnicalAlarm::new(
        "t",
        TechnicalKind::LowBattery,
        Severity::Minor,
        AlarmState::Raised,
        "low",
        at(3),
    )));
    recs.push(alarm(1, 4));
    ob.append_all(&recs, at(5)).unwrap();
    let hub = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    let first = b.claim(hub, 2, at(5)).unwrap();
    assert_eq!(first[0].record.lane(), Lane::Alarm);
    assert_eq!(first[1].record.lane(), Lane::Technical);
    let next = b.claim(hub, 100, at(5)).unwrap();
    let lanes: Vec<_> = next.iter().map(|c| c.record.lane()).collect();
    let mut sorted = lanes.clone();
    sorted.sort();
    assert_eq!(lanes, sorted, "drain order is lane order");
    assert_eq!(next.len(), 20, "in-flight records are not claimed twice");
}

#[test]
fn retry_waits_for_backoff_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    assert_eq!(
        drain(&mut ob, "hub", at(0), Outcome::Retry { not_before: None }).len(),
        1
    );
    assert_eq!(
        drain(&mut ob, "hub", at(999), Outcome::Delivered).len(),
        0,
        "1 s backoff"
    );
    assert_eq!(
        drain(
            &mut ob,
            "hub",
            at(1000),
            Outcome::Retry {
                not_before: Some(at(30_000))
            }
        )
        .len(),
        1
    );
    assert_eq!(
        drain(&mut ob, "hub", at(29_999), Outcome::Delivered).len(),
        0,
        "Retry-After wins over 2 s backoff"
    );
    let last = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    let c = b.claim(last, 10, at(30_000)).unwrap();
    assert_eq!(c[0].attempts, 2);
}

#[test]
fn rejected_record_goes_to_dead_letters_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    drain(
        &mut ob,
        "hub",
        at(0),
        Outcome::Rejected {
            reason: "HTTP 422: Observation.code missing".into(),
        },
    );
    assert!(ob.is_empty());
    let reason: String = ob
        .connection()
        .query_row(
            "SELECT reason FROM dead_letter WHERE origin = 'route:hub'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(reason.contains("422"));
    let s = ob.stats(at(1)).unwrap();
    assert_eq!(s.routes[0].dead, 1);
}

/// Issue 6: a record a route skips (`unsupported = "skip"`) leaves the route counted as
/// `skipped:<route>`, neither delivered nor dead-lettered.
#[test]
fn skipped_record_leaves_the_route_counted_not_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    drain(
        &mut ob,
        "hub",
        at(0),
        Outcome::Skipped {
            reason: "MDC 188748 has no VkpObservation mapping".into(),
        },
    );
    assert!(ob.is_empty());
    let s = ob.stats(at(1)).unwrap();
    assert_eq!(s.counter("skipped:hub"), 1);
    assert_eq!((s.routes[0].delivered, s.routes[0].dead), (0, 0));
    assert!(s.dead_letters.is_empty());
}

#[test]
fn unrouted_category_is_dead_lettered_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    let (o, _) = ob
        .append_all(&[reading(1, Category::Welfare, 0)], at(0))
        .unwrap();
    assert_eq!(o, vec![AppendOutcome::Unrouted]);
    let s = ob.stats(at(0)).unwrap();
    assert_eq!(s.dead_letters.get("unrouted"), Some(&1));
    assert_eq!(s.counter("unrouted"), 1);
}

#[test]
fn non_finite_number_is_refused_into_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    let bad = Record::Reading(
        Reading::builder(
            DeviceId::new("sim", "x").unwrap(),
            Mdc(1),
            Value::numeric(f64::NAN),
        )
        .build(at(0)),
    );
    let (o, _) = ob.append_all(&[bad], at(0)).unwrap();
    assert!(matches!(o[0], AppendOutcome::Invalid(_)));
    assert!(ob.is_empty());
    assert_eq!(
        ob.stats(at(0)).unwrap().dead_letters.get("invalid"),
        Some(&1)
    );
}

#[test]
fn full_outbox_drops_lowest_lane_never_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OutboxOptions::new(
        dir.path().join("o.db"),
        vec![route(
            "hub",
            &[
                Category::Health,
                Category::Welfare,
                Category::Administrative,
            ],
        )],
    );
    opts.max_rows = 10;
    let (mut ob, _) = Outbox::open(opts).unwrap();
    let mut recs: Vec<_> = (0..4).map(|i| alarm(i, 0)).collect();
    recs.extend((0..4).map(|i| reading(i, Category::Health, 1)));
    recs.extend((0..4).map(|i| reading(100 + i, Category::Welfare, 2)));
    let (_, report) = ob.append_all(&recs, at(3)).unwrap();
    assert!(report.dropped_total() >= 2);
    assert_eq!(report.dropped[usize::from(Lane::Alarm.code())], 0);
    let s = ob.stats(at(3)).unwrap();
    assert_eq!(s.lanes[0].records, 4, "all alarms kept");
    assert!(
        s.records() <= 11,
        "under the cap (+ the cap's own technical alarm)"
    );
    assert_eq!(s.lanes[1].records, 1, "the cap raised a technical alarm");
    // Fill with alarms only: nothing else left to drop, the alarms are all kept.
    let more: Vec<_> = (10..30).map(|i| alarm(i, 5)).collect();
    let (_, report) = ob.append_all(&more, at(5)).unwrap();
    assert!(report.over_cap_with_alarms);
    assert_eq!(ob.stats(at(5)).unwrap().lanes[0].records, 24);
}

#[test]
fn expired_records_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OutboxOptions::new(
        dir.path().join("o.db"),
        vec![route(
            "hub",
            &[
                Category::Health,
                Category::Welfare,
                Category::Administrative,
            ],
        )],
    );
    opts.retention.welfare = std::time::Duration::from_secs(10);
    let (mut ob, _) = Outbox::open(opts).unwrap();
    ob.append_all(
        &[
            reading(1, Category::Welfare, 0),
            reading(2, Category::Health, 0),
            reading(3, Category::Welfare, 20_000),
        ],
        at(20_000),
    )
    .unwrap();
    let mut b = ob.batch().unwrap();
    let expired = b.expire(at(15_000)).unwrap();
    b.commit().unwrap();
    assert_eq!(expired[usize::from(Lane::Welfare.code())], 1);
    let s = ob.stats(at(15_000)).unwrap();
    assert_eq!(s.counter("expired:welfare"), 1);
    assert_eq!(
        s.lanes[1].records, 1,
        "a data-expired technical alarm was stored"
    );
}

#[test]
fn cursor_commits_with_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    let mut b = ob.batch().unwrap();
    b.append(&reading(9, Category::Health, 0), at(0)).unwrap();
    b.set_cursor("ble:dev", 9).unwrap();
    b.commit().unwrap();
    drop(ob);
    let ob = open(&path, vec![route("hub", &[Category::Health])]);
    assert_eq!(ob.cursor("ble:dev").unwrap(), Some(9));
    assert_eq!(ob.len(), 1);
}

#[test]
fn in_flight_deliveries_are_pending_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    let hub = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    assert_eq!(b.claim(hub, 10, at(0)).unwrap().len(), 1);
    b.commit().unwrap();
    drop(ob);
    let (mut ob, report) = Outbox::open(OutboxOptions::new(
        &path,
        vec![route("hub", &[Category::Health])],
    ))
    .unwrap();
    assert_eq!(report.recovered_in_flight, 1);
    assert_eq!(drain(&mut ob, "hub", at(1), Outcome::Delivered).len(), 1);
}

#[test]
fn late_answer_for_a_finished_delivery_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    let hub = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    let c = b.claim(hub, 10, at(0)).unwrap();
    let t = c[0].ticket;
    b.settle(hub, &[(t, Outcome::Delivered)], at(0)).unwrap();
    b.settle(
        hub,
        &[
            (t, Outcome::Delivered),
            (
                t,
                Outcome::Rejected {
                    reason: "late".into(),
                },
            ),
        ],
        at(0),
    )
    .unwrap();
    b.commit().unwrap();
    let s = ob.stats(at(0)).unwrap();
    assert_eq!(s.routes[0].delivered, 1);
    assert_eq!(s.routes[0].dead, 0);
}

#[test]
fn corrupt_file_is_quarantined_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, it is garbage from a torn write".repeat(100),
    )
    .unwrap();
    let (ob, report) = Outbox::open(OutboxOptions::new(
        &path,
        vec![route("ops", &[Category::Administrative])],
    ))
    .unwrap();
    let moved = report.quarantined.expect("quarantined");
    assert!(moved.exists(), "the corrupt file is kept for recovery");
    assert!(std::fs::read(&moved).unwrap().starts_with(b"this is not"));
    let s = ob.stats(Timestamp::now()).unwrap();
    assert_eq!(
        s.lanes[1].records, 1,
        "a technical alarm about it is queued"
    );
    let mut ob = ob;
    let got = drain(&mut ob, "ops", Timestamp::now(), Outcome::Delivered);
    match &got[0] {
        Record::Technical(t) => {
            assert_eq!(t.kind, TechnicalKind::StorageCorrupt);
            assert_eq!(t.severity, Severity::Critical);
            assert!(t.message.contains("moved aside"));
        }
        other => panic!("expected a technical alarm, got {other:?}"),
    }
}

#[test]
fn damaged_pages_are_detected_by_the_integrity_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
        let recs: Vec<_> = (0..2000).map(|i| reading(i, Category::Health, 0)).collect();
        ob.append_all(&recs, at(0)).unwrap();
        ob.connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    // Overwrite the middle of the file (index and table pages) with garbage.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8192] {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let (_ob, report) = Outbox::open(OutboxOptions::new(
        &path,
        vec![route("hub", &[Category::Health])],
    ))
    .unwrap();
    assert!(report.quarantined.is_some());
}

#[test]
fn full_disk_is_reported_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    ob.append_all(&[reading(0, Category::Health, 0)], at(0))
        .unwrap();
    // Make SQLite report SQLITE_FULL, as a full partition does, by capping the page count.
    let pages: i64 = ob
        .connection()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    ob.connection()
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let big: Vec<_> = (1..5000).map(|i| reading(i, Category::Health, 0)).collect();
    let err = ob.append_all(&big, at(0)).unwrap_err();
    assert!(matches!(err, OutboxError::DiskFull { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("disk full"));
    assert_eq!(ob.len(), 1, "the failed batch left nothing behind");
    ob.connection()
        .execute_batch("PRAGMA max_page_count = 1073741823")
        .unwrap();
    ob.append_all(&big, at(0)).unwrap();
    assert_eq!(ob.len(), 5000);
}

#[test]
fn newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    drop(open(&path, vec![]));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Outbox::open(OutboxOptions::new(&path, vec![])).unwrap_err();
    assert!(matches!(err, OutboxError::NewerSchema { found: 99, .. }));
    assert!(err.to_string().contains("newer hearth"));
}

#[test]
fn stats_reads_while_a_writer_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    let _writer = ob.batch().unwrap();
    let s = stats(&path).unwrap();
    assert_eq!(s.records(), 1);
    assert_eq!(s.routes[0].lanes[2].1.pending, 1);
    assert_eq!(s.schema_version, SCHEMA_VERSION);
}

#[test]
fn stats_on_a_missing_file_says_so() {
    let err = stats(std::path::Path::new("/nonexistent/outbox.db")).unwrap_err();
    assert!(err.to_string().contains("no outbox database at"));
}

#[test]
fn alarms_are_never_expired_by_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OutboxOptions::new(
        dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    opts.retention.health = std::time::Duration::from_secs(10);
    let (mut ob, _) = Outbox::open(opts).unwrap();
    ob.append_all(&[alarm(1, 0), reading(2, Category::Health, 0)], at(0))
        .unwrap();
    let mut b = ob.batch().unwrap();
    let expired = b.expire(at(60_000)).unwrap();
    b.commit().unwrap();
    assert_eq!(
        expired,
        [0, 0, 1, 0],
        "the measurement expired, the alarm did not"
    );
    let got = drain(&mut ob, "hub", at(60_000), Outcome::Delivered);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].lane(), Lane::Alarm);
}

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    drop(ob);
    // Make it a version-1 file, as the build of issue 2 wrote it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE journal; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let ob = open(&path, vec![route("hub", &[Category::Health])]);
    assert_eq!(ob.len(), 1);
    assert!(ob.journal("x").unwrap().is_empty());
    assert_eq!(stats(&path).unwrap().schema_version, SCHEMA_VERSION);
}

#[test]
fn journal_entries_commit_with_their_batch_and_old_ones_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    for seq in [1, 5, 9] {
        let mut b = ob.batch().unwrap();
        b.append(&reading(seq, Category::Health, 0), at(0)).unwrap();
        b.put_journal("mqtt:z", seq as i64, &[seq as u8; 3], 5)
            .unwrap();
        b.commit().unwrap();
    }
    // A rolled-back batch leaves no entry.
    {
        let mut b = ob.batch().unwrap();
        b.put_journal("mqtt:z", 20, b"lost", 0).unwrap();
        drop(b);
    }
    assert_eq!(
        ob.journal("mqtt:z").unwrap(),
        vec![(5, vec![5u8; 3]), (9, vec![9u8; 3])]
    );
    assert!(ob.journal("mqtt:other").unwrap().is_empty());
}

#[test]
fn a_readings_only_route_never_gets_alarms_and_an_alarm_nobody_takes_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut fhir = route("fhir", &[Category::Health]);
    fhir.readings_only = true;
    let mut ob = open(&path, vec![fhir]);
    let alarm = Record::Alarm(Alarm::new(
        DeviceId::new("zigbee", "00158d0001a2b3c4").unwrap(),
        AlarmKind::WaterLeak,
        AlarmState::Raised,
        at(0),
        at(0),
        Category::Health,
        None,
        Some(1),
    ));
    let outcomes = ob
        .append_all(&[reading(1, Category::Health, 0), alarm], at(0))
        .unwrap()
        .0;
    assert_eq!(
        outcomes,
        vec![AppendOutcome::Stored, AppendOutcome::Unrouted]
    );
    let s = stats(&path).unwrap();
    assert_eq!(s.records(), 1);
    assert_eq!(s.counters.get("unrouted"), Some(&1));
}
