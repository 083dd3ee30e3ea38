//! The radio, behind one trait: a simulated backend here, BlueZ (btleplug) on a real box.
//!
//! The session logic talks only to [`BleBackend`], so everything above the radio is tested
//! with scripted devices whose bytes come from the specifications.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A Bluetooth device address, normalised to upper-case `AA:BB:CC:DD:EE:FF`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

impl Address {
    /// Parse `AA:BB:CC:DD:EE:FF` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6
            || parts
                .iter()
                .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return None;
        }
        Some(Self(s.to_ascii_uppercase()))
    }

    /// An address known to be well-formed (scripts in this crate).
    pub(crate) fn trusted(s: &str) -> Self {
        Self(s.to_ascii_uppercase())
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-case hex digits without colons (for identifiers).
    pub fn compact(&self) -> String {
        self.0.replace(':', "").to_ascii_lowercase()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something the radio reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BleEvent {
    /// A device advertised.
    Advertisement {
        /// Its address.
        address: Address,
        /// Local name, if advertised.
        name: Option<String>,
        /// 16-bit service UUIDs advertised.
        services: Vec<u16>,
        /// Signal strength (dBm), for link-quality reporting (A6).
        rssi: Option<i16>,
    },
    /// A notification or indication arrived.
    Notification {
        /// From which device.
        address: Address,
        /// Which characteristic.
        characteristic: u16,
        /// The value.
        value: Vec<u8>,
    },
    /// The link dropped.
    Disconnected {
        /// Which device.
        address: Address,
    },
}

/// A radio or link failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No adapter (no Bluetooth hardware, BlueZ not running, no permission).
    #[error(
        "no Bluetooth adapter: {0}; check `bluetoothctl list`, that bluetoothd runs, and that hearth may use D-Bus (group bluetooth)"
    )]
    NoAdapter(String),
    /// The device is not connected or went away.
    #[error("device {0} is not connected")]
    NotConnected(Address),
    /// Connecting failed.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The device.
        address: Address,
        /// Why.
        reason: String,
    },
    /// Bonding (pairing) failed.
    #[error("bonding with {address} failed: {reason}; pair it again with bluetoothctl")]
    Bond {
        /// The device.
        address: Address,
        /// Why.
        reason: String,
    },
    /// A GATT operation failed.
    #[error("GATT {op} of 0x{characteristic:04X} on {address} failed: {reason}")]
    Gatt {
        /// read / write / subscribe.
        op: &'static str,
        /// The device.
        address: Address,
        /// The characteristic.
        characteristic: u16,
        /// Why.
        reason: String,
    },
    /// The backend stopped (shutdown).
    #[error("the Bluetooth backend stopped")]
    Stopped,
}

/// The radio.
pub trait BleBackend: Send + Sync {
    /// Start scanning for advertisements.
    fn start_scan(&mut self) -> BoxFuture<'_, Result<(), BackendError>>;
    /// The next event.
    fn next_event(&mut self) -> BoxFuture<'_, Result<BleEvent, BackendError>>;
    /// Connect (and discover services).
    fn connect<'a>(&'a mut self, address: &'a Address) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Bond (pair and encrypt) with a connected device.
    fn bond<'a>(&'a mut self, address: &'a Address) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Disconnect.
    fn disconnect<'a>(
        &'a mut self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
    /// 16-bit UUIDs of the characteristics the connected device offers.
    fn characteristics<'a>(
        &'a mut self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<Vec<u16>, BackendError>>;
    /// Read a characteristic.
    fn read<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>>;
    /// Write a characteristic (with response).
    fn write<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Enable notifications or indications (the backend picks what the characteristic offers).
    fn subscribe<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}
