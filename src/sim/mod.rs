//! A Modbus TCP device simulator for the demo and the benchmarks (never a test peer for
//! our own client: integration tests use pymodbus).
//!
//! One listener serves any number of unit ids. Each unit is a [`SimDevice`]: a profile
//! and a set of value generators ([`Gen`]), one per mapped point. Canonical values are
//! turned into registers through the profile ([`crate::sources::modbus::decode::encode`]),
//! so the simulator speaks any profile, and a gateway polling it must decode the same
//! values back.
//!
//! Register image: per unit and table, a dense array from the lowest to the highest
//! mapped address (unmapped holes in between read as 0, as most devices do; addresses
//! outside answer exception 02). Generators are evaluated lazily when a request arrives
//! and the image is older than [`REFRESH`], so an idle simulator costs nothing and a busy
//! one does one small batch of arithmetic per unit per refresh, under one mutex per unit.
//! A request costs one `Vec` for the reply (tokio-modbus owns the response).
//!
//! Timing record, for benchmarks that measure alarm latency from "the read that first
//! returned the change": every register keeps when its value last changed, when it was
//! last read, and when it was first read after that change ([`Values::times`]).
//!
//! Poll log, for benchmarks that count missed or late polls: once switched on
//! ([`Values::record_polls`]), every read that starts at the lowest mapped address of
//! the device's first table (in [`Table::ALL`] order: holding, input, coil, discrete)
//! is taken as the start of one poll cycle and its time is kept, at most
//! [`POLL_LOG_MAX`] of them (oldest dropped), until [`Values::take_polls`] hands them
//! over. Off by default, so the demo's memory stays flat however long it runs.
//!
//! Demo behaviour ([`Gen::Wander`]): a value drifts slowly around a base (sum of two
//! sines, bounded by `spread`) and, with an [`Excursion`], periodically ramps to a peak,
//! holds, and comes back, e.g. a rack inlet at 23 °C that climbs above 27 °C for about
//! 90 s every five minutes, so the demo shows an alarm raise and clear.

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use crate::model::{Timestamp, Value};
use crate::points::PointType;
use crate::sources::modbus::decode::{self, Encoded};
use crate::sources::modbus::plan::{MAX_READ_BITS, MAX_READ_REGISTERS};
use crate::sources::modbus::profile::{PointMap, Profile, Table};

/// Generators are re-evaluated when the register image is older than this.
pub const REFRESH: Duration = Duration::from_millis(100);

/// Most poll times kept per device between two [`Values::take_polls`] (about an hour of
/// one poll a second).
pub const POLL_LOG_MAX: usize = 4096;

/// Errors of the simulator's control API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The profile does not map the point.
    #[error("profile {profile}: no point `{point}`")]
    UnknownPoint {
        /// Profile id.
        profile: String,
        /// Point name asked for.
        point: String,
    },
    /// The value cannot be encoded for the point.
    #[error(transparent)]
    Encode(#[from] decode::EncodeError),
}

/// A slow drift with an optional periodic excursion.
#[derive(Debug, Clone, PartialEq)]
pub struct Wander {
    /// Centre value.
    pub base: f64,
    /// Largest distance from `base` the drift reaches.
    pub spread: f64,
    /// Period of the main drift.
    pub period: Duration,
    /// Periodic excursion to a peak, if any.
    pub excursion: Option<Excursion>,
}

/// A periodic excursion: every `every`, the value ramps to `peak`, holds, and ramps
/// back; the whole excursion lasts `lasts` (ramps are 10 % of it each, at most 15 s).
#[derive(Debug, Clone, PartialEq)]
pub struct Excursion {
    /// Value at the top of the excursion.
    pub peak: f64,
    /// Period between excursion starts.
    pub every: Duration,
    /// Duration of one excursion, ramps included.
    pub lasts: Duration,
}

/// How a point's value is produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Gen {
    /// A constant value (also what [`Values::set_value`] installs).
    Fixed(Value),
    /// A drifting number.
    Wander(Wander),
}

impl Gen {
    /// A rack-inlet temperature for the demo: around 23 °C (±0.6), and every five
    /// minutes above 27 °C (peak 28.5 °C) for about 90 s.
    pub fn climate_excursion() -> Gen {
        Gen::Wander(Wander {
            base: 23.0,
            spread: 0.6,
            period: Duration::from_secs(120),
            excursion: Some(Excursion {
                peak: 28.5,
                every: Duration::from_secs(300),
                lasts: Duration::from_secs(120),
            }),
        })
    }

    /// The value at `t` seconds since the simulator started.
    pub fn value_at(&self, t: f64) -> Value {
        match self {
            Gen::Fixed(v) => v.clone(),
            Gen::Wander(w) => Value::Number(w.at(t)),
        }
    }
}

impl Wander {
    fn at(&self, t: f64) -> f64 {
        let p = self.period.as_secs_f64().max(1.0);
        let drift = 0.6 * (TAU * t / p).sin() + 0.4 * (TAU * t / (p * 0.37) + 1.3).sin();
        let mut v = self.base + self.spread * drift;
        if let Some(x) = &self.excursion {
            let every = x.every.as_secs_f64().max(1.0);
            let lasts = x.lasts.as_secs_f64().min(every);
            let ramp = (lasts * 0.1).clamp(1e-3, 15.0);
            // The excursion occupies the end of each cycle, so a fresh demo shows normal
            // readings first.
            let c = t.rem_euclid(every) - (every - lasts);
            if c >= 0.0 {
                let k = if c < ramp {
                    c / ramp
                } else if c > lasts - ramp {
                    (lasts - c) / ramp
                } else {
                    1.0
                };
                v += (x.peak - v) * k.clamp(0.0, 1.0);
            }
        }
        v
    }
}

/// When a point's registers changed and were read, per [`Values::times`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointTimes {
    /// When the registers last took a new value.
    pub changed: Timestamp,
    /// When a read first returned that value, if it has been read since.
    pub first_read_after_change: Option<Timestamp>,
    /// When the registers were last read.
    pub last_read: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    value: u16,
    /// Milliseconds since the epoch; 0 = never.
    changed_ms: i64,
    last_read_ms: i64,
    first_read_ms: i64,
}

#[derive(Debug, Default)]
struct Area {
    start: u16,
    slots: Vec<Slot>,
}

impl Area {
    fn for_table(profile: &Profile, table: Table) -> Area {
        let mut lo = u32::MAX;
        let mut hi = 0u32;
        for p in profile.points.iter().filter(|p| p.table == table) {
            lo = lo.min(u32::from(p.address));
            hi = hi.max(u32::from(p.address) + u32::from(p.width()));
        }
        if lo == u32::MAX {
            return Area::default();
        }
        Area {
            start: lo as u16,
            slots: vec![Slot::default(); (hi - lo) as usize],
        }
    }

    fn slot_mut(&mut self, addr: u16) -> Option<&mut Slot> {
        let i = usize::from(addr.checked_sub(self.start)?);
        self.slots.get_mut(i)
    }

    fn set(&mut self, addr: u16, value: u16, now_ms: i64) {
        if let Some(s) = self.slot_mut(addr)
            && (s.value != value || s.changed_ms == 0)
        {
            s.value = value;
            s.changed_ms = now_ms;
            s.first_read_ms = 0;
        }
    }

    fn range(&self, addr: u16, count: u16) -> Result<std::ops::Range<usize>, ExceptionCode> {
        let first = usize::from(
            addr.checked_sub(self.start)
                .ok_or(ExceptionCode::IllegalDataAddress)?,
        );
        let end = first + usize::from(count);
        if end > self.slots.len() {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(first..end)
    }

    fn read_into<T>(
        &mut self,
        addr: u16,
        count: u16,
        now_ms: i64,
        f: impl Fn(u16) -> T,
    ) -> Result<Vec<T>, ExceptionCode> {
        let r = self.range(addr, count)?;
        let mut out = Vec::with_capacity(r.len());
        for s in &mut self.slots[r] {
            s.last_read_ms = now_ms;
            if s.first_read_ms == 0 {
                s.first_read_ms = now_ms;
            }
            out.push(f(s.value));
        }
        Ok(out)
    }
}

fn table_index(t: Table) -> usize {
    match t {
        Table::Holding => 0,
        Table::Input => 1,
        Table::Coil => 2,
        Table::Discrete => 3,
    }
}

#[derive(Debug)]
struct Inner {
    gens: Vec<Gen>,
    current: Vec<Option<Value>>,
    areas: [Area; 4],
    refreshed: Option<Instant>,
    /// Start times of poll cycles (ms since the epoch), while recording.
    polls: Option<VecDeque<i64>>,
}

/// The live values of one simulated device: generators, register image, timing record.
/// Shared between the server and whoever steers the simulation.
#[derive(Debug)]
pub struct Values {
    profile: Arc<Profile>,
    epoch: Instant,
    phase_s: f64,
    inner: Mutex<Inner>,
    /// Switched off: the unit answers nothing but exception 0x0B, as a Modbus TCP
    /// gateway answers for a serial device that went silent.
    off: std::sync::atomic::AtomicBool,
}

impl Values {
    fn new(profile: Arc<Profile>, phase_s: f64) -> Values {
        let gens = profile.points.iter().map(default_gen).collect::<Vec<_>>();
        let areas = Table::ALL.map(|t| Area::for_table(&profile, t));
        let n = gens.len();
        let values = Values {
            profile,
            epoch: Instant::now(),
            phase_s,
            inner: Mutex::new(Inner {
                gens,
                current: vec![None; n],
                areas,
                refreshed: None,
                polls: None,
            }),
            off: std::sync::atomic::AtomicBool::new(false),
        };
        {
            let mut inner = values.lock();
            values.refresh(&mut inner, Instant::now(), Timestamp::now().millis());
        }
        values
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the image inconsistent in a way
        // that matters for a simulator: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn index(&self, point: &str) -> Result<usize, SimError> {
        self.profile
            .points
            .iter()
            .position(|p| p.point.name == point)
            .ok_or_else(|| SimError::UnknownPoint {
                profile: self.profile.id.clone(),
                point: point.to_string(),
            })
    }

    /// Install a generator for a point; takes effect immediately.
    pub fn set(&self, point: &str, generator: Gen) -> Result<(), SimError> {
        let i = self.index(point)?;
        let map = &self.profile.points[i];
        let t = self.epoch.elapsed().as_secs_f64() + self.phase_s;
        // Check the generator can be encoded before installing it.
        decode::encode(map, &generator.value_at(t))?;
        let mut inner = self.lock();
        inner.gens[i] = generator;
        self.apply(&mut inner, i, t, Timestamp::now().millis());
        Ok(())
    }

    /// Switch the device off (`false`: every request gets exception 0x0B "gateway
    /// target device failed to respond") or back on; takes effect immediately.
    pub fn set_answering(&self, on: bool) {
        self.off.store(!on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Hold a point at a constant value; takes effect immediately.
    pub fn set_value(&self, point: &str, value: Value) -> Result<(), SimError> {
        self.set(point, Gen::Fixed(value))
    }

    /// The value a point's registers hold now (as last generated).
    pub fn current(&self, point: &str) -> Option<Value> {
        let i = self.index(point).ok()?;
        self.lock().current[i].clone()
    }

    /// When a point's registers last changed and were read.
    pub fn times(&self, point: &str) -> Option<PointTimes> {
        let i = self.index(point).ok()?;
        let map = &self.profile.points[i];
        let inner = self.lock();
        let area = &inner.areas[table_index(map.table)];
        let first = usize::from(map.address.checked_sub(area.start)?);
        let slots = area.slots.get(first..first + usize::from(map.width()))?;
        let changed = slots.iter().map(|s| s.changed_ms).max()?;
        let first_read = if slots.iter().all(|s| s.first_read_ms != 0) {
            Some(Timestamp(
                slots.iter().map(|s| s.first_read_ms).max().unwrap_or(0),
            ))
        } else {
            None
        };
        let last_read = slots
            .iter()
            .map(|s| s.last_read_ms)
            .max()
            .filter(|v| *v != 0)
            .map(Timestamp);
        Some(PointTimes {
            changed: Timestamp(changed),
            first_read_after_change: first_read,
            last_read,
        })
    }

    /// Start (`true`) or stop keeping the poll log (see the module docs). Starting
    /// clears it.
    pub fn record_polls(&self, on: bool) {
        self.lock().polls = on.then(VecDeque::new);
    }

    /// The poll times logged since the last call, oldest first; empty when the log is
    /// off. At most [`POLL_LOG_MAX`]: older ones were dropped.
    pub fn take_polls(&self) -> Vec<Timestamp> {
        match self.lock().polls.as_mut() {
            Some(log) => log.drain(..).map(Timestamp).collect(),
            None => Vec::new(),
        }
    }

    /// Re-evaluate the generators if the image is older than [`REFRESH`].
    fn refresh(&self, inner: &mut Inner, now: Instant, now_ms: i64) {
        if inner
            .refreshed
            .is_some_and(|r| now.duration_since(r) < REFRESH)
        {
            return;
        }
        let first = inner.refreshed.is_none();
        inner.refreshed = Some(now);
        let t = now.duration_since(self.epoch).as_secs_f64() + self.phase_s;
        for i in 0..inner.gens.len() {
            if first || !matches!(inner.gens[i], Gen::Fixed(_)) {
                self.apply(inner, i, t, now_ms);
            }
        }
    }

    fn apply(&self, inner: &mut Inner, i: usize, t: f64, now_ms: i64) {
        let map = &self.profile.points[i];
        let value = inner.gens[i].value_at(t);
        let encoded = match decode::encode(map, &value) {
            Ok(e) => e,
            Err(e) => {
                // A drifting value may leave what its register can hold: keep the last one.
                tracing::debug!(profile = %self.profile.id, error = %e, "simulator value not encodable");
                return;
            }
        };
        let area = &mut inner.areas[table_index(map.table)];
        match encoded {
            Encoded::Registers(regs) => {
                for (k, r) in regs.into_iter().enumerate() {
                    area.set(map.address.wrapping_add(k as u16), r, now_ms);
                }
            }
            Encoded::Bit(b) => area.set(map.address, u16::from(b), now_ms),
            Encoded::RegisterBit { bit, set } => {
                let old = area.slot_mut(map.address).map(|s| s.value).unwrap_or(0);
                let new = if set {
                    old | (1 << bit)
                } else {
                    old & !(1 << bit)
                };
                area.set(map.address, new, now_ms);
            }
            Encoded::RegisterNibble { nibble, value } => {
                let old = area.slot_mut(map.address).map(|s| s.value).unwrap_or(0);
                let shift = 4 * u16::from(nibble);
                let new = (old & !(0xF << shift)) | ((value & 0xF) << shift);
                area.set(map.address, new, now_ms);
            }
        }
        inner.current[i] = Some(value);
    }

    fn serve(&self, req: &Request<'_>) -> Result<Response, ExceptionCode> {
        if self.off.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        let (table, addr, count) = match *req {
            Request::ReadCoils(a, c) => (Table::Coil, a, c),
            Request::ReadDiscreteInputs(a, c) => (Table::Discrete, a, c),
            Request::ReadHoldingRegisters(a, c) => (Table::Holding, a, c),
            Request::ReadInputRegisters(a, c) => (Table::Input, a, c),
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        let max = if table.is_bits() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        };
        if count == 0 || count > max {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let now = Instant::now();
        let now_ms = Timestamp::now().millis();
        let mut inner = self.lock();
        self.refresh(&mut inner, now, now_ms);
        let inner = &mut *inner;
        let ti = table_index(table);
        let first_table = inner.areas[..ti].iter().all(|a| a.slots.is_empty());
        let area = &mut inner.areas[ti];
        let response = match table {
            Table::Coil => Response::ReadCoils(area.read_into(addr, count, now_ms, |v| v != 0)?),
            Table::Discrete => {
                Response::ReadDiscreteInputs(area.read_into(addr, count, now_ms, |v| v != 0)?)
            }
            Table::Holding => {
                Response::ReadHoldingRegisters(area.read_into(addr, count, now_ms, |v| v)?)
            }
            Table::Input => {
                Response::ReadInputRegisters(area.read_into(addr, count, now_ms, |v| v)?)
            }
        };
        if let Some(log) = inner.polls.as_mut()
            && first_table
            && addr == area.start
        {
            if log.len() >= POLL_LOG_MAX {
                log.pop_front();
            }
            log.push_back(now_ms);
        }
        Ok(response)
    }
}

/// A sensible default generator for a point: drifting room climate for temperatures
/// and humidities, the middle of the valid range for other numbers, `false`, and the
/// first mapped enumeration value.
fn default_gen(map: &PointMap) -> Gen {
    match map.point.ty {
        PointType::Bool => Gen::Fixed(Value::Bool(false)),
        PointType::Enum(_) => match map.enum_map.first() {
            Some((_, name)) => Gen::Fixed(Value::Enum(name)),
            None => Gen::Fixed(Value::Number(0.0)),
        },
        PointType::Number => {
            let name = map.point.name;
            if name.contains("temperature") {
                Gen::Wander(Wander {
                    base: 23.0,
                    spread: 0.6,
                    period: Duration::from_secs(120),
                    excursion: None,
                })
            } else if name.starts_with("humidity") {
                Gen::Wander(Wander {
                    base: 50.0,
                    spread: 3.0,
                    period: Duration::from_secs(200),
                    excursion: None,
                })
            } else {
                let v = match (map.min, map.max) {
                    (Some(lo), Some(hi)) => (lo + hi) / 2.0,
                    (Some(lo), None) => lo.max(0.0),
                    (None, Some(hi)) => hi.min(0.0),
                    (None, None) => 0.0,
                };
                Gen::Fixed(Value::Number(v))
            }
        }
    }
}

/// One simulated device behind the listener.
#[derive(Debug, Clone)]
pub struct SimDevice {
    /// Unit id it answers to.
    pub unit_id: u8,
    /// Register map.
    pub profile: Arc<Profile>,
    /// Live values; keep a clone to steer the device while it is served.
    pub values: Arc<Values>,
}

impl SimDevice {
    /// A device with default generators (see the module docs). Drift phases differ by
    /// unit id, so devices of one profile do not move in lockstep.
    pub fn new(unit_id: u8, profile: Arc<Profile>) -> SimDevice {
        let phase = f64::from(unit_id) * 37.0;
        SimDevice {
            unit_id,
            values: Arc::new(Values::new(Arc::clone(&profile), phase)),
            profile,
        }
    }

    /// Builder form of [`Values::set`].
    pub fn with(self, point: &str, generator: Gen) -> Result<SimDevice, SimError> {
        self.values.set(point, generator)?;
        Ok(self)
    }
}

#[derive(Clone)]
struct SimService {
    units: Arc<Vec<Option<Arc<Values>>>>,
}

impl Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let res = match self
            .units
            .get(usize::from(req.slave))
            .and_then(Option::as_ref)
        {
            // As a Modbus TCP gateway answers for a unit that does not respond.
            None => Err(ExceptionCode::GatewayTargetDevice),
            Some(v) => v.serve(&req.request),
        };
        std::future::ready(res)
    }
}

/// Serve `devices` on `addr` (port 0 picks a free port). Returns the bound address and
/// the server task; abort the task to stop serving.
pub async fn serve(
    addr: SocketAddr,
    devices: Vec<SimDevice>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let mut units: Vec<Option<Arc<Values>>> = vec![None; 256];
    for d in devices {
        let slot = &mut units[usize::from(d.unit_id)];
        if slot.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("simulator: unit id {} is used twice", d.unit_id),
            ));
        }
        *slot = Some(d.values);
    }
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let service = SimService {
        units: Arc::new(units),
    };
    let handle = tokio::spawn(async move {
        let server = Server::new(listener);
        let on_connected = move |stream: TcpStream, peer: SocketAddr| {
            let svc = service.clone();
            async move {
                let _ = stream.set_nodelay(true);
                accept_tcp_connection(stream, peer, move |_| Ok(Some(svc.clone())))
            }
        };
        let on_error = |e: io::Error| tracing::debug!(error = %e, "simulator connection ended");
        if let Err(e) = server.serve(&on_connected, on_error).await {
            tracing::warn!(addr = %local, error = %e, "simulator stopped");
        }
    });
    Ok((local, handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::profile;

    fn xy() -> Arc<Profile> {
        let (_, text) = profile::shipped()[0];
        Arc::new(profile::parse(text, "xy-md02.toml").unwrap())
    }

    #[test]
    fn excursion_rises_above_27_for_about_90_s_then_clears() {
        let Gen::Wander(w) = Gen::climate_excursion() else {
            panic!()
        };
        let samples: Vec<f64> = (0..600).map(|s| w.at(f64::from(s))).collect();
        let above: usize = samples.iter().filter(|v| **v > 27.0).count();
        // Two excursions in 600 s (t = 180..300 and 480..600).
        assert!(
            (170..=230).contains(&above),
            "{above} s above 27 °C in 10 min"
        );
        assert!(samples[..170].iter().all(|v| (22.0..24.0).contains(v)));
        assert!(samples[181..300].iter().any(|v| *v > 28.0));
        assert!(w.at(305.0) < 24.0);
    }

    #[test]
    fn registers_follow_set_values_and_record_reads() {
        let dev = SimDevice::new(1, xy());
        dev.values
            .set_value("temperature_c", Value::Number(-20.5))
            .unwrap();
        dev.values
            .set_value("humidity_pct", Value::Number(54.6))
            .unwrap();
        let r = dev
            .values
            .serve(&Request::ReadInputRegisters(1, 2))
            .unwrap();
        // XY-MD02 manual: -20.5 °C = 0xFF33, 54.6 %RH = 0x0222.
        assert_eq!(r, Response::ReadInputRegisters(vec![0xFF33, 0x0222]));
        let t = dev.values.times("temperature_c").unwrap();
        assert!(t.first_read_after_change.is_some() && t.last_read.is_some());
        dev.values
            .set_value("temperature_c", Value::Number(30.5))
            .unwrap();
        let t2 = dev.values.times("temperature_c").unwrap();
        assert_eq!(t2.first_read_after_change, None);
        assert!(t2.changed >= t.changed);
        assert_eq!(
            dev.values.current("temperature_c"),
            Some(Value::Number(30.5))
        );
    }

    #[test]
    fn poll_log_counts_reads_from_the_first_address_only_while_recording() {
        let dev = SimDevice::new(1, xy());
        let v = &dev.values;
        v.serve(&Request::ReadInputRegisters(1, 2)).unwrap();
        assert!(v.take_polls().is_empty(), "off by default");
        v.record_polls(true);
        let before = Timestamp::now();
        v.serve(&Request::ReadInputRegisters(1, 2)).unwrap();
        // Not a cycle start: the read begins after the first mapped address.
        v.serve(&Request::ReadInputRegisters(2, 1)).unwrap();
        v.serve(&Request::ReadInputRegisters(1, 1)).unwrap();
        // Refused reads are not polls.
        assert!(v.serve(&Request::ReadInputRegisters(1, 3)).is_err());
        assert!(v.serve(&Request::ReadHoldingRegisters(1, 1)).is_err());
        let polls = v.take_polls();
        assert_eq!(polls.len(), 2);
        assert!(polls.iter().all(|t| *t >= before));
        assert!(v.take_polls().is_empty(), "taking empties the log");
        for _ in 0..POLL_LOG_MAX + 5 {
            v.serve(&Request::ReadInputRegisters(1, 2)).unwrap();
        }
        assert_eq!(v.take_polls().len(), POLL_LOG_MAX);
        v.record_polls(false);
        v.serve(&Request::ReadInputRegisters(1, 2)).unwrap();
        assert!(v.take_polls().is_empty());
    }

    #[test]
    fn out_of_image_reads_are_exceptions() {
        let dev = SimDevice::new(1, xy());
        assert_eq!(
            dev.values.serve(&Request::ReadInputRegisters(0, 2)),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            dev.values.serve(&Request::ReadInputRegisters(2, 2)),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            dev.values.serve(&Request::ReadHoldingRegisters(1, 1)),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            dev.values.serve(&Request::ReadInputRegisters(1, 0)),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            dev.values.serve(&Request::WriteSingleRegister(1, 0)),
            Err(ExceptionCode::IllegalFunction)
        );
    }

    #[tokio::test]
    async fn serves_several_units_over_tcp() {
        use tokio_modbus::client::Reader;
        let a = SimDevice::new(1, xy())
            .with("temperature_c", Gen::Fixed(Value::Number(30.5)))
            .unwrap();
        let b = SimDevice::new(2, xy())
            .with("humidity_pct", Gen::Fixed(Value::Number(54.6)))
            .unwrap();
        let steer = Arc::clone(&b.values);
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), vec![a, b])
            .await
            .unwrap();
        let mut ctx = tokio_modbus::client::tcp::connect_slave(addr, tokio_modbus::Slave(1))
            .await
            .unwrap();
        let regs = ctx.read_input_registers(1, 2).await.unwrap().unwrap();
        assert_eq!(regs[0], 0x0131);
        use tokio_modbus::slave::SlaveContext;
        ctx.set_slave(tokio_modbus::Slave(2));
        assert_eq!(
            ctx.read_input_registers(2, 1).await.unwrap().unwrap(),
            vec![0x0222]
        );
        steer
            .set_value("humidity_pct", Value::Number(60.0))
            .unwrap();
        assert_eq!(
            ctx.read_input_registers(2, 1).await.unwrap().unwrap(),
            vec![600]
        );
        ctx.set_slave(tokio_modbus::Slave(9));
        assert_eq!(
            ctx.read_input_registers(1, 2).await.unwrap(),
            Err(ExceptionCode::GatewayTargetDevice)
        );
        task.abort();
    }

    #[tokio::test]
    async fn duplicate_unit_ids_are_refused() {
        let r = serve(
            "127.0.0.1:0".parse().unwrap(),
            vec![SimDevice::new(3, xy()), SimDevice::new(3, xy())],
        )
        .await;
        assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
    }

    #[test]
    fn unknown_point_is_an_error() {
        let dev = SimDevice::new(1, xy());
        assert!(matches!(
            dev.values.set_value("load_kw", Value::Number(1.0)),
            Err(SimError::UnknownPoint { .. })
        ));
        assert!(matches!(
            dev.values.set_value("temperature_c", Value::Bool(true)),
            Err(SimError::Encode(_))
        ));
    }
}
