//! The writer thread: urgent (alarm) appends first, group commit of the rest, the disk-full
//! alarms-only mode, and the answers to every command.

use super::*;

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
pub(super) struct Shared {
    pub(super) commits: watch::Sender<u64>,
    pub(super) transactions: Arc<AtomicU64>,
    pub(super) alarms_only: Arc<AtomicBool>,
}

/// The writer's state across transactions.
pub(super) struct State {
    pub(super) guard: DiskGuard,
    /// A transient failure (disk full, busy) was logged and nothing committed since.
    pub(super) failing: bool,
}

/// The writer's two request channels.
pub(super) struct Channels {
    /// Everything, in arrival order.
    pub(super) rx: mpsc::Receiver<Command>,
    /// Appends carrying alarms, taken first.
    pub(super) urgent: mpsc::Receiver<Command>,
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

pub(super) fn run(
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
pub(super) fn admitted(guard: &DiskGuard, cmd: &Command) -> bool {
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
pub(super) fn process(outbox: &mut Outbox, cmds: Vec<Command>, shared: &Shared, state: &mut State) {
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
