//! One login attempt between an authenticator and whatever verifies it: the authenticators
//! hand out [`Credentials`] and take a [`Verdict`] back later, so the argon2 work can happen
//! elsewhere (the control plane's verifier threads) while the connection waits.

use std::fmt;

use super::wipe;

/// A user name and password to verify. Both buffers are overwritten when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub name: Vec<u8>,
    pub password: Vec<u8>,
}

impl Credentials {
    pub fn new(name: Vec<u8>, password: Vec<u8>) -> Self {
        Credentials { name, password }
    }
}

impl fmt::Debug for Credentials {
    /// The name only: a debug print must not leak the password into a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &String::from_utf8_lossy(&self.name))
            .finish_non_exhaustive()
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.name);
        wipe(&mut self.password);
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The password is the user's: the authenticated name.
    Accepted(String),
    /// A wrong password or an unknown user: a failure the rate limiter counts.
    Refused,
    /// Never checked (the verifiers were saturated): the attempt fails on its connection, but
    /// is not held against the client address, which did nothing wrong.
    Unavailable,
    /// No directory server answered (RADIUS down or unreachable): refused like `Unavailable`,
    /// with its own message and counter, so users and operators see where the fault is.
    NoDirectory,
}

impl Verdict {
    /// The outcome as the accounting line names it.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Accepted(_) => "accepted",
            Verdict::Refused => "refused",
            Verdict::Unavailable => "not checked (busy)",
            Verdict::NoDirectory => "not checked (directory unavailable)",
        }
    }
}

impl From<Option<String>> for Verdict {
    /// The answer of a credential check (`check_credentials` and its stand-ins).
    fn from(user: Option<String>) -> Self {
        user.map_or(Verdict::Refused, Verdict::Accepted)
    }
}
