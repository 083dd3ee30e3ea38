//! The receiver's answer to a transaction → one outcome per entry.

use serde_json::Value;

/// What became of one Bundle entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Stored: `201 Created`, or `200 OK` when the conditional create matched an existing
    /// resource (a resend; nothing new was created). Either way the record leaves the outbox.
    Delivered {
        /// `true` for 201 (new resource), `false` for 200 (already there).
        created: bool,
    },
    /// Not now (5xx, 408, 429): retry later.
    Retry {
        /// The HTTP status of the entry.
        status: u16,
        /// The receiver's words, for logs.
        reason: String,
    },
    /// Refused for good (other 4xx): dead letter with the receiver's diagnostics.
    Rejected {
        /// The HTTP status of the entry.
        status: u16,
        /// The OperationOutcome's diagnostics (or the status line).
        reason: String,
    },
    /// Refused because of the route, not the record ([`Blame::Route`]): every record of the
    /// route would be refused alike, so the record is kept and the route pauses.
    RouteRefused {
        /// The HTTP status of the entry.
        status: u16,
        /// The OperationOutcome's diagnostics (or the status line).
        reason: String,
    },
}

/// Whose fault a refusal is. Decided here, in one place, for the HTTP status of the request
/// ([`blame_of_status`]), a whole-request OperationOutcome and each entry's outcome; the table
/// "What becomes of a reading" in `docs/uplinks.md` follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// Something in the record itself (its code, value, unit): dead-letter the record.
    Record,
    /// Something every record of the route shares: its credentials or rights, the patient or
    /// organisation it references, the profile it claims. Keep the records, pause the route.
    Route,
}

/// The HTTP statuses that refuse the sender itself whatever the body says: `401` (not
/// authenticated) and `403` (not allowed). `None`: the body decides.
pub fn blame_of_status(status: u16) -> Option<Blame> {
    matches!(status, 401 | 403).then_some(Blame::Route)
}

/// Issue codes (FHIR IssueType) that are about who sends or what the route references: the
/// `security` family (`login`, `unknown` user, `expired`, `forbidden`, `suppressed`) and
/// `not-found` (hearth creates every resource it references in the same Bundle except the
/// route's patient and organisation, so a missing reference is theirs).
const ROUTE_CODES: &[&str] = &[
    "security",
    "login",
    "unknown",
    "expired",
    "forbidden",
    "suppressed",
    "not-found",
];

/// Element paths (in `expression`/`location`) that hold the route's references and profile,
/// not the record's data.
const ROUTE_PATHS: &[&str] = &[".subject", ".performer", ".meta.profile"];

/// The same paths as they appear in free-text diagnostics; fully qualified, so that a word
/// like "subject" in an unrelated sentence does not count.
const ROUTE_PATHS_IN_TEXT: &[&str] = &[
    "Observation.subject",
    "Observation.performer",
    "meta.profile",
];

/// Whether one OperationOutcome issue blames the route: a route issue code, an
/// `expression`/`location` at a route element, or diagnostics naming one (some servers, e.g.
/// HAPI's "Resource Patient/x not found, specified in path: Observation.subject", give the
/// path only in the text).
fn issue_blames_route(issue: &Value) -> bool {
    let severity = issue
        .get("severity")
        .and_then(Value::as_str)
        .unwrap_or("error");
    if !matches!(severity, "error" | "fatal") {
        return false;
    }
    if issue
        .get("code")
        .and_then(Value::as_str)
        .is_some_and(|c| ROUTE_CODES.contains(&c))
    {
        return true;
    }
    let at_route_path = |p: &str| ROUTE_PATHS.iter().any(|r| p.contains(r));
    let paths = ["expression", "location"]
        .iter()
        .filter_map(|k| issue.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    if paths.clone().any(at_route_path) {
        return true;
    }
    issue
        .get("diagnostics")
        .and_then(Value::as_str)
        .is_some_and(|d| ROUTE_PATHS_IN_TEXT.iter().any(|r| d.contains(r)))
}

/// Whose fault an OperationOutcome's refusal is: the route's as soon as one error issue blames
/// it (the record cannot be judged while the route is refused).
fn blame_of_outcome(outcome: &Value) -> Blame {
    if issues(outcome).iter().any(issue_blames_route) {
        Blame::Route
    } else {
        Blame::Record
    }
}

/// The response as a whole could not be read as per-entry answers. The whole batch is retried
/// unless [`ResponseError::is_permanent`] says the receiver refused its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Not JSON at all.
    #[error("the receiver's reply is not JSON ({0}); check that the URL points at a FHIR endpoint")]
    NotJson(String),
    /// JSON without a `resourceType`.
    #[error("the receiver's reply is JSON but not a FHIR resource (no resourceType)")]
    NotAResource,
    /// A resource of another type than Bundle or OperationOutcome.
    #[error("the receiver answered with a {0}, expected a transaction-response Bundle")]
    UnexpectedResource(String),
    /// A Bundle of the wrong type.
    #[error("the receiver answered with a Bundle of type {0:?}, expected \"transaction-response\"")]
    WrongBundleType(String),
    /// The answer has a different number of entries than the request.
    #[error("the receiver answered {got} entries for {sent} sent; treating the batch as failed")]
    EntryCount {
        /// Entries sent.
        sent: usize,
        /// Entries in the answer.
        got: usize,
    },
    /// One entry has no readable `response.status`.
    #[error("entry {index} of the receiver's answer: {why}")]
    BadEntry {
        /// Entry index.
        index: usize,
        /// What was wrong.
        why: String,
    },
    /// The whole transaction was refused because of the route, not its records
    /// ([`Blame::Route`]): keep the records, pause the route.
    #[error("the receiver refused the route: {diagnostics}")]
    RouteRefused {
        /// Diagnostics of all issues, `; `-joined.
        diagnostics: String,
    },
    /// The whole transaction failed: an OperationOutcome instead of a Bundle.
    #[error("the receiver refused the whole transaction: {diagnostics}")]
    OperationOutcome {
        /// Diagnostics of all issues, `; `-joined.
        diagnostics: String,
        /// Whether every issue is of a transient type (FHIR IssueType `transient` and its
        /// children): then retrying the same Bundle may succeed.
        transient: bool,
        /// The entry the issues point at (`Bundle.entry[n]` in `expression`/`location`), when
        /// they do: dead-letter that one and resend the rest.
        entry: Option<usize>,
    },
}

impl ResponseError {
    /// Whether the receiver refused the content (a non-transient OperationOutcome), so resending
    /// the same Bundle unchanged will fail again. Everything else is worth a retry.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ResponseError::OperationOutcome {
                transient: false,
                ..
            }
        )
    }
}

/// Read a transaction-response (or batch-response) Bundle into one outcome per entry sent.
///
/// `sent` is the number of entries in the request ([`crate::Bundle::len`]). A whole-request
/// OperationOutcome (FHIR transactions are all-or-nothing, so a server refusing one entry
/// usually answers this way, with the HTTP status of the request) is
/// [`ResponseError::OperationOutcome`]. Never panics on any input.
pub fn parse_transaction_response(
    body: &[u8],
    sent: usize,
) -> Result<Vec<EntryOutcome>, ResponseError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ResponseError::NotJson(e.to_string()))?;
    let rt = v
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(ResponseError::NotAResource)?;
    match rt {
        "Bundle" => {}
        "OperationOutcome" => return Err(whole_outcome(&v)),
        other => return Err(ResponseError::UnexpectedResource(truncate(other, 64))),
    }
    let bundle_type = v.get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(bundle_type, "transaction-response" | "batch-response") {
        return Err(ResponseError::WrongBundleType(truncate(bundle_type, 64)));
    }
    let entries = match v.get("entry") {
        Some(Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(_) => {
            return Err(ResponseError::BadEntry {
                index: 0,
                why: "Bundle.entry is not an array".to_owned(),
            });
        }
    };
    if entries.len() != sent {
        return Err(ResponseError::EntryCount {
            sent,
            got: entries.len(),
        });
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, e)| entry_outcome(index, e))
        .collect()
}

fn entry_outcome(index: usize, e: &Value) -> Result<EntryOutcome, ResponseError> {
    let bad = |why: &str| ResponseError::BadEntry {
        index,
        why: why.to_owned(),
    };
    let response = e
        .get("response")
        .ok_or_else(|| bad("no response element"))?;
    let status_text = response
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no response.status"))?;
    let status = parse_status(status_text).ok_or_else(|| {
        bad(&format!(
            "response.status {:?} does not start with an HTTP status code",
            truncate(status_text, 40)
        ))
    })?;
    let reason = || {
        response
            .get("outcome")
            .map(outcome_diagnostics)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| truncate(status_text, 200))
    };
    Ok(match status {
        201 => EntryOutcome::Delivered { created: true },
        200..=299 => EntryOutcome::Delivered { created: false },
        408 | 429 | 500..=599 => EntryOutcome::Retry {
            status,
            reason: reason(),
        },
        400..=499 => {
            let route = blame_of_status(status)
                .or_else(|| response.get("outcome").map(blame_of_outcome))
                == Some(Blame::Route);
            if route {
                EntryOutcome::RouteRefused {
                    status,
                    reason: reason(),
                }
            } else {
                EntryOutcome::Rejected {
                    status,
                    reason: reason(),
                }
            }
        }
        // 1xx/3xx make no sense for a create; nothing is lost by asking again.
        _ => EntryOutcome::Retry {
            status,
            reason: reason(),
        },
    })
}

/// `"201 Created"`, `"201"` → 201.
fn parse_status(s: &str) -> Option<u16> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.len() != 3 {
        return None;
    }
    digits.parse().ok().filter(|n| (100..=599).contains(n))
}

fn issues(v: &Value) -> &[Value] {
    v.get("issue")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Diagnostics of an OperationOutcome: per issue `diagnostics`, else `details.text`, else the
/// issue code; joined by `; `, at most 1000 characters.
fn outcome_diagnostics(v: &Value) -> String {
    let parts: Vec<String> = issues(v)
        .iter()
        .filter_map(|i| {
            i.get("diagnostics")
                .and_then(Value::as_str)
                .or_else(|| i.pointer("/details/text").and_then(Value::as_str))
                .or_else(|| i.get("code").and_then(Value::as_str))
                .map(str::to_owned)
        })
        .collect();
    truncate(&parts.join("; "), 1000)
}

/// FHIR IssueType `transient` and its children.
const TRANSIENT: &[&str] = &[
    "transient",
    "lock-error",
    "no-store",
    "exception",
    "timeout",
    "incomplete",
    "throttled",
];

fn whole_outcome(v: &Value) -> ResponseError {
    let list = issues(v);
    let transient = !list.is_empty()
        && list.iter().all(|i| {
            i.get("code")
                .and_then(Value::as_str)
                .is_some_and(|c| TRANSIENT.contains(&c))
        });
    let entry = list.iter().find_map(|i| {
        ["expression", "location"]
            .iter()
            .filter_map(|k| i.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .find_map(entry_index)
    });
    let mut diagnostics = outcome_diagnostics(v);
    if diagnostics.is_empty() {
        diagnostics = "no diagnostics given".to_owned();
    }
    if !transient && blame_of_outcome(v) == Blame::Route {
        return ResponseError::RouteRefused { diagnostics };
    }
    ResponseError::OperationOutcome {
        diagnostics,
        transient,
        entry,
    }
}

/// `Bundle.entry[3].resource…` → 3.
fn entry_index(path: &str) -> Option<usize> {
    let rest = &path[path.find("Bundle.entry[")? + "Bundle.entry[".len()..];
    let end = rest.find(']')?;
    rest.get(..end)?.parse().ok()
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value, sent: usize) -> Result<Vec<EntryOutcome>, ResponseError> {
        parse_transaction_response(v.to_string().as_bytes(), sent)
    }

    #[test]
    fn statuses_map_to_delivered_retry_rejected() {
        let body = serde_json::json!({
        "resourceType": "Bundle", "type": "transaction-response",
        "entry": [
            {"response": {"status": "201 Created", "location": "Observation/1/_history/1"}},
            {"response": {"status": "200 OK"}},
            {"response": {"status": "200"}},
            {"response": {"status": "400 Bad Request", "outcome": {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Observation.code: unknown"}]}}},
            {"response": {"status": "412 Precondition Failed"}},
            {"response": {"status": "503 Service Unavailable"}},
            {"response": {"status": "429 Too Many Requests"}}
        ]});
        let out = parse(body, 7).unwrap();
        assert_eq!(out[0], EntryOutcome::Delivered { created: true });
        assert_eq!(out[1], EntryOutcome::Delivered { created: false });
        assert_eq!(out[2], EntryOutcome::Delivered { created: false });
        assert_eq!(
            out[3],
            EntryOutcome::Rejected {
                status: 400,
                reason: "Observation.code: unknown".into()
            }
        );
        assert_eq!(
            out[4],
            EntryOutcome::Rejected {
                status: 412,
                reason: "412 Precondition Failed".into()
            }
        );
        assert!(matches!(out[5], EntryOutcome::Retry { status: 503, .. }));
        assert!(matches!(out[6], EntryOutcome::Retry { status: 429, .. }));
    }

    #[test]
    fn whole_request_outcome_is_an_error_with_the_failing_entry() {
        let body = serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "processing",
             "diagnostics": "Unknown code", "expression": ["Bundle.entry[4].resource.code"]}]});
        let err = parse(body, 9).unwrap_err();
        assert_eq!(
            err,
            ResponseError::OperationOutcome {
                diagnostics: "Unknown code".into(),
                transient: false,
                entry: Some(4)
            }
        );
        assert!(err.is_permanent());
        let busy = serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "throttled"}]});
        let err = parse(busy, 1).unwrap_err();
        assert!(!err.is_permanent());
        assert!(err.to_string().contains("throttled"));
    }

    #[test]
    fn refusals_of_the_route_are_told_from_refusals_of_a_record() {
        let route = |issue: serde_json::Value| {
            parse(
                serde_json::json!({"resourceType": "OperationOutcome", "issue": [issue]}),
                1,
            )
            .unwrap_err()
        };
        // HAPI: a missing subject, named only in the text.
        assert_eq!(
            route(serde_json::json!({"severity": "error", "code": "processing",
                "diagnostics": "HAPI-1094: Resource Patient/123 not found, specified in path: Observation.subject"})),
            ResponseError::RouteRefused {
                diagnostics: "HAPI-1094: Resource Patient/123 not found, specified in path: Observation.subject".into()
            }
        );
        for issue in [
            serde_json::json!({"severity": "error", "code": "not-found", "diagnostics": "x"}),
            serde_json::json!({"severity": "error", "code": "login"}),
            serde_json::json!({"severity": "fatal", "code": "forbidden"}),
            serde_json::json!({"severity": "error", "code": "invalid",
                "expression": ["Bundle.entry[2].resource.subject"]}),
            serde_json::json!({"severity": "error", "code": "processing",
                "expression": ["Bundle.entry[0].resource.meta.profile[0]"]}),
            serde_json::json!({"severity": "error", "code": "invalid",
                "expression": ["Observation.performer[0]"]}),
        ] {
            assert!(
                matches!(route(issue.clone()), ResponseError::RouteRefused { .. }),
                "{issue}"
            );
        }
        // A record's own data, or a mere warning about the route, blames the record.
        for issue in [
            serde_json::json!({"severity": "error", "code": "invalid",
                "expression": ["Bundle.entry[2].resource.valueQuantity"]}),
            serde_json::json!({"severity": "warning", "code": "not-found"}),
        ] {
            assert!(
                matches!(route(issue.clone()), ResponseError::OperationOutcome { .. }),
                "{issue}"
            );
        }
        let body = serde_json::json!({
        "resourceType": "Bundle", "type": "batch-response",
        "entry": [
            {"response": {"status": "404 Not Found", "outcome": {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "processing", "diagnostics": "Organization/9 does not exist",
                           "expression": ["Observation.performer[0]"]}]}}},
            {"response": {"status": "403 Forbidden"}},
            {"response": {"status": "422", "outcome": {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "business-rule", "diagnostics": "value out of range"}]}}}
        ]});
        let out = parse(body, 3).unwrap();
        assert!(matches!(
            out[0],
            EntryOutcome::RouteRefused { status: 404, .. }
        ));
        assert!(matches!(
            out[1],
            EntryOutcome::RouteRefused { status: 403, .. }
        ));
        assert!(matches!(out[2], EntryOutcome::Rejected { status: 422, .. }));
        assert_eq!(blame_of_status(401), Some(Blame::Route));
        assert_eq!(blame_of_status(400), None);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(
            parse_transaction_response(b"<html>502</html>", 1),
            Err(ResponseError::NotJson(_))
        ));
        assert_eq!(
            parse(serde_json::json!([1]), 1),
            Err(ResponseError::NotAResource)
        );
        assert_eq!(
            parse(serde_json::json!({"resourceType": "Patient"}), 1),
            Err(ResponseError::UnexpectedResource("Patient".into()))
        );
        assert_eq!(
            parse(
                serde_json::json!({"resourceType": "Bundle", "type": "searchset"}),
                1
            ),
            Err(ResponseError::WrongBundleType("searchset".into()))
        );
        assert_eq!(
            parse(
                serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": []}),
                2
            ),
            Err(ResponseError::EntryCount { sent: 2, got: 0 })
        );
        assert!(matches!(
            parse(
                serde_json::json!({"resourceType": "Bundle", "type": "transaction-response",
                    "entry": [{"response": {"status": "Created"}}]}),
                1
            ),
            Err(ResponseError::BadEntry { index: 0, .. })
        ));
        assert!(matches!(
            parse(
                serde_json::json!({"resourceType": "Bundle", "type": "transaction-response",
                    "entry": [{"response": {"status": 201}}]}),
                1
            ),
            Err(ResponseError::BadEntry { index: 0, .. })
        ));
    }

    #[test]
    fn status_text_forms() {
        assert_eq!(parse_status("201 Created"), Some(201));
        assert_eq!(parse_status("200"), Some(200));
        assert_eq!(parse_status("2010"), None);
        assert_eq!(parse_status("OK"), None);
        assert_eq!(parse_status("999 x"), None);
        assert_eq!(entry_index("Bundle.entry[12].resource"), Some(12));
        assert_eq!(entry_index("Observation.code"), None);
    }
}
