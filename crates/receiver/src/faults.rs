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

/// A scripted fault of the SCAIP endpoint (on top of [`Faults`], which apply to it as to the
/// others: error → `503`, reset, garbage, latency, down windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaipFault {
    /// No answer: the request is stored and recorded, the connection held open unanswered
    /// (until the sender gives up, at most [`SCAIP_HANG`]).
    Hang,
    /// `snu`=4 (hold); once the fault's `times` are used up, the event is handled (`snu`=0).
    Hold,
    /// `snu`=6 (busy).
    Busy,
    /// `snu`=5 (not treated).
    NotTreated,
    /// This `snu` (an error number such as 2 or 99).
    Snu(u16),
    /// `200` with an `<mrs>` for another `ref`.
    WrongRef,
    /// `200` with a body that is not well-formed XML.
    Malformed,
    /// `401` with `WWW-Authenticate: Bearer`, whatever the credentials (nothing stored). Over
    /// SIP: every REGISTER and MESSAGE is answered `401` with a fresh Digest challenge, however
    /// it was authenticated (a 401 loop).
    Unauthorized,
    /// SIP only: the `<mrs>` goes in the `200`'s body instead of a separate MESSAGE to the
    /// unit (some centres do that); over HTTPS, where it always does, no fault.
    MrsIn200,
}

/// Longest a [`ScaipFault::Hang`] holds a request.
pub const SCAIP_HANG: Duration = Duration::from_secs(300);

impl ScaipFault {
    /// Name for counters (`fault:<name>`) and the request log.
    pub fn name(self) -> &'static str {
        match self {
            ScaipFault::Hang => "hang",
            ScaipFault::Hold => "hold",
            ScaipFault::Busy => "busy",
            ScaipFault::NotTreated => "not_treated",
            ScaipFault::Snu(_) => "snu",
            ScaipFault::WrongRef => "wrong_ref",
            ScaipFault::Malformed => "malformed",
            ScaipFault::Unauthorized => "unauthorized",
            ScaipFault::MrsIn200 => "mrs_in_200",
        }
    }

    /// Parse `hang`, `hold`, `busy`, `not-treated`, `snu=N`, `wrong-ref`, `malformed`, `401`
    /// (or `unauthorized`), `mrs-in-200` (SIP only), optionally followed by `:N` (the first N requests of each event), e.g. `hold:2`.
    pub fn parse(s: &str) -> Result<ScaipFaults, String> {
        let (name, times) = match s.rsplit_once(':') {
            Some((n, t)) => (
                n,
                Some(t.trim().parse::<u32>().map_err(|_| {
                    format!("{s:?}: the count after ':' must be a number, e.g. hold:2")
                })?),
            ),
            None => (s, None),
        };
        let fault = match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "hang" => ScaipFault::Hang,
            "hold" => ScaipFault::Hold,
            "busy" => ScaipFault::Busy,
            "not-treated" => ScaipFault::NotTreated,
            "wrong-ref" => ScaipFault::WrongRef,
            "malformed" => ScaipFault::Malformed,
            "401" | "unauthorized" => ScaipFault::Unauthorized,
            "mrs-in-200" => ScaipFault::MrsIn200,
            other => match other.strip_prefix("snu=").map(str::parse::<u16>) {
                Some(Ok(n)) => ScaipFault::Snu(n),
                _ => {
                    return Err(format!(
                        "{s:?}: expected hang, hold, busy, not-treated, snu=N, wrong-ref, \
                         malformed, 401 or mrs-in-200, optionally with :N (the first N requests of each event)"
                    ));
                }
            },
        };
        Ok(ScaipFaults {
            fault: Some(fault),
            times,
        })
    }
}

/// The SCAIP endpoint's scripted fault (none by default).
///
/// The fault hits the first [`times`](Self::times) requests of each event (by `ref`; all of
/// them when `None`), resets (`mty=RE`) excepted: they are always answered, so a test sees
/// them recorded. [`ScaipFault::Unauthorized`] counts requests overall instead (it refuses
/// before reading the body). After the fault's requests the event is handled (`snu`=0), so
/// `hold` with `times: Some(2)` is "hold twice, then OK".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScaipFaults {
    /// The fault.
    pub fault: Option<ScaipFault>,
    /// For how many requests of each event; `None`: every request.
    pub times: Option<u32>,
}

impl ScaipFaults {
    /// `fault` on every request.
    pub fn always(fault: ScaipFault) -> Self {
        Self {
            fault: Some(fault),
            times: None,
        }
    }

    /// `fault` on the first `n` requests of each event, then normal answers.
    pub fn first(n: u32, fault: ScaipFault) -> Self {
        Self {
            fault: Some(fault),
            times: Some(n),
        }
    }

    /// The fault for the `n`-th (1-based) request of an event, if any.
    pub(crate) fn for_request(&self, n: u32) -> Option<ScaipFault> {
        let f = self.fault?;
        match self.times {
            Some(t) if n > t => None,
            _ => Some(f),
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

    #[test]
    fn scaip_faults_parse_and_count() {
        let f = ScaipFault::parse("hold:2").unwrap();
        assert_eq!(f, ScaipFaults::first(2, ScaipFault::Hold));
        assert_eq!(f.for_request(1), Some(ScaipFault::Hold));
        assert_eq!(f.for_request(2), Some(ScaipFault::Hold));
        assert_eq!(f.for_request(3), None);
        let f = ScaipFault::parse("busy").unwrap();
        assert_eq!(f.for_request(1000), Some(ScaipFault::Busy));
        assert_eq!(
            ScaipFault::parse("snu=99").unwrap().fault,
            Some(ScaipFault::Snu(99))
        );
        assert_eq!(
            ScaipFault::parse("not_treated").unwrap().fault,
            Some(ScaipFault::NotTreated)
        );
        assert_eq!(
            ScaipFault::parse("401").unwrap().fault,
            Some(ScaipFault::Unauthorized)
        );
        assert_eq!(
            ScaipFault::parse("mrs_in_200").unwrap().fault,
            Some(ScaipFault::MrsIn200)
        );
        assert!(ScaipFault::parse("sometimes").is_err());
        assert!(ScaipFault::parse("hold:x").is_err());
        assert_eq!(ScaipFaults::default().for_request(1), None);
    }
}
