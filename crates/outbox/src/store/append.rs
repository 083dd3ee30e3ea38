//! Append: a record is stored with one pending delivery per route of its category (fan-out,
//! invariant 5), or dead-lettered on ingest (invalid, unrouted, unparsable input).

use hearth_model::{Record, RecordId, Timestamp, Value};
use rusqlite::params;

use super::{AppendOutcome, Batch, Inner};
use crate::codec;
use crate::error::{OutboxError, sql};

impl Batch<'_> {
    /// Store a record and one pending delivery per route of its category.
    pub fn append(
        &mut self,
        record: &Record,
        now: Timestamp,
    ) -> Result<AppendOutcome, OutboxError> {
        let payload = codec::encode(record);
        let id = self.inner.stored_id(record);
        if let Some(why) = invalid(record) {
            self.dead_letter(
                "invalid",
                Some((record, id)),
                0,
                &format!("record breaks a model rule: {why}"),
                &payload,
                now,
            )?;
            self.count("invalid", 1);
            return Ok(AppendOutcome::Invalid(why));
        }
        let category = record.category();
        let mut routes = self.inner.fan_out[usize::from(category.code())].clone();
        if matches!(record, Record::Reading(_)) {
            routes.retain(|r| !self.inner.alarms_only.contains(r));
        } else {
            routes.retain(|r| !self.inner.readings_only.contains(r));
        }
        if routes.is_empty() {
            let seen = self
                .tx
                .prepare_cached("SELECT 1 FROM item WHERE id = ?1")
                .and_then(|mut s| s.exists(params![&id.as_bytes()[..]]))
                .map_err(self.err("append"))?;
            if seen {
                self.count("duplicates", 1);
                return Ok(AppendOutcome::Duplicate);
            }
            self.dead_letter(
                "unrouted",
                Some((record, id)),
                0,
                &format!(
                    "no route carries this {} of category {category}; add a [[route]] that takes \
                     it (FHIR and PCD-01 routes take readings only; records already \
                     dead-lettered stay in the dead_letter table)",
                    match record {
                        Record::Reading(_) => "reading",
                        Record::Alarm(_) => "alarm",
                        Record::Technical(_) => "technical alarm",
                    }
                ),
                &payload,
                now,
            )?;
            self.count("unrouted", 1);
            return Ok(AppendOutcome::Unrouted);
        }
        let lane = record.lane();
        let bytes = payload.len() as i64;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO item (id, lane, category, received_ms, bytes, routes_left, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &id.as_bytes()[..],
                    lane.code(),
                    category.code(),
                    record.received_at().unix_millis(),
                    bytes,
                    routes.len() as i64,
                    payload,
                ])
            })
            .map_err(self.err("append"))?;
        if inserted == 0 {
            self.count("duplicates", 1);
            return Ok(AppendOutcome::Duplicate);
        }
        let seq = self.tx.last_insert_rowid();
        {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO delivery (route, lane, seq, state, attempts, next_ms)
                     VALUES (?1, ?2, ?3, 0, 0, ?4)",
                )
                .map_err(|e| sql("append", &self.inner.path, e))?;
            for route in &routes {
                stmt.execute(params![route.0, lane.code(), seq, now.unix_millis()])
                    .map_err(|e| sql("append", &self.inner.path, e))?;
            }
        }
        let t = &mut self.delta[usize::from(lane.code())];
        t.rows += 1;
        t.bytes += bytes;
        self.count("ingested", 1);
        Ok(AppendOutcome::Stored)
    }

    /// Keep input that a driver could not parse, with the parser's error (invariant 6).
    pub fn dead_letter_input(
        &mut self,
        source: &str,
        raw: &[u8],
        error: &str,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        self.dead_letter(&format!("input:{source}"), None, 0, error, raw, now)?;
        self.count(format!("malformed:{source}"), 1);
        Ok(())
    }

    /// Keep `payload` with its reason. `record` is the record with the id it is stored under
    /// (the gateway-scoped id on ingest, the stored id when a route refused it).
    pub(super) fn dead_letter(
        &mut self,
        origin: &str,
        record: Option<(&Record, RecordId)>,
        attempts: u32,
        reason: &str,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        // Raw input keeps only a prefix, with the original length and hash (issue 6: a driver
        // refusing 1.2 MB messages grew the file by their full size); a record stays whole, so
        // that it can be requeued.
        let kept = crate::keep::kept_payload(origin, payload);
        self.tx
            .prepare_cached(
                "INSERT INTO dead_letter (origin, record_id, lane, category, received_ms, dead_ms,
                                          attempts, reason, payload, payload_len, payload_hash,
                                          truncated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    origin,
                    record.map(|(_, id)| id.as_bytes().to_vec()),
                    record.map(|(r, _)| r.lane().code()),
                    record.map(|(r, _)| r.category().code()),
                    record.map(|(r, _)| r.received_at().unix_millis()),
                    now.unix_millis(),
                    attempts,
                    reason,
                    kept,
                    payload.len() as i64,
                    crate::keep::fnv1a(payload) as i64,
                    kept.len() < payload.len(),
                ])
            })
            .map_err(self.err("dead-letter"))?;
        self.dead_letters_added = true;
        self.dead_delta.rows += 1;
        self.dead_delta.bytes += kept.len() as i64;
        Ok(())
    }
}

/// A model rule the record breaks, if any.
fn invalid(record: &Record) -> Option<String> {
    fn check(v: &Value) -> Option<String> {
        match v {
            Value::Numeric { value, .. } if !value.is_finite() => Some(
                "a numeric value is not finite; drivers must use Value::Absent for NaN/INF"
                    .to_owned(),
            ),
            Value::Compound(parts) => parts.iter().find_map(|c| check(&c.value)),
            _ => None,
        }
    }
    match record {
        Record::Reading(r) => check(&r.value),
        _ => None,
    }
}

impl Inner {
    /// The id a record is stored and sent under: scoped to the gateway when one is configured.
    fn stored_id(&self, record: &Record) -> RecordId {
        match self.opts.gateway {
            Some(g) => record.id().scoped(g),
            None => record.id(),
        }
    }
}
