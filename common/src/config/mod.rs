//! The box's configuration: a YAML file (see `config/testbed.yaml` for a commented example),
//! read with serde, validated into the typed [`Config`].
//!
//! Errors name the file and the line, like a compiler's:
//! - syntax (and type) errors, found by serde_yaml: `FILE:LINE:COLUMN: MESSAGE`
//! - semantic errors, found by validation: `FILE:LINE: PATH: MESSAGE`, where `PATH` is the
//!   offending value (`policy[3].ports[1]`, `interfaces[2].vlans[0].id`); `FILE: PATH: MESSAGE`
//!   when the line of the value (or of its nearest written ancestor) cannot be found.
//!
//! Modules: `schema` is what serde reads, `validate` checks it and builds the `types`;
//! `values` and `duration` parse the values written as strings, `locate` finds the line of a
//! path in the text.

mod duration;
mod locate;
mod ports;
mod schema;
mod types;
mod validate;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use duration::MAX as MAX_DURATION;
pub use locate::locate;
pub use types::{
    first_match, hash_password, links_of, Action, Auth, AuthMethod, Backend, Capture, Config,
    Device, DropCapture, FlowTable, HttpLogin, Iface, Interface, Link, LoginScope, Protocol, Proxy,
    Radius, RadiusServer, Route, Rule, RuleLogin, ServerOptionsCache, SplicePoint, SynCookies,
    Timeouts, Traffic, User, VirtualHttp, Vlan, Workers, Zone, MAX_LINKS,
};
pub use values::{parse_ipv4, parse_mac, parse_size, Cidr, ParseError, PortRange};

/// Why a configuration file was not accepted. `Display` is the one line printed to the
/// operator (formats in the module docs).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or YAML that does not fit the schema (unknown key, wrong type, misspelt
    /// keyword). `line`/`column` are 1-based, absent when serde_yaml gave no position.
    #[error(fmt = fmt_syntax)]
    Syntax {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// Well-formed, but a value is wrong or contradicts another.
    #[error(fmt = fmt_semantic)]
    Semantic {
        file: String,
        /// 1-based; of the value at `path`, or of its nearest ancestor written in the file.
        line: Option<usize>,
        path: String,
        message: String,
    },
}

/// `FILE:LINE:COLUMN: MESSAGE`, or `FILE: MESSAGE` without a position.
fn fmt_syntax(
    file: &str,
    line: &Option<usize>,
    column: &Option<usize>,
    message: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match (line, column) {
        (Some(l), Some(c)) => write!(f, "{file}:{l}:{c}: {message}"),
        (Some(l), None) => write!(f, "{file}:{l}: {message}"),
        _ => write!(f, "{file}: {message}"),
    }
}

/// `FILE:LINE: PATH: MESSAGE`, or `FILE: PATH: MESSAGE` without a line.
fn fmt_semantic(
    file: &str,
    line: &Option<usize>,
    path: &str,
    message: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match line {
        Some(l) => write!(f, "{file}:{l}: {path}: {message}"),
        None => write!(f, "{file}: {path}: {message}"),
    }
}

/// Reads and validates the file at `path`; errors name it as written.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(source) => Err(ConfigError::Io { file, source }),
    }
}

/// Parses and validates `text`; `file` is the name errors give.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let raw: schema::RawConfig = serde_yaml::from_str(text).map_err(|e| syntax(e, file))?;
    validate::validate(raw).map_err(|e| ConfigError::Semantic {
        file: file.to_string(),
        line: line_of(text, &e.path),
        path: e.path,
        message: e.message,
    })
}

/// The line of `path`, or else of its nearest ancestor: a value left out (a missing `auth`)
/// is best shown at the rule it is missing from.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let mut p = path;
    loop {
        if p.is_empty() {
            return None;
        }
        if let Some(l) = locate(text, p) {
            return Some(l);
        }
        p = match p.rfind(['.', '[']) {
            Some(i) => &p[..i],
            None => "",
        };
    }
}

fn syntax(e: serde_yaml::Error, file: &str) -> ConfigError {
    let loc = e.location();
    let mut message = e.to_string();
    // serde_yaml appends the position to its message; it goes in front of ours instead.
    if let Some(l) = &loc {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(i) = message.find(&suffix) {
            message.replace_range(i..i + suffix.len(), "");
        }
    }
    ConfigError::Syntax {
        file: file.to_string(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        message,
    }
}
