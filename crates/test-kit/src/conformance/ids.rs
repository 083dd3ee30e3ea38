//! Check: the same input gives the same record ids.

use super::DriverFactory;
use hearth_model::Record;

use super::readings::no_data;
use super::{Observed, data_ids, describe, observe};
use crate::{Check, ConformanceError, RunLimit};

/// Examples of differing records shown per side.
const EXAMPLES: usize = 5;

/// Run two fresh drivers from the same factory, each on a fresh outbox, until they stop (or
/// the limit), and compare the ids of the readings and alarms they stored: they must be
/// equal, so that a re-sent record is recognised by the outbox and by every receiver (DESIGN
/// invariant 2). Fails, too, when the driver stored nothing or a run broke the contract.
pub async fn check_ids_deterministic<F>(
    mut make: F,
    limit: impl Into<RunLimit>,
) -> Result<(), ConformanceError>
where
    F: DriverFactory,
{
    let limit = limit.into();
    let fail = |p| ConformanceError::new(Check::IdsDeterministic, vec![p]);
    let first = observe(&mut make, limit).await.map_err(fail)?;
    let second = observe(&mut make, limit).await.map_err(fail)?;
    compare_runs(&first, &second, limit)
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
) -> Result<(), ConformanceError> {
    let mut problems = first.run.problems();
    problems.extend(second.run.problems());
    let a = data_ids(&first.records);
    let b = data_ids(&second.records);
    if a.is_empty() && b.is_empty() {
        problems.push(no_data(limit, first.stats.counter("invalid")));
    }
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
            .filter(|r| matches!(r, Record::Reading(x) if x.device_time.is_none() && x.sequence.is_none()))
            .count();
        if timeless > 0 {
            problems.push(format!(
                "{timeless} reading(s) have neither a device time nor a sequence number, so \
                 their id falls back to the receipt time; pass the device's time stamp or record \
                 number"
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
