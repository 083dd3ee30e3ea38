//! The PCD-01 uplink: ORU^R01 messages over MLLP on one persistent TCP (+TLS) connection.
//!
//! One message per reading (ADR 0007): the message, its control id and its bytes are a pure
//! function of the reading and the route's configuration, so a resend after a lost ACK or a
//! closed connection is the same message whatever else the outbox claimed alongside it.
//! Throughput comes from pipelining: up to `in_flight` messages are written before their ACKs
//! are read, and each ACK is matched to its message by MSA-2.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hearth_model::Record;
use hearth_tls::TlsFiles;
use hearth_uplink::{BoxFuture, Claimed, Outcome, Uplink, UplinkError};
use hearth_uplink_pcd01::{
    AckOutcome, Context, Deframer, EncodeError, encode_oru, frame, parse_any_ack,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::SetupError;
use crate::net::{Dialer, Stream};

/// Largest ACK accepted (an ACK is a few hundred bytes).
const MAX_ACK: usize = 64 * 1024;

/// Default of [`MllpSettings::in_flight`].
pub const DEFAULT_IN_FLIGHT: usize = 32;

/// Largest [`MllpSettings::in_flight`]: the ACKs of this many messages fit in the socket
/// buffers, so writing never waits for ACKs nobody reads.
pub const MAX_IN_FLIGHT: usize = 256;

/// Settings of one PCD-01 route.
#[derive(Debug, Clone)]
pub struct MllpSettings {
    /// The receiver's host name or address.
    pub host: String,
    /// The receiver's MLLP port.
    pub port: u16,
    /// `Some` = TLS (CA file, client certificate for mutual TLS); `None` = plain TCP.
    pub tls: Option<TlsFiles>,
    /// Name checked against the receiver's certificate; `None` = `host`.
    pub server_name: Option<String>,
    /// Longest wait for connecting, and for each message's ACK.
    pub timeout: Duration,
    /// Messages written on the connection before their ACKs are read (pipelining), 1 ..=
    /// [`MAX_IN_FLIGHT`]; 1 = each message waits for the previous one's ACK.
    pub in_flight: usize,
    /// The encoder's context; `message_time` is replaced by each reading's receipt time, so a
    /// resend is the same message.
    pub context: Context,
}

struct Conn {
    stream: Stream,
    deframer: Deframer,
}

/// One encoded message of a batch.
struct Pending {
    /// The record's position in the batch.
    index: usize,
    control_id: String,
    framed: Vec<u8>,
}

/// Why a connection stopped serving the messages in flight.
enum Failure {
    /// The connection was closed or broke (EOF, reset, write error): the messages in flight
    /// may be sent again on a new connection.
    Closed(String),
    /// A timeout or an unusable reply: the delivery failed.
    Fatal(String),
}

/// Sends batches as PCD-01 ORU^R01 messages over MLLP; see the crate docs and `UPLINKS.md`.
pub struct MllpUplink {
    dialer: Dialer,
    timeout: Duration,
    context: Context,
    conn: Option<Conn>,
    opened: u64,
    /// The configured pipelining depth.
    in_flight: usize,
    /// The depth in use: lowered when the receiver closes connections after a few ACKs (some
    /// MLLP servers answer one message per connection), raised again after clean deliveries.
    window: usize,
}

impl MllpUplink {
    /// Check the settings and set up TLS; connects on the first delivery.
    pub fn new(settings: MllpSettings) -> Result<Self, SetupError> {
        let tls = match &settings.tls {
            Some(files) => Some(Arc::new(crate::tls_config(files, "pcd01")?)),
            None => None,
        };
        if settings.host.is_empty() {
            return Err(SetupError::Address {
                key: "pcd01.host".into(),
                message: "no host".into(),
            });
        }
        if !(1..=MAX_IN_FLIGHT).contains(&settings.in_flight) {
            return Err(SetupError::Address {
                key: "pcd01.in_flight".into(),
                message: format!(
                    "{} messages in flight; use 1 ..= {MAX_IN_FLIGHT}",
                    settings.in_flight
                ),
            });
        }
        let name = settings.server_name.as_deref().unwrap_or(&settings.host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let dialer = Dialer::new(&settings.host, settings.port, tls, name).map_err(|message| {
            SetupError::Address {
                key: "pcd01.server_name".into(),
                message,
            }
        })?;
        Ok(Self {
            dialer,
            timeout: settings.timeout,
            context: settings.context,
            conn: None,
            opened: 0,
            in_flight: settings.in_flight,
            window: settings.in_flight,
        })
    }

    /// TCP connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    async fn open(&mut self) -> Result<Conn, String> {
        let stream = self.dialer.connect(self.timeout).await?;
        self.opened += 1;
        Ok(Conn {
            stream,
            deframer: Deframer::new(MAX_ACK),
        })
    }
}

async fn write(
    dialer: &Dialer,
    timeout: Duration,
    conn: &mut Conn,
    bytes: &[u8],
) -> Result<(), Failure> {
    let write = async {
        conn.stream.write_all(bytes).await?;
        conn.stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Err(_) => Err(Failure::Fatal(format!(
            "sending to {} took longer than {} ms",
            dialer.describe(),
            timeout.as_millis()
        ))),
        Ok(Err(e)) => Err(Failure::Closed(format!(
            "sending to {} failed: {e}",
            dialer.describe()
        ))),
        Ok(Ok(())) => Ok(()),
    }
}

/// The next MLLP frame from the receiver, waiting at most `timeout`.
async fn read_frame(
    dialer: &Dialer,
    timeout: Duration,
    conn: &mut Conn,
) -> Result<Vec<u8>, Failure> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    loop {
        if let Some(next) = conn.deframer.next_frame() {
            return next.map_err(|e| {
                Failure::Fatal(format!(
                    "unreadable MLLP reply from {}: {e}",
                    dialer.describe()
                ))
            });
        }
        match tokio::time::timeout_at(deadline, conn.stream.read(&mut buf)).await {
            Err(_) => {
                return Err(Failure::Fatal(format!(
                    "no ACK from {} within {} ms",
                    dialer.describe(),
                    timeout.as_millis()
                )));
            }
            Ok(Ok(0)) => {
                return Err(Failure::Closed(format!(
                    "{} closed the connection before answering",
                    dialer.describe()
                )));
            }
            Ok(Ok(n)) => conn.deframer.push(buf.get(..n).unwrap_or(&[])),
            Ok(Err(e)) => {
                return Err(Failure::Closed(format!(
                    "reading from {} failed: {e}",
                    dialer.describe()
                )));
            }
        }
    }
}

impl MllpUplink {
    /// Send every message, up to `window` in flight on a connection, and collect the ACKs
    /// (matched on MSA-2). Returns the answers (by message) and, when the delivery stopped
    /// before every message was answered, why.
    ///
    /// A connection that closes is replaced, and its unanswered messages are sent again (the
    /// same bytes): at once when the receiver answered something on it (it closes connections
    /// after answering), and once, one message at a time, when it answered nothing (a kept
    /// connection the receiver had closed meanwhile, or a receiver that does not take
    /// pipelined messages). Every new connection either answers a message or ends the
    /// delivery, so this terminates.
    async fn send_all(&mut self, msgs: &[Pending]) -> (Vec<Option<AckOutcome>>, Option<String>) {
        let mut acks: Vec<Option<AckOutcome>> = vec![None; msgs.len()];
        let mut todo: VecDeque<usize> = (0..msgs.len()).collect();
        let mut window = self.window;
        let mut retried = false;
        let mut clean = true;
        while !todo.is_empty() {
            let (mut conn, reused) = match self.conn.take() {
                Some(c) => (c, true),
                None => match self.open().await {
                    Ok(c) => (c, false),
                    Err(e) => return (acks, Some(e)),
                },
            };
            let mut in_flight: VecDeque<usize> = VecDeque::new();
            let mut answered_here = 0usize;
            let mut most_in_flight = 0usize;
            let result = loop {
                if in_flight.len() < window && !todo.is_empty() {
                    let mut bytes = Vec::new();
                    while in_flight.len() < window {
                        let Some(i) = todo.pop_front() else { break };
                        bytes.extend_from_slice(&msgs[i].framed);
                        in_flight.push_back(i);
                    }
                    most_in_flight = most_in_flight.max(in_flight.len());
                    if let Err(f) = write(&self.dialer, self.timeout, &mut conn, &bytes).await {
                        break Err(f);
                    }
                }
                if in_flight.is_empty() {
                    break Ok(());
                }
                // Wait for one ACK, then take every other ACK already received, before the
                // freed slots are refilled in one write.
                let mut reply = match read_frame(&self.dialer, self.timeout, &mut conn).await {
                    Ok(r) => r,
                    Err(f) => break Err(f),
                };
                let taken = loop {
                    if let Err(f) = self.take_ack(&reply, msgs, &mut in_flight, &mut acks) {
                        break Err(f);
                    }
                    answered_here += 1;
                    match conn.deframer.next_frame() {
                        None => break Ok(()),
                        Some(Ok(next)) => reply = next,
                        Some(Err(e)) => {
                            break Err(Failure::Fatal(format!(
                                "unreadable MLLP reply from {}: {e}",
                                self.dialer.describe()
                            )));
                        }
                    }
                };
                if let Err(f) = taken {
                    break Err(f);
                }
            };
            let failure = match result {
                Ok(()) => {
                    if conn.deframer.buffered() == 0 {
                        self.conn = Some(conn);
                    }
                    continue;
                }
                Err(f) => f,
            };
            // The connection is dropped; its unanswered messages go back in front, in order.
            while let Some(i) = in_flight.pop_back() {
                todo.push_front(i);
            }
            clean = false;
            match failure {
                Failure::Closed(_) if answered_here > 0 => {
                    // The receiver closes connections after answering: go on with as many
                    // messages in flight as it answered on this one.
                    let depth = answered_here.clamp(1, self.window);
                    if depth < self.window {
                        tracing::debug!(
                            depth,
                            "PCD-01 receiver closed the connection after answering; fewer messages in flight"
                        );
                    }
                    self.window = depth;
                    window = depth;
                }
                Failure::Closed(why) if !retried && (reused || most_in_flight > 1) => {
                    tracing::debug!(error = %why, "MLLP connection closed before any ACK; reconnecting, one message at a time");
                    retried = true;
                    window = 1;
                }
                Failure::Closed(why) | Failure::Fatal(why) => return (acks, Some(why)),
            }
        }
        if clean {
            self.window = (self.window * 2).min(self.in_flight);
        }
        (acks, None)
    }

    /// Match one ACK to its message in flight (by MSA-2) and record its outcome.
    fn take_ack(
        &self,
        reply: &[u8],
        msgs: &[Pending],
        in_flight: &mut VecDeque<usize>,
        acks: &mut [Option<AckOutcome>],
    ) -> Result<(), Failure> {
        let oldest = in_flight
            .front()
            .map_or("", |&i| msgs[i].control_id.as_str());
        let (cid, outcome) = parse_any_ack(reply).map_err(|e| {
            Failure::Fatal(format!(
                "unusable ACK from {} for message {oldest}: {e}",
                self.dialer.describe()
            ))
        })?;
        let Some(pos) = in_flight.iter().position(|&i| msgs[i].control_id == cid) else {
            return Err(Failure::Fatal(format!(
                "unusable ACK from {}: MSA-2 {cid:?} does not match the control id of any message in flight (oldest {oldest})",
                self.dialer.describe()
            )));
        };
        if let Some(i) = in_flight.remove(pos) {
            acks[i] = Some(outcome);
        }
        Ok(())
    }

    /// Encode each reading as its own message, rejecting records the encoder refuses.
    fn encode_each(
        &self,
        batch: &[Claimed],
        out: &mut [Option<Outcome>],
    ) -> Result<Vec<Pending>, UplinkError> {
        let mut ctx = self.context.clone();
        let mut pending = Vec::with_capacity(batch.len());
        for (i, c) in batch.iter().enumerate() {
            if let Record::Reading(r) = &c.record {
                // MSH-7 is when the message came to be: when hearth received the reading. A
                // resend is the same message, so it carries the same time (ADR 0007).
                ctx.message_time = r.received_at;
            }
            match encode_oru(std::slice::from_ref(&c.record), &ctx) {
                Ok(m) if m.skipped().is_empty() => pending.push(Pending {
                    index: i,
                    control_id: m.control_id().to_owned(),
                    framed: frame(&m),
                }),
                Ok(_) | Err(EncodeError::Empty) => {
                    out[i] = Some(Outcome::Rejected {
                        reason: not_a_reading(&c.record),
                    });
                }
                Err(e) if is_route_error(&e) => {
                    return Err(UplinkError::new(format!("PCD-01 route cannot encode: {e}")));
                }
                Err(e) => reject(out, i, &e),
            }
        }
        Ok(pending)
    }

    async fn deliver_batch(&mut self, batch: &[Claimed]) -> Result<Vec<Outcome>, UplinkError> {
        let mut out: Vec<Option<Outcome>> = vec![None; batch.len()];
        let pending = self.encode_each(batch, &mut out)?;
        let (acks, failed) = self.send_all(&pending).await;
        let answered = acks.iter().filter(|a| a.is_some()).count();
        if let Some(why) = &failed {
            // Nothing answered: fail the batch so the route backs off; otherwise keep what was
            // answered and retry the rest.
            if answered == 0 && !pending.is_empty() {
                return Err(UplinkError::new(format!("PCD-01: {why}")));
            }
            tracing::warn!(error = %why, answered, unanswered = pending.len() - answered, "PCD-01 delivery failed part-way; the rest of the batch is retried");
        }
        // A refusal of the route (issue 13): when nothing of the batch was taken, the whole
        // batch fails as a route refusal (records kept, the route pauses with `route_refused`);
        // when some messages were taken, the refused ones are kept and retried.
        let delivered = acks
            .iter()
            .filter(|a| matches!(a, Some(AckOutcome::Delivered { .. })))
            .count();
        let route_refusal = acks.iter().find_map(|a| match a {
            Some(AckOutcome::RouteRefused { code, reason }) => Some((*code, reason.clone())),
            _ => None,
        });
        if let Some((code, reason)) = &route_refusal
            && delivered == 0
        {
            return Err(UplinkError::route_refused(format!(
                "PCD-01 receiver answered {} about the route, not the readings: {reason}; the \
                 readings are kept — check the route's patient and header settings \
                 ([route.pcd01]) against the receiver",
                code.as_str()
            )));
        }
        let mut retries = 0usize;
        let mut first_retry: Option<(&str, &'static str, String)> = None;
        for (p, ack) in pending.iter().zip(acks) {
            let Some(ack) = ack else { continue };
            let control_id = p.control_id.as_str();
            out[p.index] = Some(match ack {
                AckOutcome::Delivered { .. } => Outcome::Delivered,
                AckOutcome::Retry { code, reason } => {
                    retries += 1;
                    if first_retry.is_none() {
                        first_retry = Some((control_id, code.as_str(), reason));
                    }
                    Outcome::Retry { not_before: None }
                }
                AckOutcome::RouteRefused { code, reason } => {
                    retries += 1;
                    if first_retry.is_none() {
                        first_retry = Some((control_id, code.as_str(), reason));
                    }
                    Outcome::Retry { not_before: None }
                }
                AckOutcome::Rejected { code, reason } => Outcome::Rejected {
                    reason: format!(
                        "PCD-01 receiver answered {} for message {control_id}: {reason}",
                        code.as_str()
                    ),
                },
            });
        }
        if let Some((control_id, code, reason)) = first_retry {
            tracing::warn!(control_id = %control_id, code, reason = %reason, messages = retries, "PCD-01 receiver asks to retry");
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Retry { not_before: None }))
            .collect())
    }
}

fn not_a_reading(record: &Record) -> String {
    let kind = match record {
        Record::Alarm(_) => "safety alarm",
        Record::Technical(_) => "technical alarm",
        Record::Reading(_) => "reading",
    };
    format!(
        "record {} is a {kind}, which PCD-01 (DEC) does not carry; take its category off this route",
        record.id()
    )
}

fn reject(out: &mut [Option<Outcome>], i: usize, e: &EncodeError) {
    // Not final yet (a later failure of the batch keeps it): the sender logs the dead
    // letter once it is settled.
    tracing::debug!(error = %e, "PCD-01 encoder refused a record; sending the rest without it");
    out[i] = Some(Outcome::Rejected {
        reason: e.to_string(),
    });
}

/// Errors of the route's configuration, never of one record.
fn is_route_error(e: &EncodeError) -> bool {
    matches!(e, EncodeError::InvalidOffset { .. })
        || matches!(e, EncodeError::InvalidEui64 { whose, .. } if whose == "gateway")
}

impl Uplink for MllpUplink {
    fn describe(&self) -> String {
        format!("pcd01 {}", self.dialer.describe())
    }

    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(self.deliver_batch(batch))
    }
}
