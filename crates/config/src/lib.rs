//! # hearth-config
//!
//! hearth's one typed configuration schema: the TOML file an installer writes, parsed once into
//! typed values ([`Config`]), with every default documented, every rule checked, and every
//! problem reported with file, line, column and dotted key ([`ConfigError`]). It is not a
//! config *manager*: it does not merge drop-ins, watch files, or apply signed remote config; those
//! build on [`parse`] and [`Config::validate`].
//!
//! Where it sits: `hearth run --config FILE` and `hearth config check FILE` call [`load`]; the
//! wiring in the binary turns `[[source]]` into drivers, `[[route]]` into uplink tasks and
//! `[outbox]` into the store (DESIGN.md data flow: `drivers → ingest → outbox → uplinks`).
//!
//! Loading is staged (STYLE rule 5): TOML syntax → schema (serde, unknown keys denied) →
//! validation (ranges, uniqueness, cross-key rules; *all* violations collected and reported in
//! document order) → warnings → defaults that depend on other keys filled in (the loopback file
//! name). Syntax and schema errors stop at the first problem, because the TOML deserializer
//! cannot go on past one. The annotated example [`EXAMPLE`] (`docs/hearth.example.toml`)
//! documents every key.
//!
//! ## Invariants
//! - Every key of the schema is documented in the example file, and the example is valid with no
//!   warnings. Tests: `tests/example.rs` `the_example_documents_every_key_of_the_schema`,
//!   `the_example_parses_with_no_errors_and_no_warnings`.
//! - Every error names the file, a 1-based line and column, and the dotted key; a typo in a key
//!   is an error, never a silently ignored setting. Tests: `tests/errors.rs`, e.g.
//!   `an_unknown_key_is_named_with_its_line`, `a_missing_name_points_at_its_route_table`,
//!   `duplicate_route_names_point_at_the_second_one`.
//! - Parsing never panics, whatever the input. Test: `tests/errors.rs`
//!   `parse_never_panics_on_arbitrary_text`.
//! - A route receives only the categories it lists, and only while enabled (DESIGN invariant 5).
//!   Test: `tests/config.rs` `routes_for_returns_only_enabled_routes_carrying_the_category`.
//! - A BLE source talks only to the devices it lists (with `backend = "bluez"` at least one), each
//!   address and System ID at most once per source. Tests: `tests/errors.rs`
//!   `a_bluez_ble_source_without_devices_asks_for_them`,
//!   `a_duplicate_ble_address_points_at_the_second_one`, `system_ids_are_16_hex_digits_and_unique`.
//! - Defaults are the documented ones, and an empty file means all defaults. Test:
//!   `tests/config.rs` `defaults_are_as_documented`.
//!
//! ## Example
//! ```
//! use std::path::Path;
//! use hearth_model::Category;
//!
//! let loaded = hearth_config::parse(r#"
//!     [gateway]
//!     data_dir = "/tmp/hearth"
//!
//!     [[route]]
//!     name = "hub"
//!     categories = ["health", "welfare", "administrative"]
//!     uplink = "loopback"
//!
//!     [[source]]
//!     name = "sim"
//!     kind = "simulated"
//! "#, Path::new("hearth.toml")).unwrap();
//! assert!(loaded.warnings.is_empty());
//! let config = &loaded.config;
//! let hub = config.routes_for(Category::Welfare).next().unwrap();
//! assert_eq!(config.resolve_path(&hub.loopback_path()), Path::new("/tmp/hearth/loopback-hub.db"));
//! assert_eq!(config.outbox.max_bytes.bytes(), 256 << 20);
//!
//! let err = hearth_config::parse("[outbox]\nmax_byts = 1\n", Path::new("hearth.toml")).unwrap_err();
//! assert!(err.to_string().starts_with("hearth.toml:2:1: outbox.max_byts: unknown field `max_byts`"));
//! ```
#![forbid(unsafe_code)]

mod checker;
mod error;
mod locate;
mod schema;
mod schema_mqtt;
mod schema_receipt;
mod schema_scaip;
mod schema_uplink;
mod units;
mod validate;
mod validate_mqtt;
mod validate_receipt;
mod validate_scaip;

use std::path::Path;

pub use error::{ConfigError, ConfigWarning, ErrorKind};
pub use schema::{
    BleBackendKind, BleDeviceConfig, BleSourceConfig, Config, ExternalConfig, FhirAuthConfig,
    FhirAuthKind, FhirProfile, FhirRouteConfig, FhirUnsupported, GatewayConfig, Hours,
    IndicatorConfig, IndicatorKind, IntegrityCheck, LogConfig, LogFormat, LoopbackConfig,
    MqttConfig, OutboxConfig, Pcd01AckMode, Pcd01ProcessingId, Pcd01RouteConfig, ReceiptConfig,
    ReceiptPersonConfig, ReceiptStrength, RetentionConfig, RetryConfig, RetryOverride, RouteConfig,
    RouteTlsConfig, RuleConfig, RuleEmit, RuleValue, SEVERITIES, ScaipDeviceConfig, ScaipProtocol,
    ScaipReceiverConfig, ScaipRouteConfig, ScaipTechnicalConfig, SensorConfig, SensorRole,
    SimulatedConfig, SipTransportKind, SourceConfig, SourceKind, SupervisorConfig, UplinkKind,
    Zigbee2mqttBackendKind, Zigbee2mqttConfig, is_loopback_host, url_scheme_host,
};
pub use units::{ByteSize, ConfigDuration};

use locate::SourceMap;

/// The annotated example configuration (`docs/hearth.example.toml`); it documents every key.
pub const EXAMPLE: &str = include_str!("../../../docs/hearth.example.toml");

/// A valid configuration and what looked suspicious in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated configuration, with key-dependent defaults filled in.
    pub config: Config,
    /// Things hearth will run with but that are probably mistakes; log each one.
    pub warnings: Vec<ConfigWarning>,
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = String::from_utf8_lossy(valid);
        ConfigError::single(
            ErrorKind::Syntax,
            path.to_path_buf(),
            locate::position(&valid, valid.len()),
            String::new(),
            "the file is not valid UTF-8; save it as UTF-8".into(),
        )
    })?;
    parse(&text, path)
}

/// The key positions of `text`, or its TOML syntax error with line and column.
fn source_map<'a>(text: &'a str, origin: &Path) -> Result<SourceMap<'a>, ConfigError> {
    SourceMap::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        ConfigError::single(
            ErrorKind::Syntax,
            origin.to_path_buf(),
            locate::position(text, at),
            String::new(),
            format!("TOML syntax error: {}", e.message()),
        )
    })
}

/// Parses and validates config `text`; `origin` is the file name used in errors and warnings.
pub fn parse(text: &str, origin: &Path) -> Result<Loaded, ConfigError> {
    let map = source_map(text, origin)?;
    let mut config: Config = toml::from_str(text).map_err(|e| schema_error(&map, origin, &e))?;
    let warnings = validate::validate(&config, origin, Some(&map))?;
    fill_defaults(&mut config);
    Ok(Loaded { config, warnings })
}

impl Config {
    /// Checks a configuration built or changed in code (e.g. after command-line overrides) with
    /// the same rules as [`parse`]. Errors and warnings carry no file or line, only the key.
    pub fn validate(&self) -> Result<Vec<ConfigWarning>, ConfigError> {
        validate::validate(self, Path::new(""), None)
    }
}

/// Fills in defaults that depend on other keys, so the effective config shows them.
fn fill_defaults(config: &mut Config) {
    for route in &mut config.routes {
        if route.uplink == UplinkKind::Loopback {
            let path = route.loopback_path();
            route.loopback.get_or_insert_default().path = Some(path);
        }
    }
    for source in &mut config.sources {
        match source.kind {
            SourceKind::Simulated => {
                source.simulated.get_or_insert_default();
            }
            SourceKind::Ble => {
                source.ble.get_or_insert_default();
            }
            SourceKind::Zigbee2mqtt => {
                source.zigbee2mqtt.get_or_insert_default();
            }
            SourceKind::External => {
                source.external.get_or_insert_default();
            }
        }
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> ConfigError {
    use std::io::ErrorKind as K;
    let hint = match e.kind() {
        K::NotFound => {
            "the config file does not exist; pass the right path with --config, or start from \
             docs/hearth.example.toml"
        }
        K::PermissionDenied => {
            "the config file is not readable by this user; make it readable by the user hearth \
             runs as (e.g. chgrp hearth FILE && chmod 0640 FILE)"
        }
        K::IsADirectory => "this is a directory; pass the config file itself",
        _ => "check that the path names a readable regular file",
    };
    ConfigError::single(
        ErrorKind::Io,
        path.to_path_buf(),
        (0, 0),
        String::new(),
        format!("cannot read config file: {e}; {hint}"),
    )
}

/// A serde error from the TOML deserializer, located with the source map.
fn schema_error(map: &SourceMap<'_>, origin: &Path, e: &toml::de::Error) -> ConfigError {
    let raw = e.message();
    let located = e.span().and_then(|span| map.path_at(&span, raw));
    let (mut key, at) = match located {
        Some((path, at)) => (path, Some(at)),
        None => (locate::KeyPath::root(), e.span().map(|s| s.start)),
    };
    let message = if let Some(field) = between(raw, "missing field `", "`") {
        // The span is the table that lacks the key (for `[[route]]`, its header line).
        key = key.key(field);
        format!("missing required key `{field}`")
    } else if raw.starts_with("unknown field `") {
        format!("{raw}; check the spelling (docs/hearth.example.toml lists every key)")
    } else {
        raw.to_owned()
    };
    ConfigError::single(
        ErrorKind::Schema,
        origin.to_path_buf(),
        at.map_or((0, 0), |at| map.position(at)),
        key.to_string(),
        message,
    )
}

fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let rest = text.strip_prefix(start)?;
    rest.find(end).map(|i| &rest[..i])
}

/// A rules file: `[[rule]]` tables as in `[[source.zigbee2mqtt.rule]]` (the shipped defaults of
/// the zigbee2mqtt driver, or a municipality's own set).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleConfig>,
}

/// Parses and validates a rules file (`[[rule]]` tables); errors name `origin`, line and key
/// (`rule[3].hours`) as for the config file.
pub fn parse_rules(text: &str, origin: &Path) -> Result<Vec<RuleConfig>, ConfigError> {
    let map = source_map(text, origin)?;
    let file: RulesFile = toml::from_str(text).map_err(|e| schema_error(&map, origin, &e))?;
    validate::validate_rules(&file.rule, origin, &map)?;
    Ok(file.rule)
}
