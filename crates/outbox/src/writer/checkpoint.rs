//! The checkpoint thread: WAL checkpoints run beside the writer, never in its commit path,
//! and the WAL is kept bounded.

use super::*;

pub const WAL_LIMIT_BYTES: u64 = 4 << 20;

/// The writer connection's own automatic checkpoint threshold (pages): a safety net only.
pub(crate) const AUTOCHECKPOINT_PAGES: u32 = 20_000;

/// How often the checkpointer copies committed WAL frames into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The WAL's limit in frames (4 KiB pages). Past half of it the checkpointer looks twice as
/// often: five times as often, so that the writer's RESTART ([`bound_wal`]) finds little left
/// to copy. The checkpointer itself no longer restarts the WAL: its RESTART had to wait for a
/// moment without a writer while holding the checkpoint lock, which a busy writer never left it
/// (and the writer's own restart then found the lock taken); the WAL grew to 40–87 MB (issue 6).
pub(super) const WAL_RESTART_FRAMES: i64 = (WAL_LIMIT_BYTES / 4096) as i64;

/// Copies committed WAL frames into the database file on a connection of its own, so the
/// writer's commits never wait for a checkpoint (SQLite's automatic checkpoint would run inside
/// the commit that crosses the threshold and stall every source waiting for that commit).
/// A PASSIVE checkpoint never blocks the writer; a WAL that did not change for a whole tick
/// (the writer is idle) gets a TRUNCATE checkpoint, which leaves an empty file: an idle gateway
/// keeps no WAL on its SD card. Under load, TRUNCATE would cost every commit a metadata update
/// of a growing file (measured: 60–120 ms commit stalls), so it waits for a pause. Ends when `stop` disconnects. Failures are logged and
/// retried: a missed checkpoint costs WAL size, never data.
pub(super) fn checkpointer(path: &std::path::Path, stop: &std::sync::mpsc::Receiver<()>) {
    let conn = match rusqlite::Connection::open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "outbox checkpointer cannot open the database; SQLite's automatic checkpoint takes over");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let _ = conn.execute_batch(&format!("PRAGMA journal_size_limit = {WAL_LIMIT_BYTES};"));
    // Frames in the WAL at the previous tick: the same count again means no commit since.
    let mut last_log = -1i64;
    let mut tick = CHECKPOINT_EVERY;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        let mode = match &passive {
            Ok((log, done)) if *log > 0 && *log == last_log && done == log => Some("TRUNCATE"),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "outbox checkpoint skipped; will retry");
                None
            }
        };
        last_log = passive.as_ref().map_or(-1, |(log, _)| *log);
        // A WAL past half its limit is growing fast: look again sooner.
        tick = if last_log > WAL_RESTART_FRAMES / 2 {
            CHECKPOINT_EVERY / 5
        } else {
            CHECKPOINT_EVERY
        };
        if let Some(mode) = mode {
            let sql = format!("PRAGMA wal_checkpoint({mode})");
            match conn.query_row(&sql, [], |r| r.get::<_, i64>(1)) {
                Ok(log) if mode == "TRUNCATE" => last_log = log,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, mode, "outbox WAL checkpoint failed; will retry")
                }
            }
        }
    }
}
