//! The test's configurations: `config/testbed.yaml` edited as a test says, checked with
//! `cutthrough check-config`, and nginx's.

use super::*;

/// `config/testbed.yaml`.
pub(crate) fn testbed_yaml() -> String {
    std::fs::read_to_string(format!("{}/config/testbed.yaml", net::ROOT))
        .expect("read config/testbed.yaml")
}

/// Inserts `lines` (indented YAML) right after the anchor line `after`, which must occur
/// exactly once.
#[track_caller]
pub(crate) fn insert_after(text: &str, after: &str, lines: &str) -> String {
    assert_eq!(
        text.matches(after).count(),
        1,
        "config/testbed.yaml changed: {after:?} is not there exactly once"
    );
    text.replacen(after, &format!("{after}{lines}"), 1)
}

/// Adds `field` (e.g. `backend: radius`) to the rule named `rule`.
#[track_caller]
pub(crate) fn rule_field(text: &str, rule: &str, field: &str) -> String {
    insert_after(
        text,
        &format!("  - name: {rule}\n"),
        &format!("    {field}\n"),
    )
}

/// Adds rules (a YAML list, indented by two) before the final `default-deny`.
#[track_caller]
pub(crate) fn add_rules(text: &str, rules: &str) -> String {
    let anchor = "  - name: default-deny\n";
    assert_eq!(
        text.matches(anchor).count(),
        1,
        "config/testbed.yaml has no single `default-deny` rule"
    );
    text.replacen(anchor, &format!("{rules}{anchor}"), 1)
}

/// Adds keys (indented by two) to `auth:`.
#[track_caller]
pub(crate) fn add_auth(text: &str, keys: &str) -> String {
    insert_after(text, "\nauth:\n", keys)
}

/// Writes the configuration and checks it with `cutthrough check-config`.
#[track_caller]
pub(crate) fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the configuration");
    let out = run(
        net::BIN,
        &["check-config", path_str(path)],
        Duration::from_secs(10),
    );
    assert!(
        out.success() && out.stdout.trim() == "ok",
        "the test's configuration does not check: {}\n--- configuration ---\n{text}",
        out.describe()
    );
}

/// nginx's configuration: one process in the foreground, everything in the test's temp dir,
/// one JSON line per request with the credential headers as received.
pub(crate) fn nginx_conf(dir: &Path, ports: &[u16]) -> String {
    let d = path_str(dir);
    let listen: String = ports
        .iter()
        .map(|p| format!("        listen {SERVER_ADDR}:{p};\n"))
        .collect();
    format!(
        r#"# Written by tests/e2e_login.rs.
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log info;
events {{ worker_connections 512; }}
http {{
    types {{ text/html html; image/png png; application/octet-stream bin; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/nginx-body;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    log_format requests escape=json '{{"time":$msec,"port":$server_port,"client":"$remote_addr:$remote_port","connection":$connection,"connection_requests":$connection_requests,"request":"$request","status":$status,"bytes":$body_bytes_sent,"authorization":"$http_authorization","proxy_authorization":"$http_proxy_authorization","user_agent":"$http_user_agent"}}';
    access_log {d}/access.log requests;
    sendfile off;
    keepalive_timeout 30s;
    server {{
{listen}        root {d}/www;
    }}
}}
"#
    )
}
