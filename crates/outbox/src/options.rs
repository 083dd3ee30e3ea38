use std::path::PathBuf;
use std::time::Duration;

use hearth_model::Category;

/// How a route retries a record its receiver did not take: exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// The delay never grows beyond this.
    pub max: Duration,
    /// Fraction (0..=1) of each delay that is randomised downwards, so that many boxes that lost
    /// their uplink at the same moment do not all retry at the same moment.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` (≥ 1) failures, before jitter.
    pub fn base_delay(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The jittered delay: uniformly in `[base × (1 − jitter), base]`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let base = self.base_delay(attempts);
        let jitter = self.jitter.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter * fastrand::f64())
    }
}

/// One receiver, as the outbox sees it: a name and the categories it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// Stable name; delivery state is keyed by it across restarts.
    pub name: String,
    /// The categories this route receives (invariant 5: no other category ever reaches it).
    pub categories: Vec<Category>,
    /// Per-record retry policy.
    pub retry: RetryPolicy,
    /// Only readings reach this route, never alarms or technical alarms (a FHIR or PCD-01
    /// receiver carries measurements; alarms go to alarm receivers).
    pub readings_only: bool,
    /// Only alarms and technical alarms reach this route, never readings (an alarm receiver:
    /// SCAIP to the response centre). At most one of `readings_only` and `alarms_only`.
    pub alarms_only: bool,
}

/// Maximum age per category before an undelivered record is dropped (and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Health data (measurements, safety alarms).
    pub health: Duration,
    /// Welfare observations.
    pub welfare: Duration,
    /// Administrative and technical data.
    pub administrative: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            health: Duration::from_secs(30 * DAY),
            welfare: Duration::from_secs(7 * DAY),
            administrative: Duration::from_secs(14 * DAY),
        }
    }
}

impl Retention {
    /// The retention of one category.
    pub fn of(&self, c: Category) -> Duration {
        match c {
            Category::Health => self.health,
            Category::Welfare => self.welfare,
            Category::Administrative => self.administrative,
        }
    }

    /// The shortest retention of any category.
    pub fn shortest(&self) -> Duration {
        self.health.min(self.welfare).min(self.administrative)
    }
}

/// Which consistency check runs when the database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntegrityCheck {
    /// `PRAGMA quick_check`: finds most corruption, O(size) but fast.
    #[default]
    Quick,
    /// `PRAGMA integrity_check`: also checks indexes against tables.
    Full,
    /// No check (tests and benchmarks of huge files only).
    Off,
}

/// Everything needed to open an outbox.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// The database file, e.g. `/var/lib/hearth/outbox.db`.
    pub path: PathBuf,
    /// The configured routes.
    pub routes: Vec<RouteSpec>,
    /// Cap on stored payload bytes, dead letters' included, plus [`Self::wal_reserve`]
    /// (invariant 4).
    pub max_bytes: u64,
    /// Cap on stored records (invariant 4).
    pub max_rows: u64,
    /// Maximum age per category.
    pub retention: Retention,
    /// Check run on open.
    pub integrity: IntegrityCheck,
    /// The dead-letter table keeps at most this many rows (oldest go first, counted).
    pub max_dead_letters: u64,
    /// The box's identity. When set, every record is stored (and so sent) under its id scoped
    /// to this gateway ([`hearth_model::RecordId::scoped`]), and ids queued by a build that did
    /// not scope them are rewritten once on open. The daemon always sets it; `None` stores ids
    /// as the drivers derived them (tests of the outbox alone).
    pub gateway: Option<hearth_model::GatewayId>,
    /// Store the technical alarm `dead_letters` when dead letters appear, and clear it when the
    /// table is empty again. Off by default; the daemon turns it on.
    pub dead_letter_alarm: bool,
    /// The alarm event log keeps at most this many entries (oldest go first, counted in
    /// `alarm_log_pruned`); 0 turns the log off. Default [`crate::DEFAULT_MAX_ALARM_LOG`].
    pub max_alarm_log: u64,
}

impl OutboxOptions {
    /// The part of `max_bytes` kept for the write-ahead log: [`crate::WAL_LIMIT_BYTES`], but at
    /// most an eighth of the cap. Records and dead letters get the rest.
    pub fn wal_reserve(&self) -> u64 {
        crate::WAL_LIMIT_BYTES.min(self.max_bytes / 8)
    }

    /// Options with defaults for everything but the path and routes.
    pub fn new(path: impl Into<PathBuf>, routes: Vec<RouteSpec>) -> Self {
        Self {
            path: path.into(),
            routes,
            max_bytes: 256 * 1024 * 1024,
            max_rows: 2_000_000,
            retention: Retention::default(),
            integrity: IntegrityCheck::Quick,
            max_dead_letters: 10_000,
            gateway: None,
            dead_letter_alarm: false,
            max_alarm_log: crate::DEFAULT_MAX_ALARM_LOG,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.0,
        };
        let d: Vec<u64> = (1..=9).map(|a| p.delay(a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let p = RetryPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(10),
            jitter: 0.5,
        };
        for _ in 0..1000 {
            let d = p.delay(3);
            assert!(d >= Duration::from_secs(5) && d <= Duration::from_secs(10));
        }
    }
}
