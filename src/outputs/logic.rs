//! Which outputs should be on, from the listed alarms and the silences: pure, no
//! clock, no I/O.
//!
//! - A **siren** is on while some alarm that matches it (level at or above its
//!   `level`, and its kind, room and rule filters) is *active and unacknowledged*
//!   (state `raised`: the condition holds, nobody acknowledged, not shelved) and not
//!   silenced for this siren.
//! - A **beacon** is on while some matching alarm is *listed* and not shelved (raised,
//!   acknowledged, or serious, cleared and not acknowledged yet).
//! - **Silence** (`silence` command) switches a siren off for the alarm instances
//!   driving it at that moment: an alarm instance raised later (a new `no`) sounds it
//!   again. Acknowledging an alarm silences it too (it is no longer `raised`).
//!   Silences of instances no longer listed are forgotten.

use std::collections::{BTreeSet, HashMap};

use super::config::{Drive, OutputConfig};
use crate::state::ActiveAlarm;

/// Whether `alarm` (of a device in `room`) drives `o`, whatever its state.
pub fn matches(o: &OutputConfig, a: &ActiveAlarm, room: Option<&str>) -> bool {
    a.level >= o.level
        && (o.kinds.is_empty() || o.kinds.contains(&a.kind))
        && (o.rooms.is_empty() || room.is_some_and(|r| o.rooms.iter().any(|x| x == r)))
        && (o.rules.is_empty() || o.rules.iter().any(|x| **x == *a.rule))
}

/// The alarm instances silenced per siren (by output index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Silence {
    by_output: HashMap<usize, BTreeSet<u64>>,
}

/// The alarm instances that sound output `i` now.
fn sounding<'a>(
    o: &'a OutputConfig,
    alarms: &'a [ActiveAlarm],
    room: &'a dyn Fn(&str) -> Option<String>,
) -> impl Iterator<Item = &'a ActiveAlarm> + 'a {
    alarms.iter().filter(move |a| {
        let state_ok = match o.drive {
            Drive::Siren => a.state == "raised",
            Drive::Beacon => a.state != "shelved",
        };
        state_ok && matches(o, a, room(&a.device).as_deref())
    })
}

impl Silence {
    /// Silence the sirens `target` names (`all`, empty, or an output id) for the alarm
    /// instances sounding them now. Returns how many sirens were silenced, or why not.
    pub fn silence(
        &mut self,
        outputs: &[OutputConfig],
        alarms: &[ActiveAlarm],
        room: &dyn Fn(&str) -> Option<String>,
        target: &str,
    ) -> Result<usize, String> {
        let all = target.is_empty() || target == "all";
        let chosen: Vec<usize> = outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| o.drive == Drive::Siren && (all || o.id == target))
            .map(|(i, _)| i)
            .collect();
        if chosen.is_empty() {
            return Err(if all {
                "no siren is configured".to_string()
            } else if outputs.iter().any(|o| o.id == target) {
                format!("output {target:?} is a beacon: it goes off when its alarms leave the list")
            } else {
                format!("no output {target:?}")
            });
        }
        let mut n = 0;
        for i in chosen {
            let nos: Vec<u64> = sounding(&outputs[i], alarms, room).map(|a| a.no).collect();
            if !nos.is_empty() {
                n += 1;
            }
            self.by_output.entry(i).or_default().extend(nos);
        }
        Ok(n)
    }

    /// Forget silences of instances no longer listed.
    fn prune(&mut self, alarms: &[ActiveAlarm]) {
        for set in self.by_output.values_mut() {
            set.retain(|no| alarms.iter().any(|a| a.no == *no));
        }
    }
}

/// The state every output should have, in config order.
pub fn desired(
    outputs: &[OutputConfig],
    alarms: &[ActiveAlarm],
    room: &dyn Fn(&str) -> Option<String>,
    silence: &mut Silence,
) -> Vec<bool> {
    silence.prune(alarms);
    outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let silenced = silence.by_output.get(&i);
            sounding(o, alarms, room).any(|a| !silenced.is_some_and(|s| s.contains(&a.no)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Level, Timestamp};
    use crate::outputs::config::{Driver, OnStop};
    use std::sync::Arc;

    fn output(id: &str, drive: Drive, kinds: &[Kind]) -> OutputConfig {
        OutputConfig {
            id: id.into(),
            name: id.into(),
            drive,
            level: Level::Serious,
            kinds: kinds.to_vec(),
            rooms: Vec::new(),
            rules: Vec::new(),
            on_stop: OnStop::Off,
            driver: Driver::Coil {
                addr: "127.0.0.1:502".into(),
                unit: 1,
                coil: 16,
                timeout: std::time::Duration::from_secs(1),
            },
        }
    }

    fn alarm(no: u64, device: &str, kind: Kind, level: Level, state: &'static str) -> ActiveAlarm {
        ActiveAlarm {
            id: String::new(),
            key: format!("{device}/r"),
            device: Arc::from(device),
            kind,
            point: "p",
            rule: Arc::from("r"),
            level,
            state,
            since: Timestamp(0),
            value: None,
            threshold: None,
            message: String::new(),
            no,
            acked_by: None,
            acked_at: None,
            shelved_until: None,
            shelved_by: None,
            cause: None,
        }
    }

    fn room(d: &str) -> Option<String> {
        Some(
            if d.starts_with("ups") {
                "power"
            } else {
                "server1"
            }
            .to_string(),
        )
    }

    /// Outputs: a fire/leak siren, a beacon for every serious alarm, a siren for the
    /// power room only.
    fn outputs() -> Vec<OutputConfig> {
        let mut power = output("siren-power", Drive::Siren, &[]);
        power.rooms = vec!["power".into()];
        vec![
            output("siren", Drive::Siren, &[Kind::FirePanel, Kind::Leak]),
            output("beacon", Drive::Beacon, &[]),
            power,
        ]
    }

    #[test]
    fn the_table_of_alarms_and_outputs() {
        use Level::*;
        let cases: Vec<(&str, Vec<ActiveAlarm>, [bool; 3])> = vec![
            ("nothing listed", vec![], [false, false, false]),
            (
                "a serious fire alarm",
                vec![alarm(1, "facp1", Kind::FirePanel, Serious, "raised")],
                [true, true, false],
            ),
            (
                "acknowledged: siren off, beacon on",
                vec![alarm(1, "facp1", Kind::FirePanel, Serious, "acked")],
                [false, true, false],
            ),
            (
                "cleared, not acknowledged: beacon only",
                vec![alarm(1, "facp1", Kind::FirePanel, Serious, "cleared")],
                [false, true, false],
            ),
            (
                "shelved: neither",
                vec![alarm(1, "facp1", Kind::FirePanel, Serious, "shelved")],
                [false, false, false],
            ),
            (
                "a normal leak alarm: below the level",
                vec![alarm(2, "leak1", Kind::Leak, Normal, "raised")],
                [false, false, false],
            ),
            (
                "a serious UPS alarm: beacon and the power siren",
                vec![alarm(3, "ups1", Kind::Ups, Serious, "raised")],
                [false, true, true],
            ),
        ];
        for (name, alarms, want) in cases {
            let got = desired(&outputs(), &alarms, &room, &mut Silence::default());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn silence_stops_the_sirens_until_a_new_alarm() {
        let outs = outputs();
        let mut s = Silence::default();
        let mut alarms = vec![alarm(1, "facp1", Kind::FirePanel, Level::Serious, "raised")];
        assert_eq!(s.silence(&outs, &alarms, &room, "all"), Ok(1));
        assert_eq!(
            desired(&outs, &alarms, &room, &mut s),
            [false, true, false],
            "silenced; the beacon stays"
        );
        // A new instance (a leak) sounds the siren again.
        alarms.push(alarm(2, "leak1", Kind::Leak, Level::Serious, "raised"));
        assert_eq!(desired(&outs, &alarms, &room, &mut s), [true, true, false]);
        assert_eq!(s.silence(&outs, &alarms, &room, "siren"), Ok(1));
        assert_eq!(desired(&outs, &alarms, &room, &mut s), [false, true, false]);
        // The fire alarm clears and leaves the list; raised again, it is a new number.
        alarms.retain(|a| a.no != 1);
        assert_eq!(desired(&outs, &alarms, &room, &mut s), [false, true, false]);
        alarms.push(alarm(3, "facp1", Kind::FirePanel, Level::Serious, "raised"));
        assert_eq!(desired(&outs, &alarms, &room, &mut s), [true, true, false]);
        assert_eq!(
            s.silence(&outs, &alarms, &room, "beacon").unwrap_err(),
            "output \"beacon\" is a beacon: it goes off when its alarms leave the list"
        );
        assert_eq!(
            s.silence(&outs, &alarms, &room, "horn").unwrap_err(),
            "no output \"horn\""
        );
        assert_eq!(
            s.silence(&[], &alarms, &room, "all").unwrap_err(),
            "no siren is configured"
        );
    }
}
