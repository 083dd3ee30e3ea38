//! The box's identity (issue 13): the EUI-64 that record ids and device identifiers sent
//! upstream are scoped to, so boxes whose devices share ids never collide at a shared hub.
//!
//! `gateway.eui64` when the operator provisioned one; otherwise an EUI-64 generated once on the
//! first start (random, locally administered) and kept in `<data_dir>/gateway-eui64`. The file
//! is written beside, fsynced, renamed into place and the directory fsynced, so a power cut
//! leaves either no file or the whole one; it is never rewritten once it exists.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hearth_config::Config;
use hearth_model::GatewayId;

/// The file that keeps a generated identity.
pub fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("gateway-eui64")
}

/// The configured identity, or the one kept in the data directory (made on first use).
pub fn resolve(config: &Config) -> anyhow::Result<GatewayId> {
    if let Some(text) = &config.gateway.eui64 {
        // Validated when the config was loaded; parsed again for the typed value.
        return GatewayId::parse(text).map_err(|e| anyhow::anyhow!("gateway.eui64: {e}"));
    }
    let path = identity_path(&config.gateway.data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => GatewayId::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} does not hold this box's identity ({e}). Restore it from a backup or the \
                 equipment register, or set gateway.eui64; deleting it gives the box a new \
                 identity, under which records a device sends again become new resources at \
                 the hub",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(&path),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Make a new identity and keep it durably at `path`.
fn generate(path: &Path) -> anyhow::Result<GatewayId> {
    let mut random = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .context("cannot read /dev/urandom to generate this box's identity")?;
    let id = GatewayId::local_from_random(random);
    let Some(dir) = path.parent() else {
        bail!("{} has no directory", path.display());
    };
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{id}")?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().with_context(|| {
        format!(
            "cannot store this box's identity in {}; is the data directory writable?",
            path.display()
        )
    })?;
    tracing::info!(gateway = %id, file = %path.display(), "generated this box's identity (set gateway.eui64 to use an assigned one)");
    Ok(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut c = Config::default();
        c.gateway.data_dir = dir.to_owned();
        c
    }

    #[test]
    fn a_generated_identity_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(&config(dir.path())).unwrap();
        assert!(first.is_local());
        assert_eq!(resolve(&config(dir.path())).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(resolve(&config(other.path())).unwrap(), first);
        assert!(!identity_path(dir.path()).with_extension("tmp").exists());
    }

    #[test]
    fn the_configured_identity_wins_and_a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.gateway.eui64 = Some("00-15-8D-00-01-A2-B3-C4".into());
        assert_eq!(resolve(&c).unwrap().to_string(), "00-15-8D-00-01-A2-B3-C4");
        assert!(!identity_path(dir.path()).exists());
        fs::write(identity_path(dir.path()), "garbage\n").unwrap();
        let e = resolve(&config(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("gateway-eui64") && e.contains("gateway.eui64"),
            "{e}"
        );
    }
}
