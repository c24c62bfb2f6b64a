use super::super::testutil::*;
use super::*;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);

const UNAUTHORIZED: &[u8] = b"HTTP/1.1 401 Unauthorized\r\n\
    WWW-Authenticate: Basic realm=\"cutthrough\"\r\n\
    Content-Type: text/plain\r\n\
    Content-Length: 25\r\n\
    Connection: close\r\n\
    \r\n\
    Authentication required.\n";

fn alice_b64() -> String {
    base64::encode(&[&b"alice:"[..], ALICE_PASSWORD].concat())
}

fn feed(h: &mut HttpBasic, c: &Counting, l: &mut RateLimiter, input: &[u8]) -> HttpStep {
    norm(h.feed_with(input, |n, p| c.check(n, p), l, 1000, CLIENT))
}

/// The step with its fingerprint zeroed (fingerprints are keyed per process).
fn norm(step: HttpStep) -> HttpStep {
    match step {
        HttpStep::Accept { user, request, .. } => HttpStep::Accept {
            user,
            request,
            fingerprint: 0,
        },
        s => s,
    }
}

fn one_shot(input: &[u8]) -> (HttpStep, u32) {
    let c = Counting::new();
    let step = feed(
        &mut HttpBasic::new(),
        &c,
        &mut RateLimiter::default(),
        input,
    );
    (step, c.calls.get())
}

fn accepted(request: &[u8]) -> HttpStep {
    HttpStep::Accept {
        user: "alice".into(),
        request: request.to_vec(),
        fingerprint: 0,
    }
}

#[test]
fn authorization_header_is_removed_byte_exact() {
    let req = format!(
        "GET /x?y=1 HTTP/1.1\r\nHost: example.test\r\nAuthorization: Basic {}\r\n\
         Accept: */*\r\n\r\n",
        alice_b64()
    );
    let (step, calls) = one_shot(req.as_bytes());
    assert_eq!(
        step,
        accepted(b"GET /x?y=1 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")
    );
    assert_eq!(calls, 1);
}

#[test]
fn real_verification_through_feed() {
    // The one test that pays for argon2 through `feed`.
    let mut l = RateLimiter::default();
    let req = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let step = norm(HttpBasic::new().feed(req.as_bytes(), users(), &mut l, 0, CLIENT));
    assert_eq!(step, accepted(b"GET / HTTP/1.1\r\n\r\n"));
}

#[test]
fn proxy_authorization_is_used_and_removed() {
    let req = format!(
        "GET http://example.test/ HTTP/1.1\r\nproxy-AUTHORIZATION:basic   {}  \r\n\
         Host: example.test\r\n\r\n",
        alice_b64()
    );
    let (step, _) = one_shot(req.as_bytes());
    assert_eq!(
        step,
        accepted(b"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n")
    );
    // Both present: Proxy-Authorization is ours, Authorization stays for the server.
    let req = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic c2VydmVyOnNpZGU=\r\n\
         Proxy-Authorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let (step, calls) = one_shot(req.as_bytes());
    assert_eq!(
        step,
        accepted(b"GET / HTTP/1.1\r\nAuthorization: Basic c2VydmVyOnNpZGU=\r\n\r\n")
    );
    assert_eq!(calls, 1);
    // A non-Basic Proxy-Authorization is not ours: Authorization is used.
    let req = format!(
        "GET / HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\
         Authorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let (step, _) = one_shot(req.as_bytes());
    assert_eq!(
        step,
        accepted(b"GET / HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n")
    );
}

#[test]
fn lf_only_heads_and_extra_whitespace() {
    let req = format!(
        "\r\nPOST  /form   HTTP/1.0\nAUTHORIZATION: \t BASIC\t{}\t\nX: y\n\nbody",
        alice_b64()
    );
    let (step, _) = one_shot(req.as_bytes());
    assert_eq!(step, accepted(b"\r\nPOST  /form   HTTP/1.0\nX: y\n\nbody"));
}

#[test]
fn body_bytes_are_carried_through() {
    let body = b"a=1&b=2\r\n\r\nmore\x00\xff";
    let head = format!(
        "POST /submit HTTP/1.1\r\nContent-Length: 18\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let (step, _) = one_shot(&[head.as_bytes(), body].concat());
    assert_eq!(
        step,
        accepted(
            &[
                &b"POST /submit HTTP/1.1\r\nContent-Length: 18\r\n\r\n"[..],
                body
            ]
            .concat()
        )
    );
}

#[test]
fn head_split_across_feeds() {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic {}\r\n\r\nBODY",
        alice_b64()
    );
    let c = Counting::new();
    let mut l = RateLimiter::default();
    let mut h = HttpBasic::new();
    let bytes = req.as_bytes();
    let split = bytes.len() - 4;
    for &b in &bytes[..split - 1] {
        assert_eq!(feed(&mut h, &c, &mut l, &[b]), HttpStep::NeedMore);
    }
    assert_eq!(c.calls.get(), 0);
    let step = feed(&mut h, &c, &mut l, &bytes[split - 1..]);
    assert_eq!(step, accepted(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY"));
    assert_eq!(c.calls.get(), 1);
    // Over.
    assert_eq!(feed(&mut h, &c, &mut l, b"x"), HttpStep::NeedMore);
    assert_eq!(c.calls.get(), 1);
}

#[test]
fn missing_or_unusable_credentials_get_401() {
    let cases: [&[u8]; 9] = [
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Basic\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Basic Zm9v\r\n\r\n", // no colon
        b"GET / HTTP/1.1\r\nAuthorization: Basic YWxpY2U6cw\r\n\r\n", // no padding
        b"GET / HTTP/1.1\r\nAuthorization: Basic YWxp Y2U6\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Basic !!!!\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Basicx YWxpY2U6\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Authorization: Basic YWxpY2U6\r\n\r\n",
    ];
    // Without credentials of the Basic scheme the 401 is a challenge; with unusable ones it
    // is a refused attempt.
    for (i, req) in cases.iter().enumerate() {
        let (step, calls) = one_shot(req);
        let response = UNAUTHORIZED.to_vec();
        let want = if [0, 1, 7, 8].contains(&i) {
            HttpStep::Challenge { response }
        } else {
            HttpStep::Reject { response }
        };
        assert_eq!(step, want, "{}", String::from_utf8_lossy(req));
        assert_eq!(calls, 0, "nothing to verify");
    }
}

#[test]
fn wrong_password_and_unknown_user_get_401_and_count() {
    let c = Counting::new();
    let mut l = RateLimiter::new(2, 60_000, 16);
    for user_pass in [&b"alice:wrong"[..], b"mallory:s3cret pass:word"] {
        let req = format!(
            "GET / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
            base64::encode(user_pass)
        );
        let step = feed(&mut HttpBasic::new(), &c, &mut l, req.as_bytes());
        assert_eq!(
            step,
            HttpStep::Reject {
                response: UNAUTHORIZED.to_vec()
            }
        );
    }
    assert_eq!(c.calls.get(), 2);
    assert!(l.is_limited(CLIENT, 1000));
}

#[test]
fn password_split_at_first_colon() {
    // ALICE_PASSWORD contains a colon.
    let seen = std::cell::RefCell::new(None);
    let req = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    HttpBasic::new().feed_with(
        req.as_bytes(),
        |n, p| {
            *seen.borrow_mut() = Some((n.to_vec(), p.to_vec()));
            None
        },
        &mut RateLimiter::default(),
        0,
        CLIENT,
    );
    assert_eq!(
        seen.into_inner(),
        Some((b"alice".to_vec(), ALICE_PASSWORD.to_vec()))
    );
}

#[test]
fn rate_limited_gets_429_without_verify() {
    let c = Counting::new();
    let mut l = RateLimiter::new(1, 60_000, 16);
    l.record_failure(CLIENT, 500);
    let req = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let step = feed(&mut HttpBasic::new(), &c, &mut l, req.as_bytes());
    let body = "Too many attempts, try later.\n";
    let expected = format!(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        step,
        HttpStep::Reject {
            response: expected.into_bytes()
        }
    );
    assert_eq!(c.calls.get(), 0);
    // HEAD: same head, no body.
    let req = format!(
        "HEAD / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let HttpStep::Reject { response } = feed(&mut HttpBasic::new(), &c, &mut l, req.as_bytes())
    else {
        panic!("not rejected")
    };
    assert!(response.ends_with(b"Content-Length: 30\r\nConnection: close\r\n\r\n"));
    assert_eq!(c.calls.get(), 0);
}

#[test]
fn deferred_request_waits_and_takes_the_bytes_that_follow() {
    let mut h = HttpBasic::new();
    let mut l = RateLimiter::new(1, 60_000, 16);
    let req = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic {}\r\nHost: h\r\n\r\nBO",
        alice_b64()
    );
    let HttpStep::Verify(c) = h.feed_deferred(req.as_bytes(), &mut l, 1000, CLIENT) else {
        panic!("no attempt handed out")
    };
    assert_eq!(
        (&c.name[..], &c.password[..]),
        (&b"alice"[..], ALICE_PASSWORD)
    );
    assert_eq!(
        h.feed_deferred(b"DY", &mut l, 1000, CLIENT),
        HttpStep::NeedMore
    );
    assert_eq!(
        norm(h.resume(Verdict::Accepted("alice".into()), &mut l, 1000, CLIENT)),
        accepted(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY")
    );
    assert!(h.buf.is_empty());
    // Over: later input and verdicts are ignored.
    assert_eq!(
        h.feed_deferred(b"x", &mut l, 1000, CLIENT),
        HttpStep::NeedMore
    );
    assert_eq!(
        h.resume(Verdict::Refused, &mut l, 1000, CLIENT),
        HttpStep::NeedMore
    );
    assert!(!l.is_limited(CLIENT, 1000));
}

#[test]
fn deferred_refusal_is_401_and_counted_unchecked_is_503_and_not() {
    let req = format!(
        "HEAD / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let mut l = RateLimiter::new(1, 60_000, 16);
    let mut h = HttpBasic::new();
    assert!(matches!(
        h.feed_deferred(req.as_bytes(), &mut l, 1000, CLIENT),
        HttpStep::Verify(_)
    ));
    let HttpStep::Reject { response } = h.resume(Verdict::Unavailable, &mut l, 1000, CLIENT) else {
        panic!("not rejected")
    };
    assert_eq!(
        response,
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
          Content-Length: 32\r\nConnection: close\r\n\r\n"
    );
    assert!(!l.is_limited(CLIENT, 1000));
    let mut h = HttpBasic::new();
    assert!(matches!(
        h.feed_deferred(req.as_bytes(), &mut l, 1000, CLIENT),
        HttpStep::Verify(_)
    ));
    let HttpStep::Reject { response } = h.resume(Verdict::Refused, &mut l, 1000, CLIENT) else {
        panic!("not rejected")
    };
    assert!(response.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    assert!(l.is_limited(CLIENT, 1000));
}

#[test]
fn head_too_large_is_431() {
    let c = Counting::new();
    let mut l = RateLimiter::default();
    let mut h = HttpBasic::new();
    assert_eq!(
        feed(&mut h, &c, &mut l, b"GET / HTTP/1.1\r\n"),
        HttpStep::NeedMore
    );
    let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
    let mut step = HttpStep::NeedMore;
    let mut fed = 16;
    while step == HttpStep::NeedMore {
        step = feed(&mut h, &c, &mut l, filler.as_bytes());
        fed += filler.len();
        assert!(fed < MAX_HEAD + 2 * filler.len(), "never decided");
    }
    let HttpStep::Bad { response } = step else {
        panic!("{step:?}")
    };
    assert!(response.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert!(h.buf.is_empty());
    // A complete head just over the limit, in one segment.
    let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
    req.resize(MAX_HEAD - 2, b'a');
    req.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(one_shot(&req).0, HttpStep::Bad { .. }));
    // Exactly at the limit: parsed (and challenged for lack of credentials).
    req.truncate(MAX_HEAD - 4);
    req.extend_from_slice(b"\r\n\r\nbody");
    assert!(matches!(one_shot(&req).0, HttpStep::Challenge { .. }));
}

#[test]
fn malformed_requests_are_400() {
    let cases: [&[u8]; 11] = [
        b"\x16\x03\x01\x02\x00\x01",             // TLS ClientHello: at once
        b"SSH-2.0-OpenSSH_9.6\r\n",              // at once
        b"GET /\r\n\r\n",                        // HTTP/0.9
        b"GET / HTTP/2.0\r\n\r\n",               // not 1.x
        b"GET / HTTP/1.1 extra\r\n\r\n",         // four parts
        b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", // obs-fold
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",   // space before colon
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",   // no colon
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",    // bare CR
        b"GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\nauthorization: Basic YTpi\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
    ];
    for req in cases {
        let (step, calls) = one_shot(req);
        let HttpStep::Bad { response } = &step else {
            panic!("{}: {step:?}", String::from_utf8_lossy(req))
        };
        assert_eq!(
            response,
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
              Content-Length: 13\r\nConnection: close\r\n\r\nBad request.\n"
        );
        assert_eq!(calls, 0);
    }
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x9e37_79b9u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let alphabet = b"GET / HTTP/1.1\r\n:AuthorizationBasic YWxpY2U6= \t\x00\xff";
    for _ in 0..300 {
        let mut h = HttpBasic::new();
        let mut l = RateLimiter::default();
        let mut input = b"GET / HTTP/1.1\r\n".to_vec();
        let len = next() % 200;
        for _ in 0..len {
            input.push(alphabet[next() as usize % alphabet.len()]);
        }
        for chunk in input.chunks(1 + next() as usize % 7) {
            if h.feed_with(chunk, |_, _| None, &mut l, 0, CLIENT) != HttpStep::NeedMore {
                break;
            }
        }
    }
}

fn redirect_mode() -> HttpBasic {
    HttpBasic::with_mode(
        HttpMode::Redirect {
            portal: "http://198.18.0.254:8888/login?rule=web&".into(),
            server: "198.19.0.2:80".into(),
        },
        Fingerprints::default(),
    )
}

#[test]
fn a_redirect_carries_the_original_url_and_checks_nothing() {
    let c = Counting::new();
    let mut l = RateLimiter::default();
    let req = format!(
        "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: www.example.test:8080\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    let HttpStep::Answer { response } = feed(&mut redirect_mode(), &c, &mut l, req.as_bytes())
    else {
        panic!("not redirected")
    };
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 302 Found\r\n"), "{text}");
    assert!(
        text.contains(
            "\r\nLocation: http://198.18.0.254:8888/login?rule=web&url=\
             http%3A%2F%2Fwww.example.test%3A8080%2Fa%2Fb%3Fx%3D1%26y%3D%2520\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert_eq!(
        c.calls.get(),
        0,
        "credentials sent to the server are not checked"
    );
    // Without Host, the server's address stands in; absolute-form targets are kept.
    let HttpStep::Answer { response } = feed(
        &mut redirect_mode(),
        &c,
        &mut l,
        b"HEAD /x HTTP/1.0\r\n\r\n",
    ) else {
        panic!("not redirected")
    };
    let text = String::from_utf8(response).unwrap();
    assert!(
        text.contains("url=http%3A%2F%2F198.19.0.2%3A80%2Fx\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "HEAD: no body: {text}");
    let HttpStep::Answer { response } = feed(
        &mut redirect_mode(),
        &c,
        &mut l,
        b"GET http://h.test/p HTTP/1.1\r\nHost: h.test\r\n\r\n",
    ) else {
        panic!("not redirected")
    };
    assert!(String::from_utf8(response)
        .unwrap()
        .contains("url=http%3A%2F%2Fh.test%2Fp\r\n"));
    // Still a request reader: garbage is a 400, not a redirect.
    assert!(matches!(
        feed(
            &mut redirect_mode(),
            &c,
            &mut l,
            b"\x16\x03\x01 hello\r\n\r\n"
        ),
        HttpStep::Bad { .. }
    ));
}

#[test]
fn a_known_client_loses_only_the_headers_with_its_credentials() {
    let fps = Fingerprints::default();
    let fp = fps.of(b"alice", ALICE_PASSWORD);
    let known = || HttpBasic::with_mode(HttpMode::Known { fingerprint: fp }, fps.clone());
    let c = Counting::new();
    let mut l = RateLimiter::default();
    let other = base64::encode(b"alice:the server's own password");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic {}\r\nProxy-Authorization: basic {}\r\n\r\nBODY",
        alice_b64(),
        alice_b64()
    );
    assert_eq!(
        feed(&mut known(), &c, &mut l, req.as_bytes()),
        HttpStep::Pass {
            request: b"GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY".to_vec()
        }
    );
    // The server's own credentials (another password, another scheme) go through.
    let req = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic {other}\r\nProxy-Authorization: Bearer t\r\n\r\n"
    );
    assert_eq!(
        feed(&mut known(), &c, &mut l, req.as_bytes()),
        HttpStep::Pass {
            request: req.clone().into_bytes()
        }
    );
    assert_eq!(c.calls.get(), 0, "nothing is verified for a known client");
}

#[test]
fn in_band_acceptance_removes_every_header_with_the_same_credentials() {
    let req = format!(
        "GET / HTTP/1.1\r\nProxy-Authorization: Basic {}\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64(),
        alice_b64()
    );
    let (step, calls) = one_shot(req.as_bytes());
    assert_eq!(step, accepted(b"GET / HTTP/1.1\r\n\r\n"));
    assert_eq!(calls, 1);
}

#[test]
fn the_target_of_an_attempt_is_known_while_it_is_verified() {
    let mut h = HttpBasic::new();
    let mut l = RateLimiter::default();
    assert_eq!(h.target(), None);
    let req = format!(
        "GET /login?rule=web&url=x HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        alice_b64()
    );
    assert!(matches!(
        h.feed_deferred(req.as_bytes(), &mut l, 0, CLIENT),
        HttpStep::Verify(_)
    ));
    assert_eq!(h.target().as_deref(), Some(&b"/login?rule=web&url=x"[..]));
}

#[test]
fn percent_encoding_round_trips() {
    let raw = b"http://h:8/a b?c=d&e=%f\xff";
    let mut enc = String::new();
    percent_encode(raw, &mut enc);
    assert_eq!(enc, "http%3A%2F%2Fh%3A8%2Fa%20b%3Fc%3Dd%26e%3D%25f%FF");
    assert_eq!(percent_decode(enc.as_bytes()).as_deref(), Some(&raw[..]));
    assert_eq!(percent_decode(b"a+b%41").as_deref(), Some(&b"a bA"[..]));
    assert_eq!(percent_decode(b"%4"), None);
    assert_eq!(percent_decode(b"%zz"), None);
}

#[test]
fn two_host_headers_are_refused() {
    let (step, _) = one_shot(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert!(matches!(step, HttpStep::Bad { .. }), "{step:?}");
}
