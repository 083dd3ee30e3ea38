//! Check: the same input gives the same record ids.

use std::collections::BTreeMap;

use super::DriverFactory;
use hearth_model::{Record, RecordId};

use super::live::{LiveData, Split, live_missing};
use super::readings::no_data;
use super::{Observed, describe, observe};
use crate::{Check, ConformanceError, RunLimit};

/// Examples of differing records shown per side.
const EXAMPLES: usize = 5;

/// Run two fresh drivers from the same factory, each on a fresh outbox, until they stop (or
/// the limit), and compare the ids of the readings and alarms they stored: they must be
/// equal, so that a re-sent record is recognised by the outbox and by every receiver (DESIGN
/// invariant 2). Fails, too, when the driver stored nothing or a run broke the contract.
///
/// Every reading and alarm is compared by id; for a driver with live data (no device time, no
/// sequence: see [`LiveData`]) use [`check_ids_deterministic_with`].
pub async fn check_ids_deterministic<F>(
    make: F,
    limit: impl Into<RunLimit>,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    check_ids_deterministic_with(make, limit, &LiveData::none()).await
}

/// [`check_ids_deterministic`] for a driver with declared live data: records `live` matches are
/// compared by content without their receipt time (each as often in both runs), and must
/// really have receipt-time ids; every other reading and alarm is compared by id.
pub async fn check_ids_deterministic_with<F>(
    mut make: F,
    limit: impl Into<RunLimit>,
    live: &LiveData,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    let limit = limit.into();
    let fail = |p| ConformanceError::new(Check::IdsDeterministic, vec![p]);
    let first = observe(&mut make, limit).await.map_err(fail)?;
    let second = observe(&mut make, limit).await.map_err(fail)?;
    compare_runs(&first, &second, limit, live)
}

/// [`check_ids_deterministic`], panicking with the problems (for tests).
pub async fn assert_ids_deterministic<F>(make: F, limit: impl Into<RunLimit>)
where
    F: DriverFactory,
{
    if let Err(e) = check_ids_deterministic(make, limit).await {
        panic!("{e}");
    }
}

/// The comparison of two observed runs (shared with `run_all`).
pub(crate) fn compare_runs(
    first: &Observed,
    second: &Observed,
    limit: RunLimit,
    live: &LiveData,
) -> Result<(), ConformanceError> {
    let mut problems = first.run.problems();
    problems.extend(second.run.problems());
    let split_a = Split::of(&first.records, live);
    let split_b = Split::of(&second.records, live);
    let a = by_id(&split_a);
    let b = by_id(&split_b);
    if a.is_empty() && b.is_empty() && split_a.live.is_empty() && split_b.live.is_empty() {
        problems.push(no_data(limit, first.stats.counter("invalid")));
    }
    // A declaration is the same in both runs: report its misses once, from the run with more.
    let misdeclared = if split_a.misdeclared.len() >= split_b.misdeclared.len() {
        &split_a
    } else {
        &split_b
    };
    problems.extend(misdeclared.declaration_problems(EXAMPLES));
    live_problems(&split_a, &split_b, &mut problems);
    let only_first: Vec<&Record> = a
        .iter()
        .filter(|(id, _)| !b.contains_key(id))
        .map(|(_, r)| *r)
        .collect();
    let only_second: Vec<&Record> = b
        .iter()
        .filter(|(id, _)| !a.contains_key(id))
        .map(|(_, r)| *r)
        .collect();
    if !only_first.is_empty() || !only_second.is_empty() {
        problems.push(format!(
            "two runs on the same input stored different record ids ({} of {} only in the first \
             run, {} of {} only in the second); derive ids only from device id + kind + device \
             time + sequence (Reading::builder(..).device_time(..).sequence(..)), never from \
             the receipt time, a counter that restarts differently, or a random number",
            only_first.len(),
            a.len(),
            only_second.len(),
            b.len()
        ));
        let timeless = first
            .records
            .iter()
            .chain(&second.records)
            .filter(|r| live.why(r).is_none())
            .filter(|r| matches!(r, Record::Reading(x) if x.device_time.is_none() && x.sequence.is_none()))
            .count();
        if timeless > 0 {
            problems.push(format!(
                "{timeless} reading(s) have neither a device time nor a sequence number, so \
                 their id falls back to the receipt time; pass the device's time stamp or record \
                 number, or, if the device can never send them again (live data), declare them \
                 with LiveData"
            ));
        }
        for r in only_first.iter().take(EXAMPLES) {
            problems.push(format!("only in the first run: {}", describe(r)));
        }
        for r in only_second.iter().take(EXAMPLES) {
            problems.push(format!("only in the second run: {}", describe(r)));
        }
    }
    ConformanceError::from_problems(Check::IdsDeterministic, problems)
}

/// The records compared by id, by id.
fn by_id<'a>(split: &Split<'a>) -> BTreeMap<RecordId, &'a Record> {
    split.replayable.iter().map(|r| (r.id(), *r)).collect()
}

/// Live records must be the same in both runs apart from their receipt time, each as often.
fn live_problems(a: &Split<'_>, b: &Split<'_>, problems: &mut Vec<String>) {
    let only_first = live_missing(&a.live, &b.live);
    let only_second = live_missing(&b.live, &a.live);
    if only_first.is_empty() && only_second.is_empty() {
        return;
    }
    let count = |v: &[(&Record, usize)]| v.iter().map(|(_, n)| n).sum::<usize>();
    problems.push(format!(
        "two runs on the same input stored different live data ({} of {} live record(s) only \
         in the first run, {} of {} only in the second, compared without their receipt time); \
         a live record must not depend on timing: the same input gives the same readings and \
         alarms, each once",
        count(&only_first),
        a.live_count(),
        count(&only_second),
        b.live_count()
    ));
    for (r, n) in only_first.iter().take(EXAMPLES) {
        problems.push(format!("live, {n} more in the first run: {}", describe(r)));
    }
    for (r, n) in only_second.iter().take(EXAMPLES) {
        problems.push(format!("live, {n} more in the second run: {}", describe(r)));
    }
}
