//! `hearth outbox stats`: counts per lane, route and state, oldest ages, bytes, counters.
//!
//! Everything here is answered from indexes and running totals; nothing loads the backlog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_model::{Lane, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{OutboxError, sql};
use crate::schema;

/// One lane of the whole outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneStats {
    /// The lane.
    pub lane: Lane,
    /// Records stored.
    pub records: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Age of the oldest stored record.
    pub oldest_age: Option<Duration>,
}

/// One lane of one route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteLaneStats {
    /// Waiting to be sent (including those waiting for a retry).
    pub pending: u64,
    /// Of those, how many already failed at least once.
    pub retrying: u64,
    /// Handed to the sender, no answer yet.
    pub in_flight: u64,
    /// Age of the oldest open delivery.
    pub oldest_age: Option<Duration>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStats {
    /// Route name.
    pub name: String,
    /// Per lane, highest priority first.
    pub lanes: Vec<(Lane, RouteLaneStats)>,
    /// Delivered since the database was created.
    pub delivered: u64,
    /// Rejected into the dead-letter table since the database was created.
    pub dead: u64,
}

/// A snapshot of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The database file.
    pub path: PathBuf,
    /// Schema version.
    pub schema_version: i64,
    /// Database + WAL file size on disk.
    pub file_bytes: u64,
    /// Per lane, highest priority first.
    pub lanes: Vec<LaneStats>,
    /// Per route (configured now or in the past).
    pub routes: Vec<RouteStats>,
    /// Rows in the dead-letter table, per origin.
    pub dead_letters: BTreeMap<String, u64>,
    /// All counters.
    pub counters: BTreeMap<String, i64>,
    /// Source cursors.
    pub cursors: BTreeMap<String, i64>,
}

impl Stats {
    /// Records stored, all lanes.
    pub fn records(&self) -> u64 {
        self.lanes.iter().map(|l| l.records).sum()
    }

    /// A counter's value (0 if never counted).
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Read statistics from a database file without opening it for writing; works while the daemon
/// runs (WAL readers do not block the writer).
pub fn stats(path: &Path) -> Result<Stats, OutboxError> {
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
    .map_err(|e| sql("open for stats", path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| sql("open for stats", path, e))?;
    collect(&conn, path, Timestamp::now())
}

fn age(now: Timestamp, ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Timestamp::from_unix_millis(ms).age_at(now))
}

pub(crate) fn collect(
    conn: &Connection,
    path: &Path,
    now: Timestamp,
) -> Result<Stats, OutboxError> {
    let e = |op| move |err| sql(op, path, err);
    let schema_version = schema::version(conn, path)?;
    let file_bytes = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();

    let mut lanes = Vec::new();
    for lane in Lane::ALL {
        let (records, payload_bytes): (i64, i64) = conn
            .query_row(
                "SELECT rows, bytes FROM total WHERE lane = ?1",
                params![lane.code()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(e("stats"))?
            .unwrap_or((0, 0));
        let oldest: Option<i64> = conn
            .query_row(
                "SELECT received_ms FROM item WHERE lane = ?1 ORDER BY seq LIMIT 1",
                params![lane.code()],
                |r| r.get(0),
            )
            .optional()
            .map_err(e("stats"))?;
        lanes.push(LaneStats {
            lane,
            records: records.max(0) as u64,
            payload_bytes: payload_bytes.max(0) as u64,
            oldest_age: age(now, oldest),
        });
    }

    let counters: BTreeMap<String, i64> = {
        let mut stmt = conn
            .prepare("SELECT name, value FROM counter")
            .map_err(e("stats"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e("stats"))?;
        rows.collect::<Result<_, _>>().map_err(e("stats"))?
    };
    let cursors: BTreeMap<String, i64> = {
        let mut stmt = conn
            .prepare("SELECT source, value FROM cursor")
            .map_err(e("stats"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e("stats"))?;
        rows.collect::<Result<_, _>>().map_err(e("stats"))?
    };
    let dead_letters: BTreeMap<String, u64> = {
        let mut stmt = conn
            .prepare("SELECT origin, count(*) FROM dead_letter GROUP BY origin")
            .map_err(e("stats"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(e("stats"))?;
        rows.collect::<Result<_, _>>().map_err(e("stats"))?
    };

    let route_names: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare("SELECT id, name FROM route ORDER BY id")
            .map_err(e("stats"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e("stats"))?;
        rows.collect::<Result<_, _>>().map_err(e("stats"))?
    };
    let mut routes = Vec::new();
    // Plain aggregates over the (route, lane) key range: constant memory, no sorter, however
    // large the backlog (a GROUP BY would sort every row).
    let mut per_lane = conn
        .prepare(
            "SELECT count(*), coalesce(sum(state = 1), 0), coalesce(sum(state = 0 AND attempts > 0), 0), min(seq)
             FROM delivery WHERE route = ?1 AND lane = ?2",
        )
        .map_err(e("stats"))?;
    for (id, name) in route_names {
        let mut lanes_of_route = Vec::new();
        for lane in Lane::ALL {
            let (total, in_flight, retrying, oldest_seq): (i64, i64, i64, Option<i64>) = per_lane
                .query_row(params![id, lane.code()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(e("stats"))?;
            let mut s = RouteLaneStats {
                pending: (total - in_flight).max(0) as u64,
                retrying: retrying.max(0) as u64,
                in_flight: in_flight.max(0) as u64,
                oldest_age: None,
            };
            if let Some(seq) = oldest_seq {
                let ms: Option<i64> = conn
                    .query_row(
                        "SELECT received_ms FROM item WHERE seq = ?1",
                        params![seq],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(e("stats"))?;
                s.oldest_age = age(now, ms);
            }
            lanes_of_route.push((lane, s));
        }
        let delivered = counters
            .get(&format!("delivered:{name}"))
            .copied()
            .unwrap_or(0)
            .max(0) as u64;
        let dead = counters
            .get(&format!("dead:{name}"))
            .copied()
            .unwrap_or(0)
            .max(0) as u64;
        routes.push(RouteStats {
            name,
            lanes: lanes_of_route,
            delivered,
            dead,
        });
    }

    Ok(Stats {
        path: path.to_owned(),
        schema_version,
        file_bytes,
        lanes,
        routes,
        dead_letters,
        counters,
        cursors,
    })
}
