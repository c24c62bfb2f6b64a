//! The box's command line (`stats`, `auth list`, `auth clear`), its accounting lines, the
//! helper's records, and the encodings the tests check (Basic credentials, FNV-1a).

use super::*;

pub(crate) use net::{auth_clear, cli, expect_spliced, logins, stats};

/// An accounting line, as the box logs it.
pub(crate) fn account(
    outcome: &str,
    user: &str,
    server: &str,
    rule: &str,
    method: &str,
    backend: &str,
) -> String {
    format!(
        "login {outcome}: user \"{user}\" client {CLIENT_ADDR} server {server} rule {rule} \
         method {method} backend {backend}"
    )
}

/// The JSON lines of a helper's output that are session records (not marks).
pub(crate) fn records(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("mark").is_none())
        .collect()
}

/// `Basic <base64>` → the decoded text, if it is that.
pub(crate) fn basic_decode(value: &str) -> Option<String> {
    let token = value.strip_prefix("Basic ")?.trim();
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in token.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `user:password` → `Basic <base64>`.
pub(crate) fn basic(credentials: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = credentials.as_bytes();
    let mut s = String::from("Basic ");
    for chunk in b.chunks(3) {
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Checks one login of `auth list --json`.
#[track_caller]
pub(crate) fn check_login(
    l: &serde_json::Value,
    user: &str,
    method: &str,
    rule: &str,
    scope: &str,
    backend: &str,
) {
    let got = (
        l["user"].as_str(),
        l["client"].as_str(),
        l["method"].as_str(),
        l["rule"].as_str(),
        l["scope"].as_str(),
        l["backend"].as_str(),
    );
    assert_eq!(
        got,
        (
            Some(user),
            Some(CLIENT_ADDR),
            Some(method),
            Some(rule),
            Some(scope),
            Some(backend)
        ),
        "auth list --json: {l}"
    );
    let (since, idle) = (l["since_ms"].as_u64(), l["idle_ms"].as_u64());
    assert!(
        matches!((since, idle), (Some(s), Some(i)) if i <= s && s < 600_000)
            && l["connections"].is_u64(),
        "auth list --json: since_ms, idle_ms, connections in {l}"
    );
}

/// FNV-1a, 32 bits (what cdp.py's fetch computes in the page).
pub(crate) fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
