//! The alarm event log (issue 15, REQUIREMENTS S3): durable, bounded, listed read-only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use common::*;
use hearth_model::*;
use hearth_outbox::*;
use serde_json::json;

fn entry(ms: i64, event: &str, record: Option<RecordId>) -> AlarmLogEntry {
    let mut e = AlarmLogEntry::new(at(ms), "alarm", event);
    e.record = record;
    e.reference = Some(format!("ref-{ms}"));
    e.receiver = Some("primary".into());
    e.detail = json!({"kind": "fall", "criticality": "high"})
        .as_object()
        .cloned()
        .unwrap();
    e
}

fn log(ob: &mut Outbox, entries: &[AlarmLogEntry]) -> u64 {
    let mut b = ob.batch().unwrap();
    let pruned = b.log_alarm_events(entries).unwrap();
    b.commit().unwrap();
    pruned
}

fn events(log: &AlarmLog) -> Vec<String> {
    log.entries.iter().map(|e| e.entry.event.clone()).collect()
}

#[tokio::test]
async fn alarm_log_entries_committed_by_the_writer_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let record = RecordId::derive(&["alarm", "1"]);
    let written = vec![
        entry(1_000, "queued", Some(record)),
        entry(2_000, "attempt", Some(record)),
        entry(3_000, "handled", Some(record)),
    ];
    {
        let (ob, _) = Outbox::open(OutboxOptions::new(&path, vec![])).unwrap();
        let (writer, thread) = OutboxWriter::spawn(ob, 100).unwrap();
        writer.log_alarm_events(written.clone()).await.unwrap();
        writer.log_alarm_events(Vec::new()).await.unwrap();
        drop(writer);
        thread.join().unwrap();
    }
    // Read-only, as `hearth alarms log` does.
    let got = alarm_log(&path, &AlarmLogQuery::default()).unwrap();
    assert_eq!(got.total, 3);
    assert_eq!(got.pruned, 0);
    let entries: Vec<_> = got.entries.iter().map(|e| e.entry.clone()).collect();
    assert_eq!(entries, written);
    assert!(got.entries.iter().all(|e| !e.detail_unreadable));
    assert!(got.entries.windows(2).all(|w| w[0].id < w[1].id));
    // And on a reopened outbox.
    let ob = open(&path, vec![]);
    assert_eq!(ob.alarm_log(&AlarmLogQuery::default()).unwrap().total, 3);
    assert_eq!(ob.len(), 0, "log entries are not records");
}

#[test]
fn the_bound_prunes_the_oldest_entries_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut opts = OutboxOptions::new(&path, vec![]);
    opts.max_alarm_log = 5;
    let (mut ob, _) = Outbox::open(opts).unwrap();
    assert_eq!(
        log(&mut ob, &[entry(0, "e0", None), entry(1, "e1", None)]),
        0
    );
    let more: Vec<_> = (2..10).map(|i| entry(i, &format!("e{i}"), None)).collect();
    assert_eq!(log(&mut ob, &more), 5);
    assert_eq!(log(&mut ob, &[entry(10, "e10", None)]), 1);
    let got = alarm_log(&path, &AlarmLogQuery::default()).unwrap();
    assert_eq!(events(&got), ["e6", "e7", "e8", "e9", "e10"]);
    assert_eq!(got.total, 5);
    assert_eq!(got.pruned, 6);
    assert_eq!(stats(&path).unwrap().counter(ALARM_LOG_PRUNED), 6);
    // A single batch bigger than the bound keeps its newest.
    let burst: Vec<_> = (11..23).map(|i| entry(i, &format!("e{i}"), None)).collect();
    assert_eq!(log(&mut ob, &burst), 12);
    let got = alarm_log(&path, &AlarmLogQuery::default()).unwrap();
    assert_eq!(events(&got), ["e18", "e19", "e20", "e21", "e22"]);
    assert_eq!(got.pruned, 18);
}

#[test]
fn a_bound_of_zero_turns_the_log_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut opts = OutboxOptions::new(&path, vec![]);
    opts.max_alarm_log = 0;
    let (mut ob, _) = Outbox::open(opts).unwrap();
    assert_eq!(log(&mut ob, &[entry(0, "queued", None)]), 0);
    assert_eq!(
        alarm_log(&path, &AlarmLogQuery::default()).unwrap().total,
        0
    );
}

#[test]
fn the_listing_filters_by_time_record_and_keeps_the_newest_under_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![]);
    let a = RecordId::derive(&["a"]);
    let b = RecordId::derive(&["b"]);
    log(
        &mut ob,
        &[
            entry(1_000, "queued", Some(a)),
            entry(2_000, "queued", Some(b)),
            entry(3_000, "attempt", Some(a)),
            entry(4_000, "handled", Some(a)),
            entry(5_000, "failing", Some(b)),
        ],
    );
    let q = |since: Option<i64>, limit: Option<usize>, record: Option<RecordId>| {
        events(
            &alarm_log(
                &path,
                &AlarmLogQuery {
                    since: since.map(at),
                    limit,
                    record,
                },
            )
            .unwrap(),
        )
    };
    assert_eq!(
        q(Some(3_000), None, None),
        ["attempt", "handled", "failing"]
    );
    assert_eq!(q(None, Some(2), None), ["handled", "failing"]);
    assert_eq!(q(None, None, Some(a)), ["queued", "attempt", "handled"]);
    assert_eq!(q(Some(2_000), Some(1), Some(b)), ["failing"]);
    assert_eq!(
        alarm_log(&path, &AlarmLogQuery::default()).unwrap().total,
        5
    );
}

#[test]
fn a_damaged_row_is_still_listed_and_long_text_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![]);
    let mut long = entry(1, "attempt", None);
    long.receiver = Some("r".repeat(1_000));
    long.detail
        .insert("reason".into(), json!("x".repeat(100_000)));
    log(&mut ob, &[entry(0, "queued", None), long]);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO alarm_log (at_ms, record_id, route, reference, event, receiver, detail)
             VALUES (2, x'0102', 'alarm', NULL, 'reset', NULL, '{not json');
             INSERT INTO alarm_log (at_ms, record_id, route, reference, event, receiver, detail)
             VALUES ('later', NULL, x'ff00', NULL, 'voice', NULL, x'fffe');
             INSERT INTO alarm_log (at_ms, record_id, route, reference, event, receiver, detail)
             VALUES (4, NULL, 'alarm', NULL, 'receipt', NULL, '[1, 2]');",
        )
        .unwrap();
    }
    let got = alarm_log(&path, &AlarmLogQuery::default()).unwrap();
    assert_eq!(
        events(&got),
        ["queued", "attempt", "reset", "voice", "receipt"]
    );
    let unreadable: Vec<bool> = got.entries.iter().map(|e| e.detail_unreadable).collect();
    assert_eq!(unreadable, [false, false, true, true, true]);
    assert_eq!(got.entries[2].entry.record, None, "a short id is no id");
    assert!(got.entries[3].entry.route.contains('\u{fffd}'));
    let bounded = &got.entries[1].entry;
    assert!(bounded.receiver.as_ref().unwrap().len() <= ALARM_LOG_TEXT_MAX_BYTES);
    assert!(bounded.detail["reason"].as_str().unwrap().len() < ALARM_LOG_DETAIL_MAX_BYTES);
    assert_eq!(bounded.detail["kind"], "fall");
}

#[test]
fn a_version_4_file_is_migrated_and_an_older_one_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    drop(open(&path, vec![]));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE alarm_log; PRAGMA user_version = 4;")
        .unwrap();
    drop(conn);
    // As a build before the log left it: nothing to list, no error.
    let got = alarm_log(&path, &AlarmLogQuery::default()).unwrap();
    assert_eq!((got.total, got.entries.len()), (0, 0));
    let mut ob = open(&path, vec![]);
    assert_eq!(stats(&path).unwrap().schema_version, SCHEMA_VERSION);
    log(&mut ob, &[entry(0, "queued", None)]);
    assert_eq!(
        alarm_log(&path, &AlarmLogQuery::default()).unwrap().total,
        1
    );
}

#[test]
fn the_alarm_log_of_a_newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    drop(open(&path, vec![]));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = alarm_log(&path, &AlarmLogQuery::default()).unwrap_err();
    assert!(matches!(err, OutboxError::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("newer hearth"));
    assert!(Outbox::open(OutboxOptions::new(&path, vec![])).is_err());
}

#[test]
fn the_alarm_log_of_a_missing_file_says_so() {
    let err = alarm_log(
        std::path::Path::new("/nonexistent/outbox.db"),
        &AlarmLogQuery::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no outbox database at"));
}
