//! The alarm event log (REQUIREMENTS S3, issue 15): every thing that happened to an alarm on its
//! way to a response centre — queued, each attempt at each receiver, its answer, handled,
//! failing — durably, in table `alarm_log`, for `hearth alarms log`.
//!
//! The outbox knows no wire format: an entry is generic text. The caller (the alarm route's
//! observer in the daemon) chooses the short `event` word and composes `detail`, a small JSON
//! object (kind, device, criticality, message type, verdict, reason …). **Never put health
//! values (measurements, free text from the person) into an entry**: the log is shown to
//! operators and kept long after the alarm left the outbox.
//!
//! Bounded: at most [`OutboxOptions::max_alarm_log`](crate::OutboxOptions::max_alarm_log) rows
//! (default [`DEFAULT_MAX_ALARM_LOG`]); the oldest go in the same transaction that adds new
//! ones, counted in the counter [`ALARM_LOG_PRUNED`]. Text fields are cut to
//! [`ALARM_LOG_TEXT_MAX_BYTES`], a detail to [`ALARM_LOG_DETAIL_MAX_BYTES`], so the table never
//! grows past roughly `max_alarm_log` × 1.6 KiB (typically ~300 bytes a row).
//!
//! Reading ([`alarm_log()`]) opens the file read-only, like [`crate::stats()`]: safe while the
//! daemon runs. A row whose detail is not a JSON object (a damaged row) is still listed, with
//! [`LoggedAlarmEvent::detail_unreadable`] set.

use std::path::Path;
use std::time::Duration;

use hearth_model::{RecordId, Timestamp};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::error::{OutboxError, sql};
use crate::schema;

/// The default bound of the alarm log, in entries.
pub const DEFAULT_MAX_ALARM_LOG: u64 = 50_000;

/// The counter of entries removed to keep the log within its bound.
pub const ALARM_LOG_PRUNED: &str = "alarm_log_pruned";

/// Route, event, receiver and reference are cut to this many bytes (at a character boundary).
pub const ALARM_LOG_TEXT_MAX_BYTES: usize = 128;

/// A detail whose JSON text is longer than this is replaced by `{"omitted_bytes": n}`; string
/// values in it are first cut to [`ALARM_LOG_TEXT_MAX_BYTES`] × 2.
pub const ALARM_LOG_DETAIL_MAX_BYTES: usize = 1024;

/// One entry of the alarm event log, as the caller composes it.
///
/// `event` is a short word: `queued`, `attempt`, `reset`, `handled`, `failing`, `receipt`,
/// `voice` … (docs/operations.md lists what the daemon writes). `detail` is a small JSON object
/// the caller composes — **never health values**; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmLogEntry {
    /// When it happened (the caller's clock, e.g. when an attempt was sent).
    pub at: Timestamp,
    /// The outbox record (the alarm) it is about, if any: our event id.
    pub record: Option<RecordId>,
    /// The route (configured name) it happened on.
    pub route: String,
    /// The receiver-facing reference of the event (e.g. the protocol's event reference).
    pub reference: Option<String>,
    /// What happened: a short word.
    pub event: String,
    /// Which receiver, if it is about one.
    pub receiver: Option<String>,
    /// Anything else, as a small JSON object (kind, device, criticality, message type, verdict,
    /// reason …). Never health values.
    pub detail: Map<String, Value>,
}

impl AlarmLogEntry {
    /// An entry with no record, reference, receiver or detail.
    pub fn new(at: Timestamp, route: impl Into<String>, event: impl Into<String>) -> Self {
        Self {
            at,
            record: None,
            route: route.into(),
            reference: None,
            event: event.into(),
            receiver: None,
            detail: Map::new(),
        }
    }
}

/// A stored entry, as [`alarm_log()`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedAlarmEvent {
    /// Row id: increases with every entry (insertion order).
    pub id: i64,
    /// The entry. Text fields were cut to their bounds when stored.
    pub entry: AlarmLogEntry,
    /// The stored detail was not a JSON object (a damaged row); `entry.detail` is empty.
    pub detail_unreadable: bool,
}

/// Which entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmLogQuery {
    /// Only entries that happened at or after this time.
    pub since: Option<Timestamp>,
    /// At most this many: the newest ones, still listed oldest first.
    pub limit: Option<usize>,
    /// Only entries about this record.
    pub record: Option<RecordId>,
}

/// The listing: entries oldest first, with the table's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmLog {
    /// The selected entries, oldest first.
    pub entries: Vec<LoggedAlarmEvent>,
    /// Entries in the table in all.
    pub total: u64,
    /// Entries removed so far to keep the log within its bound.
    pub pruned: u64,
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The detail as stored: long strings cut, too big a whole replaced by its size.
pub(crate) fn detail_text(detail: &Map<String, Value>) -> String {
    let mut bounded = Map::new();
    for (k, v) in detail {
        let v = match v {
            Value::String(s) => Value::String(cut(s, 2 * ALARM_LOG_TEXT_MAX_BYTES).to_owned()),
            other => other.clone(),
        };
        bounded.insert(cut(k, ALARM_LOG_TEXT_MAX_BYTES).to_owned(), v);
    }
    let text = Value::Object(bounded).to_string();
    if text.len() <= ALARM_LOG_DETAIL_MAX_BYTES {
        text
    } else {
        serde_json::json!({ "omitted_bytes": text.len() }).to_string()
    }
}

/// Insert `entries` and prune the oldest beyond `max` in the transaction `tx`; returns how
/// many were pruned. `max` 0 turns the log off (nothing is stored).
pub(crate) fn insert(
    tx: &Connection,
    entries: &[AlarmLogEntry],
    max: u64,
) -> rusqlite::Result<u64> {
    if max == 0 || entries.is_empty() {
        return Ok(0);
    }
    let t = |s: &str| cut(s, ALARM_LOG_TEXT_MAX_BYTES).to_owned();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO alarm_log (at_ms, record_id, route, reference, event, receiver, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for e in entries {
            stmt.execute(params![
                e.at.unix_millis(),
                e.record.as_ref().map(|r| r.as_bytes().as_slice()),
                t(&e.route),
                e.reference.as_deref().map(t),
                t(&e.event),
                e.receiver.as_deref().map(t),
                detail_text(&e.detail),
            ])?;
        }
    }
    // Ids only grow and only the oldest are removed, so the newest `max` rows are the ids in
    // (last - max, last]: one range delete on the primary key.
    let last = tx.last_insert_rowid();
    let keep_from = last.saturating_sub(i64::try_from(max).unwrap_or(i64::MAX));
    let pruned = tx
        .prepare_cached("DELETE FROM alarm_log WHERE id <= ?1")?
        .execute(params![keep_from])?;
    Ok(pruned as u64)
}

/// A text column as text, whatever a damaged row holds there.
fn lossy(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LoggedAlarmEvent> {
    let at_ms = match r.get_ref(1)? {
        ValueRef::Integer(n) => n,
        _ => 0,
    };
    let record = match r.get_ref(2)? {
        ValueRef::Blob(b) => <[u8; 16]>::try_from(b).ok().map(RecordId::from_bytes),
        _ => None,
    };
    let detail = match r.get_ref(7)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => match serde_json::from_slice::<Value>(b) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        },
        _ => None,
    };
    Ok(LoggedAlarmEvent {
        id: r.get(0)?,
        entry: AlarmLogEntry {
            at: Timestamp::from_unix_millis(at_ms),
            record,
            route: lossy(r, 3)?.unwrap_or_default(),
            reference: lossy(r, 4)?,
            event: lossy(r, 5)?.unwrap_or_default(),
            receiver: lossy(r, 6)?,
            detail: detail.clone().unwrap_or_default(),
        },
        detail_unreadable: detail.is_none(),
    })
}

/// The query on an open connection (the writer's, or a read-only one).
pub(crate) fn query_on(
    conn: &Connection,
    path: &Path,
    q: &AlarmLogQuery,
) -> Result<AlarmLog, OutboxError> {
    let e = |err| sql("list the alarm log", path, err);
    let version = schema::version(conn, path)?;
    if version > schema::SCHEMA_VERSION {
        return Err(OutboxError::NewerSchema {
            path: path.to_owned(),
            found: version,
            known: schema::SCHEMA_VERSION,
        });
    }
    let pruned: i64 = conn
        .query_row(
            "SELECT value FROM counter WHERE name = ?1",
            params![ALARM_LOG_PRUNED],
            |r| r.get(0),
        )
        .optional()
        .map_err(e)?
        .unwrap_or(0);
    if version < schema::ALARM_LOG_VERSION {
        // Written by a build without the log: nothing was logged.
        return Ok(AlarmLog {
            entries: Vec::new(),
            total: 0,
            pruned: pruned.max(0) as u64,
        });
    }
    let total: i64 = conn
        .query_row("SELECT count(*) FROM alarm_log", [], |r| r.get(0))
        .map_err(e)?;
    let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare(
            "SELECT id, at_ms, record_id, route, reference, event, receiver, detail
             FROM alarm_log
             WHERE (?1 IS NULL OR at_ms >= ?1) AND (?2 IS NULL OR record_id = ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .map_err(e)?;
    let mut entries = stmt
        .query_map(
            params![
                q.since.map(|t| t.unix_millis()),
                q.record.as_ref().map(|r| r.as_bytes().as_slice()),
                limit
            ],
            read_row,
        )
        .and_then(|m| m.collect::<Result<Vec<_>, _>>())
        .map_err(e)?;
    entries.reverse();
    Ok(AlarmLog {
        entries,
        total: total.max(0) as u64,
        pruned: pruned.max(0) as u64,
    })
}

/// List the alarm event log of the database at `path`, oldest first (the newest
/// `query.limit`), on a read-only connection: safe while the daemon runs (WAL readers never
/// block the writer). A file of a build before the log lists nothing; a file of a newer build
/// is refused.
pub fn alarm_log(path: &Path, query: &AlarmLogQuery) -> Result<AlarmLog, OutboxError> {
    if !path.exists() {
        return Err(OutboxError::Io {
            what: "no outbox database at",
            path: path.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql("open for the alarm log", path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| sql("open for the alarm log", path, e))?;
    query_on(&conn, path, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let s = "ø".repeat(100); // 200 bytes
        let c = cut(&s, 127);
        assert_eq!(c.len(), 126);
        assert!(c.chars().all(|ch| ch == 'ø'));
        assert_eq!(cut("short", 128), "short");
    }

    #[test]
    fn a_big_detail_is_bounded() {
        let mut d = Map::new();
        d.insert("reason".into(), Value::String("x".repeat(10_000)));
        let text = detail_text(&d);
        assert!(text.len() <= ALARM_LOG_DETAIL_MAX_BYTES);
        let mut d = Map::new();
        for i in 0..100 {
            d.insert(format!("k{i}"), Value::String("y".repeat(200)));
        }
        let text = detail_text(&d);
        assert!(text.contains("omitted_bytes"), "{text}");
    }
}
