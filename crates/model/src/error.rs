use thiserror::Error;

/// A domain value that cannot be built because its input breaks a rule of the model.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ModelError {
    /// A device identifier needs a non-empty scheme and value without separators.
    #[error(
        "invalid device id {scheme:?}:{value:?}: {why}; use a scheme such as \"ble\" or \"z2m\" and the device's stable address"
    )]
    InvalidDeviceId {
        scheme: String,
        value: String,
        why: &'static str,
    },
    /// A category or lane name that the model does not know.
    #[error("unknown {what} {name:?}; expected one of {expected}")]
    UnknownName {
        what: &'static str,
        name: String,
        expected: &'static str,
    },
}
