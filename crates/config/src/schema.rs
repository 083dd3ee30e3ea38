//! The schema: one struct per TOML table, with the documented defaults.
//!
//! Every table denies unknown keys, so a typo is an error with a line number instead of a
//! silently ignored setting. `docs/hearth.example.toml` documents every key; a test keeps the two
//! in step.

use std::fmt;
use std::path::{Path, PathBuf};

use hearth_model::Category;
use serde::{Deserialize, Serialize};

pub use crate::schema_mqtt::*;
pub use crate::schema_receipt::*;
pub use crate::schema_scaip::*;
pub use crate::schema_uplink::*;
use crate::units::{ByteSize, ConfigDuration, category};

/// The whole configuration of one hearth gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[gateway]`: who this box is and where it keeps its state.
    pub gateway: GatewayConfig,
    /// `[log]`: logging filter and format.
    pub log: LogConfig,
    /// `[outbox]`: the durable store-and-forward database and its caps (DESIGN invariant 4).
    pub outbox: OutboxConfig,
    /// `[retry]`: the default delivery retry policy of every route.
    pub retry: RetryConfig,
    /// `[supervisor]`: task restarts, crash loops, stall detection and shutdown (A7).
    pub supervisor: SupervisorConfig,
    /// `[mqtt]`: the broker of zigbee2mqtt and external drivers.
    pub mqtt: MqttConfig,
    /// `[receipt]`: the receipt signal in the home (A2).
    pub receipt: ReceiptConfig,
    /// `[[route]]`: the receivers and which categories each one gets (DESIGN invariant 5).
    #[serde(rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// `[[source]]`: where readings come from.
    #[serde(rename = "source", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceConfig>,
}

impl Config {
    /// The enabled routes that carry category `c`, in file order.
    ///
    /// A route never receives a category it is not configured for (DESIGN invariant 5): callers
    /// route a record only to what this returns.
    pub fn routes_for(&self, c: Category) -> impl Iterator<Item = &RouteConfig> {
        self.routes
            .iter()
            .filter(move |r| r.enabled && r.categories.contains(&c))
    }

    /// `p` if it is absolute, otherwise `p` under [`GatewayConfig::data_dir`].
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.gateway.data_dir.join(p)
        }
    }

    /// The retry policy of `route`: its `[route.retry]` keys over the global `[retry]`.
    pub fn retry_for(&self, route: &RouteConfig) -> RetryConfig {
        match &route.retry {
            Some(o) => o.apply(&self.retry),
            None => self.retry.clone(),
        }
    }

    /// The effective configuration as TOML (for `hearth config show` and logs).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// `[gateway]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// This box's id in heartbeats and technical alarms; `[A-Za-z0-9._-]{1,64}`. Default `"hearth"`.
    pub id: String,
    /// Where the outbox and other state live; must be absolute (systemd `StateDirectory=`).
    /// Default `/var/lib/hearth`.
    pub data_dir: PathBuf,
    /// The time zone that device clocks without a zone (e.g. BLE health devices) are read in:
    /// [`GatewayConfig::SYSTEM_TIME_ZONE`] (`"system"`, the box's `/etc/localtime`) or an IANA
    /// name such as `"Europe/Oslo"` (validated against the time zone database,
    /// `/usr/share/zoneinfo`). Default `"system"`. Use [`GatewayConfig::time_zone`] to resolve it.
    pub time_zone: String,
    /// This box's EUI-64 (16 hex digits, pairs optionally separated by `-` or `:`): the
    /// identity that every record id and every device identifier sent upstream is scoped to,
    /// the PhgDevice identifier and PCD-01 MSH-3. Default: none, and hearth generates a random
    /// locally administered EUI-64 once and keeps it in `<data_dir>/gateway-eui64`.
    pub eui64: Option<String>,
}

impl GatewayConfig {
    /// The `time_zone` value that means "the box's configured zone" (`/etc/localtime`).
    pub const SYSTEM_TIME_ZONE: &'static str = "system";

    /// The time zone named by `time_zone`.
    ///
    /// `"system"` never fails: when the box's zone cannot be determined (no or a broken
    /// `/etc/localtime`, an unknown `TZ`), this returns `Ok(TimeZone::UTC)` and logs nothing;
    /// set an IANA name to avoid depending on the box. An IANA name that the time zone database
    /// does not know is an `Err` naming it (validation rejects such a config first, so after
    /// [`crate::load`] this only fails if the database changed since).
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, String> {
        if self.time_zone == Self::SYSTEM_TIME_ZONE {
            return Ok(jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC));
        }
        jiff::tz::TimeZone::get(&self.time_zone).map_err(|e| {
            format!(
                "unknown time zone \"{}\" ({e}); use \"system\" or an IANA name from \
                 /usr/share/zoneinfo, e.g. \"Europe/Oslo\"",
                self.time_zone
            )
        })
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            id: "hearth".into(),
            data_dir: PathBuf::from("/var/lib/hearth"),
            time_zone: GatewayConfig::SYSTEM_TIME_ZONE.into(),
            eui64: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` `EnvFilter` directive, e.g. `"info,hearth_outbox=debug"`. Default `"info"`.
    /// `RUST_LOG`, when set, is for the binary to honour instead.
    pub level: String,
    /// Output format. Default [`LogFormat::Auto`].
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// `log.format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `journald` when started by systemd (`JOURNAL_STREAM` set), `human` otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
    /// Plain lines without timestamps or colours, for the journal.
    Journald,
}

/// `[outbox]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Cap on the database size; at the cap the oldest lowest-priority records are dropped,
    /// never an alarm (DESIGN invariant 4). Minimum 1 MiB. Default 256 MiB.
    pub max_bytes: ByteSize,
    /// Cap on the number of stored records (same drop policy). Minimum 1000. Default 2 000 000.
    pub max_rows: u64,
    /// Most records committed in one SQLite transaction (group commit), 1..=100000. Default 1024.
    pub group_commit_max: u32,
    /// Database check when the outbox is opened. Default [`IntegrityCheck::Quick`].
    pub integrity_check: IntegrityCheck,
    /// `[outbox.retention]`: how long an undelivered record is kept, per category.
    pub retention: RetentionConfig,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_bytes: ByteSize::new(256 * ByteSize::MIB),
            max_rows: 2_000_000,
            group_commit_max: 1024,
            integrity_check: IntegrityCheck::Quick,
            retention: RetentionConfig::default(),
        }
    }
}

/// `outbox.integrity_check`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IntegrityCheck {
    /// `PRAGMA quick_check` (fast, O(N)).
    #[default]
    Quick,
    /// `PRAGMA integrity_check` (slower, also checks indexes).
    Full,
    /// No check.
    Off,
}

/// `[outbox.retention]`: the maximum age of an undelivered record, per category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Health data. Default 30 days.
    pub health: ConfigDuration,
    /// Welfare data. Default 7 days.
    pub welfare: ConfigDuration,
    /// Administrative data. Default 14 days.
    pub administrative: ConfigDuration,
}

impl RetentionConfig {
    /// The retention of category `c`.
    pub fn for_category(&self, c: Category) -> ConfigDuration {
        match c {
            Category::Health => self.health,
            Category::Welfare => self.welfare,
            Category::Administrative => self.administrative,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            health: ConfigDuration::from_secs(30 * 86_400),
            welfare: ConfigDuration::from_secs(7 * 86_400),
            administrative: ConfigDuration::from_secs(14 * 86_400),
        }
    }
}

/// `[retry]`: exponential backoff between delivery attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// First delay after a failed attempt; must be > 0. Default 1 s.
    pub initial: ConfigDuration,
    /// Longest delay; must be >= `initial`. Default 5 min.
    pub max: ConfigDuration,
    /// Fraction of each delay that is randomised, 0.0..=1.0. Default 0.5.
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial: ConfigDuration::from_secs(1),
            max: ConfigDuration::from_secs(300),
            jitter: 0.5,
        }
    }
}

/// `[route.retry]`: per-route override; each key left out falls back to the global `[retry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RetryOverride {
    /// Overrides `retry.initial`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<ConfigDuration>,
    /// Overrides `retry.max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<ConfigDuration>,
    /// Overrides `retry.jitter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
}

impl RetryOverride {
    /// These keys over `base`.
    pub fn apply(&self, base: &RetryConfig) -> RetryConfig {
        RetryConfig {
            initial: self.initial.unwrap_or(base.initial),
            max: self.max.unwrap_or(base.max),
            jitter: self.jitter.unwrap_or(base.jitter),
        }
    }
}

/// `[supervisor]`: restarts of failed tasks and what counts as failed (A7: start again by itself,
/// report critical faults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// First restart delay of a failed task; must be > 0. Default 500 ms.
    pub restart_initial: ConfigDuration,
    /// Longest restart delay; must be >= `restart_initial`. Default 60 s.
    pub restart_max: ConfigDuration,
    /// This many restarts within `crash_loop_window` raise a technical alarm; >= 1. Default 5.
    pub crash_loop_restarts: u32,
    /// The window for `crash_loop_restarts`; must be > 0. Default 5 min.
    pub crash_loop_window: ConfigDuration,
    /// A critical task without progress this long counts as dead for the watchdog; > 0. Default 60 s.
    pub stall_timeout: ConfigDuration,
    /// How long shutdown waits for draining and flushing. Default 10 s.
    pub shutdown_grace: ConfigDuration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            restart_initial: ConfigDuration::from_millis(500),
            restart_max: ConfigDuration::from_secs(60),
            crash_loop_restarts: 5,
            crash_loop_window: ConfigDuration::from_secs(300),
            stall_timeout: ConfigDuration::from_secs(60),
            shutdown_grace: ConfigDuration::from_secs(10),
        }
    }
}

/// `[[route]]`: one receiver and the categories it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Required, unique, `^[a-z0-9][a-z0-9-]{0,62}$`. Delivery state is keyed by it, so
    /// renaming a route starts its delivery from scratch.
    pub name: String,
    /// Required, non-empty, no duplicates: the categories this route receives.
    #[serde(with = "category::list")]
    pub categories: Vec<Category>,
    /// Required: the protocol of the receiver.
    pub uplink: UplinkKind,
    /// Most records per delivery, 1..=10000. Default 100.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Batches in flight at once, each on its own connection, 1..=16: the next batch is encoded
    /// and sent while the receiver works on the previous one. Answers may then arrive out of
    /// order (every record keeps its id, so receivers deduplicate); 1 keeps strict order.
    /// Default 2 for `fhir` and `pcd01`, 4 for `scaip`; `loopback` allows only 1. See
    /// [`RouteConfig::connections`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// A disabled route receives nothing and keeps its stored state. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `[route.retry]`: overrides of the global `[retry]` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
    /// `[route.loopback]`: options for `uplink = "loopback"` (only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loopback: Option<LoopbackConfig>,
    /// `[route.fhir]`: options for `uplink = "fhir"` (required there, only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir: Option<FhirRouteConfig>,
    /// `[route.pcd01]`: options for `uplink = "pcd01"` (required there, only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcd01: Option<Pcd01RouteConfig>,
    /// `[route.scaip]`: options for `uplink = "scaip"` (required there, only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaip: Option<ScaipRouteConfig>,
    /// `[route.tls]`: CA and client certificate of the route's TLS connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTlsConfig>,
}

impl RouteConfig {
    /// Batches in flight at once: `connections`, or the uplink's default.
    pub fn connections(&self) -> u32 {
        self.connections.unwrap_or(match self.uplink {
            UplinkKind::Fhir | UplinkKind::Pcd01 => 2,
            // Each connection carries one batch of alarms at a time, and an alarm on hold at
            // one centre keeps its batch open: four let new alarms past a held one.
            UplinkKind::Scaip => 4,
            UplinkKind::Loopback => 1,
        })
    }

    /// The loopback receiver's database file as written (relative to `gateway.data_dir` unless
    /// absolute; see [`Config::resolve_path`]): `loopback.path`, or `loopback-<name>.db`.
    pub fn loopback_path(&self) -> PathBuf {
        self.loopback
            .as_ref()
            .and_then(|l| l.path.clone())
            .unwrap_or_else(|| PathBuf::from(format!("loopback-{}.db", self.name)))
    }
}

fn default_batch_size() -> u32 {
    100
}

fn yes() -> bool {
    true
}

/// `route.uplink`: the receiver protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UplinkKind {
    /// A local SQLite "receiver" that acknowledges everything; for tests, demos and installers.
    Loopback,
    /// FHIR R4 over HTTPS (not in this build yet).
    Fhir,
    /// HL7 v2 PCD-01 over MLLP/TLS (not in this build yet).
    Pcd01,
    /// SCAIP alarms to the response centre, over SIP or HTTPS.
    Scaip,
}

impl UplinkKind {
    /// Every kind the schema knows.
    pub const ALL: [UplinkKind; 4] = [
        UplinkKind::Loopback,
        UplinkKind::Fhir,
        UplinkKind::Pcd01,
        UplinkKind::Scaip,
    ];

    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            UplinkKind::Loopback => "loopback",
            UplinkKind::Fhir => "fhir",
            UplinkKind::Pcd01 => "pcd01",
            UplinkKind::Scaip => "scaip",
        }
    }

    /// Whether this build implements the uplink; validation rejects the others.
    pub const fn is_available(self) -> bool {
        matches!(
            self,
            UplinkKind::Loopback | UplinkKind::Fhir | UplinkKind::Pcd01 | UplinkKind::Scaip
        )
    }

    /// When the uplink arrives, for the "not available" message.
    pub(crate) const fn arrives(self) -> &'static str {
        match self {
            UplinkKind::Fhir => "with issue 4",
            _ => "in a later issue",
        }
    }
}

impl fmt::Display for UplinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[route.loopback]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LoopbackConfig {
    /// The receiver's SQLite file; relative paths are under `gateway.data_dir`.
    /// Default `loopback-<route name>.db` (filled in after loading).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// `[[source]]`: where readings come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Required, unique, same pattern as route names.
    pub name: String,
    /// Required: the kind of source.
    pub kind: SourceKind,
    /// The category of this source's records. Default health.
    #[serde(with = "category", default = "health")]
    pub category: Category,
    /// A disabled source is not started. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `[source.simulated]`: options for `kind = "simulated"` (only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<SimulatedConfig>,
    /// `[source.ble]`: options for `kind = "ble"` (only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ble: Option<BleSourceConfig>,
    /// `[source.zigbee2mqtt]`: options for `kind = "zigbee2mqtt"` (only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zigbee2mqtt: Option<Zigbee2mqttConfig>,
    /// `[source.external]`: options for `kind = "external"` (only allowed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalConfig>,
}

impl SourceConfig {
    /// The `[source.simulated]` options, or their defaults when the table is absent.
    pub fn simulated_settings(&self) -> SimulatedConfig {
        self.simulated.clone().unwrap_or_default()
    }

    /// The `[source.ble]` options, or their defaults when the table is absent.
    pub fn ble_settings(&self) -> BleSourceConfig {
        self.ble.clone().unwrap_or_default()
    }

    /// The `[source.zigbee2mqtt]` options, or their defaults when the table is absent.
    pub fn zigbee2mqtt_settings(&self) -> Zigbee2mqttConfig {
        self.zigbee2mqtt.clone().unwrap_or_default()
    }

    /// The `[source.external]` options, or their defaults when the table is absent.
    pub fn external_settings(&self) -> ExternalConfig {
        self.external.clone().unwrap_or_default()
    }
}

fn health() -> Category {
    Category::Health
}

/// `source.kind`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Simulated devices that produce readings (and optionally alarms) on a timer.
    Simulated,
    /// Bluetooth LE health devices (blood pressure, glucose, …) via BlueZ; see [`BleSourceConfig`].
    Ble,
    /// Smart-home and safety sensors via zigbee2mqtt; see [`Zigbee2mqttConfig`].
    Zigbee2mqtt,
    /// Vendors' driver programs publishing hearth's MQTT/JSON contract; see [`ExternalConfig`].
    External,
}

impl SourceKind {
    /// Every kind the schema knows.
    pub const ALL: [SourceKind; 4] = [
        SourceKind::Simulated,
        SourceKind::Ble,
        SourceKind::Zigbee2mqtt,
        SourceKind::External,
    ];

    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Simulated => "simulated",
            SourceKind::Ble => "ble",
            SourceKind::Zigbee2mqtt => "zigbee2mqtt",
            SourceKind::External => "external",
        }
    }

    /// Whether this build implements the source; validation rejects the others.
    pub const fn is_available(self) -> bool {
        true
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[source.simulated]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedConfig {
    /// Number of simulated devices, 1..=10000. Default 3.
    pub devices: u32,
    /// Time between readings of one device; >= 1 ms. Default 1 s.
    pub interval: ConfigDuration,
    /// Every Nth reading of a device is also a safety alarm; 0 = never. Default 0.
    pub alarm_every: u64,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        SimulatedConfig {
            devices: 3,
            interval: ConfigDuration::from_secs(1),
            alarm_every: 0,
        }
    }
}

/// `[source.ble]`: Bluetooth LE health devices (issue 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BleSourceConfig {
    /// Where devices are reached. Default [`BleBackendKind::Bluez`].
    pub backend: BleBackendKind,
    /// The BlueZ adapter (`hciconfig`/`bluetoothctl list`); must not be empty. Default `"hci0"`.
    pub adapter: String,
    /// A device not seen this long raises a `device_offline` technical alarm (A7); > 0.
    /// Default 24 h.
    pub offline_after: ConfigDuration,
    /// A battery level below this percentage raises a `low_battery` technical alarm (A3);
    /// 0..=100 (0 = never). Default 20.
    pub low_battery_percent: u8,
    /// A device clock further off than this is set via the Current Time Service (when the device
    /// allows it). Default 1 min.
    pub clock_tolerance: ConfigDuration,
    /// A connection with no notification this long is closed; > 0. Default 30 s.
    pub idle_timeout: ConfigDuration,
    /// First reconnect delay after a failed session (doubles up to `reconnect_max`); > 0.
    /// Default 5 s.
    pub reconnect_initial: ConfigDuration,
    /// Longest reconnect delay; must be >= `reconnect_initial`. Default 10 min.
    pub reconnect_max: ConfigDuration,
    /// Stored records (a device's memory) committed to the outbox per transaction, together with
    /// the device's cursor (DESIGN invariant 1); 1..=10000. Default 100.
    pub commit_chunk: u32,
    /// `[[source.ble.device]]`: the allow-list of paired devices. Required (at least one) with
    /// `backend = "bluez"`; addresses and system ids unique within the source.
    #[serde(rename = "device", skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<BleDeviceConfig>,
}

impl Default for BleSourceConfig {
    fn default() -> Self {
        BleSourceConfig {
            backend: BleBackendKind::Bluez,
            adapter: "hci0".into(),
            offline_after: ConfigDuration::from_secs(24 * 3_600),
            low_battery_percent: 20,
            clock_tolerance: ConfigDuration::from_secs(60),
            idle_timeout: ConfigDuration::from_secs(30),
            reconnect_initial: ConfigDuration::from_secs(5),
            reconnect_max: ConfigDuration::from_secs(600),
            commit_chunk: 100,
            devices: Vec::new(),
        }
    }
}

/// `source.ble.backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BleBackendKind {
    /// The BlueZ stack of the box (D-Bus), with the adapter `source.ble.adapter`.
    #[default]
    Bluez,
    /// Scripted devices built into hearth, replayed without a radio (demos, installer training).
    /// With no `[[source.ble.device]]` the built-in script's devices are used.
    Simulated,
}

impl BleBackendKind {
    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            BleBackendKind::Bluez => "bluez",
            BleBackendKind::Simulated => "simulated",
        }
    }
}

impl fmt::Display for BleBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[source.ble.device]]`: one paired device on the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BleDeviceConfig {
    /// Required: the Bluetooth address, `"AA:BB:CC:DD:EE:FF"` (six hex pairs, any case); unique
    /// within the source.
    pub address: String,
    /// The device's System ID (EUI-64) as 16 hex digits, e.g. `"0123456789abcdef"`; unique within
    /// the source. When given it is the stable device id (surviving address changes); otherwise
    /// the address is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    /// Who the device measures: a FHIR reference such as `"Patient/123"` or an identifier key.
    /// Personal data: never logged. Must not be empty when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The category of this device's records. Default: the source's `category`.
    #[serde(
        default,
        with = "category::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub category: Option<Category>,
    /// Free text for operators (e.g. "Blood pressure, living room"). Not used by hearth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl BleDeviceConfig {
    /// The category of this device's records: its own, or `source_category` when unset.
    pub fn category_or(&self, source_category: Category) -> Category {
        self.category.unwrap_or(source_category)
    }
}
