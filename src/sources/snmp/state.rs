//! Durable SNMPv3 engine state: the trap receiver's engine ID and boot counter, and the
//! DES salt epoch.
//!
//! RFC 3414 ties replay protection and DES IV uniqueness to `snmpEngineBoots`, which
//! must grow on every start. Both are kept as one-line text files in the gateway's
//! state directory:
//!
//! - `snmp-trap-engine`: `<engine id hex> <boots>`
//! - `snmp-des-salt`: `<boots>`
//!
//! Beside the durable state, [`FoundRows`] is what a poller learns about its agent while
//! it runs (kept in memory, learned again after a restart): where table rows the
//! profile GETs by index actually live on this agent.
//!
//! A file is replaced atomically (write a temp file, fsync, rename) before the new
//! value is used. Without a state directory the state lives in memory only (boots = 1
//! at every start), which is safe for polling with AES and for receiving traps, and
//! documented as a weakness for DES privacy.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use async_snmp::{
    AuthoritativeEngine, DesSaltState, PersistedAuthoritativeEngine, PersistedDesSaltState,
};

use super::config::{hex, parse_engine_id};

/// File holding the trap receiver's engine ID and boots.
pub const TRAP_ENGINE_FILE: &str = "snmp-trap-engine";
/// File holding the DES salt epoch.
pub const DES_SALT_FILE: &str = "snmp-des-salt";

static STATE_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
static DES: Mutex<Option<DesSaltState>> = Mutex::new(None);

/// Set the directory where SNMP engine state is kept. Call once at start, before any
/// poller or receiver is spawned; later calls are ignored (returns false).
pub fn init_state_dir(dir: Option<&Path>) -> bool {
    STATE_DIR.set(dir.map(Path::to_path_buf)).is_ok()
}

fn state_dir() -> Option<&'static Path> {
    STATE_DIR.get_or_init(|| None).as_deref()
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    crate::durable::replace_file(path, text.as_bytes())
}

/// Engine state in the state directory that cannot be read or set up (names the file).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct StateError(pub String);

/// The process-wide DES salt state shared by every poller using DES privacy.
pub fn des_salt_state() -> Result<DesSaltState, StateError> {
    let mut guard = DES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = guard.as_ref() {
        return Ok(s.clone());
    }
    let state = match state_dir() {
        None => DesSaltState::install(|_: &PersistedDesSaltState| Ok::<(), std::io::Error>(())),
        Some(dir) => {
            let path = dir.join(DES_SALT_FILE);
            let persist = {
                let path = path.clone();
                move |s: &PersistedDesSaltState| {
                    write_atomic(&path, &format!("{}\n", s.engine_boots()))
                }
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let boots: u32 = text.trim().parse().map_err(|_| {
                        StateError(format!("{}: not a boot counter", path.display()))
                    })?;
                    let prev = PersistedDesSaltState::new(boots)
                        .map_err(|e| StateError(format!("{}: {e}", path.display())))?;
                    DesSaltState::restart(prev, persist)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    DesSaltState::install(persist)
                }
                Err(e) => return Err(StateError(format!("cannot read {}: {e}", path.display()))),
            }
        }
    }
    .map_err(|e| StateError(format!("DES salt state: {e}")))?;
    *guard = Some(state.clone());
    Ok(state)
}

/// The trap receiver's authoritative engine: `engine_id` from the config, else the one
/// kept in the state directory, else a new one (kept there for the next start).
pub fn receiver_engine(
    engine_id: Option<&[u8]>,
    dir: Option<&Path>,
) -> Result<AuthoritativeEngine, StateError> {
    let dir = dir.or(state_dir());
    let Some(dir) = dir else {
        let id = match engine_id {
            Some(id) => id.to_vec(),
            None => async_snmp::generate_engine_id()
                .map_err(|e| StateError(format!("engine ID: {e}")))?
                .to_vec(),
        };
        return AuthoritativeEngine::install(id, |_| Ok::<(), std::io::Error>(()))
            .map_err(|e| StateError(format!("engine state: {e}")));
    };
    let path = dir.join(TRAP_ENGINE_FILE);
    let persist = {
        let path = path.clone();
        move |s: &PersistedAuthoritativeEngine| {
            write_atomic(
                &path,
                &format!("{} {}\n", hex(s.engine_id()), s.engine_boots()),
            )
        }
    };
    let previous = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut it = text.split_whitespace();
            let id = it.next().and_then(parse_engine_id);
            let boots = it.next().and_then(|b| b.parse::<u32>().ok());
            match (id, boots) {
                (Some(id), Some(boots)) => Some((id, boots)),
                _ => {
                    return Err(StateError(format!(
                        "{}: expected \"<engine id hex> <boots>\"",
                        path.display()
                    )));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StateError(format!("cannot read {}: {e}", path.display()))),
    };
    let engine = match previous {
        // Same engine: count one more boot.
        Some((id, boots)) if engine_id.is_none_or(|want| want == id.as_slice()) => {
            let prev = PersistedAuthoritativeEngine::new(id, boots)
                .map_err(|e| StateError(format!("{}: {e}", path.display())))?;
            AuthoritativeEngine::restart(prev, persist)
        }
        // A new engine ID (configured, or first start): boots start at 1.
        _ => {
            let id = match engine_id {
                Some(id) => id.to_vec(),
                None => async_snmp::generate_engine_id()
                    .map_err(|e| StateError(format!("engine ID: {e}")))?
                    .to_vec(),
            };
            AuthoritativeEngine::install(id, persist)
        }
    };
    engine.map_err(|e| StateError(format!("engine state in {}: {e}", path.display())))
}

/// Table rows an agent serves under another index than the profile's GET names
/// (`upsInputVoltage.1.0` for `upsInputVoltage.1`), learned per agent by walking the
/// column after the GET answered noSuchInstance/noSuchObject.
///
/// Each profile OID is walked for at most once per poller: found, later polls GET the
/// row where it was found (and walk again only if that row disappears); not found, the
/// profile's OID stays (its quality says `no_such_object`) and no further walk is
/// spent on it.
#[derive(Debug, Clone, Default)]
pub struct FoundRows(std::collections::HashMap<async_snmp::Oid, Option<async_snmp::Oid>>);

impl FoundRows {
    /// The OID to GET for the profile's `wanted`: where a walk found it, or itself.
    pub fn resolve<'a>(&'a self, wanted: &'a async_snmp::Oid) -> &'a async_snmp::Oid {
        match self.0.get(wanted) {
            Some(Some(found)) => found,
            _ => wanted,
        }
    }

    /// Whether a walk was already spent on `wanted`.
    pub fn walked(&self, wanted: &async_snmp::Oid) -> bool {
        self.0.contains_key(wanted)
    }

    /// Forget what was learned about `wanted` (the row moved again): the next read
    /// walks for it once more.
    pub fn forget(&mut self, wanted: &async_snmp::Oid) {
        self.0.remove(wanted);
    }

    /// Remember what the walk for `wanted` found (`None`: nothing).
    pub fn remember(&mut self, wanted: async_snmp::Oid, found: Option<async_snmp::Oid>) {
        self.0.insert(wanted, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_engine_boots_grow_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let a = receiver_engine(None, Some(dir.path())).unwrap();
        assert_eq!(a.engine_boots(), 1);
        let id = a.engine_id().to_vec();
        drop(a);
        let b = receiver_engine(None, Some(dir.path())).unwrap();
        assert_eq!((b.engine_id(), b.engine_boots()), (id.as_slice(), 2));
        let configured = parse_engine_id("8000000001aabbccdd").unwrap();
        let c = receiver_engine(Some(&configured), Some(dir.path())).unwrap();
        assert_eq!(
            (c.engine_id(), c.engine_boots()),
            (configured.as_slice(), 1)
        );
        let text = std::fs::read_to_string(dir.path().join(TRAP_ENGINE_FILE)).unwrap();
        assert_eq!(text.trim(), "8000000001aabbccdd 1");
    }
}
