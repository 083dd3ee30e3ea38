//! Storage: the box's identity, the outbox (options, open), its writer with the disk-full
//! reserve, the device registry, and the `Ingest`/`TechnicalAlarms` handles drivers submit to.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hearth_config::{Config, UplinkKind};
use hearth_driver_api::{Ingest, TechnicalAlarms};
use hearth_outbox::{
    IntegrityCheck, Outbox, OutboxOptions, OutboxWriter, Retention, RetryPolicy, RouteSpec,
};
use tokio::sync::watch;

/// The outbox file inside the data directory.
pub fn outbox_path(data_dir: &Path) -> PathBuf {
    data_dir.join("outbox.db")
}

/// The open outbox behind its writer thread, and what it knows about devices.
pub(super) struct Storage {
    pub writer: OutboxWriter,
    pub writer_thread: std::thread::JoinHandle<()>,
    pub devices: hearth_model::DeviceRegistry,
}

pub(super) fn retry_policy(r: &hearth_config::RetryConfig) -> RetryPolicy {
    RetryPolicy {
        initial: r.initial.get(),
        max: r.max.get(),
        jitter: r.jitter,
    }
}

fn outbox_options(config: &Config) -> OutboxOptions {
    let routes = config
        .routes
        .iter()
        .filter(|r| r.enabled)
        .map(|r| RouteSpec {
            name: r.name.clone(),
            categories: r.categories.clone(),
            retry: retry_policy(&config.retry_for(r)),
            // FHIR and PCD-01 carry measurements; alarms go to alarm receivers (SCAIP).
            readings_only: matches!(r.uplink, UplinkKind::Fhir | UplinkKind::Pcd01),
            alarms_only: r.uplink == UplinkKind::Scaip,
        })
        .collect();
    let mut opts = OutboxOptions::new(outbox_path(&config.gateway.data_dir), routes);
    opts.max_bytes = config.outbox.max_bytes.bytes();
    opts.max_rows = config.outbox.max_rows;
    opts.dead_letter_alarm = true;
    opts.retention = Retention {
        health: config.outbox.retention.health.get(),
        welfare: config.outbox.retention.welfare.get(),
        administrative: config.outbox.retention.administrative.get(),
    };
    opts.integrity = match config.outbox.integrity_check {
        hearth_config::IntegrityCheck::Quick => IntegrityCheck::Quick,
        hearth_config::IntegrityCheck::Full => IntegrityCheck::Full,
        hearth_config::IntegrityCheck::Off => IntegrityCheck::Off,
    };
    opts
}

/// Create the data directory, resolve the box's identity into `config.gateway.eui64`, open the
/// outbox and start its writer.
pub(super) async fn open(config: &mut Config) -> anyhow::Result<Storage> {
    let data_dir = config.gateway.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}; create it or set gateway.data_dir",
            data_dir.display()
        )
    })?;
    // The box's identity, before anything is stored or sent: record ids and device
    // identifiers are scoped to it (issue 13). Resolved once into the config that the rest of
    // the wiring reads.
    let gateway = crate::identity::resolve(config)?;
    config.gateway.eui64 = Some(gateway.to_string());
    let mut opts = outbox_options(config);
    opts.gateway = Some(gateway);
    let (outbox, report) = tokio::task::spawn_blocking(move || Outbox::open(opts)).await??;
    if let Some(moved) = &report.quarantined {
        tracing::error!(moved_to = %moved.display(), "the outbox was corrupt and was moved aside; a critical technical alarm is queued");
    }
    tracing::info!(
        path = %outbox.path().display(),
        created = report.created,
        records = outbox.len(),
        recovered_in_flight = report.recovered_in_flight,
        schema = report.schema_version,
        "outbox open"
    );
    let group_commit = usize::try_from(config.outbox.group_commit_max).unwrap_or(1024);
    // A reserve file next to the outbox keeps room for alarms when the disk fills (issue 6).
    let (writer, writer_thread) = OutboxWriter::spawn_with_reserve(
        outbox,
        group_commit,
        hearth_outbox::DEFAULT_RESERVE_BYTES,
    )?;
    // Device facts (issue 6): what devices told about themselves, kept in the outbox, updated
    // by drivers through `Ingest::device_facts`, read by the FHIR uplinks (PhdDevice).
    let devices = hearth_model::DeviceRegistry::new();
    for d in writer.devices().await? {
        devices.upsert(d);
    }
    Ok(Storage {
        writer,
        writer_thread,
        devices,
    })
}

impl Storage {
    /// What drivers submit through. A full disk is a state, not a crash: submissions wait it
    /// out (retried every 250 ms) until the sources stop, instead of failing their driver into
    /// a crash loop.
    pub fn ingest(&self, sources_stop: &watch::Receiver<bool>) -> (Ingest, TechnicalAlarms) {
        let ingest = Ingest::with_devices(self.writer.clone(), self.devices.clone())
            .retrying_until(sources_stop.clone());
        let technical = TechnicalAlarms::new(ingest.clone());
        (ingest, technical)
    }
}
