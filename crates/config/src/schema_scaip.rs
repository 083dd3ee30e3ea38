//! `[route.scaip]`: an alarm route to the response centre (`uplink = "scaip"`): the account,
//! the session timing, the receivers in order (`[[route.scaip.receiver]]`, SCAIP over SIP or
//! over HTTPS), what each device is (`[[route.scaip.device]]`) and which technical alarms go
//! to the centre (`[[route.scaip.technical]]`). docs/alarms.md explains each.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::schema_uplink::RouteTlsConfig;
use crate::units::ConfigDuration;

/// `[route.scaip]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaipRouteConfig {
    /// Required: the home's account number at the centre (`cid`), 1 to 32 digits.
    pub account: String,
    /// How the centre reaches the home for voice (`crd`), once per medium: `sip:…`,
    /// `gsm:+47…`, `no-voice:`. Optional; omitted means the SIP address alarms come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<String>,
    /// How long a receiver may stay silent before the next one is tried (S6); > 0.
    /// Default 10 s.
    #[serde(default = "ten_seconds")]
    pub answer_timeout: ConfigDuration,
    /// Resend the same request this often while no answer came; > 0 and at most
    /// `answer_timeout`. Default 4 s.
    #[serde(default = "four_seconds")]
    pub resend_every: ConfigDuration,
    /// After a hold (`snu`=4), resend after this long (jittered, kept within 5–20 s as the
    /// standard asks). Default 10 s.
    #[serde(default = "ten_seconds")]
    pub hold_interval: ConfigDuration,
    /// How long one receiver may keep an alarm on hold before the next one is tried; 3 to 30
    /// minutes (SS 91100 §4.2). Default 3 min.
    #[serde(default = "three_minutes")]
    pub hold_budget: ConfigDuration,
    /// Heartbeat (`mty=PI`) interval to the first receiver; "0s" turns it off. The centre may
    /// change it (`hbi`) when `heartbeat_offer` is true. 1 min to 24 h. Default 1 min.
    #[serde(default = "one_minute")]
    pub heartbeat: ConfigDuration,
    /// Let the centre set the heartbeat interval (`hbo`=001). Default true.
    #[serde(default = "yes")]
    pub heartbeat_offer: bool,
    /// Required, at least one: the receivers in order — the primary first, then the
    /// alternatives (S1, S6).
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<ScaipReceiverConfig>,
    /// What each device is for the centre. Optional; a device without an entry gets the
    /// defaults of its alarm kind.
    #[serde(default, rename = "device", skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<ScaipDeviceConfig>,
    /// Which technical alarms go to the centre, beyond or instead of the defaults (low
    /// battery, power loss, poor coverage, link failure, tamper).
    #[serde(default, rename = "technical", skip_serializing_if = "Vec::is_empty")]
    pub technical: Vec<ScaipTechnicalConfig>,
}

/// `route.scaip.receiver.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScaipProtocol {
    /// SCAIP in SIP MESSAGE requests (SS 91100), registered with Digest.
    #[default]
    Sip,
    /// SCAIP over HTTPS (docs/protocols/scaip-https.md).
    Https,
}

/// `route.scaip.receiver.transport` (SIP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SipTransportKind {
    /// SIP over TLS (port 5061 by default).
    #[default]
    Tls,
    /// SIP over TCP: only to a loopback address, or with `insecure_transport = true`.
    Tcp,
    /// SIP over UDP: only to a loopback address, or with `insecure_transport = true`.
    Udp,
}

/// `[[route.scaip.receiver]]`: one response centre (or one of its sites).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaipReceiverConfig {
    /// Required: a name for logs and the event log, unique within the route.
    pub name: String,
    /// `sip` or `https`. Default `sip`.
    #[serde(default)]
    pub protocol: ScaipProtocol,
    /// SIP: the centre's address that alarms are sent to, `sip:…` or `sips:…`. Required for sip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// SIP: the registrar (and outbound proxy), `host[:port]`. Required for sip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// SIP: `tls`, `tcp` or `udp`. Default `tls`.
    #[serde(default)]
    pub transport: SipTransportKind,
    /// SIP: the home's user name at the centre (the user part of our address). Required for sip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// SIP: the domain of our address. Default: the registrar's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// SIP: the Digest user name, when it differs from `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    /// SIP: a file holding the Digest password (one line; readable by hearth only). Required
    /// for sip: secrets are not written into the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// SIP: the registration's lifetime; at least 60 s. Default 10 min.
    #[serde(default = "ten_minutes")]
    pub register_expires: ConfigDuration,
    /// SIP: the local address SIP binds to. Default: the address that routes to the registrar
    /// (never every interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<String>,
    /// SIP over TCP or UDP to a host that is not a loopback address: alarms then travel
    /// unencrypted. Default false.
    #[serde(default)]
    pub insecure_transport: bool,
    /// HTTPS: the centre's endpoint, `https://host[:port]/path`. Required for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTPS: a file holding a bearer token. Optional (mutual TLS with `[route.scaip.receiver.tls]`
    /// instead, or both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// TLS files for this receiver. Default: the route's `[route.tls]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTlsConfig>,
}

/// `[[route.scaip.device]]`: what a device is, for the centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaipDeviceConfig {
    /// Required: our device id (`zigbee:00158d0001a2b3c4`, the IEEE address with or without `0x`, `ble:…`, an external driver's
    /// `ext:…`), as `hearth outbox` and the logs show it.
    pub id: String,
    /// SCAIP device type (`dty`), e.g. 3 personal trigger, 4 fixed trigger, 5 fall detector,
    /// 7 panic button, 23 smoke detector. Default: from the alarm kind.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub device_type: Option<u16>,
    /// SCAIP device component (`dco`), e.g. 2 for button 1. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<u16>,
    /// SCAIP location code (`lco`), e.g. 21 kitchen. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<u16>,
    /// The id the centre knows the device by (`did`, 1 to 16 ASCII characters). Default: the
    /// last 16 characters of `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// A short text the operator sees (`dte`, at most 32 characters). Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Priority 0–9 (`pri`). Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// The receivers for this device's alarms, in order (names of `[[route.scaip.receiver]]`).
    /// Default: the route's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receivers: Option<Vec<String>>,
}

/// `[[route.scaip.technical]]`: a technical alarm kind for the centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaipTechnicalConfig {
    /// Required: the technical alarm kind (`low_battery`, `power_loss`, `device_offline`, …).
    pub kind: String,
    /// Send it to the centre. Default true; false stops one of the defaults.
    #[serde(default = "yes")]
    pub send: bool,
    /// The status code (`stc`) when it is raised. Required when `send` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised: Option<u16>,
    /// The status code when it clears. Optional; without it the end is not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared: Option<u16>,
}

fn yes() -> bool {
    true
}

fn four_seconds() -> ConfigDuration {
    ConfigDuration::from_secs(4)
}

fn ten_seconds() -> ConfigDuration {
    ConfigDuration::from_secs(10)
}

fn one_minute() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}

fn three_minutes() -> ConfigDuration {
    ConfigDuration::from_secs(180)
}

fn ten_minutes() -> ConfigDuration {
    ConfigDuration::from_secs(600)
}
