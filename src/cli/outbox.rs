//! `hearth outbox stats --data-dir DIR [--json]`, `hearth outbox dead-letters …` and
//! `hearth outbox requeue …`.

use std::path::Path;
use std::time::Duration;

use hearth_outbox::{DeadLetter, DeadLetterQuery, Requeue, Stats};
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

fn no_outbox(e: hearth_outbox::OutboxError) -> anyhow::Error {
    anyhow::anyhow!("{e}\nis --data-dir right? The daemon's default is /var/lib/hearth")
}

/// One dead letter as JSON: everything but the payload.
fn dead_letter_json(d: &DeadLetter) -> Value {
    json!({
        "id": d.id,
        "origin": d.origin,
        "route": d.route,
        "lane": d.lane.map(|l| l.as_str()),
        "category": d.category.map(|c| c.to_string()),
        "received": d.received.map(|t| t.to_rfc3339()),
        "dead_at": d.dead_at.to_rfc3339(),
        "attempts": d.attempts,
        "reason": d.reason,
        "size": d.size,
        "stored_bytes": d.stored_bytes,
        "fnv1a": format!("{:016x}", d.hash),
        "truncated": d.truncated,
        "requeueable": d.requeueable,
    })
}

/// List the dead letters of the outbox in `data_dir`, newest first.
pub fn dead_letters(
    data_dir: &Path,
    as_json: bool,
    route: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let path = crate::daemon::outbox_path(data_dir);
    let query = DeadLetterQuery {
        route,
        limit: (limit > 0).then_some(limit),
    };
    let (rows, total) = hearth_outbox::dead_letters(&path, &query).map_err(no_outbox)?;
    if as_json {
        let out = json!({
            "path": path.display().to_string(),
            "total": total,
            "dead_letters": rows.iter().map(dead_letter_json).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    outln!(
        "{} dead letter(s) in {}; showing {} (newest first)",
        total,
        path.display(),
        rows.len()
    );
    if rows.is_empty() {
        return Ok(());
    }
    outln!(
        "{:>8}  {:<20}  {:<20}  {:<26}  {:>8}  {:>10}  {:<16}  {:<9}  reason",
        "id",
        "dead at",
        "origin",
        "lane/category",
        "attempts",
        "size",
        "fnv1a",
        "requeue"
    );
    for d in &rows {
        let class = match (d.lane, d.category) {
            (Some(l), Some(c)) => format!("{}/{c}", l.as_str()),
            _ => "-".to_owned(),
        };
        let size = if d.truncated {
            format!("{}*", d.size)
        } else {
            d.size.to_string()
        };
        let when = d.dead_at.to_rfc3339();
        outln!(
            "{:>8}  {:<20}  {:<20}  {:<26}  {:>8}  {:>10}  {:016x}  {:<9}  {}",
            d.id,
            when.get(..19).unwrap_or(&when),
            d.origin,
            class,
            d.attempts,
            size,
            d.hash,
            if d.requeueable { "yes" } else { "no" },
            d.reason
        );
    }
    if rows.iter().any(|d| d.truncated) {
        outln!(
            "* raw input: only its first {} bytes are kept",
            hearth_outbox::KEEP_INPUT_BYTES
        );
    }
    Ok(())
}

/// Put dead letters back as pending deliveries. Exit 1 when nothing was requeued.
pub fn requeue(data_dir: &Path, which: &Requeue) -> anyhow::Result<bool> {
    let path = crate::daemon::outbox_path(data_dir);
    let report = hearth_outbox::requeue(&path, which).map_err(no_outbox)?;
    for (route, n) in &report.requeued {
        outln!("requeued {n} dead letter(s) on route {route}");
    }
    const SHOWN: usize = 20;
    for (id, why) in report.skipped.iter().take(SHOWN) {
        eprintln!("skipped dead letter {id}: {why}");
    }
    if report.skipped.len() > SHOWN {
        eprintln!(
            "… and {} more skipped; list them with `hearth outbox dead-letters`",
            report.skipped.len() - SHOWN
        );
    }
    if report.total() == 0 {
        eprintln!(
            "nothing was requeued: no selected dead letter is a record a route's receiver \
             rejected; list them with `hearth outbox dead-letters --data-dir {}`",
            data_dir.display()
        );
        return Ok(false);
    }
    outln!(
        "{} record(s) are pending deliveries again; a running hearth sends them within about a \
         second, a stopped one when it starts",
        report.total()
    );
    Ok(true)
}
