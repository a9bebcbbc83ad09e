//! The `dc-gateway` command line: parse arguments, set up logging, load the config,
//! run. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use dc_gateway::{backup, config, demo, points, runtime};

/// Facility-monitoring gateway for a data center.
#[derive(Parser)]
#[command(name = "dc-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a site config.
    Run {
        /// Site config file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Directory for durable state (sink buffers); overrides `[storage] state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Check a site config and print every problem found.
    CheckConfig {
        /// Site config file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Check without the site's secrets (on a laptop): secret files and variables
        /// are not read and are reported as not checked.
        #[arg(long)]
        offline: bool,
    },
    /// Run the gateway on a built-in simulated site (no external services needed).
    Demo {
        /// Web page and API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Also publish to this MQTT broker (`mqtt://user:pass@host:port`, `mqtts://...`).
        /// With a password, give it in `DCGW_MQTT_URL` instead: the command line is
        /// visible to every user in the process list.
        #[arg(long, env = "DCGW_MQTT_URL", hide_env_values = true)]
        mqtt: Option<String>,
        /// Also write to this InfluxDB (`http://host:port?org=O&bucket=B` with
        /// `DCGW_INFLUX_TOKEN`, or `http://host:port?db=D`); `DCGW_INFLUX_URL` too.
        #[arg(long, env = "DCGW_INFLUX_URL", hide_env_values = true)]
        influx: Option<String>,
        /// Directory for state (durable queues, journal). Default: a new temporary
        /// directory, removed on exit; give one to keep queued records across restarts.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Use simulated devices already served by `dc-gateway simulate` at this
        /// address instead of starting them in this process.
        #[arg(long)]
        simulator: Option<std::net::SocketAddr>,
        /// Which built-in site: `normal` (8 devices) or `large` (63 devices, 6 rooms).
        #[arg(long, value_enum, default_value = "normal")]
        site: demo::DemoSite,
    },
    /// Serve only the demo site's simulated devices (Modbus TCP), for benchmarks.
    Simulate {
        /// Address to serve Modbus TCP on.
        #[arg(long, default_value = "127.0.0.1:5020")]
        listen: std::net::SocketAddr,
        /// Which built-in site's devices (as `demo --site`).
        #[arg(long, value_enum, default_value = "normal")]
        site: demo::DemoSite,
    },
    /// Read one device once and print raw registers and decoded points.
    Probe {
        /// Site config file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Device id.
        #[arg(long)]
        device: String,
    },
    /// Check the SMS modem of an `sms` sink (start-up checks: SIM, registration,
    /// signal) and optionally send a test text or ring a phone. Stop the gateway first:
    /// the modem's port has one owner.
    Modem {
        /// Site config file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// The `sms` sink's name (default: the only one).
        #[arg(long)]
        sink: Option<String>,
        /// Send a test text to this number (E.164, e.g. +84912345678).
        #[arg(long)]
        text_to: Option<String>,
        /// The test text (default: a Vietnamese test message).
        #[arg(long)]
        text: Option<String>,
        /// Ring this number (hung up after the sink's `call_ring_s`).
        #[arg(long)]
        call: Option<String>,
    },
    /// Who is on call now and next (the `[paging]` roster), and the roster's gaps.
    Oncall {
        /// Site config file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// At this time instead of now: RFC 3339 or relative (+8h, -1d).
        #[arg(long, allow_hyphen_values = true)]
        at: Option<String>,
        /// Print JSON (as `GET /api/v1/oncall`).
        #[arg(long)]
        json: bool,
    },
    /// Print the journal (alarms, commands, starts, config loads, ...), oldest first.
    /// Reads only: safe while the gateway runs.
    Journal {
        /// State directory holding journal.db (default: the config's `[storage]
        /// state_dir`).
        #[arg(long, conflicts_with = "config")]
        state_dir: Option<PathBuf>,
        /// Site config file whose state directory to read.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only entries at or after this time: RFC 3339 or relative (-30m, -24h, -7d).
        #[arg(long, allow_hyphen_values = true)]
        since: Option<String>,
        /// Only entries before this time: RFC 3339 or relative.
        #[arg(long, allow_hyphen_values = true)]
        until: Option<String>,
        /// Only entries about this device.
        #[arg(long)]
        device: Option<String>,
        /// Only entries of this kind (alarm, command, gateway_start, gateway_stop,
        /// config_loaded, sink_failed, sink_recovered, login, incident, generator_run,
        /// clock, notification, account).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many entries (default: all).
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per line (JSON Lines) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write Grafana dashboards and provisioning files for a site (docs/GRAFANA.md).
    Dashboards {
        /// Site config file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Use the built-in demo site (`dc-gateway demo`) instead of `--config`.
        #[arg(long)]
        demo: bool,
        /// Output directory (created if missing; files in it are overwritten).
        #[arg(long)]
        out: PathBuf,
        /// IANA time zone for the dashboards; default: the site's (Asia/Ho_Chi_Minh).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Write a consistent copy of the state directory (queues, alarm seq, engine state)
    /// to a `.tar.gz`, while the gateway runs (docs/PACKAGE.md, "Backup and restore").
    Backup {
        /// Backup file to write; a directory gets `dc-gateway-<UTC time>.tar.gz` in it.
        #[arg(long)]
        out: PathBuf,
        /// State directory to copy; default: the config's `[storage] state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Site config file (read for the state directory when --state-dir is not given).
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// With a directory as --out: keep only the newest N backups there.
        #[arg(long)]
        keep: Option<usize>,
    },
    /// Check a backup and install it as the state directory (gateway stopped).
    Restore {
        /// Backup file written by `dc-gateway backup`.
        #[arg(long)]
        from: PathBuf,
        /// State directory to restore into; default: the config's `[storage] state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Site config file (read for the state directory when --state-dir is not given).
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Replace the state the directory already holds.
        #[arg(long)]
        force: bool,
        /// Check the backup only; install nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Acknowledge an alarm on the running gateway (through its local socket).
    Ack {
        /// The alarm's number (`123`) or `device/rule`.
        target: String,
        /// Who acknowledges (journaled with the command).
        #[arg(long)]
        by: String,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
        /// State directory of the running gateway; default: the config's.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Site config file (read for the state directory when --state-dir is not given).
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Send any command to the running gateway (through its local socket):
    /// ack, shelve, unshelve, maintenance_start, maintenance_end, test_notification,
    /// silence (`dc-gateway command silence all --by An`), config_apply.
    Command {
        /// The verb.
        verb: String,
        /// What it acts on.
        #[arg(default_value = "")]
        target: String,
        /// Who gives it.
        #[arg(long)]
        by: String,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
        /// Command id (default: a new one); the same id is applied once.
        #[arg(long)]
        id: Option<String>,
        /// State directory of the running gateway; default: the config's.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Site config file (read for the state directory when --state-dir is not given).
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Accounts of the web console and API tokens (docs/ACCOUNTS.md), on the board's
    /// console. Passwords are read from standard input, one line.
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserCmd,
        /// State directory holding accounts.json; default: the config's.
        #[arg(long, global = true)]
        state_dir: Option<PathBuf>,
        /// Site config file (read for the state directory when --state-dir is not given).
        #[arg(long, global = true, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// The config versions the gateway loaded (kept in the state directory).
    Config {
        /// What to do.
        #[command(subcommand)]
        action: ConfigCmd,
        /// State directory holding config-history/; default: the config's.
        #[arg(long, global = true)]
        state_dir: Option<PathBuf>,
        /// Site config file (read for the state directory when --state-dir is not given).
        #[arg(long, global = true, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Print the canonical point vocabulary as Markdown (docs/POINTS.md).
    Points,
    /// Print the default alarm rules (Article 10 profile) as Markdown (docs/RULES.md).
    Rules,
}

/// `dc-gateway config ...`
#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate a config and have the running gateway apply it (through its local
    /// socket): refused with its errors if invalid, the running config kept; journaled
    /// with its SHA-256 and who applied it (docs/OPERATIONS.md).
    Apply {
        /// The config to apply; default: the file the gateway was started with.
        file: Option<PathBuf>,
        /// Who applies it (journaled); default: $SUDO_USER or $USER.
        #[arg(long)]
        by: Option<String>,
    },
    /// List the versions: number, when first loaded, SHA-256, lines added/removed.
    History {
        /// Also print each version's changes against the one before.
        #[arg(long)]
        diff: bool,
    },
    /// Print one version's text (default: the newest) or write it to a file.
    Export {
        /// Version number (`config history`).
        #[arg(long)]
        version: Option<u32>,
        /// Write it here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn config_command(
    action: ConfigCmd,
    state_dir: Option<PathBuf>,
    path: &std::path::Path,
) -> ExitCode {
    use dc_gateway::config::history;
    let run = || -> anyhow::Result<()> {
        let dir = state_dir_of(state_dir, path)?;
        let versions = history::list(&dir)?;
        match action {
            ConfigCmd::History { diff } => {
                if versions.is_empty() {
                    println!(
                        "no config version stored yet in {}",
                        dir.join(history::DIR).display()
                    );
                }
                let mut prev: Option<String> = None;
                for v in &versions {
                    let text = history::text(&dir, v.version)?;
                    let (added, removed) =
                        history::diff_counts(prev.as_deref().unwrap_or(""), &text);
                    println!(
                        "{:>4}  {}  sha256 {}  +{added} -{removed}  {}",
                        v.version,
                        v.ts.rfc3339(),
                        &v.sha256[..v.sha256.len().min(16)],
                        v.origin
                    );
                    if diff && let Some(p) = &prev {
                        print!("{}", history::diff(p, &text, 2));
                    }
                    prev = Some(text);
                }
            }
            ConfigCmd::Export { version, out } => {
                let n = match version {
                    Some(n) => n,
                    None => versions
                        .last()
                        .map(|v| v.version)
                        .ok_or_else(|| history::Error::Empty(dir.join(history::DIR)))?,
                };
                let text = history::text(&dir, n)?;
                match out {
                    Some(p) => std::fs::write(&p, text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                    None => print!("{text}"),
                }
            }
            // Sent to the running gateway by the caller (`main`), never here.
            ConfigCmd::Apply { .. } => anyhow::bail!("`config apply` goes to the running gateway"),
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `dc-gateway user ...`
#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input.
    Add {
        /// Login name.
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// Do not ask for a new password at the first login (scripted provisioning).
        #[arg(long)]
        no_change_required: bool,
    },
    /// Set (reset) a user's password, read from standard input; it must be changed at
    /// the next login unless --no-change-required.
    Passwd {
        /// Login name.
        name: String,
        /// Do not ask for a new password at the next login.
        #[arg(long)]
        no_change_required: bool,
    },
    /// Lock a user until `user unlock`.
    Lock {
        /// Login name.
        name: String,
    },
    /// Lift a lockout (after wrong passwords or `user lock`).
    Unlock {
        /// Login name.
        name: String,
    },
    /// Disable a user.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Login name.
        name: String,
    },
    /// Change a user's role.
    Role {
        /// Login name.
        name: String,
        /// viewer, operator or admin.
        role: String,
    },
    /// Make an API token with a role, or a kiosk token for the wall TV (printed once).
    TokenAdd {
        /// What it is for (`wall TV`, `nagios`).
        name: String,
        /// viewer, operator or admin (ignored with --kiosk).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Wall view only.
        #[arg(long)]
        kiosk: bool,
    },
    /// Revoke a token by its id.
    TokenRevoke {
        /// The token's id (`user list`).
        id: String,
    },
    /// List users and tokens.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

fn user_command(action: UserCmd, state_dir: Option<PathBuf>, path: &std::path::Path) -> ExitCode {
    use dc_gateway::accounts::{Role, cli::Action};
    let role = |r: &str| {
        Role::parse(r)
            .ok_or_else(|| anyhow::anyhow!("unknown role {r:?}: viewer, operator or admin"))
    };
    let action = (|| -> anyhow::Result<Action> {
        Ok(match action {
            UserCmd::Add {
                name,
                role: r,
                no_change_required,
            } => Action::Add {
                name,
                role: role(&r)?,
                must_change: !no_change_required,
            },
            UserCmd::Passwd {
                name,
                no_change_required,
            } => Action::Passwd {
                name,
                must_change: !no_change_required,
            },
            UserCmd::Lock { name } => Action::Lock(name),
            UserCmd::Unlock { name } => Action::Unlock(name),
            UserCmd::Disable { name } => Action::Disable(name),
            UserCmd::Enable { name } => Action::Enable(name),
            UserCmd::Role { name, role: r } => Action::Role(name, role(&r)?),
            UserCmd::TokenAdd {
                name,
                role: r,
                kiosk,
            } => Action::TokenAdd {
                name,
                role: role(&r)?,
                kiosk,
            },
            UserCmd::TokenRevoke { id } => Action::TokenRevoke(id),
            UserCmd::List { json } => Action::List { json },
        })
    })();
    let run = action.and_then(|a| {
        let dir = state_dir_of(state_dir, path)?;
        Ok(dc_gateway::accounts::cli::run(
            &a,
            &dir,
            &mut std::io::stdin().lock(),
        )?)
    });
    match run {
        Ok(out) => {
            println!("{}", out.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DCGW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Points => {
            print!("{}", points::markdown());
            ExitCode::SUCCESS
        }
        Command::Ack {
            target,
            by,
            comment,
            state_dir,
            config: path,
        } => send_command("ack", target, by, comment, None, state_dir, &path),
        Command::Command {
            verb,
            target,
            by,
            comment,
            id,
            state_dir,
            config: path,
        } => send_command(&verb, target, by, comment, id, state_dir, &path),
        Command::User {
            action,
            state_dir,
            config: path,
        } => user_command(action, state_dir, &path),
        Command::Config {
            action: ConfigCmd::Apply { file, by },
            state_dir,
            config: path,
        } => {
            let by = by
                .or_else(|| std::env::var("SUDO_USER").ok())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            let target = match &file {
                Some(f) => match std::fs::canonicalize(f) {
                    Ok(p) => p.display().to_string(),
                    Err(e) => {
                        eprintln!("error: {}: {e}", f.display());
                        return ExitCode::from(2);
                    }
                },
                None => String::new(),
            };
            // The state directory: given, else the running config's, else the new one's.
            let state_dir = match (state_dir, &file) {
                (Some(d), _) => Some(d),
                (None, Some(f)) if !path.exists() => state_dir_of(None, f).ok(),
                _ => None,
            };
            send_command("config_apply", target, by, None, None, state_dir, &path)
        }
        Command::Config {
            action,
            state_dir,
            config: path,
        } => config_command(action, state_dir, &path),
        Command::Rules => {
            print!("{}", dc_gateway::rules::defaults::markdown());
            ExitCode::SUCCESS
        }
        Command::Oncall {
            config: path,
            at,
            json,
        } => oncall(&path, at.as_deref(), json),
        Command::Journal {
            state_dir,
            config: config_path,
            since,
            until,
            device,
            kind,
            limit,
            json,
        } => {
            let args = dc_gateway::journal::cli::Args {
                state_dir,
                config: config_path,
                since,
                until,
                device,
                kind,
                limit,
                json,
            };
            match dc_gateway::journal::cli::run(&args, &mut std::io::stdout().lock()) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dashboards {
            config: path,
            demo,
            out,
            time_zone,
        } => dc_gateway::dashboards::run_cli((!demo).then_some(path.as_path()), &out, time_zone),
        Command::Backup {
            out,
            state_dir,
            config: path,
            keep,
        } => report(state_dir_of(state_dir, &path).and_then(|dir| {
            let (out, in_dir) = backup_target(&out);
            let rep = backup::backup(&dir, &out)?;
            println!("{}: backup of {}", out.display(), dir.display());
            print!("{rep}");
            if let (Some(n), Some(d)) = (keep, in_dir) {
                backup::prune(&d, n)?;
            }
            Ok(())
        })),
        Command::Restore {
            from,
            state_dir,
            config: path,
            force,
            dry_run,
        } => report(state_dir_of(state_dir, &path).and_then(|dir| {
            let rep = backup::restore(&from, &dir, backup::RestoreOptions { force, dry_run })?;
            let verb = if dry_run {
                "checked, not installed"
            } else {
                "restored into"
            };
            println!(
                "{}: backup of {} taken {} — {verb} {}",
                from.display(),
                rep.manifest.source,
                rep.manifest.created_at,
                dir.display()
            );
            print!("{rep}");
            Ok(())
        })),
        Command::CheckConfig {
            config: path,
            offline,
        } => {
            config::set_offline(offline);
            let loaded = config::load(&path);
            // Every file the config names: exists, right kind, readable, private
            // (src/config/files.rs).
            let files = config::files::check_file(&path, offline);
            for line in &files.not_checked {
                eprintln!("note: {line}");
            }
            for w in &files.warnings {
                eprintln!("warning: {w}");
            }
            match loaded {
                Ok(site) if files.problems.is_empty() => {
                    if offline {
                        eprintln!(
                            "note: --offline: secrets (password, token, community and key files or variables) were not checked"
                        );
                    }
                    for w in &site.warnings {
                        eprintln!("warning: {w}");
                    }
                    println!(
                        "{}: OK — site {:?}, {} rooms, {} devices, {} sinks, {} named files checked",
                        path.display(),
                        site.name.as_ref(),
                        site.rooms.len(),
                        site.devices.len(),
                        site.sinks.len(),
                        files.checked
                    );
                    for w in config::profiles::warnings(&site) {
                        println!("warning: {w}");
                    }
                    ExitCode::SUCCESS
                }
                other => {
                    let mut all = match other {
                        Ok(_) => Vec::new(),
                        Err(errs) => errs.0,
                    };
                    // A file the validation already refused (on its line) is reported once.
                    for p in files.problems {
                        if !all.iter().any(|q| q.line == p.line) {
                            all.push(p);
                        }
                    }
                    all.sort_by_key(|p| (p.line, p.column));
                    let errs = config::ConfigErrors(all);
                    eprintln!("{errs}");
                    eprintln!("{} problem(s) found", errs.0.len());
                    ExitCode::from(2)
                }
            }
        }
        other => {
            limit_malloc_arenas();
            init_tracing();
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run(other)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Run {
            config: path,
            state_dir,
        } => {
            // Runs until SIGTERM or Ctrl-C; SIGHUP and `dc-gateway config apply`
            // reload the config (src/runtime/reload.rs).
            runtime::reload::run(path, state_dir).await
        }
        Command::Demo {
            listen,
            mqtt,
            influx,
            state_dir,
            simulator,
            site,
        } => {
            // A password on the command line is readable by every user (ps).
            for (url, var) in [(&mqtt, "DCGW_MQTT_URL"), (&influx, "DCGW_INFLUX_URL")] {
                if let Some(u) = url
                    && url::Url::parse(u).is_ok_and(|x| x.password().is_some())
                    && std::env::var(var).ok().as_deref() != Some(u.as_str())
                {
                    tracing::warn!(
                        "a password given on the command line is visible to every user in the process list: put the URL in {var} instead"
                    );
                }
            }
            let token = std::env::var("DCGW_INFLUX_TOKEN").ok();
            // Without --state-dir the demo keeps its buffers in a temporary directory
            // that is removed on exit (the guard below).
            let (state_dir, _temp) = match state_dir {
                Some(d) => (d, None),
                None => {
                    let d = std::env::temp_dir()
                        .join(format!("dc-gateway-demo-{}", std::process::id()));
                    (d.clone(), Some(RemoveOnDrop(d)))
                }
            };
            let (running, _sim) = demo::start_site(
                site,
                listen,
                simulator,
                mqtt.as_deref(),
                influx.as_deref(),
                token,
                &state_dir,
            )
            .await?;
            println!("dc-gateway demo: wall view on http://{}/", running.web_addr);
            wait_for_signal().await;
            running.shutdown(std::time::Duration::from_secs(3)).await;
            Ok(())
        }
        Command::Simulate { listen, site } => {
            let sim = demo::start_simulator_of(site, listen).await?;
            println!(
                "dc-gateway simulate: demo devices on {} (Modbus TCP)",
                sim.addr
            );
            wait_for_signal().await;
            Ok(())
        }
        Command::Probe {
            config: path,
            device,
        } => {
            let site = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            let d = site
                .devices
                .iter()
                .find(|d| d.meta.id.as_ref() == device)
                .with_context(|| format!("no device {device:?} in {}", path.display()))?;
            let report = runtime::probe(&site, d).await?;
            print!("{report}");
            Ok(())
        }
        Command::Modem {
            config: path,
            sink,
            text_to,
            text,
            call,
        } => {
            let site = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            let modems: Vec<_> = site
                .sinks
                .iter()
                .filter_map(|e| match &e.config {
                    dc_gateway::sinks::SinkConfig::Sms(c)
                        if sink.as_deref().is_none_or(|n| n == &*e.name) =>
                    {
                        Some((e.name.clone(), c.clone()))
                    }
                    _ => None,
                })
                .collect();
            let (name, cfg) = match modems.as_slice() {
                [one] => one.clone(),
                [] => anyhow::bail!(
                    "no sms sink{} in {}",
                    sink.map(|n| format!(" named {n:?}")).unwrap_or_default(),
                    path.display()
                ),
                _ => anyhow::bail!(
                    "several sms sinks in {}: name one with --sink",
                    path.display()
                ),
            };
            let text = text.unwrap_or_else(|| {
                format!(
                    "dc-gateway {}: tin nhắn thử nghiệm — kiểm tra đường gửi SMS cảnh báo.",
                    site.name
                )
            });
            let (report, ok) = dc_gateway::sinks::sms::probe(
                &name,
                &cfg,
                text_to.as_deref().map(|to| (to, text.as_str())),
                call.as_deref(),
            )
            .await;
            print!("{report}");
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        // Handled before the runtime starts.
        Command::CheckConfig { .. }
        | Command::Points
        | Command::Rules
        | Command::Journal { .. }
        | Command::Oncall { .. }
        | Command::User { .. }
        | Command::Config { .. }
        | Command::Dashboards { .. }
        | Command::Ack { .. }
        | Command::Command { .. }
        | Command::Backup { .. }
        | Command::Restore { .. } => Ok(()),
    }
}

/// `dc-gateway oncall`: who is on call at `at` (default now) and next.
fn oncall(path: &std::path::Path, at: Option<&str>, json: bool) -> ExitCode {
    let site = match config::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let now = dc_gateway::model::Timestamp::now();
    // `+8h` is `-8h` mirrored around now.
    let ahead = at.and_then(|a| a.trim().strip_prefix('+'));
    let parsed = match (ahead, at) {
        (Some(rest), _) => Some(
            dc_gateway::journal::cli::parse_time(&format!("-{rest}"), now)
                .map(|t| dc_gateway::model::Timestamp(now.0 + (now.0 - t.0))),
        ),
        (None, a) => a.map(|a| dc_gateway::journal::cli::parse_time(a, now)),
    };
    let at = match parsed {
        None => now,
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            eprintln!("error: --at: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(paging) = &site.paging else {
        eprintln!(
            "error: {} has no [paging] table: nobody is paged",
            path.display()
        );
        return ExitCode::FAILURE;
    };
    let report = dc_gateway::paging::roster::report(paging, at, &site.time);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.text());
    }
    if report.now.is_none() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The state directory a backup or restore works on: `--state-dir`, else the config's.
fn state_dir_of(given: Option<PathBuf>, config_path: &std::path::Path) -> anyhow::Result<PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => config::load(config_path)
            .map(|site| site.storage.state_dir)
            .map_err(|e| anyhow::anyhow!("{e}\n(give --state-dir to do without the config)")),
    }
}

/// `--out`: a file, or a directory (existing, or named with a trailing `/` and then
/// created) that gets a time-stamped file; the directory is returned as well.
fn backup_target(out: &std::path::Path) -> (PathBuf, Option<PathBuf>) {
    if out.as_os_str().to_string_lossy().ends_with('/') {
        let _ = std::fs::create_dir_all(out);
    }
    if out.is_dir() {
        (
            out.join(backup::file_name(dc_gateway::model::Timestamp::now())),
            Some(out.to_path_buf()),
        )
    } else {
        (out.to_path_buf(), None)
    }
}

/// Send one command to the running gateway's local socket and print its answer.
fn send_command(
    verb: &str,
    target: String,
    by: String,
    comment: Option<String>,
    id: Option<String>,
    state_dir: Option<PathBuf>,
    config_path: &std::path::Path,
) -> ExitCode {
    let dir = match state_dir_of(state_dir, config_path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cmd = serde_json::json!({
        "id": id.unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7())),
        "verb": verb,
        "target": target,
        "by": by,
        "comment": comment,
    });
    match dc_gateway::commands::socket::send(&dir, &cmd) {
        Ok(reply) => {
            println!("{}", serde_json::to_string(&reply).unwrap_or_default());
            if reply.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Print an error chain and map to the exit status.
fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Removes a directory when dropped (the demo's temporary state).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Keep the process to one glibc malloc arena. By default glibc gives each thread
/// that allocates its own arena (up to 8 per core), and each arena keeps its own free
/// pages: on a board with a few hundred MiB that is memory held for nothing, as our
/// threads allocate little and rarely at the same instant. Measured on the site
/// benchmark: peak RSS about 1 MiB lower, no CPU difference (docs/BENCHMARKS.md).
/// `MALLOC_ARENA_MAX` in the environment still wins, for anyone who wants more.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread exists; mallopt only sets a
        // parameter of the allocator and reports failure by returning 0.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
