//! MQTT sink.
