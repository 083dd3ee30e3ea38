//! The route's [`Uplink`]: each claimed alarm runs its own session across the receivers,
//! concurrently, so one alarm on hold never delays another in the same batch.

use std::sync::Arc;

use futures_util::future::join_all;
use hearth_model::{Alarm, Record, RecordId, Timestamp};
use hearth_uplink::{BoxFuture, Claimed, Outcome, Uplink, UplinkError};

use crate::CentreAnswer;
use crate::mapping::Mapping;
use crate::session::{self, Attempt, Receiver, SessionOutcome, SessionPolicy};
use crate::xml::Ref;

/// What the alarm route reports as it works: the event log (S3), the receipt signal (A2) and
/// the voice issue listen here.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmEvent {
    /// A request went to a receiver (or a reset was sent).
    Attempt {
        /// The record.
        record: RecordId,
        /// The event's `ref`.
        reference: Ref,
        /// What happened.
        attempt: Attempt,
    },
    /// A receiver handled the alarm (`snu`=0): the receipt signal plays; `answer.voice` tells
    /// the voice side what to do.
    Handled {
        /// The record.
        record: RecordId,
        /// The safety alarm, when the record is one (technical alarms have none): its device,
        /// kind and person pick the receipt signal.
        alarm: Option<Box<Alarm>>,
        /// The event's `ref`.
        reference: Ref,
        /// The receiver's name.
        receiver: String,
        /// Its answer.
        answer: CentreAnswer,
        /// When the answer came (the event log's time, not when a listener took it).
        at: Timestamp,
    },
    /// No receiver handled it this round; it stays queued and is tried again (the home gets the
    /// "delivery failing" signal).
    Failing {
        /// The record.
        record: RecordId,
        /// The safety alarm, when the record is one.
        alarm: Option<Box<Alarm>>,
        /// The event's `ref`.
        reference: Ref,
        /// When the round ended.
        at: Timestamp,
    },
}

/// Who hears [`AlarmEvent`]s. Called inline: keep it short (send to a channel).
pub type AlarmObserver = Arc<dyn Fn(&AlarmEvent) + Send + Sync>;

/// An alarm route's uplink: receivers in order, one mapping, one session policy.
pub struct ScaipUplink {
    receivers: Vec<Receiver>,
    mapping: Arc<Mapping>,
    policy: SessionPolicy,
    observer: AlarmObserver,
}

impl ScaipUplink {
    /// An uplink over `receivers` (primary first); at least one.
    pub fn new(
        receivers: Vec<Receiver>,
        mapping: impl Into<Arc<Mapping>>,
        policy: SessionPolicy,
        observer: AlarmObserver,
    ) -> Self {
        Self {
            receivers,
            mapping: mapping.into(),
            policy,
            observer,
        }
    }

    async fn deliver_one(&self, claimed: &Claimed) -> Outcome {
        let request = match self.mapping.request_for(&claimed.record) {
            Ok(r) => r,
            Err(not_ours) => {
                return Outcome::Skipped {
                    reason: not_ours.to_string(),
                };
            }
        };
        let record = claimed.record.id();
        let Some(reference) = request.reference.clone() else {
            return Outcome::Retry { not_before: None };
        };
        if let Err(e) = request.to_xml() {
            // Our configuration cannot make a valid message (e.g. the account number): keep
            // the alarm and retry; the route's error shows what to fix.
            tracing::error!(%record, error = %e, "cannot build the SCAIP request; fix [route.scaip] and the alarm is sent");
            return Outcome::Retry { not_before: None };
        }
        let observer = &self.observer;
        let log = |attempt: &Attempt| {
            log_attempt(&claimed.record, &reference, attempt);
            observer(&AlarmEvent::Attempt {
                record,
                reference: reference.clone(),
                attempt: attempt.clone(),
            });
        };
        let receivers = self.receivers_for(&claimed.record);
        match session::run(&receivers, &request, self.policy, &log).await {
            SessionOutcome::Handled {
                receiver_index,
                answer,
            } => {
                let receiver = receivers
                    .get(receiver_index)
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                observer(&AlarmEvent::Handled {
                    record,
                    alarm: alarm_of(&claimed.record),
                    reference,
                    receiver,
                    answer,
                    at: Timestamp::now(),
                });
                Outcome::Delivered
            }
            SessionOutcome::Exhausted => {
                tracing::error!(%record, %reference, receivers = self.receivers.len(),
                    "no response centre handled the alarm; it stays queued and is sent again");
                observer(&AlarmEvent::Failing {
                    record,
                    alarm: alarm_of(&claimed.record),
                    reference,
                    at: Timestamp::now(),
                });
                Outcome::Retry { not_before: None }
            }
        }
    }
}

impl ScaipUplink {
    /// The receivers for a record in order: the device's own order (S6), or the route's.
    fn receivers_for(&self, record: &Record) -> Vec<Receiver> {
        match self.mapping.receivers_for(record) {
            Some(names) => names
                .iter()
                .filter_map(|n| self.receivers.iter().find(|r| &r.name == n).cloned())
                .collect(),
            None => self.receivers.clone(),
        }
    }
}

fn alarm_of(record: &Record) -> Option<Box<Alarm>> {
    match record {
        Record::Alarm(a) => Some(Box::new(a.clone())),
        _ => None,
    }
}

fn log_attempt(record: &Record, reference: &Ref, a: &Attempt) {
    tracing::info!(
        record = %record.id(),
        %reference,
        receiver = %a.receiver,
        mty = a.message_type.code(),
        result = ?a.result,
        "alarm attempt"
    );
}

impl Uplink for ScaipUplink {
    fn describe(&self) -> String {
        let list: Vec<String> = self
            .receivers
            .iter()
            .map(|r| r.protocol.describe())
            .collect();
        format!("scaip [{}]", list.join(", "))
    }

    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(async move {
            if self.receivers.is_empty() {
                return Err(UplinkError::new("alarm route has no receiver configured"));
            }
            let this = &*self;
            Ok(join_all(batch.iter().map(|c| this.deliver_one(c))).await)
        })
    }
}
