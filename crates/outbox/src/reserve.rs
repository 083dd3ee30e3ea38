//! A full disk as a state (issue 6): the writer keeps a reserve file of a few MiB next to the
//! database. When SQLite reports the disk full, the reserve is deleted and the writer switches to
//! "alarms only": alarms and technical alarms (and the route senders' claims and settlements)
//! are committed in the space the reserve freed, everything else gets the transient disk-full
//! error and is retried by its caller. A `disk_full` technical alarm (critical) is stored in
//! that space, so it reaches its route although nothing new can be stored. Once the file system
//! has the reserve plus a margin free again, the reserve is recreated, the mode ends and the
//! alarm is cleared, once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hearth_model::{AlarmState, Lane, Record, Severity, TechnicalAlarm, TechnicalKind, Timestamp};

/// The reserve the daemon keeps (`outbox.reserve` in the data directory).
pub const DEFAULT_RESERVE_BYTES: u64 = 4 << 20;

/// How often free space is looked at while the disk is full.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The source of the `disk_full` technical alarm.
pub const DISK_FULL_SOURCE: &str = "outbox";

/// What the writer does about a full disk.
#[derive(Debug)]
pub(crate) struct DiskGuard {
    /// The reserve file; `None`: no reserve and no alarms-only mode (a writer for tools/tests).
    reserve: Option<PathBuf>,
    reserve_bytes: u64,
    /// Committing only alarm and technical records (and deliveries' bookkeeping).
    pub(crate) alarms_only: bool,
    /// `disk_full` state changes still to be stored, oldest first.
    pub(crate) pending: Vec<TechnicalAlarm>,
    /// Whether the last stored `disk_full` record raised the alarm.
    raised_stored: bool,
    last_check: Option<Instant>,
    /// When the writer, idle, last tried to store the pending alarms by themselves.
    last_try: Option<Instant>,
}

impl DiskGuard {
    /// No reserve: a full disk is only an error (the behaviour before issue 6).
    pub(crate) fn disabled() -> Self {
        Self {
            reserve: None,
            reserve_bytes: 0,
            alarms_only: false,
            pending: Vec::new(),
            raised_stored: false,
            last_check: None,
            last_try: None,
        }
    }

    /// Keep a reserve of `bytes` at `path`, created (or kept, if it has that size) now.
    pub(crate) fn with_reserve(path: PathBuf, bytes: u64) -> Self {
        let guard = Self {
            reserve: Some(path),
            reserve_bytes: bytes,
            ..Self::disabled()
        };
        if let Some(path) = &guard.reserve
            && let Err(e) = create_reserve(path, bytes)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot create the outbox's disk reserve; a full disk will still be survived, but its technical alarm may not be storable");
        }
        guard
    }

    /// Whether the full-disk handling is on.
    pub(crate) fn enabled(&self) -> bool {
        self.reserve.is_some()
    }

    /// Whether a write of these records may go ahead.
    pub(crate) fn admits_records(&self, records: &[Record]) -> bool {
        !self.alarms_only || self.admits_alarms_only(records)
    }

    /// Whether these records would go ahead while only alarms are stored.
    pub(crate) fn admits_alarms_only(&self, records: &[Record]) -> bool {
        records
            .iter()
            .all(|r| matches!(r.lane(), Lane::Alarm | Lane::Technical))
    }

    /// A transaction failed with a full disk: free the reserve and store only alarms. Returns
    /// whether the mode started now.
    pub(crate) fn disk_full(&mut self, now: Instant) -> bool {
        let Some(path) = &self.reserve else {
            return false;
        };
        if self.alarms_only {
            return false;
        }
        let freed = std::fs::remove_file(path).is_ok();
        self.alarms_only = true;
        self.last_check = Some(now);
        tracing::error!(
            reserve_freed = freed,
            "disk full: the outbox stores only alarms and technical alarms now; other submissions wait and are retried, nothing is acknowledged meanwhile. Free space on the data partition"
        );
        self.pending.push(TechnicalAlarm::new(
            DISK_FULL_SOURCE,
            TechnicalKind::DiskFull,
            Severity::Critical,
            AlarmState::Raised,
            "the data partition is full: new readings cannot be stored and wait at their sources; \
             alarms are still stored and sent. Free space on the data partition",
            Timestamp::now(),
        ));
        true
    }

    /// While the disk is full, look at free space at most every [`CHECK_EVERY`]: with the
    /// reserve plus a margin free, recreate the reserve and store everything again.
    pub(crate) fn check(&mut self, now: Instant) {
        if !self.alarms_only {
            return;
        }
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < CHECK_EVERY)
        {
            return;
        }
        self.last_check = Some(now);
        let Some(path) = &self.reserve else {
            return;
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let Some(free) = free_bytes(dir) else {
            return;
        };
        if free < self.leave_at() {
            return;
        }
        if let Err(e) = create_reserve(path, self.reserve_bytes) {
            tracing::debug!(error = %e, "the disk reserve cannot be recreated yet; still full");
            let _ = std::fs::remove_file(path);
            return;
        }
        self.leave();
    }

    /// Free bytes needed to leave the mode: the reserve and as much again (at least 1 MiB).
    pub(crate) fn leave_at(&self) -> u64 {
        self.reserve_bytes + self.reserve_bytes.max(1 << 20)
    }

    fn leave(&mut self) {
        self.alarms_only = false;
        tracing::info!("space is back on the data partition: the outbox stores everything again");
        // A raise that was never stored needs no clear.
        if let Some(i) = self
            .pending
            .iter()
            .rposition(|a| a.state == AlarmState::Raised)
        {
            self.pending.remove(i);
            if !self.raised_stored {
                return;
            }
        }
        self.pending.push(TechnicalAlarm::new(
            DISK_FULL_SOURCE,
            TechnicalKind::DiskFull,
            Severity::Critical,
            AlarmState::Cleared,
            "space is back on the data partition; readings are stored again",
            Timestamp::now(),
        ));
    }

    /// The pending alarms were committed.
    pub(crate) fn stored(&mut self) {
        for a in self.pending.drain(..) {
            self.raised_stored = a.state == AlarmState::Raised;
        }
    }

    /// Whether an idle writer should try to store the pending alarms now (at most every
    /// [`CHECK_EVERY`], so that a disk too full even for them is not hammered).
    pub(crate) fn try_pending(&mut self, now: Instant) -> bool {
        if self.pending.is_empty()
            || self
                .last_try
                .is_some_and(|t| now.duration_since(t) < CHECK_EVERY)
        {
            return false;
        }
        self.last_try = Some(now);
        true
    }

    /// Whether the writer should wake up by itself (to look at free space or store an alarm).
    pub(crate) fn needs_ticks(&self) -> bool {
        self.alarms_only || !self.pending.is_empty()
    }
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Write `bytes` of zeros to `path` and make them durable (kept if it already has that size).
fn create_reserve(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes) {
        return Ok(());
    }
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 << 10];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::{Category, DeviceId, Mdc, Reading, Value};

    fn reading() -> Record {
        Record::Reading(
            Reading::builder(
                DeviceId::new("sim", "1").unwrap(),
                Mdc(1),
                Value::numeric(1.0),
            )
            .sequence(1)
            .build(Timestamp::now()),
        )
    }

    fn technical() -> Record {
        Record::Technical(TechnicalAlarm::new(
            "x",
            TechnicalKind::LowBattery,
            Severity::Minor,
            AlarmState::Raised,
            "m",
            Timestamp::now(),
        ))
    }

    fn guard(dir: &Path) -> DiskGuard {
        DiskGuard::with_reserve(dir.join("outbox.reserve"), 64 << 10)
    }

    #[test]
    fn the_reserve_is_created_at_open_and_freed_when_the_disk_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = guard(dir.path());
        let reserve = dir.path().join("outbox.reserve");
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), 64 << 10);
        assert!(g.admits_records(&[reading()]));
        g.disk_full(Instant::now());
        assert!(!reserve.exists(), "the reserve makes room for alarms");
        assert!(g.alarms_only);
        assert_eq!(g.pending.len(), 1);
        assert_eq!(g.pending[0].kind, TechnicalKind::DiskFull);
        assert_eq!(g.pending[0].severity, Severity::Critical);
        assert_eq!(g.pending[0].category(), Category::Administrative);
        // A second full disk while in the mode raises nothing more.
        g.disk_full(Instant::now());
        assert_eq!(g.pending.len(), 1);
    }

    #[test]
    fn alarms_only_admits_alarm_and_technical_lanes_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = guard(dir.path());
        g.disk_full(Instant::now());
        assert!(g.admits_records(&[technical()]));
        assert!(g.admits_records(&[]), "a cursor alone is bookkeeping");
        assert!(!g.admits_records(&[reading()]));
        assert!(!g.admits_records(&[technical(), reading()]));
    }

    #[test]
    fn space_back_recreates_the_reserve_leaves_the_mode_and_clears_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = guard(dir.path());
        let t0 = Instant::now();
        g.disk_full(t0);
        g.stored();
        assert!(g.raised_stored);
        // Free space is looked at no more often than every 250 ms.
        g.check(t0 + Duration::from_millis(10));
        assert!(g.alarms_only);
        g.check(t0 + CHECK_EVERY);
        assert!(!g.alarms_only, "a temp dir has more than the reserve free");
        assert_eq!(
            std::fs::metadata(dir.path().join("outbox.reserve"))
                .unwrap()
                .len(),
            64 << 10
        );
        assert_eq!(g.pending.len(), 1);
        assert_eq!(g.pending[0].state, AlarmState::Cleared);
        g.stored();
        g.check(t0 + 4 * CHECK_EVERY);
        assert!(g.pending.is_empty(), "cleared once");
        assert!(!g.needs_ticks());
    }

    #[test]
    fn a_raise_never_stored_is_dropped_with_no_clear() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = guard(dir.path());
        let t0 = Instant::now();
        g.disk_full(t0);
        g.check(t0 + CHECK_EVERY);
        assert!(!g.alarms_only);
        assert!(g.pending.is_empty());
    }

    #[test]
    fn without_a_reserve_a_full_disk_is_only_an_error() {
        let mut g = DiskGuard::disabled();
        g.disk_full(Instant::now());
        assert!(!g.alarms_only);
        assert!(g.pending.is_empty());
        assert!(g.admits_records(&[reading()]));
    }
}
