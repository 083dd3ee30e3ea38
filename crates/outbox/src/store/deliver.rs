//! Deliveries: claims (highest lane first), settlements of the receivers' answers, and the
//! removal of a record once no route needs it.

use hearth_model::{Lane, RecordId, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::{Batch, Claimed, Outbox, Outcome, RouteId, Ticket};
use crate::codec;
use crate::error::{OutboxError, sql};
use crate::options::RetryPolicy;

/// One row of the claim query: lane, seq, attempts, record id, payload.
type ClaimRow = (u8, i64, u32, Vec<u8>, Vec<u8>);

impl Outbox {
    /// Make one route's in-flight deliveries pending again: called when the route's sender
    /// (re)starts, since anything it had claimed before is no longer being sent.
    pub fn release_in_flight(&mut self, route: RouteId) -> Result<u64, OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE delivery SET state = 0 WHERE route = ?1 AND state = 1",
                params![route.0],
            )
            .map_err(|e| sql("release in-flight deliveries", &self.inner.path, e))?;
        Ok(n as u64)
    }
}

impl Batch<'_> {
    /// Hand up to `max` due records of one route to its sender, highest lane first, oldest
    /// first within a lane (invariant 3), marking them in flight.
    pub fn claim(
        &mut self,
        route: RouteId,
        max: usize,
        now: Timestamp,
    ) -> Result<Vec<Claimed>, OutboxError> {
        let rows: Vec<ClaimRow> = {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "SELECT d.lane, d.seq, d.attempts, i.id, i.payload
                     FROM delivery d JOIN item i ON i.seq = d.seq
                     WHERE d.route = ?1 AND d.state = 0 AND d.next_ms <= ?2
                     ORDER BY d.lane, d.seq LIMIT ?3",
                )
                .map_err(|e| sql("claim", &self.inner.path, e))?;
            let mapped = stmt
                .query_map(params![route.0, now.unix_millis(), max as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(|e| sql("claim", &self.inner.path, e))?;
            mapped
                .collect::<Result<_, _>>()
                .map_err(|e| sql("claim", &self.inner.path, e))?
        };
        let mut claimed = Vec::with_capacity(rows.len());
        for (lane_code, seq, attempts, id, payload) in rows {
            let lane = Lane::from_code(lane_code).unwrap_or(Lane::Welfare);
            let ticket = Ticket { seq, lane };
            let decoded = <[u8; 16]>::try_from(id.as_slice())
                .map_err(|_| format!("stored id has {} bytes, expected 16", id.len()))
                .and_then(|b| codec::decode(RecordId::from_bytes(b), &payload));
            match decoded {
                Ok(record) => {
                    self.tx
                        .prepare_cached(
                            "UPDATE delivery SET state = 1 WHERE route = ?1 AND lane = ?2 AND seq = ?3",
                        )
                        .and_then(|mut s| s.execute(params![route.0, lane_code, seq]))
                        .map_err(self.err("claim"))?;
                    claimed.push(Claimed {
                        ticket,
                        record,
                        attempts,
                    });
                }
                Err(why) => {
                    tracing::error!(seq, route = route.0, error = %why, "stored record cannot be decoded; dead-lettered");
                    let name = self.route_name(route);
                    self.dead_letter(
                        &format!("route:{name}"),
                        None,
                        attempts,
                        &format!("stored record cannot be decoded: {why}"),
                        &payload,
                        now,
                    )?;
                    self.finish_delivery(route, ticket)?;
                    self.count(format!("undecodable:{name}"), 1);
                }
            }
        }
        Ok(claimed)
    }

    fn route_name(&self, route: RouteId) -> String {
        self.inner
            .routes
            .iter()
            .find(|r| r.id == route)
            .map_or_else(|| format!("#{}", route.0), |r| r.name.clone())
    }

    fn retry_policy(&self, route: RouteId) -> RetryPolicy {
        self.inner
            .routes
            .iter()
            .find(|r| r.id == route)
            .map(|r| r.retry)
            .unwrap_or_default()
    }

    /// Apply a receiver's answers. Settling a delivery that is already finished is a no-op, so
    /// a late or repeated answer cannot finish a record twice.
    pub fn settle(
        &mut self,
        route: RouteId,
        answers: &[(Ticket, Outcome)],
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let name = self.route_name(route);
        let policy = self.retry_policy(route);
        for (ticket, outcome) in answers {
            match outcome {
                Outcome::Delivered => {
                    if self.finish_delivery(route, *ticket)? {
                        self.count(format!("delivered:{name}"), 1);
                    }
                }
                Outcome::Retry { not_before } => {
                    let attempts: Option<u32> = self
                        .tx
                        .prepare_cached(
                            "SELECT attempts FROM delivery WHERE route = ?1 AND lane = ?2 AND seq = ?3",
                        )
                        .and_then(|mut s| {
                            s.query_row(params![route.0, ticket.lane.code(), ticket.seq], |r| {
                                r.get(0)
                            })
                            .optional()
                        })
                        .map_err(self.err("settle"))?;
                    let Some(attempts) = attempts else { continue };
                    let attempts = attempts.saturating_add(1);
                    let mut next = now.saturating_add(policy.delay(attempts));
                    if let Some(nb) = not_before {
                        next = next.max(*nb);
                    }
                    self.tx
                        .prepare_cached(
                            "UPDATE delivery SET state = 0, attempts = ?4, next_ms = ?5
                             WHERE route = ?1 AND lane = ?2 AND seq = ?3",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                route.0,
                                ticket.lane.code(),
                                ticket.seq,
                                attempts,
                                next.unix_millis()
                            ])
                        })
                        .map_err(self.err("settle"))?;
                    self.count(format!("retried:{name}"), 1);
                }
                Outcome::Skipped { .. } => {
                    if self.finish_delivery(route, *ticket)? {
                        self.count(format!("skipped:{name}"), 1);
                    }
                }
                Outcome::Rejected { reason } => {
                    let row: Option<(u32, Vec<u8>, Vec<u8>)> = self
                        .tx
                        .prepare_cached(
                            "SELECT d.attempts, i.id, i.payload FROM delivery d JOIN item i ON i.seq = d.seq
                             WHERE d.route = ?1 AND d.lane = ?2 AND d.seq = ?3",
                        )
                        .and_then(|mut s| {
                            s.query_row(params![route.0, ticket.lane.code(), ticket.seq], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })
                            .optional()
                        })
                        .map_err(self.err("settle"))?;
                    let Some((attempts, id, payload)) = row else {
                        continue;
                    };
                    let record = <[u8; 16]>::try_from(id.as_slice())
                        .ok()
                        .and_then(|b| codec::decode(RecordId::from_bytes(b), &payload).ok());
                    self.dead_letter(
                        &format!("route:{name}"),
                        record.as_ref().map(|r| (r, r.id())),
                        attempts.saturating_add(1),
                        reason,
                        &payload,
                        now,
                    )?;
                    self.finish_delivery(route, *ticket)?;
                    self.count(format!("dead:{name}"), 1);
                }
            }
        }
        Ok(())
    }

    /// Remove one open delivery; remove the record once no route needs it any more.
    /// Returns whether a delivery was open.
    fn finish_delivery(&mut self, route: RouteId, ticket: Ticket) -> Result<bool, OutboxError> {
        let removed = self
            .tx
            .prepare_cached("DELETE FROM delivery WHERE route = ?1 AND lane = ?2 AND seq = ?3")
            .and_then(|mut s| s.execute(params![route.0, ticket.lane.code(), ticket.seq]))
            .map_err(self.err("settle"))?;
        if removed == 0 {
            return Ok(false);
        }
        // Most records have one route left at this point: delete them in one statement, and
        // only decrement the counter of records that other routes still need.
        let gone: Option<i64> = self
            .tx
            .prepare_cached("DELETE FROM item WHERE seq = ?1 AND routes_left <= 1 RETURNING bytes")
            .and_then(|mut s| s.query_row(params![ticket.seq], |r| r.get(0)).optional())
            .map_err(self.err("settle"))?;
        match gone {
            Some(bytes) => {
                let t = &mut self.delta[usize::from(ticket.lane.code())];
                t.rows -= 1;
                t.bytes -= bytes;
            }
            None => {
                self.tx
                    .prepare_cached("UPDATE item SET routes_left = routes_left - 1 WHERE seq = ?1")
                    .and_then(|mut s| s.execute(params![ticket.seq]))
                    .map_err(self.err("settle"))?;
            }
        }
        Ok(true)
    }
}
