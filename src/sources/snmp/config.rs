//! SNMP configuration: the raw TOML tables the site file embeds (`[devices.snmp]` and
//! `[snmp_traps]`), their validation into [`AgentConnection`] and [`TrapConfig`], and
//! the credential types.
//!
//! Invariants:
//!
//! - Secrets (communities, v3 keys) come from a file or an environment variable
//!   (`{ file = "..." }` / `{ env = "..." }`); an inline secret is a config error.
//! - Secrets never reach a log line: [`Credentials`] and [`V3User`] print
//!   `<redacted>` in `Debug`.
//! - v3 keys are at least 8 characters (RFC 3414 §11.2); protocols are checked by
//!   name when the file is validated, not when the first poll fails.
//! - Problems carry the byte span in the site file so the config layer can report
//!   `file:line:column`, plus the key path relative to the table.
//!
//! Privacy protocol names follow net-snmp: `DES`, `AES` (AES-128, RFC 3826),
//! `AES192`/`AES256` (key extension of draft-blumenthal-aes-usm-04) and
//! `AES192C`/`AES256C` (the Reeder/Cisco key extension). Both extensions exist in the
//! field and are not interoperable, so the choice is per agent.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::raw::RawSecret;

/// Default SNMP agent port.
pub const DEFAULT_PORT: u16 = 161;
/// Default trap listen address.
pub const DEFAULT_TRAP_LISTEN: &str = "0.0.0.0:162";
/// Default number of retries after a request timeout.
pub const DEFAULT_RETRIES: u32 = 1;

/// `[devices.snmp]`: how to reach one SNMP agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnmp {
    /// Host name or address of the agent.
    pub host: Spanned<String>,
    /// UDP port (161).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `"1"`, `"2c"` or `"3"`.
    pub version: Spanned<String>,
    /// v1/v2c community (from file or env).
    #[serde(default)]
    pub community: Option<Spanned<RawSecret>>,
    /// v3 user name.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// v3 authentication: `MD5`, `SHA`, `SHA-224`, `SHA-256`, `SHA-384`, `SHA-512`.
    #[serde(default)]
    pub auth_protocol: Option<Spanned<String>>,
    /// v3 authentication pass phrase (from file or env).
    #[serde(default)]
    pub auth_key: Option<Spanned<RawSecret>>,
    /// v3 privacy: `DES`, `AES`, `AES192`, `AES256`, `AES192C`, `AES256C`.
    #[serde(default)]
    pub priv_protocol: Option<Spanned<String>>,
    /// v3 privacy pass phrase (from file or env).
    #[serde(default)]
    pub priv_key: Option<Spanned<RawSecret>>,
    /// v3 context name (empty by default).
    #[serde(default)]
    pub context: Option<String>,
    /// Retries after a timed-out request (1). Each try waits the device `timeout_ms`.
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    /// The agent's snmpEngineID in hex: required to accept its SNMPv3 traps.
    #[serde(default)]
    pub engine_id: Option<Spanned<String>>,
}

const fn default_port() -> u16 {
    DEFAULT_PORT
}

/// `[snmp_traps]`: the trap receiver.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnmpTraps {
    /// UDP listen address (`0.0.0.0:162`).
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    /// Communities accepted in v1/v2c traps (each from file or env).
    #[serde(default)]
    pub communities: Vec<Spanned<RawSecret>>,
    /// SNMPv3 users accepted in v3 traps and informs.
    #[serde(default)]
    pub users: Vec<Spanned<RawTrapUser>>,
    /// This receiver's own snmpEngineID in hex (informs are sent to it); generated and
    /// kept in the state directory when unset.
    #[serde(default)]
    pub engine_id: Option<Spanned<String>>,
}

/// `[[snmp_traps.users]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrapUser {
    /// User name.
    pub name: Spanned<String>,
    /// Authentication protocol (see [`RawSnmp::auth_protocol`]).
    #[serde(default)]
    pub auth_protocol: Option<Spanned<String>>,
    /// Authentication pass phrase (from file or env).
    #[serde(default)]
    pub auth_key: Option<Spanned<RawSecret>>,
    /// Privacy protocol (see [`RawSnmp::priv_protocol`]).
    #[serde(default)]
    pub priv_protocol: Option<Spanned<String>>,
    /// Privacy pass phrase (from file or env).
    #[serde(default)]
    pub priv_key: Option<Spanned<RawSecret>>,
}

/// One problem found while validating an SNMP table.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// Byte range in the site file (empty when the key is missing).
    pub span: Range<usize>,
    /// Key path relative to the table (`auth_key`, `users[1].priv_protocol`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// SNMPv3 authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProto {
    /// HMAC-MD5-96 (RFC 3414).
    Md5,
    /// HMAC-SHA-96 (RFC 3414).
    Sha1,
    /// HMAC-SHA-224 (RFC 7860).
    Sha224,
    /// HMAC-SHA-256 (RFC 7860).
    Sha256,
    /// HMAC-SHA-384 (RFC 7860).
    Sha384,
    /// HMAC-SHA-512 (RFC 7860).
    Sha512,
}

impl AuthProto {
    /// Parse a net-snmp style name (case-insensitive).
    pub fn parse(s: &str) -> Option<AuthProto> {
        Some(
            match s.trim().to_ascii_uppercase().replace('_', "-").as_str() {
                "MD5" => AuthProto::Md5,
                "SHA" | "SHA1" | "SHA-1" => AuthProto::Sha1,
                "SHA-224" | "SHA224" => AuthProto::Sha224,
                "SHA-256" | "SHA256" => AuthProto::Sha256,
                "SHA-384" | "SHA384" => AuthProto::Sha384,
                "SHA-512" | "SHA512" => AuthProto::Sha512,
                _ => return None,
            },
        )
    }

    /// The async-snmp protocol.
    pub fn to_snmp(self) -> async_snmp::AuthProtocol {
        match self {
            AuthProto::Md5 => async_snmp::AuthProtocol::Md5,
            AuthProto::Sha1 => async_snmp::AuthProtocol::Sha1,
            AuthProto::Sha224 => async_snmp::AuthProtocol::Sha224,
            AuthProto::Sha256 => async_snmp::AuthProtocol::Sha256,
            AuthProto::Sha384 => async_snmp::AuthProtocol::Sha384,
            AuthProto::Sha512 => async_snmp::AuthProtocol::Sha512,
        }
    }
}

/// SNMPv3 privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProto {
    /// DES-CBC (RFC 3414). Weak; only for old cards.
    Des,
    /// AES-128-CFB (RFC 3826).
    Aes128,
    /// AES-192-CFB, Blumenthal key extension (net-snmp `AES192`).
    Aes192,
    /// AES-256-CFB, Blumenthal key extension (net-snmp `AES256`).
    Aes256,
    /// AES-192-CFB, Reeder/Cisco key extension (net-snmp `AES192C`).
    Aes192C,
    /// AES-256-CFB, Reeder/Cisco key extension (net-snmp `AES256C`).
    Aes256C,
}

impl PrivProto {
    /// Parse a net-snmp style name (case-insensitive); `-BLUMENTHAL`/`-REEDER` spellings
    /// are accepted too.
    pub fn parse(s: &str) -> Option<PrivProto> {
        Some(
            match s.trim().to_ascii_uppercase().replace('_', "-").as_str() {
                "DES" => PrivProto::Des,
                "AES" | "AES128" | "AES-128" => PrivProto::Aes128,
                "AES192" | "AES-192" | "AES-192-BLUMENTHAL" => PrivProto::Aes192,
                "AES256" | "AES-256" | "AES-256-BLUMENTHAL" => PrivProto::Aes256,
                "AES192C" | "AES-192-C" | "AES-192-REEDER" | "AES-192-CISCO" => PrivProto::Aes192C,
                "AES256C" | "AES-256-C" | "AES-256-REEDER" | "AES-256-CISCO" => PrivProto::Aes256C,
                _ => return None,
            },
        )
    }

    /// The async-snmp protocol.
    pub fn to_snmp(self) -> async_snmp::PrivProtocol {
        match self {
            PrivProto::Des => async_snmp::PrivProtocol::Des,
            PrivProto::Aes128 => async_snmp::PrivProtocol::Aes128,
            PrivProto::Aes192 => async_snmp::PrivProtocol::Aes192Blumenthal,
            PrivProto::Aes256 => async_snmp::PrivProtocol::Aes256Blumenthal,
            PrivProto::Aes192C => async_snmp::PrivProtocol::Aes192Reeder,
            PrivProto::Aes256C => async_snmp::PrivProtocol::Aes256Reeder,
        }
    }
}

/// An SNMPv3 USM user with its keys.
#[derive(Clone, PartialEq)]
pub struct V3User {
    /// User name.
    pub name: String,
    /// Authentication protocol and pass phrase (none: noAuthNoPriv).
    pub auth: Option<(AuthProto, String)>,
    /// Privacy protocol and pass phrase (needs `auth`).
    pub privacy: Option<(PrivProto, String)>,
}

impl V3User {
    /// The security level these keys give.
    pub fn level(&self) -> async_snmp::SecurityLevel {
        match (&self.auth, &self.privacy) {
            (None, _) => async_snmp::SecurityLevel::NoAuthNoPriv,
            (Some(_), None) => async_snmp::SecurityLevel::AuthNoPriv,
            (Some(_), Some(_)) => async_snmp::SecurityLevel::AuthPriv,
        }
    }
}

impl fmt::Debug for V3User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3User")
            .field("name", &self.name)
            .field("auth", &self.auth.as_ref().map(|(p, _)| (p, "<redacted>")))
            .field(
                "privacy",
                &self.privacy.as_ref().map(|(p, _)| (p, "<redacted>")),
            )
            .finish()
    }
}

/// How the gateway authenticates to an agent.
#[derive(Clone, PartialEq)]
pub enum Credentials {
    /// SNMPv1 with a community.
    V1 {
        /// Community string.
        community: String,
    },
    /// SNMPv2c with a community.
    V2c {
        /// Community string.
        community: String,
    },
    /// SNMPv3 USM.
    V3 {
        /// User and keys.
        user: V3User,
        /// Context name (usually empty).
        context: String,
    },
}

impl Credentials {
    /// `v1`, `v2c` or `v3`, for logs.
    pub fn version(&self) -> &'static str {
        match self {
            Credentials::V1 { .. } => "v1",
            Credentials::V2c { .. } => "v2c",
            Credentials::V3 { .. } => "v3",
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::V1 { .. } => f.write_str("V1 { community: <redacted> }"),
            Credentials::V2c { .. } => f.write_str("V2c { community: <redacted> }"),
            Credentials::V3 { user, context } => f
                .debug_struct("V3")
                .field("user", user)
                .field("context", context)
                .finish(),
        }
    }
}

/// A validated `[devices.snmp]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConnection {
    /// Host name or address.
    pub host: String,
    /// UDP port.
    pub port: u16,
    /// Version and secrets.
    pub credentials: Credentials,
    /// Retries after a timed-out request.
    pub retries: u32,
    /// The agent's snmpEngineID, when its v3 traps are to be accepted.
    pub engine_id: Option<Vec<u8>>,
}

/// A validated `[snmp_traps]` table.
#[derive(Debug, Clone)]
pub struct TrapConfig {
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Communities accepted in v1/v2c traps; empty: no v1/v2c trap is accepted.
    pub communities: Vec<String>,
    /// Users accepted in v3 traps and informs, at their configured security level.
    pub users: Vec<V3User>,
    /// This receiver's snmpEngineID; generated (and kept in `state_dir`) when unset.
    pub engine_id: Option<Vec<u8>>,
    /// Where the receiver keeps its engine ID and boot counter (RFC 3414 needs
    /// `snmpEngineBoots` to grow across restarts); in memory when unset.
    pub state_dir: Option<PathBuf>,
}

impl TrapConfig {
    /// A receiver on `listen` with nothing accepted yet.
    pub fn new(listen: SocketAddr) -> TrapConfig {
        TrapConfig {
            listen,
            communities: Vec::new(),
            users: Vec::new(),
            engine_id: None,
            state_dir: None,
        }
    }
}

/// Parse an snmpEngineID written in hex (`80001f8880...`, `0x` prefix and `:`
/// separators allowed); RFC 3411 allows 5 to 32 octets.
pub fn parse_engine_id(s: &str) -> Option<Vec<u8>> {
    let t: String = s
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect();
    if !t.len().is_multiple_of(2) || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
        .collect();
    bytes.filter(|b| (5..=32).contains(&b.len()))
}

/// Hex text of an engine ID.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An authentication protocol and its pass phrase.
type AuthKey = (AuthProto, String);
/// A privacy protocol and its pass phrase.
type PrivKey = (PrivProto, String);

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn at(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            span,
            key: key.into(),
            message: message.into(),
        });
    }

    fn secret(&mut self, s: &Spanned<RawSecret>, key: &str, base: &Path) -> Option<String> {
        crate::config::read_secret(s.get_ref(), base)
            .map_err(|e| self.at(s.span(), key, e.to_string()))
            .ok()
    }

    /// Auth and privacy of a v3 user; `prefix` is the key path of the table.
    #[allow(clippy::too_many_arguments)]
    fn v3_keys(
        &mut self,
        prefix: &str,
        whole: Range<usize>,
        auth_protocol: &Option<Spanned<String>>,
        auth_key: &Option<Spanned<RawSecret>>,
        priv_protocol: &Option<Spanned<String>>,
        priv_key: &Option<Spanned<RawSecret>>,
        base: &Path,
    ) -> (Option<AuthKey>, Option<PrivKey>) {
        let auth = match (auth_protocol, auth_key) {
            (None, None) => None,
            (Some(p), Some(k)) => {
                let proto = AuthProto::parse(p.get_ref());
                if proto.is_none() {
                    self.at(p.span(), format!("{prefix}auth_protocol"), format!("unknown authentication protocol {:?}: use MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512", p.get_ref()));
                }
                let key = self.secret(k, &format!("{prefix}auth_key"), base);
                if let Some(key) = &key
                    && key.len() < 8
                {
                    self.at(
                        k.span(),
                        format!("{prefix}auth_key"),
                        "the authentication pass phrase is shorter than 8 characters (RFC 3414)",
                    );
                }
                proto.zip(key)
            }
            (Some(p), None) => {
                self.at(
                    p.span(),
                    format!("{prefix}auth_key"),
                    "auth_protocol is set but auth_key is missing",
                );
                None
            }
            (None, Some(k)) => {
                self.at(
                    k.span(),
                    format!("{prefix}auth_protocol"),
                    "auth_key is set but auth_protocol is missing",
                );
                None
            }
        };
        let privacy = match (priv_protocol, priv_key) {
            (None, None) => None,
            (Some(p), Some(k)) => {
                let proto = PrivProto::parse(p.get_ref());
                if proto.is_none() {
                    self.at(p.span(), format!("{prefix}priv_protocol"), format!("unknown privacy protocol {:?}: use DES, AES, AES192, AES256 (Blumenthal key extension) or AES192C, AES256C (Reeder key extension)", p.get_ref()));
                }
                let key = self.secret(k, &format!("{prefix}priv_key"), base);
                if let Some(key) = &key
                    && key.len() < 8
                {
                    self.at(
                        k.span(),
                        format!("{prefix}priv_key"),
                        "the privacy pass phrase is shorter than 8 characters (RFC 3414)",
                    );
                }
                if auth_protocol.is_none() {
                    self.at(
                        p.span(),
                        format!("{prefix}auth_protocol"),
                        "privacy needs authentication: set auth_protocol and auth_key too",
                    );
                }
                proto.zip(key)
            }
            (Some(p), None) => {
                self.at(
                    p.span(),
                    format!("{prefix}priv_key"),
                    "priv_protocol is set but priv_key is missing",
                );
                None
            }
            (None, Some(k)) => {
                self.at(
                    k.span(),
                    format!("{prefix}priv_protocol"),
                    "priv_key is set but priv_protocol is missing",
                );
                None
            }
        };
        let _ = whole;
        (auth, privacy)
    }
}

/// Validate a `[devices.snmp]` table. `whole` is the table's span (for problems about
/// a missing key); relative secret file paths are taken from `base`.
pub fn validate_agent(
    raw: &RawSnmp,
    whole: Range<usize>,
    base: &Path,
) -> Result<AgentConnection, Vec<ConfigProblem>> {
    let mut p = Problems(Vec::new());
    if raw.host.get_ref().trim().is_empty() {
        p.at(raw.host.span(), "host", "host is empty");
    }
    let retries = raw
        .retries
        .as_ref()
        .map(|r| *r.get_ref())
        .unwrap_or(DEFAULT_RETRIES);
    if let Some(r) = &raw.retries
        && *r.get_ref() > 10
    {
        p.at(
            r.span(),
            "retries",
            format!("{} retries is too many: use 0 to 10", r.get_ref()),
        );
    }
    let engine_id = match &raw.engine_id {
        None => None,
        Some(e) => {
            let id = parse_engine_id(e.get_ref());
            if id.is_none() {
                p.at(e.span(), "engine_id", format!("{:?} is not an snmpEngineID: write 5 to 32 bytes in hex (e.g. \"80001f888012345678\")", e.get_ref()));
            }
            id
        }
    };
    let version = raw.version.get_ref().trim().to_ascii_lowercase();
    let v3_fields = raw.user.is_some()
        || raw.auth_protocol.is_some()
        || raw.auth_key.is_some()
        || raw.priv_protocol.is_some()
        || raw.priv_key.is_some();
    let credentials = match version.as_str() {
        "1" | "v1" | "2c" | "v2c" => {
            if v3_fields {
                p.at(
                    raw.version.span(),
                    "version",
                    "user, auth_* and priv_* belong to SNMPv3: set version = \"3\" or remove them",
                );
            }
            if raw.engine_id.is_some() {
                p.at(
                    raw.version.span(),
                    "engine_id",
                    "engine_id applies to SNMPv3 agents only",
                );
            }
            let community = match &raw.community {
                Some(c) => p.secret(c, "community", base),
                None => {
                    p.at(whole.clone(), "community", "SNMPv1/v2c needs a community: community = { file = \"...\" } or { env = \"...\" }");
                    None
                }
            };
            community.map(|community| {
                if version.ends_with('1') {
                    Credentials::V1 { community }
                } else {
                    Credentials::V2c { community }
                }
            })
        }
        "3" | "v3" => {
            if let Some(c) = &raw.community {
                p.at(
                    c.span(),
                    "community",
                    "SNMPv3 uses a user, not a community: remove community",
                );
            }
            let (auth, privacy) = p.v3_keys(
                "",
                whole.clone(),
                &raw.auth_protocol,
                &raw.auth_key,
                &raw.priv_protocol,
                &raw.priv_key,
                base,
            );
            match &raw.user {
                Some(u) if !u.get_ref().trim().is_empty() => Some(Credentials::V3 {
                    user: V3User {
                        name: u.get_ref().trim().to_string(),
                        auth,
                        privacy,
                    },
                    context: raw.context.clone().unwrap_or_default(),
                }),
                Some(u) => {
                    p.at(u.span(), "user", "user is empty");
                    None
                }
                None => {
                    p.at(whole.clone(), "user", "SNMPv3 needs a user");
                    None
                }
            }
        }
        other => {
            p.at(
                raw.version.span(),
                "version",
                format!("unknown SNMP version {other:?}: use \"1\", \"2c\" or \"3\""),
            );
            None
        }
    };
    match credentials {
        Some(credentials) if p.0.is_empty() => Ok(AgentConnection {
            host: raw.host.get_ref().trim().to_string(),
            port: raw.port,
            credentials,
            retries,
            engine_id,
        }),
        _ => Err(p.0),
    }
}

/// Validate an `[snmp_traps]` table. `state_dir` is where the receiver keeps its
/// engine state (the gateway's state directory).
pub fn validate_traps(
    raw: &RawSnmpTraps,
    base: &Path,
    state_dir: Option<&Path>,
) -> Result<TrapConfig, Vec<ConfigProblem>> {
    let mut p = Problems(Vec::new());
    let listen = match &raw.listen {
        None => DEFAULT_TRAP_LISTEN.parse().ok(),
        Some(l) => {
            let a = l.get_ref().parse::<SocketAddr>().ok();
            if a.is_none() {
                p.at(
                    l.span(),
                    "listen",
                    format!(
                        "{:?} is not an address:port (e.g. \"0.0.0.0:162\")",
                        l.get_ref()
                    ),
                );
            }
            a
        }
    };
    let mut communities = Vec::new();
    for (i, c) in raw.communities.iter().enumerate() {
        if let Some(s) = p.secret(c, &format!("communities[{i}]"), base) {
            communities.push(s);
        }
    }
    let mut users: Vec<V3User> = Vec::new();
    for (i, u) in raw.users.iter().enumerate() {
        let ru = u.get_ref();
        let prefix = format!("users[{i}].");
        let (auth, privacy) = p.v3_keys(
            &prefix,
            u.span(),
            &ru.auth_protocol,
            &ru.auth_key,
            &ru.priv_protocol,
            &ru.priv_key,
            base,
        );
        let name = ru.name.get_ref().trim().to_string();
        if name.is_empty() {
            p.at(
                ru.name.span(),
                format!("{prefix}name"),
                "user name is empty",
            );
        } else if users.iter().any(|x| x.name == name) {
            p.at(
                ru.name.span(),
                format!("{prefix}name"),
                format!("user {name:?} is listed twice"),
            );
        }
        if auth.is_none() && ru.auth_protocol.is_none() {
            p.at(u.span(), format!("{prefix}auth_protocol"), "a trap user needs authentication: an unauthenticated v3 trap can be forged by anyone");
        }
        users.push(V3User {
            name,
            auth,
            privacy,
        });
    }
    let engine_id = match &raw.engine_id {
        None => None,
        Some(e) => {
            let id = parse_engine_id(e.get_ref());
            if id.is_none() {
                p.at(
                    e.span(),
                    "engine_id",
                    format!(
                        "{:?} is not an snmpEngineID: write 5 to 32 bytes in hex",
                        e.get_ref()
                    ),
                );
            }
            id
        }
    };
    match listen {
        Some(listen) if p.0.is_empty() => Ok(TrapConfig {
            listen,
            communities,
            users,
            engine_id,
            state_dir: state_dir.map(Path::to_path_buf),
        }),
        _ => Err(p.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        snmp: Spanned<RawSnmp>,
    }

    fn agent(toml_text: &str) -> Result<AgentConnection, Vec<ConfigProblem>> {
        let w: Wrap = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
        validate_agent(w.snmp.get_ref(), w.snmp.span(), Path::new("/"))
    }

    #[test]
    fn v3_auth_priv_from_env() {
        // SAFETY: test-local variable names; no other test reads them.
        unsafe {
            std::env::set_var("DCGW_TEST_SNMP_AUTH", "authpass123");
            std::env::set_var("DCGW_TEST_SNMP_PRIV", "privpass123");
        }
        let c = agent("[snmp]\nhost = \"10.0.0.5\"\nversion = \"3\"\nuser = \"mon\"\nauth_protocol = \"SHA-256\"\nauth_key = { env = \"DCGW_TEST_SNMP_AUTH\" }\npriv_protocol = \"AES256C\"\npriv_key = { env = \"DCGW_TEST_SNMP_PRIV\" }\nengine_id = \"80:00:1f:88:04:41:42:43\"\n").unwrap();
        assert_eq!(c.port, 161);
        assert_eq!(c.retries, DEFAULT_RETRIES);
        assert_eq!(
            c.engine_id,
            Some(vec![0x80, 0x00, 0x1f, 0x88, 0x04, 0x41, 0x42, 0x43])
        );
        let Credentials::V3 { user, .. } = &c.credentials else {
            panic!()
        };
        assert_eq!(user.auth, Some((AuthProto::Sha256, "authpass123".into())));
        assert_eq!(user.privacy.as_ref().map(|p| p.0), Some(PrivProto::Aes256C));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("authpass123") && !dbg.contains("privpass123"),
            "{dbg}"
        );
    }

    #[test]
    fn both_aes256_key_extensions_are_named() {
        assert_eq!(PrivProto::parse("AES256"), Some(PrivProto::Aes256));
        assert_eq!(PrivProto::parse("aes256c"), Some(PrivProto::Aes256C));
        assert_eq!(PrivProto::parse("AES-256-REEDER"), Some(PrivProto::Aes256C));
        assert_eq!(
            PrivProto::Aes256.to_snmp(),
            async_snmp::PrivProtocol::Aes256Blumenthal
        );
        assert_eq!(
            PrivProto::Aes256C.to_snmp(),
            async_snmp::PrivProtocol::Aes256Reeder
        );
        assert_eq!(
            PrivProto::Aes192C.to_snmp(),
            async_snmp::PrivProtocol::Aes192Reeder
        );
    }

    #[test]
    fn inline_community_is_rejected_with_position() {
        let text = "[snmp]\nhost = \"h\"\nversion = \"2c\"\ncommunity = \"public\"\n";
        let errs = agent(text).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "community");
        assert_eq!(&text[errs[0].span.clone()], "\"public\"");
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = agent("[snmp]\nhost = \"\"\nversion = \"3\"\nauth_protocol = \"SHA-3\"\npriv_protocol = \"AES\"\nretries = 50\nengine_id = \"xyz\"\n").unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "host",
            "retries",
            "engine_id",
            "auth_key",
            "priv_key",
            "user",
        ] {
            assert!(keys.contains(&k), "{k} missing in {errs:?}");
        }
    }

    #[test]
    fn short_keys_and_unknown_version() {
        // SAFETY: test-local variable name.
        unsafe { std::env::set_var("DCGW_TEST_SNMP_SHORT", "short") };
        let errs = agent("[snmp]\nhost = \"h\"\nversion = \"3\"\nuser = \"u\"\nauth_protocol = \"MD5\"\nauth_key = { env = \"DCGW_TEST_SNMP_SHORT\" }\n").unwrap_err();
        assert!(errs[0].message.contains("8 characters"), "{errs:?}");
        let errs = agent("[snmp]\nhost = \"h\"\nversion = \"2\"\n").unwrap_err();
        assert!(errs[0].message.contains("unknown SNMP version"), "{errs:?}");
    }

    #[test]
    fn engine_ids_parse() {
        assert_eq!(
            parse_engine_id("0x8000000001020304"),
            Some(vec![0x80, 0, 0, 0, 1, 2, 3, 4])
        );
        assert_eq!(parse_engine_id("8000"), None, "too short");
        assert_eq!(parse_engine_id("80zz000102"), None);
    }

    #[test]
    fn trap_users_need_authentication() {
        #[derive(Deserialize)]
        struct W {
            snmp_traps: RawSnmpTraps,
        }
        let w: W = toml::from_str(
            "[snmp_traps]\nlisten = \"127.0.0.1:1162\"\n[[snmp_traps.users]]\nname = \"t\"\n",
        )
        .unwrap();
        let errs = validate_traps(&w.snmp_traps, Path::new("/"), None).unwrap_err();
        assert!(errs[0].message.contains("authentication"), "{errs:?}");
        let w: W = toml::from_str("[snmp_traps]\n").unwrap();
        let t = validate_traps(&w.snmp_traps, Path::new("/"), None).unwrap();
        assert_eq!(t.listen.to_string(), "0.0.0.0:162");
    }
}
