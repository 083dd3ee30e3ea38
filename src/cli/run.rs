//! `hearth run --config FILE`: the daemon.

use std::path::PathBuf;

use anyhow::Context;

/// Run until SIGTERM/SIGINT.
pub fn run(config_path: PathBuf, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = match hearth_config::load(&config_path) {
        Ok(l) => l,
        Err(e) => {
            anyhow::bail!(
                "{e}\nthe configuration is invalid; fix it and check with: hearth config check {}",
                config_path.display()
            )
        }
    };
    let mut config = loaded.config;
    if let Some(dir) = data_dir {
        config.gateway.data_dir = dir;
    }
    crate::logging::init(&config.log.level, config.log.format)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("hearth")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let signal = hearth_runtime::shutdown_signal().context("cannot install signal handlers")?;
        let summary = crate::daemon::run(config, crate::daemon::Observers::default(), async move {
            let which = signal.await;
            tracing::info!(signal = %which, "signal received");
        })
        .await?;
        if !summary.aborted.is_empty() {
            tracing::warn!(aborted = ?summary.aborted, "tasks did not stop within the grace period");
        }
        tracing::info!("hearth stopped");
        Ok(())
    })
}
