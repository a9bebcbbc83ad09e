//! Paging the on-call engineer: who is on call ([`roster`]), who is told what and when
//! ([`engine`]: escalation, repeats, calls, trap confirmation, the daily test), how
//! many texts a person gets in a storm ([`storm`]), and what an SMS reply means
//! ([`reply`]). See docs/PAGING.md.
//!
//! Everything here is pure: an input, `now`, an output — no clock reads, no I/O. The
//! hub (src/runtime/hub.rs) feeds it alarm events, confirming polls and its 1 s tick,
//! turns its notices into [`crate::sinks::Notification`]s for every sink that takes
//! notifications (SMS, MQTT `<prefix>/notify/<person>`) and journals each one; SMS
//! replies come back as `ack` commands through the one command path.

pub mod config;
pub mod engine;
pub mod reply;
pub mod roster;
pub mod storm;

#[cfg(test)]
mod tests;

pub use config::{PagingConfig, Person};
pub use engine::{Note, Notice, Output, Pager, What};
