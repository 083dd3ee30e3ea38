//! The handlers: zigbee2mqtt and external drivers.
