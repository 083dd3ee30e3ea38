//! The outbox proper: open (with recovery), batches (group commit), claims and settlements.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use hearth_model::{
    AlarmState, Category, Lane, Record, RecordId, Severity, TechnicalAlarm, TechnicalKind,
    Timestamp, Value,
};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, params};

use crate::codec;
use crate::error::{OutboxError, sql};
use crate::options::{IntegrityCheck, OutboxOptions, RetryPolicy};
use crate::schema;

/// One row of the claim query: lane, seq, attempts, record id, payload.
type ClaimRow = (u8, i64, u32, Vec<u8>, Vec<u8>);

/// A configured route, by its stable database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(i64);

/// Identifies one claimed delivery so that it can be settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    seq: i64,
    lane: Lane,
}

impl Ticket {
    /// The record's lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }
    /// The record's insertion sequence number (monotonic per database).
    pub fn seq(&self) -> i64 {
        self.seq
    }
}

/// A record handed to a route for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Settle with this.
    pub ticket: Ticket,
    /// The record.
    pub record: Record,
    /// How many attempts this route already made (0 on the first).
    pub attempts: u32,
}

/// What a receiver said about one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The receiver acknowledged it: it leaves the outbox for this route (invariant 2).
    Delivered,
    /// Not now (5xx, timeout, connection lost): retry with backoff, not before the given time.
    Retry {
        /// The receiver's Retry-After, if it gave one.
        not_before: Option<Timestamp>,
    },
    /// Rejected for good (4xx with a reason, HL7 AR): moves to the dead-letter table.
    Rejected {
        /// The receiver's reason, kept with the dead letter.
        reason: String,
    },
    /// The route cannot carry it (no mapping in its receiver's profile) and is set to skip such
    /// records (`unsupported = "skip"`): it leaves the route like a delivered one, counted as
    /// `skipped:<route>`, and is not kept as a dead letter (the sender logs the reason).
    Skipped {
        /// Why the route cannot carry it, for the sender's log.
        reason: String,
    },
}

/// What happened to one appended record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored, with a delivery for each route of its category.
    Stored,
    /// A record with the same id is already stored (a re-send): nothing changed.
    Duplicate,
    /// No route carries its category: kept in the dead-letter table, counted.
    Unrouted,
    /// The record breaks a model rule (e.g. a non-finite number): dead-lettered, counted.
    Invalid(String),
}

/// What a commit did besides storing the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Records dropped to stay under the cap, per lane (index = lane code). Never alarms.
    pub dropped: [u64; 4],
    /// The cap is exceeded by records that may not be dropped (alarms).
    pub over_cap_with_alarms: bool,
    /// Dead letters dropped to stay under the cap (never an alarm's).
    pub dead_letters_dropped: u64,
}

impl CommitReport {
    /// Total records dropped by this commit.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// What opening the outbox found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The database file did not exist and was created.
    pub created: bool,
    /// The file was corrupt and was moved to this path (a critical technical alarm was stored).
    pub quarantined: Option<PathBuf>,
    /// Deliveries that were in flight when hearth stopped and are pending again.
    pub recovered_in_flight: u64,
    /// Schema version after migrations.
    pub schema_version: i64,
}

#[derive(Debug, Clone)]
struct Route {
    id: RouteId,
    name: String,
    retry: RetryPolicy,
}

#[derive(Debug, Clone, Copy, Default)]
struct LaneTotal {
    rows: i64,
    bytes: i64,
}

/// State beside the connection; split from it so that a [`Batch`] can borrow both.
#[derive(Debug)]
struct Inner {
    path: PathBuf,
    opts: OutboxOptions,
    routes: Vec<Route>,
    /// Route ids per category code: the fan-out table (invariant 5).
    fan_out: [Vec<RouteId>; 3],
    /// Routes that take readings only (never alarms or technical alarms).
    readings_only: Vec<RouteId>,
    /// Every route id in the database, including routes no longer configured, so that dropping
    /// or expiring a record removes all of its deliveries.
    all_route_ids: Vec<RouteId>,
    totals: [LaneTotal; 4],
    /// Rows and stored payload bytes of the dead-letter table (they count in the cap).
    dead: LaneTotal,
    /// `PRAGMA data_version` when the totals were last read: another connection (`hearth
    /// outbox requeue`) changed them when it differs.
    data_version: i64,
}

/// The durable store-and-forward queue. One writer owns it; see the crate docs.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    inner: Inner,
}

const META_CAP_ALARM: &str = "cap_alarm_raised";
/// The gateway identity the stored record ids are scoped to (8 bytes as a big-endian i64).
/// Absent in databases whose ids were stored unscoped (before issue 13, or without a gateway).
const META_GATEWAY: &str = "gateway_id";
const META_DEAD_ALARM: &str = "dead_letter_alarm_raised";
/// The technical alarm kind raised while the outbox holds dead letters.
pub const DEAD_LETTERS_KIND: &str = "dead_letters";
/// The cap alarm clears when occupancy falls below this fraction of the cap.
const CAP_CLEAR_FRACTION: f64 = 0.8;

impl Outbox {
    /// Open (or create) the outbox: integrity check, quarantine of a corrupt file, forward
    /// migrations, route registration, and recovery of deliveries that were in flight.
    pub fn open(opts: OutboxOptions) -> Result<(Self, OpenReport), OutboxError> {
        let path = opts.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| OutboxError::Io {
                what: "cannot create data directory",
                path: dir.to_owned(),
                source,
            })?;
        }
        let existed = path.exists();
        let (mut conn, quarantined) = match connect(&path, opts.integrity) {
            Ok(conn) => (conn, None),
            Err(Connect::Corrupt(why)) => {
                let moved = quarantine(&path)?;
                tracing::error!(
                    path = %path.display(), moved_to = %moved.display(), reason = %why,
                    "outbox database was corrupt: moved aside, starting an empty one"
                );
                let conn = connect(&path, IntegrityCheck::Off).map_err(Connect::into_error)?;
                (conn, Some((moved, why)))
            }
            Err(Connect::Failed(e)) => return Err(e),
        };
        schema::migrate(&mut conn, &path)?;
        if !existed || quarantined.is_some() {
            sync_dir(&path)?;
        }
        let inner = Inner::load(&conn, opts)?;
        let mut outbox = Outbox { conn, inner };
        outbox.scope_stored_ids()?;
        let recovered_in_flight = outbox.recover_in_flight()?;
        if let Some((moved, why)) = &quarantined {
            let alarm = TechnicalAlarm::new(
                "outbox",
                TechnicalKind::StorageCorrupt,
                Severity::Critical,
                AlarmState::Raised,
                format!(
                    "outbox database was corrupt ({why}); moved aside to {} and started empty. \
                     Records not yet delivered from the old file are in that file; send it to \
                     the operator for recovery",
                    moved.display()
                ),
                Timestamp::now(),
            );
            let mut batch = outbox.batch()?;
            batch.append(&Record::Technical(alarm), Timestamp::now())?;
            batch.commit()?;
        }
        let report = OpenReport {
            created: !existed,
            quarantined: quarantined.map(|(p, _)| p),
            recovered_in_flight,
            schema_version: schema::version(&outbox.conn, &outbox.inner.path)?,
        };
        Ok((outbox, report))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The id of a configured route.
    pub fn route(&self, name: &str) -> Result<RouteId, OutboxError> {
        self.inner
            .routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
            .ok_or_else(|| OutboxError::UnknownRoute(name.to_owned()))
    }

    /// Names of the configured routes, in configuration order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.inner.routes.iter().map(|r| r.name.as_str())
    }

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

    /// Bring the stored record ids under the configured gateway identity (see
    /// [`OutboxOptions::gateway`]). A database without a recorded identity holds unscoped ids
    /// (an older build): every queued record and dead letter gets its scoped id, in one
    /// transaction with the recorded identity, so a crash leaves either all or none rewritten.
    /// A database scoped to another identity (the operator changed `gateway.eui64`) keeps its
    /// ids: they are unique already, and rewriting them would make resends new resources.
    fn scope_stored_ids(&mut self) -> Result<(), OutboxError> {
        let Some(gateway) = self.inner.opts.gateway else {
            return Ok(());
        };
        let wanted = i64::from_be_bytes(*gateway.as_bytes());
        let path = self.inner.path.clone();
        let err = |e| sql("scope record ids to the gateway", &path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let recorded: Option<i64> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![META_GATEWAY],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match recorded {
            Some(v) if v == wanted => return Ok(()),
            Some(v) => tracing::warn!(
                from = %hearth_model::GatewayId::from_bytes(v.to_be_bytes()),
                to = %gateway,
                "the gateway identity changed; records already queued keep the identifiers of \
                 the old one, new records get the new one"
            ),
            None => {
                let items = rescope(&tx, "item", "seq", "id", gateway).map_err(err)?;
                let dead = rescope(&tx, "dead_letter", "id", "record_id", gateway).map_err(err)?;
                if items + dead > 0 {
                    tracing::info!(
                        records = items,
                        dead_letters = dead,
                        gateway = %gateway,
                        "record ids queued by an older build are now scoped to this gateway"
                    );
                }
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![META_GATEWAY, wanted],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Make every in-flight delivery of every route pending again (on open: nobody is sending).
    fn recover_in_flight(&mut self) -> Result<u64, OutboxError> {
        let n = self
            .conn
            .execute("UPDATE delivery SET state = 0 WHERE state = 1", [])
            .map_err(|e| sql("recover in-flight deliveries", &self.inner.path, e))?;
        if n > 0 {
            tracing::info!(
                deliveries = n,
                "deliveries that were in flight at the last stop are pending again"
            );
        }
        Ok(n as u64)
    }

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

    /// Records currently stored, total.
    pub fn len(&self) -> u64 {
        self.inner.totals.iter().map(|t| t.rows.max(0) as u64).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Payload bytes currently stored, total.
    pub fn payload_bytes(&self) -> u64 {
        self.inner
            .totals
            .iter()
            .map(|t| t.bytes.max(0) as u64)
            .sum()
    }

    /// Statistics, read through this connection.
    pub fn stats(&self, now: Timestamp) -> Result<crate::Stats, OutboxError> {
        crate::stats::collect(&self.conn, &self.inner.path, now)
    }

    /// The connection, for tests and benchmarks that inspect the file.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A transaction on the outbox; see [`Outbox::batch`].
pub struct Batch<'a> {
    tx: Transaction<'a>,
    inner: &'a mut Inner,
    delta: [LaneTotal; 4],
    /// Change of the dead-letter table's rows and bytes in this batch.
    dead_delta: LaneTotal,
    counters: HashMap<String, i64>,
    dead_letters_added: bool,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl Batch<'_> {
    fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> OutboxError + '_ {
        move |e| sql(op, &self.inner.path, e)
    }

    fn count(&mut self, name: impl Into<String>, n: i64) {
        *self.counters.entry(name.into()).or_insert(0) += n;
    }

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
        if !matches!(record, Record::Reading(_)) {
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
    fn dead_letter(
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

    fn over_cap(&self) -> bool {
        let (rows, bytes) = self.totals_after();
        rows as u64 > self.inner.opts.max_rows
            || bytes as u64 + self.inner.opts.wal_reserve() > self.inner.opts.max_bytes
    }

    /// Drop the oldest records of the lowest lanes until the outbox is under its cap; never
    /// alarms (invariant 4).
    /// Dead letters go first within their lane (they wait for an operator, records for a
    /// receiver), and dead letters without a lane (raw input, undecodable rows) before all.
    fn enforce_cap(&mut self, report: &mut CommitReport) -> Result<(), OutboxError> {
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
    fn cap_alarm(&mut self, report: &CommitReport, now: Timestamp) -> Result<(), OutboxError> {
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
    fn dead_letter_alarm(&mut self, now: Timestamp) -> Result<(), OutboxError> {
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

    fn trim_dead_letters(&mut self) -> Result<(), OutboxError> {
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

    fn load(conn: &Connection, opts: OutboxOptions) -> Result<Self, OutboxError> {
        let path = opts.path.clone();
        let at: &Path = &path;
        let e = |op| move |err| sql(op, at, err);
        let mut routes = Vec::with_capacity(opts.routes.len());
        let mut fan_out: [Vec<RouteId>; 3] = Default::default();
        let mut readings_only = Vec::new();
        for spec in &opts.routes {
            conn.execute(
                "INSERT INTO route (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
                params![spec.name],
            )
            .map_err(e("register route"))?;
            let id: i64 = conn
                .query_row(
                    "SELECT id FROM route WHERE name = ?1",
                    params![spec.name],
                    |r| r.get(0),
                )
                .map_err(e("register route"))?;
            let id = RouteId(id);
            if spec.readings_only {
                readings_only.push(id);
            }
            for c in &spec.categories {
                let slot = &mut fan_out[usize::from(c.code())];
                if !slot.contains(&id) {
                    slot.push(id);
                }
            }
            routes.push(Route {
                id,
                name: spec.name.clone(),
                retry: spec.retry,
            });
        }
        let all_route_ids = {
            let mut stmt = conn
                .prepare("SELECT id FROM route ORDER BY id")
                .map_err(e("load routes"))?;
            let ids = stmt
                .query_map([], |r| r.get(0).map(RouteId))
                .map_err(e("load routes"))?;
            ids.collect::<Result<Vec<_>, _>>()
                .map_err(e("load routes"))?
        };
        let (totals, dead) = read_totals(conn, &path)?;
        let data_version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(e("load totals"))?;
        Ok(Inner {
            path: path.clone(),
            opts,
            routes,
            fan_out,
            readings_only,
            all_route_ids,
            totals,
            dead,
            data_version,
        })
    }
}

/// The running totals per lane and of the dead-letter table.
fn read_totals(conn: &Connection, path: &Path) -> Result<([LaneTotal; 4], LaneTotal), OutboxError> {
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

enum Connect {
    Corrupt(String),
    Failed(OutboxError),
}

impl Connect {
    fn into_error(self) -> OutboxError {
        match self {
            Connect::Failed(e) => e,
            Connect::Corrupt(why) => OutboxError::Sqlite {
                op: "open fresh database",
                path: PathBuf::new(),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(why),
                ),
            },
        }
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Open the file with hearth's pragmas and run the integrity check.
fn connect(path: &Path, check: IntegrityCheck) -> Result<Connection, Connect> {
    let classify = |op: &'static str| {
        move |e: rusqlite::Error| {
            if is_corruption(&e) {
                Connect::Corrupt(e.to_string())
            } else {
                Connect::Failed(sql(op, path, e))
            }
        }
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify("open"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(classify("open"))?;
    // WAL lets `hearth outbox stats` read while the daemon writes. synchronous=FULL because in
    // WAL mode NORMAL may lose committed transactions on power loss (invariant 8).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(classify("set WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Connect::Failed(OutboxError::Sqlite {
            op: "set WAL mode",
            path: path.to_owned(),
            source: rusqlite::Error::InvalidQuery,
        }));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -8000;",
    )
    .map_err(classify("set pragmas"))?;
    // Checkpoints run on their own thread (`writer.rs`, `checkpointer`), so a commit never
    // waits for one; this high mark is only the safety net should that thread stop.
    // After a checkpoint, the first commit cuts the WAL back to this size (issue 6: without a
    // limit the file stayed at its largest, 38 MB with an empty outbox).
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
        crate::writer::AUTOCHECKPOINT_PAGES,
        crate::writer::WAL_LIMIT_BYTES
    ))
    .map_err(classify("set pragmas"))?;

    let pragma = match check {
        IntegrityCheck::Quick => Some("PRAGMA quick_check(1)"),
        IntegrityCheck::Full => Some("PRAGMA integrity_check(1)"),
        IntegrityCheck::Off => None,
    };
    if let Some(pragma) = pragma {
        let verdict: String = conn
            .query_row(pragma, [], |r| r.get(0))
            .map_err(classify("integrity check"))?;
        if verdict != "ok" {
            return Err(Connect::Corrupt(format!("integrity check: {verdict}")));
        }
    }
    Ok(conn)
}

/// Move a corrupt database (and its WAL and shared-memory files) aside; never delete it.
fn quarantine(path: &Path) -> Result<PathBuf, OutboxError> {
    let stamp = Timestamp::now().unix_millis();
    let target = path.with_file_name(format!(
        "{}.corrupt-{stamp}",
        path.file_name()
            .map_or_else(|| "outbox.db".into(), |n| n.to_string_lossy())
    ));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", target.display()));
            fs::rename(&from, &to).map_err(|source| OutboxError::Io {
                what: "cannot move corrupt database aside",
                path: from.clone(),
                source,
            })?;
        }
    }
    sync_dir(path)?;
    Ok(target)
}

/// fsync the directory holding `path`, so that a created or renamed file survives a power cut
/// (invariant 8).
/// Replace each id in `table.column` by its gateway-scoped id; returns how many rows changed.
fn rescope(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    key: &str,
    column: &str,
    gateway: hearth_model::GatewayId,
) -> rusqlite::Result<u64> {
    let rows: Vec<(i64, Vec<u8>)> = tx
        .prepare(&format!(
            "SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare(&format!(
        "UPDATE {table} SET {column} = ?1 WHERE {key} = ?2"
    ))?;
    let mut changed = 0;
    for (k, bytes) in rows {
        // A malformed id (never written by hearth) is left as it is, not guessed at.
        let Ok(raw) = <[u8; 16]>::try_from(bytes.as_slice()) else {
            continue;
        };
        let scoped = RecordId::from_bytes(raw).scoped(gateway);
        changed += update.execute(params![&scoped.as_bytes()[..], k])? as u64;
    }
    Ok(changed)
}

pub(crate) fn sync_dir(path: &Path) -> Result<(), OutboxError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    File::open(&dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| OutboxError::Io {
            what: "cannot sync data directory",
            path: dir,
            source,
        })
}
