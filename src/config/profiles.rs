//! Device profiles: the shipped ones embedded in the binary, extended or overridden by
//! `*.toml` files in the site's `profiles_dir`.
//!
//! A site file with the same `id` as a shipped profile replaces it (a site may correct
//! a map for a firmware revision without waiting for a release). A file's `protocol`
//! key (`modbus`, the default, or `snmp`) decides which parser reads it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{DeviceProfile, Problem};
use crate::sources::modbus::profile;
use crate::sources::snmp;

/// Every known profile by id, or every problem found in the profile files.
pub fn load_all(dir: Option<&Path>) -> Result<HashMap<String, DeviceProfile>, Vec<Problem>> {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    let shipped = profile::shipped()
        .into_iter()
        .chain(snmp::shipped_profiles());
    for (file, text) in shipped {
        match parse_any(text, &format!("<shipped>/{file}")) {
            Ok(p) => {
                out.insert(p.id().to_string(), p);
            }
            Err(e) => problems.push(e),
        }
    }
    if let Some(dir) = dir {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem {
                    file: dir.display().to_string(),
                    line: 0,
                    column: 0,
                    context: "profiles_dir".into(),
                    message: format!("cannot read the profiles directory: {e}"),
                });
                return Err(problems);
            }
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let origin = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse_any(&text, &origin) {
                    Ok(p) => {
                        out.insert(p.id().to_string(), p);
                    }
                    Err(e) => problems.push(e),
                },
                Err(e) => problems.push(Problem {
                    file: origin,
                    line: 0,
                    column: 0,
                    context: String::new(),
                    message: format!("cannot read the profile: {e}"),
                }),
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Parse a profile with the parser its `protocol` key names.
pub fn parse_any(text: &str, origin: &str) -> Result<DeviceProfile, Problem> {
    let problem = |line, column, message: String| Problem {
        file: origin.to_string(),
        line,
        column,
        context: "profile".into(),
        message,
    };
    let protocol = toml::from_str::<toml::Table>(text).ok().and_then(|t| {
        t.get("protocol")
            .and_then(|p| p.as_str().map(str::to_string))
    });
    match protocol.as_deref() {
        Some("snmp") => snmp::parse_profile(text, origin)
            .map(|p| DeviceProfile::Snmp(Arc::new(p)))
            .map_err(|e| problem(e.line, e.column, e.message)),
        None | Some("modbus") => profile::parse(text, origin)
            .map(|p| DeviceProfile::Modbus(Arc::new(p)))
            .map_err(|e| problem(e.line, e.column, e.message)),
        Some(other) => Err(problem(
            1,
            1,
            format!("unknown protocol {other:?}: use \"modbus\" or \"snmp\""),
        )),
    }
}
