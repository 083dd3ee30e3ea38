//! One module per GATT service. Each exposes pure decoders `&[u8] → Result<Decoded, DecodeError>`.

pub mod bas;
pub mod bcs;
pub mod bps;
pub mod cgm;
pub mod cts;
pub mod dis;
pub mod ghs;
pub mod gls;
pub mod hrs;
pub mod hts;
pub mod plx;
pub mod racp;
pub mod wss;
