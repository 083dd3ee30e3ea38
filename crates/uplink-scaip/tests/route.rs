//! The alarm route end to end inside the process: a real outbox with an alarms-only route,
//! the route sender, `ScaipUplink` and scripted centres. Issue 15: only snu=0 settles an alarm,
//! an alarm no centre handles stays queued and is tried again with the same ref, a centre that
//! holds one alarm does not hold up the next, technical alarms the centre does not take are
//! skipped, and readings never reach the route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_model::{
    Alarm, AlarmKind, AlarmState, Category, DeviceId, Mdc, Reading, Record, Severity,
    TechnicalAlarm, TechnicalKind, Timestamp, Value,
};
use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};
use hearth_uplink::{RouteSender, Uplink};
use hearth_uplink_scaip::{
    AlarmEvent, AlarmProtocol, BoxFuture, CentreAnswer, Mapping, Mrq, ProtocolError, Receiver, Ref,
    ScaipUplink, SessionPolicy, Verdict,
};

/// A centre answering each ref from a per-ref script (default: handled), recording requests.
#[derive(Default)]
struct Centre {
    scripts: Mutex<HashMap<Ref, VecDeque<Verdict>>>,
    default: Mutex<Option<Verdict>>,
    got: Mutex<Vec<Mrq>>,
}

impl Centre {
    fn answering(default: Option<Verdict>) -> Arc<Self> {
        let c = Arc::new(Self::default());
        *c.default.lock().unwrap() = default;
        c
    }
    fn refs(&self) -> Vec<Ref> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| m.reference.clone())
            .collect()
    }
}

impl AlarmProtocol for Centre {
    fn describe(&self) -> String {
        "scripted centre".into()
    }
    fn exchange<'a>(
        &'a self,
        request: &'a Mrq,
        wait: Duration,
    ) -> BoxFuture<'a, Result<CentreAnswer, ProtocolError>> {
        Box::pin(async move {
            self.got.lock().unwrap().push(request.clone());
            let reference = request.reference.clone().unwrap();
            let scripted = self
                .scripts
                .lock()
                .unwrap()
                .get_mut(&reference)
                .and_then(VecDeque::pop_front);
            let verdict = scripted.or(*self.default.lock().unwrap());
            match verdict {
                Some(verdict) => Ok(CentreAnswer {
                    reference,
                    verdict,
                    reason: None,
                    voice: None,
                    heartbeat: None,
                }),
                None => {
                    tokio::time::sleep(wait).await;
                    Err(ProtocolError::NoAnswer(wait))
                }
            }
        })
    }
    fn notify<'a>(&'a self, request: &'a Mrq) -> BoxFuture<'a, Result<(), ProtocolError>> {
        self.got.lock().unwrap().push(request.clone());
        Box::pin(async { Ok(()) })
    }
}

fn sos(seq: u64) -> Record {
    Record::Alarm(Alarm::new(
        DeviceId::new("zigbee", "0x00158d0001a2b3c4").unwrap(),
        AlarmKind::Emergency,
        AlarmState::Raised,
        Timestamp::from_unix_millis(1_700_000_000_000 + seq as i64),
        Timestamp::now(),
        Category::Health,
        None,
        Some(seq),
    ))
}

fn reading() -> Record {
    Record::Reading(
        Reading::builder(
            DeviceId::new("sim", "t").unwrap(),
            Mdc(150364),
            Value::numeric(36.6),
        )
        .sequence(1)
        .build(Timestamp::now()),
    )
}

fn technical(kind: TechnicalKind) -> Record {
    Record::Technical(TechnicalAlarm::new(
        "outbox",
        kind,
        Severity::Critical,
        AlarmState::Raised,
        "x",
        Timestamp::now(),
    ))
}

fn writer(dir: &std::path::Path, records: &[Record]) -> OutboxWriter {
    let route = RouteSpec {
        name: "centre".into(),
        categories: Category::ALL.to_vec(),
        retry: RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            jitter: 0.0,
        },
        readings_only: false,
        alarms_only: true,
    };
    let (mut ob, _) = Outbox::open(OutboxOptions::new(dir.join("o.db"), vec![route])).unwrap();
    ob.append_all(records, Timestamp::now()).unwrap();
    OutboxWriter::spawn(ob, 100).unwrap().0
}

fn policy() -> SessionPolicy {
    SessionPolicy {
        answer_timeout: Duration::from_millis(300),
        resend_every: Duration::from_millis(100),
        ..SessionPolicy::default()
    }
}

/// Runs the route with `connections` uplinks over `receivers` until the outbox is empty.
async fn drain(
    writer: &OutboxWriter,
    receivers: Vec<Receiver>,
    connections: usize,
) -> Vec<AlarmEvent> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    let observer: hearth_uplink_scaip::AlarmObserver =
        Arc::new(move |ev: &AlarmEvent| e.lock().unwrap().push(ev.clone()));
    let make = || -> Box<dyn Uplink> {
        Box::new(ScaipUplink::new(
            receivers.clone(),
            Mapping::new("12345"),
            policy(),
            observer.clone(),
        ))
    };
    let mut sender = RouteSender::new(
        "centre",
        writer.clone(),
        make(),
        10,
        RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            jitter: 0.0,
        },
    )
    .unwrap()
    .with_more_uplinks((1..connections).map(|_| make()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { sender.run(stop_rx, || {}).await });
    tokio::time::timeout(Duration::from_secs(60), async {
        while writer.stats().await.unwrap().records() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the alarm route drained");
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    events.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_reach_the_centre_and_readings_never_reach_the_route() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path(), &[reading(), sos(1), sos(2)]);
    let centre = Centre::answering(Some(Verdict::Handled));
    let receivers = vec![Receiver {
        name: "arc".into(),
        protocol: centre.clone(),
    }];
    let events = drain(&w, receivers, 1).await;
    assert_eq!(
        centre.got.lock().unwrap().len(),
        2,
        "two alarms, no reading"
    );
    let handled = events
        .iter()
        .filter(|e| matches!(e, AlarmEvent::Handled { .. }))
        .count();
    assert_eq!(handled, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_nobody_handles_stays_queued_and_is_resent_with_the_same_ref() {
    let dir = tempfile::tempdir().unwrap();
    let alarm = sos(7);
    let w = writer(dir.path(), std::slice::from_ref(&alarm));
    // Busy for the first two rounds, then handled.
    let centre = Centre::answering(Some(Verdict::Handled));
    let reference = hearth_uplink_scaip::mapping::reference_for(&alarm.id());
    centre.scripts.lock().unwrap().insert(
        reference.clone(),
        VecDeque::from([Verdict::Busy, Verdict::Busy]),
    );
    let receivers = vec![Receiver {
        name: "arc".into(),
        protocol: centre.clone(),
    }];
    let events = drain(&w, receivers, 1).await;
    assert_eq!(
        centre.refs(),
        vec![reference.clone(); 3],
        "same ref on every round"
    );
    let failing = events
        .iter()
        .filter(|e| matches!(e, AlarmEvent::Failing { .. }))
        .count();
    assert_eq!(failing, 2, "each round nobody handled it is reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_primary_hands_over_to_the_alternative_with_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path(), &[sos(3)]);
    let silent = Centre::answering(None);
    let alternative = Centre::answering(Some(Verdict::Handled));
    let receivers = vec![
        Receiver {
            name: "primary".into(),
            protocol: silent.clone(),
        },
        Receiver {
            name: "alternative".into(),
            protocol: alternative.clone(),
        },
    ];
    let events = drain(&w, receivers, 1).await;
    let kinds: Vec<_> = silent
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.message_type)
        .collect();
    assert_eq!(
        kinds.last(),
        Some(&hearth_uplink_scaip::MessageType::Reset),
        "{kinds:?}"
    );
    assert_eq!(alternative.got.lock().unwrap().len(), 1);
    assert!(
        events.iter().any(
            |e| matches!(e, AlarmEvent::Handled { receiver, .. } if receiver == "alternative")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn technical_alarms_the_centre_does_not_take_are_skipped_and_the_others_sent() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(
        dir.path(),
        &[
            technical(TechnicalKind::DiskFull),
            technical(TechnicalKind::PowerLoss),
        ],
    );
    let centre = Centre::answering(Some(Verdict::Handled));
    let receivers = vec![Receiver {
        name: "arc".into(),
        protocol: centre.clone(),
    }];
    drain(&w, receivers, 1).await;
    let sent = centre.got.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].status,
        Some(hearth_uplink_scaip::mapping::stc::MAINS_FAILURE)
    );
    let stats = w.stats().await.unwrap();
    assert_eq!(
        stats.counters.get("skipped:centre"),
        Some(&1),
        "{:?}",
        stats.counters
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_on_hold_does_not_hold_up_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = sos(10);
    let second = sos(11);
    let w = writer(dir.path(), std::slice::from_ref(&first));
    let centre = Centre::answering(Some(Verdict::Handled));
    // The first alarm is held once (≥ 5 s before its resend); the second is handled at once.
    centre.scripts.lock().unwrap().insert(
        hearth_uplink_scaip::mapping::reference_for(&first.id()),
        VecDeque::from([Verdict::Hold]),
    );
    let receivers = vec![Receiver {
        name: "arc".into(),
        protocol: centre.clone(),
    }];
    let w2 = w.clone();
    let second_c = second.clone();
    // The second alarm arrives while the first is on hold.
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        w2.append(vec![second_c], None).await.unwrap();
    });
    let events = drain(&w, receivers, 4).await;
    late.await.unwrap();
    let order: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AlarmEvent::Handled { record, .. } => Some(*record),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![second.id(), first.id()],
        "the held alarm is handled last"
    );
}
