//! The auth layer in memory: accounts in a temp state dir, an injected clock, a hub
//! stand-in that answers commands and keeps them for the assertions.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value as Json, json};
use tower::ServiceExt;

use super::auth::{Auth, AuthOptions, SessionLimits};
use super::*;
use crate::accounts::{Role, Store};
use crate::commands::{Command, Reply};
use crate::model::Timestamp;

const PW: &str = "Tra-Vinh-2026!";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
    auth: Arc<Auth>,
    now: Arc<AtomicI64>,
    seen: Arc<Mutex<Vec<Command>>>,
    journal: crate::journal::Journal,
}

fn fixture(users: &[(&str, Role, bool)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    for (name, role, must_change) in users {
        store
            .update(|a| a.add_user(name, *role, PW, *must_change, Timestamp::now()))
            .unwrap();
    }
    let journal =
        crate::journal::Journal::open(dir.path(), crate::journal::Options::default()).unwrap();
    let now = Arc::new(AtomicI64::new(Timestamp::now().0));
    let clock_now = now.clone();
    let auth = Arc::new(Auth::new(AuthOptions {
        state_dir: Some(dir.path().to_path_buf()),
        journal: Some(journal.clone()),
        gateway: Arc::from("gw1"),
        tls: false,
        tls_problem: None,
        limits: SessionLimits {
            idle: Duration::from_secs(60),
            max: Duration::from_secs(600),
        },
        clock: Arc::new(move || Timestamp(clock_now.load(Ordering::SeqCst))),
    }));
    let (commands, mut rx) = crate::commands::Commands::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            let reply = Reply::ok(
                &r.command.id,
                format!("alarm {} acknowledged", r.command.target),
            );
            kept.lock().unwrap().push(r.command);
            let _ = r.reply.send(reply);
        }
    });
    let app = router_with(tests_site(), auth.clone(), Some(commands));
    Fixture {
        _dir: dir,
        store,
        app,
        auth,
        now,
        seen,
        journal,
    }
}

fn tests_site() -> Shared {
    Shared::new(crate::state::Live {
        site: "tv1".into(),
        title: "<script>alert(1)</script>".into(),
        language: "vi".into(),
        ..Default::default()
    })
}

struct Answer {
    status: StatusCode,
    cookie: Option<String>,
    body: Json,
    text: String,
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Json>,
) -> Answer {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = match body {
        Some(j) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(j.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    Answer {
        status,
        cookie,
        body: serde_json::from_str(&text).unwrap_or(Json::Null),
        text,
    }
}

/// Log in; the session cookie (`name=value`) and the CSRF token.
async fn login(f: &Fixture, user: &str) -> (String, String) {
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": user, "password": PW})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let cookie = a.cookie.expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    (pair, a.body["csrf"].as_str().unwrap().to_string())
}

fn ack() -> Json {
    json!({"verb": "ack", "target": "12", "comment": "on my way", "by": "somebody else"})
}

#[tokio::test]
async fn without_a_session_everything_but_health_and_metrics_is_401() {
    let f = fixture(&[("an", Role::Operator, false)]);
    for path in [
        "/",
        "/api/v1/readings",
        "/api/v1/journal",
        "/console",
        "/api/v1/events",
        "/nope",
    ] {
        let a = call(&f.app, "GET", path, &[], None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let a = call(&f.app, "GET", "/console", &[("accept", "text/html")], None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("/login?next=%2Fconsole"), "{}", a.text);
    assert_eq!(
        call(&f.app, "GET", "/metrics", &[], None).await.status,
        StatusCode::OK
    );
    assert_ne!(
        call(&f.app, "GET", "/healthz", &[], None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&f.app, "GET", "/login", &[], None).await.status,
        StatusCode::OK
    );
    let a = call(&f.app, "POST", "/api/v1/commands", &[], Some(ack())).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(f.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_operator_acknowledges_with_the_csrf_token_and_is_the_one_who_acked() {
    let f = fixture(&[("an", Role::Operator, false)]);
    let (cookie, csrf) = login(&f, "an").await;
    let a = call(
        &f.app,
        "GET",
        "/api/v1/readings",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("cookie", &cookie)],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(a.body["code"], "csrf");
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("cookie", &cookie), ("x-csrf-token", "wrong")],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "wrong CSRF token");
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["ok"], true);
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].by, "an",
        "by is the session's user, not the body's claim"
    );
    assert_eq!(seen[0].origin.entry, "web");
    assert!(
        seen[0].origin.peer.starts_with("an@"),
        "{:?}",
        seen[0].origin
    );
    assert_eq!(seen[0].comment.as_deref(), Some("on my way"));
    // The login is journaled with the address.
    let logins = f
        .journal
        .query(&crate::journal::Query {
            kind: Some(crate::journal::Kind::Login),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].data["event"], "login");
    assert_eq!(logins[0].data["user"], "an");
    assert!(logins[0].data["ip"].is_string());
    // Logout ends the session.
    let a = call(
        &f.app,
        "POST",
        "/logout",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(
        &f.app,
        "GET",
        "/api/v1/readings",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_viewer_cannot_acknowledge() {
    let f = fixture(&[("binh", Role::Viewer, false)]);
    let (cookie, csrf) = login(&f, "binh").await;
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["code"], "role");
    assert!(f.seen.lock().unwrap().is_empty());
    // Reading is fine.
    let a = call(&f.app, "GET", "/api/v1/sinks", &[("cookie", &cookie)], None).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn an_idle_or_old_session_expires() {
    let f = fixture(&[("an", Role::Operator, false)]);
    let (cookie, _) = login(&f, "an").await;
    let step = |s: i64| f.now.fetch_add(s * 1000, Ordering::SeqCst);
    // Requests every 50 s keep it alive past the idle limit (60 s) ...
    for _ in 0..5 {
        step(50);
        let a = call(
            &f.app,
            "GET",
            "/api/v1/readings",
            &[("cookie", &cookie)],
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    // ... but not past 61 s of silence.
    step(61);
    let a = call(
        &f.app,
        "GET",
        "/api/v1/readings",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body["error"].as_str().unwrap().contains("expired"));
    // The absolute limit (600 s) ends an active one.
    let (cookie, _) = login(&f, "an").await;
    for _ in 0..12 {
        step(50);
        let _ = call(
            &f.app,
            "GET",
            "/api/v1/readings",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    }
    let a = call(
        &f.app,
        "GET",
        "/api/v1/readings",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_and_unlock_lifts_it() {
    let f = fixture(&[("an", Role::Operator, false)]);
    for left in (1..5).rev() {
        let a = call(
            &f.app,
            "POST",
            "/login",
            &[],
            Some(json!({"user": "an", "password": "Wrong-pass-1"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body["attempts_left"], left);
    }
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": "an", "password": "Wrong-pass-1"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    assert_eq!(a.body["code"], "locked");
    // The right password is refused while locked.
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": "an", "password": PW})),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    // 29 minutes later still locked; 30 minutes later open.
    f.now.fetch_add(29 * 60_000, Ordering::SeqCst);
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": "an", "password": PW})),
    )
    .await;
    assert_eq!(a.status, StatusCode::LOCKED);
    f.now.fetch_add(60_000, Ordering::SeqCst);
    login(&f, "an").await;
    // An admin's unlock lifts a lockout at once.
    for _ in 0..5 {
        call(
            &f.app,
            "POST",
            "/login",
            &[],
            Some(json!({"user": "an", "password": "Wrong-pass-1"})),
        )
        .await;
    }
    f.store.update(|a| a.unlock("an")).unwrap();
    login(&f, "an").await;
    let kinds: Vec<String> = f
        .journal
        .query(&Default::default())
        .unwrap()
        .iter()
        .filter_map(|e| e.data["event"].as_str().map(str::to_string))
        .collect();
    assert!(
        kinds.iter().filter(|k| *k == "lockout").count() == 2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"refused_locked".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"failure".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn the_kiosk_token_opens_the_wall_and_nothing_else() {
    let f = fixture(&[("an", Role::Admin, false)]);
    let token = f
        .store
        .update(|a| Ok(a.add_token("wall TV", Role::Admin, true, Timestamp::now())))
        .unwrap();
    let a = call(&f.app, "GET", &format!("/?kiosk={token}"), &[], None).await;
    assert_eq!(a.status, StatusCode::OK);
    let c = a.cookie.expect("kiosk cookie");
    assert!(
        c.starts_with("dcgw_kiosk=") && c.contains("HttpOnly"),
        "{c}"
    );
    let cookie = c.split(';').next().unwrap().to_string();
    for path in ["/", "/api/v1/readings", "/api/v1/alarms"] {
        assert_eq!(
            call(&f.app, "GET", path, &[("cookie", &cookie)], None)
                .await
                .status,
            StatusCode::OK,
            "{path}"
        );
    }
    for path in [
        "/api/v1/journal",
        "/api/v1/sinks",
        "/console",
        "/api/v1/session",
    ] {
        assert_eq!(
            call(&f.app, "GET", path, &[("cookie", &cookie)], None)
                .await
                .status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("cookie", &cookie)],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let auth = format!("Bearer {token}");
    assert_eq!(
        call(
            &f.app,
            "GET",
            "/api/v1/journal",
            &[("authorization", &auth)],
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&f.app, "GET", "/?kiosk=dcgw_0000.00", &[], None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn api_tokens_act_with_their_role_without_csrf() {
    let f = fixture(&[("an", Role::Admin, false)]);
    let op = f
        .store
        .update(|a| Ok(a.add_token("script", Role::Operator, false, Timestamp::now())))
        .unwrap();
    let viewer = f
        .store
        .update(|a| Ok(a.add_token("grafana", Role::Viewer, false, Timestamp::now())))
        .unwrap();
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("authorization", &format!("Bearer {op}"))],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(f.seen.lock().unwrap()[0].by.starts_with("token:"));
    let a = call(
        &f.app,
        "POST",
        "/api/v1/commands",
        &[("authorization", &format!("Bearer {viewer}"))],
        Some(ack()),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        call(
            &f.app,
            "GET",
            "/api/v1/sinks",
            &[("authorization", &format!("Bearer {viewer}"))],
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &f.app,
            "GET",
            "/api/v1/journal",
            &[("authorization", "Bearer dcgw_x.y")],
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_new_account_changes_its_password_before_anything_else() {
    let f = fixture(&[("an", Role::Operator, true)]);
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": "an", "password": PW})),
    )
    .await;
    assert_eq!(a.body["must_change"], true);
    let cookie = a.cookie.unwrap().split(';').next().unwrap().to_string();
    let csrf = a.body["csrf"].as_str().unwrap().to_string();
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    assert_eq!(
        call(&f.app, "GET", "/api/v1/readings", &h, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let a = call(
        &f.app,
        "POST",
        "/login/password",
        &h,
        Some(json!({"old": PW, "new": "short"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["error"].as_str().unwrap().contains("19.3a"));
    let a = call(
        &f.app,
        "POST",
        "/login/password",
        &h,
        Some(json!({"old": PW, "new": "Mat-khau-moi-9"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        call(&f.app, "GET", "/api/v1/readings", &h, None)
            .await
            .status,
        StatusCode::OK
    );
    assert!(!f.store.load().unwrap().user("an").unwrap().must_change);
}

#[tokio::test]
async fn a_default_admin_password_closes_the_console_but_not_health() {
    let f = fixture(&[]);
    f.store
        .update(|a| {
            a.insert_user(
                "admin",
                Role::Admin,
                crate::accounts::hash_password("admin")?,
                false,
                Timestamp::now(),
            )
        })
        .unwrap();
    let a = call(&f.app, "GET", "/", &[], None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        a.body["error"]
            .as_str()
            .unwrap()
            .contains("default password"),
        "{}",
        a.text
    );
    assert!(!f.auth.console_ok().load(Ordering::SeqCst));
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": "admin", "password": "admin"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        call(&f.app, "GET", "/metrics", &[], None).await.status,
        StatusCode::OK
    );
    // A real password opens it again.
    f.store
        .update(|a| a.set_password("admin", PW, false, Timestamp::now()))
        .unwrap();
    // (the file's mtime may not move within the same tick: force a re-read by size)
    let a = call(&f.app, "GET", "/", &[], None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    assert!(f.auth.console_ok().load(Ordering::SeqCst));
}

#[tokio::test]
async fn without_accounts_reading_is_open_and_nothing_changes() {
    let f = fixture(&[]);
    assert_eq!(
        call(&f.app, "GET", "/api/v1/readings", &[], None)
            .await
            .status,
        StatusCode::OK
    );
    let a = call(&f.app, "POST", "/api/v1/commands", &[], Some(ack())).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["code"], "no_accounts");
    let a = call(
        &f.app,
        "POST",
        "/login",
        &[],
        Some(json!({"user": "x", "password": "y"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_console_page_puts_the_title_in_as_text() {
    let f = fixture(&[]);
    let a = call(&f.app, "GET", "/console", &[], None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        !a.text.contains("<script>alert(1)"),
        "the title must not close the script element"
    );
    assert!(a.text.contains("\\u003cscript>alert(1)\\u003c/script>"));
}

#[tokio::test]
async fn event_streams_are_capped_and_given_back() {
    let app = router(tests_site());
    let open = |app: Router| async move {
        let req = Request::builder()
            .uri("/api/v1/events")
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap()
    };
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..(api::MAX_EVENT_STREAMS + 10) {
        let r = open(app.clone()).await;
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(i);
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        held.push(r);
    }
    let at = refused.expect("a stream beyond the cap is refused");
    assert!(at <= api::MAX_EVENT_STREAMS, "refused at {at}");
    drop(held);
    assert_eq!(
        open(app.clone()).await.status(),
        StatusCode::OK,
        "closed streams give their place back"
    );
}
