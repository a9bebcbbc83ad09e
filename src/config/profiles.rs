//! Device profiles: the shipped ones embedded in the binary, extended or overridden by
//! `*.toml` files in the site's `profiles_dir`.
//!
//! A site file with the same `id` as a shipped profile replaces it (a site may correct
//! a map for a firmware revision without waiting for a release).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::Problem;
use crate::sources::modbus::profile::{self, Profile};

/// Every known profile by id, or every problem found in the profile files.
pub fn load_all(dir: Option<&Path>) -> Result<HashMap<String, Arc<Profile>>, Vec<Problem>> {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for (file, text) in profile::shipped() {
        match profile::parse(text, &format!("<shipped>/{file}")) {
            Ok(p) => {
                out.insert(p.id.clone(), Arc::new(p));
            }
            Err(e) => problems.push(to_problem(&e, file)),
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
                Ok(text) => match profile::parse(&text, &origin) {
                    Ok(p) => {
                        out.insert(p.id.clone(), Arc::new(p));
                    }
                    Err(e) => problems.push(to_problem(&e, &origin)),
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

fn to_problem(e: &profile::ProfileError, origin: &str) -> Problem {
    Problem {
        file: origin.to_string(),
        line: e.line,
        column: e.column,
        context: "profile".into(),
        message: e.message.clone(),
    }
}
