//! # dc-gateway
//!
//! A facility-monitoring gateway for a data center: it polls UPS, generator, cooling,
//! climate sensors and fire panels (Modbus TCP/RTU, SNMP, GPIO), checks readings against
//! the regulation's Article 10 thresholds, and pushes time series and alarms to InfluxDB
//! and MQTT, with a local wall view as the fallback that works when the network is down.
//!
//! Pipeline: [`sources`] → [`model::Poll`] → [`rules`] → [`sinks`], wired by [`runtime`].
//! Nothing in a loop panics: a failed read becomes a reading quality, a failed delivery
//! is retried, every failure is counted in [`metrics`].

#![warn(missing_docs)]
#![allow(clippy::new_without_default)]

pub mod accounts;
pub mod backup;
pub mod buffer;
pub mod commands;
pub mod config;
pub mod dashboards;
pub mod demo;
pub mod durable;
pub mod journal;
pub mod metrics;
pub mod model;
pub mod outputs;
pub mod paging;
pub mod points;
pub mod rules;
pub mod runtime;
pub mod schedule;
pub mod selfwatch;
pub mod seq;
pub mod service;
pub mod sim;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod statedb;
pub mod texts;
pub mod web;
