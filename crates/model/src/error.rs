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
    /// A gateway identity must be an EUI-64: 16 hex digits, optionally in pairs separated by
    /// `-` or `:`.
    #[error(
        "invalid gateway EUI-64 {text:?}: {why}; write 16 hex digits, e.g. \"02-1A-2B-3C-4D-5E-6F-70\" or \"021a2b3c4d5e6f70\""
    )]
    InvalidGatewayId { text: String, why: &'static str },
    /// A category or lane name that the model does not know.
    #[error("unknown {what} {name:?}; expected one of {expected}")]
    UnknownName {
        what: &'static str,
        name: String,
        expected: &'static str,
    },
}
