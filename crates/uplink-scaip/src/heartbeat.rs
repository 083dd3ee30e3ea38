//! The heartbeat (`mty=PI`, SS 91100 §4.5): the centre learns the home's unit is alive, and we
//! learn the centre answers before an alarm needs it. The centre may set the interval (`hbi`)
//! when we offer it (`hbo`=001).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::Verdict;
use crate::mapping::Mapping;
use crate::session::Receiver;
use crate::xml::Ref;

/// What one heartbeat gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// The centre answered `snu`=0; `interval` is the one now in force.
    Answered {
        /// The interval until the next heartbeat.
        interval: Duration,
    },
    /// The centre answered something else, or nothing.
    Failed {
        /// What went wrong, for logs and the technical alarm.
        reason: String,
    },
}

/// Send heartbeats to `receiver` every `interval` (or what the centre sets) until `stop` turns
/// true. `report` sees each beat: the daemon raises a technical alarm after failures and clears
/// it on the next answer.
pub async fn run(
    receiver: Receiver,
    mapping: Arc<Mapping>,
    mut interval: Duration,
    answer_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(&Beat) + Send,
) {
    if interval.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let request = mapping.heartbeat(fresh_ref());
        let beat = match receiver.protocol.exchange(&request, answer_timeout).await {
            Ok(answer) if answer.verdict == Verdict::Handled => {
                if let Some(hbi) = answer.heartbeat.filter(|_| mapping.heartbeat_offer) {
                    interval = hbi;
                }
                Beat::Answered { interval }
            }
            Ok(answer) => Beat::Failed {
                reason: format!("heartbeat answered {}", answer.verdict.name()),
            },
            Err(e) => Beat::Failed {
                reason: e.to_string(),
            },
        };
        report(&beat);
    }
}

/// A new 16-character reference for a message that is not an alarm (heartbeats): random, so
/// two boxes or two restarts never share one.
pub fn fresh_ref() -> Ref {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let text: String = (0..16)
        .map(|_| char::from(DIGITS[fastrand::usize(..DIGITS.len())]))
        .collect();
    Ref::trusted(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use super::*;
    use crate::xml::{MessageType, Mrq};
    use crate::{AlarmProtocol, BoxFuture, CentreAnswer, ProtocolError};

    /// A centre that answers every heartbeat with `hbi` = 2 minutes.
    struct Centre(Mutex<Vec<Mrq>>);

    impl AlarmProtocol for Centre {
        fn describe(&self) -> String {
            "centre".into()
        }
        fn exchange<'a>(
            &'a self,
            request: &'a Mrq,
            _wait: Duration,
        ) -> BoxFuture<'a, Result<CentreAnswer, ProtocolError>> {
            self.0.lock().unwrap().push(request.clone());
            Box::pin(async move {
                Ok(CentreAnswer {
                    reference: request.reference.clone().unwrap(),
                    verdict: Verdict::Handled,
                    reason: None,
                    voice: None,
                    heartbeat: Some(Duration::from_secs(120)),
                })
            })
        }
        fn notify<'a>(&'a self, _r: &'a Mrq) -> BoxFuture<'a, Result<(), ProtocolError>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_centre_sets_the_interval() {
        let centre = Arc::new(Centre(Mutex::new(Vec::new())));
        let receiver = Receiver {
            name: "arc".into(),
            protocol: centre.clone(),
        };
        let (stop_tx, stop) = watch::channel(false);
        let beats = Arc::new(Mutex::new(Vec::new()));
        let b = beats.clone();
        let task = tokio::spawn(run(
            receiver,
            Arc::new(Mapping::new("42")),
            Duration::from_secs(60),
            Duration::from_secs(10),
            stop,
            move |beat| b.lock().unwrap().push(beat.clone()),
        ));
        // Virtual time: beats at 60 s, then every 120 s as the centre asked.
        tokio::time::sleep(Duration::from_secs(60 + 120 + 120 + 1)).await;
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let sent = centre.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(
            sent.iter()
                .all(|m| m.message_type == MessageType::Heartbeat && m.heartbeat_offer)
        );
        assert_ne!(
            sent[0].reference, sent[1].reference,
            "each heartbeat has its own ref"
        );
        assert_eq!(
            beats.lock().unwrap().last(),
            Some(&Beat::Answered {
                interval: Duration::from_secs(120)
            })
        );
    }
}
