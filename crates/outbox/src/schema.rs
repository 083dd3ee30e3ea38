//! Schema and forward migrations, versioned with `PRAGMA user_version`.
//!
//! Migrations only ever move forward; each runs in its own transaction together with the
//! `user_version` bump, so a power cut leaves the file at either the old or the new version.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{OutboxError, sql};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The version that gave `dead_letter` its bounded-payload columns (read-only listings need it).
pub(crate) const DEAD_LETTER_COLUMNS_VERSION: i64 = 3;

/// The version that added the alarm event log (`alarm_log`); older files have none.
pub(crate) const ALARM_LOG_VERSION: i64 = 5;

/// `MIGRATIONS[n]` moves a database from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: the first schema.
    r#"
    -- One row per stored record. `seq` is insertion order; `id` the deterministic record id,
    -- unique so that a re-sent record is recognised and stored once.
    CREATE TABLE item (
        seq          INTEGER PRIMARY KEY,
        id           BLOB    NOT NULL UNIQUE,
        lane         INTEGER NOT NULL,
        category     INTEGER NOT NULL,
        received_ms  INTEGER NOT NULL,
        bytes        INTEGER NOT NULL,
        routes_left  INTEGER NOT NULL,
        payload      BLOB    NOT NULL
    );
    -- "Drop the oldest of the lowest lane" is one range scan of this index (invariant 4).
    CREATE INDEX item_lane_seq ON item (lane, seq);

    -- Routes by name; ids are stable across restarts and config changes.
    CREATE TABLE route (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE
    );

    -- Open deliveries: one row per (route, record) that the route has not yet finished.
    -- Delivered and dead deliveries are removed (their counts live in `counter`). The key order
    -- (route, lane, seq) is the drain order, so a claim is a range scan (invariant 3).
    CREATE TABLE delivery (
        route     INTEGER NOT NULL,
        lane      INTEGER NOT NULL,
        seq       INTEGER NOT NULL,
        state     INTEGER NOT NULL,   -- 0 pending, 1 in flight
        attempts  INTEGER NOT NULL,
        next_ms   INTEGER NOT NULL,
        PRIMARY KEY (route, lane, seq)
    ) WITHOUT ROWID;

    -- Records a receiver rejected for good, undecodable stored rows, and malformed input from
    -- drivers, each with the reason (invariant 6).
    CREATE TABLE dead_letter (
        id           INTEGER PRIMARY KEY,
        origin       TEXT    NOT NULL,  -- 'route:<name>', 'input:<source>', 'unrouted' or 'invalid'
        record_id    BLOB,
        lane         INTEGER,
        category     INTEGER,
        received_ms  INTEGER,
        dead_ms      INTEGER NOT NULL,
        attempts     INTEGER NOT NULL,
        reason       TEXT    NOT NULL,
        payload      BLOB    NOT NULL
    );

    -- Monotonic counters (ingested, duplicates, delivered:<route>, dropped:<lane> …).
    CREATE TABLE counter (
        name   TEXT PRIMARY KEY,
        value  INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Running totals kept in the same transactions as the rows they count, so `stats` and the
    -- cap check never scan the backlog.
    CREATE TABLE total (
        lane   INTEGER PRIMARY KEY,
        rows   INTEGER NOT NULL,
        bytes  INTEGER NOT NULL
    );
    INSERT INTO total (lane, rows, bytes) VALUES (0,0,0),(1,0,0),(2,0,0),(3,0,0);

    -- Per-source cursors (last committed device sequence number, …), committed atomically with
    -- the records they cover (invariant 1).
    CREATE TABLE cursor (
        source  TEXT PRIMARY KEY,
        value   INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Small key/value state of the outbox itself (edge-triggered alarm states).
    CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // Version 2 (issue 3): per-source journals, small blobs a driver commits with its records
    // (the MQTT source's redelivery ledger: one row per batch instead of one per message).
    r#"
    CREATE TABLE journal (
        source  TEXT    NOT NULL,
        seq     INTEGER NOT NULL,
        entries BLOB    NOT NULL,
        PRIMARY KEY (source, seq)
    ) WITHOUT ROWID;
    "#,
    // Version 3 (issue 6): dead letters are bounded and counted in the cap. Raw input keeps only
    // a prefix (`crate::keep::KEEP_INPUT_BYTES`) with the original length and an FNV-1a hash;
    // the running totals of the table live in `meta` (`dead_letter_rows`, `dead_letter_bytes`),
    // and `(lane, id)` is the order in which the cap drops them. `after_migration` truncates the
    // rows of earlier versions and fills the new columns and totals; it adds the columns
    // (`payload_len`, `payload_hash`, `truncated`) only where they are missing.
    r#"
    CREATE INDEX IF NOT EXISTS dead_letter_lane_id ON dead_letter (lane, id);
    "#,
    // Version 4 (issue 6): what devices told about themselves (BLE Device Information Service,
    // zigbee2mqtt bridge/devices), one row per device, upserted; read by the FHIR uplink
    // (PhdDevice manufacturer/modelNumber) and the seed of the equipment register (A7).
    // Not records: not routed, not counted in the cap (one small row per known device).
    r#"
    CREATE TABLE IF NOT EXISTS device (
        id           TEXT PRIMARY KEY,
        manufacturer TEXT,
        model        TEXT,
        serial       TEXT,
        firmware     TEXT,
        eui64        TEXT,
        battery      INTEGER,
        updated_ms   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // Version 5 (issue 15, REQUIREMENTS S3): the alarm event log, one row per thing that
    // happened to an alarm on its way to a response centre (queued, attempt, handled, failing,
    // …). Generic text only: the caller composes `event` (a short word) and `detail` (a small
    // JSON object); the outbox knows no wire format. Bounded in rows
    // (`OutboxOptions::max_alarm_log`, oldest first, counted in `alarm_log_pruned`); not
    // records, not routed. See `crate::alarm_log`.
    r#"
    CREATE TABLE IF NOT EXISTS alarm_log (
        id         INTEGER PRIMARY KEY,
        at_ms      INTEGER NOT NULL,
        record_id  BLOB,
        route      TEXT    NOT NULL,
        reference  TEXT,
        event      TEXT    NOT NULL,
        receiver   TEXT,
        detail     TEXT    NOT NULL
    );
    CREATE INDEX IF NOT EXISTS alarm_log_record ON alarm_log (record_id)
        WHERE record_id IS NOT NULL;
    "#,
];

/// Steps of a migration that SQL alone cannot do, run in the migration's transaction.
fn after_migration(tx: &rusqlite::Transaction<'_>, to: i64) -> Result<(), rusqlite::Error> {
    if to != 3 {
        return Ok(());
    }
    let columns: Vec<String> = {
        let mut stmt = tx.prepare("SELECT name FROM pragma_table_info('dead_letter')")?;
        let mapped = stmt.query_map([], |r| r.get(0))?;
        mapped.collect::<Result<_, _>>()?
    };
    for (name, decl) in [
        ("payload_len", "INTEGER"),
        ("payload_hash", "INTEGER"),
        ("truncated", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        if !columns.iter().any(|c| c == name) {
            tx.execute_batch(&format!(
                "ALTER TABLE dead_letter ADD COLUMN {name} {decl};"
            ))?;
        }
    }
    let rows: Vec<(i64, String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT id, origin, payload FROM dead_letter")?;
        let mapped = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        mapped.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare(
        "UPDATE dead_letter SET payload = ?2, payload_len = ?3, payload_hash = ?4, truncated = ?5
         WHERE id = ?1",
    )?;
    let (mut count, mut bytes) = (0i64, 0i64);
    for (id, origin, payload) in rows {
        let kept = crate::keep::kept_payload(&origin, &payload);
        update.execute(rusqlite::params![
            id,
            kept,
            payload.len() as i64,
            crate::keep::fnv1a(&payload) as i64,
            kept.len() < payload.len(),
        ])?;
        count += 1;
        bytes += kept.len() as i64;
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2), (?3, ?4)",
        rusqlite::params![
            crate::keep::META_ROWS,
            count,
            crate::keep::META_BYTES,
            bytes
        ],
    )?;
    Ok(())
}

/// Read the schema version of an open database.
pub(crate) fn version(conn: &Connection, path: &Path) -> Result<i64, OutboxError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sql("read schema version", path, e))
}

/// Bring the database to [`SCHEMA_VERSION`], refusing files from a newer build.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OutboxError> {
    let found = version(conn, path)?;
    if found > SCHEMA_VERSION {
        return Err(OutboxError::NewerSchema {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (from, script) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let to = from as i64 + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql("migrate", path, e))?;
        tx.execute_batch(script)
            .map_err(|e| sql("migrate", path, e))?;
        after_migration(&tx, to).map_err(|e| sql("migrate", path, e))?;
        tx.pragma_update(None, "user_version", to)
            .map_err(|e| sql("migrate", path, e))?;
        tx.commit().map_err(|e| sql("migrate", path, e))?;
        tracing::info!(from, to, "outbox schema migrated");
    }
    Ok(())
}
