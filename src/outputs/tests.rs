//! The output task against the fake GPIO backend (this CI kernel has no GPIO
//! simulator): a siren line follows the listed alarms, silence and acknowledgement
//! stop it, a stuck line is a counted read-back failure, an orderly stop switches it
//! off. The Modbus coil is tested against pymodbus in `tests/it/gpio.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::model::{Level, Timestamp};
use crate::sources::gpio::fake::FakeGpio;
use crate::sources::gpio::{Bias, LineAt, LineSpec};
use crate::state::Live;

fn siren(offset: u32, active_low: bool) -> OutputConfig {
    OutputConfig {
        id: "siren1".into(),
        name: "siren1".into(),
        drive: Drive::Siren,
        level: Level::Serious,
        kinds: vec![Kind::FirePanel],
        rooms: Vec::new(),
        rules: Vec::new(),
        on_stop: OnStop::Off,
        driver: Driver::Gpio(LineSpec {
            at: LineAt::Offset {
                chip: "gpiochip0".into(),
                offset,
            },
            active_low,
            bias: Bias::AsIs,
        }),
    }
}

fn fire(no: u64, state: &'static str) -> ActiveAlarm {
    ActiveAlarm {
        id: String::new(),
        key: "facp1/fire_alarm".into(),
        device: Arc::from("facp1"),
        kind: Kind::FirePanel,
        point: "fire_alarm",
        rule: Arc::from("fire_alarm"),
        level: Level::Serious,
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

fn set_alarms(shared: &Shared, alarms: Vec<ActiveAlarm>) {
    shared.write().alarms = alarms;
    let _ = shared.updates.send(crate::state::Update::Alarms);
}

/// Wait (at most 3 s) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn chip() -> FakeGpio {
    let g = FakeGpio::new();
    g.add_chip("gpiochip0", &["A", "B", "C", "D"]);
    g
}

#[tokio::test]
async fn a_gpio_siren_follows_alarms_silence_and_acknowledgement() {
    let g = chip();
    // An active-low relay board: the siren is on while the line is low.
    let h = Handle::with(vec![siren(2, true)], HashMap::new());
    let shared = Shared::new(Live::default());
    let task = h.spawn(shared.clone(), Arc::new(g.clone())).unwrap();
    until("siren requested, off (line high)", || {
        g.output_level("gpiochip0", 2) == Some(true)
    })
    .await;

    set_alarms(&shared, vec![fire(7, "raised")]);
    until("siren on (line low)", || {
        g.output_level("gpiochip0", 2) == Some(false)
    })
    .await;
    assert_eq!(h.status()[0].held, Some(true));

    assert_eq!(
        h.silence(&[fire(7, "raised")], "all"),
        Ok("1 siren silenced".into())
    );
    until("silenced", || g.output_level("gpiochip0", 2) == Some(true)).await;

    // A second fire alarm instance sounds it again; acknowledging stops it.
    set_alarms(&shared, vec![fire(7, "raised"), fire(8, "raised")]);
    until("new alarm sounds", || {
        g.output_level("gpiochip0", 2) == Some(false)
    })
    .await;
    set_alarms(&shared, vec![fire(7, "raised"), fire(8, "acked")]);
    until("acknowledged", || {
        g.output_level("gpiochip0", 2) == Some(true)
    })
    .await;
    assert_eq!(h.status()[0].failures, 0);
    let s = h.samples();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].value, Some(Value::Bool(true)), "outputs_ok");

    // Orderly stop with the siren on: switched off, line released.
    set_alarms(&shared, vec![fire(9, "raised")]);
    until("on again", || g.output_level("gpiochip0", 2) == Some(false)).await;
    h.stop(Duration::from_secs(2)).await;
    task.await.unwrap();
    assert_eq!(g.output_level("gpiochip0", 2), None, "released");
    assert_eq!(g.held("gpiochip0", 2), None);
}

#[tokio::test]
async fn a_stuck_or_missing_line_is_counted_alarmed_and_retried() {
    let g = chip();
    g.set_stuck("gpiochip0", 1, Some(false));
    let h = Handle::with(vec![siren(1, false)], HashMap::new());
    let shared = Shared::new(Live::default());
    let _task = h.spawn(shared.clone(), Arc::new(g.clone())).unwrap();
    set_alarms(&shared, vec![fire(1, "raised")]);
    until("read-back failure counted", || h.status()[0].failures >= 1).await;
    let st = &h.status()[0];
    assert!(!st.ok);
    assert_eq!(st.error.as_deref(), Some("wrote on, read back off"));
    assert_eq!(
        h.samples()[0].value,
        Some(Value::Bool(false)),
        "outputs_ok false"
    );
    // Retried every second until the pad follows again.
    until("retried", || h.status()[0].failures >= 2).await;
    g.set_stuck("gpiochip0", 1, None);
    until("holds again", || h.status()[0].ok).await;
    assert_eq!(g.output_level("gpiochip0", 1), Some(true));
    assert_eq!(h.samples()[0].value, Some(Value::Bool(true)));

    // A line that does not exist: a write failure with the backend's reason.
    let mut missing = siren(0, false);
    missing.driver = Driver::Gpio(LineSpec {
        at: LineAt::Name("GPIO99".into()),
        active_low: false,
        bias: Bias::AsIs,
    });
    let h2 = Handle::with(vec![missing], HashMap::new());
    let _t2 = h2
        .spawn(Shared::new(Live::default()), Arc::new(g.clone()))
        .unwrap();
    until("write failure", || h2.status()[0].failures >= 1).await;
    assert_eq!(
        h2.status()[0].error.as_deref(),
        Some("GPIO: no GPIO line named \"GPIO99\" on any chip")
    );
    assert!(
        crate::metrics::count(
            &crate::metrics::get().output_failures,
            &[("output", "siren1"), ("reason", "write")]
        ) >= 1
    );
}

#[test]
fn outputs_are_validated_with_clear_errors() {
    let text = |extra: &str| {
        format!(
            r#"
[site]
name = "tv"
[[rooms]]
id = "server1"
[[devices]]
id = "facp1"
room = "server1"
kind = "fire_panel"
profile = "gpio-fire-panel"
[devices.gpio.lines]
fire_alarm = {{ name = "GPIO17" }}
{extra}"#
        )
    };
    let ok = crate::config::parse(
        &text(
            "[[outputs]]\nid = \"siren1\"\ndrive = \"siren\"\nkinds = [\"fire_panel\"]\nrules = [\"fire_alarm\"]\n[outputs.modbus_tcp]\nhost = \"127.0.0.1\"\ncoil = 16\n",
        ),
        "site.toml",
        std::path::Path::new("/"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.outputs.len(), 1);
    assert_eq!(
        ok.outputs[0].driver,
        Driver::Coil {
            addr: "127.0.0.1:502".into(),
            unit: 1,
            coil: 16,
            timeout: Duration::from_secs(1)
        }
    );
    let err = |extra: &str| {
        crate::config::parse(&text(extra), "site.toml", std::path::Path::new("/"))
            .unwrap_err()
            .to_string()
    };
    let e = err(
        "[[outputs]]\nid = \"s\"\ndrive = \"horn\"\nrooms = [\"lab\"]\n[outputs.gpio]\nline = { name = \"GPIO17\" }\n",
    );
    assert!(
        e.contains("outputs[0] (s) .drive: unknown drive \"horn\": use siren or beacon"),
        "{e}"
    );
    assert!(
        e.contains("outputs[0] (s) .rooms: unknown room \"lab\""),
        "{e}"
    );
    assert!(
        e.contains("outputs[0] (s) .gpio.line: line GPIO17 is already used by facp1 (fire_alarm)"),
        "{e}"
    );
    let e = err("[[outputs]]\nid = \"s\"\ndrive = \"beacon\"\n");
    assert!(e.contains("site.toml:14:6: outputs[0] (s) .id: no driver: add [outputs.gpio] or [outputs.modbus_tcp]"), "{e}");
}
