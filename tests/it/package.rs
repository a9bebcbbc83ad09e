//! The Debian package, built and checked the way a release is, with the real tools:
//! `cargo deb` builds it, `dpkg-deb -I`/`-c`/`-e`/`-x` look inside, `lintian` judges it
//! (clean, or each tag overridden with its reason in config/debian/lintian-overrides),
//! `systemd-analyze verify` checks the units, and the udev rules are checked line by
//! line.
//!
//! CI packages the test build of the binary (`cargo deb --no-build --profile dev`):
//! a release build (fat LTO) takes minutes on the 2-core machines, and everything
//! checked here but the binary's optimisation is the same. Releases are built with
//! `cargo deb` (docs/PACKAGE.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::peers::{peer_tempdir, repo_root, require_bin};

const CARGO_DEB_INSTALL: &str =
    "cargo install cargo-deb --locked   (./tests/run.sh installs it once per machine)";

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if !out.status.success() {
        panic!(
            "{shown} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// cargo-deb must be installed (a cargo subcommand, not a Debian package).
fn require_cargo_deb() {
    let ok = Command::new(cargo())
        .args(["deb", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        panic!("test tool `cargo-deb` is not installed. Install it with:\n    {CARGO_DEB_INSTALL}");
    }
}

/// Build the package from the binary this test run uses; returns the .deb's path.
fn build_deb(out_dir: &Path) -> PathBuf {
    require_cargo_deb();
    require_bin("dpkg-deb", "apt-get install -y dpkg");
    // target/<profile>/dc-gateway → the target dir cargo-deb must look in.
    let bin = Path::new(env!("CARGO_BIN_EXE_dc-gateway"));
    let target_dir = bin
        .parent()
        .and_then(Path::parent)
        .expect("the binary lies in <target>/<profile>/");
    let out = run(Command::new(cargo())
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", target_dir)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(out_dir));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .unwrap_or_else(|| panic!("cargo deb printed no .deb path: {}", text(&out)));
    assert!(path.is_file(), "{} missing", path.display());
    path
}

/// `key=value` lines of a systemd unit, by section (repeated keys keep every value).
fn unit_keys(unit: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut section = String::new();
    let mut keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        keys.entry((section.clone(), k.to_string()))
            .or_default()
            .push(v.to_string());
    }
    keys
}

#[test]
fn the_debian_package_builds_passes_lintian_and_holds_unit_rules_and_config() {
    let lintian = require_bin(
        "lintian",
        "apt-get install -y --no-install-recommends lintian",
    );
    let dir = peer_tempdir("package");
    let deb = build_deb(dir.path());

    // Control: name, dependencies, maintainer scripts, the conffile.
    let info = text(&run(Command::new("dpkg-deb").arg("-I").arg(&deb)));
    for want in [
        "Package: dc-gateway",
        "Section: net",
        "postinst",
        "postrm",
        "prerm",
        "conffiles",
    ] {
        assert!(info.contains(want), "dpkg-deb -I lacks {want:?}:\n{info}");
    }
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{info}"));
    assert!(
        depends.contains("adduser") && depends.contains("libc6"),
        "{depends}"
    );
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/dc-gateway/site.toml", "conffiles");
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    for want in [
        "addgroup --quiet --system \"$group\"",
        "for group in dialout gpio",
        "adduser --quiet --system --group",
        "dpkg-statoverride",
        "deb-systemd-helper",
    ] {
        assert!(
            postinst.contains(want),
            "postinst lacks {want:?}:\n{postinst}"
        );
    }
    for script in ["postinst", "postrm", "prerm"] {
        let s = std::fs::read_to_string(control.join(script)).unwrap();
        assert!(
            !s.contains("#DEBHELPER#"),
            "{script}: #DEBHELPER# not replaced"
        );
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }
    // The unit is installed, not enabled or started on the first install (the sample
    // config needs editing first).
    // (`enable` appears only to keep a unit enabled that the site had enabled.)
    let lines: Vec<&str> = postinst.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        assert!(
            !l.contains("deb-systemd-invoke start"),
            "postinst starts a unit:\n{postinst}"
        );
        if l.contains("deb-systemd-helper enable") {
            assert!(
                lines[i.saturating_sub(3)..i]
                    .iter()
                    .any(|p| p.contains("was-enabled")),
                "postinst enables a unit on install:\n{postinst}"
            );
        }
    }

    // Contents, with modes.
    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)));
    let entry = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("the package lacks {path}:\n{listing}"))
            .to_string()
    };
    assert!(
        entry("usr/bin/dc-gateway").starts_with("-rwxr-xr-x root/root")
            || entry("usr/bin/dc-gateway").starts_with("-rwxr-xr-x 0/0")
    );
    for (path, mode) in [
        ("etc/dc-gateway/site.toml", "-rw-r--r--"),
        ("usr/lib/systemd/system/dc-gateway.service", "-rw-r--r--"),
        (
            "usr/lib/systemd/system/dc-gateway-backup.service",
            "-rw-r--r--",
        ),
        (
            "usr/lib/systemd/system/dc-gateway-backup.timer",
            "-rw-r--r--",
        ),
        ("lib/udev/rules.d/70-dc-gateway.rules", "-rw-r--r--"),
        ("usr/share/lintian/overrides/dc-gateway", "-rw-r--r--"),
        ("usr/share/doc/dc-gateway/copyright", "-rw-r--r--"),
        ("usr/share/doc/dc-gateway/README.md", "-rw-r--r--"),
    ] {
        assert!(entry(path).starts_with(mode), "{path}: {}", entry(path));
    }

    // Lintian: no error, warning or info tag that is not overridden with a reason.
    let out = Command::new(&lintian)
        .args(["-I", "--show-overrides", "--no-tag-display-limit"])
        .arg(&deb)
        .output()
        .expect("run lintian");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let tags: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: ") || l.starts_with("I: "))
        .collect();
    assert!(
        tags.is_empty() && out.status.success(),
        "lintian tags not overridden in config/debian/lintian-overrides ({}):\n{}\n{}",
        out.status,
        tags.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.lines().any(|l| l.starts_with("O: ")),
        "lintian ran with the shipped overrides:\n{report}"
    );

    // The files as installed: the sample config, a binary that runs.
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert_eq!(
        std::fs::read(root.join("etc/dc-gateway/site.toml")).unwrap(),
        std::fs::read(repo_root().join("config/site.sample.toml")).unwrap(),
        "/etc/dc-gateway/site.toml is the sample"
    );
    let version = text(&run(
        Command::new(root.join("usr/bin/dc-gateway")).arg("--version")
    ));
    assert!(version.starts_with("dc-gateway "), "{version}");

    // The units: verified by systemd, and the settings the service relies on.
    let units = root.join("usr/lib/systemd/system");
    verify_units(dir.path(), &units, &root.join("usr/bin/dc-gateway"));
    let unit = std::fs::read_to_string(units.join("dc-gateway.service")).unwrap();
    let keys = unit_keys(&unit);
    let one = |k: &str| -> String {
        let v = keys
            .get(&("Service".to_string(), k.to_string()))
            .unwrap_or_else(|| panic!("[Service] {k}= missing"));
        v.last().unwrap().clone()
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("Restart"), "always");
    assert_eq!(one("User"), "dc-gateway");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("StateDirectory"), "dc-gateway");
    assert_eq!(one("StateDirectoryMode"), "0700");
    assert_eq!(one("ConfigurationDirectory"), "dc-gateway");
    assert!(
        one("ExecStart").starts_with("/usr/bin/dc-gateway run --config /etc/dc-gateway/site.toml")
    );
    let groups = one("SupplementaryGroups");
    assert!(
        groups.split_whitespace().any(|g| g == "dialout")
            && groups.split_whitespace().any(|g| g == "gpio"),
        "{groups}"
    );
    let nofile: u64 = one("LimitNOFILE").parse().expect("LimitNOFILE is a number");
    assert!(nofile >= 65536, "LimitNOFILE={nofile}");
    // The watchdog leaves the hub (1 s tick) many periods; READY is due before the
    // start timeout.
    let watchdog: u64 = one("WatchdogSec").parse().expect("WatchdogSec in seconds");
    assert!((10..=120).contains(&watchdog), "WatchdogSec={watchdog}");
    let start_timeout: u64 = one("TimeoutStartSec")
        .parse()
        .expect("TimeoutStartSec in seconds");
    assert!(
        start_timeout > dc_gateway::service::READY_AT_THE_LATEST.as_secs(),
        "TimeoutStartSec={start_timeout} must exceed READY_AT_THE_LATEST"
    );

    // udev rules: every line well-formed; ModemManager told off; GPIO without root.
    let rules = std::fs::read_to_string(root.join("lib/udev/rules.d/70-dc-gateway.rules")).unwrap();
    check_udev_rules(&rules).unwrap_or_else(|e| panic!("70-dc-gateway.rules: {e}"));
    assert!(rules.contains("ENV{ID_MM_DEVICE_IGNORE}=\"1\""));
    assert!(rules.lines().any(|l| l.starts_with("SUBSYSTEM==\"gpio\"")
        && l.contains("GROUP=\"gpio\"")
        && l.contains("MODE=\"0660\"")));
    assert!(rules.contains("SYMLINK+=\"dc-gateway/modem\""));
    assert!(
        check_udev_rules("SUBSYSTEM=\"tty\" GROUP=\"x\"").is_err(),
        "the rule check can fail"
    );
}

/// `systemd-analyze verify` on the package's units, their `/usr/bin/dc-gateway` pointed at
/// the extracted binary (verify insists that ExecStart exists). Any message fails: verify
/// exits 0 on unknown keys and bad values, it only prints them.
fn verify_units(work: &Path, units: &Path, bin: &Path) {
    let analyze = require_bin("systemd-analyze", "apt-get install -y systemd");
    let copies = work.join("units");
    std::fs::create_dir_all(&copies).unwrap();
    let mut files = Vec::new();
    for e in std::fs::read_dir(units).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        let dest = copies.join(e.file_name());
        std::fs::write(
            &dest,
            text.replace("/usr/bin/dc-gateway", &bin.display().to_string()),
        )
        .unwrap();
        files.push(dest);
    }
    assert_eq!(
        files.len(),
        3,
        "dc-gateway.service, dc-gateway-backup.service and .timer"
    );
    let verify = |files: &[PathBuf]| -> (bool, String) {
        let out = Command::new(&analyze)
            .args(["verify", "--man=no"])
            .args(files)
            .output()
            .expect("run systemd-analyze");
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success() && msg.trim().is_empty(), msg)
    };
    let (ok, msg) = verify(&files);
    assert!(ok, "systemd-analyze verify:\n{msg}");
    // The same check on a unit with one wrong value does fail.
    let bad = copies.join("dc-gateway-bad.service");
    let unit = std::fs::read_to_string(copies.join("dc-gateway.service")).unwrap();
    std::fs::write(&bad, unit.replace("WatchdogSec=", "WatchdogSec=soon")).unwrap();
    let (ok, msg) = verify(&[bad]);
    assert!(
        !ok && msg.contains("soon"),
        "a broken unit passes verify: {msg}"
    );
}

/// A line-by-line check of udev rules (systemd 252 has no `udevadm verify`): each rule is
/// comma-separated `KEY[{attr}]OP"value"` pairs with a known key; match keys use `==`/`!=`,
/// assignments `=`, `+=`, `-=`, `:=`; GOTO targets exist as LABELs.
fn check_udev_rules(text: &str) -> Result<(), String> {
    const MATCH: &[&str] = &[
        "ACTION",
        "DEVPATH",
        "KERNEL",
        "KERNELS",
        "NAME",
        "SYMLINK",
        "SUBSYSTEM",
        "SUBSYSTEMS",
        "DRIVER",
        "DRIVERS",
        "ATTR",
        "ATTRS",
        "SYSCTL",
        "ENV",
        "CONST",
        "TAG",
        "TAGS",
        "TEST",
        "PROGRAM",
        "RESULT",
    ];
    const ASSIGN: &[&str] = &[
        "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "ATTR", "SYSCTL", "ENV", "TAG", "RUN",
        "LABEL", "GOTO", "IMPORT", "OPTIONS",
    ];
    let mut labels = Vec::new();
    let mut gotos = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        while !rest.is_empty() {
            let key_end = rest
                .find(['=', '!', '+', '-', ':'])
                .ok_or_else(|| format!("line {n}: no operator in {rest:?}"))?;
            let key = &rest[..key_end];
            let base = key.split('{').next().unwrap_or(key);
            if key.contains('{') && !key.ends_with('}') {
                return Err(format!("line {n}: bad key {key:?}"));
            }
            let after = &rest[key_end..];
            let op = ["==", "!=", "+=", "-=", ":=", "="]
                .into_iter()
                .find(|op| after.starts_with(op))
                .ok_or_else(|| format!("line {n}: bad operator after {key:?}"))?;
            let is_match = op == "==" || op == "!=";
            let known = if is_match { MATCH } else { ASSIGN };
            if !known.contains(&base) {
                return Err(format!("line {n}: {base:?} cannot be used with {op}"));
            }
            let value = after[op.len()..]
                .strip_prefix('"')
                .ok_or_else(|| format!("line {n}: value of {key} not quoted"))?;
            let close = value
                .find('"')
                .ok_or_else(|| format!("line {n}: unterminated value of {key}"))?;
            match base {
                "LABEL" => labels.push(value[..close].to_string()),
                "GOTO" => gotos.push((n, value[..close].to_string())),
                _ => {}
            }
            rest = value[close + 1..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("line {n}: expected ',' before {rest:?}"));
            }
        }
    }
    for (n, g) in gotos {
        if !labels.contains(&g) {
            return Err(format!("line {n}: GOTO {g:?} has no LABEL"));
        }
    }
    Ok(())
}

/// Stand-ins for the account and dpkg tools a maintainer script calls, so the real
/// postinst from the package can run here without touching this machine's users:
/// `getent` answers from `group`/`passwd` files in `db`, `addgroup`/`adduser` append
/// to them, and every call is logged to `db/log`.
fn account_stubs(dir: &Path, db: &Path) -> PathBuf {
    let bin = dir.join("stubs");
    std::fs::create_dir_all(&bin).unwrap();
    let db = db.display();
    let stubs = [
        ("getent", format!("grep -q \"^$2:\" \"{db}/$1\"")),
        (
            "addgroup",
            format!(
                "echo \"addgroup $*\" >> \"{db}/log\"; for a; do last=$a; done; echo \"$last:x:999:\" >> \"{db}/group\""
            ),
        ),
        (
            "adduser",
            format!(
                "echo \"adduser $*\" >> \"{db}/log\"\n\
                 case \" $* \" in *\" --system \"*) for a; do last=$a; done; \
                 echo \"$last:x:998:998::/var/lib/dc-gateway:/usr/sbin/nologin\" >> \"{db}/passwd\"; \
                 echo \"$last:x:998:\" >> \"{db}/group\";; esac"
            ),
        ),
        (
            "dpkg-statoverride",
            format!(
                "echo \"dpkg-statoverride $*\" >> \"{db}/log\"\n\
                 case \" $* \" in *\" --list \"*) for a; do last=$a; done; grep -q \" $last\\$\" \"{db}/overrides\" 2>/dev/null;; \
                 *\" --add \"*) echo \"$*\" >> \"{db}/overrides\";; esac"
            ),
        ),
        ("udevadm", format!("echo \"udevadm $*\" >> \"{db}/log\"")),
        (
            "deb-systemd-helper",
            format!(
                "echo \"deb-systemd-helper $*\" >> \"{db}/log\"; [ \"$1\" != debian-installed ] && [ \"$1\" != --quiet ]"
            ),
        ),
        (
            "deb-systemd-invoke",
            format!("echo \"deb-systemd-invoke $*\" >> \"{db}/log\""),
        ),
        (
            "systemctl",
            format!("echo \"systemctl $*\" >> \"{db}/log\""),
        ),
    ];
    for (name, body) in stubs {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        crate::peers::chmod(&p, 0o755);
    }
    bin
}

#[test]
fn postinst_creates_the_user_and_missing_groups_once_and_keeps_site_overrides() {
    let dir = peer_tempdir("postinst");
    let deb = build_deb(dir.path());
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let postinst = control.join("postinst");

    let run_postinst = |db: &Path, args: &[&str]| -> (String, String) {
        let stubs = account_stubs(dir.path(), db);
        let out = run(Command::new("sh")
            .arg(&postinst)
            .args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", stubs.display()))
            .env("DPKG_ROOT", db.join("root")));
        let log = std::fs::read_to_string(db.join("log")).unwrap_or_default();
        std::fs::remove_file(db.join("log")).ok();
        (text(&out), log)
    };

    // Plain Debian: dialout exists, gpio does not, no dc-gateway user.
    let debian = dir.path().join("debian");
    std::fs::create_dir_all(&debian).unwrap();
    std::fs::write(debian.join("group"), "root:x:0:\ndialout:x:20:\n").unwrap();
    std::fs::write(debian.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let (stdout, log) = run_postinst(&debian, &["configure", ""]);
    assert!(
        log.contains("addgroup --quiet --system gpio"),
        "gpio created:\n{log}"
    );
    assert!(
        !log.contains("--system dialout"),
        "dialout exists already:\n{log}"
    );
    assert!(
        log.contains("adduser --quiet --system --group --home /var/lib/dc-gateway --no-create-home --shell /usr/sbin/nologin dc-gateway"),
        "{log}"
    );
    assert!(log.contains("adduser --quiet dc-gateway dialout"), "{log}");
    assert!(log.contains("adduser --quiet dc-gateway gpio"), "{log}");
    assert!(
        log.contains("--add root dc-gateway 0640 /etc/dc-gateway/site.toml"),
        "{log}"
    );
    assert!(
        log.contains("--add root dc-gateway 0750 /etc/dc-gateway/secrets"),
        "{log}"
    );
    assert!(
        debian.join("root/etc/dc-gateway/secrets").is_dir(),
        "secrets/ made"
    );
    assert!(
        !log.contains("deb-systemd-helper enable") && !log.contains("deb-systemd-invoke start"),
        "not enabled or started on install:\n{log}"
    );
    assert!(
        stdout.contains("systemctl enable --now dc-gateway"),
        "next steps printed: {stdout}"
    );

    // Upgrade on the same machine: nothing created again, the overrides kept.
    let (stdout, log) = run_postinst(&debian, &["configure", "0.1.0-1"]);
    assert!(
        !log.contains("addgroup") && !log.contains("--system"),
        "{log}"
    );
    assert!(
        !log.contains("--add"),
        "overrides are kept, not re-added:\n{log}"
    );
    assert!(
        stdout.is_empty(),
        "no first-install text on upgrade: {stdout}"
    );

    // Raspberry Pi OS: gpio and dialout exist; the user is made and joins both.
    let pi = dir.path().join("pi");
    std::fs::create_dir_all(&pi).unwrap();
    std::fs::write(
        pi.join("group"),
        "root:x:0:\ndialout:x:20:pi\ngpio:x:997:pi\n",
    )
    .unwrap();
    std::fs::write(pi.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let (_, log) = run_postinst(&pi, &["configure", ""]);
    assert!(
        !log.contains("addgroup"),
        "no group created on Raspberry Pi OS:\n{log}"
    );
    assert!(log.contains("adduser --quiet dc-gateway gpio"), "{log}");
}
