//! Opening the outbox: connect with hearth's pragmas, integrity check, quarantine of a corrupt
//! file, migrations, route registration, scoping of stored ids to the gateway, and recovery of
//! deliveries that were in flight.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use hearth_model::{
    AlarmState, Record, RecordId, Severity, TechnicalAlarm, TechnicalKind, Timestamp,
};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::batch::read_totals;
use super::{Inner, OpenReport, Outbox, Route, RouteId};
use crate::error::{OutboxError, sql};
use crate::options::{IntegrityCheck, OutboxOptions};
use crate::schema;

/// The gateway identity the stored record ids are scoped to (8 bytes as a big-endian i64).
/// Absent in databases whose ids were stored unscoped (before issue 13, or without a gateway).
const META_GATEWAY: &str = "gateway_id";

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
}

impl Inner {
    fn load(conn: &Connection, opts: OutboxOptions) -> Result<Self, OutboxError> {
        let path = opts.path.clone();
        let at: &Path = &path;
        let e = |op| move |err| sql(op, at, err);
        let mut routes = Vec::with_capacity(opts.routes.len());
        let mut fan_out: [Vec<RouteId>; 3] = Default::default();
        let mut readings_only = Vec::new();
        let mut alarms_only = Vec::new();
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
            if spec.alarms_only {
                alarms_only.push(id);
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
            alarms_only,
            all_route_ids,
            totals,
            dead,
            data_version,
        })
    }
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

/// fsync the directory holding `path`, so that a created or renamed file survives a power cut
/// (invariant 8).
fn sync_dir(path: &Path) -> Result<(), OutboxError> {
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
