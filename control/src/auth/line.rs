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
mod tests {
    use super::super::testutil::*;
    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    fn success(user: &str) -> Option<LineOutcome> {
        Some(LineOutcome::Success { user: user.into() })
    }

    /// Feeds with the counting check.
    fn feed(a: &mut LineAuth, c: &Counting, l: &mut RateLimiter, input: &[u8]) -> LineStep {
        a.feed_with(input, |n, p| c.check(n, p), l, 1000)
    }

    fn login(password: &[u8], eol: &[u8]) -> Vec<u8> {
        [b"alice", eol, password, eol].concat()
    }

    #[test]
    fn prompts_are_byte_exact() {
        let mut a = LineAuth::new(CLIENT);
        assert_eq!(a.start(), b"Username: ");
        let c = Counting::new();
        let mut l = RateLimiter::default();
        let s = feed(&mut a, &c, &mut l, b"alice\r\n");
        assert_eq!(s.output, b"Password: ");
        assert_eq!(s.outcome, None);
        assert_eq!(c.calls.get(), 0);
    }

    #[test]
    fn login_with_crlf_lf_cr_and_cr_nul() {
        for eol in [&b"\r\n"[..], b"\n", b"\r", b"\r\0"] {
            let mut a = LineAuth::new(CLIENT);
            let c = Counting::new();
            let mut l = RateLimiter::default();
            let s = feed(&mut a, &c, &mut l, &login(ALICE_PASSWORD, eol));
            assert_eq!(
                s.output, b"Password: Authenticated as alice.\r\n",
                "{eol:?}"
            );
            assert_eq!(s.outcome, success("alice"));
            assert!(s.leftover.is_empty());
            assert_eq!(c.calls.get(), 1);
        }
    }

    #[test]
    fn real_verification_through_feed() {
        // The one test that pays for argon2 through `feed` (success and unknown user).
        let users = users();
        let mut l = RateLimiter::default();
        let mut a = LineAuth::new(CLIENT);
        let s = a.feed(&login(ALICE_PASSWORD, b"\r\n"), users, &mut l, 0);
        assert_eq!(s.outcome, success("alice"));
        let mut a = LineAuth::new(CLIENT);
        let s = a.feed(b"mallory\r\n", users, &mut l, 0);
        assert_eq!(s.output, b"Password: ");
        let s = a.feed(&[ALICE_PASSWORD, b"\r\n"].concat(), users, &mut l, 0);
        assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
        assert_eq!(s.outcome, None);
    }

    #[test]
    fn one_byte_at_a_time() {
        for eol in [&b"\r\n"[..], b"\n"] {
            let mut a = LineAuth::new(CLIENT);
            let c = Counting::new();
            let mut l = RateLimiter::default();
            let mut out = Vec::new();
            let mut outcome = None;
            let input = [login(ALICE_PASSWORD, eol), b"GET /".to_vec()].concat();
            let mut leftover = Vec::new();
            for &b in &input {
                let s = feed(&mut a, &c, &mut l, &[b]);
                out.extend(s.output);
                leftover.extend(s.leftover);
                if s.outcome.is_some() {
                    assert!(outcome.is_none(), "outcome reported once");
                    outcome = s.outcome;
                }
            }
            assert_eq!(out, b"Password: Authenticated as alice.\r\n");
            assert_eq!(outcome, success("alice"));
            // Split CRLF: the LF arrives after the success and is not data.
            assert_eq!(leftover, b"GET /");
            assert_eq!(c.calls.get(), 1);
        }
    }

    #[test]
    fn leftover_after_the_password_line_is_returned_raw() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        let mut input = login(ALICE_PASSWORD, b"\r\n");
        input.extend_from_slice(b"\nHELO x\r\n\xff\xfb\x01\x08");
        let s = feed(&mut a, &c, &mut l, &input);
        assert_eq!(s.outcome, success("alice"));
        // Only CRLF is the terminator: the second LF is data.
        assert_eq!(s.leftover, b"\nHELO x\r\n\xff\xfb\x01\x08");
        // Later segments pass through untouched.
        let s = feed(&mut a, &c, &mut l, b"\nmore");
        assert_eq!(
            s,
            LineStep {
                leftover: b"\nmore".to_vec(),
                ..LineStep::default()
            }
        );
    }

    #[test]
    fn wrong_password_then_right() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        let s = feed(&mut a, &c, &mut l, b"alice\r\nnope\r\n");
        assert_eq!(s.output, b"Password: Login incorrect.\r\nUsername: ");
        assert_eq!(s.outcome, None);
        assert_eq!(a.failures(), 1);
        let s = feed(&mut a, &c, &mut l, &login(ALICE_PASSWORD, b"\r\n"));
        assert_eq!(s.output, b"Password: Authenticated as alice.\r\n");
        assert_eq!(s.outcome, success("alice"));
        assert_eq!(c.calls.get(), 2);
        assert!(!l.is_limited(CLIENT, 1000));
    }

    #[test]
    fn three_failures_close() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        let s = feed(&mut a, &c, &mut l, b"alice\nx\nbob\ny\n");
        assert_eq!(
            s.output,
            b"Password: Login incorrect.\r\nUsername: Password: Login incorrect.\r\nUsername: "
        );
        // The third attempt, with the right password in the same segment after it: never read.
        let s = feed(&mut a, &c, &mut l, b"carol\nz\nalice\n");
        assert_eq!(
            s.output,
            b"Password: Login incorrect.\r\nToo many failures.\r\n"
        );
        assert_eq!(s.outcome, Some(LineOutcome::Close));
        assert_eq!(c.calls.get(), 3);
        let s = feed(&mut a, &c, &mut l, b"alice\n");
        assert_eq!(s.outcome, Some(LineOutcome::Close));
        assert!(s.output.is_empty());
        assert_eq!(c.calls.get(), 3);
    }

    #[test]
    fn unknown_user_is_asked_for_a_password_and_checked() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        let s = feed(&mut a, &c, &mut l, b"mallory\r\n");
        assert_eq!(s.output, b"Password: ");
        let s = feed(&mut a, &c, &mut l, b"guess\r\n");
        assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
        assert_eq!(c.calls.get(), 1, "same work as a wrong password");
    }

    #[test]
    fn rate_limiter_refuses_without_verify() {
        let c = Counting::new();
        let mut l = RateLimiter::new(5, 60_000, 16);
        // Two connections: 3 + 2 failures.
        for fails in [3, 2] {
            let mut a = LineAuth::new(CLIENT);
            for _ in 0..fails {
                feed(&mut a, &c, &mut l, b"alice\r\nwrong\r\n");
            }
        }
        assert_eq!(c.calls.get(), 5);
        assert!(l.is_limited(CLIENT, 1000));
        // A third connection, even with the right password: refused, no verification.
        let mut a = LineAuth::new(CLIENT);
        let s = feed(&mut a, &c, &mut l, &login(ALICE_PASSWORD, b"\r\n"));
        assert_eq!(s.output, b"Too many attempts, try later.\r\n");
        assert_eq!(s.outcome, Some(LineOutcome::Close));
        assert!(s.leftover.is_empty());
        assert_eq!(c.calls.get(), 5);
        // Limited between user name and password: refused at the password line.
        let mut l = RateLimiter::new(1, 60_000, 16);
        let mut a = LineAuth::new(CLIENT);
        assert_eq!(feed(&mut a, &c, &mut l, b"alice\r\n").output, b"Password: ");
        l.record_failure(CLIENT, 1000);
        let s = feed(&mut a, &c, &mut l, &[ALICE_PASSWORD, b"\r\n"].concat());
        assert_eq!(s.output, b"Too many attempts, try later.\r\n");
        assert_eq!(s.outcome, Some(LineOutcome::Close));
        assert_eq!(c.calls.get(), 5);
        // Another address is not affected.
        let mut a = LineAuth::new(Ipv4Addr::new(198, 18, 0, 11));
        let s = feed(&mut a, &c, &mut l, &login(ALICE_PASSWORD, b"\n"));
        assert_eq!(s.outcome, success("alice"));
    }

    #[test]
    fn overlong_lines_fail() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        // Exactly MAX_LINE is fine.
        let mut input = vec![b'u'; MAX_LINE];
        input.extend_from_slice(b"\r\n");
        assert_eq!(feed(&mut a, &c, &mut l, &input).output, b"Password: ");
        // One more byte fails at once; the rest of the line is skipped.
        let s = feed(&mut a, &c, &mut l, &vec![b'p'; MAX_LINE + 1]);
        assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
        let s = feed(&mut a, &c, &mut l, &vec![b'p'; 10_000]);
        assert!(s.output.is_empty());
        assert!(a.line.is_empty());
        let s = feed(&mut a, &c, &mut l, b"ppp\r\nalice\r\n");
        assert_eq!(s.output, b"Password: ");
        assert_eq!(c.calls.get(), 0, "no verification for overlong lines");
        assert_eq!(a.failures(), 1);
        // Overlong lines count toward the three failures.
        let s = feed(&mut a, &c, &mut l, &vec![b'p'; 2 * MAX_LINE + 2]);
        assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
        let s = feed(&mut a, &c, &mut l, &[&b"\n"[..], &[b'u'; 300]].concat());
        assert_eq!(s.output, b"Login incorrect.\r\nToo many failures.\r\n");
        assert_eq!(s.outcome, Some(LineOutcome::Close));
    }

    #[test]
    fn telnet_commands_are_skipped() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        // A telnet client's opening negotiation, a subnegotiation (with IAC IAC and a CR
        // inside), an IAC in the middle of the name, NOP, and split sequences.
        let mut input = Vec::new();
        input.extend_from_slice(b"\xff\xfd\x03\xff\xfb\x18\xff\xfb\x1f");
        input.extend_from_slice(b"\xff\xfa\x1f\x00\x50\xff\xff\x0d\x18\xff\xf0");
        input.extend_from_slice(b"al\xff\xf1ice\r\n");
        input.extend_from_slice(&[ALICE_PASSWORD, b"\r\0"].concat());
        let mut out = Vec::new();
        let mut outcome = None;
        for chunk in input.chunks(2) {
            let s = feed(&mut a, &c, &mut l, chunk);
            out.extend(s.output);
            outcome = outcome.or(s.outcome);
        }
        assert_eq!(out, b"Password: Authenticated as alice.\r\n");
        assert_eq!(outcome, success("alice"));
    }

    #[test]
    fn telnet_iac_iac_is_a_literal_byte_and_garbage_never_panics() {
        let mut a = LineAuth::new(CLIENT);
        let seen = std::cell::RefCell::new(Vec::new());
        let mut l = RateLimiter::default();
        a.feed_with(
            b"a\xff\xffb\nx\n",
            |n, _| {
                seen.borrow_mut().push(n.to_vec());
                None
            },
            &mut l,
            0,
        );
        assert_eq!(seen.borrow()[0], b"a\xffb");
        // Arbitrary bytes: never panics, never grows the line past MAX_LINE.
        let mut state = 0x1234_5678u32;
        for _ in 0..50 {
            let mut a = LineAuth::new(CLIENT);
            for _ in 0..20 {
                let chunk: Vec<u8> = (0..64)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        state as u8
                    })
                    .collect();
                a.feed_with(&chunk, |_, _| None, &mut l, 0);
                assert!(a.line.len() <= MAX_LINE);
            }
        }
    }

    fn deferred(a: &mut LineAuth, l: &mut RateLimiter, input: &[u8]) -> LineStep {
        a.feed_deferred(input, l, 1000)
    }

    #[test]
    fn deferred_attempt_waits_for_its_verdict_and_keeps_what_follows() {
        let mut a = LineAuth::new(CLIENT);
        let mut l = RateLimiter::default();
        let s = deferred(
            &mut a,
            &mut l,
            &[&login(ALICE_PASSWORD, b"\r\n")[..], b"\nGET"].concat(),
        );
        assert_eq!(s.output, b"Password: ");
        assert_eq!(s.outcome, None);
        let c = s.verify.expect("an attempt to verify");
        assert_eq!(
            (&c.name[..], &c.password[..]),
            (&b"alice"[..], ALICE_PASSWORD)
        );
        // Input while waiting is kept, not read.
        assert_eq!(deferred(&mut a, &mut l, b" /\r\n"), LineStep::default());
        let s = a.resume(Verdict::Accepted("alice".into()), &mut l, 1000);
        assert_eq!(s.output, b"Authenticated as alice.\r\n");
        assert_eq!(s.outcome, success("alice"));
        // The LF completing the CRLF is not data; the second one is, and the rest, in order.
        assert_eq!(s.leftover, b"\nGET /\r\n");
        assert_eq!(s.verify, None);
        assert!(a.pending.is_empty());
        // Nothing pending any more: a stray verdict changes nothing.
        assert_eq!(
            a.resume(Verdict::Refused, &mut l, 1000),
            LineStep::default()
        );
        assert!(!l.is_limited(CLIENT, 1000));
    }

    #[test]
    fn refused_attempt_goes_on_with_the_next_one_already_typed() {
        let mut a = LineAuth::new(CLIENT);
        let mut l = RateLimiter::new(2, 60_000, 16);
        let s = deferred(&mut a, &mut l, b"alice\r\nx\r\nbob\r\ny");
        assert_eq!(s.verify.as_ref().map(|c| &c.password[..]), Some(&b"x"[..]));
        let s = a.resume(Verdict::Refused, &mut l, 2000);
        assert_eq!(s.output, b"Login incorrect.\r\nUsername: Password: ");
        assert_eq!(s.verify, None, "the second password line is not complete");
        assert_eq!(a.failures(), 1);
        let s = deferred(&mut a, &mut l, b"\r\n");
        let c = s.verify.expect("the second attempt");
        assert_eq!((&c.name[..], &c.password[..]), (&b"bob"[..], &b"y"[..]));
        let s = a.resume(Verdict::Refused, &mut l, 2001);
        assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
        // Both failures were recorded at their verdicts.
        assert_eq!(l.retry_after_ms(CLIENT, 2001), Some(60_000 - 1));
    }

    #[test]
    fn unchecked_attempts_fail_the_connection_not_the_address() {
        let mut a = LineAuth::new(CLIENT);
        let mut l = RateLimiter::new(1, 60_000, 16);
        let mut out = Vec::new();
        let mut outcome = None;
        for _ in 0..MAX_FAILURES {
            let s = deferred(&mut a, &mut l, &login(b"pw", b"\n"));
            out.extend(s.output);
            assert!(s.verify.is_some());
            let s = a.resume(Verdict::Unavailable, &mut l, 1000);
            out.extend(s.output);
            outcome = s.outcome;
        }
        assert_eq!(
            out,
            [
                &b"Password: "[..],
                NOT_CHECKED,
                b"Username: Password: ",
                NOT_CHECKED,
                b"Username: Password: ",
                NOT_CHECKED,
                TOO_MANY_FAILURES
            ]
            .concat()
        );
        assert_eq!(outcome, Some(LineOutcome::Close));
        assert!(!l.is_limited(CLIENT, 1000));
    }

    #[test]
    fn empty_user_name_reprompts_and_backspace_erases() {
        let mut a = LineAuth::new(CLIENT);
        let c = Counting::new();
        let mut l = RateLimiter::default();
        let s = feed(&mut a, &c, &mut l, b"\r\n\n");
        assert_eq!(s.output, b"Username: Username: ");
        let s = feed(&mut a, &c, &mut l, b"alicx\x7fe\r\n");
        assert_eq!(s.output, b"Password: ");
        let mut pw = ALICE_PASSWORD.to_vec();
        pw.extend_from_slice(b"x\x08\r\n");
        let s = feed(&mut a, &c, &mut l, &pw);
        assert_eq!(s.outcome, success("alice"));
        assert_eq!(a.failures(), 0);
    }
}
