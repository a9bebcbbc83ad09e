//! The gateway's own accounts: people who log in to the web console and the tokens
//! scripts and the wall TV use (docs/ACCOUNTS.md).
//!
//! # Guarantees
//!
//! - **Passwords are never stored**: only argon2id hashes ([`hash_password`]) with
//!   memory bounded for a 1 GB board ([`ARGON2_MEMORY_KIB`]); at most
//!   [`HASHING_AT_ONCE`] hashes run at the same time (the web server holds
//!   [`HASHING`] around each), so a burst of logins cannot exhaust the board's memory.
//! - **Tokens are never stored**: a token is shown once when it is made; the file keeps
//!   its SHA-256 (a token is 32 random bytes, so a fast hash is enough).
//! - **The regulation's policy** (Art. 19.3a) is enforced on every password set through
//!   this module: at least [`MIN_PASSWORD_CHARS`] characters with upper and lower case,
//!   a digit and a special character, not containing the user name.
//! - **Lockout** (Art. 11.5): [`MAX_FAILURES`] wrong passwords in a row lock the account
//!   for [`LOCKOUT`]; an admin lifts it early with `dc-gateway user unlock`.
//! - **One writer at a time**: the gateway (failure counters, password changes) and the
//!   `dc-gateway user` command on the board's console change `accounts.json` only while
//!   holding an exclusive lock on `accounts.lock`, by writing a new file (mode 0600),
//!   fsyncing it and renaming it over the old one: a crash leaves the old or the new
//!   file, never half of one.
//!
//! # On-disk format (version 1)
//!
//! `<state_dir>/accounts.json`:
//! `{"format_version": 1, "users": [User...], "tokens": [Token...]}`; see [`User`] and
//! [`Token`] for the fields. A missing file means "no accounts configured".

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

pub mod cli;
#[cfg(test)]
mod tests;

/// File name of the accounts in the state directory.
pub const FILE: &str = "accounts.json";
/// File name of the lock beside it.
pub const LOCK_FILE: &str = "accounts.lock";
/// Current format version.
pub const FORMAT_VERSION: u32 = 1;

/// Shortest password, characters (Art. 19.3a: "at least 11").
pub const MIN_PASSWORD_CHARS: usize = 11;
/// Longest password accepted, bytes (hashing a huge input is a denial of service).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Wrong passwords in a row that lock an account (Art. 11.5).
pub const MAX_FAILURES: u32 = 5;
/// How long a lockout lasts (Art. 11.5: 30 minutes).
pub const LOCKOUT: Duration = Duration::from_secs(30 * 60);
/// Password age after which a login is warned (Art. 19.3a: change every 6 months).
pub const PASSWORD_MAX_AGE: Duration = Duration::from_secs(182 * 24 * 3600);
/// Memory of one argon2id hash, KiB (19 MiB: OWASP's minimum for argon2id).
pub const ARGON2_MEMORY_KIB: u32 = if cfg!(test) { 256 } else { 19 * 1024 };
/// Passes of one argon2id hash.
pub const ARGON2_PASSES: u32 = 2;
/// Hashes computed at the same time, at most.
pub const HASHING_AT_ONCE: usize = 2;
/// Longest user name, bytes.
pub const MAX_NAME: usize = 64;

/// Held around every hash computation by the web server ([`HASHING_AT_ONCE`] permits).
pub static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHING_AT_ONCE);

/// Passwords that count as "default": an admin account with one of them (or its own
/// name) disables the web console (Art. 12.2a).
pub const DEFAULT_PASSWORDS: [&str; 8] = [
    "",
    "admin",
    "password",
    "changeme",
    "dc-gateway",
    "123456",
    "12345678",
    "root",
];

/// What an account or token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything; changes nothing.
    Viewer,
    /// A viewer who also acknowledges, shelves and opens maintenance windows.
    Operator,
    /// An operator who also manages accounts and settings.
    Admin,
}

impl Role {
    /// Its name (`viewer`, `operator`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A person's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Login name (unique).
    pub name: String,
    /// What the account may do.
    pub role: Role,
    /// argon2id hash in PHC string form (`$argon2id$v=19$m=...`).
    pub hash: String,
    /// When the account was made.
    pub created_at: Timestamp,
    /// When the password was last set.
    pub password_changed_at: Timestamp,
    /// The password must be changed at the next login (new account, reset).
    #[serde(default)]
    pub must_change: bool,
    /// Disabled by an admin: no login until enabled again.
    #[serde(default)]
    pub disabled: bool,
    /// Wrong passwords in a row since the last good one or lockout.
    #[serde(default)]
    pub failures: u32,
    /// Locked until then after [`MAX_FAILURES`] wrong passwords (or by an admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Timestamp>,
}

/// A token for scripts (`Authorization: Bearer ...`) or the wall TV (kiosk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// Public id (the part before the `.` in the token).
    pub id: String,
    /// What it is for (shown in lists and in the journal).
    pub name: String,
    /// What it may do (a kiosk token: viewer, and only the wall view).
    pub role: Role,
    /// Only the wall view (`/`, and the data it reads).
    #[serde(default)]
    pub kiosk: bool,
    /// SHA-256 of the whole token, hex.
    pub hash: String,
    /// When it was made.
    pub created_at: Timestamp,
}

/// Everything in `accounts.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounts {
    /// Format version ([`FORMAT_VERSION`]).
    #[serde(default)]
    pub format_version: u32,
    /// People.
    #[serde(default)]
    pub users: Vec<User>,
    /// Tokens.
    #[serde(default)]
    pub tokens: Vec<Token>,
}

/// An accounts operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read, written or locked.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The file is not an accounts file this version understands.
    #[error("{path}: not a readable accounts file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No such user.
    #[error("no user {0:?}")]
    NoUser(String),
    /// The user exists already.
    #[error("user {0:?} exists already")]
    UserExists(String),
    /// A user name that cannot be used.
    #[error("user name {0:?}: 1 to 64 characters, letters, digits, '.', '-', '_' only")]
    BadName(String),
    /// The password breaks the policy.
    #[error("password refused: {0}")]
    Policy(String),
    /// No such token.
    #[error("no token {0:?}")]
    NoToken(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Check `password` against the policy of Art. 19.3a for user `name`.
pub fn check_policy(name: &str, password: &str) -> Result<(), Error> {
    let mut missing = Vec::new();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        missing.push(format!("at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        missing.push(format!("at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if !password.chars().any(char::is_uppercase) {
        missing.push("an upper-case letter".into());
    }
    if !password.chars().any(char::is_lowercase) {
        missing.push("a lower-case letter".into());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        missing.push("a digit".into());
    }
    if !password.chars().any(|c| !c.is_alphanumeric()) {
        missing.push("a special character".into());
    }
    if !name.is_empty() && password.to_lowercase().contains(&name.to_lowercase()) {
        missing.push("not the user name".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Policy(format!(
            "needs {} (Art. 19.3a)",
            missing.join(", ")
        )))
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.chars().take(80).collect()))
    }
}

fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None)
        .expect("argon2 parameters are constants within range");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The argon2id hash of `password` (PHC string) with a fresh random salt. CPU- and
/// memory-heavy: call it off the async threads and under [`HASHING`].
pub fn hash_password(password: &str) -> Result<String, Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| Error::Hash("no random numbers".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `password` matches `hash` (false for a hash that cannot be read).
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        // The hash's own parameters are used, so older hashes keep working.
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that an unknown name
/// costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password of anybody").unwrap_or_default())
}

/// SHA-256 of `s`, lowercase hex.
pub fn sha256_hex(s: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, s)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // SystemRandom only fails when the OS has no randomness at all; a token made of
    // zeros would then be refused below (its hash is known), never accepted silently.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why a login is refused before the password is looked at.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No such user (answered like a wrong password).
    Unknown,
    /// Disabled by an admin.
    Disabled,
    /// Locked until then.
    Locked(Timestamp),
}

/// What a checked password did to the account.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Logged in.
    Ok {
        /// The account's role.
        role: Role,
        /// The password must be changed before anything else.
        must_change: bool,
        /// The password is older than [`PASSWORD_MAX_AGE`]: its age in days.
        old_password_days: Option<u64>,
    },
    /// Wrong password; this many more lock the account.
    Wrong {
        /// Attempts left before the lockout.
        left: u32,
    },
    /// Wrong password, and the account is now locked until then.
    LockedNow(Timestamp),
}

impl Accounts {
    /// Whether any account is configured (then the web needs logins).
    pub fn configured(&self) -> bool {
        !self.users.is_empty()
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User, Error> {
        self.users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| Error::NoUser(name.to_string()))
    }

    /// Add a user with an already computed `hash` (the policy was checked by the
    /// caller, see [`Accounts::add_user`]).
    pub fn insert_user(
        &mut self,
        name: &str,
        role: Role,
        hash: String,
        must_change: bool,
        now: Timestamp,
    ) -> Result<(), Error> {
        check_name(name)?;
        if self.user(name).is_some() {
            return Err(Error::UserExists(name.to_string()));
        }
        self.users.push(User {
            name: name.to_string(),
            role,
            hash,
            created_at: now,
            password_changed_at: now,
            must_change,
            disabled: false,
            failures: 0,
            locked_until: None,
        });
        Ok(())
    }

    /// Add a user, checking the password policy and hashing the password.
    pub fn add_user(
        &mut self,
        name: &str,
        role: Role,
        password: &str,
        must_change: bool,
        now: Timestamp,
    ) -> Result<(), Error> {
        check_name(name)?;
        check_policy(name, password)?;
        let hash = hash_password(password)?;
        self.insert_user(name, role, hash, must_change, now)
    }

    /// Set a user's password (policy checked), clearing failures and any lockout.
    pub fn set_password(
        &mut self,
        name: &str,
        password: &str,
        must_change: bool,
        now: Timestamp,
    ) -> Result<(), Error> {
        check_policy(name, password)?;
        let hash = hash_password(password)?;
        let u = self.user_mut(name)?;
        u.hash = hash;
        u.password_changed_at = now;
        u.must_change = must_change;
        u.failures = 0;
        u.locked_until = None;
        Ok(())
    }

    /// Lock a user until `until` (an admin's lock: [`Timestamp`] far in the future).
    pub fn lock(&mut self, name: &str, until: Timestamp) -> Result<(), Error> {
        self.user_mut(name)?.locked_until = Some(until);
        Ok(())
    }

    /// Lift a lockout and forget the failures.
    pub fn unlock(&mut self, name: &str) -> Result<(), Error> {
        let u = self.user_mut(name)?;
        u.locked_until = None;
        u.failures = 0;
        Ok(())
    }

    /// Disable or enable a user.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<(), Error> {
        self.user_mut(name)?.disabled = disabled;
        Ok(())
    }

    /// Change a user's role.
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<(), Error> {
        self.user_mut(name)?.role = role;
        Ok(())
    }

    /// Whether `name` may try a password now.
    pub fn precheck(&self, name: &str, now: Timestamp) -> Result<&User, Refusal> {
        let u = self.user(name).ok_or(Refusal::Unknown)?;
        if u.disabled {
            return Err(Refusal::Disabled);
        }
        if let Some(t) = u.locked_until
            && t > now
        {
            return Err(Refusal::Locked(t));
        }
        Ok(u)
    }

    /// Record the result of checking `name`'s password at `now`: failures are counted
    /// and lock the account at [`MAX_FAILURES`]; a good one resets them.
    pub fn record(&mut self, name: &str, good: bool, now: Timestamp) -> Result<Outcome, Error> {
        let u = self.user_mut(name)?;
        if good {
            u.failures = 0;
            u.locked_until = None;
            let age =
                Duration::from_millis(u64::try_from(now.0 - u.password_changed_at.0).unwrap_or(0));
            return Ok(Outcome::Ok {
                role: u.role,
                must_change: u.must_change,
                old_password_days: (age > PASSWORD_MAX_AGE).then_some(age.as_secs() / 86_400),
            });
        }
        if u.locked_until.is_some_and(|t| t <= now) {
            u.locked_until = None;
        }
        u.failures += 1;
        if u.failures >= MAX_FAILURES {
            u.failures = 0;
            let until = now.plus(LOCKOUT);
            u.locked_until = Some(until);
            return Ok(Outcome::LockedNow(until));
        }
        Ok(Outcome::Wrong {
            left: MAX_FAILURES - u.failures,
        })
    }

    /// Make a token; returns the token text, shown once (`dcgw_<id>.<secret>`).
    pub fn add_token(&mut self, name: &str, role: Role, kiosk: bool, now: Timestamp) -> String {
        let id = random_hex(4);
        let text = format!("dcgw_{id}.{}", random_hex(32));
        self.tokens.push(Token {
            id,
            name: name.to_string(),
            role: if kiosk { Role::Viewer } else { role },
            kiosk,
            hash: sha256_hex(text.as_bytes()),
            created_at: now,
        });
        text
    }

    /// Remove the token with this id.
    pub fn revoke_token(&mut self, id: &str) -> Result<(), Error> {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.id != id);
        if self.tokens.len() == before {
            return Err(Error::NoToken(id.to_string()));
        }
        Ok(())
    }

    /// The token whose text is `text`.
    pub fn token(&self, text: &str) -> Option<&Token> {
        let id = text.strip_prefix("dcgw_")?.split('.').next()?;
        let hash = sha256_hex(text.as_bytes());
        self.tokens
            .iter()
            .find(|t| t.id == id && constant_time_eq(t.hash.as_bytes(), hash.as_bytes()))
    }

    /// Admin accounts (enabled) whose password is empty, a well-known default or their
    /// own name (Art. 12.2a). Slow: one hash per candidate.
    pub fn default_password_admins(&self) -> Vec<String> {
        self.users
            .iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .filter(|u| {
                u.hash.is_empty()
                    || DEFAULT_PASSWORDS
                        .iter()
                        .copied()
                        .chain([u.name.as_str()])
                        .any(|p| verify_password(&u.hash, p))
            })
            .map(|u| u.name.clone())
            .collect()
    }
}

/// Compare two byte strings in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `accounts.json` in a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The accounts of the gateway whose state directory is `dir`.
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// Path of `accounts.json`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Modification time and length of the file (to notice changes cheaply), `None`
    /// when it does not exist.
    pub fn stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let m = std::fs::metadata(self.path()).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    /// Read the accounts (none when the file does not exist).
    pub fn load(&self) -> Result<Accounts, Error> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Accounts::default()),
            Err(source) => {
                return Err(Error::Io {
                    path,
                    op: "read",
                    source,
                });
            }
        };
        let a: Accounts = serde_json::from_str(&text).map_err(|e| Error::Format {
            path: path.clone(),
            reason: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        if a.format_version > FORMAT_VERSION {
            return Err(Error::Format {
                path,
                reason: format!(
                    "format version {} is newer than this gateway's {FORMAT_VERSION}",
                    a.format_version
                ),
            });
        }
        Ok(a)
    }

    /// Change the accounts under the exclusive lock: read, apply `f`, write atomically
    /// (mode 0600, fsync, rename). Nothing is written when `f` fails.
    pub fn update<R>(&self, f: impl FnOnce(&mut Accounts) -> Result<R, Error>) -> Result<R, Error> {
        let io = |path: &Path, op: &'static str| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, op, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir, "create directory"))?;
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = open_private(&lock_path, false).map_err(io(&lock_path, "open"))?;
        lock.lock().map_err(io(&lock_path, "lock"))?;
        let mut a = self.load()?;
        let r = f(&mut a)?;
        a.format_version = FORMAT_VERSION;
        let path = self.path();
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let text = serde_json::to_vec_pretty(&a).map_err(|e| Error::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        {
            let mut f = open_private(&tmp, true).map_err(io(&tmp, "create"))?;
            f.write_all(&text).map_err(io(&tmp, "write"))?;
            f.sync_all().map_err(io(&tmp, "fsync"))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path, "rename"))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        drop(lock);
        Ok(r)
    }
}

fn open_private(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).write(true).read(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}
