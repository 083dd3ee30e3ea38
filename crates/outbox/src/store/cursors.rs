//! Drivers' bookkeeping committed with their records: source cursors, per-source journals,
//! device facts (table `device`); and the alarm event log (table `alarm_log`, see
//! `crate::alarm_log`).

use hearth_model::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Batch, Outbox};
use crate::error::{OutboxError, sql};

impl Outbox {
    /// The committed journal of `source`, oldest first.
    pub fn journal(&self, source: &str) -> Result<Vec<(i64, Vec<u8>)>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, entries FROM journal WHERE source = ?1 ORDER BY seq")
            .map_err(|e| sql("read journal", &self.inner.path, e))?;
        let rows = stmt
            .query_map(params![source], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<(i64, Vec<u8>)>, _>>())
            .map_err(|e| sql("read journal", &self.inner.path, e))?;
        Ok(rows)
    }

    /// Every committed cursor whose key starts with `prefix`, in key order.
    pub fn cursors(&self, prefix: &str) -> Result<Vec<(String, i64)>, OutboxError> {
        // Range scan on the primary key: [prefix, prefix + U+10FFFF) covers every extension.
        let end = format!("{prefix}\u{10FFFF}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source, value FROM cursor WHERE source >= ?1 AND source < ?2 \
                 ORDER BY source",
            )
            .map_err(|e| sql("read cursors", &self.inner.path, e))?;
        let rows = stmt
            .query_map(params![prefix, end], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<(String, i64)>, _>>())
            .map_err(|e| sql("read cursors", &self.inner.path, e))?;
        Ok(rows)
    }

    /// Every device's stored facts (table `device`), by id. Rows whose id no longer parses are
    /// skipped (logged without content).
    pub fn devices(&self) -> Result<Vec<hearth_model::Device>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, manufacturer, model, serial, firmware, eui64, battery FROM device \
                 ORDER BY id",
            )
            .map_err(|e| sql("read devices", &self.inner.path, e))?;
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<Row>, _>>())
            .map_err(|e| sql("read devices", &self.inner.path, e))?;
        Ok(rows
            .into_iter()
            .filter_map(
                |(id, manufacturer, model, serial, firmware, eui64, battery)| {
                    let Ok(id) = hearth_model::DeviceId::parse(&id) else {
                        tracing::warn!("outbox: a stored device id does not parse; skipped");
                        return None;
                    };
                    Some(hearth_model::Device {
                        id: Some(id),
                        manufacturer,
                        model,
                        serial,
                        firmware,
                        eui64,
                        battery_percent: battery.and_then(|b| u8::try_from(b).ok()),
                    })
                },
            )
            .collect())
    }

    /// The alarm event log, oldest first (see [`crate::alarm_log()`], which reads the file
    /// without a writer).
    pub fn alarm_log(&self, query: &crate::AlarmLogQuery) -> Result<crate::AlarmLog, OutboxError> {
        crate::alarm_log::query_on(&self.conn, &self.inner.path, query)
    }

    /// Last committed value of a source cursor (e.g. a device's record sequence number).
    pub fn cursor(&self, source: &str) -> Result<Option<i64>, OutboxError> {
        self.conn
            .query_row(
                "SELECT value FROM cursor WHERE source = ?1",
                params![source],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sql("read cursor", &self.inner.path, e))
    }
}

impl Batch<'_> {
    /// Append entries to the alarm event log and remove the oldest beyond
    /// [`OutboxOptions::max_alarm_log`](crate::OutboxOptions::max_alarm_log), in this batch;
    /// the removed ones are counted (`alarm_log_pruned`). Returns how many were removed.
    /// The caller composes the entries: never health values (see [`crate::AlarmLogEntry`]).
    pub fn log_alarm_events(
        &mut self,
        entries: &[crate::AlarmLogEntry],
    ) -> Result<u64, OutboxError> {
        let max = self.inner.opts.max_alarm_log;
        let pruned = crate::alarm_log::insert(&self.tx, entries, max)
            .map_err(self.err("log alarm events"))?;
        if pruned > 0 {
            self.count(crate::ALARM_LOG_PRUNED, pruned as i64);
        }
        Ok(pruned)
    }

    /// Append a journal entry of `source` (a driver's bookkeeping, e.g. which messages this
    /// batch covered) and forget its entries older than `keep_from`, atomically with the
    /// records of this batch.
    pub fn put_journal(
        &mut self,
        source: &str,
        seq: i64,
        entries: &[u8],
        keep_from: i64,
    ) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "INSERT INTO journal (source, seq, entries) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source, seq) DO UPDATE SET entries = excluded.entries",
            )
            .and_then(|mut s| s.execute(params![source, seq, entries]))
            .map_err(self.err("write journal"))?;
        self.tx
            .prepare_cached("DELETE FROM journal WHERE source = ?1 AND seq < ?2")
            .and_then(|mut s| s.execute(params![source, keep_from]))
            .map_err(self.err("prune journal"))?;
        Ok(())
    }

    /// Store what a device told about itself: the facts it tells now replace the stored ones,
    /// facts it does not tell are kept (`device.id` is ignored; `id` is the key).
    pub fn put_device(
        &mut self,
        id: &hearth_model::DeviceId,
        device: &hearth_model::Device,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "INSERT INTO device (id, manufacturer, model, serial, firmware, eui64, battery, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET
                   manufacturer = coalesce(excluded.manufacturer, manufacturer),
                   model        = coalesce(excluded.model, model),
                   serial       = coalesce(excluded.serial, serial),
                   firmware     = coalesce(excluded.firmware, firmware),
                   eui64        = coalesce(excluded.eui64, eui64),
                   battery      = coalesce(excluded.battery, battery),
                   updated_ms   = excluded.updated_ms",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_str(),
                    device.manufacturer,
                    device.model,
                    device.serial,
                    device.firmware,
                    device.eui64,
                    device.battery_percent.map(i64::from),
                    now.unix_millis(),
                ])
            })
            .map_err(self.err("write device facts"))?;
        Ok(())
    }

    /// Record a source cursor atomically with the records of this batch (invariant 1: a device
    /// or broker is told "got it" only for what this commit made durable).
    pub fn set_cursor(&mut self, source: &str, value: i64) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "INSERT INTO cursor (source, value) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![source, value]))
            .map_err(self.err("set cursor"))?;
        Ok(())
    }
}
