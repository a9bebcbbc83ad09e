//! `dc-gateway user ...` on the board's console: make the first admin, reset
//! passwords, lock, unlock, disable, make and revoke tokens, list.
//!
//! It works on `accounts.json` in the state directory directly (under the lock the
//! running gateway also takes), so it works whether the gateway runs or not; the
//! gateway notices the change at its next request. Every change is journaled as an
//! `account` entry with who ran it (the console's user) — when the journal cannot be
//! opened the change is still made and a warning says so.

use std::io::BufRead;
use std::path::Path;

use super::{Accounts, Error, Role, Store};
use crate::model::Timestamp;

/// What `dc-gateway user` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Add a user (password read from standard input).
    Add {
        /// Login name.
        name: String,
        /// Role.
        role: Role,
        /// The user must change the password at the first login.
        must_change: bool,
    },
    /// Set a user's password (read from standard input).
    Passwd {
        /// Login name.
        name: String,
        /// The user must change it at the next login (a reset).
        must_change: bool,
    },
    /// Lock a user until unlocked.
    Lock(String),
    /// Lift a lockout.
    Unlock(String),
    /// Disable a user.
    Disable(String),
    /// Enable a disabled user.
    Enable(String),
    /// Change a user's role.
    Role(String, Role),
    /// Make a token (printed once).
    TokenAdd {
        /// What it is for.
        name: String,
        /// Its role.
        role: Role,
        /// Wall view only.
        kiosk: bool,
    },
    /// Revoke a token by id.
    TokenRevoke(String),
    /// List users and tokens.
    List {
        /// As JSON.
        json: bool,
    },
}

/// An admin's lock lasts until unlocked: the last second of year 9999.
const FOREVER: Timestamp = Timestamp(253_402_300_799_000); // 9999-12-31T23:59:59Z

fn read_password(input: &mut dyn BufRead) -> Result<String, Error> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(|source| Error::Io {
        path: "<standard input>".into(),
        op: "read the password",
        source,
    })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Who runs the command, for the journal (`console:<user>`).
fn operator() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "?".into());
    format!("console:{user}")
}

/// Run `action` on the accounts in `state_dir`; the text to print on success.
pub fn run(action: &Action, state_dir: &Path, input: &mut dyn BufRead) -> Result<String, Error> {
    let store = Store::new(state_dir);
    let now = Timestamp::now();
    if let Action::List { json } = action {
        return Ok(list(&store.load()?, *json, now));
    }
    let password = match action {
        Action::Add { .. } | Action::Passwd { .. } => {
            let p = read_password(input)?;
            let name = match action {
                Action::Add { name, .. } | Action::Passwd { name, .. } => name,
                _ => unreachable!("only add and passwd read a password"),
            };
            super::check_policy(name, &p)?;
            Some(p)
        }
        _ => None,
    };
    let (out, event, subject, extra) = store.update(|a: &mut Accounts| {
        Ok(match action {
            Action::Add {
                name,
                role,
                must_change,
            } => {
                a.add_user(
                    name,
                    *role,
                    password.as_deref().unwrap_or(""),
                    *must_change,
                    now,
                )?;
                (
                    format!("user {name} added ({})", role.as_str()),
                    "user_added",
                    name.clone(),
                    serde_json::json!({"role": role, "must_change": must_change}),
                )
            }
            Action::Passwd { name, must_change } => {
                a.set_password(name, password.as_deref().unwrap_or(""), *must_change, now)?;
                (
                    format!("password of {name} set"),
                    "password_set",
                    name.clone(),
                    serde_json::json!({"must_change": must_change}),
                )
            }
            Action::Lock(name) => {
                a.lock(name, FOREVER)?;
                (
                    format!("user {name} locked"),
                    "user_locked",
                    name.clone(),
                    serde_json::json!({}),
                )
            }
            Action::Unlock(name) => {
                a.unlock(name)?;
                (
                    format!("user {name} unlocked"),
                    "user_unlocked",
                    name.clone(),
                    serde_json::json!({}),
                )
            }
            Action::Disable(name) => {
                a.set_disabled(name, true)?;
                (
                    format!("user {name} disabled"),
                    "user_disabled",
                    name.clone(),
                    serde_json::json!({}),
                )
            }
            Action::Enable(name) => {
                a.set_disabled(name, false)?;
                (
                    format!("user {name} enabled"),
                    "user_enabled",
                    name.clone(),
                    serde_json::json!({}),
                )
            }
            Action::Role(name, role) => {
                a.set_role(name, *role)?;
                (
                    format!("user {name} is now {}", role.as_str()),
                    "role_changed",
                    name.clone(),
                    serde_json::json!({"role": role}),
                )
            }
            Action::TokenAdd { name, role, kiosk } => {
                let text = a.add_token(name, *role, *kiosk, now);
                let t = a.tokens.last().expect("just added");
                (
                    format!(
                        "token {} ({}{}) — shown once, keep it now:\n{text}",
                        t.id,
                        t.role.as_str(),
                        if *kiosk {
                            ", kiosk: wall view only"
                        } else {
                            ""
                        }
                    ),
                    "token_added",
                    t.id.clone(),
                    serde_json::json!({"name": name, "role": t.role, "kiosk": kiosk}),
                )
            }
            Action::TokenRevoke(id) => {
                a.revoke_token(id)?;
                (
                    format!("token {id} revoked"),
                    "token_revoked",
                    id.clone(),
                    serde_json::json!({}),
                )
            }
            Action::List { .. } => unreachable!("answered above"),
        })
    })?;
    if let Err(e) = journal(state_dir, event, &subject, extra, now) {
        return Ok(format!("{out}\nwarning: not journaled: {e}"));
    }
    Ok(out)
}

fn journal(
    state_dir: &Path,
    event: &str,
    subject: &str,
    extra: serde_json::Value,
    now: Timestamp,
) -> Result<(), crate::journal::Error> {
    let j = crate::journal::Journal::open(state_dir, crate::journal::Options::default())?;
    let mut data = serde_json::json!({"event": event, "subject": subject, "by": operator(), "origin": "console"});
    if let (Some(d), Some(x)) = (data.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            d.insert(k.clone(), v.clone());
        }
    }
    let gateway: std::sync::Arc<str> = hostname().into();
    j.append(crate::journal::NewEntry {
        ts: now,
        kind: crate::journal::Kind::Account,
        gateway,
        device: None,
        data,
    })?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "gateway".into())
}

fn list(a: &Accounts, json: bool, now: Timestamp) -> String {
    if json {
        let users: Vec<serde_json::Value> = a
            .users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "name": u.name, "role": u.role, "disabled": u.disabled,
                    "must_change": u.must_change, "failures": u.failures,
                    "locked": u.locked_until.is_some_and(|t| t > now),
                    "locked_until": u.locked_until.filter(|t| *t > now && *t != FOREVER),
                    "password_changed_at": u.password_changed_at,
                })
            })
            .collect();
        let tokens: Vec<serde_json::Value> = a
            .tokens
            .iter()
            .map(|t| serde_json::json!({"id": t.id, "name": t.name, "role": t.role, "kiosk": t.kiosk, "created_at": t.created_at}))
            .collect();
        return serde_json::json!({"users": users, "tokens": tokens}).to_string();
    }
    let mut out = String::new();
    if a.users.is_empty() {
        out.push_str("no users: the web console is open read-only and takes no commands\n");
    }
    for u in &a.users {
        let mut state = Vec::new();
        if u.disabled {
            state.push("disabled".to_string());
        }
        match u.locked_until {
            Some(t) if t == FOREVER => state.push("locked".into()),
            Some(t) if t > now => state.push(format!("locked until {}", t.rfc3339())),
            _ => {}
        }
        if u.must_change {
            state.push("must change password".into());
        }
        let age_days = (now.0 - u.password_changed_at.0).max(0) / 86_400_000;
        out.push_str(&format!(
            "{:<20} {:<9} password {} days old{}{}\n",
            u.name,
            u.role.as_str(),
            age_days,
            if state.is_empty() { "" } else { "  " },
            state.join(", ")
        ));
    }
    for t in &a.tokens {
        out.push_str(&format!(
            "token {} {:<9} {}{}\n",
            t.id,
            t.role.as_str(),
            t.name,
            if t.kiosk { " (kiosk)" } else { "" }
        ));
    }
    out
}
