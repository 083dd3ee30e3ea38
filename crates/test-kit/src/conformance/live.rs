//! Live data: records that carry no device time and no sequence number, so that their id comes
//! from the receipt time, and which the device can never send again.
//!
//! A heart-rate notification, a body-composition measurement or a button press reported by
//! zigbee2mqtt (without `last_seen`) happens once: the device keeps no copy and cannot send it
//! again, so there is nothing to recognise as a copy, and an id from the receipt time is right
//! for it (a counter would collide after a reconnect). Two runs on the same input then store the
//! same records under other ids, and the ids check cannot compare them by id.
//!
//! The kit cannot tell by itself which records are live: a receipt-time id is exactly the bug
//! the ids check exists to find in records a device *does* send again (stored records, RACP,
//! a vendor's re-sent message). So the factory's author declares them, each declaration with
//! the reason, and the kit holds the declaration to account:
//!
//! - a record the declaration matches must really have a receipt-time id (a reading without
//!   device time and sequence, an alarm whose time is its receipt time); one that has a device
//!   time or sequence is replayable and the declaration is too broad — a problem, not a pass;
//! - declared-live records are compared by everything but the receipt time (device, kind, code,
//!   value, unit, state, sequence, category, flags), as a multiset: two runs on the same input
//!   must store the same live records, each as often; after storage failures and restarts the
//!   ack check wants each of them exactly once, as it wants every other record;
//! - everything the declaration does not match is compared by id, exactly as without one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use hearth_model::Record;

/// A predicate over records.
type Matcher = Arc<dyn Fn(&Record) -> bool + Send + Sync>;

/// One declaration: which records are live, and why.
#[derive(Clone)]
struct Declaration {
    why: String,
    matches: Matcher,
}

/// Which of a driver's records are live (see the module docs): no declaration by default, so
/// every reading and alarm is compared by id.
///
/// ```
/// use hearth_model::{Mdc, Record};
/// use hearth_test_kit::conformance::LiveData;
///
/// // GATT Heart Rate Measurement (0x2A37) has no time stamp and no sequence number.
/// let live = LiveData::none().declare("heart rate notifications (0x2A37 has no time)", |r| {
///     matches!(r, Record::Reading(x) if x.mdc == Mdc(147_842))
/// });
/// assert!(!live.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct LiveData {
    declarations: Vec<Declaration>,
}

impl fmt::Debug for LiveData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.declarations.iter().map(|d| &d.why))
            .finish()
    }
}

impl LiveData {
    /// No live data: every reading and alarm is compared by id.
    pub fn none() -> Self {
        Self::default()
    }

    /// Declare the records `matches` selects as live, with `why` they carry no device time or
    /// sequence (shown in problems). Keep it narrow: name the device or the code.
    pub fn declare(
        mut self,
        why: impl Into<String>,
        matches: impl Fn(&Record) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.declarations.push(Declaration {
            why: why.into(),
            matches: Arc::new(matches),
        });
        self
    }

    /// Whether nothing is declared live.
    pub fn is_empty(&self) -> bool {
        self.declarations.is_empty()
    }

    /// The reason of the first declaration that matches `record`, if one does. Technical
    /// alarms are never live data: the kit leaves them out of the id comparisons anyway.
    pub(crate) fn why(&self, record: &Record) -> Option<&str> {
        if matches!(record, Record::Technical(_)) {
            return None;
        }
        self.declarations
            .iter()
            .find(|d| (d.matches)(record))
            .map(|d| d.why.as_str())
    }
}

/// Whether `record`'s id comes from its receipt time (what makes a record live).
pub(crate) fn receipt_time_id(record: &Record) -> bool {
    match record {
        Record::Reading(r) => r.device_time.is_none() && r.sequence.is_none(),
        Record::Alarm(a) => a.at == a.received_at,
        Record::Technical(_) => false,
    }
}

/// What a live record is apart from when it was received: its identity for the comparisons.
/// Never shown (it holds the value, which may be health data); problems use `describe`.
pub(crate) fn content_key(record: &Record) -> String {
    match record {
        Record::Reading(r) => format!(
            "reading|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            r.device, r.mdc, r.value, r.unit, r.device_time, r.sequence, r.category, r.flags
        ),
        Record::Alarm(a) => format!(
            "alarm|{}|{}|{}|{:?}|{:?}",
            a.device,
            a.kind,
            a.state.as_str(),
            a.sequence,
            a.category
        ),
        Record::Technical(t) => format!("technical|{}", t.id),
    }
}

/// The records of a run, split by the declaration.
#[derive(Debug, Default)]
pub(crate) struct Split<'a> {
    /// Not declared live: compared by id.
    pub(crate) replayable: Vec<&'a Record>,
    /// Declared live, by content key, with every record of that key.
    pub(crate) live: BTreeMap<String, Vec<&'a Record>>,
    /// Declared live but with an id that does not come from the receipt time: (record, why).
    pub(crate) misdeclared: Vec<(&'a Record, &'a str)>,
}

impl<'a> Split<'a> {
    /// Split the readings and alarms of `records` (technical alarms are left out).
    pub(crate) fn of(records: &'a [Record], live: &'a LiveData) -> Self {
        let mut split = Split::default();
        for r in records {
            if matches!(r, Record::Technical(_)) {
                continue;
            }
            match live.why(r) {
                None => split.replayable.push(r),
                Some(why) if !receipt_time_id(r) => {
                    split.misdeclared.push((r, why));
                    split.replayable.push(r);
                }
                Some(_) => split.live.entry(content_key(r)).or_default().push(r),
            }
        }
        split
    }

    /// How many live records.
    pub(crate) fn live_count(&self) -> usize {
        self.live.values().map(Vec::len).sum()
    }

    /// Problems for records declared live that are not (each names the declaration).
    pub(crate) fn declaration_problems(&self, examples: usize) -> Vec<String> {
        let mut problems = Vec::new();
        if self.misdeclared.is_empty() {
            return problems;
        }
        problems.push(format!(
            "{} record(s) are declared live data but carry a device time or sequence number, so \
             their id does not come from the receipt time: they are replayable and are compared \
             by id; narrow the LiveData declaration to the records without either",
            self.misdeclared.len()
        ));
        for (r, why) in self.misdeclared.iter().take(examples) {
            problems.push(format!(
                "declared live ({why}) but replayable: {}",
                super::describe(r)
            ));
        }
        problems
    }
}

/// Live records of `a` that `b` has fewer of, with how many fewer: (example, missing count).
pub(crate) fn live_missing<'a>(
    a: &BTreeMap<String, Vec<&'a Record>>,
    b: &BTreeMap<String, Vec<&'a Record>>,
) -> Vec<(&'a Record, usize)> {
    a.iter()
        .filter_map(|(key, records)| {
            let have = b.get(key).map_or(0, Vec::len);
            let first = records.first()?;
            (records.len() > have).then(|| (*first, records.len() - have))
        })
        .collect()
}
