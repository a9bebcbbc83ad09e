//! Sources: one protocol each. A source polls its devices on their own schedule and
//! turns every poll into a [`crate::model::Poll`] of canonical points, whatever the
//! outcome: a failed read is a quality, never a gap.

pub mod modbus;
mod probe_table;
mod profile_checks;
pub mod snmp;
