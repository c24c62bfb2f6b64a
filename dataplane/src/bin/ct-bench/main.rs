//! `ct-bench`: the fast-path benchmarks of `scripts/bench.sh` (DESIGN.md §7 item 4).
//!
//! ```text
//! ct-bench fastpath --flows N --size BYTES [--runs R] [--seconds S] [--warmup S]
//!                   [--mem auto|huge|no-huge]
//!                   [--kinds spliced,pass,lookup,io,testpmd-io,testpmd-5tswap,l3fwd-em]
//!                   [--results FILE] [--dir DIR]
//!     writes pcaps of the flows' TCP segments, then R times: the box's worker on one lcore
//!     with N spliced objects, with N pass objects, in lookup-only mode over N objects, in
//!     --forward-mode io, dpdk-testpmd io and 5tswap, and dpdk-l3fwd exact match with both
//!     directions of the N flows as rules, all on the same two net_pcap devices (infinite_rx)
//!     and the same forwarding core; prints the medians, min and max, and the ratios.
//! ct-bench box --kind spliced|pass|lookup|io --flows N --size BYTES --inside PCAP --outside PCAP
//!              [--seconds S] [--warmup S] [--mem huge|no-huge]
//!     one in-process run of the worker (what `fastpath` runs R times per kind).
//! ct-bench testpmd --mode io|5tswap --size BYTES --inside PCAP --outside PCAP ...
//!     one run of dpdk-testpmd on the same devices.
//! ct-bench pcap --flows N --size BYTES --kind spliced|pass --dir DIR
//!     only writes the captures.
//! ct-bench memory --flows N
//!     RSS before and after filling a flow table made for N connections with N objects.
//! ct-bench report --results FILE [--svg FILE]
//!     the markdown tables of docs/BENCHMARKS.md (stdout) and the plot, from RESULT lines.
//! ```
//!
//! Every measurement prints one `RESULT key=value ...` line; `report` reads them back.
//! Safe Rust only: DPDK is used through `dataplane::dpdk`.

mod fastpath;
mod l3fwd;
mod memory;
mod report;
mod testpmd;
mod traffic;

use std::collections::HashMap;
use std::process::ExitCode;

/// `--key value` options and the subcommand.
#[derive(Debug, Default)]
pub struct Args {
    pub cmd: String,
    opts: HashMap<String, String>,
}

impl Args {
    fn parse(argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args::default();
        let mut it = argv.peekable();
        a.cmd = it
            .next()
            .ok_or("a subcommand is required (see the source's doc)")?;
        while let Some(k) = it.next() {
            let Some(name) = k.strip_prefix("--") else {
                return Err(format!("unexpected argument {k:?}"));
            };
            let v = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
                _ => String::from("1"),
            };
            a.opts.insert(name.to_string(), v);
        }
        Ok(a)
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.opts.get(k).map(String::as_str)
    }

    pub fn req(&self, k: &str) -> Result<&str, String> {
        self.str(k).ok_or_else(|| format!("--{k} is required"))
    }

    pub fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.str(k) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|_| format!("--{k} {v:?}: not a number")),
        }
    }

    /// A flow count, allowing the suffixes k (1024) and M (1024²).
    pub fn count(&self, k: &str) -> Result<u32, String> {
        let v = self.req(k)?;
        let (digits, mul) = match v.strip_suffix(['k', 'K']) {
            Some(d) => (d, 1 << 10),
            None => match v.strip_suffix('M') {
                Some(d) => (d, 1 << 20),
                None => (v, 1),
            },
        };
        digits
            .parse::<u32>()
            .ok()
            .and_then(|d| d.checked_mul(mul))
            .ok_or_else(|| format!("--{k} {v:?}: not a count"))
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ct-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match args.cmd.as_str() {
        "fastpath" => fastpath::orchestrate(&args),
        "box" => fastpath::box_run(&args),
        "testpmd" => testpmd::testpmd_cmd(&args),
        "pcap" => fastpath::pcap_cmd(&args),
        "memory" => memory::run(&args),
        "report" => report::run(&args),
        other => Err(format!("unknown subcommand {other:?}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ct-bench {}: {e}", args.cmd);
            ExitCode::FAILURE
        }
    }
}
