//! The restart policy: how long to wait before restarting a failed task, and
//! when a run of failures counts as a crash loop.

use std::time::Duration;

/// The shortest delay the supervisor ever waits before a restart, whatever
/// the policy says, so that a zero policy cannot turn a failing task into a
/// busy loop.
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// The relative jitter applied to every backoff delay (±20 %), so that tasks
/// failing together (the uplink and everything that depends on it) do not
/// restart in lockstep.
pub const JITTER: f64 = 0.2;

/// How the supervisor restarts failed tasks.
///
/// Backoff rule:
/// the n-th consecutive failure waits `initial · 2^(n-1)`, capped at `max`,
/// then jittered by ±[`JITTER`] and capped at `max` again
/// (and never below [`MIN_BACKOFF`]).
/// The count of consecutive failures resets when an attempt ran for longer
/// than `max` before failing: such a task was healthy, and its next failure
/// is a new incident rather than the next step of the old one.
///
/// Crash-loop rule:
/// when a task fails `crash_loop_restarts` times within
/// `crash_loop_window`, it is in a crash loop.
/// The supervisor reports that once, restarts it at `max` backoff from then
/// on, and never gives up.
/// The crash loop ends (and is reported as recovered) once an attempt has run
/// for `crash_loop_window` without failing.
/// `crash_loop_restarts == 0` disables crash-loop detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the first restart after a failure.
    pub initial: Duration,
    /// Upper bound of every delay, and the run time after which a task counts
    /// as healthy again.
    pub max: Duration,
    /// Failures within `crash_loop_window` that make a crash loop.
    pub crash_loop_restarts: u32,
    /// The sliding window for counting failures, and how long a task in a
    /// crash loop must run before it counts as recovered.
    pub crash_loop_window: Duration,
}

impl Default for RestartPolicy {
    /// 500 ms doubling to 60 s; 5 failures within 5 minutes is a crash loop.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            crash_loop_restarts: 5,
            crash_loop_window: Duration::from_secs(5 * 60),
        }
    }
}

impl RestartPolicy {
    /// The delay after the `consecutive_failures`-th failure in a row (1 for
    /// the first), before jitter.
    pub fn backoff(&self, consecutive_failures: u32) -> Duration {
        let max = self.ceiling();
        let doublings = consecutive_failures.saturating_sub(1);
        let factor = 2u32.saturating_pow(doublings);
        self.initial
            .checked_mul(factor)
            .unwrap_or(max)
            .clamp(MIN_BACKOFF, max)
    }

    /// `delay` scaled by a factor in `[1 - JITTER, 1 + JITTER]` taken from
    /// `unit` (a number in `[0, 1]`), capped at `max`.
    pub fn jitter(&self, delay: Duration, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit;
        delay.mul_f64(factor).clamp(MIN_BACKOFF, self.ceiling())
    }

    /// `max`, but never below [`MIN_BACKOFF`], so `clamp` cannot panic on a
    /// zero policy.
    fn ceiling(&self) -> Duration {
        self.max.max(MIN_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_initial_and_stops_at_max() {
        let policy = RestartPolicy::default();
        let delays: Vec<_> = (1..=10).map(|n| policy.backoff(n)).collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert_eq!(delays[2], Duration::from_secs(2));
        assert_eq!(delays[7], Duration::from_secs(60));
        assert_eq!(delays[9], Duration::from_secs(60));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_under_max() {
        let policy = RestartPolicy::default();
        let one = Duration::from_secs(1);
        assert_eq!(policy.jitter(one, 0.0), Duration::from_millis(800));
        assert_eq!(policy.jitter(one, 1.0), Duration::from_millis(1200));
        assert_eq!(policy.jitter(one, f64::NAN), one);
        assert_eq!(
            policy.jitter(Duration::from_secs(60), 1.0),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_zero_policy_still_waits_the_minimum_backoff() {
        let policy = RestartPolicy {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            ..RestartPolicy::default()
        };
        assert_eq!(policy.backoff(1), MIN_BACKOFF);
        assert_eq!(policy.jitter(Duration::ZERO, 0.0), MIN_BACKOFF);
    }
}
