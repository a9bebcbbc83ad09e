//! Device profiles: the shipped ones embedded in the binary, extended or overridden by
//! `*.toml` files in the site's `profiles_dir`.
//!
//! A site file with the same `id` as a shipped profile replaces it (a site may correct
//! a map for a firmware revision without waiting for a release). A file's `protocol`
//! key (`modbus`, the default, `snmp` or `gpio`) decides which parser reads it.
//!
//! A broken file is reported once, where it is broken, and only that file is lost: the
//! shipped profiles and the other site files stay known, and a device naming the
//! broken profile's id is not reported a second time ([`Loaded::broken`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::{DeviceProfile, Problem};
use crate::sources::modbus::profile;
use crate::sources::{gpio, onvif, snmp};

/// What [`load_all`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every profile that parsed, by id (a site file overriding a shipped id wins).
    pub profiles: HashMap<String, DeviceProfile>,
    /// Every problem found in the profile files, each once.
    pub problems: Vec<Problem>,
    /// Ids of the site files that did not parse (when the id itself could be read):
    /// a device naming one is not reported again.
    pub broken: HashSet<String>,
}

/// Every profile that parses, by id, with the problems of those that do not.
pub fn load_all(dir: Option<&Path>) -> Loaded {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    let mut broken = HashSet::new();
    let shipped = profile::shipped()
        .into_iter()
        .chain(snmp::shipped_profiles())
        .chain(gpio::shipped_profiles())
        .chain(onvif::shipped_profiles());
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
                return Loaded {
                    profiles: out,
                    problems,
                    broken,
                };
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
                    Err(e) => {
                        if let Some(id) = id_of(&text) {
                            broken.insert(id);
                        }
                        problems.push(e);
                    }
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
    Loaded {
        profiles: out,
        problems,
        broken,
    }
}

/// The `id` a profile text names, if it can be read at all.
fn id_of(text: &str) -> Option<String> {
    let t = toml::from_str::<toml::Table>(text).ok()?;
    Some(t.get("id")?.as_str()?.trim().to_string())
}

/// The warnings of the profiles the site's devices use, each profile once
/// (`origin:line:column: message`), for `check-config`.
pub fn warnings(site: &super::Site) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in &site.devices {
        if let DeviceProfile::Modbus(p) = &d.profile
            && seen.insert(p.id.clone())
        {
            out.extend(p.warnings.iter().map(|w| w.to_string()));
        }
    }
    out
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
        Some("onvif") => onvif::parse_profile(text, origin)
            .map(|p| DeviceProfile::Onvif(Arc::new(p)))
            .map_err(|e| problem(e.line, e.column, e.message)),
        Some("gpio") => gpio::parse_profile(text, origin)
            .map(|p| DeviceProfile::Gpio(Arc::new(p)))
            .map_err(|e| problem(e.line, e.column, e.message)),
        None | Some("modbus") => profile::parse(text, origin)
            .map(|p| DeviceProfile::Modbus(Arc::new(p)))
            .map_err(|e| problem(e.line, e.column, e.message)),
        Some(other) => Err(problem(
            1,
            1,
            format!("unknown protocol {other:?}: use \"modbus\", \"snmp\", \"gpio\" or \"onvif\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23, item 3: one broken site profile is reported once, where it is broken,
    /// and the shipped profiles stay known.
    #[test]
    fn one_broken_site_profile_leaves_the_shipped_ones_known() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("my-ups.toml"),
            "id = \"my-ups\"\nkind = \"ups\"\nprotocol = \"snmp\"\n[[points]]\npoint = \"batery_charge_pct\"\noid = \"1.3.6.1.2.1.33.1.2.4.0\"\nsource = \"x\"\n",
        )
        .unwrap();
        let loaded = load_all(Some(dir.path()));
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
        assert!(
            loaded.problems[0]
                .to_string()
                .contains("my-ups.toml:5:9: profile: unknown point `batery_charge_pct`"),
            "{}",
            loaded.problems[0]
        );
        for id in [
            "ups-mib",
            "apc-powernet",
            "dse-gencomm",
            "xy-md02",
            "liebert-icom",
        ] {
            assert!(loaded.profiles.contains_key(id), "{id} lost");
        }
        assert!(loaded.broken.contains("my-ups"));
        assert!(!loaded.profiles.contains_key("my-ups"));
    }

    fn site_with(dir: &Path, profile: &str) -> String {
        format!(
            "profiles_dir = {:?}\n[site]\nname = \"tv\"\n[[rooms]]\nid = \"r\"\n\
             [[devices]]\nid = \"th1\"\nroom = \"r\"\nkind = \"climate\"\nprofile = \"xy-md02\"\n\
             [devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = 502\nunit_id = 1\n\
             [[devices]]\nid = \"g1\"\nroom = \"r\"\nkind = \"generator\"\nprofile = {profile:?}\n\
             [devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = 502\nunit_id = 2\n",
            dir.display()
        )
    }

    /// Through the whole site validation: the broken file once, the device on a
    /// shipped profile fine, the device on the broken one not reported again.
    #[test]
    fn a_site_with_one_broken_profile_reports_only_that_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gen.toml"),
            "id = \"my-gen\"\nkind = \"generator\"\nprotocol = \"modbus\"\n[[points]]\npoint = \"lod_pct\"\ntable = \"holding\"\naddress = 1\ntype = \"u16\"\nsource = \"x\"\n",
        )
        .unwrap();
        let text = site_with(dir.path(), "my-gen");
        let Err(errs) = super::super::parse(&text, "site.toml", Path::new("/")) else {
            panic!("the broken profile is an error");
        };
        let errs = errs.0;
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 1, "{msgs:#?}");
        assert!(
            msgs[0].contains("gen.toml:5:9: profile: unknown point `lod_pct`"),
            "{msgs:#?}"
        );
    }

    /// A 4xxxx lookalike address in a used profile is a `check-config` warning, not an
    /// error; declared real, nothing.
    #[test]
    fn lookalike_addresses_are_warnings_of_the_site() {
        let dir = tempfile::tempdir().unwrap();
        let prof = |head: &str| {
            format!(
                "id = \"my-gen\"\nkind = \"generator\"\nprotocol = \"modbus\"\n{head}[[points]]\npoint = \"load_pct\"\ntable = \"holding\"\naddress = 41559\ntype = \"i16\"\nsource = \"x\"\n"
            )
        };
        std::fs::write(dir.path().join("gen.toml"), prof("")).unwrap();
        let text = site_with(dir.path(), "my-gen");
        let site = super::super::parse(&text, "site.toml", Path::new("/")).expect("valid");
        let w = warnings(&site);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("gen.toml:7:11: point `load_pct`: address 41559 looks like the manual's 1-based 4xxxx numbering (holding register 41559 is protocol address 1558): write address = 1558"), "{w:?}");
        std::fs::write(
            dir.path().join("gen.toml"),
            prof("high_addresses_are_real = true\n"),
        )
        .unwrap();
        let site = super::super::parse(&text, "site.toml", Path::new("/")).expect("valid");
        assert!(warnings(&site).is_empty());
    }
}
