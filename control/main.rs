//! `cutthrough`, the appliance binary: checks configurations, hashes passwords for them, and
//! runs the box.
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
    /// Run the box.
    Run {
        /// The YAML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Write the counters as JSON to this file when the box stops.
        #[arg(long, value_name = "FILE")]
        stats_json: Option<PathBuf>,
        /// `full`: the box. `io`: plain port-to-port forwarding with no processing, the
        /// baseline to compare with `dpdk-testpmd --forward-mode=io`.
        #[arg(long, value_enum, default_value_t = Mode::Full)]
        forward_mode: Mode,
        /// Extra EAL arguments, after `--` (e.g. `-- --no-huge -l 0-1`).
        #[arg(last = true, value_name = "EAL_ARGS")]
        eal: Vec<String>,
    },
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
            forward_mode,
            eal,
        } => run(&config, eal, stats_json, forward_mode),
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

fn run(file: &Path, eal: Vec<String>, stats_json: Option<PathBuf>, mode: Mode) -> ExitCode {
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
