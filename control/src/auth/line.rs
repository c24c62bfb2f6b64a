//! `auth: line`: the box prompts on the client leg, like a terminal server or the PIX/ASA
//! telnet authentication:
//!
//! ```text
//! box:    Username:            client: alice⏎
//! box:    Password:            client: ...⏎
//! box:    Authenticated as alice.        (then: connect to the server, splice)
//!   or    Login incorrect.  Username: ...   (three failures: Too many failures. and close)
//! ```
//!
//! A line ends at CR, LF or CRLF (and telnet's CR NUL); lines longer than [`MAX_LINE`] bytes
//! count as a failure. Telnet IAC sequences (option negotiation, subnegotiation) are skipped,
//! BS and DEL erase the previous byte. Everything after the password line is application data
//! for the server, returned untouched in [`LineStep::leftover`].

use common::wire::Ipv4Addr;

use super::{check_credentials, wipe, Credentials, RateLimiter, Verdict};
use common::config::User;

/// Longest user name or password line accepted, in bytes, terminator excluded.
pub const MAX_LINE: usize = 256;
/// Failures on one connection before it is closed.
pub const MAX_FAILURES: u32 = 3;

pub const PROMPT_USER: &[u8] = b"Username: ";
pub const PROMPT_PASSWORD: &[u8] = b"Password: ";
pub const LOGIN_INCORRECT: &[u8] = b"Login incorrect.\r\n";
/// Follows [`LOGIN_INCORRECT`] after the last allowed failure.
pub const TOO_MANY_FAILURES: &[u8] = b"Too many failures.\r\n";
/// The answer to an attempt from a client address the [`RateLimiter`] has limited.
pub const RATE_LIMITED: &[u8] = b"Too many attempts, try later.\r\n";
/// The answer to an attempt that could not be verified (the verifiers were saturated): it
/// counts toward the connection's failures, not toward the client address's.
pub const NOT_CHECKED: &[u8] = b"Login not checked, the box is busy.\r\n";
/// The answer when no directory server answered.
pub const UNAVAILABLE: &[u8] = b"Authentication unavailable, try again later.\r\n";

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// How the exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// Authenticated: connect to the server, send it `leftover`, splice.
    Success { user: String },
    /// Send `output`, then close the connection; the server is never contacted.
    Close,
}

/// What one call to [`LineAuth::feed`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStep {
    /// Bytes to send to the client (prompts, answers), in order.
    pub output: Vec<u8>,
    /// Set once, by the call that ends the exchange.
    pub outcome: Option<LineOutcome>,
    /// On success: the bytes the client sent after the password line, raw (application data
    /// for the server).
    pub leftover: Vec<u8>,
    /// From [`LineAuth::feed_deferred`] only: the attempt to verify; the step's `output` is
    /// everything before it, and what follows comes from [`LineAuth::resume`].
    pub verify: Option<Credentials>,
}

impl LineStep {
    /// `next` happened after this step.
    pub fn append(&mut self, next: LineStep) {
        self.output.extend_from_slice(&next.output);
        self.outcome = self.outcome.take().or(next.outcome);
        self.leftover.extend_from_slice(&next.leftover);
        self.verify = next.verify;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    User,
    Password,
    /// An attempt was handed out by `feed_deferred`: waiting for `resume`.
    Verifying,
    Succeeded,
    Closed,
}

/// Where the telnet command parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: one option byte follows.
    Option,
    /// Inside IAC SB ... IAC SE.
    Sub,
    /// After IAC inside a subnegotiation.
    SubIac,
}

/// The `line` authenticator of one connection.
#[derive(Debug)]
pub struct LineAuth {
    client: Ipv4Addr,
    phase: Phase,
    /// The line being typed.
    line: Vec<u8>,
    /// The entered user name, while the password is asked.
    user: Vec<u8>,
    /// The rest of an overlong line is being skipped (its failure already reported).
    discarding: bool,
    /// The last line ended with CR: an LF or NUL right after it belongs to that terminator.
    after_cr: bool,
    telnet: Telnet,
    failures: u32,
    started: bool,
    /// While verifying: the input after the password line, not yet read.
    pending: Vec<u8>,
}

impl LineAuth {
    pub fn new(client: Ipv4Addr) -> Self {
        LineAuth {
            client,
            phase: Phase::User,
            line: Vec::with_capacity(32),
            user: Vec::new(),
            discarding: false,
            after_cr: false,
            telnet: Telnet::Data,
            failures: 0,
            started: false,
            pending: Vec::new(),
        }
    }

    /// The first prompt, to send once the client leg is established.
    pub fn start(&mut self) -> Vec<u8> {
        self.started = true;
        PROMPT_USER.to_vec()
    }

    /// Whether [`start`](Self::start) was called.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Failed attempts so far on this connection.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Takes the bytes the client sent. Each complete password line costs one argon2
    /// verification (see [`check_credentials`]).
    ///
    /// After `Success`, further calls return their input in `leftover` (minus the LF or NUL
    /// completing a CR that ended the password line at the end of the previous segment), so
    /// the caller may keep feeding client data until the server leg is up. After `Close`,
    /// further calls discard their input and return `Close` again.
    pub fn feed(
        &mut self,
        input: &[u8],
        users: &[User],
        limiter: &mut RateLimiter,
        now_ms: u64,
    ) -> LineStep {
        self.feed_with(
            input,
            |name, password| check_credentials(users, name, password),
            limiter,
            now_ms,
        )
    }

    /// [`feed`](Self::feed) with another credential check: `check(name, password)` returns the
    /// authenticated user name. Called once per attempt, never while the client is limited.
    pub fn feed_with(
        &mut self,
        input: &[u8],
        mut check: impl FnMut(&[u8], &[u8]) -> Option<String>,
        limiter: &mut RateLimiter,
        now_ms: u64,
    ) -> LineStep {
        let mut step = self.feed_deferred(input, limiter, now_ms);
        while let Some(c) = step.verify.take() {
            let verdict = Verdict::from(check(&c.name, &c.password));
            drop(c);
            step.append(self.resume(verdict, limiter, now_ms));
        }
        step
    }

    /// [`feed`](Self::feed) without the check: a complete password line ends the call with
    /// the attempt in [`LineStep::verify`], and the authenticator waits for
    /// [`resume`](Self::resume). Input fed while it waits is kept, unread, for after the
    /// verdict: the caller bounds it (the proxy stops reading the client meanwhile).
    pub fn feed_deferred(
        &mut self,
        input: &[u8],
        limiter: &mut RateLimiter,
        now_ms: u64,
    ) -> LineStep {
        let mut step = LineStep::default();
        match self.phase {
            Phase::Succeeded => step.leftover = self.rest(input).to_vec(),
            Phase::Closed => step.outcome = Some(LineOutcome::Close),
            Phase::Verifying => self.pending.extend_from_slice(input),
            Phase::User | Phase::Password => self.scan(input, &mut step, limiter, now_ms),
        }
        step
    }

    /// The verdict on the attempt [`feed_deferred`](Self::feed_deferred) handed out: answers
    /// it as [`feed`](Self::feed) would have, then goes on with the input that followed the
    /// password line (which may hold the next attempt). Ignored unless an attempt is pending.
    pub fn resume(&mut self, verdict: Verdict, limiter: &mut RateLimiter, now_ms: u64) -> LineStep {
        let mut step = LineStep::default();
        if self.phase != Phase::Verifying {
            return step;
        }
        match verdict {
            Verdict::Accepted(user) => {
                step.output.extend_from_slice(b"Authenticated as ");
                step.output.extend_from_slice(user.as_bytes());
                step.output.extend_from_slice(b".\r\n");
                step.outcome = Some(LineOutcome::Success { user });
                self.phase = Phase::Succeeded;
            }
            Verdict::Refused => {
                limiter.record_failure(self.client, now_ms);
                self.fail(&mut step, LOGIN_INCORRECT);
            }
            Verdict::Unavailable => self.fail(&mut step, NOT_CHECKED),
            Verdict::NoDirectory => {
                // Asking again would only make the user wait for the same silence.
                step.output.extend_from_slice(UNAVAILABLE);
                self.close(&mut step);
            }
        }
        let mut pending = std::mem::take(&mut self.pending);
        match self.phase {
            Phase::Succeeded => step.leftover = self.rest(&pending).to_vec(),
            Phase::User | Phase::Password => self.scan(&pending, &mut step, limiter, now_ms),
            Phase::Closed | Phase::Verifying => {}
        }
        wipe(&mut pending);
        step
    }

    /// Runs the line editor over `input` until it is used up or an attempt is handed out
    /// (the rest is kept in `pending`) or the exchange ends.
    fn scan(&mut self, input: &[u8], step: &mut LineStep, limiter: &RateLimiter, now_ms: u64) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            i += 1;
            if std::mem::take(&mut self.after_cr) && (b == b'\n' || b == 0) {
                continue;
            }
            let data = match self.telnet {
                Telnet::Data if b == IAC => {
                    self.telnet = Telnet::Iac;
                    continue;
                }
                Telnet::Data => b,
                Telnet::Iac => {
                    self.telnet = match b {
                        IAC => Telnet::Data,
                        WILL..=DONT => Telnet::Option,
                        SB => Telnet::Sub,
                        _ => Telnet::Data,
                    };
                    if b != IAC {
                        continue;
                    }
                    IAC // IAC IAC: a literal 0xFF
                }
                Telnet::Option => {
                    self.telnet = Telnet::Data;
                    continue;
                }
                Telnet::Sub => {
                    if b == IAC {
                        self.telnet = Telnet::SubIac;
                    }
                    continue;
                }
                Telnet::SubIac => {
                    self.telnet = if b == SE { Telnet::Data } else { Telnet::Sub };
                    continue;
                }
            };
            match data {
                b'\r' | b'\n' => {
                    self.after_cr = data == b'\r';
                    self.end_line(step, limiter, now_ms);
                }
                0x08 | 0x7f => {
                    if !self.discarding {
                        self.line.pop();
                    }
                }
                _ if self.discarding => {}
                _ if self.line.len() >= MAX_LINE => {
                    wipe(&mut self.line);
                    self.discarding = true;
                    self.fail(step, LOGIN_INCORRECT);
                }
                _ => self.line.push(data),
            }
            match self.phase {
                Phase::Verifying => {
                    self.pending.extend_from_slice(&input[i..]);
                    return;
                }
                Phase::Closed => return,
                Phase::User | Phase::Password | Phase::Succeeded => {}
            }
        }
    }

    /// Client data after the password line: drops the LF or NUL completing a final CR.
    fn rest<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        match input.first() {
            Some(b'\n' | 0) if std::mem::take(&mut self.after_cr) => &input[1..],
            Some(_) => {
                self.after_cr = false;
                input
            }
            None => input,
        }
    }

    fn end_line(&mut self, step: &mut LineStep, limiter: &RateLimiter, now_ms: u64) {
        if std::mem::take(&mut self.discarding) {
            return;
        }
        match self.phase {
            Phase::User if self.line.is_empty() => step.output.extend_from_slice(PROMPT_USER),
            Phase::User => {
                if self.refuse_if_limited(step, limiter, now_ms) {
                    return;
                }
                self.user = std::mem::take(&mut self.line);
                self.phase = Phase::Password;
                step.output.extend_from_slice(PROMPT_PASSWORD);
            }
            Phase::Password => {
                if self.refuse_if_limited(step, limiter, now_ms) {
                    return;
                }
                let name = std::mem::take(&mut self.user);
                let password = std::mem::take(&mut self.line);
                step.verify = Some(Credentials::new(name, password));
                self.phase = Phase::Verifying;
            }
            Phase::Verifying | Phase::Succeeded | Phase::Closed => {}
        }
    }

    /// A limited client is told so and closed, before it types (or we check) a password.
    fn refuse_if_limited(
        &mut self,
        step: &mut LineStep,
        limiter: &RateLimiter,
        now_ms: u64,
    ) -> bool {
        if !limiter.is_limited(self.client, now_ms) {
            return false;
        }
        wipe(&mut self.line);
        step.output.extend_from_slice(RATE_LIMITED);
        self.close(step);
        true
    }

    /// A failed attempt, answered with `message`.
    fn fail(&mut self, step: &mut LineStep, message: &[u8]) {
        self.failures += 1;
        wipe(&mut self.user);
        step.output.extend_from_slice(message);
        if self.failures >= MAX_FAILURES {
            step.output.extend_from_slice(TOO_MANY_FAILURES);
            self.close(step);
        } else {
            self.phase = Phase::User;
            step.output.extend_from_slice(PROMPT_USER);
        }
    }

    fn close(&mut self, step: &mut LineStep) {
        self.phase = Phase::Closed;
        step.outcome = Some(LineOutcome::Close);
    }
}

impl Drop for LineAuth {
    fn drop(&mut self) {
        wipe(&mut self.line);
        wipe(&mut self.user);
        wipe(&mut self.pending);
    }
}

#[cfg(test)]
mod tests;
