//! Dead letters for operators: list them (`hearth outbox dead-letters`) and put records back as
//! pending deliveries on their route once the cause is fixed (`hearth outbox requeue`).
//!
//! Both work on the file directly, with the daemon stopped or running: listing reads a snapshot
//! on a read-only connection; a requeue is one `BEGIN IMMEDIATE` transaction that waits for the
//! writer's current commit (busy timeout), so the daemon sees all of it or none of it. The
//! writer notices the change (`PRAGMA data_version`) and reloads its running totals before its
//! next batch; the route senders claim the requeued deliveries at their next poll (≤ 1 s idle).
//!
//! Only what is a whole record can be requeued: records a route's receiver rejected
//! (`route:<name>` rows with a record id). Raw input a driver could not parse (`input:`) keeps
//! only a prefix and is never a record; `unrouted` and `invalid` rows have no route to go back to.

use std::path::Path;
use std::time::Duration;

use hearth_model::{Category, Lane, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{OutboxError, sql};
use crate::keep::{META_BYTES, META_ROWS, fnv1a};
use crate::schema;

/// One dead letter as an operator sees it: never the payload itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Row id (what `requeue --id` takes).
    pub id: i64,
    /// `route:<name>`, `input:<source>`, `unrouted` or `invalid`.
    pub origin: String,
    /// The route of a `route:` row.
    pub route: Option<String>,
    /// The record's lane, if it is a record.
    pub lane: Option<Lane>,
    /// The record's category, if it is a record.
    pub category: Option<Category>,
    /// When hearth received the record.
    pub received: Option<Timestamp>,
    /// When it became a dead letter.
    pub dead_at: Timestamp,
    /// Delivery attempts made.
    pub attempts: u32,
    /// What went wrong.
    pub reason: String,
    /// Length of the original payload (record or raw input), in bytes.
    pub size: u64,
    /// Bytes kept in the table (less than `size` for truncated raw input).
    pub stored_bytes: u64,
    /// FNV-1a hash of the original payload.
    pub hash: u64,
    /// Only a prefix of the original payload is kept.
    pub truncated: bool,
    /// `hearth outbox requeue` can put it back on its route.
    pub requeueable: bool,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    /// Only those a route's receiver rejected (`route:<name>`).
    pub route: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// Which dead letters to requeue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// These row ids.
    Ids(Vec<i64>),
    /// Everything a route's receiver rejected.
    Route(String),
    /// Rows whose reason contains this text (case-insensitive).
    ReasonContains(String),
    /// Every requeueable row.
    All,
}

/// What a requeue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequeueReport {
    /// Dead letters that are pending deliveries again, per route (name, count).
    pub requeued: Vec<(String, u64)>,
    /// Selected dead letters that stayed, with why (row id, reason).
    pub skipped: Vec<(i64, String)>,
}

impl RequeueReport {
    /// Total dead letters requeued.
    pub fn total(&self) -> u64 {
        self.requeued.iter().map(|(_, n)| n).sum()
    }
}

fn missing(path: &Path) -> OutboxError {
    OutboxError::Io {
        what: "no outbox database at",
        path: path.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

const COLUMNS: &str = "id, origin, record_id IS NOT NULL, lane, category, received_ms, dead_ms, \
     attempts, reason, length(payload), coalesce(payload_len, length(payload)), payload_hash, \
     truncated, CASE WHEN payload_hash IS NULL THEN payload END";

type Row = (
    i64,
    String,
    bool,
    Option<u8>,
    Option<u8>,
    Option<i64>,
    i64,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    bool,
    Option<Vec<u8>>,
);

fn requeueable(origin: &str, has_record: bool, lane: Option<u8>, truncated: bool) -> bool {
    origin.starts_with("route:") && has_record && lane.is_some() && !truncated
}

fn to_dead_letter(r: Row) -> DeadLetter {
    let (
        id,
        origin,
        has_record,
        lane,
        category,
        received,
        dead_ms,
        attempts,
        reason,
        stored,
        size,
        hash,
        truncated,
        payload,
    ) = r;
    let hash = hash.map_or_else(|| fnv1a(payload.as_deref().unwrap_or(&[])), |h| h as u64);
    DeadLetter {
        id,
        route: origin.strip_prefix("route:").map(str::to_owned),
        requeueable: requeueable(&origin, has_record, lane, truncated),
        origin,
        lane: lane.and_then(Lane::from_code),
        category: category.and_then(Category::from_code),
        received: received.map(Timestamp::from_unix_millis),
        dead_at: Timestamp::from_unix_millis(dead_ms),
        attempts: u32::try_from(attempts).unwrap_or(0),
        reason,
        size: size.max(0) as u64,
        stored_bytes: stored.max(0) as u64,
        hash,
        truncated,
    }
}

/// List dead letters, newest first, on a read-only connection (safe while the daemon runs).
/// Also returns how many rows the table holds in all.
pub fn dead_letters(
    path: &Path,
    query: &DeadLetterQuery,
) -> Result<(Vec<DeadLetter>, u64), OutboxError> {
    if !path.exists() {
        return Err(missing(path));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql("open for dead letters", path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| sql("open for dead letters", path, e))?;
    let e = |err| sql("list dead letters", path, err);
    let version = schema::version(&conn, path)?;
    if version < schema::DEAD_LETTER_COLUMNS_VERSION {
        // A file of an older build: the columns of version 3 are not there yet.
        return Err(OutboxError::OldSchema {
            path: path.to_owned(),
            found: version,
            known: schema::SCHEMA_VERSION,
        });
    }
    let total: i64 = conn
        .query_row("SELECT count(*) FROM dead_letter", [], |r| r.get(0))
        .map_err(e)?;
    let limit = query
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let origin = query.route.as_ref().map(|r| format!("route:{r}"));
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM dead_letter WHERE ?1 IS NULL OR origin = ?1 \
             ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(e)?;
    let rows = stmt
        .query_map(params![origin, limit], read_row)
        .and_then(|m| m.collect::<Result<Vec<Row>, _>>())
        .map_err(e)?;
    Ok((
        rows.into_iter().map(to_dead_letter).collect(),
        total.max(0) as u64,
    ))
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

/// Put the selected dead letters back as pending deliveries on their route, in one
/// transaction. Safe while the daemon runs (see the module docs). The record's receive time
/// becomes now, so its retention counts again from the requeue.
pub fn requeue(path: &Path, which: &Requeue) -> Result<RequeueReport, OutboxError> {
    if !path.exists() {
        return Err(missing(path));
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql("open for requeue", path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| sql("open for requeue", path, e))?;
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(|e| sql("open for requeue", path, e))?;
    schema::migrate(&mut conn, path)?;
    let now = Timestamp::now().unix_millis();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| sql("begin requeue", path, e))?;
    let e = |err| sql("requeue", path, err);
    let (filter, arg): (&str, Option<String>) = match which {
        Requeue::Ids(_) | Requeue::All => ("1", None),
        Requeue::Route(r) => ("origin = ?1", Some(format!("route:{r}"))),
        Requeue::ReasonContains(t) => ("instr(lower(reason), lower(?1)) > 0", Some(t.clone())),
    };
    let sql_text = format!(
        "SELECT id, origin, record_id, lane, category, payload, truncated FROM dead_letter \
         WHERE {filter} ORDER BY id"
    );
    type Candidate = (
        i64,
        String,
        Option<Vec<u8>>,
        Option<u8>,
        Option<u8>,
        Vec<u8>,
        bool,
    );
    let mut candidates: Vec<Candidate> = {
        let mut stmt = tx.prepare(&sql_text).map_err(e)?;
        let map = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        };
        match &arg {
            Some(a) => stmt.query_map(params![a], map),
            None => stmt.query_map([], map),
        }
        .and_then(|m| m.collect::<Result<_, _>>())
        .map_err(e)?
    };
    let mut report = RequeueReport::default();
    if let Requeue::Ids(ids) = which {
        candidates.retain(|c| ids.contains(&c.0));
        for id in ids {
            if !candidates.iter().any(|c| c.0 == *id) {
                report
                    .skipped
                    .push((*id, "no dead letter with this id".to_owned()));
            }
        }
    }
    let (mut rows_delta, mut bytes_delta) = (0i64, 0i64);
    let mut totals = [(0i64, 0i64); 4];
    for (id, origin, record_id, lane, category, payload, truncated) in candidates {
        let why_not = if origin.starts_with("input:") {
            Some(
                "raw input a driver could not parse, not a record; the device or driver must send it again",
            )
        } else if truncated {
            Some("only a prefix of it is kept")
        } else if !origin.starts_with("route:") {
            Some("no route took it (unrouted or invalid); it cannot be requeued")
        } else if record_id.is_none() || lane.is_none() {
            Some("the stored record could not be decoded; it cannot be sent")
        } else {
            None
        };
        let (Some(route_name), Some(record_id), Some(lane), None) =
            (origin.strip_prefix("route:"), record_id, lane, why_not)
        else {
            report
                .skipped
                .push((id, why_not.unwrap_or("not requeueable").to_owned()));
            continue;
        };
        let route_id: Option<i64> = tx
            .query_row(
                "SELECT id FROM route WHERE name = ?1",
                params![route_name],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        let Some(route_id) = route_id else {
            report
                .skipped
                .push((id, format!("route {route_name:?} is not in this outbox")));
            continue;
        };
        let existing: Option<i64> = tx
            .query_row(
                "SELECT seq FROM item WHERE id = ?1",
                params![record_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        let seq = match existing {
            Some(seq) => {
                let open: bool = tx
                    .query_row(
                        "SELECT count(*) > 0 FROM delivery WHERE route = ?1 AND lane = ?2 AND seq = ?3",
                        params![route_id, lane, seq],
                        |r| r.get(0),
                    )
                    .map_err(e)?;
                if !open {
                    tx.execute(
                        "UPDATE item SET routes_left = routes_left + 1 WHERE seq = ?1",
                        params![seq],
                    )
                    .map_err(e)?;
                }
                // Still open on this route: only the dead letter goes.
                if open { None } else { Some(seq) }
            }
            None => {
                tx.execute(
                    "INSERT INTO item (id, lane, category, received_ms, bytes, routes_left, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                    params![
                        record_id,
                        lane,
                        category.unwrap_or(0),
                        now,
                        payload.len() as i64,
                        payload
                    ],
                )
                .map_err(e)?;
                if let Some(t) = totals.get_mut(usize::from(lane)) {
                    t.0 += 1;
                    t.1 += payload.len() as i64;
                }
                Some(tx.last_insert_rowid())
            }
        };
        if let Some(seq) = seq {
            // Due at once (next_ms 0), whatever the daemon's clock says.
            tx.execute(
                "INSERT INTO delivery (route, lane, seq, state, attempts, next_ms)
                 VALUES (?1, ?2, ?3, 0, 0, 0) ON CONFLICT DO NOTHING",
                params![route_id, lane, seq],
            )
            .map_err(e)?;
        }
        tx.execute("DELETE FROM dead_letter WHERE id = ?1", params![id])
            .map_err(e)?;
        rows_delta -= 1;
        bytes_delta -= payload.len() as i64;
        match report.requeued.iter_mut().find(|(n, _)| n == route_name) {
            Some((_, n)) => *n += 1,
            None => report.requeued.push((route_name.to_owned(), 1)),
        }
    }
    for (lane, (rows, bytes)) in totals.iter().enumerate() {
        if *rows != 0 {
            tx.execute(
                "UPDATE total SET rows = rows + ?2, bytes = bytes + ?3 WHERE lane = ?1",
                params![lane as i64, rows, bytes],
            )
            .map_err(e)?;
        }
    }
    if rows_delta != 0 {
        add_meta(&tx, META_ROWS, rows_delta).map_err(e)?;
        add_meta(&tx, META_BYTES, bytes_delta).map_err(e)?;
    }
    for (route, n) in &report.requeued {
        tx.execute(
            "INSERT INTO counter (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            params![format!("requeued:{route}"), *n as i64],
        )
        .map_err(e)?;
    }
    tx.commit()
        .map_err(|err| sql("commit requeue", path, err))?;
    if report.total() > 0 {
        tracing::info!(
            requeued = report.total(),
            "dead letters are pending deliveries again"
        );
    }
    Ok(report)
}

/// Add `delta` to an integer in `meta`.
pub(crate) fn add_meta(conn: &Connection, key: &str, delta: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![key, delta])
}
