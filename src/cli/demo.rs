//! `hearth demo`: the whole path with embedded defaults, no network, no broker, no root.
//!
//! Simulated devices → ingest → SQLite outbox (WAL, FULL sync) → route senders → loopback
//! receivers, all in a temporary directory that is removed at exit (`--keep` keeps it).
//! Later issues swap in the simulated BLE backend, zigbee2mqtt and the FHIR/PCD-01 receivers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use hearth_config::{
    BleBackendKind, BleSourceConfig, Config, ConfigDuration, FhirAuthConfig, FhirProfile,
    FhirRouteConfig, LoopbackConfig, Pcd01RouteConfig, RouteConfig, ScaipProtocol,
    ScaipReceiverConfig, ScaipRouteConfig, SimulatedConfig, SipTransportKind, SourceConfig,
    SourceKind, UplinkKind, Zigbee2mqttBackendKind, Zigbee2mqttConfig,
};
use hearth_model::Category;
use hearth_uplink::SenderEvent;
use tokio::sync::mpsc;

/// The demo's embedded configuration, rooted in `data_dir`.
pub fn demo_config(data_dir: PathBuf, receiver: Option<(u16, u16)>, centre: Option<u16>) -> Config {
    let mut c = Config::default();
    c.gateway.id = "hearth-demo".into();
    c.gateway.data_dir = data_dir;
    c.retry.initial = ConfigDuration::from_millis(200);
    c.retry.max = ConfigDuration::from_secs(5);
    let route = |name: &str, categories: Vec<Category>| RouteConfig {
        name: name.into(),
        categories,
        uplink: UplinkKind::Loopback,
        batch_size: 100,
        connections: None,
        enabled: true,
        retry: None,
        loopback: Some(LoopbackConfig {
            path: Some(PathBuf::from(format!("received-{name}.db"))),
        }),
        fhir: None,
        pcd01: None,
        scaip: None,
        tls: None,
    };
    c.routes = vec![
        route("hub", vec![Category::Health, Category::Welfare]),
        route("operations", vec![Category::Administrative]),
    ];
    // The reference receiver on loopback (plain: the demo has no PKI; every route off the box
    // must use TLS, which validation enforces).
    if let Some((fhir, mllp)) = receiver {
        let mut f = route("hub-fhir", vec![Category::Health]);
        f.uplink = UplinkKind::Fhir;
        f.loopback = None;
        f.fhir = Some(FhirRouteConfig {
            url: format!("http://127.0.0.1:{fhir}/fhir"),
            profile: FhirProfile::Phd,
            timeout: ConfigDuration::from_secs(5),
            patient: Some("Patient/demo".into()),
            organization: None,
            municipality: None,
            device_id_system: None,
            unsupported: Default::default(),
            auth: FhirAuthConfig::default(),
        });
        let mut p = route("hub-pcd01", vec![Category::Health]);
        p.uplink = UplinkKind::Pcd01;
        p.loopback = None;
        p.pcd01 = Some(Pcd01RouteConfig {
            host: "127.0.0.1".into(),
            port: mllp,
            tls: false,
            server_name: None,
            timeout: ConfigDuration::from_secs(5),
            in_flight: 32,
            patient: None,
            receiving_application: Some("DEMO-HUB".into()),
            receiving_facility: None,
            ack_mode: hearth_config::Pcd01AckMode::default(),
            processing_id: hearth_config::Pcd01ProcessingId::default(),
            profile: None,
            universal_service: None,
        });
        c.routes.push(f);
        c.routes.push(p);
    }
    // The response centre: safety alarms and technical alarms as SCAIP over HTTPS to the
    // reference receiver's centre endpoint (plain HTTP on loopback only, as for FHIR above).
    if let Some(port) = centre {
        let mut a = route("centre", Category::ALL.to_vec());
        a.uplink = UplinkKind::Scaip;
        a.loopback = None;
        a.scaip = Some(ScaipRouteConfig {
            account: "4711".into(),
            callers: Vec::new(),
            answer_timeout: ConfigDuration::from_secs(5),
            resend_every: ConfigDuration::from_secs(2),
            hold_interval: ConfigDuration::from_secs(10),
            hold_budget: ConfigDuration::from_secs(180),
            heartbeat: ConfigDuration::from_secs(60),
            heartbeat_offer: true,
            receivers: vec![ScaipReceiverConfig {
                name: "arc".into(),
                protocol: ScaipProtocol::Https,
                to: None,
                registrar: None,
                transport: SipTransportKind::Tls,
                user: None,
                domain: None,
                auth_user: None,
                password_file: None,
                register_expires: ConfigDuration::from_secs(600),
                local_address: None,
                insecure_transport: false,
                url: Some(format!("http://127.0.0.1:{port}/scaip")),
                token_file: None,
                tls: None,
            }],
            devices: Vec::new(),
            technical: Vec::new(),
        });
        c.routes.push(a);
        // The receipt signal (A2): the demo has no broker for a zigbee2mqtt siren, so a
        // command stands in for it (a real program, run for every confirmed alarm).
        c.receipt.duration = ConfigDuration::from_secs(3);
        c.receipt.indicators = vec![hearth_config::IndicatorConfig {
            kind: hearth_config::IndicatorKind::Command,
            device: None,
            base_topic: None,
            confirmed_payload: None,
            failing_payload: None,
            program: Some(PathBuf::from("/bin/true")),
            confirmed_args: vec!["confirmed".into(), "{strength}".into(), "{duration}".into()],
            failing_args: vec!["failing".into()],
        }];
    }
    c.sources = vec![
        SourceConfig {
            name: "demo".into(),
            kind: SourceKind::Simulated,
            category: Category::Health,
            enabled: true,
            simulated: Some(SimulatedConfig {
                devices: 4,
                interval: ConfigDuration::from_millis(500),
                alarm_every: 6,
            }),
            ble: None,
            zigbee2mqtt: None,
            external: None,
        },
        SourceConfig {
            name: "ble".into(),
            kind: SourceKind::Ble,
            category: Category::Health,
            enabled: true,
            simulated: None,
            ble: Some(BleSourceConfig {
                backend: BleBackendKind::Simulated,
                idle_timeout: ConfigDuration::from_secs(2),
                reconnect_initial: ConfigDuration::from_secs(1),
                ..BleSourceConfig::default()
            }),
            zigbee2mqtt: None,
            external: None,
        },
        SourceConfig {
            name: "zigbee".into(),
            kind: SourceKind::Zigbee2mqtt,
            category: Category::Welfare,
            enabled: true,
            simulated: None,
            ble: None,
            zigbee2mqtt: Some(Zigbee2mqttConfig {
                backend: Zigbee2mqttBackendKind::Simulated,
                ..Zigbee2mqttConfig::default()
            }),
            external: None,
        },
    ];
    c
}

fn describe(r: &hearth_uplink::loopback::Received) -> String {
    let what = match (r.kind, r.source.rsplit('-').next()) {
        ("alarm", _) if r.source.starts_with("zigbee") => format!("ALARM {}", r.detail),
        ("alarm", _) => "ALARM emergency button pressed".to_owned(),
        ("reading", _) if r.source.starts_with("zigbee") => {
            // IEEE 11073-10471 sensor types (partition 130); others by code.
            let name = match r.mdc.unwrap_or(0) {
                8_519_694 => "room temperature",
                8_519_695 => "humidity",
                8_519_687 => "motion/occupancy",
                8_519_690 => "door contact",
                8_519_691 => "bed/chair usage",
                _ => "sensor observation",
            };
            format!("{name} (MDC {})", r.mdc.unwrap_or(0))
        }
        ("reading", _) if r.source.starts_with("ble:") => {
            let name = r
                .mdc
                .and_then(hearth_ieee11073::mdc::lookup)
                .map_or("?", |t| t.reference_id);
            format!("BLE {name} ({})", r.mdc.unwrap_or(0))
        }
        ("technical", _) => format!("technical {}", r.detail),
        ("reading", Some(n)) => match n.parse::<u32>().map(|n| n % 4) {
            Ok(0) => "blood pressure (MDC 150020)".to_owned(),
            Ok(1) => "body temperature (MDC 150364)".to_owned(),
            Ok(2) => "SpO2 (MDC 150456)".to_owned(),
            Ok(_) => "body weight (MDC 188736)".to_owned(),
            Err(_) => "reading".to_owned(),
        },
        (k, _) => k.to_owned(),
    };
    format!(
        "{:<11} {:<20} {:<34} → {}{}",
        r.lane,
        r.source,
        what,
        r.route,
        if r.copy {
            " (resend, deduplicated)"
        } else {
            ""
        }
    )
}

/// A line for what the alarm route did: the centre's answer (safety alarms only; technical
/// alarms go quietly).
fn describe_alarm_event(e: &hearth_uplink_scaip::AlarmEvent) -> Option<String> {
    use hearth_uplink_scaip::AlarmEvent;
    match e {
        AlarmEvent::Handled {
            alarm: Some(a),
            reference,
            receiver,
            ..
        } => Some(format!(
            "{:<11} {:<20} {:<34} → centre: handled by {receiver} (SCAIP snu=0, ref {reference}, {} ms after it was stored)",
            "alarm",
            a.device.as_str(),
            format!("ALARM {} {}", a.kind, a.state.as_str()),
            a.received_at
                .age_at(hearth_model::Timestamp::now())
                .as_millis()
        )),
        AlarmEvent::Failing {
            alarm: Some(a),
            reference,
            ..
        } => Some(format!(
            "{:<11} {:<20} no centre handled ALARM {} yet (ref {reference}); sent again",
            "alarm",
            a.device.as_str(),
            a.kind
        )),
        _ => None,
    }
}

/// Run the demo for `duration` (or until Ctrl-C).
pub fn run(duration: Option<Duration>, keep: bool) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("hearth-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let data_dir = dir.path().to_owned();
    if !keep {
        super::remove_at_early_exit(&data_dir);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        crate::logging::init("warn", hearth_config::LogFormat::Human)?;
    } else {
        crate::logging::init("info", hearth_config::LogFormat::Human)?;
    }
    outln!(
        "hearth demo — simulated devices → SQLite outbox (WAL, synchronous=FULL) → loopback receivers"
    );
    outln!(
        "data directory: {}{}",
        data_dir.display(),
        if keep {
            " (kept)"
        } else {
            " (removed at exit; --keep keeps it)"
        }
    );
    outln!(
        "sources: 4 simulated devices every 0.5 s with an alarm button every 6th round; simulated BLE devices"
    );
    outln!(
        "  (blood pressure, thermometer, scale, pulse oximeter; a glucose meter with 30 stored records over RACP,"
    );
    outln!("   a failing first bond, a low battery and a dropped link mid-transfer);");
    outln!(
        "  zigbee2mqtt sensors replayed without a broker (water leak, smoke, SOS button, door, bed,"
    );
    outln!("   temperature/humidity) through the shipped rules");
    outln!("routes: hub ← health + welfare, operations ← technical alarms (loopback receivers);");
    outln!(
        "        hub-fhir ← health readings as FHIR (PHD IG), hub-pcd01 ← health readings as PCD-01,"
    );
    outln!("        both to hearth's reference receiver on loopback;");
    outln!(
        "        centre ← safety and technical alarms as SCAIP over HTTPS to the receiver's response centre"
    );
    match duration {
        Some(d) => outln!(
            "running for {}; Ctrl-C stops earlier\n",
            humantime::format_duration(d)
        ),
        None => outln!("running until Ctrl-C\n"),
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let receiver_store = data_dir.join("receiver.db");
    let config_dir = data_dir.clone();
    let result = rt.block_on(async move {
        let mut receiver_config = hearth_receiver::ReceiverConfig::new(&receiver_store);
        receiver_config.scaip = Some(hearth_receiver::ScaipEndpoint::loopback());
        let receiver = hearth_receiver::start(receiver_config)
            .await
            .context("cannot start the reference receiver")?;
        let ports = receiver
            .fhir_addr()
            .zip(receiver.mllp_addr())
            .map(|(f, m)| (f.port(), m.port()));
        let config = demo_config(config_dir, ports, receiver.scaip_addr().map(|a| a.port()));
        let (rx_tx, mut rx_rx) = mpsc::channel(1024);
        let (ev_tx, mut ev_rx) = mpsc::channel(1024);
        let (alarm_tx, mut alarm_rx) = mpsc::channel(1024);
        let (receipt_tx, mut receipt_rx) = mpsc::channel(1024);
        let observers = crate::daemon::Observers {
            received: Some(rx_tx),
            sender: Some(ev_tx),
            simulated_glucose_records: 30,
            alarm: Some(alarm_tx),
            receipt: Some(receipt_tx),
        };
        let printer = tokio::spawn(async move {
            let mut delivered = 0u64;
            loop {
                tokio::select! {
                    r = rx_rx.recv() => match r {
                        Some(r) => {
                            delivered += 1;
                            outln!("[{:>6.1}s] {}", started.elapsed().as_secs_f64(), describe(&r));
                        }
                        None => break,
                    },
                    e = ev_rx.recv() => if let Some(SenderEvent::Failed { route, error, wait, .. }) = e {
                        outln!("[{:>6.1}s] route {route} failed: {error}; retrying in {} ms", started.elapsed().as_secs_f64(), wait.as_millis());
                    },
                    a = alarm_rx.recv() => if let Some(line) = a.as_ref().and_then(describe_alarm_event) {
                        outln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
                    },
                    r = receipt_rx.recv() => if let Some(line) = r {
                        outln!("[{:>6.1}s] {:<11} {line}", started.elapsed().as_secs_f64(), "receipt");
                    },
                }
            }
            delivered
        });
        let signal = hearth_runtime::shutdown_signal()?;
        let stop = async move {
            match duration {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = signal => {}
                    }
                }
                None => {
                    signal.await;
                }
            }
        };
        crate::daemon::run(config, observers, stop).await?;
        receiver.shutdown().await;
        let delivered = printer.await.unwrap_or(0);
        anyhow::Ok(delivered)
    });
    let delivered = result?;
    let stats = hearth_outbox::stats(&crate::daemon::outbox_path(&data_dir))?;
    let ingested = stats.counter("ingested");
    let hub =
        hearth_uplink::loopback::summary(&data_dir.join("received-hub.db")).unwrap_or_default();
    let ops = hearth_uplink::loopback::summary(&data_dir.join("received-operations.db"))
        .unwrap_or_default();
    outln!("\nsummary after {:.1}s:", started.elapsed().as_secs_f64());
    outln!("  stored in the outbox        {ingested}");
    outln!(
        "  received by hub             {} unique ({} resent copies)",
        hub.unique,
        hub.resent
    );
    outln!("  received by operations      {} unique", ops.unique);
    let central = hearth_receiver::summary(&data_dir.join("receiver.db"))?;
    outln!(
        "  reference receiver          FHIR {} observations, PCD-01 {} observations \
         ({} + {} resends recognised)",
        central.fhir.observations,
        central.mllp.observations,
        central.fhir.duplicates,
        central.mllp.duplicates
    );
    outln!(
        "  response centre (SCAIP)     {} alarm events handled, {} heartbeats, {} resends recognised",
        central.scaip.events,
        central.scaip.heartbeats,
        central.scaip.repeats
    );
    outln!("  still queued                {}", stats.records());
    outln!(
        "  dead letters                {}",
        stats.dead_letters.values().sum::<u64>()
    );
    outln!("  delivery lines shown        {delivered}");
    let accounted = hub.unique + ops.unique + stats.records();
    if accounted < ingested as u64 {
        anyhow::bail!(
            "{} stored records are neither delivered nor queued",
            ingested as u64 - accounted
        );
    }
    outln!("  nothing lost: every stored record was delivered or is still queued");
    if keep {
        let kept = dir.keep();
        outln!(
            "\nkept {}: try `hearth outbox stats --data-dir {}`",
            kept.display(),
            kept.display()
        );
    }
    Ok(())
}
