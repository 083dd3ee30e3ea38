//! How the checks get drivers to test.

use hearth_driver_api::Driver;

/// Builds the drivers a check runs. Any `FnMut() -> D` closure is one: then every driver gets
/// its own fresh simulated input, which is right for drivers that keep no state outside
/// themselves (like `hearth-driver-simulated`).
///
/// A driver for a device with memory (it deletes records once told "got it") needs the device
/// to outlive a driver restart, as it does on real hardware; use [`OnDevice`], or implement
/// this trait, so that [`DriverFactory::restart`] builds a driver on the same device.
pub trait DriverFactory {
    /// The driver type.
    type Driver: Driver + 'static;

    /// A driver on a new simulated device, as for a new installation with an empty outbox.
    fn fresh(&mut self) -> Self::Driver;

    /// Another driver on the device of the last [`DriverFactory::fresh`] one, as after a
    /// restart of the driver task or of hearth. By default a fresh one.
    fn restart(&mut self) -> Self::Driver {
        self.fresh()
    }
}

impl<F, D> DriverFactory for F
where
    F: FnMut() -> D,
    D: Driver + 'static,
{
    type Driver = D;

    fn fresh(&mut self) -> D {
        self()
    }
}

/// A [`DriverFactory`] for drivers on a simulated device that keeps state across driver
/// restarts: `device` makes a new device (for each fresh outbox), `driver` builds a driver on
/// it (usually from a cloned handle, e.g. an `Arc<Mutex<…>>`).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use hearth_test_kit::conformance::{DriverFactory, OnDevice};
/// # use hearth_driver_api::{BoxFuture, Driver, DriverContext, DriverError};
/// # struct MyDriver(Arc<Mutex<Vec<u8>>>);
/// # impl Driver for MyDriver {
/// #     fn name(&self) -> &str { "mine" }
/// #     fn run<'a>(&'a mut self, _: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
/// #         Box::pin(async { Ok(()) })
/// #     }
/// # }
/// let mut factory = OnDevice::new(
///     || Arc::new(Mutex::new(vec![1, 2, 3])), // the device's memory
///     |memory: &Arc<Mutex<Vec<u8>>>| MyDriver(memory.clone()),
/// );
/// let first = factory.fresh();
/// let again = factory.restart();
/// assert!(Arc::ptr_eq(&first.0, &again.0), "a restart sees the same device");
/// assert!(!Arc::ptr_eq(&first.0, &factory.fresh().0), "fresh means a new device");
/// ```
pub struct OnDevice<M, B, T> {
    device: M,
    driver: B,
    current: Option<T>,
}

impl<M, B, T> std::fmt::Debug for OnDevice<M, B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDevice")
            .field("has_device", &self.current.is_some())
            .finish_non_exhaustive()
    }
}

impl<M, B, T> OnDevice<M, B, T> {
    /// `device` makes a new simulated device; `driver` builds a driver on one.
    pub fn new(device: M, driver: B) -> Self {
        Self {
            device,
            driver,
            current: None,
        }
    }
}

impl<M, B, T, D> DriverFactory for OnDevice<M, B, T>
where
    M: FnMut() -> T,
    B: FnMut(&T) -> D,
    D: Driver + 'static,
{
    type Driver = D;

    fn fresh(&mut self) -> D {
        let device = (self.device)();
        let driver = (self.driver)(&device);
        self.current = Some(device);
        driver
    }

    fn restart(&mut self) -> D {
        match &self.current {
            Some(device) => (self.driver)(device),
            None => self.fresh(),
        }
    }
}
