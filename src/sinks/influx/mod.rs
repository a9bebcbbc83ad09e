//! InfluxDB sink.
