//! # hearth-tls
//!
//! Plumbing that every crate opening a connection shares, kept in a leaf crate so that a driver
//! (the MQTT session), the uplinks and the reference receiver can use it without depending on
//! one another (ARCHITECTURE.md, dependency rules; `tests/tidy.rs`):
//! - [`client`]: the one TLS client setup (rustls + ring, TLS 1.2/1.3 only, the operator's CA
//!   file or the system trust store, client certificates for mutual TLS; B10/B11).
//! - [`base64url`]: unpadded base64url (RFC 4648 §5) for JWS (OAuth2 `private_key_jwt`).
#![forbid(unsafe_code)]

pub mod base64url;
pub mod client;

pub use client::{SYSTEM_CA_BUNDLE, TlsError, TlsFiles, client_config};
