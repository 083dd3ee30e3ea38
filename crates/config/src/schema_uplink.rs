//! The receiver side of a route: `[route.fhir]` (with `[route.fhir.auth]`), `[route.pcd01]` and
//! `[route.tls]`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::units::ConfigDuration;

/// `[route.fhir]`: a FHIR R4 server that takes transaction Bundles (`uplink = "fhir"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirRouteConfig {
    /// Required: the FHIR base URL the transaction is POSTed to, `https://host[:port]/path`.
    /// `http://` only to a loopback address (tests, a local receiver).
    pub url: String,
    /// The receiver's profile: `phd` (HL7 PHD IG), `vkp` (HL7 Norway's welfare-technology hub),
    /// `pmd` (Norsk helsenett's Pasientens måledata). Default `phd`.
    #[serde(default)]
    pub profile: FhirProfile,
    /// Longest wait for connecting and for one answer; > 0. Default 30 s.
    #[serde(default = "thirty_seconds")]
    pub timeout: ConfigDuration,
    /// The patient of readings whose device has no `person`: `Patient/<id>` or
    /// `<system>|<value>` (e.g. `urn:oid:2.16.578.1.12.4.1.4.1|<national id>`). Personal data:
    /// never logged. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// `vkp`/`pmd`: the responsible organisation's number (organisasjonsnummer, 9 digits).
    /// Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// `pmd`: the municipality number (kommunenummer, 4 digits), required by PMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// The identifier system of hearth's device ids (devices without an EUI-64), a URI your
    /// organisation owns, e.g. `urn:oid:<your OID>.1`. Values are `<gateway EUI-64>/<device id>`.
    /// Default `urn:hearth:device-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id_system: Option<String>,
    /// What becomes of a reading the route's profile has no mapping for (e.g. body fat or CGM
    /// glucose on a `vkp`/`pmd` route): `dead_letter` (default: kept in the dead-letter table
    /// with the reason) or `skip` (leaves the route, counted as `skipped:<route>` and logged).
    #[serde(default)]
    pub unsupported: FhirUnsupported,
    /// `[route.fhir.auth]`: how requests are authorised. Default: none (mutual TLS alone).
    #[serde(default)]
    pub auth: FhirAuthConfig,
}

/// `route.fhir.unsupported`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FhirUnsupported {
    /// Dead-letter the reading with the reason (an operator sees it in `outbox stats`).
    #[default]
    DeadLetter,
    /// Settle it as skipped: it leaves the route, counted and logged, never silently.
    Skip,
}

fn thirty_seconds() -> ConfigDuration {
    ConfigDuration::from_secs(30)
}

/// `route.fhir.profile`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FhirProfile {
    /// HL7 Personal Health Device IG.
    #[default]
    Phd,
    /// HL7 Norway VKP (velferdsteknologisk knutepunkt).
    Vkp,
    /// Norsk helsenett, Pasientens måledata.
    Pmd,
}

impl FhirProfile {
    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            FhirProfile::Phd => "phd",
            FhirProfile::Vkp => "vkp",
            FhirProfile::Pmd => "pmd",
        }
    }
}

impl fmt::Display for FhirProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[route.fhir.auth]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FhirAuthConfig {
    /// `none`, `bearer` (a static token from `token_file`) or `oauth2` (client credentials with
    /// a `private_key_jwt` client assertion, as national health-sector identity services use).
    /// Default `none`.
    pub kind: FhirAuthKind,
    /// `bearer`: a file whose first line is the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// `oauth2`: the token endpoint (`https://…/connect/token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// `oauth2`: the client id registered with the identity service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `oauth2`: space-separated scopes to ask for. Optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `oauth2`: PEM private key (PKCS#8 RSA → RS256, PKCS#8 P-256 → ES256) whose public key
    /// is registered with the identity service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PathBuf>,
    /// `oauth2`: the key's id (`kid`) as registered. Optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// `route.fhir.auth.kind`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FhirAuthKind {
    /// No authorisation header (mutual TLS may still identify the gateway).
    #[default]
    None,
    /// `Authorization: Bearer <token_file>`.
    Bearer,
    /// OAuth2 client credentials with `private_key_jwt`.
    Oauth2,
}

/// `[route.pcd01]`: an HL7 v2.6 receiver of IHE PCD-01 messages over MLLP (`uplink = "pcd01"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pcd01RouteConfig {
    /// Required: the receiver's host name or address.
    pub host: String,
    /// Required: the receiver's MLLP port, 1..=65535.
    pub port: u16,
    /// MLLP over TLS (the certificates of `[route.tls]`). Default true; false only to a
    /// loopback address.
    #[serde(default = "yes")]
    pub tls: bool,
    /// The name checked against the receiver's certificate. Default: `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Longest wait for connecting and for each ACK; > 0. Default 30 s.
    #[serde(default = "thirty_seconds")]
    pub timeout: ConfigDuration,
    /// Messages sent on the connection before their ACKs are read (pipelining; each reading is
    /// its own message, ACKs are matched by MSA-2), 1..=256; 1 = each message waits for the
    /// previous one's ACK. Default 32.
    #[serde(default = "in_flight")]
    pub in_flight: u32,
    /// The patient (PID) of readings whose device has no `person`: a national identity number
    /// `<system>|<value>` (e.g. `urn:oid:2.16.578.1.12.4.1.4.1|<national id>` → PID-3
    /// `<value>^^^FNR&2.16.578.1.12.4.1.4.1&ISO^NNNOR`), `Patient/<id>` or another local id.
    /// Personal data: never logged. Optional; without it such readings are sent without PID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// MSH-5, the receiving application. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_application: Option<String>,
    /// MSH-6, the receiving facility. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_facility: Option<String>,
    /// MSH-15/MSH-16, which acknowledgement the receiver is asked for: `accept` (`AL`/`NE`,
    /// IHE PCD commit ACK `CA`/`CE`/`CR`) or `application` (`NE`/`AL`, Continua/PCHA receivers,
    /// `AA`/`AE`/`AR`). Either answer is understood. Default `accept`.
    #[serde(default)]
    pub ack_mode: Pcd01AckMode,
    /// MSH-11 processing id: `P` (production), `T` (training) or `D` (debugging). Default `P`.
    #[serde(default)]
    pub processing_id: Pcd01ProcessingId,
    /// MSH-21 message profile (EI, `entity^namespace^universal id^type`, 1 to 4 components).
    /// Default `IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// OBR-4 universal service identifier (CWE, `code^text^coding system`, 1 to 3 components).
    /// Default `182777000^monitoring of patient^SNOMED-CT`; IHE PCD receivers may want `…^SCT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universal_service: Option<String>,
}

/// `route.pcd01.ack_mode`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pcd01AckMode {
    /// `AL`/`NE`: accept (commit) acknowledgement always (IHE PCD TF-2 style).
    #[default]
    Accept,
    /// `NE`/`AL`: application acknowledgement always (Continua/PCHA WAN).
    Application,
}

/// `route.pcd01.processing_id`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Pcd01ProcessingId {
    /// `P`
    #[default]
    P,
    /// `T`
    T,
    /// `D`
    D,
}

/// Largest number of components of `route.pcd01.profile` (EI) and
/// `route.pcd01.universal_service` (the CWE components hearth writes).
pub const PCD01_PROFILE_COMPONENTS: usize = 4;
/// See [`PCD01_PROFILE_COMPONENTS`].
pub const PCD01_SERVICE_COMPONENTS: usize = 3;

fn yes() -> bool {
    true
}

/// Default of `route.pcd01.in_flight`.
pub const PCD01_IN_FLIGHT: u32 = 32;
/// Largest `route.pcd01.in_flight`.
pub const PCD01_MAX_IN_FLIGHT: u32 = 256;

fn in_flight() -> u32 {
    PCD01_IN_FLIGHT
}

/// `[route.tls]`: the route's TLS files (rustls, TLS 1.2 or newer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RouteTlsConfig {
    /// PEM CA certificates that sign the receiver's certificate. Default: the system store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (the gateway's enterprise certificate, B10/B11) for mutual
    /// TLS; with `client_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// Whether `host` (of a URL or a `host` key) is a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The scheme and host of an `http(s)://host[:port]/…` URL.
pub fn url_scheme_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        &authority[..end + 2]
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then_some((scheme, host))
}
