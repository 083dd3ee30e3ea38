//! The [`Batch`] transaction (group commit): the running totals it keeps and its commit.

use std::collections::HashMap;
use std::path::Path;

use hearth_model::{Lane, Record, Timestamp};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{AppendOutcome, CommitReport, Inner, LaneTotal, Outbox};
use crate::error::{OutboxError, sql};

/// A transaction on the outbox; see [`Outbox::batch`].
pub struct Batch<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) inner: &'a mut Inner,
    pub(super) delta: [LaneTotal; 4],
    /// Change of the dead-letter table's rows and bytes in this batch.
    pub(super) dead_delta: LaneTotal,
    counters: HashMap<String, i64>,
    pub(super) dead_letters_added: bool,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Start a transaction. Everything done through the batch becomes durable together on
    /// [`Batch::commit`] (one fsync for many records: group commit); dropping the batch
    /// without committing rolls all of it back, as a crash would.
    pub fn batch(&mut self) -> Result<Batch<'_>, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql("begin", &self.inner.path, e))?;
        let version: i64 = tx
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| sql("begin", &self.inner.path, e))?;
        if version != self.inner.data_version {
            // Another connection committed (a requeue): read the running totals again.
            let (totals, dead) = read_totals(&tx, &self.inner.path)?;
            self.inner.totals = totals;
            self.inner.dead = dead;
            self.inner.data_version = version;
        }
        Ok(Batch {
            tx,
            inner: &mut self.inner,
            delta: [LaneTotal::default(); 4],
            dead_delta: LaneTotal::default(),
            counters: HashMap::new(),
            dead_letters_added: false,
        })
    }

    /// Convenience: append records and commit them in one batch.
    pub fn append_all(
        &mut self,
        records: &[Record],
        now: Timestamp,
    ) -> Result<(Vec<AppendOutcome>, CommitReport), OutboxError> {
        let mut batch = self.batch()?;
        let outcomes = records
            .iter()
            .map(|r| batch.append(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        let report = batch.commit()?;
        Ok((outcomes, report))
    }
}

impl Batch<'_> {
    pub(super) fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> OutboxError + '_ {
        move |e| sql(op, &self.inner.path, e)
    }

    pub(super) fn count(&mut self, name: impl Into<String>, n: i64) {
        *self.counters.entry(name.into()).or_insert(0) += n;
    }

    /// Make the batch durable: enforce the cap, write totals and counters, and commit with
    /// `synchronous=FULL` (one fsync of the WAL for the whole batch).
    pub fn commit(mut self) -> Result<CommitReport, OutboxError> {
        let now = Timestamp::now();
        let mut report = CommitReport::default();
        if self.over_cap() {
            self.enforce_cap(&mut report)?;
            for lane in Lane::ALL {
                let n = report.dropped[usize::from(lane.code())];
                if n > 0 {
                    self.count(format!("dropped:{lane}"), n as i64);
                    tracing::warn!(lane = %lane, records = n, "outbox full: dropped oldest records");
                }
            }
        }
        self.cap_alarm(&report, now)?;
        if self.dead_letters_added {
            self.trim_dead_letters()?;
        }
        if report.dead_letters_dropped > 0 {
            self.count("dead_letters_dropped", report.dead_letters_dropped as i64);
            tracing::warn!(
                dead_letters = report.dead_letters_dropped,
                "outbox full: dropped oldest dead letters"
            );
        }
        self.dead_letter_alarm(now)?;
        if self.dead_delta.rows != 0 || self.dead_delta.bytes != 0 {
            crate::dead::add_meta(&self.tx, crate::keep::META_ROWS, self.dead_delta.rows)
                .and_then(|_| {
                    crate::dead::add_meta(&self.tx, crate::keep::META_BYTES, self.dead_delta.bytes)
                })
                .map_err(|e| sql("commit", &self.inner.path, e))?;
        }
        {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "UPDATE total SET rows = rows + ?2, bytes = bytes + ?3 WHERE lane = ?1",
                )
                .map_err(|e| sql("commit", &self.inner.path, e))?;
            for (lane, d) in self.delta.iter().enumerate() {
                if d.rows != 0 || d.bytes != 0 {
                    stmt.execute(params![lane as i64, d.rows, d.bytes])
                        .map_err(|e| sql("commit", &self.inner.path, e))?;
                }
            }
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO counter (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                )
                .map_err(|e| sql("commit", &self.inner.path, e))?;
            for (name, n) in &self.counters {
                stmt.execute(params![name, n])
                    .map_err(|e| sql("commit", &self.inner.path, e))?;
            }
        }
        let Batch {
            tx,
            inner,
            delta,
            dead_delta,
            ..
        } = self;
        tx.commit().map_err(|e| sql("commit", &inner.path, e))?;
        for (t, d) in inner.totals.iter_mut().zip(delta.iter()) {
            t.rows += d.rows;
            t.bytes += d.bytes;
        }
        inner.dead.rows += dead_delta.rows;
        inner.dead.bytes += dead_delta.bytes;
        Ok(report)
    }
}

/// The running totals per lane and of the dead-letter table.
pub(super) fn read_totals(
    conn: &Connection,
    path: &Path,
) -> Result<([LaneTotal; 4], LaneTotal), OutboxError> {
    let e = |err| sql("load totals", path, err);
    let mut totals = [LaneTotal::default(); 4];
    let mut stmt = conn
        .prepare_cached("SELECT lane, rows, bytes FROM total")
        .map_err(e)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
        .map_err(e)?;
    for row in rows {
        let (lane, rows, bytes) = row.map_err(e)?;
        if let Some(t) = usize::try_from(lane).ok().and_then(|l| totals.get_mut(l)) {
            *t = LaneTotal { rows, bytes };
        }
    }
    let meta = |key: &str| -> Result<i64, OutboxError> {
        conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .map(|v| v.unwrap_or(0))
            .map_err(e)
    };
    let dead = LaneTotal {
        rows: meta(crate::keep::META_ROWS)?,
        bytes: meta(crate::keep::META_BYTES)?,
    };
    Ok((totals, dead))
}
