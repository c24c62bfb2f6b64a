//! One connection's verdict, the table of a test's connections, the box's counters.

use super::*;

// ---------------------------------------------------------------------------------------------
// One connection and its verdict.

/// What one connection did.
#[derive(Debug, Clone)]
pub(crate) struct CaseResult {
    pub(crate) setting: String,
    pub(crate) side: &'static str,
    pub(crate) rule: Rule,
    pub(crate) sport: Option<u16>,
    /// Both directions byte-exact, checked at both ends.
    pub(crate) bytes_ok: bool,
    /// Why the transfer failed (client, server, or curl), if it did.
    pub(crate) transfer_error: Option<String>,
    /// The statistics' changes over the connection: `spliced`, `fallback`, `drain_timeout`.
    pub(crate) spliced: u64,
    pub(crate) fallback: u64,
    pub(crate) drain_timeout: u64,
    /// `connections.fallback_causes` that changed (if the box writes them).
    pub(crate) causes: String,
    /// The box's log lines about this connection's quad, shortened.
    pub(crate) box_log: String,
    pub(crate) log_spliced: bool,
    pub(crate) secs: f64,
    /// The case did not run (and why).
    pub(crate) not_run: Option<String>,
}

impl CaseResult {
    pub(crate) fn new(setting: &str, side: Side, rule: Rule) -> CaseResult {
        CaseResult {
            setting: setting.to_string(),
            side: side.name(),
            rule,
            sport: None,
            bytes_ok: false,
            transfer_error: None,
            spliced: 0,
            fallback: 0,
            drain_timeout: 0,
            causes: String::new(),
            box_log: String::new(),
            log_spliced: false,
            secs: 0.0,
            not_run: None,
        }
    }

    pub(crate) fn label(&self) -> String {
        format!(
            "{} on {} / {} {} (:{})",
            self.setting, self.side, self.rule.auth, self.rule.splice, self.rule.port
        )
    }

    /// Why this case fails; empty if it passes.
    pub(crate) fn problems(&self) -> Vec<String> {
        if let Some(why) = &self.not_run {
            return vec![format!("not run: {why}")];
        }
        let mut p = Vec::new();
        if !self.bytes_ok {
            p.push(format!(
                "transfer: {}",
                self.transfer_error.as_deref().unwrap_or("not byte-exact")
            ));
        }
        if self.fallback > 0 {
            let causes = if self.causes.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.causes)
            };
            p.push(format!("kept as a full proxy{causes}"));
        }
        if self.drain_timeout > 0 {
            p.push("drain timed out".into());
        }
        let unexplained = self.spliced == 0 && self.fallback == 0 && self.drain_timeout == 0;
        if unexplained || self.spliced > 1 {
            p.push(format!("stats count {} splices for it", self.spliced));
        }
        if !self.log_spliced && self.fallback == 0 {
            p.push("the box logged no splice for its quad".into());
        }
        if !self.box_log.is_empty() && !self.log_spliced {
            p.push(format!("box: {}", self.box_log));
        }
        p
    }

    pub(crate) fn passed(&self) -> bool {
        self.problems().is_empty()
    }
}

/// Prints the table of `results` and panics listing every failing case (after `extra`
/// failures of the test itself), or returns if all passed.
#[track_caller]
pub(crate) fn report(title: &str, results: &[CaseResult], extra: &[String], elapsed: Duration) {
    let mut t = String::new();
    let _ = writeln!(t, "\n=== {title}: {} connections ===", results.len());
    let _ = writeln!(
        t,
        "{:>3}  {:<15} {:<6} {:<10} {:<13} {:>5} {:>5}  {:<5} {:>3} {:>3} {:>3}  {:>5}  result",
        "#",
        "setting",
        "side",
        "auth",
        "splice",
        "port",
        "sport",
        "bytes",
        "spl",
        "fb",
        "dt",
        "secs"
    );
    for (i, r) in results.iter().enumerate() {
        let problems = r.problems();
        let verdict = if problems.is_empty() {
            "ok".to_string()
        } else {
            format!("FAIL: {}", short(&problems.join("; "), 150))
        };
        let _ = writeln!(
            t,
            "{:>3}  {:<15} {:<6} {:<10} {:<13} {:>5} {:>5}  {:<5} {:>3} {:>3} {:>3}  {:>5.1}  {}",
            i + 1,
            r.setting,
            r.side,
            r.rule.auth,
            r.rule.splice,
            r.rule.port,
            r.sport.map_or("-".to_string(), |p| p.to_string()),
            if r.not_run.is_some() {
                "-"
            } else if r.bytes_ok {
                "exact"
            } else {
                "BAD"
            },
            r.spliced,
            r.fallback,
            r.drain_timeout,
            r.secs,
            verdict
        );
    }
    let failed: Vec<&CaseResult> = results.iter().filter(|r| !r.passed()).collect();
    let _ = writeln!(
        t,
        "=== {title}: {} passed, {} failed, in {:.1} s (spl/fb/dt: the box's spliced, fallback \
         and drain_timeout counters' change over the connection) ===",
        results.len() - failed.len(),
        failed.len(),
        elapsed.as_secs_f64()
    );
    eprintln!("{t}");
    if failed.is_empty() && extra.is_empty() {
        return;
    }
    let mut msg = format!(
        "{title}: {} of {} connections failed",
        failed.len(),
        results.len()
    );
    for e in extra {
        let _ = write!(msg, "\n- {e}");
    }
    for r in failed {
        let _ = write!(
            msg,
            "\n- {}{}: {}",
            r.label(),
            r.sport
                .map_or(String::new(), |p| format!(" client port {p}")),
            r.problems().join("; ")
        );
    }
    panic!("{msg}");
}

/// `s` cut to `max` characters, with an ellipsis.
pub(crate) fn short(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The connection counters the verdicts use.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) spliced: u64,
    pub(crate) fallback: u64,
    pub(crate) drain_timeout: u64,
    pub(crate) causes: Vec<(String, u64)>,
}

impl Counters {
    pub(crate) fn of(v: &serde_json::Value) -> Counters {
        let causes = v["connections"]["fallback_causes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Counters {
            spliced: counter(v, &["connections", "spliced"]),
            fallback: counter(v, &["connections", "fallback"]),
            drain_timeout: counter(v, &["connections", "drain_timeout"]),
            causes,
        }
    }

    /// (spliced, fallback, drain_timeout, changed causes) since `before`.
    pub(crate) fn since(&self, before: &Counters) -> (u64, u64, u64, String) {
        let causes = self
            .causes
            .iter()
            .filter_map(|(k, n)| {
                let was = before
                    .causes
                    .iter()
                    .find(|(b, _)| b == k)
                    .map_or(0, |(_, v)| *v);
                (*n > was).then(|| format!("{k} +{}", n - was))
            })
            .collect::<Vec<_>>()
            .join(", ");
        (
            self.spliced.saturating_sub(before.spliced),
            self.fallback.saturating_sub(before.fallback),
            self.drain_timeout.saturating_sub(before.drain_timeout),
            causes,
        )
    }
}
