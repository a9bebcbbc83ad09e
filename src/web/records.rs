//! The records API: `GET /api/v1/incidents`, `GET /api/v1/incidents/{id}[?lang=en]`
//! (the incident, its timeline and report draft), and the reports and history
//! (src/records/). Every answer is built from the journal (and the on-board history)
//! on a blocking thread, never from a sink, so it works without InfluxDB.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::api::{App, json, json_error, to_json};
use crate::model::{Language, Timestamp};

/// The value of `name` in a raw query string (no percent-decoding: the values used
/// here are plain words).
pub(crate) fn param<'a>(q: Option<&'a str>, name: &str) -> Option<&'a str> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// `lang=vi|en` (default: the site's).
pub(crate) fn lang(q: Option<&str>, default: Language) -> Result<Language, Box<Response>> {
    match param(q, "lang") {
        None => Ok(default),
        Some("vi") => Ok(Language::Vi),
        Some("en") => Ok(Language::En),
        Some(other) => Err(Box::new(json_error(
            StatusCode::BAD_REQUEST,
            &format!("query parameter \"lang\": {other:?} is not vi or en"),
        ))),
    }
}

fn unavailable() -> Response {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "records are not available on this gateway (no journal)",
    )
}

/// Run `f` on a blocking thread; its error becomes a JSON 404 or 500.
async fn blocking<T: serde::Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::records::Error> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => json(StatusCode::OK, to_json(&v)),
        Ok(Err(e @ crate::records::Error::UnknownIncident(_))) => {
            json_error(StatusCode::NOT_FOUND, &e.to_string())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "web: record failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "web: record task failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "record failed")
        }
    }
}

/// `GET /api/v1/incidents` → `{"incidents": [ {id, system, opened_at, deadline,
/// alarms, closed?, overdue, ...} ]}`, newest first.
pub(crate) async fn incidents(State(app): State<App>) -> Response {
    let Some(j) = app.shared.journal.clone() else {
        return unavailable();
    };
    blocking(move || {
        crate::records::incident_list(&j, Timestamp::now())
            .map(|l| serde_json::json!({ "incidents": l }))
    })
    .await
}

/// `GET /api/v1/incidents/{id}[?lang=en]` → `{incident, overdue, draft: {title,
/// sections, timeline}, text}`.
pub(crate) async fn incident(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let (Some(j), Some(site)) = (app.shared.journal.clone(), app.shared.records.clone()) else {
        return unavailable();
    };
    let lang = match lang(q.as_deref(), site.language) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    blocking(move || crate::records::incident_detail(&j, &site, &id, lang, Timestamp::now())).await
}

/// `GET /api/v1/history?device=&point=[&hours=24]` → `{device, point, unit, hours,
/// points: [ {ts, n, min, mean, max} ]}`: the point's minutes from the on-board
/// history (at most 35 days: `hours` 1 to 840), oldest first (the console's sparkline).
pub(crate) async fn history(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let Some(site) = app.shared.records.clone() else {
        return unavailable();
    };
    let q = q.as_deref();
    let bad = |m: String| json_error(StatusCode::BAD_REQUEST, &m);
    let Some(device) = param(q, "device")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
    else {
        return bad("query parameter \"device\" is needed".into());
    };
    let Some(point) = param(q, "point")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
    else {
        return bad("query parameter \"point\" is needed".into());
    };
    let hours = match param(q, "hours").map(str::parse::<u32>) {
        None => 24,
        Some(Ok(h)) if (1..=840).contains(&h) => h,
        Some(_) => return bad("query parameter \"hours\": a whole number from 1 to 840".into()),
    };
    let Some(dev) = site.device(&device) else {
        return json_error(StatusCode::NOT_FOUND, &format!("no device {device:?}"));
    };
    let Some(def) = crate::points::lookup(dev.kind, &point) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("device {device:?} ({}) has no point {point:?}", dev.kind),
        );
    };
    let unit = def.unit;
    let dir = site.state_dir.clone();
    match tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let from = Timestamp(now.0 - i64::from(hours) * 3_600_000);
        let rows = match crate::history::Store::open_read_only(&dir) {
            Ok(s) => s.query(Some(&device), Some(&point), from, now, false)?,
            Err(crate::history::Error::Missing { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(serde_json::json!({
            "device": device, "point": point, "unit": unit, "hours": hours,
            "points": rows.iter().map(|r| serde_json::json!({
                "ts": r.ts, "n": r.n, "min": r.min, "mean": r.mean, "max": r.max,
            })).collect::<Vec<_>>(),
        }))
    })
    .await
    {
        Ok(Ok(v)) => json(StatusCode::OK, to_json(&v)),
        Ok(Err(e)) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "history query failed"),
    }
}

/// `GET /api/v1/reports/{kind}?month=YYYY-MM[&lang=en][&format=html|pdf|csv|json]`:
/// the report (default: this month, the site's language, HTML).
pub(crate) async fn report(
    State(app): State<App>,
    Path(kind): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    use crate::records::reports::{self, Format, Kind, Month};
    use axum::response::IntoResponse;
    let (Some(j), Some(site)) = (app.shared.journal.clone(), app.shared.records.clone()) else {
        return unavailable();
    };
    let q = q.as_deref();
    let lang = match lang(q, site.language) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let bad = |e: reports::Error| json_error(StatusCode::BAD_REQUEST, &e.to_string());
    let kind = match Kind::parse(&kind) {
        Ok(k) => k,
        Err(e) => return json_error(StatusCode::NOT_FOUND, &e.to_string()),
    };
    let format = match Format::parse(param(q, "format").unwrap_or("html")) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let now = Timestamp::now();
    let month = match param(q, "month") {
        Some(m) => match Month::parse(m) {
            Ok(m) => m,
            Err(e) => return bad(e),
        },
        None => Month::of(now, &site.time),
    };
    let made = tokio::task::spawn_blocking(move || {
        let r = reports::make(kind, &site, &j, month, lang, now)?;
        reports::render(&r, format)
    })
    .await;
    match made {
        Ok(Ok(bytes)) => (
            StatusCode::OK,
            [
                (axum::http::header::CONTENT_TYPE, format.mime()),
                (axum::http::header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "web: report failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "report failed"),
    }
}

/// `GET /records[?lang=en]`: the console's records page — this month's and last
/// month's reports (HTML, PDF, CSV, JSON) and the incidents with their drafts. Plain
/// server-made HTML, no script: it works on any browser of the operations room.
pub(crate) async fn page(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    use axum::response::IntoResponse;
    let (Some(j), Some(site)) = (app.shared.journal.clone(), app.shared.records.clone()) else {
        return unavailable();
    };
    let lang = match lang(q.as_deref(), site.language) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let now = Timestamp::now();
    let incidents = tokio::task::spawn_blocking(move || crate::records::incident_list(&j, now))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    (
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        records_html(&site, &incidents, lang, now),
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The records page's HTML.
pub(crate) fn records_html(
    site: &crate::records::SiteInfo,
    incidents: &[crate::records::Listed],
    lang: Language,
    now: Timestamp,
) -> String {
    use crate::records::reports::Month;
    let vi = lang == Language::Vi;
    let t = |a: &'static str, b: &'static str| if vi { a } else { b };
    let l = if vi { "vi" } else { "en" };
    let this = Month::of(now, &site.time);
    let mut out = format!(
        "<!doctype html><html lang=\"{l}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:'Noto Sans','DejaVu Sans',sans-serif;margin:1.5em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:3px 6px}}</style></head><body>\
         <h1>{}</h1><p>{}</p><h2>{}</h2><table><tr><th>{}</th>",
        t("Hồ sơ", "Records"),
        esc(&site.title),
        t(
            "Báo cáo lập từ nhật ký và lịch sử trên gateway (không cần InfluxDB).",
            "Reports made from the gateway's journal and history (no InfluxDB needed)."
        ),
        t("Báo cáo", "Reports"),
        t("Báo cáo", "Report"),
    );
    let months = [this, this.minus(1)];
    for m in months {
        out.push_str(&format!("<th>{}</th>", m.text()));
    }
    out.push_str("</tr>");
    let kinds = [
        ("generator", "Nhật ký máy phát điện", "Generator log"),
        (
            "environment",
            "Nhiệt độ, độ ẩm phòng máy",
            "Environment summary",
        ),
        (
            "availability",
            "Mức độ sẵn sàng (Điều 26.9)",
            "Availability (Art. 26.9)",
        ),
        ("equipment", "Danh mục thiết bị", "Equipment list"),
        (
            "incident",
            "Báo cáo sự cố (Điều 18)",
            "Incident reports (Art. 18)",
        ),
    ];
    for (kind, a, b) in kinds {
        out.push_str(&format!("<tr><td>{}</td>", t(a, b)));
        for m in months {
            out.push_str("<td>");
            for f in ["html", "pdf", "csv", "json"] {
                out.push_str(&format!(
                    "<a href=\"/api/v1/reports/{kind}?month={}&amp;lang={l}&amp;format={f}\">{}</a> ",
                    m.text(),
                    f.to_uppercase()
                ));
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str(&format!(
        "</table><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t("Sự cố", "Incidents"),
        t("Mã", "Id"),
        t("Hệ thống", "System"),
        t("Mở lúc", "Opened"),
        t("Hạn báo cáo", "Report due"),
        t("Trạng thái", "State"),
    ));
    for i in incidents {
        let inc = &i.incident;
        let state = match &inc.closed {
            Some(c) if c.false_alarm => t("Báo động giả", "False alarm"),
            Some(_) => t("Đã đóng", "Closed"),
            None if i.overdue => t("QUÁ HẠN", "OVERDUE"),
            None => t("Đang mở", "Open"),
        };
        out.push_str(&format!(
            "<tr><td><a href=\"/api/v1/incidents/{id}?lang={l}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(crate::texts::names::system(inc.system, lang)),
            esc(&site.time.human(inc.opened_at, lang)),
            esc(&site.time.human(inc.deadline, lang)),
            state,
            id = esc(&inc.id),
        ));
    }
    if incidents.is_empty() {
        out.push_str(&format!(
            "<tr><td colspan=\"5\">{}</td></tr>",
            t("Chưa có sự cố", "No incidents")
        ));
    }
    out.push_str("</table></body></html>\n");
    out
}
