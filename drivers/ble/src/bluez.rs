//! The real radio: BlueZ over D-Bus through `btleplug`.
//!
//! Pairing (bonding) is done once at installation with `bluetoothctl` (docs/ble.md); BlueZ then
//! encrypts the link by itself when a characteristic requires it, so [`BleBackend::bond`] here
//! only checks that the device is connected. Notifications of every connected device are
//! forwarded by one task per device into the event queue, so a slow session never blocks the
//! radio.

use std::collections::HashMap;
use std::time::Duration;

use btleplug::api::bleuuid::{BleUuid, uuid_from_u16};
use btleplug::api::{
    Central, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::backend::{Address, BackendError, BleBackend, BleEvent, BoxFuture};

/// The BlueZ backend.
pub struct BluezBackend {
    adapter: Adapter,
    events_tx: mpsc::Sender<BleEvent>,
    events_rx: mpsc::Receiver<BleEvent>,
    peripherals: HashMap<Address, Peripheral>,
    central_events: Option<mpsc::Receiver<CentralEvent>>,
}

impl std::fmt::Debug for BluezBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BluezBackend").finish_non_exhaustive()
    }
}

fn no_adapter(e: impl std::fmt::Display) -> BackendError {
    BackendError::NoAdapter(e.to_string())
}

/// Parse a BlueZ address into ours.
fn address_of(text: &str) -> Option<Address> {
    Address::parse(text)
}

async fn open_adapter(name: &str) -> Result<Adapter, BackendError> {
    let manager = Manager::new()
        .await
        .map_err(|e| no_adapter(format!("cannot reach BlueZ on the system D-Bus ({e})")))?;
    let adapters = manager.adapters().await.map_err(no_adapter)?;
    let mut first = None;
    for a in adapters {
        let info = a.adapter_info().await.unwrap_or_default();
        if info.starts_with(name) {
            return Ok(a);
        }
        first.get_or_insert(a);
    }
    first.ok_or_else(|| no_adapter(format!("BlueZ reports no adapter (looked for {name})")))
}

/// Scan for `duration` and list what advertised: address, name, 16-bit services, RSSI.
pub async fn scan(
    adapter: &str,
    duration: Duration,
) -> Result<Vec<(Address, Option<String>, Vec<u16>, Option<i16>)>, BackendError> {
    let adapter = open_adapter(adapter).await?;
    adapter
        .start_scan(ScanFilter::default())
        .await
        .map_err(no_adapter)?;
    tokio::time::sleep(duration).await;
    let _ = adapter.stop_scan().await;
    let mut out = Vec::new();
    for p in adapter.peripherals().await.map_err(no_adapter)? {
        if let Ok(Some(props)) = p.properties().await
            && let Some(address) = address_of(&props.address.to_string())
        {
            let services = props
                .services
                .iter()
                .filter_map(|u| u.to_ble_u16())
                .collect();
            out.push((address, props.local_name, services, props.rssi));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl BluezBackend {
    /// Open the named adapter (e.g. `hci0`).
    pub async fn open(adapter: &str) -> Result<Self, BackendError> {
        let adapter = open_adapter(adapter).await?;
        let (events_tx, events_rx) = mpsc::channel(1024);
        Ok(Self {
            adapter,
            events_tx,
            events_rx,
            peripherals: HashMap::new(),
            central_events: None,
        })
    }

    async fn peripheral_by_id(
        &self,
        id: &PeripheralId,
    ) -> Option<(Address, Peripheral, Option<String>, Vec<u16>, Option<i16>)> {
        let p = self.adapter.peripheral(id).await.ok()?;
        let props = p.properties().await.ok()??;
        let address = address_of(&props.address.to_string())?;
        let services = props
            .services
            .iter()
            .filter_map(|u| u.to_ble_u16())
            .collect();
        Some((address, p, props.local_name, services, props.rssi))
    }

    fn peripheral(&self, address: &Address) -> Result<&Peripheral, BackendError> {
        self.peripherals
            .get(address)
            .ok_or_else(|| BackendError::NotConnected(address.clone()))
    }

    fn characteristic(&self, address: &Address, uuid: u16) -> Result<Characteristic, BackendError> {
        let full = uuid_from_u16(uuid);
        self.peripheral(address)?
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == full)
            .ok_or_else(|| BackendError::Gatt {
                op: "find",
                address: address.clone(),
                characteristic: uuid,
                reason: "the device does not offer it".into(),
            })
    }
}

fn gatt<'a>(
    op: &'static str,
    address: &'a Address,
    characteristic: u16,
) -> impl FnOnce(btleplug::Error) -> BackendError + 'a {
    move |e| BackendError::Gatt {
        op,
        address: address.clone(),
        characteristic,
        reason: e.to_string(),
    }
}

impl BleBackend for BluezBackend {
    fn start_scan(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            // The adapter's event stream is forwarded through a channel, so this backend stays
            // Sync and a slow consumer never blocks BlueZ's D-Bus signal handling for long.
            let mut stream = self.adapter.events().await.map_err(no_adapter)?;
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(async move {
                while let Some(e) = stream.next().await {
                    if tx.send(e).await.is_err() {
                        break;
                    }
                }
            });
            self.central_events = Some(rx);
            self.adapter
                .start_scan(ScanFilter::default())
                .await
                .map_err(no_adapter)
        })
    }

    fn next_event(&mut self) -> BoxFuture<'_, Result<BleEvent, BackendError>> {
        Box::pin(async move {
            loop {
                let central = async {
                    match self.central_events.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    e = self.events_rx.recv() => return e.ok_or(BackendError::Stopped),
                    e = central => match e {
                        None => return Err(BackendError::Stopped),
                        Some(CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) | CentralEvent::ServicesAdvertisement { id, .. }) => {
                            if let Some((address, p, name, services, rssi)) = self.peripheral_by_id(&id).await {
                                self.peripherals.insert(address.clone(), p);
                                return Ok(BleEvent::Advertisement { address, name, services, rssi });
                            }
                        }
                        Some(CentralEvent::DeviceDisconnected(id)) => {
                            if let Some((address, ..)) = self.peripheral_by_id(&id).await {
                                return Ok(BleEvent::Disconnected { address });
                            }
                        }
                        Some(_) => {}
                    },
                }
            }
        })
    }

    fn connect<'a>(&'a mut self, address: &'a Address) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let p = self.peripheral(address)?.clone();
            let fail = |e: btleplug::Error| BackendError::Connect {
                address: address.clone(),
                reason: e.to_string(),
            };
            p.connect().await.map_err(fail)?;
            p.discover_services().await.map_err(fail)?;
            // Forward this device's notifications into the event queue.
            let mut stream = p.notifications().await.map_err(fail)?;
            let tx = self.events_tx.clone();
            let addr = address.clone();
            tokio::spawn(async move {
                while let Some(n) = stream.next().await {
                    let Some(characteristic) = n.uuid.to_ble_u16() else {
                        continue;
                    };
                    if tx
                        .send(BleEvent::Notification {
                            address: addr.clone(),
                            characteristic,
                            value: n.value,
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
            Ok(())
        })
    }

    fn bond<'a>(&'a mut self, address: &'a Address) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let p = self.peripheral(address)?;
            match p.is_connected().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(BackendError::NotConnected(address.clone())),
                Err(e) => Err(BackendError::Bond {
                    address: address.clone(),
                    reason: e.to_string(),
                }),
            }
        })
    }

    fn disconnect<'a>(
        &'a mut self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if let Ok(p) = self.peripheral(address) {
                let _ = p.disconnect().await;
            }
            Ok(())
        })
    }

    fn characteristics<'a>(
        &'a mut self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<Vec<u16>, BackendError>> {
        Box::pin(async move {
            let mut v: Vec<u16> = self
                .peripheral(address)?
                .characteristics()
                .iter()
                .filter_map(|c| c.uuid.to_ble_u16())
                .collect();
            v.sort_unstable();
            v.dedup();
            Ok(v)
        })
    }

    fn read<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>> {
        Box::pin(async move {
            let c = self.characteristic(address, characteristic)?;
            self.peripheral(address)?
                .read(&c)
                .await
                .map_err(gatt("read", address, characteristic))
        })
    }

    fn write<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let c = self.characteristic(address, characteristic)?;
            self.peripheral(address)?
                .write(&c, value, WriteType::WithResponse)
                .await
                .map_err(gatt("write", address, characteristic))
        })
    }

    fn subscribe<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let c = self.characteristic(address, characteristic)?;
            self.peripheral(address)?.subscribe(&c).await.map_err(gatt(
                "subscribe",
                address,
                characteristic,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bluez_addresses_parse() {
        assert_eq!(
            address_of("a4:c1:38:00:00:01").map(|a| a.to_string()),
            Some("A4:C1:38:00:00:01".into())
        );
        assert_eq!(address_of("nonsense"), None);
        assert_eq!(uuid_from_u16(0x2A35).to_ble_u16(), Some(0x2A35));
    }

    #[tokio::test]
    async fn without_bluez_the_error_says_what_to_check() {
        // This machine (and CI) has no Bluetooth and no BlueZ on the system bus.
        match BluezBackend::open("hci0").await {
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("no Bluetooth adapter"), "{text}");
            }
            Ok(_) => eprintln!(
                "a BlueZ adapter is present on this machine; skipping the no-adapter check"
            ),
        }
    }
}
