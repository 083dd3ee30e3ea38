//! One module per command-line verb.

pub mod ble;
pub mod config;
pub mod demo;
pub mod outbox;
pub mod receiver;
pub mod run;
pub mod zigbee2mqtt;
