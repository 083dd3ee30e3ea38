//! The receiver's SQLite store: what arrived (one row per key and format) and counters.
//!
//! Schema (readable with `sqlite3`; RECEIVER.md):
//! ```sql
//! received(format, key, kind, body, source, first_seen_ms, last_seen_ms, copies,
//!          PRIMARY KEY (format, key))
//! counters(format, name, value, PRIMARY KEY (format, name))
//! scaip_requests(id, ref, cid, mty, dty, stc, at_ms, http_status, snu, repeat, fault)
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::ReceiverError;

/// `received.format` of FHIR rows and counters.
pub const FHIR: &str = "fhir";
/// `received.format` of PCD-01 (MLLP) rows and counters.
pub const MLLP: &str = "mllp";

/// `received.format` of SCAIP events (key `<cid>:<ref>`) and counters.
pub const SCAIP: &str = "scaip";

/// `received.kind` of an observation (FHIR `Observation`, HL7 OBX row with an OBX-21 id).
pub const OBSERVATION: &str = "Observation";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS received (
    format        TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    copies        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (format, key)
);
CREATE TABLE IF NOT EXISTS scaip_requests (
    id          INTEGER PRIMARY KEY,
    ref         TEXT,
    cid         TEXT,
    mty         TEXT,
    dty         INTEGER,
    stc         INTEGER,
    at_ms       INTEGER NOT NULL,
    http_status INTEGER NOT NULL,
    snu         INTEGER,
    repeat      INTEGER NOT NULL DEFAULT 0,
    fault       TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    format TEXT    NOT NULL,
    name   TEXT    NOT NULL,
    value  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (format, name)
);
";

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> ReceiverError + '_ {
    move |source| ReceiverError::Store {
        path: path.to_path_buf(),
        source,
    }
}

/// One item to store.
#[derive(Debug)]
pub(crate) struct Item<'a> {
    pub key: String,
    pub kind: &'a str,
    pub body: String,
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// New key: stored; the row id.
    Created(i64),
    /// Known key: copy count raised; the row id of the first copy.
    Existing(i64),
}

/// The open store (one connection, used under a mutex from blocking tasks).
pub(crate) struct Store {
    conn: Connection,
    path: std::path::PathBuf,
}

impl Store {
    pub(crate) fn open(path: &Path) -> Result<Self, ReceiverError> {
        let e = db_err(path);
        let conn = Connection::open(path).map_err(&e)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&e)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&e)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&e)?;
        conn.execute_batch(SCHEMA).map_err(&e)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Store `items` of one request in one transaction and add `counters`; returns one
    /// [`Stored`] per item, in order.
    pub(crate) fn put(
        &mut self,
        format: &str,
        source: &str,
        items: &[Item<'_>],
        counters: &[(&str, u64)],
    ) -> Result<Vec<Stored>, ReceiverError> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        let out = put_in(&tx, &path, format, source, items)?;
        add_counters(&tx, format, counters).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(out)
    }

    /// Store several requests `(source, items)` in one transaction (a group commit of messages
    /// that arrived together, e.g. pipelined MLLP frames) and add `counters`.
    pub(crate) fn put_all(
        &mut self,
        format: &str,
        requests: &[(String, Vec<Item<'_>>)],
        counters: &[(&str, u64)],
    ) -> Result<(), ReceiverError> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        for (source, items) in requests {
            put_in(&tx, &path, format, source, items)?;
        }
        add_counters(&tx, format, counters).map_err(&e)?;
        tx.commit().map_err(&e)
    }

    /// Store a SCAIP event once by `key` (a repeat raises its copy count) — `item` is `None`
    /// for a request that was not read (refused) — log the request in `scaip_requests`, and
    /// add `counters`, in one transaction. Whether the event was known already.
    pub(crate) fn put_scaip(
        &mut self,
        item: Option<&Item<'_>>,
        request: &ScaipRequest,
        counters: &[(&str, u64)],
    ) -> Result<bool, ReceiverError> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        let repeat = match item {
            Some(item) => matches!(
                put_in(&tx, &path, SCAIP, "scaip", std::slice::from_ref(item))?.first(),
                Some(Stored::Existing(_))
            ),
            None => false,
        };
        tx.execute(
            "INSERT INTO scaip_requests (ref, cid, mty, dty, stc, at_ms, http_status, snu, \
             repeat, fault) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                request.reference,
                request.caller_id,
                request.message_type,
                request.device_type,
                request.status_code,
                request.at_ms,
                request.http_status,
                request.snu,
                repeat,
                request.fault,
            ],
        )
        .map_err(&e)?;
        add_counters(&tx, SCAIP, counters).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(repeat)
    }

    /// Add to counters only.
    pub(crate) fn count(
        &mut self,
        format: &str,
        counters: &[(&str, u64)],
    ) -> Result<(), ReceiverError> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        add_counters(&tx, format, counters).map_err(&e)?;
        tx.commit().map_err(&e)
    }
}

/// Store `items` of one request in the open transaction; one [`Stored`] per item, in order.
fn put_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    format: &str,
    source: &str,
    items: &[Item<'_>],
) -> Result<Vec<Stored>, ReceiverError> {
    let e = db_err(path);
    let now = now_ms();
    let mut out = Vec::with_capacity(items.len());
    let mut find = tx
        .prepare_cached("SELECT rowid FROM received WHERE format = ?1 AND key = ?2")
        .map_err(&e)?;
    let mut bump = tx
        .prepare_cached(
            "UPDATE received SET copies = copies + 1, last_seen_ms = ?2 WHERE rowid = ?1",
        )
        .map_err(&e)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO received (format, key, kind, body, source, first_seen_ms, \
             last_seen_ms, copies) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)",
        )
        .map_err(&e)?;
    for item in items {
        let existing: Option<i64> = find
            .query_row(params![format, item.key], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        match existing {
            Some(id) => {
                bump.execute(params![id, now]).map_err(&e)?;
                out.push(Stored::Existing(id));
            }
            None => {
                insert
                    .execute(params![format, item.key, item.kind, item.body, source, now])
                    .map_err(&e)?;
                out.push(Stored::Created(tx.last_insert_rowid()));
            }
        }
    }
    Ok(out)
}

fn add_counters(
    tx: &rusqlite::Transaction<'_>,
    format: &str,
    counters: &[(&str, u64)],
) -> Result<(), rusqlite::Error> {
    let mut up = tx.prepare_cached(
        "INSERT INTO counters (format, name, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (format, name) DO UPDATE SET value = value + excluded.value",
    )?;
    for (name, n) in counters {
        if *n > 0 {
            up.execute(params![format, name, i64::try_from(*n).unwrap_or(i64::MAX)])?;
        }
    }
    Ok(())
}

/// One request the SCAIP endpoint got (table `scaip_requests`): what the centre saw and what
/// it answered. No personal text is kept here (the event's body is in `received`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScaipRequest {
    /// `ref`; `None` when the request was refused before it was read (401, 415, 413, 400).
    pub reference: Option<String>,
    /// `cid`.
    pub caller_id: Option<String>,
    /// `mty` (`ME`, `IN`, `RE`, `PI`).
    pub message_type: Option<String>,
    /// `dty`.
    pub device_type: Option<u16>,
    /// `stc` (`None`: omitted, which means alarm).
    pub status_code: Option<u16>,
    /// When it arrived (Unix ms).
    pub at_ms: i64,
    /// The HTTP status answered (`0`: none, the connection was dropped or held).
    pub http_status: u16,
    /// The `snu` answered, if an `<mrs>` was.
    pub snu: Option<u16>,
    /// Whether the event (`cid` + `ref`) was known already: a repeat, not a new event.
    pub repeat: bool,
    /// The fault injected, if any (`hold`, `hang`, `error`, …).
    pub fault: Option<String>,
}

/// Every request the SCAIP endpoint recorded, oldest first (opened read-only).
pub fn scaip_requests(path: &Path) -> Result<Vec<ScaipRequest>, ReceiverError> {
    let e = db_err(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&e)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&e)?;
    let mut q = conn
        .prepare(
            "SELECT ref, cid, mty, dty, stc, at_ms, http_status, snu, repeat, fault \
             FROM scaip_requests ORDER BY id",
        )
        .map_err(&e)?;
    let rows = q
        .query_map([], |r| {
            Ok(ScaipRequest {
                reference: r.get(0)?,
                caller_id: r.get(1)?,
                message_type: r.get(2)?,
                device_type: r.get(3)?,
                status_code: r.get(4)?,
                at_ms: r.get(5)?,
                http_status: r.get(6)?,
                snu: r.get(7)?,
                repeat: r.get(8)?,
                fault: r.get(9)?,
            })
        })
        .map_err(&e)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&e)
}

/// Counts of the SCAIP endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScaipSummary {
    /// Distinct events (by `cid` + `ref`), heartbeats not included.
    pub events: u64,
    /// Distinct heartbeats (`mty=PI`).
    pub heartbeats: u64,
    /// Requests that repeated a known event (resends, holds polled, resets): answered again,
    /// never a second event.
    pub repeats: u64,
    /// Requests received, including refused ones and those answered with a fault.
    pub requests: u64,
    /// Resets (`mty=RE`) received.
    pub resets: u64,
    /// Requests refused with an HTTP error (400, 401, 404, 405, 413, 415).
    pub rejected: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
}

/// Counts of one format (`fhir` or `mllp`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatSummary {
    /// Distinct observations stored (FHIR `Observation` resources; OBX rows with an OBX-21
    /// observation instance id).
    pub observations: u64,
    /// Resends of observations recognised (copies beyond the first, not stored again).
    pub duplicates: u64,
    /// Distinct other items stored (FHIR Devices etc.; OBX rows without OBX-21).
    pub other: u64,
    /// Resends of other items recognised.
    pub other_duplicates: u64,
    /// FHIR entries that matched a stored key but came *without* `ifNoneExist`: a real server
    /// would have created a second resource. Always 0 for a sender using conditional creates.
    pub created_twice: u64,
    /// Requests (HTTP requests, MLLP messages) received, including those answered with a fault.
    pub requests: u64,
    /// Requests refused as a whole (HTTP 4xx, MLLP AR).
    pub rejected: u64,
    /// FHIR entries refused one by one (`400 Bad Request` in the entry's response).
    pub rejected_entries: u64,
    /// Faults injected, by kind (`error`, `garbage`, `reset`, `down`, `down_connection`).
    pub faults: BTreeMap<String, u64>,
    /// FHIR with an OAuth2 client: access tokens issued.
    pub tokens_issued: u64,
    /// FHIR with an OAuth2 client: token requests refused with `invalid_client`.
    pub assertions_refused: u64,
}

impl FormatSummary {
    /// All faults injected.
    pub fn faults_injected(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// What a store holds: see [`summary`](crate::summary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The FHIR endpoint's counts.
    pub fhir: FormatSummary,
    /// The MLLP (PCD-01) endpoint's counts.
    pub mllp: FormatSummary,
    /// The SCAIP endpoint's counts.
    pub scaip: ScaipSummary,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, s) in [("FHIR", &self.fhir), ("PCD-01", &self.mllp)] {
            writeln!(
                f,
                "{name}: {} observations, {} duplicates recognised, {} other items ({} resent), \
                 {} created twice, {} requests, {} rejected ({} entries), {} faults injected{}{}",
                s.observations,
                s.duplicates,
                s.other,
                s.other_duplicates,
                s.created_twice,
                s.requests,
                s.rejected,
                s.rejected_entries,
                s.faults_injected(),
                fault_list(&s.faults),
                if s.tokens_issued + s.assertions_refused > 0 {
                    format!(
                        ", {} OAuth2 tokens issued ({} assertions refused)",
                        s.tokens_issued, s.assertions_refused
                    )
                } else {
                    String::new()
                }
            )?;
        }
        let s = &self.scaip;
        if s.requests > 0 {
            writeln!(
                f,
                "SCAIP: {} events, {} heartbeats, {} repeats recognised, {} resets, {} requests, \
                 {} rejected, {} faults injected{}",
                s.events,
                s.heartbeats,
                s.repeats,
                s.resets,
                s.requests,
                s.rejected,
                s.faults.values().sum::<u64>(),
                fault_list(&s.faults)
            )?;
        }
        Ok(())
    }
}

/// Read the summary of a store (opened read-only; works while a receiver writes to it).
pub fn summary(path: &Path) -> Result<Summary, ReceiverError> {
    let e = db_err(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&e)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&e)?;
    let mut out = Summary::default();
    let mut rows = conn
        .prepare(
            "SELECT format, kind = ?1, COUNT(*), COALESCE(SUM(copies - 1), 0) FROM received \
             GROUP BY format, kind = ?1",
        )
        .map_err(&e)?;
    let it = rows
        .query_map([OBSERVATION], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(&e)?;
    for row in it {
        let (format, is_obs, n, dup) = row.map_err(&e)?;
        if format == SCAIP {
            // `kind = 'Observation'` is never true here; heartbeats are counted below.
            out.scaip.events += to_u64(n);
            out.scaip.repeats += to_u64(dup);
            continue;
        }
        let Some(s) = pick(&mut out, &format) else {
            continue;
        };
        let (n, dup) = (to_u64(n), to_u64(dup));
        if is_obs {
            s.observations += n;
            s.duplicates += dup;
        } else {
            s.other += n;
            s.other_duplicates += dup;
        }
    }
    let mut counters = conn
        .prepare("SELECT format, name, value FROM counters")
        .map_err(&e)?;
    let it = counters
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(&e)?;
    for row in it {
        let (format, name, value) = row.map_err(&e)?;
        if format == SCAIP {
            let s = &mut out.scaip;
            let value = to_u64(value);
            match name.as_str() {
                "requests" => s.requests += value,
                "rejected" => s.rejected += value,
                "resets" => s.resets += value,
                other => {
                    if let Some(kind) = other.strip_prefix("fault:") {
                        *s.faults.entry(kind.to_owned()).or_default() += value;
                    }
                }
            }
            continue;
        }
        let Some(s) = pick(&mut out, &format) else {
            continue;
        };
        let value = to_u64(value);
        match name.as_str() {
            "requests" => s.requests += value,
            "rejected" => s.rejected += value,
            "rejected_entries" => s.rejected_entries += value,
            "created_twice" => s.created_twice += value,
            "oauth2:tokens_issued" => s.tokens_issued += value,
            "oauth2:assertions_refused" => s.assertions_refused += value,
            other => {
                if let Some(kind) = other.strip_prefix("fault:") {
                    *s.faults.entry(kind.to_owned()).or_default() += value;
                }
            }
        }
    }
    split_heartbeats(&conn, &mut out).map_err(&e)?;
    Ok(out)
}

/// Heartbeats are events of kind `PI`: move them out of the event count.
fn split_heartbeats(conn: &Connection, out: &mut Summary) -> Result<(), rusqlite::Error> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM received WHERE format = ?1 AND kind = 'PI'",
        [SCAIP],
        |r| r.get(0),
    )?;
    let n = to_u64(n);
    out.scaip.heartbeats = n;
    out.scaip.events = out.scaip.events.saturating_sub(n);
    Ok(())
}

fn pick<'a>(s: &'a mut Summary, format: &str) -> Option<&'a mut FormatSummary> {
    match format {
        FHIR => Some(&mut s.fhir),
        MLLP => Some(&mut s.mllp),
        _ => None,
    }
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// " (kind count, …)" of injected faults, or nothing when there were none.
fn fault_list(faults: &BTreeMap<String, u64>) -> String {
    if faults.is_empty() {
        return String::new();
    }
    let list: Vec<String> = faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(" ({})", list.join(", "))
}
