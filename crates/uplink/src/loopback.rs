//! The loopback receiver: an SQLite file on this machine that records what it was sent.
//!
//! It behaves like a good central receiver: it stores durably (`synchronous=FULL`) before it
//! answers, and it deduplicates on the record id (as FHIR conditional create does), so a resend
//! after a crash is counted as a copy of an existing resource, never as a new one.

use std::path::{Path, PathBuf};

use hearth_model::Record;
use rusqlite::{Connection, params};
use tokio::sync::mpsc;

use crate::{BoxFuture, Claimed, Outcome, Uplink, UplinkError};

/// One delivered record, as shown by the demo. Carries no health values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The route name.
    pub route: String,
    /// `reading`, `alarm` or `technical`.
    pub kind: &'static str,
    /// Lane name.
    pub lane: &'static str,
    /// Device or source.
    pub source: String,
    /// Record id.
    pub id: String,
    /// Whether the receiver already had it (a resend).
    pub copy: bool,
    /// The MDC code of a reading.
    pub mdc: Option<u32>,
    /// For display: an alarm's or technical alarm's kind and state (never a measured value).
    pub detail: String,
}

/// A reading's numeric value, kept so tests can compare what arrived with what was sent.
fn value(r: &Record) -> Option<f64> {
    match r {
        Record::Reading(x) => x.value.as_f64(),
        _ => None,
    }
}

fn detail(r: &Record) -> String {
    match r {
        Record::Reading(_) => String::new(),
        Record::Alarm(a) => format!("{} {}", a.kind, a.state.as_str()),
        Record::Technical(t) => format!("{} {}", t.kind.as_str(), t.state.as_str()),
    }
}

/// Writes delivered records into an SQLite file.
#[derive(Debug)]
pub struct LoopbackUplink {
    route: String,
    path: PathBuf,
    conn: Connection,
    observer: Option<mpsc::Sender<Received>>,
}

fn kind_and_source(r: &Record) -> (&'static str, String, Option<i64>, Option<u32>) {
    match r {
        Record::Reading(x) => (
            "reading",
            x.device.to_string(),
            x.sequence.map(|s| s as i64),
            Some(x.mdc.0),
        ),
        Record::Alarm(a) => (
            "alarm",
            a.device.to_string(),
            a.sequence.map(|s| s as i64),
            None,
        ),
        Record::Technical(t) => ("technical", t.source.clone(), None, None),
    }
}

impl LoopbackUplink {
    /// Open (or create) the receiver file.
    pub fn open(route: &str, path: &Path) -> Result<Self, UplinkError> {
        let fail = |e: rusqlite::Error| {
            UplinkError::new(format!(
                "loopback receiver {}: {e}; check that the data directory is writable",
                path.display()
            ))
        };
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(fail)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(fail)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS received (
                 id        TEXT PRIMARY KEY,
                 route     TEXT NOT NULL,
                 kind      TEXT NOT NULL,
                 lane      TEXT NOT NULL,
                 source    TEXT NOT NULL,
                 seq       INTEGER,
                 mdc       INTEGER,
                 value     REAL,
                 detail    TEXT NOT NULL DEFAULT '',
                 first_ms  INTEGER NOT NULL,
                 copies    INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )
        .map_err(fail)?;
        Ok(Self {
            route: route.to_owned(),
            path: path.to_owned(),
            conn,
            observer: None,
        })
    }

    /// Report each delivered record to `observer` (display only: dropped when it is full).
    pub fn with_observer(mut self, observer: mpsc::Sender<Received>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn store(&mut self, batch: &[Claimed]) -> Result<Vec<Received>, rusqlite::Error> {
        let now = hearth_model::Timestamp::now().unix_millis();
        let tx = self.conn.transaction()?;
        let mut seen = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO received (id, route, kind, lane, source, seq, mdc, value, detail,
                 first_ms, copies) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1)
                 ON CONFLICT (id) DO UPDATE SET copies = copies + 1
                 RETURNING copies",
            )?;
            for c in batch {
                let (kind, source, seq, mdc) = kind_and_source(&c.record);
                let id = c.record.id().to_string();
                let lane = c.record.lane().as_str();
                let detail = detail(&c.record);
                let copies: i64 = insert.query_row(
                    params![
                        id,
                        self.route,
                        kind,
                        lane,
                        source,
                        seq,
                        mdc,
                        value(&c.record),
                        detail,
                        now
                    ],
                    |r| r.get(0),
                )?;
                seen.push(Received {
                    route: self.route.clone(),
                    kind,
                    lane,
                    source,
                    id,
                    copy: copies > 1,
                    mdc,
                    detail,
                });
            }
        }
        tx.commit()?;
        Ok(seen)
    }
}

impl Uplink for LoopbackUplink {
    fn describe(&self) -> String {
        format!("loopback {}", self.path.display())
    }

    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move {
            // SQLite on a local file: short, synchronous work; fine on the sender's task.
            let seen = self.store(batch).map_err(|e| {
                UplinkError::new(format!(
                    "loopback receiver {} failed: {e}",
                    self.path.display()
                ))
            })?;
            if let Some(obs) = &self.observer {
                for r in seen {
                    let _ = obs.try_send(r);
                }
            }
            Ok(vec![Outcome::Delivered; batch.len()])
        })
    }
}

/// What a loopback receiver file holds (tests, demo summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceivedSummary {
    /// Distinct records received.
    pub unique: u64,
    /// Records received more than once (resends after a crash; not new resources).
    pub resent: u64,
}

/// Summarise a loopback receiver file.
pub fn summary(path: &Path) -> Result<ReceivedSummary, rusqlite::Error> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.query_row(
        "SELECT count(*), coalesce(sum(copies > 1), 0) FROM received",
        [],
        |r| {
            Ok(ReceivedSummary {
                unique: r.get::<_, i64>(0)? as u64,
                resent: r.get::<_, i64>(1)? as u64,
            })
        },
    )
}
