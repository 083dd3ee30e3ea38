//! The MLLP endpoint: HL7 v2 ORU^R01 messages in MLLP frames, answered with ACKs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hearth_uplink_pcd01::mllp::frame_bytes;
use hearth_uplink_pcd01::{Deframer, escape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::faults::{Fault, Injector};
use crate::store::{Item, MLLP, OBSERVATION};
use crate::{Io, SharedStore, with_store};

/// A connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(300);

pub(crate) struct Mllp {
    store: SharedStore,
    pub(crate) injector: Injector,
    ack_seq: AtomicU64,
}

/// A message refused with `AR`.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    /// HL7 table 0357 error code.
    code: u16,
    text: String,
}

fn refusal(code: u16, text: impl Into<String>) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// The header fields the ACK needs (raw, as received) and the rows to store.
#[derive(Debug, Default)]
struct Parsed {
    sending_app: String,
    sending_facility: String,
    receiving_app: String,
    receiving_facility: String,
    trigger: String,
    control_id: String,
    processing_id: String,
    enhanced: bool,
    /// (key, kind, segment)
    rows: Vec<(String, &'static str, String)>,
}

fn field<'a>(parts: &[&'a str], n: usize) -> &'a str {
    parts.get(n).copied().unwrap_or("")
}

fn first_component(s: &str, component: char) -> &str {
    s.split(component).next().unwrap_or("")
}

/// Parse one message: what was found (the control id for the ACK even when refused) and the
/// refusal, if any.
fn parse(payload: &[u8]) -> (Parsed, Option<Refusal>) {
    let mut p = Parsed::default();
    let refused = parse_into(&mut p, payload).err();
    (p, refused)
}

fn parse_into(p: &mut Parsed, payload: &[u8]) -> Result<(), Refusal> {
    let text = String::from_utf8_lossy(payload);
    let mut segments = text
        .split(['\r', '\n'])
        .map(str::trim_start)
        .filter(|s| !s.is_empty());
    let Some(msh) = segments.next() else {
        return Err(refusal(100, "empty message"));
    };
    let Some(rest) = msh.strip_prefix("MSH") else {
        return Err(refusal(
            100,
            "the message does not start with an MSH segment",
        ));
    };
    let Some(sep) = rest
        .chars()
        .next()
        .filter(|c| !c.is_alphanumeric() && *c != ' ')
    else {
        return Err(refusal(100, "MSH has no field separator"));
    };
    let parts: Vec<&str> = msh.split(sep).collect();
    let component = field(&parts, 1).chars().next().unwrap_or('^');
    if component.is_alphanumeric() || component == sep {
        return Err(refusal(100, "MSH-2 encoding characters are missing"));
    }
    // MSH-n is parts[n - 1]: MSH-1 is the separator itself.
    p.sending_app = field(&parts, 2).to_owned();
    p.sending_facility = field(&parts, 3).to_owned();
    p.receiving_app = field(&parts, 4).to_owned();
    p.receiving_facility = field(&parts, 5).to_owned();
    p.control_id = first_component(field(&parts, 9), component)
        .trim()
        .to_owned();
    p.processing_id = first_component(field(&parts, 10), component)
        .trim()
        .to_owned();
    let msh15 = field(&parts, 14).trim();
    p.enhanced = matches!(msh15, "AL" | "ER" | "SU");
    let mut msg_type = field(&parts, 8).split(component);
    let (ty, trigger) = (
        msg_type.next().unwrap_or("").trim(),
        msg_type.next().unwrap_or("").trim(),
    );
    p.trigger = trigger.to_owned();
    if p.control_id.is_empty() {
        return Err(refusal(101, "MSH-10 message control id is missing"));
    }
    if ty != "ORU" || trigger != "R01" {
        let t = format!(
            "unsupported message type {:?}; this receiver takes ORU^R01",
            field(&parts, 8)
        );
        return Err(refusal(200, t));
    }
    let version = first_component(field(&parts, 11), component).trim();
    if !version.starts_with("2.") {
        let t = format!("unsupported HL7 version {version:?}; expected 2.x");
        return Err(refusal(203, t));
    }
    for seg in segments {
        let f: Vec<&str> = seg.split(sep).collect();
        if field(&f, 0) != "OBX" {
            continue;
        }
        // OBX-n is f[n].
        let instance = field(&f, 21).trim();
        if !instance.is_empty() {
            p.rows
                .push((format!("obx21:{instance}"), OBSERVATION, seg.to_owned()));
        } else {
            let sub = match field(&f, 4).trim() {
                "" => field(&f, 1).trim(),
                s => s,
            };
            if sub.is_empty() {
                return Err(refusal(101, "an OBX has neither OBX-21, OBX-4 nor OBX-1"));
            }
            let key = format!("msg:{}/{sub}", p.control_id);
            p.rows.push((key, "OBX", seg.to_owned()));
        }
    }
    Ok(())
}

/// `YYYYMMDDHHMMSS+0000` for now.
fn hl7_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Clone, Copy)]
enum Ack {
    Accept,
    Error,
    Reject,
}

impl Mllp {
    pub(crate) fn new(store: SharedStore, injector: Injector) -> Self {
        Self {
            store,
            injector,
            ack_seq: AtomicU64::new(1),
        }
    }

    pub(crate) async fn serve(self: Arc<Self>, mut io: Box<dyn Io>) {
        let mut deframer = Deframer::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match tokio::time::timeout(IDLE, io.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "MLLP connection ended");
                    break;
                }
            };
            deframer.push(buf.get(..n).unwrap_or(&[]));
            // Every message that arrived together (a sender pipelining its messages) is
            // handled as a group: one store transaction, the ACKs written together, in order.
            let mut payloads = Vec::new();
            while let Some(next) = deframer.next_frame() {
                match next {
                    Ok(p) => payloads.push(p),
                    Err(e) => {
                        // Nothing to acknowledge: no message. The deframer resynchronises.
                        tracing::debug!(error = %e, "MLLP: malformed framing");
                    }
                }
            }
            if payloads.is_empty() {
                continue;
            }
            let (replies, close) = self.messages(&payloads).await;
            if !replies.is_empty()
                && (io.write_all(&replies).await.is_err() || io.flush().await.is_err())
            {
                return;
            }
            if close {
                return;
            }
        }
        let _ = io.shutdown().await;
    }

    /// Handle messages that arrived together, in order: the ACK bytes to send and whether the
    /// connection is to be closed after them (a message after the one that closes it is not
    /// handled, as if it had never been read).
    async fn messages(&self, payloads: &[Vec<u8>]) -> (Vec<u8>, bool) {
        /// What one message gets.
        enum Plan {
            Reply(Vec<u8>, Fault),
            /// Stored with the group; its parse result and fault.
            Store(Box<Parsed>, Fault),
            Close,
        }
        let mut plans = Vec::with_capacity(payloads.len());
        let mut counters: Vec<(&'static str, u64)> = Vec::new();
        let mut requests: Vec<(String, Vec<Item<'static>>)> = Vec::new();
        for payload in payloads {
            if self.injector.is_down(Instant::now()) {
                counters.extend([("requests", 1), ("fault:down", 1)]);
                plans.push(Plan::Close);
                break;
            }
            let fault = self.injector.draw();
            let (mut p, refused) = parse(payload);
            if fault == Fault::Error {
                counters.extend([("requests", 1), ("fault:error", 1)]);
                let reply = self.ack(
                    &p,
                    Ack::Error,
                    Some(&refusal(207, "injected fault: try again later")),
                );
                plans.push(Plan::Reply(reply, Fault::None));
                continue;
            }
            counters.push(("requests", 1));
            if let Some(c) = fault.counter() {
                counters.push((c, 1));
            }
            match refused {
                Some(why) => {
                    counters.push(("rejected", 1));
                    plans.push(Plan::Reply(self.ack(&p, Ack::Reject, Some(&why)), fault));
                }
                None => {
                    let items = std::mem::take(&mut p.rows)
                        .into_iter()
                        .map(|(key, kind, body)| Item { key, kind, body })
                        .collect();
                    requests.push((p.control_id.clone(), items));
                    plans.push(Plan::Store(Box::new(p), fault));
                }
            }
            if fault == Fault::Reset {
                break;
            }
        }
        let stored = with_store(&self.store, move |s| s.put_all(MLLP, &requests, &counters)).await;
        if let Err(e) = &stored {
            tracing::warn!(error = %e, "MLLP: storing failed");
        }
        let mut out = Vec::new();
        for plan in plans {
            let (reply, fault) = match plan {
                Plan::Close => return (out, true),
                Plan::Reply(reply, fault) => (reply, fault),
                Plan::Store(p, fault) => {
                    let reply = match &stored {
                        Ok(()) => self.ack(&p, Ack::Accept, None),
                        Err(e) => self.ack(
                            &p,
                            Ack::Error,
                            Some(&refusal(
                                207,
                                format!("the receiver could not store the message: {e}"),
                            )),
                        ),
                    };
                    (reply, fault)
                }
            };
            self.delay().await;
            match fault {
                Fault::Reset => return (out, true),
                Fault::Garbage => out.extend(self.garbage()),
                Fault::None | Fault::Error => out.extend(reply),
            }
        }
        (out, false)
    }

    async fn delay(&self) {
        let d = self.injector.latency();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    fn garbage(&self) -> Vec<u8> {
        let n = 8 + usize::from(self.injector.bytes(1).first().copied().unwrap_or(0));
        if self.injector.coin() {
            // A well-formed frame that holds no HL7.
            frame_bytes(b"HTTP/1.1 200 OK\r\n\r\n(injected garbage, not HL7)")
        } else {
            // Raw bytes, no frame.
            self.injector.bytes(n)
        }
    }

    /// A framed ACK for `p`.
    fn ack(&self, p: &Parsed, kind: Ack, why: Option<&Refusal>) -> Vec<u8> {
        let code = match (kind, p.enhanced) {
            (Ack::Accept, false) => "AA",
            (Ack::Error, false) => "AE",
            (Ack::Reject, false) => "AR",
            (Ack::Accept, true) => "CA",
            (Ack::Error, true) => "CE",
            (Ack::Reject, true) => "CR",
        };
        let seq = self.ack_seq.fetch_add(1, Ordering::Relaxed);
        let receiving_app = if p.receiving_app.is_empty() {
            "HEARTH-RECEIVER"
        } else {
            p.receiving_app.as_str()
        };
        let trigger = if p.trigger.is_empty() {
            "R01"
        } else {
            p.trigger.as_str()
        };
        let processing = if p.processing_id.is_empty() {
            "P"
        } else {
            p.processing_id.as_str()
        };
        let mut s = format!(
            "MSH|^~\\&|{receiving_app}|{}|{}|{}|{}||ACK^{trigger}^ACK|RCV{seq:017}|{processing}|2.6\r\
             MSA|{code}|{}",
            p.receiving_facility,
            p.sending_app,
            p.sending_facility,
            hl7_now(),
            p.control_id,
        );
        if let Some(r) = why {
            let text = escape(&r.text);
            s.push_str(&format!(
                "|{text}\rERR|||{}^{}^HL70357|E||||{text}",
                r.code,
                table_0357(r.code)
            ));
        }
        s.push('\r');
        frame_bytes(s.as_bytes())
    }
}

fn table_0357(code: u16) -> &'static str {
    match code {
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        200 => "Unsupported message type",
        203 => "Unsupported version id",
        _ => "Application internal error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_rows() {
        let m = "MSH|^~\\&|HEARTH^00|FAC|RCV|RFAC|20250314070531+0100||ORU^R01^ORU_R01|CTL1|P|2.6|||AL|NE\r\
                 PID|||1\rOBR|1\rOBX|1||528391^MDC_DEV^MDC|1.0.0.0|||||||X\r\
                 OBX|2|NM|150364^MDC_TEMP_BODY^MDC|1.1.1.1|36.5|||||R|||||||||||uuid-1^HEARTH\r";
        let (p, refused) = parse(m.as_bytes());
        assert_eq!(refused, None);
        assert_eq!(p.control_id, "CTL1");
        assert!(p.enhanced);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].0, "msg:CTL1/1.0.0.0");
        assert_eq!(p.rows[1].0, "obx21:uuid-1^HEARTH");
        assert_eq!(p.rows[1].1, OBSERVATION);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"").1.unwrap().code, 100);
        assert_eq!(parse(b"PID|1").1.unwrap().code, 100);
        assert_eq!(
            parse(b"MSH|^~\\&|a|b|c|d|t||ORU^R01|||2.6").1.unwrap().code,
            101
        );
        let (p, r) = parse(b"MSH|^~\\&|a|b|c|d|t||ADT^A01|X1|P|2.6");
        let r = r.unwrap();
        assert_eq!((p.control_id.as_str(), r.code), ("X1", 200));
        assert_eq!(
            parse(b"MSH|^~\\&|a|b|c|d|t||ORU^R01|X1|P|3.0")
                .1
                .unwrap()
                .code,
            203
        );
    }

    #[test]
    fn hl7_time_is_well_formed() {
        let t = hl7_now();
        assert_eq!(t.len(), 19);
        assert!(t.starts_with("20"));
        assert!(t.ends_with("+0000"));
    }
}
