//! Parsing the receiver's acknowledgement (`ACK`, MSA + optional ERR) of one ORU^R01.
//!
//! | MSA-1 | meaning (HL7 v2.6 table 0008) | [`AckOutcome`] |
//! |---|---|---|
//! | `AA` application accept, `CA` commit accept | stored by the receiver | `Delivered` |
//! | `AE` application error, `CE` commit error | receiver could not process it now | `Retry` (the route's backoff and circuit breaker bound the retries) |
//! | `AR` application reject, `CR` commit reject | refused (type, version, processing id, content) | `Rejected` → dead letter with the reason |
//!
//! The reply is matched on MSA-2 (= our MSH-10), never on its MSH-9: receivers send `ACK`,
//! `ACK^R01^ACK` or `ACK^A01^ACK` alike. A reply whose MSA-2 differs from the control id sent is
//! [`AckError::ControlIdMismatch`] (a stale or foreign reply: treat the delivery as failed).

/// The MSA-1 acknowledgement code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Application accept.
    AA,
    /// Application error.
    AE,
    /// Application reject.
    AR,
    /// Commit accept.
    CA,
    /// Commit error.
    CE,
    /// Commit reject.
    CR,
}

impl AckCode {
    /// Parse an MSA-1 value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "AA" => AckCode::AA,
            "AE" => AckCode::AE,
            "AR" => AckCode::AR,
            "CA" => AckCode::CA,
            "CE" => AckCode::CE,
            "CR" => AckCode::CR,
            _ => return None,
        })
    }

    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }
}

/// What the sender does with the message's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// `AA` / `CA`: settle as delivered.
    Delivered {
        /// The code received.
        code: AckCode,
    },
    /// `AE` / `CE`: keep the records and send them again later.
    Retry {
        /// The code received.
        code: AckCode,
        /// MSA-3 and ERR text, unescaped ("" when the receiver gave none).
        reason: String,
    },
    /// `AR` / `CR`: dead-letter the records with the reason.
    Rejected {
        /// The code received.
        code: AckCode,
        /// MSA-3 and ERR text, unescaped ("" when the receiver gave none).
        reason: String,
    },
    /// `AR` / `CR` about the route, not this message's readings: every message of the route
    /// would be refused alike, so the records are kept and the route pauses (issue 13). Told by
    /// the HL7 error code (ERR-3, table 0357): 200–203 (unsupported message type, event,
    /// processing id, version: the route's header settings), or 204 "unknown key identifier"
    /// located in PID (the patient the route sends is not known to the receiver).
    RouteRefused {
        /// The code received.
        code: AckCode,
        /// MSA-3 and ERR text, unescaped.
        reason: String,
    },
}

/// A reply that is not a usable acknowledgement. The delivery counts as failed (retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No bytes at all.
    #[error("empty acknowledgement")]
    Empty,
    /// Not UTF-8 (hearth sends `UNICODE UTF-8`; replies are expected in the same).
    #[error("acknowledgement is not UTF-8 (invalid byte at offset {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// The first segment is not an MSH with a field separator and encoding characters.
    #[error("acknowledgement does not start with an MSH segment: {start:?}")]
    NoMsh {
        /// The first up to 20 characters.
        start: String,
    },
    /// No MSA segment.
    #[error("acknowledgement has no MSA segment")]
    NoMsa,
    /// MSA-1 is not one of AA, AE, AR, CA, CE, CR.
    #[error("MSA-1 acknowledgement code {0:?} is not one of AA, AE, AR, CA, CE, CR")]
    UnknownCode(String),
    /// MSA-2 is not the control id of the message sent.
    #[error("MSA-2 {got:?} does not match the control id sent, {expected:?}")]
    ControlIdMismatch {
        /// MSH-10 of the message sent.
        expected: String,
        /// MSA-2 received.
        got: String,
    },
}

/// Parse an acknowledgement (the payload of one MLLP frame; stray framing bytes are ignored) for
/// the message whose MSH-10 was `expected_control_id`.
pub fn parse_ack(frame: &[u8], expected_control_id: &str) -> Result<AckOutcome, AckError> {
    let (got, outcome) = parse_any_ack(frame)?;
    if got != expected_control_id {
        return Err(AckError::ControlIdMismatch {
            expected: expected_control_id.to_owned(),
            got,
        });
    }
    Ok(outcome)
}

/// Parse an acknowledgement of any message: the control id it answers (MSA-2, unescaped) and
/// the outcome. A sender with several messages in flight on one connection (pipelining) matches
/// the reply to its message by this id.
pub fn parse_any_ack(frame: &[u8]) -> Result<(String, AckOutcome), AckError> {
    let trimmed = trim_framing(frame);
    if trimmed.is_empty() {
        return Err(AckError::Empty);
    }
    let text = std::str::from_utf8(trimmed).map_err(|e| AckError::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    let mut segments = text
        .split(['\r', '\n'])
        .map(str::trim_start)
        .filter(|s| !s.is_empty());
    let msh = segments.next().ok_or(AckError::Empty)?;
    let enc = Encoding::from_msh(msh).ok_or_else(|| AckError::NoMsh {
        start: msh.chars().take(20).collect(),
    })?;
    let mut msa: Option<Vec<&str>> = None;
    let mut errs: Vec<Vec<&str>> = Vec::new();
    for seg in segments {
        let fields: Vec<&str> = seg.split(enc.field).collect();
        match fields.first().copied() {
            Some("MSA") if msa.is_none() => msa = Some(fields),
            Some("ERR") => errs.push(fields),
            _ => {}
        }
    }
    let msa = msa.ok_or(AckError::NoMsa)?;
    let field = |f: &[&str], n: usize| f.get(n).copied().unwrap_or("").trim().to_owned();
    let code_text = first_component(&field(&msa, 1), &enc);
    let code = AckCode::parse(&code_text).ok_or(AckError::UnknownCode(code_text))?;
    let got = enc.text(&first_component(&field(&msa, 2), &enc));
    let mut reasons: Vec<String> = Vec::new();
    let msa3 = enc.text(&field(&msa, 3));
    if !msa3.is_empty() {
        reasons.push(msa3);
    }
    for err in &errs {
        // v2.5+: ERR-3 HL7 error code (CWE: code^text), ERR-7 diagnostic information,
        // ERR-8 user message; v2.4 and older: ERR-1 error code and location.
        for n in [8, 7, 3, 1] {
            let raw = field(err, n);
            if raw.is_empty() {
                continue;
            }
            let readable = raw
                .split(enc.repetition)
                .map(|rep| {
                    rep.split(enc.component)
                        .map(|c| enc.text(c))
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("; ");
            if !readable.is_empty() && !reasons.contains(&readable) {
                reasons.push(readable);
            }
        }
    }
    let reason = reasons.join(" | ");
    let about_route = errs.iter().any(|err| {
        refuses_route(
            &first_component(&field(err, 3), &enc),
            &first_component(&field(err, 2), &enc),
        )
    });
    let outcome = match code {
        AckCode::AA | AckCode::CA => AckOutcome::Delivered { code },
        AckCode::AE | AckCode::CE => AckOutcome::Retry { code, reason },
        AckCode::AR | AckCode::CR if about_route => AckOutcome::RouteRefused { code, reason },
        AckCode::AR | AckCode::CR => AckOutcome::Rejected { code, reason },
    };
    Ok((got, outcome))
}

/// Whether an ERR segment's HL7 error code (ERR-3, table 0357) and location (ERR-2, its first
/// component is the segment id) refuse the route rather than the message's readings.
fn refuses_route(error_code: &str, location_segment: &str) -> bool {
    match error_code {
        // Unsupported message type, event code, processing id, version id: the same for every
        // message the route sends.
        "200" | "201" | "202" | "203" => true,
        // Unknown key identifier in PID: the patient (the route's `patient` or a device's
        // person) is not known to the receiver.
        "204" => location_segment.eq_ignore_ascii_case("PID"),
        _ => false,
    }
}

fn trim_framing(b: &[u8]) -> &[u8] {
    let b = b.strip_prefix(&[crate::mllp::SB]).unwrap_or(b);
    b.strip_suffix(&[crate::mllp::EB, crate::mllp::CR])
        .or_else(|| b.strip_suffix(&[crate::mllp::EB]))
        .unwrap_or(b)
}

fn first_component(field: &str, enc: &Encoding) -> String {
    field
        .split(enc.component)
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The delimiters the reply declares in its MSH-1/MSH-2.
struct Encoding {
    field: char,
    component: char,
    repetition: char,
    escape: Option<char>,
    sub: Option<char>,
}

impl Encoding {
    fn from_msh(msh: &str) -> Option<Self> {
        let rest = msh.strip_prefix("MSH")?;
        let mut chars = rest.chars();
        let field = chars.next()?;
        let enc: Vec<char> = chars.take_while(|&c| c != field).collect();
        let component = *enc.first()?;
        let repetition = *enc.get(1)?;
        if field.is_alphanumeric() || component.is_alphanumeric() {
            return None;
        }
        Some(Self {
            field,
            component,
            repetition,
            escape: enc.get(2).copied(),
            sub: enc.get(3).copied(),
        })
    }

    /// Unescape a text value; when the reply uses other encoding characters than `^~\&`, map
    /// them to the standard ones first. Undecodable escapes are kept as received.
    fn text(&self, s: &str) -> String {
        let standard = self.component == '^'
            && self.repetition == '~'
            && self.escape == Some('\\')
            && matches!(self.sub, Some('&') | None)
            && self.field == '|';
        if !standard {
            return s.to_owned();
        }
        crate::escape::unescape(s).unwrap_or_else(|_| s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTL: &str = "0123456789ABCDEF0123";

    fn ack(code: &str, ctl: &str, extra: &str) -> Vec<u8> {
        format!("MSH|^~\\&|DOC||HEARTH||20250314070531+0100||ACK^R01^ACK|A1|P|2.6\rMSA|{code}|{ctl}{extra}\r")
            .into_bytes()
    }

    #[test]
    fn accept_codes_deliver() {
        for c in ["AA", "CA"] {
            assert!(matches!(
                parse_ack(&ack(c, CTL, ""), CTL),
                Ok(AckOutcome::Delivered { .. })
            ));
        }
    }

    #[test]
    fn error_codes_retry_and_reject_codes_reject_with_text() {
        let out = parse_ack(&ack("AE", CTL, "|busy \\T\\ full"), CTL).unwrap();
        assert_eq!(
            out,
            AckOutcome::Retry {
                code: AckCode::AE,
                reason: "busy & full".into()
            }
        );
        let mut bytes = ack("AR", CTL, "");
        bytes.extend_from_slice(
            b"ERR|||207^Application internal error^HL70357|E||||Unknown patient\r",
        );
        let out = parse_ack(&bytes, CTL).unwrap();
        assert_eq!(
            out,
            AckOutcome::Rejected {
                code: AckCode::AR,
                reason: "Unknown patient | 207 Application internal error HL70357".into()
            }
        );
        // About the route (issue 13): an unknown patient in PID, an unsupported version.
        let mut bytes = ack("AR", CTL, "");
        bytes.extend_from_slice(b"ERR||PID^1^3|204^Unknown key identifier^HL70357|E\r");
        assert!(matches!(
            parse_ack(&bytes, CTL),
            Ok(AckOutcome::RouteRefused {
                code: AckCode::AR,
                ..
            })
        ));
        let mut bytes = ack("CR", CTL, "");
        bytes.extend_from_slice(b"ERR||MSH^1^12|203^Unsupported version id^HL70357|E\r");
        assert!(matches!(
            parse_ack(&bytes, CTL),
            Ok(AckOutcome::RouteRefused {
                code: AckCode::CR,
                ..
            })
        ));
        // An unknown key elsewhere (e.g. an OBX code) is about the message.
        let mut bytes = ack("AR", CTL, "");
        bytes.extend_from_slice(b"ERR||OBX^3^3|204^Unknown key identifier^HL70357|E\r");
        assert!(matches!(
            parse_ack(&bytes, CTL),
            Ok(AckOutcome::Rejected { .. })
        ));
        assert!(matches!(
            parse_ack(&ack("CR", CTL, ""), CTL),
            Ok(AckOutcome::Rejected {
                code: AckCode::CR,
                ..
            })
        ));
        assert!(matches!(
            parse_ack(&ack("CE", CTL, ""), CTL),
            Ok(AckOutcome::Retry {
                code: AckCode::CE,
                ..
            })
        ));
    }

    #[test]
    fn mismatched_control_id_and_garbage_are_typed_errors() {
        assert_eq!(
            parse_ack(&ack("AA", "OTHER", ""), CTL),
            Err(AckError::ControlIdMismatch {
                expected: CTL.into(),
                got: "OTHER".into()
            })
        );
        assert_eq!(parse_ack(b"", CTL), Err(AckError::Empty));
        assert_eq!(
            parse_ack(&[0xff, 0xfe], CTL),
            Err(AckError::NotUtf8 { at: 0 })
        );
        assert!(matches!(
            parse_ack(b"hello", CTL),
            Err(AckError::NoMsh { .. })
        ));
        assert_eq!(
            parse_ack(b"MSH|^~\\&|x\rPID|1\r", CTL),
            Err(AckError::NoMsa)
        );
        assert_eq!(
            parse_ack(&ack("OK", CTL, ""), CTL),
            Err(AckError::UnknownCode("OK".into()))
        );
    }

    #[test]
    fn framing_bytes_and_lf_separators_are_tolerated() {
        let mut b = vec![0x0B];
        b.extend(format!("MSH|^~\\&|DOC|||||ACK|1|P|2.6\nMSA|CA|{CTL}\n").into_bytes());
        b.extend([0x1C, 0x0D]);
        assert_eq!(
            parse_ack(&b, CTL),
            Ok(AckOutcome::Delivered { code: AckCode::CA })
        );
    }
}
