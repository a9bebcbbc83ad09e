//! Monthly reports (Art. 9, 14.2, 18, 26.9): generator log, environment summary,
//! availability per system, equipment list, incidents. Each is a [`Report`] — a
//! title, a period and sections of tables — computed from the journal and the
//! on-board history, then rendered as printable HTML (print CSS), PDF (headless
//! Chromium's `--print-to-pdf`, fonts with Vietnamese glyphs), CSV or JSON.
//!
//! Figures (docs/RECORDS.md):
//! - **Generator**: the `generator_run` journal entries whose run ended in the month.
//! - **Environment**, per room, over its climate devices' minute rows of the month:
//!   temperature and humidity min (lowest minute min), mean (all samples), max
//!   (highest minute max); minutes outside each band judged on the minute's mean
//!   (temperature 18–27 °C and 15–32 °C, humidity ≤ 60 % and 8–80 %: the Article 10
//!   profile, regulation/THRESHOLDS.md); alarms raised on the room's devices; incidents
//!   with one of the room's devices.
//! - **Availability** of a system: the share of the period without a serious alarm
//!   of one of its devices (from raise to clear, or to a fall to normal), over the
//!   month, the six months and the twelve months ending with it (Art. 26.9). Periods
//!   end at `now` when it is earlier. Beside it, how much of the month the gateway
//!   itself was watching (minutes with its own `uptime_s` in the history).
//! - **Equipment**: the configured devices (Art. 9.1đ, 14.1, 14.2).
//! - **Incidents**: those opened in the month, each with its report draft.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::{SiteInfo, incidents_of};
use crate::journal::{Entry, Journal, Kind as JKind, Query};
use crate::model::{Language, System, Timestamp};

/// What can go wrong making a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--month` is not `YYYY-MM`.
    #[error("month {0:?}: write it as YYYY-MM (2026-11)")]
    Month(String),
    /// An unknown report name.
    #[error("no report {0:?} (one of generator, environment, availability, equipment, incident)")]
    Kind(String),
    /// An unknown format.
    #[error("format {0:?}: use html, pdf, csv or json")]
    Format(String),
    /// The journal failed.
    #[error("journal: {0}")]
    Journal(String),
    /// The history failed.
    #[error(transparent)]
    History(#[from] crate::history::Error),
    /// Chromium could not print the PDF.
    #[error("PDF: {0}")]
    Pdf(String),
    /// A record failed.
    #[error(transparent)]
    Record(#[from] super::Error),
}

/// The reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Monthly generator log.
    Generator,
    /// Monthly environment summary.
    Environment,
    /// Availability per system.
    Availability,
    /// Equipment list.
    Equipment,
    /// Incidents of the month.
    Incident,
}

impl Kind {
    /// From its name.
    pub fn parse(s: &str) -> Result<Kind, Error> {
        Ok(match s {
            "generator" => Kind::Generator,
            "environment" => Kind::Environment,
            "availability" => Kind::Availability,
            "equipment" => Kind::Equipment,
            "incident" | "incidents" => Kind::Incident,
            other => return Err(Error::Kind(other.to_string())),
        })
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Printable HTML.
    Html,
    /// PDF through headless Chromium.
    Pdf,
    /// CSV (every table, one after the other).
    Csv,
    /// JSON (the report as data).
    Json,
}

impl Format {
    /// From its name.
    pub fn parse(s: &str) -> Result<Format, Error> {
        Ok(match s {
            "html" => Format::Html,
            "pdf" => Format::Pdf,
            "csv" => Format::Csv,
            "json" => Format::Json,
            other => return Err(Error::Format(other.to_string())),
        })
    }
    /// MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Pdf => "application/pdf",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// A calendar month in the site's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Month {
    /// Year.
    pub year: i16,
    /// Month 1–12.
    pub month: i8,
}

impl Month {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Month, Error> {
        let bad = || Error::Month(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(2000..=2200).contains(&year) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }
    /// The month holding `ts` in the site's zone.
    pub fn of(ts: Timestamp, time: &crate::texts::time::SiteTime) -> Month {
        let z = time.zoned(ts);
        Month {
            year: z.year(),
            month: z.month(),
        }
    }
    /// `n` months earlier (or later with a negative `n`).
    pub fn minus(self, n: i32) -> Month {
        let i = i32::from(self.year) * 12 + i32::from(self.month) - 1 - n;
        Month {
            year: (i.div_euclid(12)) as i16,
            month: (i.rem_euclid(12) + 1) as i8,
        }
    }
    /// First instant of the month in the site's zone.
    pub fn start(self, time: &crate::texts::time::SiteTime) -> Timestamp {
        let dt = jiff::civil::date(self.year, self.month, 1).at(0, 0, 0, 0);
        time.instant(dt).unwrap_or_default()
    }
    /// `2026-11`.
    pub fn text(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number, shown with at most `1` decimal for people.
    Num(f64),
    /// Nothing known.
    Empty,
}

impl Cell {
    fn opt(v: Option<f64>) -> Cell {
        v.filter(|x| x.is_finite())
            .map(Cell::Num)
            .unwrap_or(Cell::Empty)
    }
    fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    fn show(&self, lang: Language, decimals: u8) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Num(v) => crate::texts::number::display(*v, decimals, lang),
            Cell::Empty => "—".to_string(),
        }
    }
    fn machine(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Num(v) => crate::model::fmt_number(crate::texts::number::round(*v, 3)),
            Cell::Empty => String::new(),
        }
    }
}

/// A table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
}

/// A section: a heading, text lines, a table.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Heading.
    pub heading: String,
    /// Lines of text before the table.
    pub lines: Vec<String>,
    /// The table, if any.
    pub table: Option<Table>,
}

/// A report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which.
    pub kind: Kind,
    /// Language.
    pub lang: Language,
    /// Title.
    pub title: String,
    /// The site's title (the operating unit).
    pub site: String,
    /// The month.
    pub month: String,
    /// Start of the period (UTC).
    pub from: Timestamp,
    /// End of the period (UTC, excluded).
    pub to: Timestamp,
    /// When it was made.
    pub generated_at: Timestamp,
    /// The period and generation time for people.
    pub subtitle: String,
    /// Sections.
    pub sections: Vec<Section>,
}

fn t(lang: Language, vi: &str, en: &str) -> String {
    if lang == Language::Vi {
        vi.to_string()
    } else {
        en.to_string()
    }
}

fn cols(lang: Language, list: &[(&str, &str)]) -> Vec<String> {
    list.iter().map(|(vi, en)| t(lang, vi, en)).collect()
}

/// Every journal entry of `kind` between `from` and `to`, paged.
pub fn entries(
    j: &Journal,
    kind: Option<JKind>,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = j
            .query(&Query {
                since: Some(from),
                until: Some(to),
                kind,
                limit: crate::journal::MAX_LIMIT,
                after_seq: after,
                ..Query::default()
            })
            .map_err(|e| Error::Journal(e.to_string()))?;
        let n = page.len();
        after = page.last().map(|e| e.seq);
        out.extend(page);
        if n < crate::journal::MAX_LIMIT {
            return Ok(out);
        }
    }
}

/// Make report `kind` for `month` in `lang`.
pub fn make(
    kind: Kind,
    site: &SiteInfo,
    j: &Journal,
    month: Month,
    lang: Language,
    now: Timestamp,
) -> Result<Report, Error> {
    let from = month.start(&site.time);
    let to = month.minus(-1).start(&site.time);
    let (title, sections) = match kind {
        Kind::Generator => (
            t(lang, "Nhật ký vận hành máy phát điện", "Generator log"),
            generator(site, j, from, to, lang)?,
        ),
        Kind::Environment => (
            t(
                lang,
                "Tổng hợp nhiệt độ, độ ẩm phòng máy",
                "Environment summary",
            ),
            environment(site, j, from, to, lang)?,
        ),
        Kind::Availability => (
            t(
                lang,
                "Mức độ sẵn sàng của các hệ thống (Điều 26.9)",
                "Availability of the systems (Art. 26.9)",
            ),
            availability(site, j, month, lang, now)?,
        ),
        Kind::Equipment => (
            t(
                lang,
                "Danh mục thiết bị (Điều 9, 14.2)",
                "Equipment list (Art. 9, 14.2)",
            ),
            equipment(site, lang),
        ),
        Kind::Incident => (
            t(
                lang,
                "Báo cáo sự cố (Điều 18)",
                "Incident reports (Art. 18)",
            ),
            incident(site, j, from, to, lang, now)?,
        ),
    };
    let subtitle = format!(
        "{} {} — {} {}",
        t(lang, "Tháng", "Month"),
        month.text(),
        t(lang, "lập lúc", "made at"),
        site.time.human(now, lang)
    );
    Ok(Report {
        kind,
        lang,
        title,
        site: site.title.clone(),
        month: month.text(),
        from,
        to,
        generated_at: now,
        subtitle,
        sections,
    })
}

fn local(site: &SiteInfo, ts: Timestamp) -> String {
    let z = site.time.zoned(ts);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        z.year(),
        z.month(),
        z.day(),
        z.hour(),
        z.minute(),
        z.second()
    )
}

fn name(site: &SiteInfo, id: &str) -> String {
    site.device_name(id).unwrap_or_else(|| id.to_string())
}

fn generator(
    site: &SiteInfo,
    j: &Journal,
    from: Timestamp,
    to: Timestamp,
    lang: Language,
) -> Result<Vec<Section>, Error> {
    let runs: Vec<crate::generator_runs::Run> = entries(j, Some(JKind::GeneratorRun), from, to)?
        .into_iter()
        .filter_map(|e| serde_json::from_value(e.data).ok())
        .collect();
    let cause = |c: crate::generator_runs::Cause| {
        use crate::generator_runs::Cause::*;
        match c {
            Test => t(lang, "Chạy thử định kỳ", "Scheduled test"),
            MainsFailure => t(lang, "Mất điện lưới", "Mains failure"),
            Manual => t(lang, "Vận hành bằng tay", "Manual"),
            Unknown => t(lang, "Không rõ", "Unknown"),
        }
    };
    let mut rows = Vec::new();
    for r in &runs {
        let verdict = match r.passed {
            Some(true) => t(lang, "Đạt", "Passed"),
            Some(false) => t(lang, "Không đạt", "Failed"),
            None => "—".into(),
        };
        let reasons = if lang == Language::Vi {
            r.reasons_vi.join("; ")
        } else {
            r.reasons.join("; ")
        };
        rows.push(vec![
            Cell::text(name(site, &r.device)),
            Cell::text(local(site, r.start)),
            Cell::text(local(site, r.end)),
            Cell::Num(r.duration_s / 60.0),
            Cell::text(cause(r.cause)),
            Cell::opt(r.time_to_rated_s),
            Cell::opt(r.load_kw.map(|s| s.min)),
            Cell::opt(r.load_kw.map(|s| s.mean)),
            Cell::opt(r.load_kw.map(|s| s.max)),
            Cell::opt(r.load_pct.map(|s| s.mean)),
            Cell::opt(r.battery_crank_v),
            Cell::opt(r.fuel_start_pct),
            Cell::opt(r.fuel_end_pct),
            Cell::opt(r.fuel_used_l),
            Cell::opt(r.engine_hours_end),
            Cell::Num(r.alarms.len() as f64),
            Cell::text(verdict),
            Cell::text(reasons),
        ]);
    }
    let tests = runs.iter().filter(|r| r.test).count();
    let passed = runs.iter().filter(|r| r.passed == Some(true)).count();
    let generators: Vec<&super::DeviceInfo> = site
        .devices
        .iter()
        .filter(|d| d.kind == crate::model::Kind::Generator)
        .collect();
    let mut lines = vec![format!(
        "{}: {} — {}: {} — {}: {}",
        t(lang, "Số lần chạy", "Runs"),
        runs.len(),
        t(lang, "chạy thử", "tests"),
        tests,
        t(lang, "đạt", "passed"),
        passed
    )];
    for g in generators {
        if !runs
            .iter()
            .any(|r| r.device == g.id && r.passed == Some(true))
        {
            lines.push(format!(
                "{}: {}",
                name(site, &g.id),
                t(
                    lang,
                    "chưa có lần chạy thử đạt trong tháng (NFPA 110 §8.4)",
                    "no passed test this month (NFPA 110 §8.4)"
                )
            ));
        }
    }
    Ok(vec![Section {
        heading: t(lang, "Các lần chạy máy phát", "Generator runs"),
        lines,
        table: Some(Table {
            columns: cols(
                lang,
                &[
                    ("Máy phát", "Generator"),
                    ("Bắt đầu", "Start"),
                    ("Kết thúc", "End"),
                    ("Thời gian (phút)", "Duration (min)"),
                    ("Nguyên nhân", "Cause"),
                    ("Đạt định mức sau (giây)", "Time to rated (s)"),
                    ("Tải min (kW)", "Load min (kW)"),
                    ("Tải TB (kW)", "Load mean (kW)"),
                    ("Tải max (kW)", "Load max (kW)"),
                    ("Tải TB (%)", "Load mean (%)"),
                    ("Ắc quy khi đề (V)", "Battery at crank (V)"),
                    ("Nhiên liệu đầu (%)", "Fuel start (%)"),
                    ("Nhiên liệu cuối (%)", "Fuel end (%)"),
                    ("Nhiên liệu dùng (l)", "Fuel used (l)"),
                    ("Giờ máy", "Engine hours"),
                    ("Cảnh báo", "Alarms"),
                    ("Kết quả", "Result"),
                    ("Lý do", "Reasons"),
                ],
            ),
            rows,
        }),
    }])
}

/// Bands of the environment report: (point, label vi, label en, low, high).
const BANDS: [(&str, &str, &str, f64, f64); 4] = [
    (
        "temperature_c",
        "Phút ngoài 18–27 °C",
        "Minutes outside 18–27 °C",
        18.0,
        27.0,
    ),
    (
        "temperature_c",
        "Phút ngoài 15–32 °C",
        "Minutes outside 15–32 °C",
        15.0,
        32.0,
    ),
    (
        "humidity_pct",
        "Phút độ ẩm trên 60 %",
        "Minutes above 60 % RH",
        f64::NEG_INFINITY,
        60.0,
    ),
    (
        "humidity_pct",
        "Phút độ ẩm ngoài 8–80 %",
        "Minutes outside 8–80 % RH",
        8.0,
        80.0,
    ),
];

fn environment(
    site: &SiteInfo,
    j: &Journal,
    from: Timestamp,
    to: Timestamp,
    lang: Language,
) -> Result<Vec<Section>, Error> {
    let rows_all = match crate::history::Store::open_read_only(&site.state_dir) {
        Ok(s) => s.query(None, None, from, to, false)?,
        Err(crate::history::Error::Missing { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let alarms = entries(j, Some(JKind::Alarm), from, to)?;
    let incidents = incidents_of(j, from, to).map_err(|e| Error::Journal(e.to_string()))?;
    let mut rows = Vec::new();
    for (room, room_name) in &site.rooms {
        let devices: Vec<&str> = site
            .devices
            .iter()
            .filter(|d| &d.room == room)
            .map(|d| d.id.as_str())
            .collect();
        let climate: Vec<&str> = site
            .devices
            .iter()
            .filter(|d| &d.room == room && d.kind == crate::model::Kind::Climate)
            .map(|d| d.id.as_str())
            .collect();
        if devices.is_empty() {
            continue;
        }
        let of = |point: &str| -> Vec<&crate::history::Row> {
            rows_all
                .iter()
                .filter(|r| r.point == point && climate.contains(&r.device.as_str()))
                .collect()
        };
        let stats = |point: &str| -> (Option<f64>, Option<f64>, Option<f64>) {
            let rs = of(point);
            if rs.is_empty() {
                return (None, None, None);
            }
            let n: u64 = rs.iter().map(|r| r.n).sum();
            let sum: f64 = rs.iter().map(|r| r.sum).sum();
            (
                rs.iter().map(|r| r.min).reduce(f64::min),
                (n > 0).then(|| sum / n as f64),
                rs.iter().map(|r| r.max).reduce(f64::max),
            )
        };
        let (tmin, tmean, tmax) = stats("temperature_c");
        let (hmin, hmean, hmax) = stats("humidity_pct");
        let mut row = vec![
            Cell::text(if room_name.is_empty() {
                room.clone()
            } else {
                room_name.clone()
            }),
            Cell::opt(tmin),
            Cell::opt(tmean),
            Cell::opt(tmax),
            Cell::opt(hmin),
            Cell::opt(hmean),
            Cell::opt(hmax),
        ];
        for (point, _, _, lo, hi) in BANDS {
            let rs = of(point);
            row.push(if rs.is_empty() {
                Cell::Empty
            } else {
                Cell::Num(rs.iter().filter(|r| r.mean < lo || r.mean > hi).count() as f64)
            });
        }
        let raised = alarms
            .iter()
            .filter(|e| {
                e.data.get("state").and_then(|s| s.as_str()) == Some("raised")
                    && e.device.as_deref().is_some_and(|d| devices.contains(&d))
            })
            .count();
        let inc = incidents
            .iter()
            .filter(|i| i.devices().iter().any(|d| devices.contains(&d.as_str())))
            .count();
        row.push(Cell::Num(raised as f64));
        row.push(Cell::Num(inc as f64));
        rows.push(row);
    }
    let mut columns = cols(
        lang,
        &[
            ("Phòng", "Room"),
            ("Nhiệt độ min (°C)", "Temp. min (°C)"),
            ("Nhiệt độ TB (°C)", "Temp. mean (°C)"),
            ("Nhiệt độ max (°C)", "Temp. max (°C)"),
            ("Độ ẩm min (%)", "RH min (%)"),
            ("Độ ẩm TB (%)", "RH mean (%)"),
            ("Độ ẩm max (%)", "RH max (%)"),
        ],
    );
    columns.extend(BANDS.iter().map(|(_, vi, en, _, _)| t(lang, vi, en)));
    columns.extend(cols(
        lang,
        &[("Cảnh báo", "Alarms"), ("Sự cố", "Incidents")],
    ));
    Ok(vec![Section {
        heading: t(
            lang,
            "Theo phòng (Điều 10.3, 10.6)",
            "Per room (Art. 10.3, 10.6)",
        ),
        lines: vec![t(
            lang,
            "Ngưỡng theo hồ sơ Điều 10 (ASHRAE): số phút tính theo giá trị trung bình của từng phút.",
            "Bands of the Article 10 profile (ASHRAE); minutes judged on each minute's mean.",
        )],
        table: Some(Table { columns, rows }),
    }])
}

/// Milliseconds of `[from, to)` during which a serious alarm of each system was active.
pub fn serious_ms(
    site: &SiteInfo,
    alarms: &[Entry],
    from: Timestamp,
    to: Timestamp,
) -> HashMap<System, i64> {
    let mut open: HashMap<String, (System, i64)> = HashMap::new();
    let mut spans: HashMap<System, Vec<(i64, i64)>> = HashMap::new();
    for e in alarms {
        let Some(dev) = e.device.as_deref() else {
            continue;
        };
        let Some(info) = site.device(dev) else {
            continue;
        };
        let sys = info.kind.system();
        let rule = e.data.get("rule").and_then(|x| x.as_str()).unwrap_or("");
        let key = format!("{dev}/{rule}");
        let state = e.data.get("state").and_then(|x| x.as_str()).unwrap_or("");
        let level = e.data.get("level").and_then(|x| x.as_str()).unwrap_or("");
        match (state, level) {
            ("raised", "serious") => {
                open.entry(key).or_insert((sys, e.ts.0));
            }
            ("raised", _) | ("cleared", _) => {
                if let Some((s, start)) = open.remove(&key) {
                    spans.entry(s).or_default().push((start, e.ts.0));
                }
            }
            _ => {}
        }
    }
    for (_, (s, start)) in open {
        spans.entry(s).or_default().push((start, to.0));
    }
    let mut out = HashMap::new();
    for (s, mut v) in spans {
        v.sort();
        let mut total = 0i64;
        let mut cur: Option<(i64, i64)> = None;
        for (a, b) in v {
            let (a, b) = (a.max(from.0), b.min(to.0));
            if b <= a {
                continue;
            }
            match cur {
                Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
                Some((ca, cb)) => {
                    total += cb - ca;
                    cur = Some((a, b));
                }
                None => cur = Some((a, b)),
            }
        }
        if let Some((a, b)) = cur {
            total += b - a;
        }
        out.insert(s, total);
    }
    out
}

fn availability(
    site: &SiteInfo,
    j: &Journal,
    month: Month,
    lang: Language,
    now: Timestamp,
) -> Result<Vec<Section>, Error> {
    let end = month.minus(-1).start(&site.time);
    let periods = [(month, 1), (month.minus(5), 6), (month.minus(11), 12)];
    let first = periods[2].0.start(&site.time);
    // Alarms from a month earlier: an alarm raised before the period and still active.
    let alarms = entries(
        j,
        Some(JKind::Alarm),
        Timestamp(first.0 - 31 * 86_400_000),
        end,
    )?;
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|s| site.devices.iter().any(|d| d.kind.system() == *s))
        .collect();
    let mut rows = Vec::new();
    for s in systems {
        let mut row = vec![Cell::text(crate::texts::names::system(s, lang))];
        for (i, (start_month, _)) in periods.iter().enumerate() {
            let from = start_month.start(&site.time);
            let to = Timestamp(end.0.min(now.0.max(from.0)));
            let span = (to.0 - from.0).max(0);
            let down = serious_ms(site, &alarms, from, to)
                .get(&s)
                .copied()
                .unwrap_or(0);
            if i == 0 {
                row.push(Cell::Num(down as f64 / 60_000.0));
            }
            row.push(if span > 0 {
                Cell::Num((1.0 - down as f64 / span as f64) * 100.0)
            } else {
                Cell::Empty
            });
        }
        rows.push(row);
    }
    let mut lines = vec![t(
        lang,
        "Sẵn sàng = phần thời gian không có cảnh báo nghiêm trọng của thiết bị thuộc hệ thống.",
        "Availability = share of the time without a serious alarm on a device of the system.",
    )];
    // How much of the month the gateway itself was watching: minutes with its own
    // readings (`uptime_s`, every second while it runs) in the on-board history.
    let from = month.start(&site.time);
    let to = Timestamp(end.0.min(now.0.max(from.0)));
    if to.0 > from.0 {
        let watched = match crate::history::Store::open_read_only(&site.state_dir) {
            Ok(h) => h
                .query(None, Some("uptime_s"), from, to, false)?
                .into_iter()
                .filter(|r| r.device == "gateway" || r.device == "gateway-self")
                .map(|r| r.ts)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            Err(crate::history::Error::Missing { .. }) => 0,
            Err(e) => return Err(e.into()),
        };
        let minutes = ((to.0 - from.0) / 60_000).max(1);
        let pct = crate::texts::number::display(watched as f64 / minutes as f64 * 100.0, 1, lang);
        lines.push(match lang {
            Language::Vi => {
                format!("Gateway giám sát {watched} trong {minutes} phút của tháng ({pct} %).")
            }
            Language::En => format!(
                "The gateway was watching {watched} of the month's {minutes} minutes ({pct} %)."
            ),
        });
    }
    Ok(vec![Section {
        heading: t(lang, "Theo hệ thống", "Per system"),
        lines,
        table: Some(Table {
            columns: cols(
                lang,
                &[
                    ("Hệ thống", "System"),
                    (
                        "Phút có sự cố nghiêm trọng (tháng)",
                        "Serious-alarm minutes (month)",
                    ),
                    ("Sẵn sàng tháng (%)", "Month (%)"),
                    ("6 tháng (%)", "6 months (%)"),
                    ("12 tháng (%)", "12 months (%)"),
                ],
            ),
            rows,
        }),
    }])
}

fn equipment(site: &SiteInfo, lang: Language) -> Vec<Section> {
    let rows = site
        .devices
        .iter()
        .map(|d| {
            let room = site
                .rooms
                .iter()
                .find(|(id, _)| *id == d.room)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| d.room.clone());
            vec![
                Cell::text(d.label.clone().unwrap_or_default()),
                Cell::text(d.name.clone()),
                Cell::text(crate::texts::names::kind(d.kind, lang)),
                Cell::text(crate::texts::names::system(d.kind.system(), lang)),
                Cell::text(room),
                Cell::text(d.location.clone().unwrap_or_default()),
                Cell::text(d.model.clone().unwrap_or_default()),
                Cell::text(d.serial.clone().unwrap_or_default()),
                Cell::text(d.id.clone()),
            ]
        })
        .collect();
    vec![Section {
        heading: t(lang, "Thiết bị được giám sát", "Monitored equipment"),
        lines: vec![format!(
            "{}: {}",
            t(lang, "Số thiết bị", "Devices"),
            site.devices.len()
        )],
        table: Some(Table {
            columns: cols(
                lang,
                &[
                    ("Nhãn", "Label"),
                    ("Tên", "Name"),
                    ("Loại", "Kind"),
                    ("Hệ thống", "System"),
                    ("Phòng", "Room"),
                    ("Vị trí", "Location"),
                    ("Model", "Model"),
                    ("Số sê-ri", "Serial"),
                    ("Mã", "Id"),
                ],
            ),
            rows,
        }),
    }]
}

fn incident(
    site: &SiteInfo,
    j: &Journal,
    from: Timestamp,
    to: Timestamp,
    lang: Language,
    now: Timestamp,
) -> Result<Vec<Section>, Error> {
    let list = incidents_of(j, from, to).map_err(|e| Error::Journal(e.to_string()))?;
    let mut rows = Vec::new();
    for i in &list {
        let state = match &i.closed {
            Some(c) if c.false_alarm => t(lang, "Báo động giả", "False alarm"),
            Some(c) if c.at <= i.deadline => t(lang, "Đã đóng trong hạn", "Closed in time"),
            Some(_) => t(lang, "Đã đóng sau hạn", "Closed late"),
            None if i.overdue(now) => t(lang, "Quá hạn", "Overdue"),
            None => t(lang, "Đang mở", "Open"),
        };
        rows.push(vec![
            Cell::text(i.id.clone()),
            Cell::text(crate::texts::names::system(i.system, lang)),
            Cell::text(local(site, i.opened_at)),
            Cell::text(local(site, i.deadline)),
            Cell::Num(i.alarms.len() as f64),
            Cell::text(state),
        ]);
    }
    let mut sections = vec![Section {
        heading: t(
            lang,
            "Danh sách sự cố trong tháng",
            "Incidents of the month",
        ),
        lines: vec![format!(
            "{}: {}",
            t(lang, "Số sự cố", "Incidents"),
            list.len()
        )],
        table: Some(Table {
            columns: cols(
                lang,
                &[
                    ("Mã", "Id"),
                    ("Hệ thống", "System"),
                    ("Mở lúc", "Opened"),
                    ("Hạn báo cáo", "Report due"),
                    ("Số cảnh báo", "Alarms"),
                    ("Trạng thái", "State"),
                ],
            ),
            rows,
        }),
    }];
    for i in &list {
        let d = super::incident_detail(j, site, &i.id, lang, now)?;
        let mut lines = Vec::new();
        for (h, body) in &d.draft.sections {
            lines.push(format!("{h}: {}", body.replace('\n', "; ")));
        }
        sections.push(Section {
            heading: d.draft.title.clone(),
            lines,
            table: Some(Table {
                columns: cols(lang, &[("Thời gian", "Time"), ("Diễn biến", "Event")]),
                rows: d
                    .draft
                    .timeline
                    .iter()
                    .map(|it| vec![Cell::text(local(site, it.ts)), Cell::text(it.text.clone())])
                    .collect(),
            }),
        });
    }
    Ok(sections)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Printable HTML (A4 landscape, print CSS, fonts with Vietnamese glyphs).
pub fn html(r: &Report) -> String {
    let mut out = String::new();
    let lang = if r.lang == Language::Vi { "vi" } else { "en" };
    out.push_str(&format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body>",
        esc(&r.title),
        CSS
    ));
    out.push_str(&format!(
        "<header><div class=\"site\">{}</div><h1>{}</h1><div class=\"sub\">{}</div></header>",
        esc(&r.site),
        esc(&r.title),
        esc(&r.subtitle)
    ));
    for s in &r.sections {
        out.push_str(&format!("<section><h2>{}</h2>", esc(&s.heading)));
        for l in &s.lines {
            out.push_str(&format!("<p>{}</p>", esc(l)));
        }
        if let Some(t) = &s.table {
            out.push_str("<table><thead><tr>");
            for c in &t.columns {
                out.push_str(&format!("<th>{}</th>", esc(c)));
            }
            out.push_str("</tr></thead><tbody>");
            for row in &t.rows {
                out.push_str("<tr>");
                for c in row {
                    let class = if matches!(c, Cell::Num(_)) {
                        " class=\"n\""
                    } else {
                        ""
                    };
                    out.push_str(&format!("<td{class}>{}</td>", esc(&c.show(r.lang, 1))));
                }
                out.push_str("</tr>");
            }
            if t.rows.is_empty() {
                out.push_str(&format!(
                    "<tr><td colspan=\"{}\">{}</td></tr>",
                    t.columns.len(),
                    if r.lang == Language::Vi {
                        "Không có dữ liệu"
                    } else {
                        "No data"
                    }
                ));
            }
            out.push_str("</tbody></table>");
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    out
}

const CSS: &str = "
body { font-family: 'Noto Sans', 'DejaVu Sans', sans-serif; font-size: 11pt; color: #111; margin: 1.5em; }
header { border-bottom: 2px solid #333; margin-bottom: 1em; }
h1 { font-size: 16pt; margin: .2em 0; } h2 { font-size: 13pt; margin: 1em 0 .4em; }
.site { font-weight: bold; } .sub { color: #444; margin-bottom: .5em; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; }
th, td { border: 1px solid #888; padding: 2px 4px; vertical-align: top; }
th { background: #eee; } td.n { text-align: right; white-space: nowrap; }
@page { size: A4 landscape; margin: 12mm; }
@media print { body { margin: 0; } section { break-inside: auto; } tr { break-inside: avoid; } thead { display: table-header-group; } }
";

/// CSV: each table after a `# heading` line; numbers in machine form (`23.5`).
pub fn csv(r: &Report) -> String {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    for s in &r.sections {
        let Some(t) = &s.table else { continue };
        out.push_str(&format!("# {}\n", s.heading));
        out.push_str(&t.columns.iter().map(|c| q(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
        for row in &t.rows {
            out.push_str(
                &row.iter()
                    .map(|c| q(&c.machine()))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
    }
    out
}

/// The Chromium to print with: `DCGW_CHROMIUM`, else `chromium`, `chromium-browser`,
/// `google-chrome` on the PATH.
pub fn chromium() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("DCGW_CHROMIUM") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// PDF of the HTML, printed by headless Chromium (`--print-to-pdf`).
pub fn pdf(html: &str, work: &Path) -> Result<Vec<u8>, Error> {
    let bin = chromium().ok_or_else(|| {
        Error::Pdf("no Chromium to print with: apt-get install chromium fonts-dejavu-core (or set DCGW_CHROMIUM)".into())
    })?;
    let dir = tempfile_dir(work)?;
    let page = dir.join("report.html");
    let out = dir.join("report.pdf");
    std::fs::write(&page, html).map_err(|e| Error::Pdf(e.to_string()))?;
    let status = std::process::Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::Pdf(format!("{}: {e}", bin.display())))?;
    let bytes = std::fs::read(&out)
        .map_err(|e| Error::Pdf(format!("{} ({status}) wrote no PDF: {e}", bin.display())));
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn tempfile_dir(work: &Path) -> Result<std::path::PathBuf, Error> {
    let dir = work.join(format!("dcgw-report-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Pdf(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// The report in `format`.
pub fn render(r: &Report, format: Format) -> Result<Vec<u8>, Error> {
    Ok(match format {
        Format::Html => html(r).into_bytes(),
        Format::Csv => csv(r).into_bytes(),
        Format::Json => serde_json::to_vec_pretty(r).unwrap_or_default(),
        Format::Pdf => pdf(&html(r), &std::env::temp_dir())?,
    })
}
