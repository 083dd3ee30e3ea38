//! [`MemorySink`]: a [`RecordSink`] in memory, so a driver's tests (and a vendor's conformance
//! run) need no SQLite and no hearth schema.
//!
//! It keeps what a commit would keep — records (deduplicated by record id), cursors, journals,
//! dead letters, device facts — and can be told to fail, transiently (a full disk) or for good,
//! to check that a driver acknowledges nothing that was not stored. It has no routes: every new
//! record is [`AppendOutcome::Stored`], a record whose id it holds is
//! [`AppendOutcome::Duplicate`]; model rules are the outbox's to check.
//!
//! ```
//! # use hearth_model::{DeviceId, Mdc, Reading, Record, Timestamp, Value};
//! use hearth_driver_api::{Ingest, memory::MemorySink};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hearth_driver_api::IngestError> {
//! # let id = DeviceId::new("acme", "T1").map_err(|e| hearth_driver_api::IngestError::permanent(e.to_string()))?;
//! # let records = vec![Record::Reading(Reading::builder(id, Mdc(150364), Value::numeric(36.6)).sequence(7).build(Timestamp::now()))];
//!
//! let sink = MemorySink::new();
//! let ingest = Ingest::new(sink.clone()); // clones share what is stored
//! sink.fail_transiently();
//! assert!(ingest.submit(records.clone(), Some(("acme:T1".into(), 7))).await.unwrap_err().is_transient());
//! assert_eq!(sink.committed_cursor("acme:T1"), None); // nothing stored, so nothing to acknowledge
//! sink.recover();
//! ingest.submit(records, Some(("acme:T1".into(), 7))).await?;
//! assert_eq!(sink.committed_cursor("acme:T1"), Some(7));
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use hearth_model::{Device, DeviceId, Record, RecordId, TechnicalAlarm};

use crate::sink::{
    AppendOutcome, BoxFuture, IngestError, Journal, JournalEntry, Receipt, RecordSink,
};

/// Input a driver could not parse, as [`crate::Ingest::dead_letter`] kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The source that received it.
    pub source: String,
    /// The raw input.
    pub raw: Vec<u8>,
    /// The parser's error.
    pub error: String,
}

#[derive(Debug, Default)]
struct State {
    records: Vec<Record>,
    ids: HashSet<RecordId>,
    cursors: BTreeMap<String, i64>,
    journals: BTreeMap<String, BTreeMap<i64, Vec<u8>>>,
    dead_letters: Vec<DeadLetter>,
    devices: BTreeMap<DeviceId, Device>,
    /// While set, every write fails with this error and stores nothing.
    failure: Option<IngestError>,
    /// Write requests, failed ones included.
    attempts: u64,
    /// Writes that committed.
    commits: u64,
}

/// A [`RecordSink`] in memory. Clones share the same storage: keep one to inspect what the
/// driver stored and give another to [`crate::Ingest::new`].
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    state: Arc<Mutex<State>>,
}

impl MemorySink {
    /// An empty sink that stores everything.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left consistent data: every write
        // changes the state only after all its checks.
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// From now on every write fails transiently (like a full disk or a busy database) and
    /// stores nothing, until [`MemorySink::recover`].
    pub fn fail_transiently(&self) {
        self.state().failure = Some(IngestError::transient(
            "memory sink: storage is full (simulated); free space and it recovers",
        ));
    }

    /// From now on every write fails for good (retrying will not help) and stores nothing,
    /// until [`MemorySink::recover`].
    pub fn fail_for_good(&self, message: impl Into<String>) {
        self.state().failure = Some(IngestError::permanent(message));
    }

    /// Writes succeed again.
    pub fn recover(&self) {
        self.state().failure = None;
    }

    /// Every stored record, in commit order (duplicates not repeated).
    pub fn records(&self) -> Vec<Record> {
        self.state().records.clone()
    }

    /// The stored technical alarms (raised and cleared), in commit order.
    pub fn technical_alarms(&self) -> Vec<TechnicalAlarm> {
        self.state()
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Technical(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// The kept dead letters, in commit order.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.state().dead_letters.clone()
    }

    /// The committed value of a cursor.
    pub fn committed_cursor(&self, key: &str) -> Option<i64> {
        self.state().cursors.get(key).copied()
    }

    /// The committed journal of `source`, oldest entry first.
    pub fn committed_journal(&self, source: &str) -> Journal {
        journal_of(&self.state(), source)
    }

    /// The stored facts of a device (merged over every report).
    pub fn device(&self, id: &DeviceId) -> Option<Device> {
        self.state().devices.get(id).cloned()
    }

    /// Write requests so far, failed ones included (a retried submission counts each try).
    pub fn attempts(&self) -> u64 {
        self.state().attempts
    }

    /// Writes that committed so far.
    pub fn commits(&self) -> u64 {
        self.state().commits
    }

    /// Count a write request; `Err` (and nothing stored) while the sink is set to fail.
    fn begin_write(state: &mut State) -> Result<(), IngestError> {
        state.attempts += 1;
        match &state.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn append_now(
        &self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    ) -> Result<Receipt, IngestError> {
        let mut s = self.state();
        Self::begin_write(&mut s)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for r in records {
            if s.ids.insert(r.id()) {
                s.records.push(r);
                outcomes.push(AppendOutcome::Stored);
            } else {
                outcomes.push(AppendOutcome::Duplicate);
            }
        }
        s.cursors.extend(cursors);
        if let Some(j) = journal {
            let entries = s.journals.entry(j.source).or_default();
            entries.insert(j.seq, j.entries);
            entries.retain(|seq, _| *seq >= j.keep_from);
        }
        s.commits += 1;
        Ok(Receipt { outcomes })
    }

    fn dead_letter_now(
        &self,
        source: &str,
        raw: Vec<u8>,
        error: String,
    ) -> Result<(), IngestError> {
        let mut s = self.state();
        Self::begin_write(&mut s)?;
        s.dead_letters.push(DeadLetter {
            source: source.to_owned(),
            raw,
            error,
        });
        s.commits += 1;
        Ok(())
    }

    fn put_device_now(&self, id: DeviceId, facts: Device) -> Result<(), IngestError> {
        let mut s = self.state();
        Self::begin_write(&mut s)?;
        let known = s.devices.entry(id.clone()).or_default();
        known.merge(facts);
        known.id = Some(id);
        s.commits += 1;
        Ok(())
    }
}

fn journal_of(state: &State, source: &str) -> Journal {
    state
        .journals
        .get(source)
        .map(|j| j.iter().map(|(seq, e)| (*seq, e.clone())).collect())
        .unwrap_or_default()
}

impl RecordSink for MemorySink {
    fn append<'a>(
        &'a self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<Receipt, IngestError>> {
        Box::pin(async move { self.append_now(records, cursors, journal) })
    }

    fn dead_letter<'a>(
        &'a self,
        source: &'a str,
        raw: Vec<u8>,
        error: String,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(async move { self.dead_letter_now(source, raw, error) })
    }

    fn put_device<'a>(
        &'a self,
        id: DeviceId,
        facts: Device,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(async move { self.put_device_now(id, facts) })
    }

    fn cursor<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<i64>, IngestError>> {
        Box::pin(async move { Ok(self.committed_cursor(key)) })
    }

    fn cursors<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>, IngestError>> {
        Box::pin(async move {
            Ok(self
                .state()
                .cursors
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), *v))
                .collect())
        })
    }

    fn journal<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Journal, IngestError>> {
        Box::pin(async move { Ok(self.committed_journal(source)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::{Mdc, Reading, Timestamp, Value};

    fn reading(seq: u32) -> Record {
        Record::Reading(
            Reading::builder(
                DeviceId::new("sim", "a").unwrap(),
                Mdc(1),
                Value::numeric(1.0),
            )
            .sequence(seq.into())
            .build(Timestamp::now()),
        )
    }

    #[tokio::test]
    async fn appends_store_records_cursors_and_journal_in_one_commit() {
        let sink = MemorySink::new();
        let journal = JournalEntry {
            source: "mqtt:a".into(),
            seq: 5,
            entries: vec![1, 2],
            keep_from: 0,
        };
        let receipt = sink
            .append(
                vec![reading(1), reading(2)],
                vec![("sim:a".into(), 2)],
                Some(journal),
            )
            .await
            .unwrap();
        assert_eq!(receipt.outcomes, vec![AppendOutcome::Stored; 2]);
        assert_eq!(sink.records().len(), 2);
        assert_eq!(sink.committed_cursor("sim:a"), Some(2));
        assert_eq!(
            sink.cursors("sim:").await.unwrap(),
            vec![("sim:a".into(), 2)]
        );
        assert_eq!(sink.journal("mqtt:a").await.unwrap(), vec![(5, vec![1, 2])]);
        assert_eq!(sink.commits(), 1);
    }

    #[tokio::test]
    async fn a_record_stored_before_is_a_duplicate_and_stored_once() {
        let sink = MemorySink::new();
        sink.append(vec![reading(1)], Vec::new(), None)
            .await
            .unwrap();
        let again = sink
            .append(vec![reading(1), reading(2)], Vec::new(), None)
            .await
            .unwrap();
        assert_eq!(
            again.outcomes,
            vec![AppendOutcome::Duplicate, AppendOutcome::Stored]
        );
        assert_eq!(sink.records().len(), 2);
    }

    #[tokio::test]
    async fn old_journal_entries_are_dropped_as_new_ones_are_written() {
        let sink = MemorySink::new();
        for seq in [1, 2, 3] {
            let j = JournalEntry {
                source: "s".into(),
                seq,
                entries: vec![u8::try_from(seq).unwrap()],
                keep_from: seq - 1,
            };
            sink.append(Vec::new(), Vec::new(), Some(j)).await.unwrap();
        }
        assert_eq!(
            sink.committed_journal("s"),
            vec![(2, vec![2]), (3, vec![3])]
        );
    }

    #[tokio::test]
    async fn a_failing_sink_stores_nothing_until_it_recovers() {
        let sink = MemorySink::new();
        sink.fail_transiently();
        let e = sink
            .append(vec![reading(1)], vec![("sim:a".into(), 1)], None)
            .await
            .unwrap_err();
        assert!(e.is_transient());
        let e = sink
            .dead_letter("sim", b"?".to_vec(), "bad".into())
            .await
            .unwrap_err();
        assert!(e.is_transient());
        sink.fail_for_good("read-only file system");
        let e = sink
            .put_device(DeviceId::new("sim", "a").unwrap(), Device::default())
            .await
            .unwrap_err();
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "read-only file system");
        assert!(sink.records().is_empty());
        assert!(sink.dead_letters().is_empty());
        assert_eq!(sink.committed_cursor("sim:a"), None);
        assert_eq!((sink.attempts(), sink.commits()), (3, 0));

        sink.recover();
        sink.dead_letter("sim", b"?".to_vec(), "bad".into())
            .await
            .unwrap();
        assert_eq!(
            sink.dead_letters(),
            vec![DeadLetter {
                source: "sim".into(),
                raw: b"?".to_vec(),
                error: "bad".into()
            }]
        );
        assert_eq!((sink.attempts(), sink.commits()), (4, 1));
    }

    #[tokio::test]
    async fn device_facts_are_merged_over_reports() {
        let sink = MemorySink::new();
        let id = DeviceId::new("ble", "1").unwrap();
        let first = Device {
            manufacturer: Some("Acme".into()),
            ..Device::default()
        };
        let second = Device {
            model: Some("T-1".into()),
            ..Device::default()
        };
        sink.put_device(id.clone(), first).await.unwrap();
        sink.put_device(id.clone(), second).await.unwrap();
        let d = sink.device(&id).unwrap();
        assert_eq!(d.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(d.model.as_deref(), Some("T-1"));
        assert_eq!(d.id, Some(id));
    }

    /// Clones share storage: the handle a test keeps sees what `Ingest` stored through another.
    #[tokio::test]
    async fn clones_share_what_is_stored() {
        let sink = MemorySink::new();
        let ingest = crate::Ingest::new(sink.clone());
        ingest.submit(vec![reading(1)], None).await.unwrap();
        assert_eq!(sink.records().len(), 1);
    }
}
