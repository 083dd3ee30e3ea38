//! Black-box tests of the harness: the real outbox behind it, the simulated full disk, and
//! driver runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hearth_driver_api::{BoxFuture, Driver, DriverContext, DriverError};
use hearth_model::{
    Alarm, AlarmKind, AlarmState, Category, DeviceId, Lane, Mdc, Reading, Record, Timestamp, Ucum,
    Value,
};
use hearth_test_kit::{Harness, RunEnd, RunLimit};

const TIMEOUT: Duration = Duration::from_secs(60);

fn reading(seq: u64) -> Record {
    Record::Reading(
        Reading::builder(
            DeviceId::new("test", "a").unwrap(),
            Mdc(150_364),
            Value::numeric(36.5),
        )
        .unit(Ucum::new("Cel"))
        .device_time(Timestamp::from_unix_millis(1_767_225_600_000 + seq as i64))
        .sequence(seq)
        .build(Timestamp::now()),
    )
}

fn alarm() -> Record {
    Record::Alarm(Alarm::new(
        DeviceId::new("test", "button").unwrap(),
        AlarmKind::Emergency,
        AlarmState::Raised,
        Timestamp::from_unix_millis(1_767_225_600_000),
        Timestamp::now(),
        Category::Health,
        None,
        Some(1),
    ))
}

#[tokio::test]
async fn storage_full_stores_nothing_and_recovers() {
    tokio::time::timeout(TIMEOUT, async {
        let h = Harness::new().unwrap();
        let ingest = h.ingest();
        h.set_storage_full(true).await.unwrap();

        let err = ingest
            .submit(vec![reading(1)], Some(("test:a".into(), 1)))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "a full disk is retriable: {err}");
        assert!(err.to_string().contains("disk full"), "{err}");
        let err = ingest
            .dead_letter("test", vec![1, 2, 3], "bad".into())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        let s = h.stats().unwrap();
        assert_eq!(s.records(), 0, "nothing of the failed batch was stored");
        assert!(
            s.cursors.is_empty(),
            "the cursor did not move, and the kit's switch is hidden: {:?}",
            s.cursors
        );
        assert!(s.dead_letters.is_empty());

        // A cursor alone still fits, as on a nearly full disk.
        ingest
            .submit(Vec::new(), Some(("test:b".into(), 7)))
            .await
            .unwrap();
        assert_eq!(h.cursor("test:b").await.unwrap(), Some(7));

        h.set_storage_full(false).await.unwrap();
        ingest
            .submit(vec![reading(1)], Some(("test:a".into(), 1)))
            .await
            .unwrap();
        let s = h.stats().unwrap();
        assert_eq!(s.records(), 1);
        assert_eq!(s.cursors.get("test:a"), Some(&1));
        // Closing waits for the writer thread, which ends when the last handle is dropped.
        drop(ingest);
        h.close().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn records_are_read_without_being_consumed() {
    tokio::time::timeout(TIMEOUT, async {
        let h = Harness::new().unwrap();
        h.ingest()
            .submit(vec![reading(1), reading(2), alarm()], None)
            .await
            .unwrap();
        let first = h.records().await.unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].lane(), Lane::Alarm, "highest lane first");
        let again = h.records().await.unwrap();
        assert_eq!(first, again, "reading them consumed nothing");
        let s = h.stats().unwrap();
        assert_eq!(s.routes[0].name, hearth_test_kit::ROUTE);
        assert!(s.routes[0].lanes.iter().all(|(_, l)| l.in_flight == 0));
        h.close().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn context_stops_when_the_harness_stops() {
    tokio::time::timeout(TIMEOUT, async {
        let h = Harness::new().unwrap();
        let ctx = h.context();
        assert!(!ctx.is_stopping());
        h.stop();
        ctx.stopping().await;
        assert!(ctx.is_stopping());
    })
    .await
    .unwrap();
}

/// Submits one reading, then behaves as told.
struct Scripted {
    then: Then,
}

#[derive(Clone, Copy)]
enum Then {
    WaitForStop,
    Panic,
    Fail,
}

impl Driver for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            ctx.ingest.submit(vec![reading(1)], None).await?;
            match self.then {
                Then::WaitForStop => {
                    ctx.stopping().await;
                    Ok(())
                }
                Then::Panic => panic!("scripted driver panics on purpose"),
                Then::Fail => Err(DriverError::Link("scripted link failure".into())),
            }
        })
    }
}

#[tokio::test]
async fn runs_end_when_quiet_and_report_panics_and_errors() {
    tokio::time::timeout(TIMEOUT, async {
        let h = Harness::new().unwrap();
        let limit = RunLimit::until_quiet(Duration::from_millis(100), Duration::from_secs(10));

        let r = h
            .run(
                Scripted {
                    then: Then::WaitForStop,
                },
                limit,
            )
            .await;
        assert_eq!(r.end, RunEnd::Quiet);
        assert!(r.problems().is_empty(), "{:?}", r.problems());

        // These end on their own; a long quiet period keeps a slow machine from ending them
        // first.
        let limit = RunLimit::until_quiet(Duration::from_secs(5), Duration::from_secs(10));
        let r = h.run(Scripted { then: Then::Panic }, limit).await;
        assert!(
            matches!(&r.end, RunEnd::Panicked(m) if m.contains("on purpose")),
            "{r:?}"
        );
        assert!(r.problems()[0].contains("must never panic"), "{r:?}");

        let r = h.run(Scripted { then: Then::Fail }, limit).await;
        assert!(
            matches!(&r.end, RunEnd::Failed(m) if m.contains("scripted link failure")),
            "{r:?}"
        );

        let r = h
            .run(
                Scripted {
                    then: Then::WaitForStop,
                },
                Duration::from_millis(50),
            )
            .await;
        assert_eq!(r.end, RunEnd::TimeLimit);
        assert_eq!(
            h.records().await.unwrap().len(),
            1,
            "the same reading, stored once"
        );
        h.close().await.unwrap();
    })
    .await
    .unwrap();
}
