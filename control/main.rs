//! `cutthrough`, the appliance binary: checks configurations, hashes passwords for them, runs
//! the box, and asks a running box for its statistics and flows (over DPDK telemetry).
//!
//! Built without the `dpdk` feature (`--no-default-features`), every subcommand but `run` works
//! (the telemetry client needs no DPDK), and `run` says that the binary cannot run the box.
//!
//! Exit status: 0 on success, 1 when the box fails at run time, 2 for bad input (usage, an
//! invalid configuration, an empty password). Errors go to stderr as one line naming what was
//! wrong; nothing here panics on bad input.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::config::{self, Config};

/// `cutthrough --version`: the crate version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CT_GIT_COMMIT"), ")");

/// Bad input: usage errors (clap uses 2 as well), invalid configuration, empty password.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "cutthrough", version = VERSION, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file: prints `ok`, or the first error and exits 2.
    CheckConfig {
        /// The YAML configuration file.
        file: PathBuf,
    },
    /// Read a password (one line) from stdin and print its argon2id hash for `password_hash`.
    HashPassword,
    /// Run the box (needs a build with the `dpdk` feature, the default).
    Run {
        /// The YAML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Write the counters as JSON to this file every second and when the box stops.
        #[arg(long, value_name = "FILE")]
        stats_json: Option<PathBuf>,
        /// Print the statistics every N seconds (testpmd's port blocks, then the box's own).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        stats_period: Option<u64>,
        /// `full`: the box. `io`: plain port-to-port forwarding with no processing, the
        /// baseline to compare with `dpdk-testpmd --forward-mode=io`.
        #[arg(long, value_enum, default_value_t = Mode::Full)]
        forward_mode: Mode,
        /// Extra EAL arguments, after `--` (e.g. `-- --no-huge -l 0-1`).
        #[arg(last = true, value_name = "EAL_ARGS")]
        eal: Vec<String>,
    },
    /// Print a running box's statistics (DPDK telemetry `/cutthrough/stats`).
    Stats {
        /// The raw JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// List a running box's flows: quad, phase, deltas, TCP state, idle time
    /// (telemetry `/cutthrough/flows`; packet and byte counts are not kept per flow).
    Flows {
        /// The raw JSON.
        #[arg(long)]
        json: bool,
        /// At most this many flows (at most 80: one telemetry reply).
        #[arg(long, default_value_t = control::ops::FLOWS_DEFAULT)]
        limit: usize,
        /// Only flows with an end in CIDR (or at ADDRESS), on PORT, or both (CIDR:PORT).
        #[arg(long, value_name = "CIDR|PORT|CIDR:PORT")]
        filter: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// A running box's logins (the authentication cache): list them, or end them so that
    /// the next connection from that client is asked again.
    Auth {
        #[command(subcommand)]
        action: AuthAction,
    },
}

#[derive(Debug, Subcommand)]
enum AuthAction {
    /// User, client, method, since when, idle for how long, connections that used it
    /// (telemetry `/cutthrough/auth`).
    List {
        /// The raw JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// End the logins of a client address, of a user, or all of them (telemetry
    /// `/cutthrough/auth_clear`).
    Clear {
        /// The client's address.
        #[arg(required_unless_present_any = ["user", "all"], conflicts_with_all = ["user", "all"])]
        client: Option<String>,
        /// Every login of this user.
        #[arg(long, conflicts_with = "all")]
        user: Option<String>,
        /// Every login.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// Which box to ask.
#[derive(Debug, clap::Args)]
struct Target {
    /// The box's EAL `--file-prefix` (DPDK's default is `rte`).
    #[arg(long, default_value = "rte")]
    file_prefix: String,
    /// The telemetry socket itself (instead of the one of --file-prefix).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl Target {
    fn connect(&self) -> Result<control::client::Telemetry, ExitCode> {
        let path = self
            .socket
            .clone()
            .unwrap_or_else(|| control::client::socket_path(&self.file_prefix));
        control::client::Telemetry::connect(&path).map_err(|e| {
            eprintln!("{e}");
            ExitCode::FAILURE
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Full,
    Io,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::HashPassword => hash_password(),
        Command::Run {
            config,
            stats_json,
            stats_period,
            forward_mode,
            eal,
        } => run(&config, eal, stats_json, stats_period, forward_mode),
        Command::Stats { json, target } => stats(json, &target),
        Command::Flows {
            json,
            limit,
            filter,
            target,
        } => flows(json, limit, filter.as_deref(), &target),
        Command::Auth {
            action: AuthAction::List { json, target },
        } => auth_list(json, &target),
        Command::Auth {
            action:
                AuthAction::Clear {
                    client,
                    user,
                    all,
                    target,
                },
        } => {
            let params = match (client, user, all) {
                (_, _, true) => "all".to_string(),
                (_, Some(u), _) => format!("user={u}"),
                (Some(c), _, _) => match common::config::parse_ipv4(&c) {
                    Ok(a) => a.to_string(),
                    Err(e) => {
                        eprintln!("auth clear: {e}");
                        return ExitCode::from(EXIT_BAD_INPUT);
                    }
                },
                (None, None, false) => unreachable!("clap requires one"),
            };
            auth_clear(&params, &target)
        }
    }
}

/// Sends one telemetry command and returns its answer, or prints why not.
fn ask(target: &Target, command: &str) -> Result<serde_json::Value, ExitCode> {
    let mut tel = target.connect()?;
    match tel.command(command) {
        Ok(serde_json::Value::Null) => {
            eprintln!("the box did not answer {command} in time");
            Err(ExitCode::FAILURE)
        }
        Ok(serde_json::Value::String(e)) => {
            eprintln!("{command}: {e}");
            Err(ExitCode::from(EXIT_BAD_INPUT))
        }
        Ok(v) => Ok(v),
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn auth_list(json: bool, target: &Target) -> ExitCode {
    let value = match ask(target, "/cutthrough/auth") {
        Ok(v) => v,
        Err(code) => return code,
    };
    let logins = control::ops::logins_of(&value);
    if json {
        let v = serde_json::json!({ "total": value["total"], "logins": logins });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<16} {:<16} {:<11} {:<16} {:<17} {:>9} {:>9} {:>11}",
        "user", "client", "method", "rule", "backend", "since s", "idle s", "connections"
    );
    for l in &logins {
        let secs = |k: &str| l[k].as_u64().unwrap_or(0) as f64 / 1000.0;
        let text = |k: &str| l[k].as_str().unwrap_or("?").to_owned();
        // A rule's own login shows its scope; a shared one the rule it was made at.
        let rule = match l["scope"].as_str() {
            Some("shared") | None => text("rule"),
            Some(_) => format!("{}[own]", text("rule")),
        };
        println!(
            "{:<16} {:<16} {:<11} {:<16} {:<17} {:>9.1} {:>9.1} {:>11}",
            text("user"),
            text("client"),
            text("method"),
            rule,
            text("backend"),
            secs("since_ms"),
            secs("idle_ms"),
            l["connections"].as_u64().unwrap_or(0)
        );
    }
    let total = value["total"].as_u64().unwrap_or(logins.len() as u64);
    println!("{} login(s), {} shown", total, logins.len());
    ExitCode::SUCCESS
}

fn auth_clear(params: &str, target: &Target) -> ExitCode {
    match ask(target, &format!("/cutthrough/auth_clear,{params}")) {
        Ok(v) => {
            println!("{} login(s) ended", v["ended"].as_u64().unwrap_or(0));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn stats(json: bool, target: &Target) -> ExitCode {
    let mut tel = match target.connect() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let value = match tel.command("/cutthrough/stats") {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    match serde_json::from_value::<control::report::Report>(value.clone()) {
        Ok(r) => {
            print!("{}", r.to_text());
            ExitCode::SUCCESS
        }
        Err(_) => {
            eprintln!("the box answered: {value}");
            ExitCode::FAILURE
        }
    }
}

fn flows(json: bool, limit: usize, filter: Option<&str>, target: &Target) -> ExitCode {
    let filter = match dataplane::live::FlowFilter::parse(filter.unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("flows: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if limit > control::ops::FLOWS_MAX {
        eprintln!(
            "flows: listing {} (the most one telemetry reply carries)",
            control::ops::FLOWS_MAX
        );
    }
    let query = control::ops::FlowQuery {
        limit: limit.min(control::ops::FLOWS_MAX),
        filter,
    };
    let mut tel = match target.connect() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let listing = tel
        .command(&format!("/cutthrough/flows,{}", query.to_params()))
        .and_then(|v| control::ops::FlowListing::from_json(&v));
    match listing {
        Ok(l) if json => {
            println!("{}", serde_json::to_string_pretty(&l).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(l) => {
            print!("{}", l.to_text());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: &Path) -> Result<Config, ExitCode> {
    config::load(file).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

fn check_config(file: &Path) -> ExitCode {
    match load(file) {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn hash_password() -> ExitCode {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // No echo suppression without a terminal library: say so rather than surprise.
        eprint!("password (echoed): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = Vec::new();
    if let Err(e) = stdin.lock().read_until(b'\n', &mut line) {
        eprintln!("hash-password: cannot read stdin: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.is_empty() {
        eprintln!("hash-password: empty password (give it as one line on stdin)");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    match config::hash_password(&line) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hash-password: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "dpdk")]
fn run(
    file: &Path,
    eal: Vec<String>,
    stats_json: Option<PathBuf>,
    stats_period: Option<u64>,
    mode: Mode,
) -> ExitCode {
    let config = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    log::info!(
        "cutthrough {VERSION}: {} loaded ({} rules, {} workers)",
        file.display(),
        config.policy.len(),
        config.workers.count
    );
    let opts = control::run::RunOptions {
        eal,
        stats_json,
        mode: match mode {
            Mode::Full => dataplane::context::ForwardMode::Full,
            Mode::Io => dataplane::context::ForwardMode::Io,
        },
        stats_period: stats_period.map(std::time::Duration::from_secs),
        config_file: Some(file.to_path_buf()),
    };
    match control::run::run(config, opts) {
        Ok(stats) => {
            print!("{}", stats.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `run` in a binary built without DPDK: reads the configuration as `run` does (a bad one
/// gets the same error and exit status 2), then says that this binary cannot run the box.
#[cfg(not(feature = "dpdk"))]
fn run(
    file: &Path,
    _eal: Vec<String>,
    _stats_json: Option<PathBuf>,
    _stats_period: Option<u64>,
    _mode: Mode,
) -> ExitCode {
    if let Err(code) = load(file) {
        return code;
    }
    eprintln!(
        "cutthrough {VERSION} was built without DPDK (cargo feature `dpdk`, on by default): \
         it cannot run the box; check-config, hash-password, stats, flows and auth work. \
         Build it with the default features on a machine with libdpdk (scripts/setup.sh)."
    );
    ExitCode::FAILURE
}
