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
        self.call(|reply| Command::LogAlarmEvents { entries, reply })
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
        self.call(|reply| Command::Claim { route, max, reply })
            .await
    }

    /// Apply a receiver's answers.
    pub async fn settle(
        &self,
        route: RouteId,
        answers: Vec<(Ticket, Outcome)>,
    ) -> Result<(), WriterError> {
        self.call(|reply| Command::Settle {
            route,
            answers,
            reply,
        })
        .await
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
pub const WAL_LIMIT_BYTES: u64 = 4 << 20;

/// The writer connection's own automatic checkpoint threshold (pages): a safety net only.
pub(crate) const AUTOCHECKPOINT_PAGES: u32 = 20_000;

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The WAL's limit in frames (4 KiB pages). Past half of it the checkpointer looks twice as
/// often: five times as often, so that the writer's RESTART ([`bound_wal`]) finds little left
/// to copy. The checkpointer itself no longer restarts the WAL: its RESTART had to wait for a
/// moment without a writer while holding the checkpoint lock, which a busy writer never left it
/// (and the writer's own restart then found the lock taken); the WAL grew to 40–87 MB (issue 6).
const WAL_RESTART_FRAMES: i64 = (WAL_LIMIT_BYTES / 4096) as i64;

/// Copies committed WAL frames into the database file on a connection of its own, so the
/// writer's commits never wait for a checkpoint (SQLite's automatic checkpoint would run inside
/// the commit that crosses the threshold and stall every source waiting for that commit).
/// A PASSIVE checkpoint never blocks the writer; a WAL that did not change for a whole tick
/// (the writer is idle) gets a TRUNCATE checkpoint, which leaves an empty file: an idle gateway
/// keeps no WAL on its SD card. Under load, TRUNCATE would cost every commit a metadata update
/// of a growing file (measured: 60–120 ms commit stalls), so it waits for a pause. Ends when `stop` disconnects. Failures are logged and
/// retried: a missed checkpoint costs WAL size, never data.
fn checkpointer(path: &std::path::Path, stop: &std::sync::mpsc::Receiver<()>) {
    let conn = match rusqlite::Connection::open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "outbox checkpointer cannot open the database; SQLite's automatic checkpoint takes over");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let _ = conn.execute_batch(&format!("PRAGMA journal_size_limit = {WAL_LIMIT_BYTES};"));
    // Frames in the WAL at the previous tick: the same count again means no commit since.
    let mut last_log = -1i64;
    let mut tick = CHECKPOINT_EVERY;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        let mode = match &passive {
            Ok((log, done)) if *log > 0 && *log == last_log && done == log => Some("TRUNCATE"),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "outbox checkpoint skipped; will retry");
                None
            }
        };
        last_log = passive.as_ref().map_or(-1, |(log, _)| *log);
        // A WAL past half its limit is growing fast: look again sooner.
        tick = if last_log > WAL_RESTART_FRAMES / 2 {
            CHECKPOINT_EVERY / 5
        } else {
            CHECKPOINT_EVERY
        };
        if let Some(mode) = mode {
            let sql = format!("PRAGMA wal_checkpoint({mode})");
            match conn.query_row(&sql, [], |r| r.get::<_, i64>(1)) {
                Ok(log) if mode == "TRUNCATE" => last_log = log,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, mode, "outbox WAL checkpoint failed; will retry")
                }
            }
        }
    }
}

/// Apply one command inside the batch; on failure still hand back its reply channel.
fn apply(
    batch: &mut crate::Batch<'_>,
    cmd: Command,
    now: Timestamp,
) -> Result<Pending, Box<(OutboxError, Pending)>> {
    match cmd {
        Command::Append {
            records,
            cursors,
            journal,
            reply,
        } => {
            let mut outcomes = Vec::with_capacity(records.len());
            for r in &records {
                match batch.append(r, now) {
                    Ok(o) => outcomes.push(o),
                    Err(e) => return Err(Box::new((e, Pending::Append(reply, outcomes)))),
                }
            }
            for (source, value) in cursors {
                if let Err(e) = batch.set_cursor(&source, value) {
                    return Err(Box::new((e, Pending::Append(reply, outcomes))));
                }
            }
            if let Some(j) = journal
                && let Err(e) = batch.put_journal(&j.source, j.seq, &j.entries, j.keep_from)
            {
                return Err(Box::new((e, Pending::Append(reply, outcomes))));
            }
            Ok(Pending::Append(reply, outcomes))
        }
        Command::DeadLetterInput {
            source,
            raw,
            error,
            reply,
        } => match batch.dead_letter_input(&source, &raw, &error, now) {
            Ok(()) => Ok(Pending::Unit(reply)),
            Err(e) => Err(Box::new((e, Pending::Unit(reply)))),
        },
        Command::Claim { route, max, reply } => match batch.claim(route, max, now) {
            Ok(c) => Ok(Pending::Claim(reply, c)),
            Err(e) => Err(Box::new((e, Pending::Claim(reply, Vec::new())))),
        },
        Command::Settle {
            route,
            answers,
            reply,
        } => match batch.settle(route, &answers, now) {
            Ok(()) => Ok(Pending::Unit(reply)),
            Err(e) => Err(Box::new((e, Pending::Unit(reply)))),
        },
        Command::Expire { reply } => match batch.expire(now) {
            Ok(n) => Ok(Pending::Expire(reply, n)),
            Err(e) => Err(Box::new((e, Pending::Expire(reply, [0; 4])))),
        },
        Command::PutDevice { id, device, reply } => match batch.put_device(&id, &device, now) {
            Ok(()) => Ok(Pending::Unit(reply)),
            Err(e) => Err(Box::new((e, Pending::Unit(reply)))),
        },
        Command::LogAlarmEvents { entries, reply } => match batch.log_alarm_events(&entries) {
            Ok(_) => Ok(Pending::Unit(reply)),
            Err(e) => Err(Box::new((e, Pending::Unit(reply)))),
        },
        other => Ok(unanswered(other)),
    }
}

/// The reply slot of a command that will only be answered with the batch's error.
fn unanswered(cmd: Command) -> Pending {
    match cmd {
        Command::Append { reply, .. } => Pending::Append(reply, Vec::new()),
        Command::DeadLetterInput { reply, .. }
        | Command::Settle { reply, .. }
        | Command::PutDevice { reply, .. }
        | Command::LogAlarmEvents { reply, .. } => Pending::Unit(reply),
        Command::Devices { reply } => Pending::Devices(reply),
        Command::Claim { reply, .. } => Pending::Claim(reply, Vec::new()),
        Command::Expire { reply } => Pending::Expire(reply, [0; 4]),
        Command::Release { reply, .. } => Pending::Release(reply),
        Command::Stats { reply } => Pending::Stats(reply),
        Command::Cursor { reply, .. } => Pending::Cursor(reply),
        Command::Cursors { reply, .. } => Pending::Cursors(reply),
        Command::Journal { reply, .. } => Pending::Journal(reply),
        Command::Len { reply } => Pending::Len(reply),
        Command::Wake => Pending::Nothing,
    }
}

enum Pending {
    /// A wake-up: nothing to answer.
    Nothing,
    Devices(Reply<Vec<hearth_model::Device>>),
    Release(Reply<u64>),
    Stats(Reply<Stats>),
    Cursor(Reply<Option<i64>>),
    Cursors(Reply<Vec<(String, i64)>>),
    Journal(Reply<Vec<(i64, Vec<u8>)>>),
    Len(Reply<u64>),
    Append(Reply<Committed>, Vec<AppendOutcome>),
    Unit(Reply<()>),
    Claim(Reply<Vec<Claimed>>, Vec<Claimed>),
    Expire(Reply<[u64; 4]>, [u64; 4]),
}

/// What the writer thread shares with the handles.
struct Shared {
    commits: watch::Sender<u64>,
    transactions: Arc<AtomicU64>,
    alarms_only: Arc<AtomicBool>,
}

/// The writer's state across transactions.
struct State {
    guard: DiskGuard,
    /// A transient failure (disk full, busy) was logged and nothing committed since.
    failing: bool,
}

/// The writer's two request channels.
struct Channels {
    /// Everything, in arrival order.
    rx: mpsc::Receiver<Command>,
    /// Appends carrying alarms, taken first.
    urgent: mpsc::Receiver<Command>,
}

/// Takes the queued urgent commands, up to `max` weight.
fn take_urgent(urgent: &mut mpsc::Receiver<Command>, max: usize) -> Vec<Command> {
    let mut cmds = Vec::new();
    let mut weight = 0;
    while weight < max {
        match urgent.try_recv() {
            Ok(cmd) => {
                weight += cmd.weight();
                cmds.push(cmd);
            }
            Err(_) => break,
        }
    }
    cmds
}

fn run(
    mut outbox: Outbox,
    Channels {
        mut rx,
        urgent: mut urgent_rx,
    }: Channels,
    shared: &Shared,
    group_commit_max: usize,
    guard: DiskGuard,
) {
    let mut queue: Vec<Command> = Vec::new();
    let wal = std::path::PathBuf::from(format!("{}-wal", outbox.path().display()));
    let mut state = State {
        guard,
        failing: false,
    };
    loop {
        // Alarms first, in their own small transaction, before anything queued behind them.
        let urgent = take_urgent(&mut urgent_rx, group_commit_max);
        if !urgent.is_empty() {
            state.guard.check(std::time::Instant::now());
            shared
                .alarms_only
                .store(state.guard.alarms_only, Ordering::Relaxed);
            process(&mut outbox, urgent, shared, &mut state);
            shared
                .alarms_only
                .store(state.guard.alarms_only, Ordering::Relaxed);
            bound_wal(&outbox, &wal);
            continue;
        }
        // While the disk is full the writer wakes by itself, to look at free space and to
        // store the disk_full alarm; otherwise it sleeps until a request comes.
        let first = if state.guard.needs_ticks() {
            match rx.try_recv() {
                Ok(cmd) => Some(cmd),
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(TICK);
                    None
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        } else {
            match rx.blocking_recv() {
                Some(cmd) => Some(cmd),
                None => break,
            }
        };
        if matches!(first, Some(Command::Wake)) {
            continue; // an urgent command came: the top of the loop takes it
        }
        state.guard.check(std::time::Instant::now());
        shared
            .alarms_only
            .store(state.guard.alarms_only, Ordering::Relaxed);
        let Some(first) = first else {
            if state.guard.try_pending(std::time::Instant::now()) {
                process(&mut outbox, Vec::new(), shared, &mut state);
            }
            continue;
        };
        queue.push(first);
        let mut weight = queue[0].weight();
        while weight < group_commit_max {
            match rx.try_recv() {
                Ok(Command::Wake) => {}
                Ok(cmd) => {
                    weight += cmd.weight();
                    queue.push(cmd);
                }
                Err(_) => break,
            }
        }
        process(&mut outbox, std::mem::take(&mut queue), shared, &mut state);
        shared
            .alarms_only
            .store(state.guard.alarms_only, Ordering::Relaxed);
        bound_wal(&outbox, &wal);
    }
    // Every handle is gone; an urgent command sent just before is still answered.
    let urgent = take_urgent(&mut urgent_rx, usize::MAX);
    if !urgent.is_empty() {
        process(&mut outbox, urgent, shared, &mut state);
    }
    tracing::debug!("outbox writer stopped: every handle was dropped");
}

/// The bound of the WAL under a load that never pauses: past twice [`WAL_LIMIT_BYTES`], the
/// writer restarts the WAL itself between two transactions (it is the only writer, so this
/// waits only for readers; the checkpointer has already copied most frames, so it copies
/// little); its next commit cuts the file back to the limit (`journal_size_limit`). While the
/// checkpointer's copy holds the checkpoint lock the restart is refused at once and tried again
/// after the next transaction, so the bound is soft (9 MB in `tests/wal.rs`, ≤ 16 MiB asserted).
/// Costs one `stat` per transaction, and one checkpoint per ~8 MiB of WAL under load.
fn bound_wal(outbox: &Outbox, wal: &std::path::Path) {
    let size = std::fs::metadata(wal).map_or(0, |m| m.len());
    if size <= 2 * WAL_LIMIT_BYTES {
        return;
    }
    if let Err(e) = outbox
        .connection()
        .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
    {
        tracing::debug!(error = %e, wal_bytes = size, "outbox WAL restart skipped; will retry");
    }
}

/// How long the writer sleeps between looks while the disk is full.
const TICK: Duration = Duration::from_millis(50);

/// Whether a write may go ahead while only alarms are stored: alarm and technical records
/// (with their cursors), the deliveries' bookkeeping, which frees rather than takes space, and
/// the alarm event log (small and bounded; what happened to the alarms is what S3 asks for).
fn admitted(guard: &DiskGuard, cmd: &Command) -> bool {
    match cmd {
        Command::Append { records, .. } => guard.admits_records(records),
        Command::DeadLetterInput { .. } | Command::PutDevice { .. } => !guard.alarms_only,
        Command::LogAlarmEvents { .. } => true,
        _ => true,
    }
}

/// What a write needs to be applied again (its reply aside): kept, while the disk is not known
/// to be full, for the writes that alarms-only admits, so that the transaction that finds the
/// disk full does not fail them (a route sender's settle, an alarm): they are tried again at
/// once in the room of the deleted reserve.
enum Again {
    Append {
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    },
    Claim {
        route: RouteId,
        max: usize,
    },
    Settle {
        route: RouteId,
        answers: Vec<(Ticket, Outcome)>,
    },
    Expire,
    LogAlarmEvents {
        entries: Vec<AlarmLogEntry>,
    },
}

impl Again {
    /// A copy of `cmd` if it is to be tried again when this transaction finds the disk full.
    fn of(guard: &DiskGuard, cmd: &Command) -> Option<Self> {
        if !guard.enabled() || guard.alarms_only {
            return None;
        }
        match cmd {
            Command::Append {
                records,
                cursors,
                journal,
                ..
            } if guard.admits_alarms_only(records) => Some(Again::Append {
                records: records.clone(),
                cursors: cursors.clone(),
                journal: journal.clone(),
            }),
            Command::Claim { route, max, .. } => Some(Again::Claim {
                route: *route,
                max: *max,
            }),
            Command::Settle { route, answers, .. } => Some(Again::Settle {
                route: *route,
                answers: answers.clone(),
            }),
            Command::Expire { .. } => Some(Again::Expire),
            Command::LogAlarmEvents { entries, .. } => Some(Again::LogAlarmEvents {
                entries: entries.clone(),
            }),
            _ => None,
        }
    }

    /// The command again, with the reply of its first try.
    fn with(self, p: Pending) -> Result<Command, Pending> {
        match (self, p) {
            (
                Again::Append {
                    records,
                    cursors,
                    journal,
                },
                Pending::Append(reply, _),
            ) => Ok(Command::Append {
                records,
                cursors,
                journal,
                reply,
            }),
            (Again::Claim { route, max }, Pending::Claim(reply, _)) => {
                Ok(Command::Claim { route, max, reply })
            }
            (Again::Settle { route, answers }, Pending::Unit(reply)) => Ok(Command::Settle {
                route,
                answers,
                reply,
            }),
            (Again::Expire, Pending::Expire(reply, _)) => Ok(Command::Expire { reply }),
            (Again::LogAlarmEvents { entries }, Pending::Unit(reply)) => {
                Ok(Command::LogAlarmEvents { entries, reply })
            }
            (_, p) => Err(p),
        }
    }
}

/// Run a group of commands in one transaction; answer each after the commit.
fn process(outbox: &mut Outbox, cmds: Vec<Command>, shared: &Shared, state: &mut State) {
    let commits = &shared.commits;
    let transactions = &*shared.transactions;
    // Read-only commands are answered straight away, outside the transaction.
    let mut writes = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        match cmd {
            Command::Stats { reply } => {
                let _ = reply.send(
                    outbox
                        .stats(Timestamp::now())
                        .map_err(|e| WriterError::from_outbox(&e)),
                );
            }
            Command::Cursor { source, reply } => {
                let _ = reply.send(
                    outbox
                        .cursor(&source)
                        .map_err(|e| WriterError::from_outbox(&e)),
                );
            }
            Command::Journal { source, reply } => {
                let _ = reply.send(
                    outbox
                        .journal(&source)
                        .map_err(|e| WriterError::from_outbox(&e)),
                );
            }
            Command::Devices { reply } => {
                let _ = reply.send(outbox.devices().map_err(|e| WriterError::from_outbox(&e)));
            }
            // Was queued with the writes and its reply dropped, so `stored()` always failed and
            // the daemon's shutdown drain never waited for the backlog.
            Command::Len { reply } => {
                let _ = reply.send(Ok(outbox.len()));
            }
            Command::Wake => {}
            Command::Cursors { prefix, reply } => {
                let _ = reply.send(
                    outbox
                        .cursors(&prefix)
                        .map_err(|e| WriterError::from_outbox(&e)),
                );
            }
            Command::Release { route, reply } => {
                let released = outbox.release_in_flight(route);
                if matches!(released, Ok(n) if n > 0) {
                    commits.send_modify(|n| *n = n.wrapping_add(1));
                }
                let _ = reply.send(released.map_err(|e| WriterError::from_outbox(&e)));
            }
            other if admitted(&state.guard, &other) => writes.push(other),
            refused => {
                let e = OutboxError::DiskFull {
                    path: outbox.path().to_owned(),
                };
                answer_err(unanswered(refused), &WriterError::from_outbox(&e));
            }
        }
    }
    if writes.is_empty() && state.guard.pending.is_empty() {
        return;
    }
    let now = Timestamp::now();
    let mut pending = Vec::with_capacity(writes.len());
    let mut failure: Option<OutboxError> = None;
    let mut batch = match outbox.batch() {
        Ok(b) => Some(b),
        Err(e) => {
            failure = Some(e);
            None
        }
    };
    // The disk_full alarm's state changes go first, so they commit with whatever else fits.
    let alarms = !state.guard.pending.is_empty();
    if let Some(b) = batch.as_mut() {
        for alarm in &state.guard.pending {
            if let Err(e) = b.append(&Record::Technical(alarm.clone()), now) {
                failure = Some(e);
                break;
            }
        }
    }
    let mut again = Vec::with_capacity(writes.len());
    for cmd in writes {
        again.push(Again::of(&state.guard, &cmd));
        match batch.as_mut().filter(|_| failure.is_none()) {
            Some(b) => match apply(b, cmd, now) {
                Ok(p) => pending.push(p),
                Err(failed) => {
                    let (e, p) = *failed;
                    failure = Some(e);
                    pending.push(p);
                }
            },
            // After a failure the rest only need their (error) answer.
            None => pending.push(unanswered(cmd)),
        }
    }
    // Wake the route senders only when there may be new work for them; a settle or a claim
    // must not wake the others, or idle senders would wake each other forever.
    let new_work = alarms || pending.iter().any(|p| matches!(p, Pending::Append(..)));
    let result = match (failure, batch) {
        (Some(e), _) => Err(e),
        (None, Some(b)) => b.commit(),
        (None, None) => return,
    };
    match result {
        Ok(report) => {
            transactions.fetch_add(1, Ordering::Relaxed);
            if alarms {
                state.guard.stored();
            }
            if std::mem::take(&mut state.failing) {
                tracing::info!("outbox transactions commit again");
            }
            if new_work {
                commits.send_modify(|n| *n = n.wrapping_add(1));
            }
            let mut report = Some(report);
            for p in pending {
                match p {
                    Pending::Append(reply, outcomes) => {
                        // The commit report goes to the first appender only, so that a drop is
                        // reported (and alarmed) once.
                        let report = report.take().unwrap_or_default();
                        let _ = reply.send(Ok(Committed { outcomes, report }));
                    }
                    Pending::Unit(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                    Pending::Claim(reply, claimed) => {
                        let _ = reply.send(Ok(claimed));
                    }
                    Pending::Expire(reply, n) => {
                        let _ = reply.send(Ok(n));
                    }
                    Pending::Nothing
                    | Pending::Release(_)
                    | Pending::Devices(_)
                    | Pending::Stats(_)
                    | Pending::Cursor(_)
                    | Pending::Cursors(_)
                    | Pending::Journal(_)
                    | Pending::Len(_) => {}
                }
            }
        }
        Err(e) => {
            // A transient failure (a full disk, a busy database) is logged once per state
            // change: its callers retry it every 250 ms.
            if !e.is_transient() {
                tracing::error!(error = %e, "outbox transaction failed; nothing of it was stored");
            } else if !std::mem::replace(&mut state.failing, true) {
                tracing::error!(error = %e, "outbox transaction failed; nothing of it was stored (retried by its callers; logged again only once it commits)");
            } else {
                tracing::debug!(error = %e, "outbox transaction failed again");
            }
            let err = WriterError::from_outbox(&e);
            let mut retry = Vec::new();
            let mut entered = false;
            if matches!(e, OutboxError::DiskFull { .. }) {
                entered = state.guard.disk_full(std::time::Instant::now());
                if entered {
                    for (p, a) in pending.into_iter().zip(again) {
                        let Some(a) = a else {
                            answer_err(p, &err);
                            continue;
                        };
                        match a.with(p) {
                            Ok(cmd) => retry.push(cmd),
                            Err(p) => answer_err(p, &err),
                        }
                    }
                    pending = Vec::new();
                }
            }
            for p in pending {
                answer_err(p, &err);
            }
            // What alarms-only admits goes again at once, in the room of the reserve (once:
            // the mode is on now, so nothing is kept for another try).
            if entered {
                process(outbox, retry, shared, state);
            }
        }
    }
}

/// Answer a request with an error.
fn answer_err(p: Pending, err: &WriterError) {
    match p {
        Pending::Nothing => {}
        Pending::Append(reply, _) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Unit(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Claim(reply, _) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Expire(reply, _) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Release(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Stats(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Cursor(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Cursors(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Journal(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Len(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
        Pending::Devices(reply) => {
            let _ = reply.send(Err(err.clone()));
        }
    }
}

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
