//! What things are called: canonical points, device kinds, enumeration values, units,
//! and the alarm conditions of boolean and state points.
//!
//! Invariants (checked by the tests below): every canonical point and every device
//! kind has a name in both languages, every enumeration value of the vocabulary has a
//! name, and no entry names a point or value the vocabulary does not have. A lookup
//! that finds nothing falls back to the canonical name, so a new point shows up
//! readable-ish before it is translated, never as an empty cell.

use crate::model::{Kind, Language, System, Value};
use crate::points::{PointDef, PointType};

use super::{number, pick, words};

/// Display name of a device kind.
pub fn kind(kind: Kind, lang: Language) -> &'static str {
    let (vi, en) = match kind {
        Kind::Ups => ("Bộ lưu điện (UPS)", "UPS"),
        Kind::Generator => ("Máy phát điện", "Generator"),
        Kind::Cooling => ("Điều hòa chính xác", "Cooling unit"),
        Kind::Climate => ("Cảm biến nhiệt độ, độ ẩm", "Temperature & humidity sensor"),
        Kind::FirePanel => ("Tủ báo cháy", "Fire alarm panel"),
        Kind::Leak => ("Cảm biến rò rỉ nước", "Water leak sensor"),
        Kind::Door => ("Cửa", "Door"),
        Kind::Nvr => ("Đầu ghi hình (NVR)", "Video recorder (NVR)"),
        Kind::Surge => ("Chống sét lan truyền", "Surge protector"),
        Kind::PowerMeter => ("Đồng hồ đo điện", "Power meter"),
        Kind::Gateway => ("Gateway giám sát", "Monitoring gateway"),
        Kind::Ats => (
            "Bộ chuyển nguồn tự động (ATS)",
            "Automatic transfer switch (ATS)",
        ),
    };
    pick(lang, vi, en)
}

/// Display name of a system (the wall view's column and summary titles).
pub fn system(system: System, lang: Language) -> &'static str {
    let (vi, en) = match system {
        System::Power => ("Nguồn điện", "Power"),
        System::Cooling => ("Làm mát", "Cooling"),
        System::Climate => ("Nhiệt độ, độ ẩm", "Climate"),
        System::FireSafety => ("PCCC & an toàn", "Fire & safety"),
        System::Security => ("An ninh", "Security"),
        System::Gateway => ("Gateway", "Gateway"),
    };
    pick(lang, vi, en)
}

/// Display name of a canonical point (`Nhiệt độ`); the canonical name when the table
/// has none.
pub fn point(kind: Kind, point: &'static str, lang: Language) -> &'static str {
    POINTS
        .iter()
        .find(|(k, name, _, _)| *k == kind && *name == point)
        .map_or(point, |(_, _, vi, en)| pick(lang, vi, en))
}

/// The alarm condition of a boolean or state point, as a sentence about the device
/// (`UPS đang chạy bằng ắc quy (mất điện lưới)`); the point's name when the table has
/// none.
pub fn condition(kind: Kind, point_name: &'static str, lang: Language) -> &'static str {
    CONDITIONS
        .iter()
        .find(|(k, name, _, _)| *k == kind && *name == point_name)
        .map_or_else(
            || point(kind, point_name, lang),
            |(_, _, vi, en)| pick(lang, vi, en),
        )
}

/// Whether the table has an alarm condition text for this point.
pub fn has_condition(kind: Kind, point_name: &str) -> bool {
    CONDITIONS
        .iter()
        .any(|(k, name, _, _)| *k == kind && *name == point_name)
}

/// Display name of an enumeration value (`on_battery` → `Chạy pin`); the value itself
/// when the table has none.
pub fn enum_value(value: &'static str, lang: Language) -> &'static str {
    ENUM_VALUES
        .iter()
        .find(|(name, _, _)| *name == value)
        .map_or(value, |(_, vi, en)| pick(lang, vi, en))
}

/// How a unit symbol of the vocabulary is written for people: time units in words
/// (`giây`, `phút`, `giờ`, `ngày` / `s`, `min`, `h`, `days`), the SI symbols as they
/// are (`°C`, `%`, `V`, `kW`).
pub fn unit(symbol: &str, lang: Language) -> &str {
    match symbol {
        "s" => pick(lang, "giây", "s"),
        "min" => pick(lang, "phút", "min"),
        "h" => pick(lang, "giờ", "h"),
        "d" => pick(lang, "ngày", "days"),
        other => other,
    }
}

/// A number of `point` with its unit, for people: `28,5 °C`, `540 giây`, `0,98`.
pub fn quantity(point: &PointDef, v: f64, lang: Language) -> String {
    let n = number::display_point(point, v, lang);
    match unit(point.unit, lang) {
        "" => n,
        u => format!("{n} {u}"),
    }
}

/// Any value of `point` for people: numbers with unit, booleans as yes/no,
/// enumeration values by name.
pub fn value(point: &PointDef, v: &Value, lang: Language) -> String {
    match v {
        Value::Number(x) => quantity(point, *x, lang),
        Value::Bool(b) => words::yes_no(*b, lang).to_string(),
        Value::Enum(name) => enum_value(name, lang).to_string(),
    }
}

/// Whether the page shows numbers of this point as a duration (`2 giờ 5 phút`).
pub fn is_duration(point: &PointDef) -> bool {
    point.ty == PointType::Number && point.unit == "s"
}

/// `(kind, point, Vietnamese, English)`: the name of every canonical point.
const POINTS: &[(Kind, &str, &str, &str)] = &[
    (Kind::Ups, "output_source", "Nguồn cấp tải", "Output source"),
    (Kind::Ups, "on_battery", "Đang chạy pin", "On battery"),
    (Kind::Ups, "on_bypass", "Đang ở bypass", "On bypass"),
    (Kind::Ups, "fault", "Lỗi UPS", "UPS fault"),
    (
        Kind::Ups,
        "battery_status",
        "Trạng thái ắc quy",
        "Battery status",
    ),
    (Kind::Ups, "battery_low", "Ắc quy yếu", "Battery low"),
    (Kind::Ups, "overload", "Quá tải", "Overload"),
    (Kind::Ups, "alarms_present", "Số cảnh báo", "Alarms present"),
    (
        Kind::Ups,
        "input_voltage_l2_v",
        "Điện áp vào pha 2",
        "Input voltage L2",
    ),
    (
        Kind::Ups,
        "input_voltage_l3_v",
        "Điện áp vào pha 3",
        "Input voltage L3",
    ),
    (
        Kind::Ups,
        "output_voltage_l2_v",
        "Điện áp ra pha 2",
        "Output voltage L2",
    ),
    (
        Kind::Ups,
        "output_voltage_l3_v",
        "Điện áp ra pha 3",
        "Output voltage L3",
    ),
    (Kind::Ups, "load_l1_pct", "Tải pha 1", "Load L1"),
    (Kind::Ups, "load_l2_pct", "Tải pha 2", "Load L2"),
    (Kind::Ups, "load_l3_pct", "Tải pha 3", "Load L3"),
    (
        Kind::Ups,
        "battery_replace",
        "Cần thay ắc quy",
        "Replace battery",
    ),
    (
        Kind::Ups,
        "battery_charge_pct",
        "Dung lượng ắc quy",
        "Battery charge",
    ),
    (
        Kind::Ups,
        "runtime_remaining_s",
        "Thời gian lưu điện còn lại",
        "Runtime remaining",
    ),
    (
        Kind::Ups,
        "battery_voltage_v",
        "Điện áp ắc quy",
        "Battery voltage",
    ),
    (
        Kind::Ups,
        "battery_temperature_c",
        "Nhiệt độ ắc quy",
        "Battery temperature",
    ),
    (Kind::Ups, "load_pct", "Tải", "Load"),
    (Kind::Ups, "input_voltage_v", "Điện áp vào", "Input voltage"),
    (
        Kind::Ups,
        "input_frequency_hz",
        "Tần số vào",
        "Input frequency",
    ),
    (
        Kind::Ups,
        "output_voltage_v",
        "Điện áp ra",
        "Output voltage",
    ),
    (
        Kind::Ups,
        "output_frequency_hz",
        "Tần số ra",
        "Output frequency",
    ),
    (Kind::Ups, "output_power_kw", "Công suất ra", "Output power"),
    (Kind::Generator, "mode", "Chế độ", "Mode"),
    (
        Kind::Generator,
        "engine_running",
        "Động cơ đang chạy",
        "Engine running",
    ),
    (
        Kind::Generator,
        "shutdown_alarm",
        "Báo động dừng máy",
        "Shutdown alarm",
    ),
    (
        Kind::Generator,
        "warning_alarm",
        "Cảnh báo",
        "Warning alarm",
    ),
    (
        Kind::Generator,
        "mains_available",
        "Có điện lưới",
        "Mains available",
    ),
    (
        Kind::Generator,
        "mains_voltage_l1_v",
        "Điện áp lưới L1",
        "Mains voltage L1",
    ),
    (
        Kind::Generator,
        "mains_voltage_l2_v",
        "Điện áp lưới L2",
        "Mains voltage L2",
    ),
    (
        Kind::Generator,
        "mains_voltage_l3_v",
        "Điện áp lưới L3",
        "Mains voltage L3",
    ),
    (
        Kind::Generator,
        "mains_frequency_hz",
        "Tần số lưới",
        "Mains frequency",
    ),
    (
        Kind::Generator,
        "gen_voltage_l1_v",
        "Điện áp máy phát L1",
        "Generator voltage L1",
    ),
    (
        Kind::Generator,
        "gen_voltage_l2_v",
        "Điện áp máy phát L2",
        "Generator voltage L2",
    ),
    (
        Kind::Generator,
        "gen_voltage_l3_v",
        "Điện áp máy phát L3",
        "Generator voltage L3",
    ),
    (
        Kind::Generator,
        "gen_frequency_hz",
        "Tần số máy phát",
        "Generator frequency",
    ),
    (Kind::Generator, "load_kw", "Công suất", "Load"),
    (Kind::Generator, "load_pct", "Tải", "Load"),
    (
        Kind::Generator,
        "coolant_temperature_c",
        "Nhiệt độ nước làm mát",
        "Coolant temperature",
    ),
    (
        Kind::Generator,
        "oil_pressure_kpa",
        "Áp suất dầu",
        "Oil pressure",
    ),
    (
        Kind::Generator,
        "fuel_level_pct",
        "Mức nhiên liệu",
        "Fuel level",
    ),
    (
        Kind::Generator,
        "battery_voltage_v",
        "Điện áp ắc quy đề",
        "Starter battery voltage",
    ),
    (
        Kind::Generator,
        "engine_hours_h",
        "Số giờ chạy máy",
        "Engine hours",
    ),
    (Kind::Cooling, "unit_on", "Đang chạy", "Running"),
    (
        Kind::Cooling,
        "common_alarm",
        "Báo động chung",
        "Common alarm",
    ),
    (
        Kind::Cooling,
        "critical_alarm",
        "Báo động nghiêm trọng",
        "Critical alarm",
    ),
    (Kind::Cooling, "filter_dirty", "Lọc gió bẩn", "Filter dirty"),
    (
        Kind::Cooling,
        "supply_air_temperature_c",
        "Nhiệt độ gió cấp",
        "Supply air temperature",
    ),
    (
        Kind::Cooling,
        "return_air_temperature_c",
        "Nhiệt độ gió hồi",
        "Return air temperature",
    ),
    (Kind::Cooling, "setpoint_c", "Nhiệt độ cài đặt", "Set point"),
    (
        Kind::Cooling,
        "humidity_pct",
        "Độ ẩm gió hồi",
        "Return air humidity",
    ),
    (Kind::Climate, "temperature_c", "Nhiệt độ", "Temperature"),
    (Kind::Climate, "humidity_pct", "Độ ẩm", "Humidity"),
    (Kind::Climate, "dew_point_c", "Điểm sương", "Dew point"),
    (Kind::FirePanel, "fire_alarm", "Báo cháy", "Fire alarm"),
    (
        Kind::FirePanel,
        "extinguishant_released",
        "Đã xả khí chữa cháy",
        "Extinguishant released",
    ),
    (Kind::FirePanel, "fault", "Lỗi tủ báo cháy", "Panel fault"),
    (
        Kind::FirePanel,
        "supervisory",
        "Tín hiệu giám sát",
        "Supervisory",
    ),
    (
        Kind::Leak,
        "leak_detected",
        "Phát hiện rò rỉ nước",
        "Leak detected",
    ),
    (Kind::Door, "door_open", "Cửa mở", "Door open"),
    (Kind::Nvr, "recording", "Đang ghi hình", "Recording"),
    (Kind::Nvr, "disk_fault", "Lỗi ổ cứng", "Disk fault"),
    (
        Kind::Nvr,
        "retention_days",
        "Số ngày lưu trữ ghi hình",
        "Recordings kept",
    ),
    (
        Kind::Nvr,
        "disk_count",
        "Số ổ cứng ghi hình",
        "Recording disks",
    ),
    (
        Kind::Nvr,
        "disk_free_gb",
        "Dung lượng trống ổ ghi hình",
        "Free recording space",
    ),
    (
        Kind::Surge,
        "protector_tripped",
        "Chống sét đã tác động",
        "Protector tripped",
    ),
    (
        Kind::PowerMeter,
        "mains_present",
        "Có điện",
        "Mains present",
    ),
    (Kind::PowerMeter, "voltage_l1_v", "Điện áp L1", "Voltage L1"),
    (Kind::PowerMeter, "voltage_l2_v", "Điện áp L2", "Voltage L2"),
    (Kind::PowerMeter, "voltage_l3_v", "Điện áp L3", "Voltage L3"),
    (
        Kind::PowerMeter,
        "current_l1_a",
        "Dòng điện L1",
        "Current L1",
    ),
    (
        Kind::PowerMeter,
        "current_l2_a",
        "Dòng điện L2",
        "Current L2",
    ),
    (
        Kind::PowerMeter,
        "current_l3_a",
        "Dòng điện L3",
        "Current L3",
    ),
    (Kind::PowerMeter, "frequency_hz", "Tần số", "Frequency"),
    (
        Kind::PowerMeter,
        "active_power_kw",
        "Công suất tác dụng",
        "Active power",
    ),
    (
        Kind::PowerMeter,
        "power_factor",
        "Hệ số công suất",
        "Power factor",
    ),
    (Kind::PowerMeter, "energy_kwh", "Điện năng", "Energy"),
    (
        Kind::Gateway,
        "clock_synced",
        "Đồng bộ thời gian",
        "Clock synchronised",
    ),
    (Kind::Gateway, "uptime_s", "Thời gian hoạt động", "Uptime"),
    (
        Kind::Gateway,
        "buffer_used_pct",
        "Mức dùng bộ đệm",
        "Buffer used",
    ),
    (
        Kind::Gateway,
        "journal_used_pct",
        "Mức dùng nhật ký",
        "Journal used",
    ),
    (
        Kind::Gateway,
        "sink_failing_s",
        "Thời gian gửi dữ liệu lỗi",
        "Sink failing for",
    ),
    (
        Kind::Gateway,
        "sink_auth_failed",
        "Sai thông tin đăng nhập đích gửi",
        "Sink credentials refused",
    ),
    (
        Kind::Gateway,
        "modem_ok",
        "Modem SMS hoạt động",
        "SMS modem working",
    ),
    (
        Kind::Gateway,
        "modem_responding",
        "Modem SMS phản hồi",
        "SMS modem responding",
    ),
    (
        Kind::Gateway,
        "modem_sim_ready",
        "SIM của modem sẵn sàng",
        "Modem SIM ready",
    ),
    (
        Kind::Gateway,
        "modem_registered",
        "Modem đã đăng ký mạng di động",
        "Modem registered on the network",
    ),
    (
        Kind::Gateway,
        "modem_signal_dbm",
        "Cường độ sóng di động",
        "Mobile signal strength",
    ),
    (
        Kind::Gateway,
        "state_dir_ok",
        "Thư mục trạng thái ghi được",
        "State directory writable",
    ),
    (
        Kind::Gateway,
        "state_writes_ok",
        "Ghi được hàng đợi và nhật ký xuống đĩa",
        "Queues and journal written to disk",
    ),
    (
        Kind::Gateway,
        "maintenance_overrun",
        "Bảo trì quá giờ dự kiến",
        "Maintenance overrun",
    ),
    (
        Kind::Gateway,
        "outputs_ok",
        "Còi và đèn báo hoạt động",
        "Sirens and beacons working",
    ),
    (
        Kind::Gateway,
        "output_failures",
        "Số lần điều khiển còi/đèn lỗi",
        "Siren/beacon output failures",
    ),
    (
        Kind::Gateway,
        "web_console_ok",
        "Bảng điều khiển web mở",
        "Web console open",
    ),
    (
        Kind::Gateway,
        "clock_offset_ms",
        "Độ lệch đồng hồ",
        "Clock offset",
    ),
    (
        Kind::Gateway,
        "clock_stratum",
        "Tầng máy chủ thời gian",
        "NTP server stratum",
    ),
    (
        Kind::Gateway,
        "clock_server_reachable",
        "Kết nối máy chủ thời gian",
        "NTP server reachable",
    ),
    (
        Kind::Gateway,
        "memory_available_pct",
        "Bộ nhớ còn trống",
        "Memory available",
    ),
    (
        Kind::Gateway,
        "memory_available_mib",
        "Bộ nhớ còn trống (MiB)",
        "Memory available (MiB)",
    ),
    (
        Kind::Gateway,
        "disk_free_pct",
        "Dung lượng đĩa còn trống",
        "Disk free",
    ),
    (
        Kind::Gateway,
        "disk_free_mib",
        "Dung lượng đĩa còn trống (MiB)",
        "Disk free (MiB)",
    ),
    (
        Kind::Gateway,
        "disk_written_mib_per_day",
        "Dữ liệu ghi đĩa mỗi ngày",
        "Disk writes per day",
    ),
    (
        Kind::Gateway,
        "cpu_temperature_c",
        "Nhiệt độ CPU",
        "CPU temperature",
    ),
    (
        Kind::Gateway,
        "cpu_throttled",
        "CPU bị giảm xung",
        "CPU throttled",
    ),
    (
        Kind::Gateway,
        "undervoltage",
        "Điện áp nguồn thấp",
        "Under-voltage",
    ),
    (
        Kind::Generator,
        "alarm_emergency_stop",
        "Báo động: Dừng khẩn cấp",
        "Alarm: Emergency stop",
    ),
    (
        Kind::Generator,
        "alarm_low_oil_pressure",
        "Báo động: Áp suất dầu thấp",
        "Alarm: Low oil pressure",
    ),
    (
        Kind::Generator,
        "alarm_high_coolant_temperature",
        "Báo động: Nhiệt độ nước làm mát cao",
        "Alarm: High coolant temperature",
    ),
    (
        Kind::Generator,
        "alarm_low_coolant_temperature",
        "Báo động: Nhiệt độ nước làm mát thấp",
        "Alarm: Low coolant temperature",
    ),
    (
        Kind::Generator,
        "alarm_under_speed",
        "Báo động: Tốc độ thấp",
        "Alarm: Under speed",
    ),
    (
        Kind::Generator,
        "alarm_over_speed",
        "Báo động: Quá tốc độ",
        "Alarm: Over speed",
    ),
    (
        Kind::Generator,
        "alarm_under_frequency",
        "Báo động: Tần số máy phát thấp",
        "Alarm: Generator under frequency",
    ),
    (
        Kind::Generator,
        "alarm_over_frequency",
        "Báo động: Tần số máy phát cao",
        "Alarm: Generator over frequency",
    ),
    (
        Kind::Generator,
        "alarm_low_voltage",
        "Báo động: Điện áp máy phát thấp",
        "Alarm: Generator low voltage",
    ),
    (
        Kind::Generator,
        "alarm_high_voltage",
        "Báo động: Điện áp máy phát cao",
        "Alarm: Generator high voltage",
    ),
    (
        Kind::Generator,
        "alarm_battery_low_voltage",
        "Báo động: Điện áp ắc quy đề thấp",
        "Alarm: Battery low voltage",
    ),
    (
        Kind::Generator,
        "alarm_battery_high_voltage",
        "Báo động: Điện áp ắc quy đề cao",
        "Alarm: Battery high voltage",
    ),
    (
        Kind::Generator,
        "alarm_charge_alternator_failure",
        "Báo động: Hỏng máy phát sạc",
        "Alarm: Charge alternator failure",
    ),
    (
        Kind::Generator,
        "alarm_fail_to_start",
        "Báo động: Không khởi động được",
        "Alarm: Fail to start",
    ),
    (
        Kind::Generator,
        "alarm_fail_to_stop",
        "Báo động: Không dừng được",
        "Alarm: Fail to stop",
    ),
    (
        Kind::Generator,
        "alarm_gen_fail_to_close",
        "Báo động: Không đóng được aptomat máy phát",
        "Alarm: Generator fail to close",
    ),
    (
        Kind::Generator,
        "alarm_mains_fail_to_close",
        "Báo động: Không đóng được aptomat lưới",
        "Alarm: Mains fail to close",
    ),
    (
        Kind::Generator,
        "alarm_oil_pressure_sender_fault",
        "Báo động: Hỏng cảm biến áp suất dầu",
        "Alarm: Oil pressure sender fault",
    ),
    (
        Kind::Generator,
        "alarm_loss_of_magnetic_pickup",
        "Báo động: Mất tín hiệu cảm biến tốc độ",
        "Alarm: Loss of magnetic pick-up",
    ),
    (
        Kind::Generator,
        "alarm_magnetic_pickup_open_circuit",
        "Báo động: Hở mạch cảm biến tốc độ",
        "Alarm: Magnetic pick-up open circuit",
    ),
    (
        Kind::Generator,
        "alarm_high_current",
        "Báo động: Dòng máy phát cao",
        "Alarm: Generator high current",
    ),
    (
        Kind::Generator,
        "alarm_calibration_lost",
        "Báo động: Mất hiệu chuẩn",
        "Alarm: Calibration lost",
    ),
    (
        Kind::Generator,
        "alarm_low_fuel_level",
        "Báo động: Mức nhiên liệu thấp",
        "Alarm: Low fuel level",
    ),
    (
        Kind::Generator,
        "alarm_can_ecu_warning",
        "Báo động: Cảnh báo từ ECU (CAN)",
        "Alarm: CAN ECU warning",
    ),
    (
        Kind::Generator,
        "alarm_can_ecu_shutdown",
        "Báo động: ECU (CAN) dừng máy",
        "Alarm: CAN ECU shutdown",
    ),
    (
        Kind::Generator,
        "alarm_can_ecu_data_fail",
        "Báo động: Mất dữ liệu ECU (CAN)",
        "Alarm: CAN ECU data fail",
    ),
    (
        Kind::Generator,
        "alarm_low_oil_level_switch",
        "Báo động: Công tắc mức dầu thấp",
        "Alarm: Low oil level switch",
    ),
    (
        Kind::Generator,
        "alarm_high_temperature_switch",
        "Báo động: Công tắc nhiệt độ cao",
        "Alarm: High temperature switch",
    ),
    (
        Kind::Ats,
        "position",
        "Vị trí chuyển mạch",
        "Switch position",
    ),
    (
        Kind::Generator,
        "engine_starting",
        "Đang khởi động",
        "Starting",
    ),
    (
        Kind::Cooling,
        "high_pressure_alarm",
        "Áp suất cao máy nén",
        "Compressor high pressure",
    ),
    (
        Kind::Cooling,
        "low_pressure_alarm",
        "Áp suất thấp máy nén",
        "Compressor low pressure",
    ),
    (
        Kind::Ats,
        "mains_available",
        "Điện lưới sẵn sàng",
        "Mains available",
    ),
    (
        Kind::Ats,
        "generator_available",
        "Máy phát sẵn sàng",
        "Generator available",
    ),
    (
        Kind::Ats,
        "transfer_failed",
        "Chuyển nguồn thất bại",
        "Transfer failed",
    ),
    (Kind::Ats, "fault", "Lỗi ATS", "ATS fault"),
];

/// `(kind, point, Vietnamese, English)`: the alarm condition of boolean and state
/// points, written as what is wrong: the default rules' direction (a rule on `unit_on`
/// alarms when it is false, on `door_open` when it is true). Points whose alarm
/// direction is not obvious (`recording`, `mains_present`) have none and use their name.
const CONDITIONS: &[(Kind, &str, &str, &str)] = &[
    (
        Kind::Ups,
        "on_battery",
        "UPS đang chạy bằng ắc quy (mất điện lưới)",
        "UPS on battery (mains lost)",
    ),
    (
        Kind::Ups,
        "on_bypass",
        "UPS đang chạy qua bypass, tải không được bảo vệ",
        "UPS on bypass, load not protected",
    ),
    (Kind::Ups, "fault", "UPS báo lỗi", "UPS fault"),
    (
        Kind::Ups,
        "battery_replace",
        "Ắc quy UPS cần thay thế",
        "UPS battery needs replacement",
    ),
    (
        Kind::Ups,
        "battery_low",
        "Ắc quy UPS yếu",
        "UPS battery low",
    ),
    (Kind::Ups, "overload", "UPS quá tải", "UPS overload"),
    (
        Kind::Generator,
        "mode",
        "Máy phát không ở chế độ tự động (AUTO)",
        "Generator not in AUTO mode",
    ),
    (
        Kind::Generator,
        "shutdown_alarm",
        "Máy phát báo dừng sự cố (áp suất dầu, nhiệt độ nước làm mát, quá tốc, không khởi động được)",
        "Generator shutdown alarm (oil pressure, coolant temperature, overspeed, fail to start)",
    ),
    (
        Kind::Generator,
        "warning_alarm",
        "Máy phát báo cảnh báo",
        "Generator warning alarm",
    ),
    (
        Kind::Cooling,
        "unit_on",
        "Máy lạnh chính xác đã dừng",
        "Precision cooling unit stopped",
    ),
    (
        Kind::Cooling,
        "common_alarm",
        "Máy lạnh chính xác báo lỗi",
        "Precision cooling common alarm",
    ),
    (
        Kind::Cooling,
        "critical_alarm",
        "Máy lạnh chính xác báo lỗi nghiêm trọng (áp suất máy nén, hỏng quạt)",
        "Precision cooling critical alarm (compressor pressure, fan failure)",
    ),
    (
        Kind::Cooling,
        "filter_dirty",
        "Lọc gió máy lạnh cần vệ sinh",
        "Cooling unit air filter dirty",
    ),
    (
        Kind::FirePanel,
        "fire_alarm",
        "Tủ báo cháy: CÓ BÁO CHÁY",
        "Fire panel: FIRE ALARM",
    ),
    (
        Kind::FirePanel,
        "extinguishant_released",
        "Tủ báo cháy: đã xả khí chữa cháy",
        "Fire panel: extinguishant released",
    ),
    (
        Kind::FirePanel,
        "fault",
        "Tủ báo cháy báo lỗi",
        "Fire panel fault",
    ),
    (
        Kind::FirePanel,
        "supervisory",
        "Tủ báo cháy: tín hiệu giám sát",
        "Fire panel supervisory condition",
    ),
    (
        Kind::Leak,
        "leak_detected",
        "Phát hiện rò rỉ nước",
        "Water leak detected",
    ),
    (Kind::Door, "door_open", "Cửa đang mở", "Door open"),
    (
        Kind::Nvr,
        "disk_fault",
        "Đầu ghi hình hỏng ổ cứng",
        "Recorder disk failed",
    ),
    (
        Kind::Nvr,
        "recording",
        "Đầu ghi hình không ghi hình",
        "Recorder not recording",
    ),
    (
        Kind::Surge,
        "protector_tripped",
        "Thiết bị chống sét lan truyền đã tác động",
        "Surge protector tripped",
    ),
    (
        Kind::Gateway,
        "clock_synced",
        "Đồng hồ gateway chưa được đồng bộ",
        "Gateway clock not synchronised",
    ),
    (
        Kind::Gateway,
        "sink_auth_failed",
        "Đích gửi dữ liệu (InfluxDB/MQTT) từ chối thông tin đăng nhập",
        "A sink (InfluxDB/MQTT) refuses the gateway's credentials",
    ),
    (
        Kind::Gateway,
        "modem_ok",
        "Modem SMS lỗi: không gửi được tin nhắn cảnh báo",
        "SMS modem failed: alarm texts cannot be sent",
    ),
    (
        Kind::Gateway,
        "state_dir_ok",
        "Không ghi được thư mục trạng thái: hàng đợi và nhật ký sẽ mất khi khởi động lại",
        "The state directory cannot be written: queues and the journal are lost at a restart",
    ),
    (
        Kind::Gateway,
        "state_writes_ok",
        "Đĩa đầy hoặc lỗi: hàng đợi và nhật ký chỉ giữ trong bộ nhớ",
        "The disk is full or failing: queues and the journal are held in memory only",
    ),
    (
        Kind::Gateway,
        "maintenance_overrun",
        "Cửa sổ bảo trì vẫn mở sau giờ kết thúc dự kiến",
        "A maintenance window is still open after its planned end",
    ),
    (
        Kind::Gateway,
        "outputs_ok",
        "Còi hoặc đèn báo không điều khiển được: không giữ trạng thái đã ghi",
        "A siren or beacon cannot be driven: it does not hold the state written",
    ),
    (
        Kind::Gateway,
        "web_console_ok",
        "Bảng điều khiển web bị tắt vì cấu hình không an toàn (mật khẩu quản trị mặc định hoặc thiếu TLS); giám sát vẫn chạy",
        "The web console is closed for an unsafe setting (default admin password or missing TLS); monitoring goes on",
    ),
    (
        Kind::Gateway,
        "clock_server_reachable",
        "Không kết nối được máy chủ thời gian (NTP)",
        "No NTP server answers",
    ),
    (
        Kind::Gateway,
        "cpu_throttled",
        "CPU của gateway bị giảm xung",
        "Gateway CPU throttled",
    ),
    (
        Kind::Gateway,
        "undervoltage",
        "Nguồn cấp cho gateway bị thấp áp",
        "Gateway power supply under-voltage",
    ),
    (
        Kind::Ats,
        "transfer_failed",
        "ATS chuyển nguồn thất bại",
        "Transfer switch failed to transfer",
    ),
    (
        Kind::Ats,
        "fault",
        "ATS báo lỗi",
        "Transfer switch reports an alarm",
    ),
    (
        Kind::Cooling,
        "high_pressure_alarm",
        "Máy nén báo áp suất cao",
        "Compressor high pressure alarm",
    ),
    (
        Kind::Cooling,
        "low_pressure_alarm",
        "Máy nén báo áp suất thấp",
        "Compressor low pressure alarm",
    ),
];

/// `(value, Vietnamese, English)` for enumeration values.
const ENUM_VALUES: &[(&str, &str, &str)] = &[
    ("unknown", "Không xác định", "Unknown"),
    ("normal", "Bình thường", "Normal"),
    ("on_battery", "Chạy pin", "On battery"),
    ("on_bypass", "Bypass", "On bypass"),
    ("off", "Tắt", "Off"),
    ("booster", "Tăng áp", "Boost"),
    ("reducer", "Giảm áp", "Buck"),
    ("stop", "Dừng", "Stop"),
    ("auto", "Tự động", "Auto"),
    ("manual", "Bằng tay", "Manual"),
    ("test", "Chạy thử", "Test"),
    ("low", "Yếu", "Low"),
    ("depleted", "Cạn", "Depleted"),
    ("fault", "Lỗi", "Fault"),
    ("inactive", "Không tác động", "Inactive"),
    ("warning", "Cảnh báo", "Warning"),
    ("shutdown", "Dừng máy", "Shutdown"),
    ("electrical_trip", "Cắt điện", "Electrical trip"),
    ("disabled", "Không dùng", "Disabled"),
    ("indication", "Chỉ báo", "Indication"),
    ("mains", "Điện lưới", "Mains"),
    ("generator", "Máy phát", "Generator"),
    ("transferring", "Đang chuyển", "Transferring"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::{lookup, points_of};
    use crate::rules::defaults;
    use crate::rules::spec::Condition;

    #[test]
    fn every_canonical_point_has_names_in_both_languages() {
        for kind in Kind::ALL {
            for p in points_of(kind) {
                let vi = point(kind, p.name, Language::Vi);
                let en = point(kind, p.name, Language::En);
                assert_ne!(vi, p.name, "no Vietnamese name for {kind}/{}", p.name);
                assert_ne!(en, p.name, "no English name for {kind}/{}", p.name);
            }
        }
        // Entries for points that do not exist would be dead text.
        for (kind, name, _, _) in POINTS.iter().chain(CONDITIONS) {
            assert!(
                lookup(*kind, name).is_some(),
                "text for unknown {kind}/{name}"
            );
        }
        for (kind, name, _, _) in CONDITIONS {
            assert_ne!(
                lookup(*kind, name).unwrap().ty,
                PointType::Number,
                "a number has no condition text: {kind}/{name}"
            );
        }
    }

    #[test]
    fn every_enumeration_value_has_names_and_no_more() {
        let mut used = Vec::new();
        for kind in Kind::ALL {
            for p in points_of(kind) {
                if let PointType::Enum(names) = p.ty {
                    for n in names {
                        assert_ne!(enum_value(n, Language::Vi), *n, "{kind}/{}: {n}", p.name);
                        assert_ne!(enum_value(n, Language::En), *n, "{kind}/{}: {n}", p.name);
                        used.push(*n);
                    }
                }
            }
        }
        for (name, _, _) in ENUM_VALUES {
            assert!(
                used.contains(name),
                "name for unknown enumeration value {name}"
            );
        }
    }

    #[test]
    fn every_default_boolean_or_state_rule_has_a_condition_text() {
        for kind in Kind::ALL {
            for r in defaults(kind) {
                let watched = matches!(
                    r.condition,
                    Condition::Flag { .. } | Condition::EnumNot { .. }
                );
                if watched {
                    assert!(
                        has_condition(kind, r.point),
                        "no text for {kind}/{}",
                        r.point
                    );
                }
            }
        }
    }

    #[test]
    fn names_by_hand() {
        let vi = Language::Vi;
        let en = Language::En;
        assert_eq!(point(Kind::Climate, "temperature_c", vi), "Nhiệt độ");
        assert_eq!(point(Kind::Climate, "temperature_c", en), "Temperature");
        assert_eq!(
            point(Kind::Ups, "battery_charge_pct", vi),
            "Dung lượng ắc quy"
        );
        assert_eq!(kind(Kind::Generator, vi), "Máy phát điện");
        assert_eq!(kind(Kind::Leak, en), "Water leak sensor");
        assert_eq!(enum_value("on_battery", vi), "Chạy pin");
        assert_eq!(enum_value("manual", en), "Manual");
        assert_eq!(condition(Kind::Door, "door_open", vi), "Cửa đang mở");
        // Booleans no rule watches by default fall back to their name.
        assert_eq!(
            condition(Kind::Generator, "engine_running", en),
            "Engine running"
        );
    }

    #[test]
    fn unknown_names_fall_back_to_canonical_name() {
        assert_eq!(
            point(Kind::Door, "temperature_c", Language::Vi),
            "temperature_c"
        );
        assert_eq!(enum_value("sideways", Language::En), "sideways");
    }

    #[test]
    fn units_and_quantities_by_hand() {
        let vi = Language::Vi;
        let en = Language::En;
        for (symbol, want_vi, want_en) in [
            ("s", "giây", "s"),
            ("min", "phút", "min"),
            ("h", "giờ", "h"),
            ("d", "ngày", "days"),
            ("°C", "°C", "°C"),
            ("%", "%", "%"),
            ("kWh", "kWh", "kWh"),
            ("", "", ""),
        ] {
            assert_eq!(unit(symbol, vi), want_vi, "{symbol}");
            assert_eq!(unit(symbol, en), want_en, "{symbol}");
        }
        let t = lookup(Kind::Climate, "temperature_c").unwrap();
        assert_eq!(quantity(t, 28.5, vi), "28,5 °C");
        assert_eq!(quantity(t, 28.5, en), "28.5 °C");
        assert_eq!(quantity(t, 27.0, vi), "27 °C");
        let h = lookup(Kind::Climate, "humidity_pct").unwrap();
        assert_eq!(quantity(h, 54.56, vi), "54,6 %");
        let v = lookup(Kind::Ups, "input_voltage_v").unwrap();
        assert_eq!(quantity(v, 499.90000000000003, en), "499.9 V");
        let r = lookup(Kind::Nvr, "retention_days").unwrap();
        assert_eq!(quantity(r, 29.0, vi), "29 ngày");
        assert_eq!(quantity(r, 29.0, en), "29 days");
        let pf = lookup(Kind::PowerMeter, "power_factor").unwrap();
        assert_eq!(quantity(pf, 0.98, vi), "0,98");
        let rt = lookup(Kind::Ups, "runtime_remaining_s").unwrap();
        assert_eq!(quantity(rt, 540.0, vi), "540 giây");
        let e = lookup(Kind::PowerMeter, "energy_kwh").unwrap();
        assert_eq!(quantity(e, 12345.67, vi), "12.345,7 kWh");
        assert_eq!(quantity(e, 12345.67, en), "12,345.7 kWh");
        assert!(is_duration(rt));
        assert!(!is_duration(r));
    }

    #[test]
    fn values_by_hand() {
        let ob = lookup(Kind::Ups, "on_battery").unwrap();
        assert_eq!(value(ob, &Value::Bool(true), Language::Vi), "Có");
        assert_eq!(value(ob, &Value::Bool(false), Language::En), "No");
        let os = lookup(Kind::Ups, "output_source").unwrap();
        assert_eq!(
            value(os, &Value::Enum("on_battery"), Language::Vi),
            "Chạy pin"
        );
        let t = lookup(Kind::Climate, "temperature_c").unwrap();
        assert_eq!(value(t, &Value::Number(23.44), Language::Vi), "23,4 °C");
    }
}
