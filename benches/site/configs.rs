//! The generated configuration of every process in a run: the bench register map, the
//! dc-gateway site, collectd.conf, Node-RED's settings and flows, mosquitto.conf.
//!
//! One workload for all three contenders: N devices, each a Modbus TCP server on its own
//! loopback port (unit id 1), each with M holding registers at addresses 0..M, polled
//! once a second, every value published as its own MQTT message (QoS 0, retained).
//! How each contender reads them is its own usual way: dc-gateway and Node-RED read the
//! M registers in one request, collectd's modbus plugin sends one request per `Data`
//! block (it has no merging).

use std::fmt::Write as _;

use dc_gateway::model::Value;
use dc_gateway::sim::{Gen, Wander};

/// One register of the bench map: canonical generator point, profile TOML fields,
/// the value the simulator holds.
pub struct BenchPoint {
    /// Canonical point name (kind `generator`).
    pub point: &'static str,
    /// Extra TOML lines for the profile entry (type, scale, enum).
    pub toml: &'static str,
    /// Simulated value.
    pub value: fn() -> Gen,
}

fn n(v: f64) -> Gen {
    Gen::Fixed(Value::Number(v))
}

fn w(base: f64, spread: f64) -> Gen {
    Gen::Wander(Wander {
        base,
        spread,
        period: std::time::Duration::from_secs(90),
        excursion: None,
    })
}

/// The alarm point: register 0, so every M includes it. The gateway's default
/// `fuel_low` rule raises below 50 % (normal level) and clears above 52 %.
pub const ALARM_POINT: &str = "fuel_level_pct";
/// Normal value of [`ALARM_POINT`].
pub const ALARM_NORMAL: f64 = 92.0;
/// Value of [`ALARM_POINT`] that raises `fuel_low` at the normal level only.
pub const ALARM_LOW: f64 = 40.0;
/// collectd threshold on register 0 (raw, scale 0.1): warning below this.
pub const COLLECTD_WARNING_MIN_RAW: u32 = 500;

/// Register `i` of every device maps `BENCH_POINTS[i]` (a healthy generator at rest in
/// auto, on mains).
pub const BENCH_POINTS: [BenchPoint; 20] = [
    BenchPoint {
        point: "fuel_level_pct",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || n(ALARM_NORMAL),
    },
    BenchPoint {
        point: "mode",
        toml: "type = \"u16\"\nenum = { 0 = \"stop\", 1 = \"auto\", 2 = \"manual\", 3 = \"test\" }",
        value: || Gen::Fixed(Value::Enum("auto")),
    },
    BenchPoint {
        point: "engine_running",
        toml: "type = \"bool\"",
        value: || Gen::Fixed(Value::Bool(false)),
    },
    BenchPoint {
        point: "shutdown_alarm",
        toml: "type = \"bool\"",
        value: || Gen::Fixed(Value::Bool(false)),
    },
    BenchPoint {
        point: "warning_alarm",
        toml: "type = \"bool\"",
        value: || Gen::Fixed(Value::Bool(false)),
    },
    BenchPoint {
        point: "mains_available",
        toml: "type = \"bool\"",
        value: || Gen::Fixed(Value::Bool(true)),
    },
    BenchPoint {
        point: "mains_voltage_l1_v",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || w(229.0, 2.0),
    },
    BenchPoint {
        point: "mains_voltage_l2_v",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || w(231.0, 2.0),
    },
    BenchPoint {
        point: "mains_voltage_l3_v",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || w(230.0, 2.0),
    },
    BenchPoint {
        point: "mains_frequency_hz",
        toml: "type = \"u16\"\nscale = 0.01",
        value: || w(50.0, 0.05),
    },
    BenchPoint {
        point: "gen_voltage_l1_v",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || n(0.0),
    },
    BenchPoint {
        point: "gen_voltage_l2_v",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || n(0.0),
    },
    BenchPoint {
        point: "gen_voltage_l3_v",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || n(0.0),
    },
    BenchPoint {
        point: "gen_frequency_hz",
        toml: "type = \"u16\"\nscale = 0.01",
        value: || n(0.0),
    },
    BenchPoint {
        point: "load_kw",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || n(0.0),
    },
    BenchPoint {
        point: "load_pct",
        toml: "type = \"u16\"\nscale = 0.1",
        value: || n(0.0),
    },
    BenchPoint {
        point: "coolant_temperature_c",
        toml: "type = \"i16\"\nscale = 0.1",
        value: || w(35.0, 1.0),
    },
    BenchPoint {
        point: "oil_pressure_kpa",
        toml: "type = \"u16\"",
        value: || n(0.0),
    },
    BenchPoint {
        point: "battery_voltage_v",
        toml: "type = \"u16\"\nscale = 0.01",
        value: || w(13.2, 0.1),
    },
    BenchPoint {
        point: "engine_hours_h",
        toml: "type = \"u16\"",
        value: || n(412.0),
    },
];

/// Id of the generated profile.
pub const PROFILE_ID: &str = "bench-generator";

/// Device id of device `i` (0-based): `dev001`, ...
pub fn device_id(i: usize) -> String {
    format!("dev{:03}", i + 1)
}

/// The bench profile: `m` holding registers at 0..m, one canonical point each.
pub fn profile(m: usize) -> String {
    let mut s = format!(
        "# Generated by benches/site.rs: a synthetic register map for the site benchmark.\n\
         id = \"{PROFILE_ID}\"\nkind = \"generator\"\nprotocol = \"modbus\"\n\
         description = \"Benchmark generator, {m} contiguous holding registers\"\n\
         source = \"synthetic map of benches/site.rs (no vendor document)\"\n\
         byte_order = \"big\"\nword_order = \"big\"\n"
    );
    for (i, p) in BENCH_POINTS.iter().take(m).enumerate() {
        let _ = write!(
            s,
            "\n[[points]]\npoint = \"{}\"\ntable = \"holding\"\naddress = {i}\n{}\nsource = \"benches/site.rs, register {i}\"\n",
            p.point, p.toml
        );
    }
    s
}

/// Ports and addresses every config needs.
pub struct Endpoints {
    /// Simulator port and unit id of device `i`.
    pub devices: Vec<(u16, u8)>,
    /// SNMP agents' UDP ports (snmpsim), polled by dc-gateway only.
    pub snmp_ports: Vec<u16>,
    /// With `--all-sinks`: the UDP port the harness drains syslog on, and the pty the
    /// SMS sink opens (the harness answers as a modem on the other end).
    pub extra_sinks: Option<(u16, String)>,
    /// Registers per device.
    pub registers: usize,
    /// Mosquitto port.
    pub mqtt_port: u16,
    /// VictoriaMetrics port.
    pub influx_port: u16,
}

/// The dc-gateway site: every device polled every second, default rules with
/// `fuel_low` at on-delay 0 (for the alarm latency), MQTT and InfluxDB sinks, and with
/// `durable` the sink buffer in `state/` beside the site file.
pub fn gateway_site(e: &Endpoints, web_port: u16, durable: bool) -> String {
    let storage = if durable {
        "[storage]\nstate_dir = \"state\"\n\n"
    } else {
        ""
    };
    let mut s = format!(
        "# Generated by benches/site.rs.\nprofiles_dir = \"profiles\"\n\n{storage}\
         [site]\nname = \"bench\"\ntitle = \"Benchmark site\"\nlanguage = \"en\"\n\n\
         [[rooms]]\nid = \"hall\"\nname = \"Benchmark hall\"\n\n\
         [web]\nlisten = \"127.0.0.1:{web_port}\"\n\n\
         [rules.fuel_low]\non_delay_s = 0\n\n\
         [[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{}\"\nprefix = \"gw\"\nclient_id = \"dcgw-bench\"\n\n\
         [[sinks]]\nname = \"influx\"\nkind = \"influx\"\nurl = \"http://127.0.0.1:{}?org=bench&bucket=bench\"\n\
         token = {{ env = \"DCGW_INFLUX_TOKEN\" }}\n",
        e.mqtt_port, e.influx_port
    );
    if let Some((syslog_port, modem)) = &e.extra_sinks {
        let _ = write!(
            s,
            "\n[[sinks]]\nname = \"syslog\"\nkind = \"syslog\"\nurl = \"udp://127.0.0.1:{syslog_port}\"\n\
             \n[[sinks]]\nname = \"sms\"\nkind = \"sms\"\nport = \"{modem}\"\n"
        );
    }
    for (i, (port, unit)) in e.devices.iter().enumerate() {
        let id = device_id(i);
        let _ = write!(
            s,
            "\n[[devices]]\nid = \"{id}\"\nname = \"Generator {id}\"\nroom = \"hall\"\nkind = \"generator\"\n\
             profile = \"{PROFILE_ID}\"\npoll_interval_ms = 1000\n\
             [devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {port}\nunit_id = {unit}\n"
        );
    }
    for (i, port) in e.snmp_ports.iter().enumerate() {
        let _ = write!(
            s,
            "\n[[devices]]\nid = \"ups{:03}\"\nname = \"UPS {}\"\nroom = \"hall\"\nkind = \"ups\"\n\
             profile = \"ups-mib\"\npoll_interval_ms = {}\n\
             [devices.snmp]\nhost = \"127.0.0.1\"\nport = {port}\nversion = \"2c\"\ncommunity = {{ env = \"DCGW_SNMP_COMMUNITY\" }}\n",
            i + 1,
            i + 1,
            SNMP_INTERVAL_S * 1000
        );
    }
    s
}

/// Poll interval of the SNMP agents (`--snmp-agents`), seconds.
pub const SNMP_INTERVAL_S: u64 = 5;

/// The devices grouped by endpoint, in order of first appearance: (port, [(device
/// index, unit id)]).
pub fn by_endpoint(e: &Endpoints) -> Vec<(u16, Vec<(usize, u8)>)> {
    let mut out: Vec<(u16, Vec<(usize, u8)>)> = Vec::new();
    for (i, (port, unit)) in e.devices.iter().enumerate() {
        match out.iter_mut().find(|(p, _)| p == port) {
            Some((_, units)) => units.push((i, *unit)),
            None => out.push((*port, vec![(i, *unit)])),
        }
    }
    out
}

/// collectd.conf: `modbus` (one `Data` per register, one `Host` per device, `Interval
/// 1`) and `mqtt` (`Publish`, QoS 0, retained). With `alarm_script`, also `threshold`
/// on register 0 and `exec` running the script for each notification.
pub fn collectd_conf(e: &Endpoints, base_dir: &str, alarm_script: Option<&str>) -> String {
    let mut s = format!(
        "# Generated by benches/site.rs.\nHostname \"bench\"\nFQDNLookup false\nBaseDir \"{base_dir}\"\n\
         PIDFile \"{base_dir}/collectd.pid\"\nTypesDB \"/usr/share/collectd/types.db\"\n\
         AutoLoadPlugin false\nInterval 1\n\n\
         LoadPlugin modbus\nLoadPlugin mqtt\n"
    );
    if alarm_script.is_some() {
        s.push_str("LoadPlugin threshold\nLoadPlugin exec\n");
    }
    s.push_str("\n<Plugin modbus>\n");
    for r in 0..e.registers {
        let _ = write!(
            s,
            "  <Data \"r{r:02}\">\n    RegisterBase {r}\n    RegisterType Uint16\n    RegisterCmd ReadHolding\n    Type gauge\n    Instance \"r{r:02}\"\n  </Data>\n"
        );
    }
    for (port, units) in by_endpoint(e) {
        let host = device_id(units[0].0);
        let _ = write!(
            s,
            "  <Host \"{host}\">\n    Address \"127.0.0.1\"\n    Port \"{port}\"\n    Interval 1\n"
        );
        for (i, unit) in units {
            let id = device_id(i);
            let _ = write!(s, "    <Slave {unit}>\n      Instance \"{id}\"\n");
            for r in 0..e.registers {
                let _ = writeln!(s, "      Collect \"r{r:02}\"");
            }
            s.push_str("    </Slave>\n");
        }
        s.push_str("  </Host>\n");
    }
    s.push_str("</Plugin>\n\n");
    let _ = write!(
        s,
        "<Plugin mqtt>\n  <Publish \"bench\">\n    Host \"127.0.0.1\"\n    Port \"{}\"\n    ClientId \"collectd-bench\"\n    Prefix \"cd\"\n    QoS 0\n    Retain true\n  </Publish>\n</Plugin>\n",
        e.mqtt_port
    );
    if let Some(script) = alarm_script {
        let _ = write!(
            s,
            "\n<Plugin threshold>\n  <Plugin \"modbus\">\n    <Type \"gauge\">\n      Instance \"r00\"\n      WarningMin {COLLECTD_WARNING_MIN_RAW}\n    </Type>\n  </Plugin>\n</Plugin>\n\n\
             <Plugin exec>\n  NotificationExec \"nobody\" \"{script}\"\n</Plugin>\n"
        );
    }
    s
}

/// The collectd notification script: reads the notification from stdin and publishes
/// its severity to `cd/alarms/<plugin instance>` (QoS 1), one `mosquitto_pub` each.
pub fn collectd_notify_script(mqtt_port: u16) -> String {
    format!(
        "#!/bin/sh\n# Generated by benches/site.rs: collectd NotificationExec -> MQTT.\n\
         sev=\"\"; dev=\"\"\n\
         while IFS= read -r line; do\n  [ -z \"$line\" ] && break\n  case \"$line\" in\n    \
         Severity:*) sev=\"${{line#Severity: }}\" ;;\n    PluginInstance:*) dev=\"${{line#PluginInstance: }}\" ;;\n  esac\ndone\n\
         exec mosquitto_pub -h 127.0.0.1 -p {mqtt_port} -q 1 -i \"cd-notify-$$\" -t \"cd/alarms/$dev\" -m \"$sev\"\n"
    )
}

/// Node-RED `settings.js`: editor on loopback, quiet console.
pub fn node_red_settings(port: u16) -> String {
    format!(
        "// Generated by benches/site.rs.\nmodule.exports = {{\n  uiHost: \"127.0.0.1\",\n  uiPort: {port},\n  \
         flowFile: \"flows.json\",\n  credentialSecret: false,\n  \
         logging: {{ console: {{ level: \"warn\", metrics: false, audit: false }} }},\n  \
         editorTheme: {{ projects: {{ enabled: false }}, tours: false }},\n  \
         diagnostics: {{ enabled: false }},\n  runtimeState: {{ enabled: false }},\n  \
         telemetry: {{ enabled: false }},\n  functionExternalModules: false,\n}};\n"
    )
}

/// Node-RED flows: per device a `modbus-client` and a `modbus-read` (every 1 s, M
/// holding registers from 0); one `function` splitting the array into one message per
/// value (`nr/<device>/rNN`, retained); one `mqtt out` (QoS 0).
pub fn node_red_flows(e: &Endpoints) -> String {
    use serde_json::json;
    let mut nodes = vec![
        json!({"id": "tab1", "type": "tab", "label": "bench", "disabled": false, "info": ""}),
        json!({
            "id": "broker1", "type": "mqtt-broker", "name": "mosquitto",
            "broker": "127.0.0.1", "port": e.mqtt_port.to_string(), "clientid": "nodered-bench",
            "autoConnect": true, "usetls": false, "protocolVersion": "4", "keepalive": "60",
            "cleansession": true, "autoUnsubscribe": true,
            "birthTopic": "", "birthQos": "0", "birthRetain": "false", "birthPayload": "", "birthMsg": {},
            "closeTopic": "", "closeQos": "0", "closeRetain": "false", "closePayload": "", "closeMsg": {},
            "willTopic": "", "willQos": "0", "willRetain": "false", "willPayload": "", "willMsg": {},
            "userProps": "", "sessionExpiry": ""
        }),
        json!({
            "id": "split1", "type": "function", "z": "tab1", "name": "one message per value",
            "func": "const out = [];\nconst p = msg.payload;\nfor (let i = 0; i < p.length; i++) {\n  out.push({ topic: msg.topic + '/r' + String(i).padStart(2, '0'), payload: String(p[i]), retain: true });\n}\nreturn [out];",
            "outputs": 1, "timeout": 0, "noerr": 0, "initialize": "", "finalize": "", "libs": [],
            "x": 400, "y": 100, "wires": [["mqttout1"]]
        }),
        json!({
            "id": "mqttout1", "type": "mqtt out", "z": "tab1", "name": "", "topic": "", "qos": "0",
            "retain": "", "respTopic": "", "contentType": "", "userProps": "", "correl": "",
            "expiry": "", "broker": "broker1", "x": 600, "y": 100, "wires": []
        }),
    ];
    for (port, units) in by_endpoint(e) {
        let c = units[0].0;
        nodes.push(json!({
            "id": format!("client{c}"), "type": "modbus-client", "name": device_id(c),
            "clienttype": "tcp", "bufferCommands": true, "stateLogEnabled": false,
            "queueLogEnabled": false, "failureLogEnabled": true,
            "tcpHost": "127.0.0.1", "tcpPort": port.to_string(), "tcpType": "DEFAULT",
            "serialPort": "/dev/ttyUSB", "serialType": "RTU-BUFFERD", "serialBaudrate": "9600",
            "serialDatabits": "8", "serialStopbits": "1", "serialParity": "none",
            "serialConnectionDelay": "100", "serialAsciiResponseStartDelimiter": "0x3A",
            "unit_id": "1", "commandDelay": "1", "clientTimeout": "1000",
            "reconnectOnTimeout": true, "reconnectTimeout": "2000", "parallelUnitIdsAllowed": true
        }));
        for (i, unit) in units {
            let id = device_id(i);
            nodes.push(json!({
            "id": format!("read{i}"), "type": "modbus-read", "z": "tab1", "name": id,
            "topic": format!("nr/{id}"), "showStatusActivities": false, "logIOActivities": false,
            "showErrors": false, "unitid": unit.to_string(), "dataType": "HoldingRegister", "adr": "0",
            "quantity": e.registers.to_string(), "rate": "1", "rateUnit": "s",
            "delayOnStart": false, "startDelayTime": "", "server": format!("client{c}"),
            "useIOFile": false, "ioFile": "", "useIOForPayload": false, "emptyMsgOnFail": false,
            "x": 150, "y": 100 + 40 * i, "wires": [["split1"], []]
        }));
        }
    }
    serde_json::to_string_pretty(&serde_json::Value::Array(nodes)).unwrap_or_default()
}

/// mosquitto.conf: one loopback listener, no persistence, queues large enough that a
/// burst of readings is never dropped on the way to the counting subscriber.
pub fn mosquitto_conf(port: u16) -> String {
    format!(
        "# Generated by benches/site.rs.\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
         log_dest stderr\nlog_type error\nlog_type warning\nmax_queued_messages 1000000\n\
         max_inflight_messages 0\nmax_packet_size 1048576\n"
    )
}
