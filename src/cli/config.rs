//! `hearth config check FILE` and `hearth config example`.

use std::path::Path;

/// Check a file; print errors with file:line:column: key. Returns whether it is valid.
pub fn check(path: &Path, print: bool) -> anyhow::Result<bool> {
    match hearth_config::load(path) {
        Ok(loaded) => {
            // Rules are checked key by key above; whether they make sense together (an
            // observation name with a code, …) only the rules engine knows.
            let mut engine_errors = 0;
            for source in loaded
                .config
                .sources
                .iter()
                .filter(|s| s.kind == hearth_config::SourceKind::Zigbee2mqtt)
            {
                let time_zone = loaded
                    .config
                    .gateway
                    .time_zone()
                    .unwrap_or(jiff::tz::TimeZone::UTC);
                let settings = crate::daemon::settings::zigbee2mqtt(source, time_zone);
                if let Err(e) = hearth_driver_zigbee2mqtt::Engine::new(settings) {
                    eprintln!("{}: source {:?}: {e}", path.display(), source.name);
                    engine_errors += 1;
                }
            }
            if engine_errors > 0 {
                eprintln!(
                    "{} is not valid: fix the rule(s) above (docs/zigbee2mqtt.md, \"Rules\")",
                    path.display()
                );
                return Ok(false);
            }
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let c = &loaded.config;
            outln!(
                "{}: OK — gateway {:?}, data dir {}, {} route(s), {} source(s), {} warning(s)",
                path.display(),
                c.gateway.id,
                c.gateway.data_dir.display(),
                c.routes.len(),
                c.sources.len(),
                loaded.warnings.len()
            );
            if print {
                outln!(
                    "\n# effective configuration (defaults filled in)\n{}",
                    c.to_toml()?
                );
            }
            Ok(true)
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{} is not valid: fix the line(s) above; every key is documented in `hearth config example`",
                path.display()
            );
            Ok(false)
        }
    }
}

/// Print the annotated example configuration.
pub fn example() {
    out!("{}", hearth_config::EXAMPLE);
}
