//! The outbox stays bounded: the cap (dropping the oldest records of the lowest lanes, never
//! alarms; invariant 4), retention (expiry) of records and dead letters, and the cap and
//! dead-letter technical alarms.

use hearth_model::{
    AlarmState, Category, Lane, Record, Severity, TechnicalAlarm, TechnicalKind, Timestamp,
};
use rusqlite::{OptionalExtension, params};

use super::{Batch, CommitReport};
use crate::error::{OutboxError, sql};

const META_CAP_ALARM: &str = "cap_alarm_raised";
const META_DEAD_ALARM: &str = "dead_letter_alarm_raised";
/// The technical alarm kind raised while the outbox holds dead letters.
pub const DEAD_LETTERS_KIND: &str = "dead_letters";
/// The cap alarm clears when occupancy falls below this fraction of the cap.
const CAP_CLEAR_FRACTION: f64 = 0.8;

impl Batch<'_> {
    fn remove_item(&mut self, seq: i64, lane: Lane, bytes: i64) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached("DELETE FROM item WHERE seq = ?1")
            .and_then(|mut s| s.execute(params![seq]))
            .map_err(self.err("remove record"))?;
        let t = &mut self.delta[usize::from(lane.code())];
        t.rows -= 1;
        t.bytes -= bytes;
        Ok(())
    }

    /// Remove a record and all its open deliveries (cap or retention).
    fn drop_item(&mut self, seq: i64, lane: Lane, bytes: i64) -> Result<(), OutboxError> {
        let ids = self.inner.all_route_ids.clone();
        {
            let mut stmt = self
                .tx
                .prepare_cached("DELETE FROM delivery WHERE route = ?1 AND lane = ?2 AND seq = ?3")
                .map_err(|e| sql("drop record", &self.inner.path, e))?;
            for r in ids {
                stmt.execute(params![r.0, lane.code(), seq])
                    .map_err(|e| sql("drop record", &self.inner.path, e))?;
            }
        }
        self.remove_item(seq, lane, bytes)
    }

    /// Drop records older than their category's retention, oldest first. Returns how many were
    /// dropped per lane; a technical alarm is stored when any were.
    pub fn expire(&mut self, now: Timestamp) -> Result<[u64; 4], OutboxError> {
        let retention = self.inner.opts.retention;
        let youngest_possible =
            now.unix_millis() - i64::try_from(retention.shortest().as_millis()).unwrap_or(i64::MAX);
        let mut expired = [0u64; 4];
        let mut after = 0i64;
        'scan: loop {
            let rows: Vec<(i64, u8, u8, i64, i64)> = {
                let mut stmt = self
                    .tx
                    .prepare_cached(
                        "SELECT seq, lane, category, received_ms, bytes FROM item
                         WHERE seq > ?1 ORDER BY seq LIMIT 512",
                    )
                    .map_err(|e| sql("expire", &self.inner.path, e))?;
                let mapped = stmt
                    .query_map(params![after], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(|e| sql("expire", &self.inner.path, e))?;
                mapped
                    .collect::<Result<_, _>>()
                    .map_err(|e| sql("expire", &self.inner.path, e))?
            };
            if rows.is_empty() {
                break;
            }
            for (seq, lane, category, received_ms, bytes) in rows {
                after = seq;
                // Records are stored in arrival order: once one is younger than the shortest
                // retention, none after it can have expired (barring a clock step backwards).
                if received_ms > youngest_possible {
                    break 'scan;
                }
                let category = Category::from_code(category).unwrap_or(Category::Health);
                let limit = now.unix_millis()
                    - i64::try_from(retention.of(category).as_millis()).unwrap_or(i64::MAX);
                let lane = Lane::from_code(lane).unwrap_or(Lane::Welfare);
                // Alarms are never dropped, not for the cap and not for age (invariant 4):
                // they leave the outbox only when delivered or rejected by the receiver.
                if received_ms < limit && lane.droppable() {
                    self.drop_item(seq, lane, bytes)?;
                    expired[usize::from(lane.code())] += 1;
                }
            }
        }
        let total: u64 = expired.iter().sum();
        if total > 0 {
            for lane in Lane::ALL {
                let n = expired[usize::from(lane.code())];
                if n > 0 {
                    self.count(format!("expired:{lane}"), n as i64);
                }
            }
            let alarm = TechnicalAlarm::new(
                "outbox",
                TechnicalKind::DataExpired,
                Severity::Major,
                AlarmState::Raised,
                format!(
                    "{total} records were older than their category's retention and were dropped \
                     undelivered (per lane alarm/technical/measurement/welfare: {expired:?}); \
                     check that the receivers are reachable"
                ),
                now,
            );
            self.append(&Record::Technical(alarm), now)?;
        }
        Ok(expired)
    }

    fn totals_after(&self) -> (i64, i64) {
        let mut rows = 0;
        let mut bytes = 0;
        for (t, d) in self.inner.totals.iter().zip(self.delta.iter()) {
            rows += t.rows + d.rows;
            bytes += t.bytes + d.bytes;
        }
        // Dead letters count in the cap too (issue 6).
        rows += self.inner.dead.rows + self.dead_delta.rows;
        bytes += self.inner.dead.bytes + self.dead_delta.bytes;
        (rows, bytes)
    }

    pub(super) fn over_cap(&self) -> bool {
        let (rows, bytes) = self.totals_after();
        rows as u64 > self.inner.opts.max_rows
            || bytes as u64 + self.inner.opts.wal_reserve() > self.inner.opts.max_bytes
    }

    /// Drop the oldest records of the lowest lanes until the outbox is under its cap; never
    /// alarms (invariant 4).
    /// Dead letters go first within their lane (they wait for an operator, records for a
    /// receiver), and dead letters without a lane (raw input, undecodable rows) before all.
    pub(super) fn enforce_cap(&mut self, report: &mut CommitReport) -> Result<(), OutboxError> {
        report.dead_letters_dropped += self.drop_dead_letters(None)?;
        for lane in Lane::ALL.into_iter().rev().filter(|l| l.droppable()) {
            report.dead_letters_dropped += self.drop_dead_letters(Some(lane))?;
            while self.over_cap() {
                let oldest: Vec<(i64, i64)> = {
                    let mut stmt = self
                        .tx
                        .prepare_cached(
                            "SELECT seq, bytes FROM item WHERE lane = ?1 ORDER BY seq LIMIT 256",
                        )
                        .map_err(|e| sql("enforce cap", &self.inner.path, e))?;
                    let mapped = stmt
                        .query_map(params![lane.code()], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(|e| sql("enforce cap", &self.inner.path, e))?;
                    mapped
                        .collect::<Result<_, _>>()
                        .map_err(|e| sql("enforce cap", &self.inner.path, e))?
                };
                if oldest.is_empty() {
                    break;
                }
                for (seq, bytes) in oldest {
                    if !self.over_cap() {
                        break;
                    }
                    self.drop_item(seq, lane, bytes)?;
                    report.dropped[usize::from(lane.code())] += 1;
                }
            }
        }
        report.over_cap_with_alarms = self.over_cap();
        Ok(())
    }

    /// Drop the oldest dead letters of one lane (`None`: those without a lane) while over the
    /// cap. Never called for the alarm lane.
    fn drop_dead_letters(&mut self, lane: Option<Lane>) -> Result<u64, OutboxError> {
        let mut dropped = 0;
        while self.over_cap() {
            let oldest: Vec<i64> = {
                let mut stmt = self
                    .tx
                    .prepare_cached(
                        "SELECT id FROM dead_letter WHERE lane IS ?1 ORDER BY id LIMIT 256",
                    )
                    .map_err(|e| sql("enforce cap", &self.inner.path, e))?;
                let mapped = stmt
                    .query_map(params![lane.map(Lane::code)], |r| r.get(0))
                    .map_err(|e| sql("enforce cap", &self.inner.path, e))?;
                mapped
                    .collect::<Result<_, _>>()
                    .map_err(|e| sql("enforce cap", &self.inner.path, e))?
            };
            if oldest.is_empty() {
                break;
            }
            for id in oldest {
                if !self.over_cap() {
                    break;
                }
                let bytes: Option<i64> = self
                    .tx
                    .prepare_cached(
                        "DELETE FROM dead_letter WHERE id = ?1 RETURNING length(payload)",
                    )
                    .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
                    .map_err(self.err("enforce cap"))?;
                if let Some(bytes) = bytes {
                    self.dead_delta.rows -= 1;
                    self.dead_delta.bytes -= bytes;
                    dropped += 1;
                }
            }
        }
        Ok(dropped)
    }

    fn meta(&self, key: &str) -> Result<i64, OutboxError> {
        self.tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .map(|v| v.unwrap_or(0))
            .map_err(self.err("read meta"))
    }

    fn set_meta(&mut self, key: &str, value: i64) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![key, value]))
            .map_err(self.err("write meta"))?;
        Ok(())
    }

    /// Raise the cap alarm on the first drop, clear it once occupancy is well below the cap.
    pub(super) fn cap_alarm(
        &mut self,
        report: &CommitReport,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let raised = self.meta(META_CAP_ALARM)? != 0;
        let (rows, bytes) = self.totals_after();
        let opts = &self.inner.opts;
        let below = (rows as f64) < opts.max_rows as f64 * CAP_CLEAR_FRACTION
            && ((bytes as u64 + opts.wal_reserve()) as f64)
                < opts.max_bytes as f64 * CAP_CLEAR_FRACTION;
        let dropped = report.dropped_total() + report.dead_letters_dropped;
        let state = if !raised && (dropped > 0 || report.over_cap_with_alarms) {
            AlarmState::Raised
        } else if raised && below {
            AlarmState::Cleared
        } else {
            return Ok(());
        };
        let message = match state {
            AlarmState::Raised => format!(
                "outbox reached its cap ({rows} records and dead letters, {bytes} payload bytes; \
                 caps {} records, {} bytes) and dropped {dropped} records and dead letters, \
                 oldest and lowest priority first (records per lane: {:?}, dead letters: {}); \
                 alarms are never dropped. Check the receivers' reachability",
                opts.max_rows, opts.max_bytes, report.dropped, report.dead_letters_dropped
            ),
            AlarmState::Cleared => {
                format!(
                    "outbox is below {}% of its cap again",
                    CAP_CLEAR_FRACTION * 100.0
                )
            }
        };
        self.set_meta(META_CAP_ALARM, i64::from(state == AlarmState::Raised))?;
        let alarm = TechnicalAlarm::new(
            "outbox",
            TechnicalKind::DataDropped,
            Severity::Major,
            state,
            message,
            now,
        );
        self.append(&Record::Technical(alarm), now)?;
        Ok(())
    }

    /// Raise `dead_letters` once when dead letters appear (with their count), clear it once the
    /// table is empty again (requeued, or dropped). Only when the options ask for it (the
    /// daemon does), and stored only if a route takes technical alarms: a dead letter about
    /// dead letters would feed itself.
    pub(super) fn dead_letter_alarm(&mut self, now: Timestamp) -> Result<(), OutboxError> {
        if !self.inner.opts.dead_letter_alarm {
            return Ok(());
        }
        let rows = self.inner.dead.rows + self.dead_delta.rows;
        let raised = self.meta(META_DEAD_ALARM)? != 0;
        let (state, message) = if !raised && rows > 0 {
            (
                AlarmState::Raised,
                format!(
                    "{rows} dead letters in the outbox: records a receiver rejected for good, \
                     records no route takes, or input a driver could not parse. List them with \
                     `hearth outbox dead-letters`, fix the cause, then put records back with \
                     `hearth outbox requeue`"
                ),
            )
        } else if raised && rows <= 0 {
            (
                AlarmState::Cleared,
                "the outbox holds no dead letters any more".to_owned(),
            )
        } else {
            return Ok(());
        };
        self.set_meta(META_DEAD_ALARM, i64::from(state == AlarmState::Raised))?;
        tracing::warn!(dead_letters = rows, state = ?state, "dead letters alarm");
        let alarm = Record::Technical(TechnicalAlarm::new(
            "outbox",
            TechnicalKind::Other(DEAD_LETTERS_KIND.to_owned()),
            Severity::Major,
            state,
            message,
            now,
        ));
        let takes_it = self.inner.fan_out[usize::from(alarm.category().code())]
            .iter()
            .any(|r| !self.inner.readings_only.contains(r));
        if takes_it {
            self.append(&alarm, now)?;
        }
        Ok(())
    }

    pub(super) fn trim_dead_letters(&mut self) -> Result<(), OutboxError> {
        let max = self.inner.opts.max_dead_letters as i64;
        let removed: Vec<i64> = self
            .tx
            .prepare_cached(
                "DELETE FROM dead_letter WHERE id <= (SELECT max(id) FROM dead_letter) - ?1
                 RETURNING length(payload)",
            )
            .and_then(|mut s| {
                s.query_map(params![max], |r| r.get(0))
                    .and_then(|m| m.collect::<Result<_, _>>())
            })
            .map_err(self.err("trim dead letters"))?;
        let trimmed = removed.len();
        self.dead_delta.rows -= trimmed as i64;
        self.dead_delta.bytes -= removed.iter().sum::<i64>();
        if trimmed > 0 {
            self.count("dead_letters_trimmed", trimmed as i64);
        }
        Ok(())
    }
}
