//! `node-sim`: the rack-inlet sensor node's core ([`node_core`]) running on the host as
//! a Modbus RTU node on a serial path, normally one end of a `socat` pty pair.
//!
//! Everything between the wire and the registers is the firmware's own code: frames are
//! cut by the 3.5-character silent interval ([`node_core::rtu::Receiver`]), served by
//! [`node_core::node::Node`], the temperature and humidity come through the SHT3x/SHT4x
//! driver ([`node_core::sht::Sht`]) talking to a simulated sensor on a simulated I2C
//! bus (raw words with their CRC-8), and the leak and door levels pass the same
//! debouncers as on the board. Only the pins, the UART and the flash are replaced.
//!
//! Simulated values come from the command line and from a control file re-read on
//! every sample (`key = value` lines, see [`control`]), so a test can change them while
//! the node runs. Settings written over Modbus are kept in `--settings FILE` (the
//! stand-in for the flash sector) when given. The program stops on the first I/O error
//! on the serial path (the other end hung up) with status 1; bad arguments give
//! status 2.
//!
//! A pty ignores the baud rate: the silent interval is still computed from the
//! configured one, as on the wire.

mod control;
mod sensor;
mod store;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use node_core::debounce::Debounced;
use node_core::node::{Handled, Node};
use node_core::rtu::Receiver;
use node_core::settings::{self, Settings, SettingsStore};
use node_core::sht::{self, Sht};

use crate::control::Inputs;
use crate::sensor::SimSensor;

const USAGE: &str = "\
usage: node-sim --port PATH [options]

Runs the rack-inlet sensor node's firmware core as a Modbus RTU node on PATH (a pty or
a serial device already set up with stty).

options:
  --port PATH          serial path to serve (required)
  --unit N             unit id when no settings are stored (1-247, default 1)
  --baud N             baud rate when no settings are stored (default 19200)
  --settings FILE      keep settings written over Modbus in FILE (default: in memory)
  --control FILE       re-read simulated values from FILE on every sample
  --temperature C      simulated temperature, °C (default 22.0)
  --humidity PCT       simulated relative humidity, % (default 45.0)
  --leak               the leak rope starts wet
  --door               the door starts open
  --sensor MODEL       sht4x (default), sht3x, none, crc_error
  --sample-ms N        sensor and input sampling period (default 100)
  --debounce-ms N      leak and door debounce time (default 50)
  --verbose            log every frame
  --help               this text

control file: `key = value` lines, `#` comments; keys temperature_c, humidity_pct,
leak, door (0/1/true/false), sensor (as --sensor).
";

/// Parsed command line.
#[derive(Debug)]
struct Args {
    port: PathBuf,
    defaults: Settings,
    settings: Option<PathBuf>,
    control: Option<PathBuf>,
    inputs: Inputs,
    sample: Duration,
    debounce_ms: u64,
    verbose: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut port = None;
    let mut defaults = Settings::default();
    let mut a = Args {
        port: PathBuf::new(),
        defaults,
        settings: None,
        control: None,
        inputs: Inputs::default(),
        sample: Duration::from_millis(100),
        debounce_ms: 50,
        verbose: false,
    };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--port" => port = Some(PathBuf::from(value("--port")?)),
            "--unit" => defaults.unit_id = num(&flag, &value(&flag)?)?,
            "--baud" => defaults.baud = num(&flag, &value(&flag)?)?,
            "--settings" => a.settings = Some(PathBuf::from(value(&flag)?)),
            "--control" => a.control = Some(PathBuf::from(value(&flag)?)),
            "--temperature" => a.inputs.temperature_c = num(&flag, &value(&flag)?)?,
            "--humidity" => a.inputs.humidity_pct = num(&flag, &value(&flag)?)?,
            "--leak" => a.inputs.leak = true,
            "--door" => a.inputs.door = true,
            "--sensor" => {
                a.inputs.sensor =
                    control::parse_sensor(&value(&flag)?).map_err(|e| format!("--sensor: {e}"))?
            }
            "--sample-ms" => a.sample = Duration::from_millis(num(&flag, &value(&flag)?)?),
            "--debounce-ms" => a.debounce_ms = num(&flag, &value(&flag)?)?,
            "--verbose" | "-v" => a.verbose = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    a.port = port.ok_or("--port PATH is required")?;
    defaults.validate().map_err(|e| {
        format!(
            "--unit/--baud: {e:?} (unit 1-247, baud one of {:?})",
            settings::BAUDS
        )
    })?;
    a.defaults = defaults;
    Ok(Some(a))
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("node-sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.settings.clone() {
        Some(path) => run(args, store::FileStore::new(path)),
        None => run(args, settings::MemStore::default()),
    }
}

fn run<S: SettingsStore>(args: Args, store: S) -> ExitCode {
    let port = match OpenOptions::new().read(true).write(true).open(&args.port) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("node-sim: cannot open {}: {e}", args.port.display());
            return ExitCode::from(1);
        }
    };
    let mut writer = match port.try_clone() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("node-sim: {}: {e}", args.port.display());
            return ExitCode::from(1);
        }
    };
    let start = Instant::now();
    let us = move |t: Instant| t.duration_since(start).as_micros() as u64;

    // Bytes with their arrival time, from a reader thread: the main loop waits on the
    // channel with a timeout, which is how the silent interval is measured.
    let (tx, chunks) = mpsc::channel::<(Vec<u8>, Instant)>();
    let path = args.port.clone();
    std::thread::spawn(move || {
        let mut port = port;
        let mut buf = [0u8; 512];
        loop {
            match port.read(&mut buf) {
                Ok(0) => {
                    eprintln!("node-sim: {}: end of file", path.display());
                    break;
                }
                Ok(n) => {
                    if tx.send((buf[..n].to_vec(), Instant::now())).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("node-sim: {}: {e}", path.display());
                    break;
                }
            }
        }
    });

    let mut node = Node::new(store, args.defaults);
    let mut rx = Receiver::new(node.settings().baud);
    let mut inputs = args.inputs.clone();
    let mut sensor = Sht::new(
        SimSensor::new(&inputs),
        inputs.model(),
        sht::DEFAULT_ADDRESS,
    );
    let mut leak = Debounced::new(inputs.leak, args.debounce_ms);
    let mut door = Debounced::new(inputs.door, args.debounce_ms);
    node.set_leak(inputs.leak);
    node.set_door(inputs.door);
    let mut last_control_error = String::new();
    let mut next_sample = Instant::now();
    let mut out = [0u8; 256];

    let s = node.settings();
    eprintln!(
        "node-sim: serving unit {} on {} ({} baud, parity code {}, t3.5 {} us)",
        s.unit_id,
        args.port.display(),
        s.baud,
        s.parity.code(),
        rx.t35()
    );

    loop {
        // Sample the simulated sensor and inputs.
        let now = Instant::now();
        if now >= next_sample {
            next_sample = now + args.sample;
            if let Some(path) = &args.control {
                match control::read_file(path, &inputs) {
                    Ok(i) => {
                        inputs = i;
                        last_control_error.clear();
                    }
                    Err(e) if e != last_control_error => {
                        eprintln!("node-sim: {e} (keeping the previous values)");
                        last_control_error = e;
                    }
                    Err(_) => {}
                }
            }
            sensor.set_model(inputs.model());
            sensor_i2c(&mut sensor).set(&inputs);
            let reading = sensor.start().and_then(|()| sensor.read());
            let fitted = (!matches!(inputs.sensor, control::Sensor::None)).then(|| inputs.model());
            node.set_climate(fitted, reading);
            let ms = us(now) / 1000;
            if let Some(v) = leak.update(inputs.leak, ms) {
                node.set_leak(v);
                eprintln!("node-sim: leak {}", if v { "wet" } else { "dry" });
            }
            if let Some(v) = door.update(inputs.door, ms) {
                node.set_door(v);
                eprintln!("node-sim: door {}", if v { "open" } else { "closed" });
            }
            node.tick(ms);
        }

        let wait_until = match rx.deadline_us() {
            Some(d) => (start + Duration::from_micros(d)).min(next_sample),
            None => next_sample,
        };
        let timeout = wait_until.saturating_duration_since(Instant::now());
        let got = match chunks.recv_timeout(timeout) {
            Ok(c) => Some(c),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                eprintln!("node-sim: serial path closed; stopping");
                return ExitCode::from(1);
            }
        };
        // A frame is complete when the next bytes come t3.5 or more after it, or when
        // the wait for them ran out.
        let at = got.as_ref().map_or_else(Instant::now, |(_, t)| *t);
        if let Some(frame) = rx.poll(us(at)) {
            if args.verbose {
                eprintln!("node-sim: rx {}", hex(frame));
            }
            match node.handle(frame, us(at) / 1000, &mut out) {
                Handled::Reply(n) => {
                    if args.verbose {
                        eprintln!("node-sim: tx {}", hex(&out[..n]));
                    }
                    if let Err(e) = writer.write_all(&out[..n]).and_then(|()| writer.flush()) {
                        eprintln!("node-sim: {}: {e}", args.port.display());
                        return ExitCode::from(1);
                    }
                }
                Handled::Silent(why) => {
                    if args.verbose {
                        eprintln!("node-sim: no reply ({why:?})");
                    }
                }
            }
            if node.line_changed() {
                let s = node.settings();
                rx.set_baud(s.baud);
                eprintln!(
                    "node-sim: settings stored: unit {} baud {} parity code {} (a pty ignores the line speed)",
                    s.unit_id,
                    s.baud,
                    s.parity.code()
                );
            }
        }
        if let Some((bytes, t)) = got {
            for b in bytes {
                rx.push(b, us(t));
            }
        }
    }
}

fn sensor_i2c(s: &mut Sht<SimSensor>) -> &mut SimSensor {
    s.bus_mut()
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let a = args(&[
            "--port", "/tmp/x", "--unit", "9", "--baud", "9600", "--leak",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.defaults.unit_id, 9);
        assert_eq!(a.defaults.baud, 9600);
        assert!(a.inputs.leak && !a.inputs.door);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--unit", "3"]).unwrap_err().contains("--port"));
        assert!(
            args(&["--port", "p", "--unit", "0"])
                .unwrap_err()
                .contains("unit 1-247")
        );
        assert!(
            args(&["--port", "p", "--baud", "14400"])
                .unwrap_err()
                .contains("baud")
        );
        assert!(
            args(&["--port", "p", "--bogus"])
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(
            args(&["--port", "p", "--unit", "x"])
                .unwrap_err()
                .contains("not a valid number")
        );
        assert!(args(&["--port"]).unwrap_err().contains("needs a value"));
    }
}
