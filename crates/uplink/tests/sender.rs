//! The route sender against scripted uplinks and a real outbox file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_model::*;
use hearth_outbox::*;
use hearth_uplink::*;

/// Answers from a script: each call pops one entry; `None` fails the batch, `Some(n)` answers
/// n outcomes (all delivered). An empty script delivers everything.
struct Scripted {
    script: Vec<Option<Option<usize>>>,
    seen: Arc<Mutex<Vec<RecordId>>>,
}

impl Uplink for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move {
            let step = if self.script.is_empty() {
                Some(None)
            } else {
                Some(self.script.remove(0))
            };
            let step = step.flatten();
            match step {
                None => {
                    self.seen
                        .lock()
                        .unwrap()
                        .extend(batch.iter().map(|c| c.record.id()));
                    Ok(vec![Outcome::Delivered; batch.len()])
                }
                Some(None) => Err(UplinkError::new("connection refused")),
                Some(Some(n)) => Ok(vec![Outcome::Delivered; n]),
            }
        })
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        jitter: 0.0,
    }
}

fn setup(dir: &std::path::Path, n: u64) -> (OutboxWriter, std::thread::JoinHandle<()>) {
    let route = RouteSpec {
        name: "hub".into(),
        categories: Category::ALL.to_vec(),
        retry: fast(),
        readings_only: false,
        alarms_only: false,
    };
    let (mut ob, _) = Outbox::open(OutboxOptions::new(dir.join("o.db"), vec![route])).unwrap();
    let recs: Vec<Record> = (0..n)
        .map(|i| {
            Record::Reading(
                Reading::builder(
                    DeviceId::new("sim", "d").unwrap(),
                    Mdc(150364),
                    Value::numeric(36.6),
                )
                .sequence(i)
                .build(Timestamp::now()),
            )
        })
        .collect();
    ob.append_all(&recs, Timestamp::now()).unwrap();
    OutboxWriter::spawn(ob, 1000).unwrap()
}

/// A sender running in the background until told to stop.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), SenderError>>,
}

fn spawn(mut sender: RouteSender) -> Running {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { sender.run(stop_rx, || {}).await });
    Running { stop, task }
}

impl Running {
    /// Waits until the outbox behind `writer` holds no record (panicking with `what` if that
    /// takes longer than `limit`), then stops the sender and waits for it to settle its batches.
    async fn stop_once_drained(self, writer: &OutboxWriter, limit: Duration, what: &str) {
        tokio::time::timeout(limit, async {
            while writer.stats().await.unwrap().records() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect(what);
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// How long a test waits for a route to drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `sender` until the outbox behind `writer` holds no record (at most `DRAIN_LIMIT`).
async fn run_until_drained(writer: &OutboxWriter, sender: RouteSender) {
    spawn(sender)
        .stop_once_drained(writer, DRAIN_LIMIT, "the route drained")
        .await;
}

/// The sender of route `hub` with the fast retry policy, polling an idle route every 5 ms.
fn hub_sender(writer: &OutboxWriter, uplink: Box<dyn Uplink>, batch_size: usize) -> RouteSender {
    RouteSender::new("hub", writer.clone(), uplink, batch_size, fast())
        .unwrap()
        .with_idle_poll(Duration::from_millis(5))
}

/// Every event the sender has sent so far.
fn received(events: &mut tokio::sync::mpsc::Receiver<SenderEvent>) -> Vec<SenderEvent> {
    let mut received = Vec::new();
    while let Ok(e) = events.try_recv() {
        received.push(e);
    }
    received
}

/// How many of `events` match `pattern`.
macro_rules! count {
    ($events:expr, $pattern:pat) => {
        $events.iter().filter(|e| matches!(e, $pattern)).count()
    };
}

async fn run_until_empty(writer: &OutboxWriter, uplink: Scripted) -> Vec<SenderEvent> {
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(1000);
    let sender = hub_sender(writer, Box::new(uplink), 10).with_events(events_tx);
    run_until_drained(writer, sender).await;
    received(&mut events_rx)
}

/// A `Scripted` uplink answering from `script`, and the ids of the records it delivered.
fn scripted(script: Vec<Option<Option<usize>>>) -> (Scripted, Arc<Mutex<Vec<RecordId>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let uplink = Scripted {
        script,
        seen: seen.clone(),
    };
    (uplink, seen)
}

/// Collects what the log writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Collects this thread's log (INFO and above, no colours) until the guard is dropped.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn failed_batches_are_retried_until_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 25);
    let (uplink, seen) = scripted(vec![Some(None), Some(None), Some(None)]);
    let events = tokio::time::timeout(Duration::from_secs(30), run_until_empty(&writer, uplink))
        .await
        .unwrap();
    let failures = count!(events, SenderEvent::Failed { .. });
    assert_eq!(failures, 3);
    let ids: HashSet<_> = seen.lock().unwrap().iter().copied().collect();
    assert_eq!(
        ids.len(),
        25,
        "every record delivered after the receiver came back"
    );
    let s = writer.stats().await.unwrap();
    assert_eq!(s.routes[0].delivered, 25);
}

#[tokio::test]
async fn wrong_number_of_answers_is_treated_as_a_failed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 10);
    let (uplink, seen) = scripted(vec![Some(Some(3))]);
    let events = tokio::time::timeout(Duration::from_secs(30), run_until_empty(&writer, uplink))
        .await
        .unwrap();
    assert!(
        matches!(&events[0], SenderEvent::Failed { error, .. } if error.contains("3 outcomes for a batch of 10"))
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        10,
        "all 10 sent again and delivered"
    );
    assert_eq!(writer.stats().await.unwrap().routes[0].delivered, 10);
}

#[tokio::test]
async fn restarted_sender_resends_what_was_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 5);
    let hub = writer.route("hub").unwrap();
    // A previous sender claimed everything and died before the receiver answered.
    assert_eq!(writer.claim(hub, 100).await.unwrap().len(), 5);
    let (uplink, seen) = scripted(vec![]);
    tokio::time::timeout(Duration::from_secs(30), run_until_empty(&writer, uplink))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn loopback_receiver_counts_resends_as_copies_not_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.db");
    let (writer, _t) = setup(dir.path(), 3);
    let hub = writer.route("hub").unwrap();
    let claimed = writer.claim(hub, 100).await.unwrap();
    let mut rx = loopback::LoopbackUplink::open("hub", &path).unwrap();
    rx.deliver(&claimed).await.unwrap();
    rx.deliver(&claimed).await.unwrap();
    let s = loopback::summary(&path).unwrap();
    assert_eq!(
        s,
        loopback::ReceivedSummary {
            unique: 3,
            resent: 3
        }
    );
}

/// Waits at a barrier on its first delivery (so the test hangs unless every uplink has a
/// batch in flight at once) and fails its second delivery if asked to.
struct Parallel {
    barrier: Arc<tokio::sync::Barrier>,
    calls: usize,
    fail_second: bool,
    seen: Arc<Mutex<Vec<RecordId>>>,
}

impl Uplink for Parallel {
    fn describe(&self) -> String {
        "parallel".into()
    }
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move {
            self.calls += 1;
            if self.calls == 1 {
                self.barrier.wait().await;
            }
            if self.calls == 2 && self.fail_second {
                return Err(UplinkError::new("connection reset"));
            }
            self.seen
                .lock()
                .unwrap()
                .extend(batch.iter().map(|c| c.record.id()));
            Ok(vec![Outcome::Delivered; batch.len()])
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_uplinks_have_a_batch_in_flight_each_and_deliver_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 95);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let mut uplinks: Vec<Box<dyn Uplink>> = (0..3)
        .map(|i| {
            Box::new(Parallel {
                barrier: barrier.clone(),
                calls: 0,
                fail_second: i == 0,
                seen: seen.clone(),
            }) as Box<dyn Uplink>
        })
        .collect();
    let first = uplinks.remove(0);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(1000);
    let sender = hub_sender(&writer, first, 10)
        .with_more_uplinks(uplinks)
        .with_events(events_tx);
    // Hangs (and times out) unless three batches were handed out before any was answered.
    run_until_drained(&writer, sender).await;
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(
        (seen.len(), unique.len()),
        (95, 95),
        "each record delivered once"
    );
    let failed = count!(received(&mut events_rx), SenderEvent::Failed { .. });
    assert_eq!(failed, 1, "the failed batch was retried");
    assert_eq!(writer.stats().await.unwrap().routes[0].delivered, 95);
}

/// Refuses the route a number of times, then delivers everything; counts its calls.
struct Refusing {
    refusals: usize,
    calls: Arc<Mutex<usize>>,
}

impl Uplink for Refusing {
    fn describe(&self) -> String {
        "refusing".into()
    }
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move {
            *self.calls.lock().unwrap() += 1;
            if self.refusals > 0 {
                self.refusals -= 1;
                return Err(UplinkError::route_refused(
                    "Resource Patient/12345678901 not found, specified in path: Observation.subject",
                ));
            }
            Ok(vec![Outcome::Delivered; batch.len()])
        })
    }
}

/// Issue 6: a refusal of the route itself (missing patient, 401/403, unknown profile) pauses
/// the route with one `Refused` event and status, keeps every record (no dead letter), and the
/// route resumes (event and status cleared) once the receiver takes records again.
#[tokio::test]
async fn issue_6_a_refused_route_pauses_keeps_its_records_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 25);
    let calls = Arc::new(Mutex::new(0));
    let uplink = Refusing {
        refusals: 3,
        calls: calls.clone(),
    };
    let (status_tx, mut status_rx) = tokio::sync::watch::channel(RouteStatus::Open);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(1000);
    let sender = hub_sender(&writer, Box::new(uplink), 10)
        .with_events(events_tx)
        .with_status(status_tx);
    let running = spawn(sender);
    // The status turns Refused (with a masked reason) before anything is delivered.
    tokio::time::timeout(Duration::from_secs(30), status_rx.changed())
        .await
        .unwrap()
        .unwrap();
    match status_rx.borrow_and_update().clone() {
        RouteStatus::Refused { reason } => {
            assert!(reason.contains("Observation.subject"), "{reason}");
            assert!(
                !reason.contains("12345678901"),
                "identifiers are masked: {reason}"
            );
        }
        s => panic!("{s:?}"),
    }
    running
        .stop_once_drained(&writer, DRAIN_LIMIT, "the route drained")
        .await;
    assert_eq!(
        *status_rx.borrow(),
        RouteStatus::Open,
        "cleared on delivery"
    );
    let events = received(&mut events_rx);
    let refused = count!(events, SenderEvent::Refused { .. });
    let resumed = count!(events, SenderEvent::Resumed { .. });
    assert_eq!((refused, resumed), (1, 1), "raised once, cleared once");
    let s = writer.stats().await.unwrap();
    assert_eq!(s.routes[0].delivered, 25, "every record kept and delivered");
    assert_eq!(
        s.dead_letters.values().sum::<u64>(),
        0,
        "nothing dead-lettered"
    );
    let calls = *calls.lock().unwrap();
    assert!(
        (6..=8).contains(&calls),
        "three refused attempts, then a few batches of 10: {calls}"
    );
}

/// Issue 6: the backoff the breaker computes. A route that never delivered doubles up to its
/// policy's max; one that has delivered before is capped at `RECOVERY_CAP`; two connections
/// failing in the same round count once; Retry-After still wins.
#[test]
fn issue_6_breaker_counts_a_failed_round_once_and_caps_the_wait_after_deliveries() {
    let policy = RetryPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(300),
        jitter: 0.0,
    };
    let mut b = Breaker::new(policy);
    let waits = |b: &mut Breaker, n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| b.failure(b.round(), None).unwrap().as_secs())
            .collect()
    };
    assert_eq!(
        waits(&mut b, 10),
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 300],
        "never delivered"
    );
    b.success();
    assert_eq!(
        waits(&mut b, 7),
        [1, 2, 4, 8, 10, 10, 10],
        "delivered before"
    );
    assert_eq!(RECOVERY_CAP, Duration::from_secs(10));
    b.success();
    // Two connections launched in the same round both fail: one failure.
    let round = b.round();
    assert_eq!(b.failure(round, None), Some(Duration::from_secs(1)));
    assert_eq!(b.failure(round, None), None);
    assert_eq!(b.failures(), 1);
    assert!(b.probing());
    assert_eq!(
        b.failure(b.round(), Some(Duration::from_secs(60))),
        Some(Duration::from_secs(60)),
        "Retry-After beyond the cap is honoured"
    );
    b.success();
    assert!(!b.probing());
}

/// Down for a number of deliveries (not a time, so the test does not depend on the machine's
/// speed), up otherwise; records what it saw.
struct Outage {
    state: Arc<Mutex<OutageState>>,
}

#[derive(Default)]
struct OutageState {
    calls: usize,
    /// Calls 1..=up_first succeed, the next `down` calls fail, the rest succeed.
    up_first: usize,
    down: usize,
    in_flight: usize,
    /// Most batches in flight at once and largest batch while the receiver was down, after
    /// the first round of the outage.
    max_in_flight_down: usize,
    max_batch_down: usize,
    delivered: HashSet<RecordId>,
    first_call_after_outage_delivered: Option<bool>,
}

impl Uplink for Outage {
    fn describe(&self) -> String {
        "outage".into()
    }
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move {
            let (call, down) = {
                let mut s = self.state.lock().unwrap();
                s.calls += 1;
                s.in_flight += 1;
                let call = s.calls;
                let down = call > s.up_first && call <= s.up_first + s.down;
                // The first round of the outage may have one batch per connection (2) launched
                // before the sender learned of the failure; every later call is a probe.
                if down && call > s.up_first + 2 {
                    s.max_in_flight_down = s.max_in_flight_down.max(s.in_flight);
                    s.max_batch_down = s.max_batch_down.max(batch.len());
                }
                (call, down)
            };
            // Let the other connection's batch overlap this one.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mut s = self.state.lock().unwrap();
            s.in_flight -= 1;
            if down {
                return Err(UplinkError::new("connection refused"));
            }
            if call == s.up_first + s.down + 1 {
                s.first_call_after_outage_delivered = Some(true);
            }
            s.delivered.extend(batch.iter().map(|c| c.record.id()));
            Ok(vec![Outcome::Delivered; batch.len()])
        })
    }
}

/// Issue 6: after an outage of a route that delivered before, the route probes with one small
/// batch on one connection, counts each failed round once, never waits longer than its
/// recovery cap, and delivers the whole backlog once the receiver is back, the first call
/// after the outage already delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_a_route_resumes_after_an_outage_with_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 400);
    let state = Arc::new(Mutex::new(OutageState {
        up_first: 2,
        down: 9,
        ..OutageState::default()
    }));
    let initial = Duration::from_millis(2);
    let cap = Duration::from_millis(16);
    let policy = RetryPolicy {
        initial,
        max: Duration::from_secs(60),
        jitter: 0.0,
    };
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(1000);
    let first = Box::new(Outage {
        state: state.clone(),
    });
    let second: Box<dyn Uplink> = Box::new(Outage {
        state: state.clone(),
    });
    let sender = RouteSender::new("hub", writer.clone(), first, 50, policy)
        .unwrap()
        .with_more_uplinks([second])
        .with_recovery_cap(cap)
        .with_events(events_tx)
        .with_idle_poll(Duration::from_millis(5));
    spawn(sender)
        .stop_once_drained(
            &writer,
            Duration::from_secs(60),
            "the route drained after the outage",
        )
        .await;

    let waits: Vec<_> = received(&mut events_rx)
        .into_iter()
        .filter_map(|e| match e {
            SenderEvent::Failed { failures, wait, .. } => Some((failures, wait)),
            _ => None,
        })
        .collect();
    {
        let s = state.lock().unwrap();
        assert_eq!(s.delivered.len(), 400, "every record delivered");
        assert_eq!(s.first_call_after_outage_delivered, Some(true));
        // 9 failed calls; the first round had both connections in flight, so 8 or 9 counted.
        assert!(
            (8..=9).contains(&waits.len()),
            "failed rounds counted once: {waits:?}"
        );
        for (failures, wait) in &waits {
            let doubled = initial * 2u32.pow(failures - 1);
            assert_eq!(*wait, doubled.min(cap), "failure {failures}: {waits:?}");
        }
        assert!(
            s.max_in_flight_down <= 1,
            "one probe at a time while the receiver is down"
        );
        assert!(
            s.max_batch_down <= PROBE_BATCH,
            "probes are small: {}",
            s.max_batch_down
        );
    }
    let stats = writer.stats().await.unwrap();
    assert_eq!(stats.routes[0].delivered, 400);
    assert_eq!(stats.dead_letters.values().sum::<u64>(), 0);
}

/// Answers each record of every batch with `answer`, named `name`.
struct PerRecord {
    name: &'static str,
    answer: fn(&Claimed) -> Outcome,
}

impl Uplink for PerRecord {
    fn describe(&self) -> String {
        self.name.into()
    }
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move { Ok(batch.iter().map(self.answer).collect()) })
    }
}

/// Rejects every record whose sequence number is odd, with a reason that echoes a value and a
/// national id, as a receiver might.
const REJECT_ODD: PerRecord = PerRecord {
    name: "reject-odd",
    answer: |c| match &c.record {
        Record::Reading(r) if r.sequence.unwrap_or(0) % 2 == 1 => Outcome::Rejected {
            reason: "FHIR receiver answered 422: value 36.6 not allowed for patient 12345678901"
                .into(),
        },
        _ => Outcome::Delivered,
    },
};

#[tokio::test(flavor = "current_thread")]
async fn issue_6_every_dead_letter_is_logged_once_with_route_record_and_reason() {
    let (logs, _guard) = LogBuffer::capture();
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 10);
    let sender = hub_sender(&writer, Box::new(REJECT_ODD), 4);
    run_until_drained(&writer, sender).await;
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("dead-lettered"))
        .collect();
    assert_eq!(lines.len(), 5, "one line per dead letter:\n{text}");
    for l in &lines {
        assert!(l.contains("route=hub") && l.contains("record="), "{l}");
        assert!(l.contains("FHIR receiver answered 422"), "{l}");
        assert!(!l.contains("36.6") && !l.contains("12345678901"), "{l}");
    }
    let s = writer.stats().await.unwrap();
    assert_eq!(s.dead_letters.values().sum::<u64>(), 5);
}

/// Skips every record, as a route with `unsupported = "skip"` does for what it cannot carry.
const SKIP_ALL: PerRecord = PerRecord {
    name: "skip-all",
    answer: |_| Outcome::Skipped {
        reason: "MDC 188748 has no VkpObservation mapping".into(),
    },
};

/// Issue 6: skipped records leave the route counted (`skipped:<route>`), reported in the
/// `Answered` event and logged once each, never silently and never as dead letters.
#[tokio::test(flavor = "current_thread")]
async fn issue_6_skipped_records_are_counted_and_logged() {
    let (logs, _guard) = LogBuffer::capture();
    let dir = tempfile::tempdir().unwrap();
    let (writer, _t) = setup(dir.path(), 6);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(100);
    let sender = hub_sender(&writer, Box::new(SKIP_ALL), 4).with_events(events_tx);
    run_until_drained(&writer, sender).await;
    let skipped: usize = received(&mut events_rx)
        .iter()
        .map(|e| match e {
            SenderEvent::Answered { skipped: n, .. } => *n,
            _ => 0,
        })
        .sum();
    assert_eq!(skipped, 6);
    let s = writer.stats().await.unwrap();
    assert_eq!(s.counter("skipped:hub"), 6);
    assert_eq!(s.dead_letters.values().sum::<u64>(), 0);
    let text = logs.text();
    let lines = text.lines().filter(|l| l.contains("skips it")).count();
    assert_eq!(lines, 6, "{text}");
}
