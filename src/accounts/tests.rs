//! Accounts with an injected clock: policy, hashing, lockout, tokens, the file.

use super::*;

const GOOD: &str = "Tra-Vinh-2026";
const T0: Timestamp = Timestamp(1_780_000_000_000);

fn at_min(m: i64) -> Timestamp {
    Timestamp(T0.0 + m * 60_000)
}

#[test]
fn the_policy_names_every_missing_class() {
    assert!(check_policy("an", GOOD).is_ok());
    let e = check_policy("an", "short").unwrap_err().to_string();
    for want in [
        "at least 11 characters",
        "an upper-case letter",
        "a digit",
        "a special character",
        "Art. 19.3a",
    ] {
        assert!(e.contains(want), "{e:?} should name {want:?}");
    }
    assert!(!e.contains("lower-case"), "{e}");
    let e = check_policy("nguyenvan", "Nguyenvan-123")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the user name"), "{e}");
    // Vietnamese letters count as letters of their case.
    assert!(check_policy("an", "Đêm-trắng-2026").is_ok());
}

#[test]
fn a_hash_verifies_its_password_only_and_is_salted() {
    let h = hash_password(GOOD).unwrap();
    assert!(h.starts_with("$argon2id$v=19$"), "{h}");
    assert!(verify_password(&h, GOOD));
    assert!(!verify_password(&h, "Tra-Vinh-2027"));
    assert!(!verify_password("garbage", GOOD));
    assert_ne!(h, hash_password(GOOD).unwrap(), "fresh salt each time");
}

#[test]
fn five_wrong_passwords_lock_for_thirty_minutes_and_unlock_lifts_it() {
    let mut a = Accounts::default();
    a.add_user("an", Role::Operator, GOOD, false, T0).unwrap();
    for i in 1..MAX_FAILURES {
        assert!(a.precheck("an", at_min(0)).is_ok());
        assert_eq!(
            a.record("an", false, at_min(0)).unwrap(),
            Outcome::Wrong {
                left: MAX_FAILURES - i
            }
        );
    }
    let until = at_min(30);
    assert_eq!(
        a.record("an", false, at_min(0)).unwrap(),
        Outcome::LockedNow(until)
    );
    // Locked: even the right password is not looked at.
    assert_eq!(
        a.precheck("an", at_min(29)).unwrap_err(),
        Refusal::Locked(until)
    );
    assert!(
        a.precheck("an", at_min(30)).is_ok(),
        "30 minutes later it opens"
    );
    // An admin lifts it early.
    a.lock("an", until).unwrap();
    a.unlock("an").unwrap();
    assert!(a.precheck("an", at_min(1)).is_ok());
    // A good password resets the count.
    a.record("an", false, at_min(2)).unwrap();
    assert!(matches!(
        a.record("an", true, at_min(2)).unwrap(),
        Outcome::Ok { .. }
    ));
    assert_eq!(a.user("an").unwrap().failures, 0);
}

#[test]
fn unknown_and_disabled_users_are_refused() {
    let mut a = Accounts::default();
    assert!(!a.configured());
    a.add_user("an", Role::Viewer, GOOD, false, T0).unwrap();
    assert!(a.configured());
    assert_eq!(a.precheck("binh", T0).unwrap_err(), Refusal::Unknown);
    a.set_disabled("an", true).unwrap();
    assert_eq!(a.precheck("an", T0).unwrap_err(), Refusal::Disabled);
    assert!(matches!(
        a.add_user("an", Role::Viewer, GOOD, false, T0),
        Err(Error::UserExists(_))
    ));
    assert!(matches!(
        a.add_user("a n", Role::Viewer, GOOD, false, T0),
        Err(Error::BadName(_))
    ));
}

#[test]
fn an_old_password_is_warned_and_a_new_account_must_change_it() {
    let mut a = Accounts::default();
    a.add_user("an", Role::Admin, GOOD, true, T0).unwrap();
    let later = Timestamp(T0.0 + 200 * 86_400_000);
    assert_eq!(
        a.record("an", true, later).unwrap(),
        Outcome::Ok {
            role: Role::Admin,
            must_change: true,
            old_password_days: Some(200)
        }
    );
    a.set_password("an", "Mat-khau-moi-9", false, later)
        .unwrap();
    assert_eq!(
        a.record("an", true, later).unwrap(),
        Outcome::Ok {
            role: Role::Admin,
            must_change: false,
            old_password_days: None
        }
    );
}

#[test]
fn tokens_are_kept_as_hashes_and_found_by_their_text() {
    let mut a = Accounts::default();
    let t = a.add_token("wall TV", Role::Admin, true, T0);
    let k = a.add_token("nagios", Role::Operator, false, T0);
    assert!(t.starts_with("dcgw_"));
    let json = serde_json::to_string(&a).unwrap();
    assert!(
        !json.contains(&t) && !json.contains(&k),
        "no token text at rest"
    );
    let found = a.token(&t).unwrap();
    assert!(found.kiosk);
    assert_eq!(found.role, Role::Viewer, "a kiosk token only reads");
    assert_eq!(a.token(&k).unwrap().role, Role::Operator);
    let mut forged = k.clone();
    forged.pop();
    forged.push('x');
    assert!(a.token(&forged).is_none() || forged == k);
    let id = a.token(&k).unwrap().id.clone();
    a.revoke_token(&id).unwrap();
    assert!(a.token(&k).is_none());
}

#[test]
fn default_admin_passwords_are_found() {
    let mut a = Accounts::default();
    a.insert_user(
        "admin",
        Role::Admin,
        hash_password("admin").unwrap(),
        false,
        T0,
    )
    .unwrap();
    a.insert_user("ops", Role::Admin, hash_password("ops").unwrap(), false, T0)
        .unwrap();
    a.add_user("an", Role::Admin, GOOD, false, T0).unwrap();
    a.insert_user(
        "viewer",
        Role::Viewer,
        hash_password("admin").unwrap(),
        false,
        T0,
    )
    .unwrap();
    assert_eq!(a.default_password_admins(), vec!["admin", "ops"]);
}

#[test]
fn the_file_is_private_and_survives_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::new(dir.path());
    assert!(!s.load().unwrap().configured());
    s.update(|a| a.add_user("an", Role::Operator, GOOD, false, T0))
        .unwrap();
    let a = s.load().unwrap();
    assert_eq!(a.user("an").unwrap().role, Role::Operator);
    assert_eq!(a.format_version, FORMAT_VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A failed change writes nothing.
    let before = std::fs::read(s.path()).unwrap();
    assert!(s.update(|a| a.unlock("nobody")).is_err());
    assert_eq!(std::fs::read(s.path()).unwrap(), before);
    // Garbage is refused with the file's name.
    std::fs::write(s.path(), "{not json").unwrap();
    let e = s.load().unwrap_err().to_string();
    assert!(e.contains("accounts.json") && e.contains("line 1"), "{e}");
}
