//! The PCD-01 uplink: ORU^R01 messages over MLLP on one persistent TCP (+TLS) connection.

use std::sync::Arc;
use std::time::Duration;

use hearth_model::{PersonRef, Record, RecordId};
use hearth_tls::TlsFiles;
use hearth_uplink::{BoxFuture, Claimed, Outcome, Uplink, UplinkError};
use hearth_uplink_pcd01::{
    AckOutcome, Context, Deframer, EncodeError, Message, encode_oru, frame, parse_ack,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::SetupError;
use crate::net::{Dialer, Stream};

/// Largest ACK accepted (an ACK is a few hundred bytes).
const MAX_ACK: usize = 64 * 1024;

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
    /// The encoder's context; `message_time` is replaced by the clock at each message.
    pub context: Context,
}

struct Conn {
    stream: Stream,
    deframer: Deframer,
}

/// Sends batches as PCD-01 ORU^R01 messages over MLLP; see the crate docs and `UPLINKS.md`.
pub struct MllpUplink {
    dialer: Dialer,
    timeout: Duration,
    context: Context,
    conn: Option<Conn>,
    opened: u64,
}

enum Exchange {
    Ack(AckOutcome),
    Failed(String),
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

    /// Send one framed message and read its ACK. A reused connection that turns out closed
    /// (write fails, or EOF before any reply byte) is replaced once and the message sent
    /// again (the receiver recognises a resend by its control id).
    async fn exchange(&mut self, framed: &[u8], control_id: &str) -> Exchange {
        for attempt in 0..2 {
            let (mut conn, reused) = match self.conn.take() {
                Some(c) => (c, true),
                None => match self.open().await {
                    Ok(c) => (c, false),
                    Err(e) => return Exchange::Failed(e),
                },
            };
            let retry_on_new = reused && attempt == 0;
            let timeout = self.timeout;
            let write = async {
                conn.stream.write_all(framed).await?;
                conn.stream.flush().await
            };
            match tokio::time::timeout(timeout, write).await {
                Err(_) => {
                    return Exchange::Failed(format!(
                        "sending to {} took longer than {} ms",
                        self.dialer.describe(),
                        timeout.as_millis()
                    ));
                }
                Ok(Err(_)) if retry_on_new => continue,
                Ok(Err(e)) => {
                    return Exchange::Failed(format!(
                        "sending to {} failed: {e}",
                        self.dialer.describe()
                    ));
                }
                Ok(Ok(())) => {}
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let mut got_any = false;
            let mut buf = [0u8; 4096];
            let reply = loop {
                if let Some(next) = conn.deframer.next_frame() {
                    break next.map_err(|e| format!("unreadable MLLP reply: {e}"));
                }
                match tokio::time::timeout_at(deadline, conn.stream.read(&mut buf)).await {
                    Err(_) => {
                        break Err(format!(
                            "no ACK from {} within {} ms",
                            self.dialer.describe(),
                            timeout.as_millis()
                        ));
                    }
                    Ok(Ok(0)) => break Err(String::new()),
                    Ok(Ok(n)) => {
                        got_any = true;
                        conn.deframer.push(&buf[..n]);
                    }
                    Ok(Err(e)) if !got_any && retry_on_new => {
                        tracing::debug!(error = %e, "MLLP connection broke; reconnecting");
                        break Err(String::new());
                    }
                    Ok(Err(e)) => {
                        break Err(format!(
                            "reading from {} failed: {e}",
                            self.dialer.describe()
                        ));
                    }
                }
            };
            match reply {
                Err(m) if m.is_empty() => {
                    if !got_any && retry_on_new {
                        tracing::debug!("MLLP connection was closed by the receiver; reconnecting");
                        continue;
                    }
                    return Exchange::Failed(format!(
                        "{} closed the connection before answering",
                        self.dialer.describe()
                    ));
                }
                Err(m) => return Exchange::Failed(m),
                Ok(ack) => {
                    return match parse_ack(&ack, control_id) {
                        Ok(outcome) => {
                            if conn.deframer.buffered() == 0 {
                                self.conn = Some(conn);
                            }
                            Exchange::Ack(outcome)
                        }
                        Err(e) => Exchange::Failed(format!(
                            "unusable ACK from {} for message {control_id}: {e}",
                            self.dialer.describe()
                        )),
                    };
                }
            }
        }
        Exchange::Failed(format!(
            "{} closed the connection twice in a row",
            self.dialer.describe()
        ))
    }

    /// Encode the records at `idx` into one message, rejecting records the encoder refuses.
    /// `Ok(None)`: nothing left to send.
    fn encode(
        &self,
        batch: &[Claimed],
        mut idx: Vec<usize>,
        out: &mut [Option<Outcome>],
    ) -> Result<Option<(Message, Vec<usize>)>, UplinkError> {
        let mut ctx = self.context.clone();
        ctx.message_time = crate::now();
        loop {
            if idx.is_empty() {
                return Ok(None);
            }
            let records: Vec<&Record> = idx.iter().map(|&i| &batch[i].record).collect();
            match encode_oru(&records, &ctx) {
                Ok(m) => {
                    reject_skipped(batch, &idx, m.skipped(), out);
                    return Ok(Some((m, idx)));
                }
                Err(EncodeError::Empty) => {
                    // Only alarms left, all skipped.
                    for &i in &idx {
                        out[i] = Some(Outcome::Rejected {
                            reason: not_a_reading(&batch[i].record),
                        });
                    }
                    return Ok(None);
                }
                Err(e) => {
                    if let Some(id) = culprit(&e) {
                        if let Some(pos) = idx.iter().position(|&i| batch[i].record.id() == id) {
                            reject(out, idx[pos], &e);
                            idx.remove(pos);
                            continue;
                        }
                    }
                    if is_route_error(&e) {
                        return Err(UplinkError::new(format!("PCD-01 route cannot encode: {e}")));
                    }
                    // Not tied to a record by the error: try each alone to find who is to blame.
                    let failing: Vec<(usize, EncodeError)> = idx
                        .iter()
                        .filter_map(|&i| match encode_oru(&[&batch[i].record], &ctx) {
                            Ok(_) | Err(EncodeError::Empty) => None,
                            Err(e) => Some((i, e)),
                        })
                        .collect();
                    if failing.is_empty() {
                        return Err(UplinkError::new(format!("PCD-01 route cannot encode: {e}")));
                    }
                    for (i, e) in failing {
                        reject(out, i, &e);
                        idx.retain(|&j| j != i);
                    }
                }
            }
        }
    }

    async fn deliver_batch(&mut self, batch: &[Claimed]) -> Result<Vec<Outcome>, UplinkError> {
        let mut out: Vec<Option<Outcome>> = vec![None; batch.len()];
        // One message per person (one PID per ORU^R01), in order of first appearance.
        let mut groups: Vec<(Option<&PersonRef>, Vec<usize>)> = Vec::new();
        for (i, c) in batch.iter().enumerate() {
            let person = match &c.record {
                Record::Reading(r) => r.person.as_ref(),
                _ => None,
            };
            match groups.iter_mut().find(|(p, _)| *p == person) {
                Some((_, v)) => v.push(i),
                None => groups.push((person, vec![i])),
            }
        }
        let mut answered = 0usize;
        for (_, idx) in groups {
            let Some((message, idx)) = self.encode(batch, idx, &mut out)? else {
                continue;
            };
            let by_id = |id: &RecordId| idx.iter().copied().find(|&i| batch[i].record.id() == *id);
            let control_id = message.control_id().to_owned();
            match self.exchange(&frame(&message), &control_id).await {
                Exchange::Ack(ack) => {
                    let outcome = match &ack {
                        AckOutcome::Delivered { .. } => Outcome::Delivered,
                        AckOutcome::Retry { code, reason } => {
                            tracing::warn!(control_id = %control_id, code = code.as_str(), reason = %reason, "PCD-01 receiver asks to retry");
                            Outcome::Retry { not_before: None }
                        }
                        AckOutcome::Rejected { code, reason } => Outcome::Rejected {
                            reason: format!(
                                "PCD-01 receiver answered {} for message {control_id}: {reason}",
                                code.as_str()
                            ),
                        },
                    };
                    for id in message.records() {
                        if let Some(i) = by_id(id) {
                            out[i] = Some(outcome.clone());
                        }
                    }
                    answered += 1;
                }
                Exchange::Failed(why) => {
                    // The connection is dropped (self.conn was taken). Nothing answered yet:
                    // fail the batch so the route backs off; otherwise keep what was answered.
                    if answered == 0 {
                        return Err(UplinkError::new(format!("PCD-01: {why}")));
                    }
                    tracing::warn!(error = %why, "PCD-01 delivery failed part-way; the rest of the batch is retried");
                    break;
                }
            }
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

fn reject_skipped(
    batch: &[Claimed],
    idx: &[usize],
    skipped: &[RecordId],
    out: &mut [Option<Outcome>],
) {
    for id in skipped {
        if let Some(&i) = idx.iter().find(|&&i| batch[i].record.id() == *id) {
            out[i] = Some(Outcome::Rejected {
                reason: not_a_reading(&batch[i].record),
            });
        }
    }
}

fn reject(out: &mut [Option<Outcome>], i: usize, e: &EncodeError) {
    // Not final yet (a later failure of the batch keeps it): the sender logs the dead
    // letter once it is settled.
    tracing::debug!(error = %e, "PCD-01 encoder refused a record; sending the rest without it");
    out[i] = Some(Outcome::Rejected {
        reason: e.to_string(),
    });
}

fn culprit(e: &EncodeError) -> Option<RecordId> {
    match e {
        EncodeError::NotAReading { id, .. }
        | EncodeError::NonFinite { id }
        | EncodeError::NestedCompound { id } => Some(*id),
        _ => None,
    }
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
