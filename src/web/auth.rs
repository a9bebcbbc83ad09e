//! Who is asking: logins, sessions, tokens, and the one layer over the whole router
//! that lets a request through or refuses it (docs/ACCOUNTS.md).
//!
//! Invariants:
//! - **Protected by default**: [`layer`] wraps every route. Only [`OPEN`] paths
//!   (`/healthz`, `/metrics`) and the login paths pass without credentials once
//!   accounts exist; a route added later is protected without naming it anywhere.
//! - **Without accounts no HTTP state change exists**: every method but GET/HEAD is
//!   refused with 403 until `dc-gateway user add` made one (CONTRACTS.md Round 2);
//!   reading stays open as before.
//! - **With accounts** every other request needs a session cookie, an API token
//!   (`Authorization: Bearer`), or the kiosk token (the wall view's paths only,
//!   [`KIOSK_PATHS`], GET only). A state change by session also needs the session's
//!   CSRF token in `X-CSRF-Token`, and at least the `operator` role.
//! - **Unsafe settings close the console, never the monitoring**: an unreadable
//!   accounts file, an admin with a default password, or accounts without TLS on a
//!   non-loopback address answer every protected path with 503 and clear
//!   [`Auth::console_ok`] (the gateway's serious `web_console_disabled` alarm);
//!   `/healthz`, `/metrics`, polling, rules and sinks go on.
//! - Sessions live in memory: a restart logs everybody out (by design: nothing to
//!   steal from the disk). They end after [`SessionLimits::idle`] without a request and
//!   [`SessionLimits::max`] after the login, whatever happens.
//! - Every login, failure, lockout and logout is journaled (`login` entries) with the
//!   client address before the answer goes out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::accounts::{self, Accounts, Outcome, Refusal, Role, Store};
use crate::journal::{self, Journal};
use crate::model::Timestamp;

/// Paths that never need credentials.
pub const OPEN: [&str; 2] = ["/healthz", "/metrics"];
/// Paths of the login itself (no session needed to reach them).
pub const LOGIN_PATHS: [&str; 2] = ["/login", "/logout"];
/// What the kiosk token may read (GET only): the wall view and the data it loads.
pub const KIOSK_PATHS: [&str; 5] = [
    "/",
    "/wall",
    "/api/v1/readings",
    "/api/v1/alarms",
    "/api/v1/events",
];
/// State changes any logged-in person may make (their own session and password).
pub const SELF_PATHS: [&str; 2] = ["/logout", "/login/password"];

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "dcgw_session";
/// Name of the kiosk cookie (set when the wall is opened with `?kiosk=TOKEN`).
pub const KIOSK_COOKIE: &str = "dcgw_kiosk";
/// Header carrying the session's CSRF token on state changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed logins from one client address within [`IP_WINDOW`] after which that
/// address is refused (429) until the window passes, whatever the user names.
pub const IP_MAX_FAILURES: u32 = 20;
/// The window of [`IP_MAX_FAILURES`].
pub const IP_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Sessions kept at most (the oldest is ended beyond it).
pub const MAX_SESSIONS: usize = 256;

/// How long a session lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionLimits {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after the login, whatever happens.
    pub max: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(30 * 60),
            max: Duration::from_secs(12 * 3600),
        }
    }
}

/// The client's address, put on each request by the server's accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Who a request comes from, once let through.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// No accounts exist: reading is open, nothing can be changed.
    Anonymous,
    /// A logged-in person.
    User {
        /// Login name.
        name: String,
        /// Role.
        role: Role,
    },
    /// An API token.
    Token {
        /// Token id.
        id: String,
        /// What it is for.
        name: String,
        /// Role.
        role: Role,
    },
    /// The wall TV.
    Kiosk,
}

impl Principal {
    /// Who, for `by` in commands and the journal.
    pub fn who(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::User { name, .. } => name.clone(),
            Principal::Token { name, id, .. } => format!("token:{id} ({name})"),
            Principal::Kiosk => "kiosk".into(),
        }
    }

    /// Its role (none for anonymous and kiosk).
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::User { role, .. } | Principal::Token { role, .. } => Some(*role),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    role: Role,
    csrf: String,
    created: Timestamp,
    seen: Timestamp,
    must_change: bool,
}

/// The accounts as last read, and what follows from them.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    stamp: Option<(std::time::SystemTime, u64)>,
    accounts: Accounts,
    /// Why the console is closed, if it is.
    closed: Option<String>,
}

/// Logins, sessions and the console's state for one web server.
pub struct Auth {
    store: Option<Store>,
    snapshot: Mutex<Arc<Snapshot>>,
    loaded: AtomicBool,
    sessions: Mutex<HashMap<String, Session>>,
    per_ip: Mutex<HashMap<IpAddr, (u32, Timestamp)>>,
    journal: Option<Journal>,
    gateway: Arc<str>,
    /// The page is served over TLS (cookies get `Secure`).
    pub tls: bool,
    /// Why TLS is required but missing (accounts on a non-loopback address), checked
    /// once accounts exist.
    tls_problem: Option<String>,
    limits: SessionLimits,
    clock: Clock,
    console_ok: Arc<AtomicBool>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// How an [`Auth`] is set up.
#[derive(Clone)]
pub struct AuthOptions {
    /// The state directory holding `accounts.json` (none: no accounts, ever).
    pub state_dir: Option<std::path::PathBuf>,
    /// The journal for login entries.
    pub journal: Option<Journal>,
    /// This gateway's name (journal entries).
    pub gateway: Arc<str>,
    /// The page is served over TLS.
    pub tls: bool,
    /// Why TLS is missing where it is required (non-loopback address without usable
    /// certificate files); closes the console once accounts exist.
    pub tls_problem: Option<String>,
    /// Session lifetimes.
    pub limits: SessionLimits,
    /// The clock (injected in tests).
    pub clock: Clock,
}

/// The clock sessions and lockouts are measured with.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            state_dir: None,
            journal: None,
            gateway: Arc::from("gateway"),
            tls: false,
            tls_problem: None,
            limits: SessionLimits::default(),
            clock: Arc::new(Timestamp::now),
        }
    }
}

fn random_token() -> String {
    accounts::random_hex(32)
}

impl Auth {
    /// An authority over the accounts in `opts.state_dir`.
    pub fn new(opts: AuthOptions) -> Auth {
        Auth {
            store: opts.state_dir.as_deref().map(Store::new),
            snapshot: Mutex::new(Arc::new(Snapshot::default())),
            loaded: AtomicBool::new(false),
            sessions: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            journal: opts.journal,
            gateway: opts.gateway,
            tls: opts.tls,
            tls_problem: opts.tls_problem,
            limits: opts.limits,
            clock: opts.clock,
            console_ok: Arc::new(AtomicBool::new(true)),
        }
    }

    /// False while the console is closed for an unsafe setting (the gateway's
    /// `web_console_ok` point).
    pub fn console_ok(&self) -> Arc<AtomicBool> {
        self.console_ok.clone()
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The accounts, re-read when the file changed (the check for default passwords
    /// runs off the async threads).
    async fn snapshot(&self) -> Arc<Snapshot> {
        let Some(store) = self.store.clone() else {
            return self.snapshot.lock().expect("snapshot lock").clone();
        };
        let stamp = store.stamp();
        {
            let s = self.snapshot.lock().expect("snapshot lock");
            if self.loaded.load(Ordering::Acquire) && s.stamp == stamp {
                return s.clone();
            }
        }
        let tls_problem = self.tls_problem.clone();
        let fresh = tokio::task::spawn_blocking(move || read_snapshot(&store, stamp, tls_problem))
            .await
            .unwrap_or_else(|e| Snapshot {
                closed: Some(format!("the accounts could not be checked: {e}")),
                ..Snapshot::default()
            });
        let fresh = Arc::new(fresh);
        let was_ok = self
            .console_ok
            .swap(fresh.closed.is_none(), Ordering::AcqRel);
        match (&fresh.closed, was_ok) {
            (Some(why), true) => {
                tracing::error!(reason = %why, "web console closed (monitoring goes on)")
            }
            (None, false) => tracing::info!("web console open again"),
            _ => {}
        }
        *self.snapshot.lock().expect("snapshot lock") = fresh.clone();
        self.loaded.store(true, Ordering::Release);
        fresh
    }

    /// Check the accounts once now (at start), so an unsafe setting is alarmed before
    /// the first request.
    pub async fn check(&self) {
        let _ = self.snapshot().await;
    }

    fn session_of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let now = self.now();
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let s = sessions.get_mut(&id)?;
        let idle = now.secs_since(s.seen) >= self.limits.idle.as_secs_f64();
        let old = now.secs_since(s.created) >= self.limits.max.as_secs_f64();
        if idle || old {
            sessions.remove(&id);
            return None;
        }
        s.seen = now;
        Some((id, s.clone()))
    }

    fn new_session(&self, user: &str, role: Role, must_change: bool) -> (String, String) {
        let now = self.now();
        let (id, csrf) = (random_token(), random_token());
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                user: user.to_string(),
                role,
                csrf: csrf.clone(),
                created: now,
                seen: now,
                must_change,
            },
        );
        (id, csrf)
    }

    fn end_sessions_of(&self, user: &str) {
        self.sessions
            .lock()
            .expect("sessions lock")
            .retain(|_, s| s.user != user);
    }

    fn ip_blocked(&self, ip: IpAddr) -> Option<u64> {
        let now = self.now();
        let map = self.per_ip.lock().expect("per-ip lock");
        let (n, since) = map.get(&ip)?;
        let left = IP_WINDOW.as_secs_f64() - now.secs_since(*since);
        (*n >= IP_MAX_FAILURES && left > 0.0).then(|| left.ceil() as u64)
    }

    fn ip_failed(&self, ip: IpAddr) {
        let now = self.now();
        let mut map = self.per_ip.lock().expect("per-ip lock");
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| now.secs_since(*since) < IP_WINDOW.as_secs_f64());
        }
        let e = map.entry(ip).or_insert((0, now));
        if now.secs_since(e.1) >= IP_WINDOW.as_secs_f64() {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Journal a login event (fsynced before the answer goes out).
    async fn audit(&self, event: &str, user: &str, ip: IpAddr, extra: serde_json::Value) {
        tracing::info!(event, user, %ip, "web login event");
        let Some(j) = self.journal.clone() else {
            return;
        };
        let mut data = serde_json::json!({"event": event, "user": user, "ip": ip.to_string(), "origin": "web"});
        if let (Some(d), Some(x)) = (data.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                d.insert(k.clone(), v.clone());
            }
        }
        let kind = if event.starts_with("password") {
            journal::Kind::Account
        } else {
            journal::Kind::Login
        };
        let entry = journal::NewEntry {
            ts: self.now(),
            kind,
            gateway: self.gateway.clone(),
            device: None,
            data,
        };
        match tokio::task::spawn_blocking(move || j.append(entry)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot journal a login event"),
            Err(e) => tracing::error!(error = %e, "cannot journal a login event"),
        }
    }

    fn cookie_attrs(&self) -> &'static str {
        if self.tls {
            "; HttpOnly; SameSite=Strict; Path=/; Secure"
        } else {
            "; HttpOnly; SameSite=Strict; Path=/"
        }
    }
}

fn read_snapshot(
    store: &Store,
    stamp: Option<(std::time::SystemTime, u64)>,
    tls_problem: Option<String>,
) -> Snapshot {
    match store.load() {
        Err(e) => Snapshot {
            stamp,
            accounts: Accounts::default(),
            closed: Some(format!("the accounts cannot be read: {e}")),
        },
        Ok(accounts) => {
            let defaults = accounts.default_password_admins();
            let closed = if !defaults.is_empty() {
                Some(format!(
                    "admin account {} has an empty or default password (Art. 12.2a): set one with `dc-gateway user passwd`",
                    defaults.join(", ")
                ))
            } else if accounts.configured() {
                tls_problem
            } else {
                None
            };
            Snapshot {
                stamp,
                accounts,
                closed,
            }
        }
    }
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A JSON answer that no cache keeps.
pub(crate) fn json_answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.to_string(),
    )
        .into_response()
}

fn refuse(status: StatusCode, code: &str, error: &str) -> Response {
    json_answer(status, serde_json::json!({"error": error, "code": code}))
}

/// The 401 answer: JSON for scripts, a page that sends a browser to the login.
fn unauthorized(req: &Request, error: &str) -> Response {
    if req.method() == Method::GET && wants_html(req.headers()) {
        let next = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let target = format!(
            "/login?next={}",
            percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
        );
        let body = format!(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0; url={target}\"><title>401</title><p><a href=\"{target}\">Đăng nhập / Log in</a>"
        );
        return (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response();
    }
    refuse(StatusCode::UNAUTHORIZED, "unauthenticated", error)
}

/// The layer over the whole router: lets a request through with its [`Principal`]
/// as an extension, or answers it.
pub(crate) async fn layer(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if OPEN.contains(&path.as_str()) {
        return next.run(req).await;
    }
    let snap = auth.snapshot().await;
    if let Some(why) = &snap.closed {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "console_closed",
            &format!("web console disabled: {why}; monitoring goes on"),
        );
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !snap.accounts.configured() {
        if !safe {
            return refuse(
                StatusCode::FORBIDDEN,
                "no_accounts",
                "no accounts are configured, so nothing can be changed over HTTP: make one with `dc-gateway user add` on the gateway's console",
            );
        }
        req.extensions_mut().insert(Principal::Anonymous);
        return next.run(req).await;
    }
    if LOGIN_PATHS.contains(&path.as_str()) {
        return next.run(req).await;
    }
    // An API token.
    if let Some(text) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let Some(t) = snap.accounts.token(text.trim()) else {
            auth.ip_failed(client_ip(&req));
            return refuse(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "unknown or revoked token",
            );
        };
        if t.kiosk {
            return kiosk(req, next, None).await;
        }
        if !safe && t.role < Role::Operator {
            return refuse(
                StatusCode::FORBIDDEN,
                "role",
                &format!(
                    "token {} is a {}: changes need an operator",
                    t.id,
                    t.role.as_str()
                ),
            );
        }
        let p = Principal::Token {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
        };
        req.extensions_mut().insert(p);
        return next.run(req).await;
    }
    // A session.
    if let Some((_, s)) = auth.session_of(req.headers()) {
        if !safe {
            let sent = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !accounts::constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "missing or wrong CSRF token (X-CSRF-Token)",
                );
            }
        }
        let own = SELF_PATHS.contains(&path.as_str()) || path == "/api/v1/session";
        if s.must_change && !own && !(safe && (path == "/console" || path == "/login")) {
            return refuse(
                StatusCode::FORBIDDEN,
                "must_change",
                "change your password first (POST /login/password)",
            );
        }
        if !safe && !own && s.role < Role::Operator {
            return refuse(
                StatusCode::FORBIDDEN,
                "role",
                &format!(
                    "{} is a {}: changes need an operator",
                    s.user,
                    s.role.as_str()
                ),
            );
        }
        req.extensions_mut().insert(Principal::User {
            name: s.user,
            role: s.role,
        });
        return next.run(req).await;
    }
    // The kiosk token, from the wall's URL (then kept as a cookie) or the cookie.
    let kiosk_text = query_param(&req, "kiosk")
        .map(|t| (t, true))
        .or_else(|| cookie(req.headers(), KIOSK_COOKIE).map(|t| (t, false)));
    if let Some((text, from_url)) = kiosk_text {
        return match snap.accounts.token(&text).filter(|t| t.kiosk) {
            Some(_) => {
                let set = from_url.then(|| {
                    format!(
                        "{KIOSK_COOKIE}={text}; Max-Age=31536000{}",
                        auth.cookie_attrs()
                    )
                });
                kiosk(req, next, set).await
            }
            None => {
                auth.ip_failed(client_ip(&req));
                refuse(
                    StatusCode::UNAUTHORIZED,
                    "bad_token",
                    "unknown or revoked kiosk token",
                )
            }
        };
    }
    if cookie(req.headers(), SESSION_COOKIE).is_some() {
        return unauthorized(&req, "session expired: log in again");
    }
    unauthorized(&req, "log in first (POST /login), or send an API token")
}

async fn kiosk(mut req: Request, next: Next, set_cookie: Option<String>) -> Response {
    let path = req.uri().path();
    if *req.method() != Method::GET || !KIOSK_PATHS.contains(&path) {
        return refuse(
            StatusCode::FORBIDDEN,
            "kiosk",
            "the kiosk token opens the wall view only",
        );
    }
    req.extensions_mut().insert(Principal::Kiosk);
    let mut resp = next.run(req).await;
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

// ---------------------------------------------------------------------------------
// Handlers: /login, /logout, /login/password, /api/v1/session

/// `POST /login` body.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginBody {
    user: String,
    password: String,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// `POST /login` with `{"user", "password"}` (JSON only: a cross-site form cannot send
/// it). 200 with `{user, role, csrf, must_change, password_age_days?}` and the session
/// cookie; 401 wrong; 423 locked; 429 too many failures from this address.
pub(crate) async fn login(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    let ip = client_ip(&req);
    if !is_json(req.headers()) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json",
            "send the login as application/json",
        );
    }
    if let Some(secs) = auth.ip_blocked(ip) {
        auth.audit(
            "refused_address",
            "",
            ip,
            serde_json::json!({"retry_after_s": secs}),
        )
        .await;
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &format!(
                "too many failed logins from {ip}: try again in {} minutes",
                secs.div_ceil(60)
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let body = match axum::body::to_bytes(req.into_body(), 8192).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "login too large",
            );
        }
    };
    let Ok(LoginBody { user, password }) = serde_json::from_slice::<LoginBody>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"user\": ..., \"password\": ...}",
        );
    };
    let user: String = user.trim().chars().take(accounts::MAX_NAME).collect();
    let snap = auth.snapshot().await;
    let now = auth.now();
    let hash = match snap.accounts.precheck(&user, now) {
        Ok(u) => Some(u.hash.clone()),
        Err(Refusal::Locked(until)) => {
            auth.audit(
                "refused_locked",
                &user,
                ip,
                serde_json::json!({"locked_until": until}),
            )
            .await;
            return locked(until);
        }
        Err(Refusal::Disabled) => {
            auth.ip_failed(ip);
            auth.audit("refused_disabled", &user, ip, serde_json::json!({}))
                .await;
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong",
                "wrong user name or password",
            );
        }
        Err(Refusal::Unknown) => None,
    };
    let Ok(_permit) = accounts::HASHING.acquire().await else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again");
    };
    let known = hash.is_some();
    let check_hash = hash.unwrap_or_else(|| accounts::dummy_hash().to_string());
    let good =
        tokio::task::spawn_blocking(move || accounts::verify_password(&check_hash, &password))
            .await
            .unwrap_or(false)
            && known;
    drop(_permit);
    if !known {
        auth.ip_failed(ip);
        auth.audit(
            "failure",
            &user,
            ip,
            serde_json::json!({"reason": "unknown user"}),
        )
        .await;
        return refuse(
            StatusCode::UNAUTHORIZED,
            "wrong",
            "wrong user name or password",
        );
    }
    let Some(store) = auth.store.clone() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_store",
            "no accounts store",
        );
    };
    let name = user.clone();
    let outcome =
        tokio::task::spawn_blocking(move || store.update(|a| a.record(&name, good, now))).await;
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot record a login");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "store", &e.to_string());
        }
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "store", &e.to_string()),
    };
    match outcome {
        Outcome::Ok {
            role,
            must_change,
            old_password_days,
        } => {
            let (id, csrf) = auth.new_session(&user, role, must_change);
            auth.audit("login", &user, ip, serde_json::json!({"role": role}))
                .await;
            let mut body = serde_json::json!({"user": user, "role": role, "csrf": csrf, "must_change": must_change});
            if let Some(days) = old_password_days {
                body["password_age_days"] = days.into();
                body["warning"] = format!(
                    "your password is {days} days old: change it (Art. 19.3a: every 6 months)"
                )
                .into();
            }
            let mut r = json_answer(StatusCode::OK, body);
            let c = format!(
                "{SESSION_COOKIE}={id}; Max-Age={}{}",
                auth.limits.max.as_secs(),
                auth.cookie_attrs()
            );
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Outcome::Wrong { left } => {
            auth.ip_failed(ip);
            auth.audit(
                "failure",
                &user,
                ip,
                serde_json::json!({"reason": "wrong password", "attempts_left": left}),
            )
            .await;
            json_answer(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "wrong user name or password", "code": "wrong", "attempts_left": left}),
            )
        }
        Outcome::LockedNow(until) => {
            auth.ip_failed(ip);
            auth.end_sessions_of(&user);
            auth.audit(
                "lockout",
                &user,
                ip,
                serde_json::json!({"locked_until": until, "failures": accounts::MAX_FAILURES}),
            )
            .await;
            locked(until)
        }
    }
}

fn locked(until: Timestamp) -> Response {
    json_answer(
        StatusCode::LOCKED,
        serde_json::json!({
            "error": format!("account locked until {} after {} wrong passwords (Art. 11.5); an admin can unlock it", until.rfc3339(), accounts::MAX_FAILURES),
            "code": "locked",
            "locked_until": until,
        }),
    )
}

/// `POST /logout`: ends the session (CSRF token required like any change).
pub(crate) async fn logout(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    let ip = client_ip(&req);
    let Some((id, s)) = auth.session_of(req.headers()) else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "no session");
    };
    let sent = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accounts::constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "csrf",
            "missing or wrong CSRF token (X-CSRF-Token)",
        );
    }
    auth.sessions.lock().expect("sessions lock").remove(&id);
    auth.audit("logout", &s.user, ip, serde_json::json!({}))
        .await;
    let mut r = json_answer(StatusCode::OK, serde_json::json!({"ok": true}));
    let c = format!("{SESSION_COOKIE}=; Max-Age=0{}", auth.cookie_attrs());
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /login/password` body.
#[derive(Debug, Deserialize)]
pub(crate) struct PasswordBody {
    old: String,
    new: String,
}

/// `POST /login/password` with `{"old", "new"}`: the logged-in person changes their
/// own password (policy of Art. 19.3a).
pub(crate) async fn change_password(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    let ip = client_ip(&req);
    let Some(Principal::User { name, .. }) = req.extensions().get::<Principal>().cloned() else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "log in first");
    };
    let body = match axum::body::to_bytes(req.into_body(), 8192).await {
        Ok(b) => b,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "too large"),
    };
    let Ok(PasswordBody { old, new }) = serde_json::from_slice::<PasswordBody>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"old\": ..., \"new\": ...}",
        );
    };
    if let Err(e) = accounts::check_policy(&name, &new) {
        return refuse(StatusCode::BAD_REQUEST, "policy", &e.to_string());
    }
    if old == new {
        return refuse(
            StatusCode::BAD_REQUEST,
            "policy",
            "the new password must differ from the old one",
        );
    }
    let Some(store) = auth.store.clone() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_store",
            "no accounts store",
        );
    };
    let Ok(_permit) = accounts::HASHING.acquire().await else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again");
    };
    let now = auth.now();
    let who = name.clone();
    let r = tokio::task::spawn_blocking(move || {
        let hash = store
            .load()?
            .user(&who)
            .map(|u| u.hash.clone())
            .unwrap_or_default();
        if !accounts::verify_password(&hash, &old) {
            return Ok(false);
        }
        store
            .update(|a| a.set_password(&who, &new, false, now))
            .map(|_| true)
    })
    .await;
    match r {
        Ok(Ok(true)) => {
            for s in auth.sessions.lock().expect("sessions lock").values_mut() {
                if s.user == name {
                    s.must_change = false;
                }
            }
            auth.audit(
                "password_changed",
                &name,
                ip,
                serde_json::json!({"subject": name, "by": name}),
            )
            .await;
            json_answer(StatusCode::OK, serde_json::json!({"ok": true}))
        }
        Ok(Ok(false)) => refuse(StatusCode::FORBIDDEN, "wrong", "the old password is wrong"),
        Ok(Err(e)) => refuse(StatusCode::BAD_REQUEST, "policy", &e.to_string()),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// `GET /api/v1/session`: who is logged in, their role and CSRF token (for the
/// console page), or 401.
pub(crate) async fn session(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    match req.extensions().get::<Principal>() {
        Some(Principal::User { .. }) => match auth.session_of(req.headers()) {
            Some((_, s)) => json_answer(
                StatusCode::OK,
                serde_json::json!({"user": s.user, "role": s.role, "csrf": s.csrf, "must_change": s.must_change, "accounts": true}),
            ),
            None => refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "no session"),
        },
        Some(Principal::Anonymous) => json_answer(
            StatusCode::OK,
            serde_json::json!({"user": null, "role": null, "accounts": false}),
        ),
        Some(p) => json_answer(
            StatusCode::OK,
            serde_json::json!({"user": p.who(), "role": p.role(), "accounts": true}),
        ),
        None => refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "no session"),
    }
}
