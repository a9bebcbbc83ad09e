//! The logged-in side of the page: the login page (`GET /login`), the alarm console
//! (`GET /console`) and the one HTTP way in for commands (`POST /api/v1/commands`).
//!
//! Commands from the page travel the same path as every other entry
//! ([`crate::commands`]): parsed, sent to the hub, journaled with their origin
//! (`web`, peer `<user>@<address>`), applied, answered. `by` is the logged-in user (or
//! the API token), never what the body claims.
//!
//! Both pages are self-contained documents (no CDN): the texts are Vietnamese unless
//! `?lang=en` or the site's language says English; everything the server or a device
//! label supplies is put into the page with `textContent`, never as HTML.

use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::App;
use super::auth::{ClientAddr, Principal, json_answer};
use crate::commands::{self, Origin};

const LOGIN_HTML: &str = include_str!("assets/login.html");
const CONSOLE_HTML: &str = include_str!("assets/console.html");

/// How long the page waits for the hub's answer to a command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

fn lang(app: &App, q: Option<&str>) -> &'static str {
    let asked = q.and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("lang="))
            .map(|v| if v == "en" { "en" } else { "vi" })
    });
    asked.unwrap_or_else(|| {
        if app.shared.read().language == "en" {
            "en"
        } else {
            "vi"
        }
    })
}

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `s` as a JSON string safe inside a `<script>` element (`<` escaped).
fn script_json(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace('<', "\\u003c")
}

/// `GET /login`.
pub(crate) async fn login_page(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let l = lang(&app, q.as_deref());
    let title = app.shared.read().title.clone();
    html(
        LOGIN_HTML
            .replace("{{LANG}}", l)
            .replace("{{TITLE_JSON}}", &script_json(&title)),
    )
}

/// `GET /console`.
pub(crate) async fn console_page(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let l = lang(&app, q.as_deref());
    let title = app.shared.read().title.clone();
    html(
        CONSOLE_HTML
            .replace("{{LANG}}", l)
            .replace("{{TITLE_JSON}}", &script_json(&title)),
    )
}

/// `POST /api/v1/commands` with a command's JSON (`verb`, `target`, `comment`,
/// `reason`, `minutes`, optional `id`): answered with the hub's `{id, ok, error?,
/// result?}` — 200 when applied, 409 when refused by the alarm state, 400 when
/// malformed, 503 when the gateway cannot take commands.
pub(crate) async fn post_command(State(app): State<App>, req: Request) -> Response {
    let principal = req.extensions().get::<Principal>().cloned();
    let ip = req
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "?".into());
    let by = match &principal {
        Some(p @ (Principal::User { .. } | Principal::Token { .. })) => p.who(),
        // The layer refuses state changes without accounts; never reached then.
        _ => {
            return json_answer(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": "commands need an operator's session or token", "code": "role"}),
            );
        }
    };
    let Some(commands) = app.commands.clone() else {
        return json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "this server takes no commands", "code": "no_commands"}),
        );
    };
    let body = match axum::body::to_bytes(req.into_body(), commands::MAX_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return json_answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": format!("command larger than {} bytes", commands::MAX_BYTES)}),
            );
        }
    };
    let mut v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return json_answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"id": "", "ok": false, "error": "not a JSON command object"}),
            );
        }
    };
    if v.get("id")
        .and_then(|x| x.as_str())
        .is_none_or(str::is_empty)
    {
        v["id"] = format!("web-{}", crate::accounts::random_hex(8)).into();
    }
    v["by"] = by.clone().into();
    let origin = Origin {
        entry: "web".into(),
        peer: format!("{by}@{ip}"),
    };
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    let reply = match commands::parse(&bytes, origin) {
        Ok(cmd) => commands.send(cmd, COMMAND_TIMEOUT).await,
        Err(r) => {
            return json_answer(
                StatusCode::BAD_REQUEST,
                serde_json::to_value(&r).unwrap_or_default(),
            );
        }
    };
    let status = if reply.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    json_answer(status, serde_json::to_value(&reply).unwrap_or_default())
}
