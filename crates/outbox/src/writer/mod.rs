//! The single writer: a thread that owns the [`Outbox`] and turns many small requests from
//! async tasks into few large transactions (group commit).
//!
//! Each request waits on a oneshot that is answered only after the transaction holding it
//! committed, so an `append` returning `Ok` means "durable" (DESIGN invariant 1). Requests
//! queue in a bounded channel: when the disk is slower than the sources, sources wait.
//!
//! Alarms first (issue 15): an append that carries an alarm or a technical alarm goes through
//! a second, small channel that the writer looks at before every transaction; what it finds
//! there is committed in its own transaction ahead of the queued bulk requests, which keep their
//! group commit. So an alarm waits for at most the one transaction in progress, never for the
//! backlog of readings queued before it. A source that awaits each append (every driver does)
//! keeps its own order; only appends of different callers are reordered. Test:
//! `tests::an_alarm_append_commits_before_the_queued_readings`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hearth_model::{Lane, Record, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};

use crate::reserve::DiskGuard;
use crate::{
    AlarmLogEntry, AppendOutcome, Claimed, CommitReport, Outbox, OutboxError, Outcome, RouteId,
    Stats, Ticket,
};

/// Why a request to the writer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WriterError {
    /// The transaction holding the request failed; nothing of it was stored.
    #[error("{message}")]
    Failed {
        /// The outbox error, formatted (it says what to do).
        message: String,
        /// Whether the same request may succeed later (disk full, busy).
        transient: bool,
    },
    /// The writer has stopped (shutdown in progress).
    #[error("the outbox writer has stopped (hearth is shutting down)")]
    Stopped,
}

impl WriterError {
    fn from_outbox(e: &OutboxError) -> Self {
        WriterError::Failed {
            message: e.to_string(),
            transient: e.is_transient(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WriterError::Failed {
                transient: true,
                ..
            }
        )
    }
}

/// A journal entry committed with an append: `entries` under (`source`, `seq`); entries of
/// `source` older than `keep_from` are dropped in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Whose journal.
    pub source: String,
    /// The entry's position (e.g. the first sequence number it covers).
    pub seq: i64,
    /// The driver's bytes.
    pub entries: Vec<u8>,
    /// Entries before this position are dropped.
    pub keep_from: i64,
}

/// The answer to an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// One outcome per record, in order.
    pub outcomes: Vec<AppendOutcome>,
    /// What the commit dropped to stay under the cap.
    pub report: CommitReport,
}

type Reply<T> = oneshot::Sender<Result<T, WriterError>>;

enum Command {
    Append {
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
        reply: Reply<Committed>,
    },
    Journal {
        source: String,
        reply: Reply<Vec<(i64, Vec<u8>)>>,
    },
    DeadLetterInput {
        source: String,
        raw: Vec<u8>,
        error: String,
        reply: Reply<()>,
    },
    Claim {
        route: RouteId,
        max: usize,
        reply: Reply<Vec<Claimed>>,
    },
    Settle {
        route: RouteId,
        answers: Vec<(Ticket, Outcome)>,
        reply: Reply<()>,
    },
    Expire {
        reply: Reply<[u64; 4]>,
    },
    Release {
        route: RouteId,
        reply: Reply<u64>,
    },
    Stats {
        reply: Reply<Stats>,
    },
    Cursor {
        source: String,
        reply: Reply<Option<i64>>,
    },
    Cursors {
        prefix: String,
        reply: Reply<Vec<(String, i64)>>,
    },
    Len {
        reply: Reply<u64>,
    },
    PutDevice {
        id: hearth_model::DeviceId,
        device: hearth_model::Device,
        reply: Reply<()>,
    },
    Devices {
        reply: Reply<Vec<hearth_model::Device>>,
    },
    LogAlarmEvents {
        entries: Vec<AlarmLogEntry>,
        reply: Reply<()>,
    },
    /// Wakes an idle writer after an urgent command was queued; does nothing else.
    Wake,
}

/// Whether an append goes ahead of the queued ones: it carries an alarm or a technical alarm.
fn urgent(records: &[Record]) -> bool {
    records
        .iter()
        .any(|r| matches!(r.lane(), Lane::Alarm | Lane::Technical))
}

/// Urgent commands that may wait at once (each caller awaits its own, so this is plenty).
const URGENT_CAPACITY: usize = 256;

impl Command {
    /// How much work the command adds to a transaction (records), for group-commit sizing.
    fn weight(&self) -> usize {
        match self {
            Command::Append { records, .. } => records.len().max(1),
            Command::Settle { answers, .. } => answers.len().max(1),
            Command::Claim { max, .. } => *max,
            Command::LogAlarmEvents { entries, .. } => entries.len().max(1),
            _ => 1,
        }
    }
}

/// A cheap, cloneable handle to the writer thread.
#[derive(Clone, Debug)]
pub struct OutboxWriter {
    tx: mpsc::Sender<Command>,
    /// Appends carrying alarms: taken before anything queued in `tx`.
    urgent: mpsc::Sender<Command>,
    commits: watch::Receiver<u64>,
    routes: Arc<Vec<(String, RouteId)>>,
    /// Alarms-only routes: their claims and settlements use the urgent channel, so an alarm
    /// committed ahead of sensor traffic is not then claimed behind it (issue 15 bench).
    alarm_routes: Arc<Vec<RouteId>>,
    transactions: Arc<AtomicU64>,
    alarms_only: Arc<AtomicBool>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl OutboxWriter {
    /// Move the outbox onto its own thread. `group_commit_max` bounds the records per
    /// transaction. The thread ends when every handle is dropped, after committing what it has.
    /// A full disk is only an error here; see [`OutboxWriter::spawn_with_reserve`].
    pub fn spawn(
        outbox: Outbox,
        group_commit_max: usize,
    ) -> Result<(Self, JoinHandle<()>), OutboxError> {
        Self::spawn_guarded(outbox, group_commit_max, DiskGuard::disabled())
    }

    /// Like [`OutboxWriter::spawn`], and keep a reserve file of `reserve_bytes` next to the
    /// database (`<db>.reserve`, created now and fsynced): when the disk is full, the reserve is
    /// deleted and only alarms, technical alarms and deliveries' bookkeeping are committed
    /// (others get the transient disk-full error) until free space is back; a `disk_full`
    /// technical alarm is stored on entry and cleared on exit (issue 6).
    pub fn spawn_with_reserve(
        outbox: Outbox,
        group_commit_max: usize,
        reserve_bytes: u64,
    ) -> Result<(Self, JoinHandle<()>), OutboxError> {
        let reserve = std::path::PathBuf::from(format!("{}.reserve", outbox.path().display()));
        let guard = DiskGuard::with_reserve(reserve, reserve_bytes);
        Self::spawn_guarded(outbox, group_commit_max, guard)
    }

    fn spawn_guarded(
        outbox: Outbox,
        group_commit_max: usize,
        guard: DiskGuard,
    ) -> Result<(Self, JoinHandle<()>), OutboxError> {
        let (tx, rx) = mpsc::channel(1024);
        let (urgent, urgent_rx) = mpsc::channel(URGENT_CAPACITY);
        let (commit_tx, commits) = watch::channel(0u64);
        let routes: Vec<(String, RouteId)> = outbox
            .route_names()
            .map(|n| outbox.route(n).map(|id| (n.to_owned(), id)))
            .collect::<Result<_, _>>()?;
        let alarm_routes = Arc::new(outbox.alarm_routes());
        let transactions = Arc::new(AtomicU64::new(0));
        let counter = transactions.clone();
        let alarms_only = Arc::new(AtomicBool::new(false));
        let mode = alarms_only.clone();
        let path = outbox.path().to_owned();
        let (ckpt_tx, ckpt_rx) = std::sync::mpsc::channel::<()>();
        let ckpt_path = path.clone();
        std::thread::Builder::new()
            .name("outbox-checkpoint".into())
            .spawn(move || checkpointer(&ckpt_path, &ckpt_rx))
            .map_err(|source| OutboxError::Io {
                what: "cannot start the outbox checkpoint thread for",
                path: path.clone(),
                source,
            })?;
        let handle = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || {
                let shared = Shared {
                    commits: commit_tx,
                    transactions: counter,
                    alarms_only: mode,
                };
                let channels = Channels {
                    rx,
                    urgent: urgent_rx,
                };
                run(outbox, channels, &shared, group_commit_max.max(1), guard);
                // Dropping the sender ends the checkpointer.
                drop(ckpt_tx);
            })
            .map_err(|source| OutboxError::Io {
                what: "cannot start the outbox writer thread for",
                path,
                source,
            })?;
        Ok((
            OutboxWriter {
                tx,
                urgent,
                commits,
                routes: Arc::new(routes),
                alarm_routes,
                transactions,
                alarms_only,
            },
            handle,
        ))
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, WriterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| WriterError::Stopped)?;
        rx.await.map_err(|_| WriterError::Stopped)?
    }

    /// Like `call`, ahead of the queued requests: the urgent channel, then a wake-up for an idle
    /// writer. When the main channel is full the writer is busy and looks at the urgent channel
    /// before its next transaction anyway, so the wake-up is only tried, never waited for.
    async fn call_urgent<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, WriterError> {
        let (reply, rx) = oneshot::channel();
        self.urgent
            .send(make(reply))
            .await
            .map_err(|_| WriterError::Stopped)?;
        let _ = self.tx.try_send(Command::Wake);
        rx.await.map_err(|_| WriterError::Stopped)?
    }

    /// Store records (and optionally a source cursor) durably. Returns after the commit.
    pub async fn append(
        &self,
        records: Vec<Record>,
        cursor: Option<(String, i64)>,
    ) -> Result<Committed, WriterError> {
        self.append_with_journal(records, cursor.into_iter().collect(), None)
            .await
    }

    /// Store records together with any number of source cursors (a driver's resume points and
    /// state) and optionally a journal entry of the source, all in one transaction. Returns
    /// after the commit.
    pub async fn append_with_journal(
        &self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    ) -> Result<Committed, WriterError> {
        // Alarms and technical alarms go ahead of the queued appends (issue 15).
        let ahead = urgent(&records);
        let make = |reply| Command::Append {
            records,
            cursors,
            journal,
            reply,
        };
        if ahead {
            self.call_urgent(make).await
        } else {
            self.call(make).await
        }
    }

    /// The committed journal of `source`, oldest entry first.
    pub async fn journal(&self, source: &str) -> Result<Vec<(i64, Vec<u8>)>, WriterError> {
        let source = source.to_owned();
        self.call(|reply| Command::Journal { source, reply }).await
    }

    /// Store what a device told about itself (table `device`, merged with what it told
    /// before). Returns after the commit.
    pub async fn put_device(
        &self,
        id: hearth_model::DeviceId,
        device: hearth_model::Device,
    ) -> Result<(), WriterError> {
        self.call(|reply| Command::PutDevice { id, device, reply })
            .await
    }

    /// Every device's stored facts.
    pub async fn devices(&self) -> Result<Vec<hearth_model::Device>, WriterError> {
        self.call(|reply| Command::Devices { reply }).await
    }

    /// Append entries to the alarm event log (REQUIREMENTS S3), group-committed with other
    /// requests; returns after the commit. The oldest entries beyond the bound
    /// ([`crate::OutboxOptions::max_alarm_log`]) are removed in the same transaction and
    /// counted. Admitted while the disk is full (alarms only): it is about alarms, and small.
    ///
    /// The caller composes each entry, `detail` included: **never health values** (see
    /// [`AlarmLogEntry`]).
    pub async fn log_alarm_events(&self, entries: Vec<AlarmLogEntry>) -> Result<(), WriterError> {
        if entries.is_empty() {
            return Ok(());
        }
        // About alarms, and small: ahead of queued bulk work like the alarms themselves.
        self.call_urgent(|reply| Command::LogAlarmEvents { entries, reply })
            .await
    }

    /// Keep input a driver could not parse, with its error (invariant 6).
    pub async fn dead_letter_input(
        &self,
        source: &str,
        raw: Vec<u8>,
        error: String,
    ) -> Result<(), WriterError> {
        let source = source.to_owned();
        self.call(|reply| Command::DeadLetterInput {
            source,
            raw,
            error,
            reply,
        })
        .await
    }

    /// Claim up to `max` due records of a route, highest lane first.
    pub async fn claim(&self, route: RouteId, max: usize) -> Result<Vec<Claimed>, WriterError> {
        let make = |reply| Command::Claim { route, max, reply };
        if self.alarm_routes.contains(&route) {
            self.call_urgent(make).await
        } else {
            self.call(make).await
        }
    }

    /// Apply a receiver's answers.
    pub async fn settle(
        &self,
        route: RouteId,
        answers: Vec<(Ticket, Outcome)>,
    ) -> Result<(), WriterError> {
        let make = |reply| Command::Settle {
            route,
            answers,
            reply,
        };
        if self.alarm_routes.contains(&route) {
            self.call_urgent(make).await
        } else {
            self.call(make).await
        }
    }

    /// Drop records past their retention.
    pub async fn expire(&self) -> Result<[u64; 4], WriterError> {
        self.call(|reply| Command::Expire { reply }).await
    }

    /// Make a route's in-flight deliveries pending again (its sender restarted).
    pub async fn release_in_flight(&self, route: RouteId) -> Result<u64, WriterError> {
        self.call(|reply| Command::Release { route, reply }).await
    }

    /// Statistics.
    pub async fn stats(&self) -> Result<Stats, WriterError> {
        self.call(|reply| Command::Stats { reply }).await
    }

    /// Records currently stored (from running totals; cheap).
    pub async fn stored(&self) -> Result<u64, WriterError> {
        self.call(|reply| Command::Len { reply }).await
    }

    /// A source cursor's committed value.
    pub async fn cursor(&self, source: &str) -> Result<Option<i64>, WriterError> {
        let source = source.to_owned();
        self.call(|reply| Command::Cursor { source, reply }).await
    }

    /// Every committed cursor whose key starts with `prefix`, in key order (a driver's state).
    pub async fn cursors(&self, prefix: &str) -> Result<Vec<(String, i64)>, WriterError> {
        let prefix = prefix.to_owned();
        self.call(|reply| Command::Cursors { prefix, reply }).await
    }

    /// The id of a configured route.
    pub fn route(&self, name: &str) -> Result<RouteId, OutboxError> {
        self.routes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .ok_or_else(|| OutboxError::UnknownRoute(name.to_owned()))
    }

    /// A receiver that changes after every commit that stored new records: senders wait on it
    /// instead of polling, so an alarm is picked up as soon as it is durable.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    /// Transactions committed so far (for benchmarks and diagnostics).
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Whether the disk is full and only alarms are being stored (see
    /// [`OutboxWriter::spawn_with_reserve`]).
    pub fn alarms_only(&self) -> bool {
        self.alarms_only.load(Ordering::Relaxed)
    }
}

/// The write-ahead log is kept at or below this size: `PRAGMA journal_size_limit` cuts it back
/// to this after each checkpoint, the checkpointer restarts it once it holds more, and truncates
/// it to nothing when the writer is idle (issue 6). Counted in the cap (`OutboxOptions::max_bytes`).
mod checkpoint;
mod thread;

pub(crate) use checkpoint::AUTOCHECKPOINT_PAGES;
pub use checkpoint::WAL_LIMIT_BYTES;
use checkpoint::*;
use thread::*;

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::{
        AlarmState, DeviceId, Mdc, Reading, Severity, TechnicalAlarm, TechnicalKind, Value,
    };

    fn append(records: Vec<Record>) -> Command {
        Command::Append {
            records,
            cursors: vec![("src".into(), 1)],
            journal: None,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn alarms_only_admits_alarms_and_bookkeeping_only() {
        let dir = tempfile::tempdir().unwrap();
        let hub = crate::RouteSpec {
            name: "hub".into(),
            categories: hearth_model::Category::ALL.to_vec(),
            retry: crate::RetryPolicy::default(),
            readings_only: false,
            alarms_only: false,
        };
        let (outbox, _) = Outbox::open(crate::OutboxOptions::new(
            dir.path().join("o.db"),
            vec![hub],
        ))
        .unwrap();
        let route = outbox.route("hub").unwrap();
        let mut guard = DiskGuard::with_reserve(dir.path().join("o.db.reserve"), 4096);
        let reading = Record::Reading(
            Reading::builder(
                DeviceId::new("sim", "1").unwrap(),
                Mdc(1),
                Value::numeric(1.0),
            )
            .sequence(1)
            .build(Timestamp::now()),
        );
        let technical = Record::Technical(TechnicalAlarm::new(
            "x",
            TechnicalKind::LowBattery,
            Severity::Minor,
            AlarmState::Raised,
            "m",
            Timestamp::now(),
        ));
        let dead = || Command::DeadLetterInput {
            source: "s".into(),
            raw: vec![1],
            error: "e".into(),
            reply: oneshot::channel().0,
        };
        let settle = Command::Settle {
            route,
            answers: Vec::new(),
            reply: oneshot::channel().0,
        };
        let claim = Command::Claim {
            route,
            max: 10,
            reply: oneshot::channel().0,
        };
        // Healthy: everything goes.
        assert!(admitted(&guard, &append(vec![reading.clone()])));
        assert!(admitted(&guard, &dead()));
        guard.disk_full(std::time::Instant::now());
        // Full: alarms, technical alarms and the deliveries' bookkeeping only.
        assert!(admitted(&guard, &append(vec![technical.clone()])));
        assert!(!admitted(&guard, &append(vec![reading.clone()])));
        assert!(!admitted(&guard, &append(vec![technical, reading])));
        assert!(!admitted(&guard, &dead()));
        assert!(admitted(&guard, &settle));
        assert!(admitted(&guard, &claim));
        assert!(admitted(
            &guard,
            &Command::LogAlarmEvents {
                entries: vec![crate::AlarmLogEntry::new(
                    Timestamp::now(),
                    "alarm",
                    "attempt"
                )],
                reply: oneshot::channel().0,
            }
        ));
        assert!(admitted(
            &guard,
            &Command::Expire {
                reply: oneshot::channel().0
            }
        ));
    }

    /// Issue 15: with the disk full (alarms only), what happens to alarms is still logged,
    /// while a reading is refused in the same group.
    #[test]
    fn alarms_only_still_commits_the_alarm_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let hub = crate::RouteSpec {
            name: "hub".into(),
            categories: hearth_model::Category::ALL.to_vec(),
            retry: crate::RetryPolicy::default(),
            readings_only: false,
            alarms_only: false,
        };
        let (mut outbox, _) = Outbox::open(crate::OutboxOptions::new(&path, vec![hub])).unwrap();
        let mut guard = DiskGuard::with_reserve(dir.path().join("o.db.reserve"), 4096);
        guard.disk_full(std::time::Instant::now());
        let mut state = State {
            guard,
            failing: false,
        };
        let shared = Shared {
            commits: watch::channel(0).0,
            transactions: Arc::new(AtomicU64::new(0)),
            alarms_only: Arc::new(AtomicBool::new(true)),
        };
        let reading = Record::Reading(
            Reading::builder(
                DeviceId::new("sim", "1").unwrap(),
                Mdc(1),
                Value::numeric(1.0),
            )
            .sequence(1)
            .build(Timestamp::now()),
        );
        let (log_reply, mut logged) = oneshot::channel();
        let (append_reply, mut appended) = oneshot::channel();
        let mut entry = crate::AlarmLogEntry::new(Timestamp::now(), "alarm", "attempt");
        entry.receiver = Some("primary".into());
        process(
            &mut outbox,
            vec![
                Command::Append {
                    records: vec![reading],
                    cursors: Vec::new(),
                    journal: None,
                    reply: append_reply,
                },
                Command::LogAlarmEvents {
                    entries: vec![entry],
                    reply: log_reply,
                },
            ],
            &shared,
            &mut state,
        );
        assert!(matches!(logged.try_recv(), Ok(Ok(()))));
        assert!(matches!(appended.try_recv(), Ok(Err(e)) if e.is_transient()));
        let log = outbox.alarm_log(&crate::AlarmLogQuery::default()).unwrap();
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.entries[0].entry.event, "attempt");
        assert_eq!(log.entries[0].entry.receiver.as_deref(), Some("primary"));
        assert_eq!(
            outbox.len(),
            1,
            "only the disk_full technical alarm is stored"
        );
    }

    /// Issue 15: with many large reading appends queued, an append carrying an alarm (queued
    /// after them, as `append_with_journal` queues it) is committed first, in a transaction of
    /// its own; the readings keep their group commit. Observed through the commit order (the
    /// outbox's `seq`) and the transaction count, not timing.
    #[test]
    fn an_alarm_append_commits_before_the_queued_readings() {
        use hearth_model::{Alarm, AlarmKind, Category};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let hub = crate::RouteSpec {
            name: "hub".into(),
            categories: Category::ALL.to_vec(),
            retry: crate::RetryPolicy::default(),
            readings_only: false,
            alarms_only: false,
        };
        let (outbox, _) = Outbox::open(crate::OutboxOptions::new(&path, vec![hub])).unwrap();
        let (tx, rx) = mpsc::channel(1024);
        let (urgent_tx, urgent_rx) = mpsc::channel(URGENT_CAPACITY);
        let device = DeviceId::new("sim", "1").unwrap();
        let mut readings = Vec::new();
        for k in 0..9u64 {
            let records = (0..200u64)
                .map(|i| {
                    Record::Reading(
                        Reading::builder(device.clone(), Mdc(1), Value::numeric(1.0))
                            .sequence(k * 1000 + i)
                            .build(Timestamp::now()),
                    )
                })
                .collect::<Vec<_>>();
            assert!(!urgent(&records));
            let (reply, answer) = oneshot::channel();
            tx.try_send(Command::Append {
                records,
                cursors: Vec::new(),
                journal: None,
                reply,
            })
            .unwrap();
            readings.push(answer);
        }
        let now = Timestamp::now();
        let alarm = vec![Record::Alarm(Alarm::new(
            DeviceId::new("zigbee", "sos").unwrap(),
            AlarmKind::Emergency,
            AlarmState::Raised,
            now,
            now,
            Category::Health,
            None,
            Some(1),
        ))];
        assert!(urgent(&alarm));
        let (reply, mut alarm_answer) = oneshot::channel();
        urgent_tx
            .try_send(Command::Append {
                records: alarm,
                cursors: vec![("alarm-source".into(), 1)],
                journal: None,
                reply,
            })
            .unwrap();
        tx.try_send(Command::Wake).unwrap();
        drop((tx, urgent_tx));
        let shared = Shared {
            commits: watch::channel(0).0,
            transactions: Arc::new(AtomicU64::new(0)),
            alarms_only: Arc::new(AtomicBool::new(false)),
        };
        let channels = Channels {
            rx,
            urgent: urgent_rx,
        };
        run(outbox, channels, &shared, 500, DiskGuard::disabled());
        assert!(matches!(alarm_answer.try_recv(), Ok(Ok(_))));
        for mut r in readings {
            assert!(matches!(r.try_recv(), Ok(Ok(_))));
        }
        // One transaction for the alarm, three for the readings (three appends of 200 each).
        assert_eq!(shared.transactions.load(Ordering::Relaxed), 4);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let lanes: Vec<i64> = conn
            .prepare("SELECT lane FROM item ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lanes.len(), 1 + 9 * 200);
        assert!(
            lanes[1..].iter().all(|l| *l != lanes[0]),
            "the alarm is committed first, the readings after it"
        );
    }
}
