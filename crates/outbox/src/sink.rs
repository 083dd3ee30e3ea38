//! The outbox writer as the drivers' [`RecordSink`]: the port `hearth-driver-api` defines, so
//! drivers store through `Ingest` without naming the outbox, SQLite or its schema (ADR 0009).
//! Here the outbox's own types become the API's, one conversion each.

use hearth_driver_api as api;
use hearth_driver_api::{BoxFuture, IngestError, Journal, Receipt, RecordSink};
use hearth_model::{Device, DeviceId, Record};

use crate::store::AppendOutcome;
use crate::writer::{JournalEntry, OutboxWriter, WriterError};

impl From<WriterError> for IngestError {
    fn from(e: WriterError) -> Self {
        match e {
            WriterError::Failed { message, transient } => {
                if transient {
                    IngestError::transient(message)
                } else {
                    IngestError::permanent(message)
                }
            }
            WriterError::Stopped => IngestError::Stopped,
        }
    }
}

impl From<AppendOutcome> for api::AppendOutcome {
    fn from(o: AppendOutcome) -> Self {
        match o {
            AppendOutcome::Stored => api::AppendOutcome::Stored,
            AppendOutcome::Duplicate => api::AppendOutcome::Duplicate,
            AppendOutcome::Unrouted => api::AppendOutcome::Unrouted,
            AppendOutcome::Invalid(why) => api::AppendOutcome::Invalid(why),
        }
    }
}

impl From<api::JournalEntry> for JournalEntry {
    fn from(j: api::JournalEntry) -> Self {
        JournalEntry {
            source: j.source,
            seq: j.seq,
            entries: j.entries,
            keep_from: j.keep_from,
        }
    }
}

impl RecordSink for OutboxWriter {
    fn append<'a>(
        &'a self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<api::JournalEntry>,
    ) -> BoxFuture<'a, Result<Receipt, IngestError>> {
        Box::pin(async move {
            let committed = self
                .append_with_journal(records, cursors, journal.map(JournalEntry::from))
                .await?;
            Ok(Receipt {
                outcomes: committed.outcomes.into_iter().map(Into::into).collect(),
            })
        })
    }

    fn dead_letter<'a>(
        &'a self,
        source: &'a str,
        raw: Vec<u8>,
        error: String,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(async move { Ok(self.dead_letter_input(source, raw, error).await?) })
    }

    fn put_device<'a>(
        &'a self,
        id: DeviceId,
        facts: Device,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        Box::pin(async move { Ok(OutboxWriter::put_device(self, id, facts).await?) })
    }

    fn cursor<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<i64>, IngestError>> {
        Box::pin(async move { Ok(OutboxWriter::cursor(self, key).await?) })
    }

    fn cursors<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>, IngestError>> {
        Box::pin(async move { Ok(OutboxWriter::cursors(self, prefix).await?) })
    }

    fn journal<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Journal, IngestError>> {
        Box::pin(async move { Ok(OutboxWriter::journal(self, source).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_errors_keep_their_message_and_whether_they_pass() {
        let busy = WriterError::Failed {
            message: "database is locked".into(),
            transient: true,
        };
        let e = IngestError::from(busy.clone());
        assert!(e.is_transient());
        assert_eq!(e.to_string(), busy.to_string());
        let corrupt = WriterError::Failed {
            message: "corrupt".into(),
            transient: false,
        };
        assert!(!IngestError::from(corrupt).is_transient());
        let stopped = IngestError::from(WriterError::Stopped);
        assert_eq!(stopped, IngestError::Stopped);
        assert_eq!(stopped.to_string(), WriterError::Stopped.to_string());
    }

    #[test]
    fn every_append_outcome_has_its_api_twin() {
        let pairs = [
            (AppendOutcome::Stored, api::AppendOutcome::Stored),
            (AppendOutcome::Duplicate, api::AppendOutcome::Duplicate),
            (AppendOutcome::Unrouted, api::AppendOutcome::Unrouted),
            (
                AppendOutcome::Invalid("nan".into()),
                api::AppendOutcome::Invalid("nan".into()),
            ),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(api::AppendOutcome::from(ours), theirs);
        }
    }
}
