//! The one integration-test binary (`it`). Every area is a module here rather than a
//! separate `tests/*.rs` file: each extra test file links the whole crate again, which
//! costs minutes on the 2-core build machines.
//!
//! Tests here talk to real third-party peers (Mosquitto, VictoriaMetrics, InfluxDB 1.x,
//! pymodbus, ...) started by [`peers`] on free loopback ports. `./tests/run.sh` installs
//! them; a missing peer fails the test with the install command. nextest runs this
//! binary's tests one at a time (`.config/nextest.toml`, test group `serial`), so
//! timing assertions are not disturbed by a neighbour.

mod peers;
mod smoke;

// One alarm per root cause: a dead Modbus TCP gateway in front of 8 devices (docs/ALARMS.md).
mod rootcause;

// One module per area; add yours below (file `tests/it/<area>.rs` or `tests/it/<area>/mod.rs`):
mod backup; // backup and restore of the state dir while records stream
mod buffer; // the durable buffer: outages, SIGKILL, broker restart, dead letters, budget
mod commands; // commands from people and the alarm lifecycle: MQTT, the local socket
mod e2e; // the data path end to end
mod failures; // mains failure, generator start, controller alarms: the binary against pymodbus and Mosquitto
mod firmware; // the sensor node firmware (node-sim) on a pty: mbpoll and the RTU source
mod gpio; // the GPIO source with the fake backend through the pipeline to Mosquitto
mod grafana; // the generated Grafana dashboards against InfluxDB 1.6 and @grafana/schema
mod influx; // InfluxDB sink against VictoriaMetrics and InfluxDB 1.x
mod journal; // `dc-gateway journal` (the real binary) reading the durable journal
mod modbus; // Modbus source against the pymodbus server
mod mqtt; // MQTT sink against Mosquitto
mod onvif; // camera recorders over ONVIF Recording Search against a scripted recorder validated with the ONVIF schema
mod ops; // operating the gateway: a state disk that fills while running (tmpfs in a mount namespace), config reload, the standby pair
mod package; // the Debian package: cargo deb, lintian, dpkg-deb, systemd-analyze verify, udev rules
mod paging; // paging the on-call person: roster, SMS on the scripted modem, reply OK <no>, MQTT notify
mod realagents; // shipped profiles against recordings of real SNMP agents (snmpsim-data)
mod recorder; // camera recorders: the Hikvision NVR profile against snmpsim (hand-written and real recordings)
mod records; // incidents, generator runs and reports: a DSE start replayed on pymodbus, the PDF by Chromium
mod rtu; // Modbus RTU buses on socat pty pairs: pymodbus RTU and fault-injection slaves
mod selfwatch; // the clock check against chronyd (under faketime)
mod service; // sd_notify: READY, WATCHDOG, STATUS against a real NOTIFY_SOCKET
mod sinks; // sinks as a list: routing, the old config form, queues carried over
mod sms; // the SMS sink against a scripted modem on a socat pty (decoded by smspdudecoder)
mod snmp;
mod syslog; // the syslog sink against rsyslog: UDP, TCP, TLS, RELP; SIGKILL during a burst
mod web; // the local web page in headless Chromium // SNMP source and trap receiver against snmpd, snmpsim and snmptrap
mod web_auth; // logins, sessions, tokens, the console in Chromium, slowloris (the real binary)
