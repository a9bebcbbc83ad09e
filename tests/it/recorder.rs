//! Camera recorders (Art. 10.7: cameras record 24/7, recordings kept 30 days) over
//! SNMP: the shipped `hikvision-nvr` profile against snmpsim serving hand-written
//! recordings (below, each value citing HIKVISION-MIB) and the real Hikvision NVR
//! recording of the PyPI package `snmpsim-data` (`camera/`), polled by the real SNMP
//! poller and fed to the default rules: a failed disk is an alarm, a healthy recorder
//! none, a recorder that stops answering `comm_lost`.

use std::sync::Arc;
use std::time::Duration;

use dc_gateway::model::{AlarmState, DeviceMeta, Kind, Language, Level, Poll, Quality, Value};
use dc_gateway::rules::{self, Engine};
use dc_gateway::sources::snmp::{self, Credentials, SnmpAgent, SnmpProfile};
use tokio::sync::mpsc;

use crate::peers::{Snmpsim, free_port, snmpsim_data};

/// A Hikvision NVR with two disks, the second failed. HIKVISION-MIB (NVR line,
/// hikEntity 1.3.6.1.4.1.50001.1; the columns and codes as Centreon's Hikvision NVR
/// plugin reads them, `mode::disks`):
/// - 1.3.6.1.2.1.1.1.0 sysDescr (RFC 3418);
/// - .50001.1.240.0 hikDiskNum = 2;
/// - .50001.1.241.1.1.<i> hikDiskIndex, .2.<i> hikDiskVolume;
/// - .50001.1.241.1.3.<i> hikDiskStatus: 0 normal, 3 smartfailed;
/// - .50001.1.241.1.4.<i> hikDiskFreeSpace, MB: 1500 and 250;
/// - .50001.1.241.1.5.<i> hikDiskCapability, MB: 3815447 (a 4 TB disk).
const FAULTY: &str = "1.3.6.1.2.1.1.1.0|4|Hikvision DS-7716NI-K4 NVR
1.3.6.1.4.1.50001.1.240.0|2|2
1.3.6.1.4.1.50001.1.241.1.1.1|2|1
1.3.6.1.4.1.50001.1.241.1.1.2|2|2
1.3.6.1.4.1.50001.1.241.1.2.1|4|HDD1
1.3.6.1.4.1.50001.1.241.1.2.2|4|HDD2
1.3.6.1.4.1.50001.1.241.1.3.1|2|0
1.3.6.1.4.1.50001.1.241.1.3.2|2|3
1.3.6.1.4.1.50001.1.241.1.4.1|2|1500
1.3.6.1.4.1.50001.1.241.1.4.2|2|250
1.3.6.1.4.1.50001.1.241.1.5.1|2|3815447
1.3.6.1.4.1.50001.1.241.1.5.2|2|3815447
";

/// The same recorder healthy: disk 2 `idle` (5, a sleeping disk, not a fault).
fn healthy() -> String {
    FAULTY.replace(
        "1.3.6.1.4.1.50001.1.241.1.3.2|2|3",
        "1.3.6.1.4.1.50001.1.241.1.3.2|2|5",
    )
}

fn profile() -> Arc<SnmpProfile> {
    let (f, text) = snmp::shipped_profiles()
        .into_iter()
        .find(|(f, _)| *f == "hikvision-nvr.toml")
        .expect("hikvision-nvr is shipped");
    Arc::new(snmp::parse_profile(text, f).unwrap_or_else(|e| panic!("{e}")))
}

fn agent(addr: String, community: &str) -> SnmpAgent {
    SnmpAgent {
        meta: Arc::new(DeviceMeta {
            id: community.into(),
            name: community.into(),
            label: Some("NVR-01".into()),
            room: "security".into(),
            kind: Kind::Nvr,
        }),
        addr,
        credentials: Credentials::V2c {
            community: community.into(),
        },
        timeout: Duration::from_millis(1500),
        retries: 0,
        poll_interval: Duration::from_millis(300),
        profile: profile(),
    }
}

/// The first poll of an agent.
async fn one_poll(a: SnmpAgent) -> Poll {
    let id = a.meta.id.to_string();
    let (tx, mut rx) = mpsc::channel(4);
    let task = snmp::spawn(a, tx);
    let p = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{id}: no poll within 15 s"))
        .unwrap_or_else(|| panic!("{id}: poller stopped"));
    task.handle.abort();
    p
}

fn sample(p: &Poll, point: &str) -> (Option<Value>, Quality) {
    let s = p
        .samples
        .iter()
        .find(|s| s.point.name == point)
        .unwrap_or_else(|| panic!("{}: no sample {point}", p.device.id));
    (s.value.clone(), s.quality)
}

fn engine(p: &Poll) -> Engine {
    let mut e = Engine::new(Arc::from("tv"), Language::En, 1);
    e.add_device(
        p.device.clone(),
        Duration::from_millis(300),
        rules::defaults(Kind::Nvr),
    );
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hikvision_nvr_disk_fault_free_space_and_offline() {
    let real = snmpsim_data(|p| p == "camera/hikvision-network-video-recorder.snmprec.bz2")
        .pop()
        .expect("snmpsim-data has camera/hikvision-network-video-recorder");
    let healthy = healthy();
    let sim = Snmpsim::start(
        &[
            ("nvr-faulty", FAULTY),
            ("nvr-ok", &healthy),
            ("nvr-real", &real.text),
        ],
        None,
    );

    // A failed disk: disk_fault, read by walking hikDiskStatus.
    let p = one_poll(agent(sim.addr(), "nvr-faulty")).await;
    assert!(p.comm_ok, "{p:?}");
    assert_eq!(
        sample(&p, "disk_fault"),
        (Some(Value::Bool(true)), Quality::Good)
    );
    assert_eq!(
        sample(&p, "disk_count"),
        (Some(Value::Number(2.0)), Quality::Good)
    );
    assert_eq!(
        sample(&p, "disk_free_gb"),
        (Some(Value::Number(1.75)), Quality::Good)
    );
    let events = engine(&p).on_poll(&p);
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(
        (&*ev.rule, ev.level, ev.state),
        ("disk_fault", Level::Normal, AlarmState::Raised)
    );
    assert!(ev.message.contains("(Art. 10.7)"), "{}", ev.message);

    // Healthy (one disk idle): no alarm.
    let p = one_poll(agent(sim.addr(), "nvr-ok")).await;
    assert_eq!(
        sample(&p, "disk_fault"),
        (Some(Value::Bool(false)), Quality::Good)
    );
    assert!(engine(&p).on_poll(&p).is_empty());

    // The real Hikvision NVR recording: one disk, status normal, 100 MB free.
    let p = one_poll(agent(sim.addr(), "nvr-real")).await;
    assert!(p.comm_ok, "{p:?}");
    assert_eq!(
        sample(&p, "disk_fault"),
        (Some(Value::Bool(false)), Quality::Good)
    );
    assert_eq!(
        sample(&p, "disk_count"),
        (Some(Value::Number(1.0)), Quality::Good)
    );
    assert_eq!(
        sample(&p, "disk_free_gb"),
        (Some(Value::Number(0.1)), Quality::Good)
    );
    assert!(engine(&p).on_poll(&p).is_empty());

    // A recorder that does not answer: comm_error polls, comm_lost after 3 intervals.
    let mut a = agent(format!("127.0.0.1:{}", free_port()), "nvr-gone");
    a.timeout = Duration::from_millis(200);
    let p = one_poll(a).await;
    assert!(!p.comm_ok);
    assert_ne!(sample(&p, "disk_fault").1, Quality::Good);
    let mut e = engine(&p);
    assert!(e.on_poll(&p).is_empty());
    let later = dc_gateway::model::Timestamp(p.ts.millis() + 900);
    let events = e.tick(later);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&*events[0].rule, events[0].state),
        ("comm_lost", AlarmState::Raised)
    );
}
