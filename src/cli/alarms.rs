//! `hearth alarms log [--data-dir DIR] [--json] [--limit N] [--since DURATION|RFC3339]`: the
//! alarm event log (REQUIREMENTS S3, issue 15), read-only from the outbox database, safe while
//! the daemon runs.

use std::path::Path;

use hearth_model::Timestamp;
use hearth_outbox::{AlarmLogQuery, LoggedAlarmEvent};
use serde_json::{Value, json};

/// `--since`: a duration back from now (`10m`, `2h`, `7days`) or an RFC 3339 time
/// (`2026-12-08T10:00:00+01:00`).
pub fn parse_since(s: &str) -> Result<Timestamp, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        let back = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(Timestamp::from_unix_millis(
            Timestamp::now().unix_millis().saturating_sub(back),
        ));
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| Timestamp::from_unix_millis(t.as_millisecond()))
        .map_err(|_| {
            format!(
                "{s:?} is neither a duration nor an RFC 3339 time; use e.g. 30m, 2h, 7days or \
                 2026-12-08T10:00:00+01:00"
            )
        })
}

/// One entry as a JSON object (one line of `--json`; documented in docs/operations.md).
pub fn to_json(e: &LoggedAlarmEvent) -> Value {
    let x = &e.entry;
    json!({
        "id": e.id,
        "at": x.at.to_rfc3339(),
        "at_ms": x.at.unix_millis(),
        "route": x.route,
        "event": x.event,
        "receiver": x.receiver,
        "reference": x.reference,
        "record": x.record.map(|r| r.to_string()),
        "detail": x.detail,
        "detail_unreadable": e.detail_unreadable,
    })
}

/// Local time with its UTC offset, to the second.
fn local(t: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(t.unix_millis()) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S%:z")
            .to_string(),
        Err(_) => t.to_rfc3339(),
    }
}

/// `key=value …` of a detail; string values unquoted.
fn summary(e: &LoggedAlarmEvent) -> String {
    if e.detail_unreadable {
        return "(unreadable detail)".to_owned();
    }
    e.entry
        .detail
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn or_dash(s: Option<&str>) -> &str {
    s.filter(|s| !s.is_empty()).unwrap_or("-")
}

/// Print the alarm event log of the outbox in `data_dir`: the newest `limit` entries (0: all)
/// since `since`, oldest first.
pub fn log(
    data_dir: &Path,
    as_json: bool,
    limit: usize,
    since: Option<Timestamp>,
) -> anyhow::Result<()> {
    let path = crate::daemon::outbox_path(data_dir);
    let query = AlarmLogQuery {
        since,
        limit: (limit > 0).then_some(limit),
        record: None,
    };
    let log = hearth_outbox::alarm_log(&path, &query).map_err(|e| {
        anyhow::anyhow!("{e}\nis --data-dir right? The daemon's default is /var/lib/hearth")
    })?;
    if as_json {
        for e in &log.entries {
            outln!("{}", serde_json::to_string(&to_json(e))?);
        }
        return Ok(());
    }
    outln!(
        "{} alarm event(s) in {}; showing {} (oldest first){}",
        log.total,
        path.display(),
        log.entries.len(),
        if log.pruned > 0 {
            format!(
                "; {} older event(s) were removed to keep the log bounded",
                log.pruned
            )
        } else {
            String::new()
        }
    );
    if log.entries.is_empty() {
        return Ok(());
    }
    outln!(
        "{:<25}  {:<9}  {:<12}  {:<14}  {:<12}  {:<8}  detail",
        "time",
        "event",
        "route",
        "receiver",
        "ref",
        "record"
    );
    for e in &log.entries {
        let x = &e.entry;
        let record = x.record.map_or_else(
            || "-".to_owned(),
            |r| r.to_string().chars().take(8).collect(),
        );
        outln!(
            "{:<25}  {:<9}  {:<12}  {:<14}  {:<12}  {:<8}  {}",
            local(x.at),
            x.event,
            x.route,
            or_dash(x.receiver.as_deref()),
            or_dash(x.reference.as_deref()),
            record,
            summary(e)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_takes_a_duration_or_an_rfc3339_time() {
        let t = parse_since("2026-12-08T10:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-08T09:00:00.000Z");
        let back = parse_since("1h").unwrap();
        assert!(back.unix_millis() < Timestamp::now().unix_millis());
        let err = parse_since("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
