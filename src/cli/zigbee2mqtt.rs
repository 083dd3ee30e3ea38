//! `hearth zigbee2mqtt classify` and `hearth zigbee2mqtt rules`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use hearth_config::SourceKind;
use hearth_driver_zigbee2mqtt as z2m;
use hearth_model::Timestamp;

/// Print the events one message produces. `Ok(false)` (exit 2) when the message cannot be
/// understood at all; the reason goes to stderr.
pub fn classify(
    topic: &str,
    payload: &str,
    config: Option<&Path>,
    source: Option<&str>,
) -> Result<bool> {
    let payload = if payload == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the payload from stdin")?;
        s
    } else {
        payload.to_owned()
    };
    let now = Timestamp::now();
    let result = match config {
        None => z2m::classify(topic, payload.as_bytes(), now),
        Some(path) => {
            let loaded = hearth_config::load(path)?;
            let config = loaded.config;
            let src = config
                .sources
                .iter()
                .filter(|s| s.kind == SourceKind::Zigbee2mqtt)
                .find(|s| source.is_none_or(|n| n == s.name));
            let Some(src) = src else {
                bail!(
                    "{} has no zigbee2mqtt source{}; leave out --config to use the shipped rules",
                    path.display(),
                    source.map(|n| format!(" named {n:?}")).unwrap_or_default()
                );
            };
            let time_zone = crate::daemon::settings::gateway_time_zone(&config)?;
            let settings = crate::daemon::settings::zigbee2mqtt(src, time_zone);
            let mut engine = z2m::Engine::new(settings)
                .map_err(|e| anyhow::anyhow!("source {:?}: {e}", src.name))?;
            let msg = z2m::Message {
                topic,
                payload: payload.as_bytes(),
                retained: false,
                sequence: 1,
            };
            engine.handle(&msg, now).map(|out| {
                serde_json::json!({
                    "events": out.events.iter().map(z2m::Event::to_json).collect::<Vec<_>>()
                })
            })
        }
    };
    match result {
        Ok(json) => {
            outln!("{}", serde_json::to_string_pretty(&json)?);
            Ok(true)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(false)
        }
    }
}

/// Print the shipped rules file.
pub fn rules() {
    out!("{}", z2m::DEFAULT_RULES);
}
