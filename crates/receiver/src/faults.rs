//! Fault injection: a seeded, deterministic choice per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Faults to inject (all off by default).
///
/// Each request (HTTP request, MLLP message) draws one number from a generator seeded with
/// [`seed`](Self::seed) (one generator per endpoint, so the FHIR and MLLP sequences do not
/// disturb each other); the rates split `[0, 1)` in the order reset, garbage, error, so they
/// are exclusive and their sum is capped at 1. Requests arriving one after the other get the
/// same faults in every run with the same seed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Share of requests answered `503 Service Unavailable` (FHIR) or `AE` (MLLP); nothing is
    /// stored for them.
    pub error_rate: f64,
    /// Delay before every answer.
    pub latency: Duration,
    /// Windows `(from start, length)` in which connections are closed as soon as they are
    /// accepted and requests on open connections are dropped unanswered (nothing stored).
    pub down: Vec<(Duration, Duration)>,
    /// Share of requests answered with bytes that are neither FHIR nor HL7 (after storing:
    /// the sender must resend and be recognised as a duplicate).
    pub garbage_rate: f64,
    /// Share of requests whose connection is closed without an answer (after storing, like a
    /// lost answer).
    pub reset_rate: f64,
    /// Seed of the generator.
    pub seed: u64,
}

/// The fault chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Error,
    Garbage,
    Reset,
}

impl Fault {
    pub(crate) fn counter(self) -> Option<&'static str> {
        match self {
            Fault::None => None,
            Fault::Error => Some("fault:error"),
            Fault::Garbage => Some("fault:garbage"),
            Fault::Reset => Some("fault:reset"),
        }
    }
}

/// Per-endpoint fault state.
pub(crate) struct Injector {
    faults: Faults,
    start: Instant,
    rng: Mutex<fastrand::Rng>,
}

fn rate(r: f64) -> f64 {
    if r.is_finite() {
        r.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

impl Injector {
    pub(crate) fn new(faults: Faults, start: Instant, stream: u64) -> Self {
        let seed = faults.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            faults,
            start,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    /// Whether `now` falls in a down window.
    pub(crate) fn is_down(&self, now: Instant) -> bool {
        let t = now.saturating_duration_since(self.start);
        self.faults
            .down
            .iter()
            .any(|&(from, len)| t >= from && t < from.saturating_add(len))
    }

    pub(crate) fn latency(&self) -> Duration {
        self.faults.latency
    }

    /// Draw the fault for one request.
    pub(crate) fn draw(&self) -> Fault {
        let (reset, garbage, error) = (
            rate(self.faults.reset_rate),
            rate(self.faults.garbage_rate),
            rate(self.faults.error_rate),
        );
        if reset + garbage + error <= 0.0 {
            return Fault::None;
        }
        let u = match self.rng.lock() {
            Ok(mut r) => r.f64(),
            Err(p) => p.into_inner().f64(),
        };
        if u < reset {
            Fault::Reset
        } else if u < reset + garbage {
            Fault::Garbage
        } else if u < reset + garbage + error {
            Fault::Error
        } else {
            Fault::None
        }
    }

    /// `n` random bytes for garbage answers.
    pub(crate) fn bytes(&self, n: usize) -> Vec<u8> {
        let mut rng = match self.rng.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        (0..n).map(|_| rng.u8(..)).collect()
    }

    /// A coin toss from the same generator.
    pub(crate) fn coin(&self) -> bool {
        match self.rng.lock() {
            Ok(mut r) => r.bool(),
            Err(p) => p.into_inner().bool(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_split_and_are_deterministic() {
        let f = Faults {
            error_rate: 0.3,
            garbage_rate: 0.2,
            reset_rate: 0.1,
            seed: 7,
            ..Faults::default()
        };
        let t = Instant::now();
        let a: Vec<Fault> = {
            let i = Injector::new(f.clone(), t, 1);
            (0..2000).map(|_| i.draw()).collect()
        };
        let b: Vec<Fault> = {
            let i = Injector::new(f, t, 1);
            (0..2000).map(|_| i.draw()).collect()
        };
        assert_eq!(a, b);
        let n = |k| a.iter().filter(|&&x| x == k).count();
        assert!((500..700).contains(&n(Fault::Error)), "{}", n(Fault::Error));
        assert!((300..500).contains(&n(Fault::Garbage)));
        assert!((120..280).contains(&n(Fault::Reset)));
    }

    #[test]
    fn down_windows() {
        let t = Instant::now();
        let i = Injector::new(
            Faults {
                down: vec![(Duration::from_secs(2), Duration::from_secs(3))],
                ..Faults::default()
            },
            t,
            0,
        );
        assert!(!i.is_down(t + Duration::from_secs(1)));
        assert!(i.is_down(t + Duration::from_secs(2)));
        assert!(i.is_down(t + Duration::from_millis(4999)));
        assert!(!i.is_down(t + Duration::from_secs(5)));
        assert_eq!(i.draw(), Fault::None);
    }
}
