//! Alarm rules: pure state machines that turn polls into alarm events.
//!
//! Inputs are [`Poll`](crate::model::Poll)s, which carry their own timestamp, and
//! [`Engine::tick`] with the time "now"; outputs are [`AlarmEvent`](crate::model::AlarmEvent)s.
//! Nothing in this module reads a clock, does I/O or needs tokio, so every behaviour is
//! tested with an injected clock and replaying the same inputs gives the same events
//! (event ids included).
//!
//! - [`spec`]: what a rule is ([`RuleSpec`], [`Condition`]) and how a config override
//!   changes it ([`apply_override`]).
//! - [`defaults`](mod@defaults): the "Article 10 profile", the rules every device kind gets by default
//!   (figures from `regulation/THRESHOLDS.md`).
//! - [`derive`](mod@derive): derived points (dew point from temperature and humidity).
//! - [`door`]: door access windows and the door rule (Art. 7.5).
//! - [`engine`]: the per-device, per-rule state machines ([`Engine`]).
//! - [`rootcause`]: the links several devices share; one alarm per lost link, the
//!   devices' own `comm_lost` its children (`cause`).
//! - [`messages`]: operator texts in Vietnamese (default) and English, one table.
//! - [`site`]: rules naming other devices, from config: the power topology
//!   (`backed_by`) and the site's `[[composite_rules]]`.
//!
//! # Semantics (what an operator can rely on)
//!
//! **Two-level thresholds** (Art. 18.2). An `Above` rule raises *serious* when the value
//! is above `serious`, else *normal* when it is above `normal`; `Below` mirrors it.
//! "Above" is strict: a value equal to the limit does not raise.
//!
//! - *Escalation* normal → serious emits a new `Raised` event at level serious.
//! - *De-escalation* happens only once the value is at or below `serious − hysteresis`
//!   (`Above`; `serious + hysteresis` for `Below`); it emits a `Raised` event at level
//!   normal, since the alarm is still active, now at the lower level. If the value is
//!   then already back inside the normal band, the alarm clears directly instead.
//! - *Clearing* (`Cleared`) happens only once the value is at or below
//!   `normal − hysteresis` (`Above`; at or above `normal + hysteresis` for `Below`).
//!   A noisy signal inside the hysteresis band therefore never chatters.
//!
//! **On-delay.** A raise or an escalation needs its condition to hold continuously for
//! `on_delay_s`; it is checked on every poll and on every [`Engine::tick`], so an alarm
//! is raised at the moment the delay ends, not at the next poll. `on_delay_s = 0`
//! raises on the poll itself. A spike shorter than the delay raises nothing. Clearing
//! and de-escalation have **no delay**: the hysteresis already keeps them from
//! chattering, and operators want to see a recovery at once.
//!
//! **Bad quality.** A sample whose quality is not good is not evaluated: the alarm
//! keeps its state (communication loss has its own rule, `comm_lost`). A run of bad
//! samples does not restart a running on-delay, but the delay cannot complete during
//! it: it completes only on a good sample, or on a tick while the latest sample is good
//! and not older than the device's staleness horizon (the `comm_lost` horizon,
//! `intervals × poll_interval`, or 3 poll intervals without that rule). Two good
//! samples further apart than that horizon do not count as "continuous": the on-delay
//! starts again.
//!
//! **Boolean and state rules** (`Flag`, `EnumNot`) raise at their fixed level after the
//! on-delay and clear as soon as the value leaves the condition.
//!
//! **Named alarms** (`EnumLevel`): an enumeration value carries its own level (a
//! generator controller's `warning` → normal, `shutdown` → serious); a change of value
//! changes the level like an escalation.
//!
//! **Composite rules** read the latest good samples of any device's points; a sample
//! older than its device's staleness horizon is unknown. Three-valued: a false part
//! decides `all`, a true part decides `any`; a term that is unknown counts as its
//! `if_unknown` when it has one, else the outcome may be unknown, and then the alarm
//! keeps its state (no raise, no clear, the on-delay neither restarts nor completes).
//! They are evaluated after every poll and on every tick, raise after their on-delay
//! (pending meanwhile) and clear at once.
//!
//! **A generator start** (`StartToRated`) is `engine_running` false → true in good
//! samples; without a poll at rated voltage and frequency within the time allowed it
//! raises at the deadline (on a tick), and clears on the first poll at rated values.
//!
//! **Rate of change** raises when max − min of the good samples within the window
//! exceeds `max_delta`, and clears when it no longer does; it has no on-delay (the
//! window is its filter) and is evaluated on polls only. The event's `value` is the
//! observed change and its `threshold` the allowed change.
//!
//! **Communication lost.** Per device: no poll with `comm_ok` for
//! `intervals × poll_interval` raises (on a poll or a tick); the next poll with
//! `comm_ok` clears it. Until the device's first good poll, the time is counted from
//! the first poll or tick the engine saw for that device. The event's `value` is the
//! silence in seconds and its `threshold` the horizon in seconds.
//!
//! **Events.** Every event has a UUID v7 `id` built from the event time and the
//! engine's sequence number (no randomness, no clock read), a `seq` strictly increasing
//! per engine, `ts` = the poll's or the tick's time, and a `message` in the configured
//! language that names the device and cites the article. An active alarm's `since` is
//! the time of its first raise (an escalation does not reset it); its `id` is that of
//! the latest `Raised` event.

pub mod defaults;
pub mod derive;
pub mod door;
pub mod engine;
pub mod maintenance;
pub mod messages;
pub mod site;
pub mod spec;

// One alarm per root cause (docs/ALARMS.md).
pub mod rootcause;

pub use defaults::defaults;
pub use derive::{derive, dew_point_c};
pub use engine::Engine;
pub use spec::{Condition, OverrideError, RuleSpec, apply_override};
