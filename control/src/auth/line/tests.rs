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

/// A line authenticator with the counting check and a default rate limiter: what most tests
/// feed.
struct Rig {
    a: LineAuth,
    c: Counting,
    l: RateLimiter,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            a: LineAuth::new(CLIENT),
            c: Counting::new(),
            l: RateLimiter::default(),
        }
    }

    fn feed(&mut self, input: &[u8]) -> LineStep {
        feed(&mut self.a, &self.c, &mut self.l, input)
    }
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
        let mut t = Rig::new();
        let s = t.feed(&login(ALICE_PASSWORD, eol));
        assert_eq!(
            s.output, b"Password: Authenticated as alice.\r\n",
            "{eol:?}"
        );
        assert_eq!(s.outcome, success("alice"));
        assert!(s.leftover.is_empty());
        assert_eq!(t.c.calls.get(), 1);
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
        let mut t = Rig::new();
        let mut out = Vec::new();
        let mut outcome = None;
        let input = [login(ALICE_PASSWORD, eol), b"GET /".to_vec()].concat();
        let mut leftover = Vec::new();
        for &b in &input {
            let s = t.feed(&[b]);
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
        assert_eq!(t.c.calls.get(), 1);
    }
}

#[test]
fn leftover_after_the_password_line_is_returned_raw() {
    let mut t = Rig::new();
    let mut input = login(ALICE_PASSWORD, b"\r\n");
    input.extend_from_slice(b"\nHELO x\r\n\xff\xfb\x01\x08");
    let s = t.feed(&input);
    assert_eq!(s.outcome, success("alice"));
    // Only CRLF is the terminator: the second LF is data.
    assert_eq!(s.leftover, b"\nHELO x\r\n\xff\xfb\x01\x08");
    // Later segments pass through untouched.
    let s = t.feed(b"\nmore");
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
    let mut t = Rig::new();
    let s = t.feed(b"alice\r\nnope\r\n");
    assert_eq!(s.output, b"Password: Login incorrect.\r\nUsername: ");
    assert_eq!(s.outcome, None);
    assert_eq!(t.a.failures(), 1);
    let s = t.feed(&login(ALICE_PASSWORD, b"\r\n"));
    assert_eq!(s.output, b"Password: Authenticated as alice.\r\n");
    assert_eq!(s.outcome, success("alice"));
    assert_eq!(t.c.calls.get(), 2);
    assert!(!t.l.is_limited(CLIENT, 1000));
}

#[test]
fn three_failures_close() {
    let mut t = Rig::new();
    let s = t.feed(b"alice\nx\nbob\ny\n");
    assert_eq!(
        s.output,
        b"Password: Login incorrect.\r\nUsername: Password: Login incorrect.\r\nUsername: "
    );
    // The third attempt, with the right password in the same segment after it: never read.
    let s = t.feed(b"carol\nz\nalice\n");
    assert_eq!(
        s.output,
        b"Password: Login incorrect.\r\nToo many failures.\r\n"
    );
    assert_eq!(s.outcome, Some(LineOutcome::Close));
    assert_eq!(t.c.calls.get(), 3);
    let s = t.feed(b"alice\n");
    assert_eq!(s.outcome, Some(LineOutcome::Close));
    assert!(s.output.is_empty());
    assert_eq!(t.c.calls.get(), 3);
}

#[test]
fn unknown_user_is_asked_for_a_password_and_checked() {
    let mut t = Rig::new();
    let s = t.feed(b"mallory\r\n");
    assert_eq!(s.output, b"Password: ");
    let s = t.feed(b"guess\r\n");
    assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
    assert_eq!(t.c.calls.get(), 1, "same work as a wrong password");
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
    let mut t = Rig::new();
    // Exactly MAX_LINE is fine.
    let mut input = vec![b'u'; MAX_LINE];
    input.extend_from_slice(b"\r\n");
    assert_eq!(t.feed(&input).output, b"Password: ");
    // One more byte fails at once; the rest of the line is skipped.
    let s = t.feed(&vec![b'p'; MAX_LINE + 1]);
    assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
    let s = t.feed(&vec![b'p'; 10_000]);
    assert!(s.output.is_empty());
    assert!(t.a.line.is_empty());
    let s = t.feed(b"ppp\r\nalice\r\n");
    assert_eq!(s.output, b"Password: ");
    assert_eq!(t.c.calls.get(), 0, "no verification for overlong lines");
    assert_eq!(t.a.failures(), 1);
    // Overlong lines count toward the three failures.
    let s = t.feed(&vec![b'p'; 2 * MAX_LINE + 2]);
    assert_eq!(s.output, b"Login incorrect.\r\nUsername: ");
    let s = t.feed(&[&b"\n"[..], &[b'u'; 300]].concat());
    assert_eq!(s.output, b"Login incorrect.\r\nToo many failures.\r\n");
    assert_eq!(s.outcome, Some(LineOutcome::Close));
}

#[test]
fn telnet_commands_are_skipped() {
    let mut t = Rig::new();
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
        let s = t.feed(chunk);
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
    let mut t = Rig::new();
    let s = t.feed(b"\r\n\n");
    assert_eq!(s.output, b"Username: Username: ");
    let s = t.feed(b"alicx\x7fe\r\n");
    assert_eq!(s.output, b"Password: ");
    let mut pw = ALICE_PASSWORD.to_vec();
    pw.extend_from_slice(b"x\x08\r\n");
    let s = t.feed(&pw);
    assert_eq!(s.outcome, success("alice"));
    assert_eq!(t.a.failures(), 0);
}
