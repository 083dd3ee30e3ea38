//! Test support shared by the BLE driver's tests and bench (`#[path]`-included by the bench).
//! The radio simulator (`hearth_driver_ble::sim`) holds only the radio; the driver
//! configuration for it is built here, as hearth's demo builds it in `src/daemon/settings.rs`.

use hearth_driver_ble::driver::DeviceEntry;
use hearth_driver_ble::sim::{more_scripted_devices, scripted_devices};

/// The allow-list matching `scripted_devices` and `more_scripted_devices`: every scripted
/// device, identified by its address.
pub fn scripted_allow_list(category: hearth_model::Category) -> Vec<DeviceEntry> {
    scripted_devices(0)
        .into_iter()
        .chain(more_scripted_devices(0))
        .filter_map(|d| {
            let id = hearth_model::DeviceId::new("ble", &d.address.compact()).ok()?;
            Some(DeviceEntry {
                address: d.address,
                id,
                person: None,
                category,
            })
        })
        .collect()
}
