//! `auth: http-basic`: the client's first HTTP/1.x request, read by the box in one of three
//! [`HttpMode`]s: in-band (the credentials must be in it, as if the server asked for them),
//! redirect (virtual HTTP: the browser is sent to log in at the box's own origin, so it
//! never holds the box's password for a server), or known (the client is logged in: the
//! request goes on without any header carrying the box's credentials).
//!
//! The request head is buffered (at most [`MAX_HEAD`] bytes) and parsed just enough: the
//! request line, then `name: value` header lines (names case-insensitive, optional whitespace
//! around values, LF or CRLF line ends). Credentials come from `Proxy-Authorization: Basic ..`
//! if the client sent that header with the Basic scheme (it is meant for an intermediary, and
//! leaves the client's `Authorization` for the server alone), otherwise from
//! `Authorization: Basic ..`. On success exactly that one header line is removed and the rest
//! of the bytes are forwarded unchanged; bodies are not parsed.
//!
//! Answers (all `Connection: close`, so no request body ever needs reading):
//! - no usable credentials, or wrong ones: [`HttpStep::Reject`] with `401` and
//!   `WWW-Authenticate: Basic realm="cutthrough"`;
//! - the client address is rate-limited: [`HttpStep::Reject`] with `429 Too Many Requests` and
//!   `Retry-After` (a `401` would make the browser ask again for a password that would not even
//!   be checked), without verifying anything;
//! - the credentials could not be verified (the verifiers were saturated): [`HttpStep::Reject`]
//!   with `503 Service Unavailable` and `Retry-After: 1`, for the same reason;
//! - not an HTTP/1.x request head: [`HttpStep::Bad`] with `400`, or `431` when the head
//!   exceeds [`MAX_HEAD`].
//!
//! Requests that are ambiguous for an intermediary are refused with `400` rather than guessed
//! at: whitespace between a header name and its colon, obsolete line folding, a bare CR, or
//! the credential header twice.

use common::config::User;
use common::wire::Ipv4Addr;

use super::{base64, check_credentials, wipe, Credentials, RateLimiter, Verdict};

/// Longest request head accepted (request line, headers, the empty line), in bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// The realm of the `WWW-Authenticate` challenge.
pub const REALM: &str = "cutthrough";

/// What the box does with the request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpMode {
    /// In-band: `401` unless the head carries valid credentials.
    Challenge,
    /// Virtual HTTP: answer `302` to `portal` (the login URL up to its query, `?` included)
    /// with the original URL added; `server` (`address:port`) stands in for a missing `Host`.
    Redirect { portal: String, server: String },
    /// Logged in with credentials of this fingerprint (see [`Fingerprints`]): pass the head on
    /// without the credential headers that carry them.
    Known { fingerprint: u64 },
}

/// Keyed hashes of credentials: what a login keeps of them, so headers carrying the box's
/// credentials can be recognised in later requests without keeping the password. The key is
/// random per process.
#[derive(Debug, Clone, Default)]
pub struct Fingerprints(std::collections::hash_map::RandomState);

impl Fingerprints {
    pub fn of(&self, name: &[u8], password: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.0.build_hasher();
        h.write(name);
        h.write_u8(0xff); // not in UTF-8: the name ends here
        h.write(password);
        h.finish()
    }

    /// The fingerprint of a `Basic` credentials value, if it is one.
    fn of_value(&self, value: &[u8]) -> Option<u64> {
        let mut decoded = basic_credentials(value)?;
        let fp = decoded
            .iter()
            .position(|&b| b == b':')
            .map(|c| self.of(&decoded[..c], &decoded[c + 1..]));
        wipe(&mut decoded);
        fp
    }
}

/// What one call to [`HttpBasic::feed`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpStep {
    /// The head is not complete yet.
    NeedMore,
    /// Authentication refused (`401`, or `429` when rate-limited): send `response` to the
    /// client and close; the server is never contacted.
    Reject { response: Vec<u8> },
    /// Authenticated: connect to the server and send it `request` (the head without the
    /// credential lines, then every byte received after the head). `fingerprint` identifies
    /// the credentials.
    Accept {
        user: String,
        request: Vec<u8>,
        fingerprint: u64,
    },
    /// [`HttpMode::Known`]: send `request` to the server (as with `Accept`).
    Pass { request: Vec<u8> },
    /// No credentials yet: send `response` (the `401` challenge) and close. The browser's
    /// normal first step, not a failed login.
    Challenge { response: Vec<u8> },
    /// [`HttpMode::Redirect`]: send `response` (the redirect) and close; not a failure.
    Answer { response: Vec<u8> },
    /// Not a usable HTTP/1.x request (`400`, `431`): send `response` and close.
    Bad { response: Vec<u8> },
    /// From [`HttpBasic::feed_deferred`] only: verify these, then call [`HttpBasic::resume`].
    Verify(Credentials),
}

/// The `http-basic` authenticator of one connection.
#[derive(Debug)]
pub struct HttpBasic {
    mode: HttpMode,
    fingerprints: Fingerprints,
    buf: Vec<u8>,
    /// Where the search for the end of the head resumes.
    scanned: usize,
    done: bool,
    /// Handed out credentials, waiting for their verdict.
    verifying: Option<Waiting>,
}

/// What the answer to a pending attempt needs from its head.
#[derive(Debug)]
struct Waiting {
    /// The request target.
    target: std::ops::Range<usize>,
    /// The credential header lines carrying the attempt's credentials, removed on success.
    lines: Vec<std::ops::Range<usize>>,
    fingerprint: u64,
    is_head: bool,
}

impl Default for HttpBasic {
    fn default() -> Self {
        HttpBasic::with_mode(HttpMode::Challenge, Fingerprints::default())
    }
}

impl HttpBasic {
    /// In-band ([`HttpMode::Challenge`]).
    pub fn new() -> Self {
        HttpBasic::default()
    }

    pub fn with_mode(mode: HttpMode, fingerprints: Fingerprints) -> Self {
        HttpBasic {
            mode,
            fingerprints,
            buf: Vec::new(),
            scanned: 0,
            done: false,
            verifying: None,
        }
    }

    /// Takes the bytes the client sent. A complete head with credentials costs one argon2
    /// verification (see [`check_credentials`]). After a step other than `NeedMore` the
    /// exchange is over: later calls discard their input and return `NeedMore`.
    pub fn feed(
        &mut self,
        input: &[u8],
        users: &[User],
        limiter: &mut RateLimiter,
        now_ms: u64,
        client: Ipv4Addr,
    ) -> HttpStep {
        self.feed_with(
            input,
            |name, password| check_credentials(users, name, password),
            limiter,
            now_ms,
            client,
        )
    }

    /// What a head completed from now on is read as: the caller decides when the request
    /// arrives, not when the connection opened (a browser opens connections ahead of its
    /// requests, and a login may begin or end in between).
    pub fn set_mode(&mut self, mode: HttpMode) {
        self.mode = mode;
    }

    /// [`feed`](Self::feed) with another credential check: `check(name, password)` returns the
    /// authenticated user name. Called once per request with credentials, never while the
    /// client is limited.
    pub fn feed_with(
        &mut self,
        input: &[u8],
        check: impl FnOnce(&[u8], &[u8]) -> Option<String>,
        limiter: &mut RateLimiter,
        now_ms: u64,
        client: Ipv4Addr,
    ) -> HttpStep {
        match self.feed_deferred(input, limiter, now_ms, client) {
            HttpStep::Verify(c) => {
                let verdict = Verdict::from(check(&c.name, &c.password));
                drop(c);
                self.resume(verdict, limiter, now_ms, client)
            }
            step => step,
        }
    }

    /// [`feed`](Self::feed) without the check: a complete head with credentials returns
    /// [`HttpStep::Verify`], and the authenticator waits for [`resume`](Self::resume). Input
    /// fed while it waits is appended to what goes to the server on success (the caller
    /// bounds it; the proxy stops reading the client meanwhile) and the call returns
    /// `NeedMore`.
    pub fn feed_deferred(
        &mut self,
        input: &[u8],
        limiter: &mut RateLimiter,
        now_ms: u64,
        client: Ipv4Addr,
    ) -> HttpStep {
        if self.done {
            return HttpStep::NeedMore;
        }
        self.buf.extend_from_slice(input);
        if self.verifying.is_some() {
            return HttpStep::NeedMore;
        }
        let step = self.step(limiter, now_ms, client);
        if !matches!(step, HttpStep::NeedMore | HttpStep::Verify(_)) {
            self.finish();
        }
        step
    }

    /// The verdict on the credentials [`feed_deferred`](Self::feed_deferred) handed out: the
    /// answer [`feed`](Self::feed) would have given. `NeedMore` (nothing) unless an attempt is
    /// pending.
    pub fn resume(
        &mut self,
        verdict: Verdict,
        limiter: &mut RateLimiter,
        now_ms: u64,
        client: Ipv4Addr,
    ) -> HttpStep {
        let Some(w) = self.verifying.take() else {
            return HttpStep::NeedMore;
        };
        let step = match verdict {
            Verdict::Accepted(user) => HttpStep::Accept {
                user,
                request: without(&self.buf, &w.lines),
                fingerprint: w.fingerprint,
            },
            Verdict::Refused => {
                limiter.record_failure(client, now_ms);
                HttpStep::Reject {
                    response: unauthorized(w.is_head),
                }
            }
            Verdict::Unavailable => HttpStep::Reject {
                response: unavailable(w.is_head),
            },
            Verdict::NoDirectory => HttpStep::Reject {
                response: directory_unavailable(w.is_head),
            },
        };
        self.finish();
        step
    }

    /// The target of the request whose credentials are being verified.
    pub fn target(&self) -> Option<Vec<u8>> {
        let w = self.verifying.as_ref()?;
        self.buf.get(w.target.clone()).map(<[u8]>::to_vec)
    }

    /// The exchange is over: later input is discarded.
    fn finish(&mut self) {
        self.done = true;
        wipe(&mut self.buf);
        self.buf = Vec::new();
    }

    fn step(&mut self, limiter: &mut RateLimiter, now_ms: u64, client: Ipv4Addr) -> HttpStep {
        // Empty lines before the request line are tolerated (RFC 9112 §2.2).
        let start = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        if start > MAX_HEAD {
            return bad_request();
        }
        // Fail fast on what cannot be a request line (TLS, SSH, binary protocols).
        let method_len = self.buf[start..]
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(self.buf.len() - start);
        if let Some(&b) = self.buf.get(start + method_len) {
            if method_len == 0 || (b != b' ' && b != b'\t') {
                return bad_request();
            }
        }
        let Some(end) = self.find_end(start) else {
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_HEAD {
                return too_large();
            }
            return HttpStep::NeedMore;
        };
        if end > MAX_HEAD {
            return too_large();
        }
        let head = match parse_head(&self.buf[..end], start) {
            Ok(head) => head,
            Err(()) => return bad_request(),
        };
        match &self.mode {
            HttpMode::Challenge => {}
            HttpMode::Redirect { portal, server } => {
                let location = redirect_location(&self.buf, &head, portal, server);
                return HttpStep::Answer {
                    response: found(&location, head.is_head),
                };
            }
            HttpMode::Known { fingerprint } => {
                let lines = self.lines_carrying(&head, *fingerprint);
                return HttpStep::Pass {
                    request: without(&self.buf, &lines),
                };
            }
        }
        let Some(cred) = head.credentials.as_ref() else {
            return HttpStep::Challenge {
                response: unauthorized(head.is_head),
            };
        };
        let Some(decoded) = basic_credentials(&self.buf[cred.value.clone()]) else {
            return HttpStep::Reject {
                response: unauthorized(head.is_head),
            };
        };
        let mut decoded = decoded;
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            wipe(&mut decoded);
            return HttpStep::Reject {
                response: unauthorized(head.is_head),
            };
        };
        if let Some(wait_ms) = limiter.retry_after_ms(client, now_ms) {
            wipe(&mut decoded);
            return HttpStep::Reject {
                response: too_many_requests(wait_ms, head.is_head),
            };
        }
        let credentials =
            Credentials::new(decoded[..colon].to_vec(), decoded[colon + 1..].to_vec());
        wipe(&mut decoded);
        let fingerprint = self
            .fingerprints
            .of(&credentials.name, &credentials.password);
        self.verifying = Some(Waiting {
            target: head.target.clone(),
            lines: self.lines_carrying(&head, fingerprint),
            fingerprint,
            is_head: head.is_head,
        });
        HttpStep::Verify(credentials)
    }

    /// The credential header lines of `head` whose Basic credentials have `fingerprint`.
    fn lines_carrying(&self, head: &Head, fingerprint: u64) -> Vec<std::ops::Range<usize>> {
        head.credential_lines
            .iter()
            .filter(|c| self.fingerprints.of_value(&self.buf[c.value.clone()]) == Some(fingerprint))
            .map(|c| c.line.clone())
            .collect()
    }

    /// The end of the head (one past the LF of the empty line), searching from where the last
    /// call stopped. An empty line is an LF preceded by LF or by CR LF.
    fn find_end(&self, start: usize) -> Option<usize> {
        let from = self.scanned.max(start + 1);
        let limit = self.buf.len().min(MAX_HEAD + 1);
        (from..limit).find_map(|j| {
            let empty = self.buf[j] == b'\n'
                && (self.buf[j - 1] == b'\n'
                    || (self.buf[j - 1] == b'\r' && j >= 2 && self.buf[j - 2] == b'\n'));
            empty.then_some(j + 1)
        })
    }
}

/// What the rest of the box needs from a request head.
struct Head {
    is_head: bool,
    /// The request target, and the `Host` header's value.
    target: std::ops::Range<usize>,
    host: Option<std::ops::Range<usize>>,
    /// The credentials to check: `Proxy-Authorization` if Basic, else `Authorization`.
    credentials: Option<Credential>,
    /// Every `Authorization` and `Proxy-Authorization` line (one of each at most).
    credential_lines: Vec<Credential>,
}

/// A credential header line.
#[derive(Clone)]
struct Credential {
    /// The whole line, terminator included: what is removed on success.
    line: std::ops::Range<usize>,
    /// The field value, without surrounding whitespace.
    value: std::ops::Range<usize>,
}

/// Parses the head `buf[..end]` (which ends with its empty line); the request line starts at
/// `start`.
fn parse_head(buf: &[u8], start: usize) -> Result<Head, ()> {
    let mut lines = Lines { buf, pos: start };
    let (_, request_line) = lines.next().ok_or(())?;
    let request_line = &buf[request_line];
    if request_line.contains(&b'\r') {
        return Err(()); // a bare CR
    }
    let mut parts = request_line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|p| !p.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(());
    };
    let version_ok =
        version.len() == 8 && version.starts_with(b"HTTP/1.") && version[7].is_ascii_digit();
    if !method.iter().all(|&b| is_tchar(b))
        || target.iter().any(|&b| b.is_ascii_control() || b >= 0x80)
        || !version_ok
    {
        return Err(());
    }
    let target_start = target.as_ptr() as usize - buf.as_ptr() as usize;
    let target = target_start..target_start + target.len();
    let mut authorization = None;
    let mut proxy_authorization = None;
    let mut host = None;
    for (line, content) in lines {
        let text = &buf[content.clone()];
        if text.is_empty() {
            break;
        }
        if text.contains(&b'\r') {
            return Err(()); // a bare CR
        }
        if text[0] == b' ' || text[0] == b'\t' {
            return Err(()); // obsolete line folding
        }
        let colon = text.iter().position(|&b| b == b':').ok_or(())?;
        let name = &text[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(());
        }
        let value = trim(content.start + colon + 1..content.end, buf);
        if buf[value.clone()]
            .iter()
            .any(|&b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
        {
            return Err(());
        }
        if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return Err(()); // RFC 9112 §3.2: a request with two is refused
            }
            host = Some(value);
            continue;
        }
        let slot = if name.eq_ignore_ascii_case(b"authorization") {
            &mut authorization
        } else if name.eq_ignore_ascii_case(b"proxy-authorization") {
            &mut proxy_authorization
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(()); // which one would the server believe?
        }
        *slot = Some(Credential { line, value });
    }
    let is_basic = |c: &Credential| scheme_is_basic(&buf[c.value.clone()]);
    let credential_lines: Vec<Credential> = proxy_authorization
        .iter()
        .chain(authorization.iter())
        .cloned()
        .collect();
    let credentials = match proxy_authorization {
        Some(p) if is_basic(&p) => Some(p),
        _ => authorization.filter(is_basic),
    };
    Ok(Head {
        is_head: method == b"HEAD",
        target,
        host,
        credentials,
        credential_lines,
    })
}

/// `buf` without the byte ranges `cut` (disjoint, in any order).
fn without(buf: &[u8], cut: &[std::ops::Range<usize>]) -> Vec<u8> {
    let mut cut = cut.to_vec();
    cut.sort_by_key(|r| r.start);
    let mut out = Vec::with_capacity(buf.len());
    let mut at = 0;
    for r in cut {
        out.extend_from_slice(&buf[at..r.start]);
        at = r.end;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

/// The login URL for a request: `portal` followed by `url=` and the request's own URL,
/// percent-encoded (absolute-form targets as they are, origin-form ones under `Host`, or
/// under the server's address without one).
fn redirect_location(buf: &[u8], head: &Head, portal: &str, server: &str) -> String {
    let target = &buf[head.target.clone()];
    let mut url = Vec::new();
    if target.starts_with(b"http://") || target.starts_with(b"https://") {
        url.extend_from_slice(target);
    } else {
        url.extend_from_slice(b"http://");
        match &head.host {
            Some(h) if !buf[h.clone()].is_empty() => url.extend_from_slice(&buf[h.clone()]),
            _ => url.extend_from_slice(server.as_bytes()),
        }
        if !target.starts_with(b"/") {
            url.push(b'/');
        }
        url.extend_from_slice(target);
    }
    let mut location = String::with_capacity(portal.len() + 4 + url.len() * 3);
    location.push_str(portal);
    location.push_str("url=");
    percent_encode(&url, &mut location);
    location
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space, as forms send it); `None` on a bad escape.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The lines of a head: (whole line with its LF, content without its CR LF or LF).
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = (std::ops::Range<usize>, std::ops::Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.pos;
        let lf = start + self.buf.get(start..)?.iter().position(|&b| b == b'\n')?;
        self.pos = lf + 1;
        let end = if lf > start && self.buf[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        };
        Some((start..lf + 1, start..end))
    }
}

fn trim(mut r: std::ops::Range<usize>, buf: &[u8]) -> std::ops::Range<usize> {
    while r.start < r.end && matches!(buf[r.start], b' ' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(buf[r.end - 1], b' ' | b'\t') {
        r.end -= 1;
    }
    r
}

/// Whether a credentials value uses the Basic scheme (`Basic`, alone or before whitespace).
fn scheme_is_basic(value: &[u8]) -> bool {
    value.len() >= 5
        && value[..5].eq_ignore_ascii_case(b"basic")
        && matches!(value.get(5), None | Some(b' ' | b'\t'))
}

/// `Basic <token68>` (scheme case-insensitive, spaces before the token) → the decoded bytes.
fn basic_credentials(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() < 6 || !value[..5].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let token = &value[5..];
    let skip = token.iter().position(|&b| b != b' ' && b != b'\t')?;
    if skip == 0 {
        return None;
    }
    base64::decode(&token[skip..])
}

/// RFC 9110 `tchar`: the characters of methods and header names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn response(status: &str, extra: &str, body: &str, is_head: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        r.push_str(body);
    }
    r.into_bytes()
}

fn unauthorized(is_head: bool) -> Vec<u8> {
    response(
        "401 Unauthorized",
        &format!("WWW-Authenticate: Basic realm=\"{REALM}\"\r\n"),
        "Authentication required.\n",
        is_head,
    )
}

fn too_many_requests(wait_ms: u64, is_head: bool) -> Vec<u8> {
    response(
        "429 Too Many Requests",
        &format!("Retry-After: {}\r\n", wait_ms.div_ceil(1000)),
        "Too many attempts, try later.\n",
        is_head,
    )
}

/// `302 Found` to `location` (which must be a valid URL without CR or LF).
pub fn found(location: &str, is_head: bool) -> Vec<u8> {
    response(
        "302 Found",
        &format!("Location: {location}\r\nCache-Control: no-store\r\n"),
        "Log in first.\n",
        is_head,
    )
}

/// `200 OK` with a short text.
pub fn ok_text(body: &str, is_head: bool) -> Vec<u8> {
    response("200 OK", "Cache-Control: no-store\r\n", body, is_head)
}

fn directory_unavailable(is_head: bool) -> Vec<u8> {
    response(
        "503 Service Unavailable",
        "Retry-After: 10\r\n",
        "Authentication unavailable, try again later.\n",
        is_head,
    )
}

fn unavailable(is_head: bool) -> Vec<u8> {
    response(
        "503 Service Unavailable",
        "Retry-After: 1\r\n",
        "Authentication busy, try again.\n",
        is_head,
    )
}

fn bad_request() -> HttpStep {
    HttpStep::Bad {
        response: response("400 Bad Request", "", "Bad request.\n", false),
    }
}

fn too_large() -> HttpStep {
    HttpStep::Bad {
        response: response(
            "431 Request Header Fields Too Large",
            "",
            "Request header too large.\n",
            false,
        ),
    }
}

#[cfg(test)]
mod tests;
