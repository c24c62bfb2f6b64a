//! The running box's command line, as the end-to-end tests ask it: `stats`, `auth list`,
//! `auth clear` (the default `--file-prefix`, as the harness starts the box).

use std::time::Duration;

use super::*;

/// `cutthrough ARGS...` against the running box.
pub fn cli(args: &[&str]) -> Output {
    run(BIN, args, Duration::from_secs(20))
}

/// `cutthrough ARGS...`, which must succeed and print JSON.
#[track_caller]
pub fn cli_json(args: &[&str]) -> serde_json::Value {
    let out = cli(args);
    assert!(out.success(), "{}", out.describe());
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()))
}

/// `cutthrough stats --json`.
pub fn stats() -> serde_json::Value {
    cli_json(&["stats", "--json"])
}

/// `connections.NAME` of `cutthrough stats --json`.
pub fn connections(name: &str) -> u64 {
    counter(&stats(), &["connections", name])
}

/// Waits (≤ 10 s) until `connections.spliced` reaches `n`.
#[track_caller]
pub fn expect_spliced(n: u64, what: &str) {
    let mut now = 0;
    let ok = poll(Duration::from_secs(10), Duration::from_millis(100), || {
        now = connections("spliced");
        now >= n
    });
    assert!(ok, "{what}: connections.spliced is {now}, expected {n}");
}

/// `cutthrough auth list --json`: the logins.
#[track_caller]
pub fn logins() -> Vec<serde_json::Value> {
    let v = cli_json(&["auth", "list", "--json"]);
    v["logins"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("`auth list --json` has no `logins` array: {v:#}"))
}

/// `cutthrough auth clear ARGS...`, which must succeed saying it ended `n` logins, after
/// which `auth list` lists none (in JSON and as text).
#[track_caller]
pub fn auth_clear(args: &[&str], n: usize) {
    let mut full = vec!["auth", "clear"];
    full.extend_from_slice(args);
    let out = cli(&full);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        out.stdout.trim(),
        format!("{n} login(s) ended"),
        "{}",
        out.describe()
    );
    let left = logins();
    assert!(
        left.is_empty(),
        "logins left after `auth clear {args:?}`: {left:?}"
    );
    let text = cli(&["auth", "list"]);
    assert!(
        text.success() && text.stdout.contains("0 login(s)"),
        "`auth list` after `auth clear {args:?}`: {}",
        text.describe()
    );
}
