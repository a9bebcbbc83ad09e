//! The local web server: the wall view (`GET /`), the JSON API under `/api/v1/`, live
//! updates as server-sent events, `/healthz` and `/metrics`.
//!
//! The wall view is the fallback that keeps working when the network or InfluxDB is
//! down, so it depends on nothing outside the binary: one HTML document with its CSS
//! and JavaScript inlined, no CDN, no framework.
//!
//! Invariants:
//! - Every answer comes from [`Shared`]; the server never blocks the pollers: the state
//!   lock is taken only to copy or serialise, never across an `.await`.
//! - Bad input never panics: a malformed query is a `400` with a JSON `{"error": ...}`
//!   body, counted in `dcgw_bad_input{what="http"}`; unknown paths are a JSON `404`,
//!   a wrong method a JSON `405`.
//! - A live client that falls behind the update channel (broadcast lag) gets a full
//!   refresh instead of a gap; every client also gets a full refresh every
//!   [`REFRESH_INTERVAL`], so a page never shows a picture that silently diverged.

pub(crate) mod api;
pub mod auth;
mod console;
pub mod page;
mod records;
pub mod serve;

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::watch;

use self::auth::{Auth, AuthOptions};
use crate::commands::Commands;

use crate::state::Shared;

/// How often the event stream sends a full refresh, whatever else happens.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// `/healthz` answers 503 when `Live::last_progress` is older than this.
pub const HEALTH_MAX_AGE: Duration = Duration::from_secs(30);

/// `/healthz` answers 503 when a sink has failed to deliver for longer than this: the
/// same limit as the gateway's `sink_unreachable` alarm (docs/RULES.md), so a short
/// broker restart is not reported as ill health and a real outage is.
pub const SINK_FAILING_MAX: Duration = Duration::from_secs(300);

/// A request the API refuses (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A query parameter's name or value is not valid percent-encoded UTF-8.
    #[error("query parameter {param:?}: bad percent-encoding or not UTF-8")]
    BadEncoding {
        /// The raw parameter as sent.
        param: String,
    },
    /// A filter parameter was given without a value.
    #[error("query parameter {param:?} needs a value")]
    EmptyValue {
        /// Parameter name.
        param: &'static str,
    },
    /// `kind=` names no device kind.
    #[error("query parameter \"kind\": unknown device kind {value:?} (one of {known})")]
    UnknownKind {
        /// The value sent.
        value: String,
        /// The accepted names, comma-separated.
        known: String,
    },
    /// `kind=` of `/api/v1/journal` names no journal entry kind.
    #[error("query parameter \"kind\": unknown journal entry kind {value:?} (one of {known})")]
    UnknownEntryKind {
        /// The value sent.
        value: String,
        /// The accepted names, comma-separated.
        known: String,
    },
    /// A time parameter (`since`, `until`) is neither RFC 3339 nor relative (`-24h`).
    #[error("query parameter {param:?}: {reason}")]
    BadTime {
        /// Parameter name.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A number parameter (`limit`, `after_seq`) is not a number in its range.
    #[error("query parameter {param:?}: {value:?} is not {expected}")]
    BadNumber {
        /// Parameter name.
        param: &'static str,
        /// The value sent.
        value: String,
        /// What is accepted.
        expected: String,
    },
}

/// The whole HTTP application over the shared live state, without accounts (reading
/// open, no state change) and without commands.
///
/// Routes: `GET /` (wall view), `GET /api/v1/readings`, `GET /api/v1/alarms`,
/// `GET /api/v1/sinks`, `GET /api/v1/journal`, `GET /api/v1/events` (server-sent events), `GET /healthz`,
/// `GET /metrics`; the console's `GET /login`, `POST /login`, `POST /logout`,
/// `POST /login/password`, `GET /api/v1/session`, `GET /console`,
/// `POST /api/v1/commands`.
pub fn router(shared: Shared) -> Router {
    // Without a shutdown signal the event streams end only when their client leaves.
    let (_never, stop) = watch::channel(false);
    app(
        shared,
        stop,
        Arc::new(Auth::new(AuthOptions::default())),
        None,
    )
}

/// [`router`] with accounts and commands.
pub fn router_with(shared: Shared, auth: Arc<Auth>, commands: Option<Commands>) -> Router {
    let (_never, stop) = watch::channel(false);
    app(shared, stop, auth, commands)
}

/// The application with a stop signal for the event streams: graceful shutdown waits
/// for open responses, and an event stream never ends on its own. Every route, also
/// one added later, sits behind [`auth::layer`].
fn app(
    shared: Shared,
    stop: watch::Receiver<bool>,
    auth: Arc<Auth>,
    commands: Option<Commands>,
) -> Router {
    Router::new()
        .route("/", get(page::wall))
        .route("/api/v1/readings", get(api::readings))
        .route("/api/v1/alarms", get(api::alarms))
        .route("/api/v1/sinks", get(api::sinks))
        .route("/api/v1/outputs", get(api::outputs))
        .route("/api/v1/journal", get(api::journal))
        .route("/api/v1/oncall", get(api::oncall))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/incidents", get(records::incidents))
        .route("/api/v1/incidents/{id}", get(records::incident))
        .route("/api/v1/history", get(records::history))
        .route("/api/v1/reports/{kind}", get(records::report))
        .route("/records", get(records::page))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/login", get(console::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/login/password", post(auth::change_password))
        .route("/api/v1/session", get(auth::session))
        .route("/console", get(console::console_page))
        .route("/api/v1/commands", post(console::post_command))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            auth::layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(serve::MAX_BODY_BYTES))
        .with_state(api::App {
            shared,
            stop,
            auth,
            commands,
        })
}

/// Serve [`router`] on an already bound listener until the process ends or the
/// listener fails.
pub async fn serve(listener: tokio::net::TcpListener, shared: Shared) -> std::io::Result<()> {
    serve_until(listener, shared, std::future::pending()).await
}

/// Serve [`router`] until `shutdown` resolves, then stop accepting and let open
/// requests finish (event streams are cut).
pub async fn serve_until<F>(
    listener: tokio::net::TcpListener,
    shared: Shared,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with(listener, shared, Options::default(), shutdown).await
}

/// What the web server needs beside the live picture.
#[derive(Clone, Default)]
pub struct Options {
    /// Logins, sessions and tokens.
    pub auth: Option<Arc<Auth>>,
    /// The way into the hub for `POST /api/v1/commands`.
    pub commands: Option<Commands>,
    /// TLS for the page (none: plain HTTP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Connection limits and timeouts.
    pub limits: serve::Limits,
}

/// The web server's options for a site: accounts in `state_dir`, login entries in
/// `journal`, TLS from `[web]`'s files, session and connection limits. TLS files that
/// cannot be used are logged and leave the page on plain HTTP; where TLS is required
/// (accounts on a non-loopback address) that closes the console instead of stopping
/// the gateway.
pub fn options_for(
    site: &crate::config::Site,
    state_dir: &std::path::Path,
    addr: std::net::SocketAddr,
    journal: &crate::journal::Journal,
) -> Options {
    let w = &site.web;
    let mut problem = None;
    let tls = match (&w.tls_cert_file, &w.tls_key_file) {
        (Some(c), Some(k)) => match serve::tls_config(c, k) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "web: TLS files cannot be used; the page is served without TLS");
                problem = Some(format!("the TLS files cannot be used ({e})"));
                None
            }
        },
        _ => None,
    };
    let tls_problem = if tls.is_some() || addr.ip().is_loopback() {
        None
    } else {
        Some(format!(
            "accounts exist but the page on {addr} has no TLS: {}; set [web] tls_cert_file and tls_key_file, or listen on loopback",
            problem.unwrap_or_else(|| "no certificate configured".into())
        ))
    };
    let auth = Auth::new(AuthOptions {
        state_dir: Some(state_dir.to_path_buf()),
        journal: Some(journal.clone()),
        gateway: site.gateway.clone(),
        tls: tls.is_some(),
        tls_problem,
        limits: auth::SessionLimits {
            idle: Duration::from_secs(w.session_idle_s),
            max: Duration::from_secs(w.session_max_s),
        },
        clock: Arc::new(crate::model::Timestamp::now),
    });
    Options {
        auth: Some(Arc::new(auth)),
        commands: None,
        tls,
        limits: serve::Limits {
            max_connections: w.max_connections,
            max_per_address: w.max_connections_per_address,
            ..serve::Limits::default()
        },
    }
}

/// Serve the application with `opts` until `shutdown` resolves, then stop accepting
/// and let open requests finish (event streams are cut).
pub async fn serve_with<F>(
    listener: tokio::net::TcpListener,
    shared: Shared,
    opts: Options,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = opts.tls.is_some(), "web server listening");
    }
    let (stop_tx, stop) = watch::channel(false);
    let auth = opts
        .auth
        .unwrap_or_else(|| Arc::new(Auth::new(AuthOptions::default())));
    auth.check().await;
    let router = app(shared, stop, auth, opts.commands);
    serve::run(listener, router, opts.tls, opts.limits, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod auth_tests;
