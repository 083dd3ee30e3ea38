//! The simulated transport: scripted messages replayed in-process, without a broker (demos and
//! installer training; `backend = "simulated"`). The processor is the same as with a broker, so
//! the demo exercises the real rules, ledger and commits; there is just nothing to acknowledge.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::Incoming;
use crate::session::{AckCmd, LinkEvent};

/// Replays `script` (offset from start, topic, payload), then again every `period` (if any).
pub(crate) fn start(
    script: Vec<(Duration, String, String)>,
    period: Option<Duration>,
) -> (
    mpsc::Receiver<LinkEvent>,
    mpsc::UnboundedSender<AckCmd>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = mpsc::channel(256);
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<AckCmd>();
    let replay = tokio::spawn(async move {
        if tx
            .send(LinkEvent::Connected {
                session_present: false,
            })
            .await
            .is_err()
        {
            return;
        }
        loop {
            let start = tokio::time::Instant::now();
            for (at, topic, payload) in &script {
                tokio::time::sleep_until(start + *at).await;
                let msg = Incoming::simulated(topic.clone(), payload.clone().into_bytes());
                if tx.send(LinkEvent::Message(msg)).await.is_err() {
                    return;
                }
            }
            match period {
                Some(p) => tokio::time::sleep_until(start + p).await,
                None => return std::future::pending().await,
            }
        }
    });
    // Replies of the simulated transport go nowhere; drain them so nothing piles up.
    let drain = tokio::spawn(async move { while ack_rx.recv().await.is_some() {} });
    (rx, ack_tx, vec![replay, drain])
}
