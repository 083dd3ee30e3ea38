//! `hearth`: the home gateway daemon and its tools. The binary only parses the command line
//! and glues the crates together; see ARCHITECTURE.md for the code map.

mod cli;
mod daemon;
mod identity;
mod logging;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// hearth — a home gateway for welfare technology.
///
/// Collects readings and alarms from health devices and smart-home sensors (interface A),
/// keeps them durably in SQLite until a receiver acknowledged them, and forwards them to the
/// municipality's central hub and response centre (interface B).
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start-up; the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the daemon with a configuration file (systemd starts this).
    Run {
        /// The configuration file (see `hearth config example`).
        #[arg(
            long,
            short,
            value_name = "FILE",
            default_value = "/etc/hearth/hearth.toml"
        )]
        config: PathBuf,
        /// Override gateway.data_dir.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Show the whole path with embedded defaults: no network, no broker, no root, no setup.
    Demo {
        /// Stop after this long, e.g. `10s`, `2m` (default: until Ctrl-C).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Keep the temporary data directory for inspection.
        #[arg(long)]
        keep: bool,
    },
    /// Check or explain configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Alarms on their way to the response centre: the event log.
    Alarms {
        #[command(subcommand)]
        command: AlarmsCommand,
    },
    /// Inspect the outbox database.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Bluetooth LE health devices: decode values, scan for devices.
    Ble {
        #[command(subcommand)]
        command: BleCommand,
    },
    /// The reference central-side receiver (FHIR + MLLP/PCD-01) for tests, demos, installers.
    Receiver {
        #[command(subcommand)]
        command: ReceiverCommand,
    },
    /// Smart-home and safety sensors through zigbee2mqtt: classify messages, show the rules.
    Zigbee2mqtt {
        #[command(subcommand)]
        command: Zigbee2mqttCommand,
    },
}

#[derive(Debug, Subcommand)]
// Parsed once at start-up; the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum ReceiverCommand {
    /// Run the receiver: a FHIR endpoint that takes transaction Bundles with conditional create
    /// and an MLLP listener that answers HL7 ACKs, storing what arrives; prints a summary at the
    /// end. Listens on loopback unless told otherwise.
    #[command(group(clap::ArgGroup::new("scaip_centre").args(["scaip", "scaip_sip"]).multiple(true)))]
    Run {
        /// SQLite file for what arrives (created if missing).
        #[arg(long, value_name = "FILE", default_value = "receiver.db")]
        store: PathBuf,
        /// FHIR listen address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        fhir: SocketAddr,
        /// MLLP listen address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2575")]
        mllp: SocketAddr,
        /// Serve TLS with this PEM certificate chain (needs --tls-key).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM key of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates signed by this CA (mutual TLS).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        client_ca: Option<PathBuf>,
        /// Require `Authorization: Bearer TOKEN` on FHIR requests.
        #[arg(long, value_name = "TOKEN")]
        bearer: Option<String>,
        /// Serve an OAuth2 token endpoint (/oauth2/token, client credentials with a
        /// private_key_jwt assertion) for this client, whose PEM public key (SPKI) is in the
        /// file, and require its access tokens on FHIR requests (--bearer's token is accepted
        /// too).
        #[arg(long, value_name = "ID=PUBLIC_KEY_PEM", value_parser = cli::receiver::parse_oauth2_client)]
        oauth2_client: Option<(String, PathBuf)>,
        /// Life of the access tokens issued, e.g. 300s, 5m [default: 300s].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "oauth2_client")]
        token_life: Option<Duration>,
        /// Refuse token requests whose scope does not contain this scope.
        #[arg(long, value_name = "SCOPE", requires = "oauth2_client")]
        oauth2_scope: Option<String>,
        /// Share of requests answered with 503 (FHIR) or AE (MLLP), 0..=1.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Share of requests answered with garbage, 0..=1.
        #[arg(long, default_value_t = 0.0)]
        garbage_rate: f64,
        /// Share of requests whose connection is closed without an answer, 0..=1.
        #[arg(long, default_value_t = 0.0)]
        reset_rate: f64,
        /// Delay before every answer, e.g. 50ms.
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        latency: Duration,
        /// Be down from FROM for LENGTH (e.g. 10s+30s); repeatable.
        #[arg(long, value_name = "FROM+LENGTH", value_parser = cli::receiver::parse_down)]
        down: Vec<(Duration, Duration)>,
        /// Seed of the fault generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also be a response centre: SCAIP over HTTPS (docs/protocols/scaip-https.md) at
        /// ADDR/scaip, TLS with --tls-cert. Off by default.
        #[arg(long, value_name = "ADDR")]
        scaip: Option<SocketAddr>,
        /// Require `Authorization: Bearer TOKEN` on SCAIP requests.
        #[arg(long, value_name = "TOKEN", requires = "scaip")]
        scaip_bearer: Option<String>,
        /// Hand out this heartbeat interval (minutes, hbi) to heartbeats that offer it.
        #[arg(long, value_name = "MINUTES", requires = "scaip")]
        scaip_hbi: Option<u16>,
        /// A scripted centre fault (both centres): hang, hold, busy, not_treated, snu=N,
        /// wrong_ref, malformed, unauthorized (over SIP: a 401 loop) or mrs_in_200 (SIP only),
        /// for every event or its first N requests (`hold:2`).
        #[arg(long, value_name = "FAULT[:N]", requires = "scaip_centre", value_parser = parse_scaip_fault)]
        scaip_fault: Option<hearth_receiver::ScaipFaults>,
        /// Also be a response centre for SCAIP over SIP (SS 91100): a registrar (Digest MD5) and
        /// MESSAGE UAS at ADDR; the <mrs> goes to the unit in a separate MESSAGE. Off by default.
        #[arg(long, value_name = "ADDR")]
        scaip_sip: Option<SocketAddr>,
        /// The SIP transport: udp, tcp or tls (with --tls-cert).
        #[arg(long, value_name = "udp|tcp|tls", default_value = "udp", requires = "scaip_sip", value_parser = hearth_receiver::SipTransport::parse)]
        scaip_sip_transport: hearth_receiver::SipTransport,
        /// An account the registrar accepts (Digest username and password); repeatable, at
        /// least one with --scaip-sip.
        #[arg(long, value_name = "USER:PASSWORD", requires = "scaip_sip", value_parser = cli::receiver::parse_sip_user)]
        scaip_sip_user: Vec<(String, String)>,
        /// Stop after this long (default: until Ctrl-C).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Print what a receiver store holds (observations, duplicates recognised, faults).
    Summary {
        /// The receiver's SQLite file.
        #[arg(long, value_name = "FILE", default_value = "receiver.db")]
        store: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum Zigbee2mqttCommand {
    /// Print the events (alarms, technical alarms, observations) that one zigbee2mqtt message
    /// produces, as JSON: {"events":[{"kind":"alarm"|"technical"|"observation","type":…}]}.
    ///
    /// The message is classified as the first message of a fresh sensor (no earlier state).
    /// Exit 0 with the JSON (an empty list for ignored messages); exit 2 when the message
    /// cannot be understood (e.g. the payload is not JSON), with the reason on stderr.
    Classify {
        /// The MQTT topic, e.g. zigbee2mqtt/kitchen/smoke.
        #[arg(long, value_name = "TOPIC")]
        topic: String,
        /// The payload, e.g. '{"smoke":true,"battery":90}'; `-` reads it from stdin.
        #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
        payload: String,
        /// Use the rules, sensors and time zone of this configuration file (its zigbee2mqtt
        /// source) instead of the shipped rules alone.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// With --config: the zigbee2mqtt source to use (default: the first).
        #[arg(long, value_name = "NAME", requires = "config")]
        source: Option<String>,
    },
    /// Print the shipped rules (drivers/zigbee2mqtt/rules/default.toml).
    Rules,
}

#[derive(Debug, Subcommand)]
enum BleCommand {
    /// Decode one GATT characteristic value into readings with IEEE 11073 codes.
    ///
    /// Exit 0 with JSON on stdout; exit 2 with a message naming the offending byte on
    /// malformed input.
    Decode {
        /// 16-bit characteristic UUID: 2A35, 0x2A35 or 00002a35-0000-1000-8000-00805f9b34fb.
        #[arg(long, value_name = "UUID")]
        characteristic: String,
        /// The value as hex bytes (spaces, colons and dashes allowed).
        #[arg(long, value_name = "HEX", allow_hyphen_values = true)]
        hex: String,
        /// Output format: the decoded readings (json), or what a FHIR route (a transaction
        /// Bundle) or a PCD-01 route (an HL7 v2.6 ORU^R01, one segment per line) would send.
        #[arg(long, default_value = "json", value_parser = ["json", "fhir", "pcd01"])]
        format: String,
        /// With --format fhir: the receiver's profile (phd: HL7 PHD IG; vkp: HL7 Norway's
        /// welfare-technology hub; pmd: Norsk helsenett's Pasientens måledata).
        #[arg(long, default_value = "phd", value_parser = ["phd", "vkp", "pmd"])]
        profile: String,
        /// The person the readings are about, as a route would know it
        /// (`Patient/<id>` or `<system>|<value>`).
        #[arg(long, default_value = "Patient/example", value_name = "REF")]
        patient: String,
    },
    /// Scan with the real Bluetooth adapter and list advertising devices.
    Scan {
        /// The adapter.
        #[arg(long, default_value = "hci0")]
        adapter: String,
        /// How long to scan, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file: exit 0 if valid, 1 with file:line:column: key: message if not.
    Check {
        /// The configuration file.
        file: PathBuf,
        /// Also print the effective configuration with all defaults filled in.
        #[arg(long)]
        print: bool,
    },
    /// Print the annotated example configuration that documents every key.
    Example,
}

#[derive(Debug, Subcommand)]
enum AlarmsCommand {
    /// The alarm event log: every attempt, receiver, answer and our event id, oldest first
    /// (the newest --limit). Safe while the daemon runs (read-only).
    Log {
        /// The data directory holding outbox.db.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/hearth")]
        data_dir: PathBuf,
        /// One JSON object per line (per event), for operators' tools.
        #[arg(long)]
        json: bool,
        /// At most this many, the newest (default 50; 0 for all).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// Only events since then: a duration back from now (30m, 2h, 7days) or an RFC 3339
        /// time (2026-12-08T10:00:00+01:00).
        #[arg(long, value_name = "DURATION|RFC3339", value_parser = cli::alarms::parse_since)]
        since: Option<hearth_model::Timestamp>,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Counts per lane, route and state, oldest ages, bytes, dead letters and counters.
    /// Safe while the daemon runs (read-only).
    Stats {
        /// The data directory holding outbox.db.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/hearth")]
        data_dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List dead letters, newest first: id, origin (route), lane, category, reason, when,
    /// size and a hash — never the payload. Safe while the daemon runs (read-only).
    DeadLetters {
        /// The data directory holding outbox.db.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/hearth")]
        data_dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Only the records this route's receiver rejected.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
        /// At most this many (default 50; 0 for all).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
    },
    /// Put dead letters (records a route's receiver rejected) back as pending deliveries on
    /// their route, once the cause is fixed. One transaction; safe while the daemon runs, which
    /// sends them within about a second.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(false)))]
    Requeue {
        /// The data directory holding outbox.db.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/hearth")]
        data_dir: PathBuf,
        /// These dead letters (ids from `hearth outbox dead-letters`).
        #[arg(long = "id", value_name = "ID", num_args = 1.., group = "which")]
        ids: Vec<i64>,
        /// Every record this route's receiver rejected.
        #[arg(long, value_name = "ROUTE", group = "which")]
        route: Option<String>,
        /// Dead letters whose reason contains this text (case-insensitive).
        #[arg(long, value_name = "TEXT", group = "which")]
        reason_contains: Option<String>,
        /// Every dead letter that can be requeued.
        #[arg(long, group = "which")]
        all: bool,
    },
}

fn parse_scaip_fault(s: &str) -> Result<hearth_receiver::ScaipFaults, String> {
    hearth_receiver::ScaipFault::parse(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; use e.g. 10s, 2m, 1h"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, data_dir } => cli::run::run(config, data_dir).map(|()| true),
        Command::Demo { duration, keep } => cli::demo::run(duration, keep).map(|()| true),
        Command::Config {
            command: ConfigCommand::Check { file, print },
        } => cli::config::check(&file, print),
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            cli::config::example();
            Ok(true)
        }
        Command::Alarms {
            command:
                AlarmsCommand::Log {
                    data_dir,
                    json,
                    limit,
                    since,
                },
        } => cli::alarms::log(&data_dir, json, limit, since).map(|()| true),
        Command::Outbox {
            command: OutboxCommand::Stats { data_dir, json },
        } => cli::outbox::stats(&data_dir, json).map(|()| true),
        Command::Outbox {
            command:
                OutboxCommand::DeadLetters {
                    data_dir,
                    json,
                    route,
                    limit,
                },
        } => cli::outbox::dead_letters(&data_dir, json, route, limit).map(|()| true),
        Command::Outbox {
            command:
                OutboxCommand::Requeue {
                    data_dir,
                    ids,
                    route,
                    reason_contains,
                    all,
                },
        } => {
            let which = match (route, reason_contains) {
                (Some(r), _) => hearth_outbox::Requeue::Route(r),
                (None, Some(t)) => hearth_outbox::Requeue::ReasonContains(t),
                (None, None) if all => hearth_outbox::Requeue::All,
                (None, None) => hearth_outbox::Requeue::Ids(ids),
            };
            cli::outbox::requeue(&data_dir, &which)
        }
        Command::Ble {
            command:
                BleCommand::Decode {
                    characteristic,
                    hex,
                    format,
                    profile,
                    patient,
                },
        } => {
            // Malformed input is exit 2 (DESIGN: the command line).
            return match cli::ble::decode(&characteristic, &hex, &format, &profile, &patient) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(2),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Ble {
            command: BleCommand::Scan { adapter, seconds },
        } => cli::ble::scan(&adapter, seconds),
        Command::Zigbee2mqtt {
            command:
                Zigbee2mqttCommand::Classify {
                    topic,
                    payload,
                    config,
                    source,
                },
        } => {
            return match cli::zigbee2mqtt::classify(
                &topic,
                &payload,
                config.as_deref(),
                source.as_deref(),
            ) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(2),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Receiver {
            command:
                ReceiverCommand::Run {
                    store,
                    fhir,
                    mllp,
                    tls_cert,
                    tls_key,
                    client_ca,
                    bearer,
                    oauth2_client,
                    token_life,
                    oauth2_scope,
                    error_rate,
                    garbage_rate,
                    reset_rate,
                    latency,
                    down,
                    seed,
                    scaip,
                    scaip_bearer,
                    scaip_hbi,
                    scaip_fault,
                    scaip_sip,
                    scaip_sip_transport,
                    scaip_sip_user,
                    duration,
                },
        } => cli::receiver::run(cli::receiver::RunOptions {
            scaip_sip: scaip_sip.map(|listen| hearth_receiver::ScaipSipEndpoint {
                listen,
                transport: scaip_sip_transport,
                users: scaip_sip_user,
                faults: scaip_fault.unwrap_or_default(),
            }),
            scaip: scaip.map(|addr| hearth_receiver::ScaipEndpoint {
                listen: hearth_receiver::Listen::from(addr),
                bearer: scaip_bearer,
                heartbeat_minutes: scaip_hbi,
                faults: scaip_fault.unwrap_or_default(),
            }),
            store,
            fhir: Some(fhir),
            mllp: Some(mllp),
            tls: tls_cert.zip(tls_key),
            client_ca,
            bearer,
            oauth2_client,
            token_life,
            oauth2_scope,
            faults: hearth_receiver::Faults {
                error_rate,
                latency,
                down,
                garbage_rate,
                reset_rate,
                seed,
            },
            duration,
        })
        .map(|()| true),
        Command::Receiver {
            command: ReceiverCommand::Summary { store },
        } => cli::receiver::summary(&store).map(|()| true),
        Command::Zigbee2mqtt {
            command: Zigbee2mqttCommand::Rules,
        } => {
            cli::zigbee2mqtt::rules();
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
