//! Scenario tests of the outbox, one behaviour per test, named as sentences.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use common::*;
use hearth_model::*;
use hearth_outbox::*;

/// The one route `hub`, taking every category.
fn all_categories() -> Vec<RouteSpec> {
    vec![route(
        "hub",
        &[
            Category::Health,
            Category::Welfare,
            Category::Administrative,
        ],
    )]
}

/// An outbox at `path` with route `hub` for health, holding one health reading (sequence 1,
/// received and stored at 0).
fn with_one_reading(path: &std::path::Path) -> Outbox {
    let mut ob = open(path, health_hub());
    ob.append_all(&[reading(1, Category::Health, 0)], at(0))
        .unwrap();
    ob
}

#[test]
fn committed_records_survive_reopen() {
    let (_dir, path) = temp_file("outbox.db");
    {
        let mut ob = open(&path, health_hub());
        let recs: Vec<_> = (0..50)
            .map(|i| reading(i, Category::Health, 1000))
            .collect();
        let (outcomes, _) = ob.append_all(&recs, at(1000)).unwrap();
        assert!(outcomes.iter().all(|o| *o == AppendOutcome::Stored));
    }
    let mut ob = open(&path, health_hub());
    assert_eq!(ob.len(), 50);
    assert_eq!(
        drain(&mut ob, "hub", at(2000), Outcome::Delivered).len(),
        50
    );
    assert!(ob.is_empty());
}

#[test]
fn rolled_back_batch_leaves_nothing() {
    let (_dir, path) = temp_file("outbox.db");
    let mut ob = open(&path, health_hub());
    {
        let mut b = ob.batch().unwrap();
        b.append(&reading(1, Category::Health, 1), at(1)).unwrap();
        b.set_cursor("sim", 1).unwrap();
        // dropped without commit: what a crash before COMMIT does
    }
    assert!(ob.is_empty());
    assert_eq!(ob.cursor("sim").unwrap(), None);
    drop(ob);
    let ob = open(&path, health_hub());
    assert!(ob.is_empty());
}

#[test]
fn resent_record_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = open(&dir.path().join("o.db"), health_hub());
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
    let mut ob = open(&dir.path().join("o.db"), all_categories());
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
    let mut ob = with_one_reading(&dir.path().join("o.db"));
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
    let mut ob = with_one_reading(&dir.path().join("o.db"));
    drain(
        &mut ob,
        "hub",
        at(0),
        rejected("HTTP 422: Observation.code missing"),
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
    let mut ob = with_one_reading(&dir.path().join("o.db"));
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
    let mut ob = open(&dir.path().join("o.db"), health_hub());
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
    let mut ob = open(&dir.path().join("o.db"), health_hub());
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
    let mut opts = OutboxOptions::new(dir.path().join("o.db"), all_categories());
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
    let mut opts = OutboxOptions::new(dir.path().join("o.db"), all_categories());
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
    let (_dir, path) = temp_file("o.db");
    let mut ob = open(&path, health_hub());
    let mut b = ob.batch().unwrap();
    b.append(&reading(9, Category::Health, 0), at(0)).unwrap();
    b.set_cursor("ble:dev", 9).unwrap();
    b.commit().unwrap();
    drop(ob);
    let ob = open(&path, health_hub());
    assert_eq!(ob.cursor("ble:dev").unwrap(), Some(9));
    assert_eq!(ob.len(), 1);
}

#[test]
fn in_flight_deliveries_are_pending_again_after_restart() {
    let (_dir, path) = temp_file("o.db");
    let mut ob = with_one_reading(&path);
    let hub = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    assert_eq!(b.claim(hub, 10, at(0)).unwrap().len(), 1);
    b.commit().unwrap();
    drop(ob);
    let (mut ob, report) = open_with_report(&path, health_hub());
    assert_eq!(report.recovered_in_flight, 1);
    assert_eq!(drain(&mut ob, "hub", at(1), Outcome::Delivered).len(), 1);
}

#[test]
fn late_answer_for_a_finished_delivery_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = with_one_reading(&dir.path().join("o.db"));
    let hub = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    let c = b.claim(hub, 10, at(0)).unwrap();
    let t = c[0].ticket;
    b.settle(hub, &[(t, Outcome::Delivered)], at(0)).unwrap();
    b.settle(
        hub,
        &[(t, Outcome::Delivered), (t, rejected("late"))],
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
    let (_dir, path) = temp_file("outbox.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, it is garbage from a torn write".repeat(100),
    )
    .unwrap();
    let (ob, report) = open_with_report(&path, vec![route("ops", &[Category::Administrative])]);
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
    let (_dir, path) = temp_file("outbox.db");
    {
        let mut ob = open(&path, health_hub());
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
    let (_ob, report) = open_with_report(&path, health_hub());
    assert!(report.quarantined.is_some());
}

#[test]
fn full_disk_is_reported_and_nothing_is_half_written() {
    let (_dir, path) = temp_file("o.db");
    let mut ob = open(&path, health_hub());
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
    let (_dir, path) = temp_file("o.db");
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
    let (_dir, path) = temp_file("o.db");
    let mut ob = with_one_reading(&path);
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
    let mut opts = OutboxOptions::new(dir.path().join("o.db"), health_hub());
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
    let (_dir, path) = temp_file("o.db");
    let ob = with_one_reading(&path);
    drop(ob);
    // Make it a version-1 file, as the build of issue 2 wrote it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE journal; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let ob = open(&path, health_hub());
    assert_eq!(ob.len(), 1);
    assert!(ob.journal("x").unwrap().is_empty());
    assert_eq!(stats(&path).unwrap().schema_version, SCHEMA_VERSION);
}

#[test]
fn journal_entries_commit_with_their_batch_and_old_ones_are_dropped() {
    let (_dir, path) = temp_file("o.db");
    let mut ob = open(&path, health_hub());
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
    let (_dir, path) = temp_file("o.db");
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

/// Issue 15: an alarm route (SCAIP to the response centre) gets alarms and technical alarms
/// of its categories and never a reading, so a measurement backlog never reaches it.
#[test]
fn an_alarms_only_route_never_gets_readings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut centre = route("centre", &[Category::Health]);
    centre.alarms_only = true;
    let mut ob = open(&path, vec![centre, route("hub", &[Category::Health])]);
    let sos = alarm(1, 1);
    ob.append_all(&[reading(1, Category::Health, 0), sos.clone()], at(0))
        .unwrap();
    let to_centre = drain(&mut ob, "centre", at(1), Outcome::Delivered);
    assert_eq!(
        to_centre.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![sos.id()]
    );
    assert_eq!(drain(&mut ob, "hub", at(1), Outcome::Delivered).len(), 2);
}

fn open_as(path: &std::path::Path, routes: Vec<RouteSpec>, gateway: Option<GatewayId>) -> Outbox {
    let mut opts = OutboxOptions::new(path, routes);
    opts.gateway = gateway;
    Outbox::open(opts).unwrap().0
}

fn dead_letter_ids(ob: &Outbox) -> Vec<RecordId> {
    ob.connection()
        .prepare("SELECT record_id FROM dead_letter WHERE record_id IS NOT NULL ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| RecordId::from_bytes(b.unwrap().try_into().unwrap()))
        .collect()
}

/// Issue 13: two boxes whose devices have the same ids (here both `sim:dev`) must not send the
/// same record id, or a hub that deduplicates on it stores only one of them.
#[test]
fn two_gateways_store_the_same_device_reading_under_different_ids() {
    let dir = tempfile::tempdir().unwrap();
    let a = GatewayId::parse("02-00-00-00-00-00-00-0a").unwrap();
    let b = GatewayId::parse("02-00-00-00-00-00-00-0b").unwrap();
    let r = reading(1, Category::Health, 1);
    let mut ids = Vec::new();
    for (name, g) in [("a.db", a), ("b.db", b)] {
        let routes = health_hub();
        let mut ob = open_as(&dir.path().join(name), routes, Some(g));
        ob.append_all(&[r.clone(), r.clone()], at(1)).unwrap();
        assert_eq!(ob.len(), 1, "a resend on one box is still one record");
        let sent = drain(&mut ob, "hub", at(2), Outcome::Delivered);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].id(), r.id().scoped(g));
        ids.push(sent[0].id());
    }
    assert_ne!(ids[0], ids[1]);
}

/// Records queued by a build that stored device-derived ids are rewritten once, on the first
/// open with a gateway identity, and never again (not even when the identity changes later).
#[test]
fn ids_queued_before_scoping_are_scoped_once_on_open() {
    let (_dir, path) = temp_file("outbox.db");
    let g = GatewayId::parse("021a2b3c4d5e6f70").unwrap();
    let recs: Vec<_> = (0..20).map(|i| reading(i, Category::Health, 1)).collect();
    let alarm = alarm(1, 1);
    let hub = || {
        let mut r = route("hub", &[Category::Health]);
        r.readings_only = true;
        vec![r]
    };
    {
        // The older build: no identity; the alarm has no route and is dead-lettered.
        let mut ob = open_as(&path, hub(), None);
        ob.append_all(&recs, at(1)).unwrap();
        ob.append_all(std::slice::from_ref(&alarm), at(1)).unwrap();
        assert_eq!(dead_letter_ids(&ob), vec![alarm.id()]);
    }
    for gateway in [g, g, GatewayId::parse("02ffffffffffffff").unwrap()] {
        let mut ob = open_as(&path, hub(), Some(gateway));
        assert_eq!(dead_letter_ids(&ob), vec![alarm.id().scoped(g)]);
        // A resend of a queued reading after the upgrade is recognised as the same record.
        let (o, _) = ob.append_all(&recs[..1], at(2)).unwrap();
        if gateway == g {
            assert_eq!(o, vec![AppendOutcome::Duplicate]);
        }
        drop(ob);
    }
    let mut ob = open_as(&path, hub(), Some(g));
    let sent = drain(&mut ob, "hub", at(3), Outcome::Delivered);
    let want: std::collections::BTreeSet<_> = recs.iter().map(|r| r.id().scoped(g)).collect();
    let got: std::collections::BTreeSet<_> = sent.iter().map(|r| r.id()).collect();
    assert!(
        want.is_subset(&got),
        "every queued reading is sent under its scoped id"
    );
}

#[test]
fn refused_raw_input_keeps_a_bounded_prefix_and_counts_in_the_cap() {
    let (_dir, path) = temp_file("o.db");
    let mut ob = open(&path, health_hub());
    let big: Vec<u8> = (0..1_200_000u32).map(|i| (i % 251) as u8).collect();
    for i in 0..50 {
        let mut b = ob.batch().unwrap();
        b.dead_letter_input("vendor", &big, &format!("message {i} is too large"), at(i))
            .unwrap();
        b.commit().unwrap();
    }
    ob.connection()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file < 2 << 20, "50 × 1.2 MB refused: file is {file} bytes");
    let (rows, stored, lens, truncated, hashes): (i64, i64, i64, i64, i64) = ob
        .connection()
        .query_row(
            "SELECT count(*), sum(length(payload)), sum(payload_len = 1200000),
                    sum(truncated), sum(payload_hash = ?1) FROM dead_letter",
            [fnv1a(&big) as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(rows, 50);
    assert_eq!(stored, 50 * KEEP_INPUT_BYTES as i64);
    assert_eq!((lens, truncated, hashes), (50, 50, 50));
}

#[test]
fn dead_letters_count_in_the_cap_lowest_lane_first_never_an_alarms() {
    let (_dir, path) = temp_file("o.db");
    let mut opts = OutboxOptions::new(&path, all_categories());
    opts.max_rows = 20;
    let (mut ob, _) = Outbox::open(opts).unwrap();
    // 5 alarms and 5 welfare readings rejected, 5 raw inputs: 15 dead letters.
    let mut recs: Vec<_> = (0..5).map(|i| alarm(i, 0)).collect();
    recs.extend((0..5).map(|i| reading(100 + i, Category::Welfare, 0)));
    ob.append_all(&recs, at(0)).unwrap();
    drain(&mut ob, "hub", at(0), rejected("no"));
    let mut b = ob.batch().unwrap();
    for i in 0..5u8 {
        b.dead_letter_input("z2m", &[i], "bad", at(0)).unwrap();
    }
    b.commit().unwrap();
    let dead = |ob: &Outbox| ob.stats(at(0)).unwrap().dead_letters.values().sum::<u64>();
    assert_eq!(dead(&ob), 15);
    // 10 health readings: 25 > 20, so 5 must go (+1 for the cap's own technical alarm):
    // the raw input first, then the oldest welfare dead letter; no record, no alarm's.
    let readings: Vec<_> = (0..10).map(|i| reading(i, Category::Health, 1)).collect();
    let (_, report) = ob.append_all(&readings, at(1)).unwrap();
    assert_eq!(report.dropped_total(), 0);
    assert_eq!(report.dead_letters_dropped, 5);
    let s = ob.stats(at(1)).unwrap();
    assert_eq!(s.dead_letters.get("input:z2m"), None);
    assert_eq!(s.dead_letters.get("route:hub"), Some(&10));
    let more: Vec<_> = (10..20).map(|i| reading(i, Category::Health, 2)).collect();
    let (_, report) = ob.append_all(&more, at(2)).unwrap();
    let not_alarms: i64 = ob
        .connection()
        .query_row(
            "SELECT count(*) FROM dead_letter WHERE lane IS NOT ?1",
            [Lane::Alarm.code()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        not_alarms, 0,
        "welfare dead letters went, alarms' stayed: {report:?}"
    );
    assert_eq!(dead(&ob), 5);
    assert_eq!(ob.stats(at(2)).unwrap().counter("dead_letters_dropped"), 10);
}

#[test]
fn a_version_2_file_is_migrated_truncating_big_raw_input() {
    let (_dir, path) = temp_file("o.db");
    let ob = open(&path, health_hub());
    drop(ob);
    // Make it a version-2 file, as the build of issue 5 wrote it, holding a 100 kB raw input.
    let big = vec![7u8; 100_000];
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX dead_letter_lane_id;
         ALTER TABLE dead_letter DROP COLUMN payload_len;
         ALTER TABLE dead_letter DROP COLUMN payload_hash;
         ALTER TABLE dead_letter DROP COLUMN truncated;
         DELETE FROM meta;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO dead_letter (origin, dead_ms, attempts, reason, payload)
         VALUES ('input:vendor', 0, 0, 'too large', ?1), ('unrouted', 0, 0, 'no route', x'01')",
        [&big],
    )
    .unwrap();
    drop(conn);
    let ob = open(&path, health_hub());
    assert_eq!(stats(&path).unwrap().schema_version, SCHEMA_VERSION);
    let input: (i64, i64, bool, i64) = ob
        .connection()
        .query_row(
            "SELECT payload_len, length(payload), truncated, payload_hash FROM dead_letter
             WHERE origin = 'input:vendor'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        input,
        (100_000, KEEP_INPUT_BYTES as i64, true, fnv1a(&big) as i64)
    );
    let bytes: i64 = ob
        .connection()
        .query_row(
            "SELECT value FROM meta WHERE key = 'dead_letter_bytes'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bytes, KEEP_INPUT_BYTES as i64 + 1);
}
/// Technical alarms the outbox raised itself carry the wall clock's time: drain at that time.
fn technical_kinds(ob: &mut Outbox) -> Vec<(String, AlarmState, String)> {
    let now = Timestamp::now().saturating_add(std::time::Duration::from_secs(1));
    drain(ob, "hub", now, Outcome::Delivered)
        .into_iter()
        .filter_map(|r| match r {
            Record::Technical(t) => Some((t.kind.as_str().to_owned(), t.state, t.message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn rejected_records_are_listed_without_payload_and_requeued_onto_their_route() {
    let (_dir, path) = temp_file("o.db");
    let mut ob = open(&path, health_hub());
    let records: Vec<_> = (1..=3).map(|i| reading(i, Category::Health, 0)).collect();
    ob.append_all(&records, at(0)).unwrap();
    let reject = rejected("HTTP 422: unknown code");
    drain(&mut ob, "hub", at(0), reject);
    ob.batch()
        .unwrap()
        .dead_letter_input("z2m", b"{not json", "expected value at line 1", at(1))
        .unwrap();
    // (the batch above was rolled back: nothing of it is stored)
    let mut b = ob.batch().unwrap();
    b.dead_letter_input("z2m", b"{not json", "expected value at line 1", at(1))
        .unwrap();
    b.commit().unwrap();
    assert!(ob.is_empty());

    let (listed, total) = dead_letters(&path, &DeadLetterQuery::default()).unwrap();
    assert_eq!(total, 4);
    assert_eq!(listed[0].origin, "input:z2m", "newest first");
    assert!(!listed[0].requeueable);
    assert_eq!(listed[0].hash, fnv1a(b"{not json"));
    let rejected: Vec<_> = listed.iter().filter(|d| d.requeueable).collect();
    assert_eq!(rejected.len(), 3);
    assert!(rejected.iter().all(|d| d.route.as_deref() == Some("hub")
        && d.lane == Some(Lane::Measurement)
        && d.reason.contains("422")
        && d.size > 0));
    let (only_hub, _) = dead_letters(
        &path,
        &DeadLetterQuery {
            route: Some("hub".into()),
            limit: Some(2),
        },
    )
    .unwrap();
    assert_eq!(only_hub.len(), 2);

    // One by id, then the rest by reason; raw input is skipped with why.
    let first = rejected[2].id;
    let r = requeue(&path, &Requeue::Ids(vec![first, 9999])).unwrap();
    assert_eq!(r.requeued, vec![("hub".to_owned(), 1)]);
    assert_eq!(r.skipped.len(), 1);
    let r = requeue(&path, &Requeue::ReasonContains("unknown CODE".into())).unwrap();
    assert_eq!(r.total(), 2);
    let r = requeue(&path, &Requeue::All).unwrap();
    assert_eq!(r.total(), 0);
    assert_eq!(r.skipped.len(), 1, "the raw input stays: {r:?}");

    // The outbox that was open all along sees them (its totals are read again).
    let again = drain(&mut ob, "hub", at(2), Outcome::Delivered);
    assert_eq!(again.len(), 3);
    assert_eq!(
        again.iter().map(Record::id).collect::<Vec<_>>(),
        records.iter().map(Record::id).collect::<Vec<_>>()
    );
    assert!(ob.is_empty());
    let s = ob.stats(at(3)).unwrap();
    assert_eq!(s.counter("requeued:hub"), 3);
    assert_eq!(s.counter("delivered:hub"), 3);
    assert_eq!(s.dead_letters.get("route:hub"), None);
}

#[test]
fn dead_letters_raise_one_alarm_with_the_count_cleared_once_requeued() {
    let (_dir, path) = temp_file("o.db");
    let mut opts = OutboxOptions::new(&path, all_categories());
    opts.dead_letter_alarm = true;
    let (mut ob, _) = Outbox::open(opts.clone()).unwrap();
    ob.append_all(
        &[
            reading(1, Category::Health, 0),
            reading(2, Category::Health, 0),
        ],
        at(0),
    )
    .unwrap();
    let reject = rejected("HTTP 400");
    // The rejection commits the alarm; draining delivers it (and nothing else).
    drain(&mut ob, "hub", at(0), reject);
    let alarms = technical_kinds(&mut ob);
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].0, DEAD_LETTERS_KIND);
    assert_eq!(alarms[0].1, AlarmState::Raised);
    assert!(alarms[0].2.starts_with("2 dead letters"), "{}", alarms[0].2);
    // More dead letters: no second alarm, also not after a restart.
    ob.append_all(&[reading(3, Category::Welfare, 0)], at(2))
        .unwrap();
    drain(&mut ob, "hub", at(2), rejected("HTTP 400"));
    drop(ob);
    let (mut ob, _) = Outbox::open(opts).unwrap();
    assert!(technical_kinds(&mut ob).is_empty());
    // Requeued while the outbox is open: cleared at its next commit.
    assert_eq!(requeue(&path, &Requeue::All).unwrap().total(), 3);
    let later = Timestamp::now().saturating_add(std::time::Duration::from_secs(1));
    let mut got = drain(&mut ob, "hub", later, Outcome::Delivered);
    got.extend(drain(&mut ob, "hub", later, Outcome::Delivered));
    let cleared: Vec<_> = got
        .iter()
        .filter_map(|r| match r {
            Record::Technical(t) => Some(t.state),
            _ => None,
        })
        .collect();
    assert_eq!(cleared, vec![AlarmState::Cleared]);
    assert_eq!(got.len(), 4, "3 requeued readings and the clearing");
}

/// A record a receiver refused is dead-lettered under the id it was stored and sent with (not
/// scoped a second time), so a requeue sends the same identifier and the hub recognises it.
#[test]
fn a_refused_record_keeps_its_scoped_id_through_dead_letter_and_requeue() {
    let (_dir, path) = temp_file("o.db");
    let g = GatewayId::parse("021a2b3c4d5e6f70").unwrap();
    let mut ob = open_as(&path, health_hub(), Some(g));
    let r = reading(1, Category::Health, 0);
    ob.append_all(std::slice::from_ref(&r), at(0)).unwrap();
    let reject = rejected("HTTP 422");
    let sent = drain(&mut ob, "hub", at(0), reject);
    assert_eq!(sent[0].id(), r.id().scoped(g));
    assert_eq!(dead_letter_ids(&ob), vec![r.id().scoped(g)]);
    requeue(&path, &Requeue::All).unwrap();
    let again = drain(&mut ob, "hub", at(1), Outcome::Delivered);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id(), r.id().scoped(g));
}

/// Issue 6 (b): device facts are kept durably, one row per device; a later report replaces
/// what it tells and keeps what it does not; they are not records (no delivery, no cap).
#[test]
fn issue_6_device_facts_are_upserted_and_survive_a_reopen() {
    let (_dir, path) = temp_file("o.db");
    let id = DeviceId::new("ble", "0011223344556677").unwrap();
    let mut ob = open(&path, health_hub());
    assert!(ob.devices().unwrap().is_empty());
    let mut b = ob.batch().unwrap();
    b.put_device(
        &id,
        &Device {
            manufacturer: Some("Acme".into()),
            model: Some("T-1".into()),
            serial: Some("42".into()),
            ..Device::default()
        },
        at(0),
    )
    .unwrap();
    b.commit().unwrap();
    let mut b = ob.batch().unwrap();
    b.put_device(
        &id,
        &Device {
            model: Some("T-2".into()),
            battery_percent: Some(70),
            ..Device::default()
        },
        at(1),
    )
    .unwrap();
    b.commit().unwrap();
    drop(ob);
    let ob = open(&path, health_hub());
    assert_eq!(
        ob.devices().unwrap(),
        vec![Device {
            id: Some(id),
            manufacturer: Some("Acme".into()),
            model: Some("T-2".into()),
            serial: Some("42".into()),
            firmware: None,
            eui64: None,
            battery_percent: Some(70),
        }]
    );
    assert_eq!(ob.len(), 0);
}
