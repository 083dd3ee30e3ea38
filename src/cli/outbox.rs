//! `hearth outbox stats --data-dir DIR [--json]`.

use std::path::Path;
use std::time::Duration;

use hearth_outbox::Stats;
use serde_json::{Value, json};

fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs()))
}

/// The stats as JSON (stable shape; documented in docs/operations.md).
pub fn to_json(s: &Stats) -> Value {
    json!({
        "path": s.path.display().to_string(),
        "schema_version": s.schema_version,
        "file_bytes": s.file_bytes,
        "records": s.records(),
        "lanes": s.lanes.iter().map(|l| json!({
            "lane": l.lane.as_str(),
            "records": l.records,
            "payload_bytes": l.payload_bytes,
            "oldest_age_s": secs(l.oldest_age),
        })).collect::<Vec<_>>(),
        "routes": s.routes.iter().map(|r| json!({
            "name": r.name,
            "delivered": r.delivered,
            "dead": r.dead,
            "lanes": r.lanes.iter().map(|(lane, x)| json!({
                "lane": lane.as_str(),
                "pending": x.pending,
                "retrying": x.retrying,
                "in_flight": x.in_flight,
                "oldest_age_s": secs(x.oldest_age),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "dead_letters": s.dead_letters,
        "counters": s.counters,
        "cursors": s.cursors,
    })
}

fn age(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string(),
    )
}

/// Print the statistics of the outbox in `data_dir`.
pub fn stats(data_dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let path = crate::daemon::outbox_path(data_dir);
    let s = hearth_outbox::stats(&path).map_err(|e| {
        anyhow::anyhow!("{e}\nis --data-dir right? The daemon's default is /var/lib/hearth")
    })?;
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&to_json(&s))?);
        return Ok(());
    }
    outln!(
        "outbox {} (schema {}, {} bytes on disk)",
        s.path.display(),
        s.schema_version,
        s.file_bytes
    );
    outln!(
        "{:<12} {:>10} {:>14} {:>12}",
        "lane",
        "records",
        "payload bytes",
        "oldest"
    );
    for l in &s.lanes {
        outln!(
            "{:<12} {:>10} {:>14} {:>12}",
            l.lane.as_str(),
            l.records,
            l.payload_bytes,
            age(l.oldest_age)
        );
    }
    for r in &s.routes {
        outln!(
            "route {:<20} delivered {:>10}  dead {:>6}",
            r.name,
            r.delivered,
            r.dead
        );
        for (lane, x) in &r.lanes {
            if x.pending + x.in_flight > 0 {
                outln!(
                    "  {:<12} pending {:>9} (retrying {:>7})  in flight {:>6}  oldest {:>10}",
                    lane.as_str(),
                    x.pending,
                    x.retrying,
                    x.in_flight,
                    age(x.oldest_age)
                );
            }
        }
    }
    if !s.dead_letters.is_empty() {
        outln!("dead letters:");
        for (origin, n) in &s.dead_letters {
            outln!("  {origin:<30} {n}");
        }
    }
    outln!("counters:");
    for (k, v) in &s.counters {
        outln!("  {k:<30} {v}");
    }
    Ok(())
}
