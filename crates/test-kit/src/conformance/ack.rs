//! Check: a driver acknowledges only after the commit (DESIGN invariants 1 and 7).
//!
//! The check cannot see a device being told "got it", but it can see the consequences of
//! telling it too early. It runs the driver three times over on one outbox, under a small
//! supervisor that restarts a driver returning an error (as hearth's does):
//!
//! 1. storage full: every transaction holding a record fails with "disk full"; afterwards no
//!    cursor may have moved (a cursor alone still fits, so a driver that commits its cursor
//!    before or apart from its records shows up here);
//! 2. storage works again: the same driver instance (or its restarts) carries on; afterwards
//!    every record of an undisturbed reference run must be stored — a driver that skipped,
//!    dropped or acknowledged records whose submission failed leaves a gap;
//! 3. restart: a fresh driver from the factory; it must resume after the committed cursor, so
//!    the outbox counts no duplicate and the set of records is still exactly the reference.
//!
//! Records declared live ([`LiveData`]) have receipt-time ids, which differ between runs: they
//! are matched with the reference by content instead (everything but the receipt time), and
//! each must be stored exactly once as well — a live record stored again after a restart gets
//! a new id, so the outbox cannot count it as a duplicate, but this comparison sees it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::DriverFactory;
use hearth_model::{Record, RecordId};
use tokio::time::Instant;

use super::live::{LiveData, Split, live_missing};
use super::readings::no_data;
use super::{Observed, describe, kit_problem, observe};
use crate::harness::{Exit, Wait};
use crate::{Check, ConformanceError, Harness, HarnessError, RunLimit, RunningDriver};

/// Pause before a failed driver is started again (hearth's supervisor backs off longer).
const RESTART_DELAY: Duration = Duration::from_millis(20);
/// Examples of missing or unexpected records shown.
const EXAMPLES: usize = 5;

/// Check that the driver acknowledges only after the commit: while storage is full no cursor
/// moves and nothing is dropped, and after storage recovers (and after a restart) every record
/// of an undisturbed run is stored exactly once — no gap, no duplicate.
///
/// Works for cursor-based drivers (they resume from `Ingest::cursor` when restarted) and for
/// drivers that retry the same records until `submit` succeeds. `limit` bounds each phase;
/// its `quiet` period also sets how long storage stays full, so it must be longer than the
/// pause between two of the driver's submissions.
///
/// Every reading and alarm is matched by id; for a driver with live data (see [`LiveData`])
/// use [`check_ack_after_commit_with`].
pub async fn check_ack_after_commit<F>(
    make: F,
    limit: impl Into<RunLimit>,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    check_ack_after_commit_with(make, limit, &LiveData::none()).await
}

/// [`check_ack_after_commit`] for a driver with declared live data: records `live` matches are
/// matched with the undisturbed run by content without their receipt time, each exactly once.
pub async fn check_ack_after_commit_with<F>(
    mut make: F,
    limit: impl Into<RunLimit>,
    live: &LiveData,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    let limit = limit.into();
    let reference = observe(&mut make, limit)
        .await
        .map_err(|p| ConformanceError::new(Check::AckAfterCommit, vec![p]))?;
    let mut problems = reference.run.problems();
    if let Err(e) = ack_against(&mut make, &reference, limit, live).await {
        problems.extend(e.problems);
    }
    ConformanceError::from_problems(Check::AckAfterCommit, problems)
}

/// [`check_ack_after_commit`], panicking with the problems (for tests).
pub async fn assert_ack_after_commit<F>(make: F, limit: impl Into<RunLimit>)
where
    F: DriverFactory,
{
    if let Err(e) = check_ack_after_commit(make, limit).await {
        panic!("{e}");
    }
}

/// The check against an already observed reference run (shared with `run_all`).
pub(crate) async fn ack_against<F>(
    make: &mut F,
    reference: &Observed,
    limit: RunLimit,
    live: &LiveData,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    let problems = match scenario(make, reference, limit, live).await {
        Ok(problems) => problems,
        Err(e) => vec![kit_problem(&e)],
    };
    ConformanceError::from_problems(Check::AckAfterCommit, problems)
}

/// Where the driver under supervision is.
#[derive(Debug)]
enum Slot {
    /// Not started yet, or failed and due for a restart.
    Idle,
    /// Running.
    Running(RunningDriver),
    /// Returned `Ok` on its own: it said it is done, so it is not started again.
    Returned,
}

/// What happened under supervision, besides the records.
#[derive(Debug, Default)]
struct Log {
    /// Errors the driver returned (expected while storage fails).
    errors: Vec<String>,
    /// Panics: always a contract violation.
    panics: Vec<String>,
    /// Problems stopping the driver.
    stops: Vec<String>,
}

/// Run (and restart) the driver until it returns `Ok`, the outbox is quiet, or the limit.
/// The first driver of a scenario is a fresh one (a new device); every later one is a restart.
async fn supervise<F>(
    harness: &Harness,
    make: &mut F,
    slot: &mut Slot,
    started: &mut bool,
    limit: RunLimit,
    log: &mut Log,
) where
    F: DriverFactory,
{
    let deadline = Instant::now() + limit.max;
    let mut progress = harness.progress();
    loop {
        let running = match slot {
            Slot::Returned => return,
            Slot::Running(running) => running,
            Slot::Idle => {
                let driver = if *started {
                    make.restart()
                } else {
                    make.fresh()
                };
                *started = true;
                *slot = Slot::Running(harness.spawn(driver));
                match slot {
                    Slot::Running(running) => running,
                    Slot::Idle | Slot::Returned => return,
                }
            }
        };
        match running.wait(&mut progress, limit.quiet, deadline).await {
            Wait::Quiet | Wait::Deadline => return,
            Wait::Finished(Ok(())) => {
                *slot = Slot::Returned;
                return;
            }
            Wait::Finished(Err(Exit::Error(e))) => {
                log.errors.push(e);
                *slot = Slot::Idle;
            }
            Wait::Finished(Err(Exit::Panic(p))) => {
                log.panics.push(p);
                *slot = Slot::Idle;
            }
        }
        if Instant::now() + RESTART_DELAY >= deadline {
            return;
        }
        tokio::time::sleep(RESTART_DELAY).await;
    }
}

async fn stop(slot: &mut Slot, log: &mut Log) {
    if let Slot::Running(running) = std::mem::replace(slot, Slot::Idle)
        && let Err(p) = running.stop().await
    {
        log.stops.push(p);
    }
}

async fn scenario<F>(
    make: &mut F,
    reference: &Observed,
    limit: RunLimit,
    live: &LiveData,
) -> Result<Vec<String>, HarnessError>
where
    F: DriverFactory,
{
    let mut problems = Vec::new();
    let reference_split = Split::of(&reference.records, live);
    let expected = by_id(&reference_split);
    if expected.is_empty() && reference_split.live.is_empty() {
        problems.push(no_data(limit, reference.stats.counter("invalid")));
        return Ok(problems);
    }
    problems.extend(reference_split.declaration_problems(EXAMPLES));
    let harness = Harness::new()?;
    let mut log = Log::default();
    let mut slot = Slot::Idle;
    let mut started = false;

    // Phase 1: the disk is full.
    harness.set_storage_full(true).await?;
    supervise(&harness, make, &mut slot, &mut started, limit, &mut log).await;
    let during = harness.stats()?;
    let returned_while_full = matches!(slot, Slot::Returned);
    let stored_while_full = during.records();
    if stored_while_full > 0 {
        problems.push(format!(
            "{stored_while_full} record(s) were stored while storage was failing; this is a bug \
             in hearth-test-kit's fault injection, please report it"
        ));
    }
    for (key, value) in &during.cursors {
        problems.push(format!(
            "cursor {key:?} moved to {value} while storage was failing and none of its records \
             could be stored; pass the cursor to the same Ingest::submit call as the records it \
             covers, so that both commit together or not at all"
        ));
    }
    if returned_while_full {
        problems.push(
            "the driver returned Ok while its submissions were failing; on a submit error return \
             the error (hearth restarts the driver, which resumes from Ingest::cursor) or retry \
             the same records; returning Ok says the work is done"
                .to_owned(),
        );
    }

    // Phase 2: space is back; the running driver (or its restart) carries on.
    harness.set_storage_full(false).await?;
    supervise(&harness, make, &mut slot, &mut started, limit, &mut log).await;
    let after = harness.records().await?;
    gaps(
        &reference_split,
        &Split::of(&after, live),
        "after storage recovered",
        "the driver dropped or acknowledged them when Ingest::submit failed; keep them (and the \
         cursor) where they were, and return the error or retry the same records",
        &mut problems,
    );

    // Phase 3: a fresh driver, as after a restart of hearth.
    stop(&mut slot, &mut log).await;
    slot = Slot::Idle;
    supervise(&harness, make, &mut slot, &mut started, limit, &mut log).await;
    stop(&mut slot, &mut log).await;
    let restarted = harness.records().await?;
    let stats = harness.stats()?;
    let duplicates = stats.counter("duplicates") - reference.stats.counter("duplicates");
    if duplicates > 0 {
        problems.push(format!(
            "{duplicates} record(s) were submitted again after they had been committed (the \
             outbox counted them as duplicates); on start, resume after the committed cursor \
             (Ingest::cursor) instead of re-submitting"
        ));
    }
    let restarted_split = Split::of(&restarted, live);
    gaps(
        &reference_split,
        &restarted_split,
        "after a restart",
        "a restarted driver must resume from Ingest::cursor, and the device may only forget \
         records that were committed",
        &mut problems,
    );
    let again = live_missing(&restarted_split.live, &reference_split.live);
    if !again.is_empty() {
        problems.push(format!(
            "{} live record(s) were stored more often than in an undisturbed run (compared \
             without their receipt time, so under new ids the outbox cannot count as \
             duplicates); a live value must be submitted once: do not submit it again after a \
             failed commit was retried or after a restart, unless that commit failed",
            again.iter().map(|(_, n)| n).sum::<usize>()
        ));
        for (r, n) in again.iter().take(EXAMPLES) {
            problems.push(format!("live, stored {n} more time(s): {}", describe(r)));
        }
    }
    let unexpected: Vec<&Record> = by_id(&restarted_split)
        .into_iter()
        .filter(|(id, _)| !expected.contains_key(id))
        .map(|(_, r)| r)
        .collect();
    if !unexpected.is_empty() {
        // Nothing below can be trusted when ids change between runs: say so first.
        problems.insert(
            0,
            format!(
                "records cannot be matched with an undisturbed run because their ids differ \
                 between runs; fix the \"{}\" check first (the gaps reported here may be the \
                 same records under other ids)",
                Check::IdsDeterministic
            ),
        );
        problems.push(format!(
            "{} record(s) were stored that an undisturbed run did not produce; ids must not \
             depend on timing or restarts (see the \"{}\" check), and the factory's driver must \
             stop producing after a fixed amount of simulated input",
            unexpected.len(),
            Check::IdsDeterministic
        ));
        for r in unexpected.iter().take(EXAMPLES) {
            problems.push(format!("unexpected: {}", describe(r)));
        }
    }
    for p in &log.panics {
        problems.push(format!(
            "the driver panicked: {p}; a driver must never panic, not even when storage fails"
        ));
    }
    problems.append(&mut log.stops);
    harness.close().await?;
    Ok(problems)
}

/// The records compared by id, by id.
fn by_id<'a>(split: &Split<'a>) -> BTreeMap<RecordId, &'a Record> {
    split.replayable.iter().map(|r| (r.id(), *r)).collect()
}

/// Report records of the reference run missing from `got`, in the order they were stored
/// (live ones by content, after the others).
fn gaps(reference: &Split<'_>, got: &Split<'_>, when: &str, fix: &str, problems: &mut Vec<String>) {
    let expected = by_id(reference);
    let have = by_id(got);
    let mut missing: Vec<&Record> = expected
        .iter()
        .filter(|(id, _)| !have.contains_key(id))
        .map(|(_, r)| *r)
        .collect();
    missing.sort_by_key(|r| reference.replayable.iter().position(|x| x.id() == r.id()));
    for (r, n) in live_missing(&reference.live, &got.live) {
        missing.extend(std::iter::repeat_n(r, n));
    }
    if missing.is_empty() {
        return;
    }
    problems.push(format!(
        "{} of {} record(s) of an undisturbed run never arrived {when}; {fix}",
        missing.len(),
        expected.len() + reference.live_count()
    ));
    for r in missing.iter().take(EXAMPLES) {
        problems.push(format!("missing {when}: {}", describe(r)));
    }
}
