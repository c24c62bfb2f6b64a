//! The login part of a proxied connection: who is asked what (`line`, `http-basic` in-band
//! or redirected, the virtual HTTP origin), where the attempt is checked, what a verdict
//! does, and what the auth cache keeps of a login.

use smoltcp::socket::tcp::State;
use smoltcp::time::Instant;

use common::config::{AuthMethod, RuleLogin};
use common::flow::FlowKey;

use crate::auth::{
    Credentials, Directory, Fingerprints, HttpMode, HttpStep, LineOutcome, Made, RateLimiter,
    Scope, Used, Verdict,
};
use crate::verifier::{Against, Submitted, Verifier};

use super::super::portal::{portal_answer, portal_login};
use super::{App, Env, Outcome, Phase, ProxyConn};

/// How a connection's logins are checked and kept.
#[derive(Debug, Clone)]
pub struct LoginSetup {
    /// The rule's label (its name, or `#N`), for the accounting line and the listings.
    pub rule: String,
    pub login: RuleLogin,
    /// The key its logins are kept under.
    pub scope: Scope,
    /// The login the client has in that scope, if any (it skips the prompt).
    pub cached: Option<Used>,
    /// Virtual HTTP: the login URL up to its query (`http://host/login?rule=..&`).
    pub portal: Option<String>,
    /// The proxy's: the logins' fingerprints are of this key.
    pub fingerprints: Fingerprints,
}

impl LoginSetup {
    /// For a rule without authentication.
    pub fn none() -> LoginSetup {
        LoginSetup {
            rule: String::new(),
            login: RuleLogin::default(),
            scope: Scope::Shared,
            cached: None,
            portal: None,
            fingerprints: Fingerprints::default(),
        }
    }
}

impl ProxyConn {
    /// Where its login attempts are checked.
    pub fn against(&self, dir: &Directory) -> Against {
        Against {
            dir: dir.clone(),
            backend: self.login.login.backend,
        }
    }

    /// Its deferred attempt, if it has one waiting.
    pub fn has_deferred(&self) -> bool {
        self.deferred.is_some()
    }

    /// Its deferred attempt, to be submitted now (the connection keeps waiting for the
    /// verdict).
    pub fn take_deferred(&mut self) -> Option<Credentials> {
        self.deferred.take()
    }

    /// The verdict on the pending login attempt: the next turn answers the client.
    pub fn deliver(&mut self, verdict: Verdict) {
        if self.verifying {
            self.verifying = false;
            self.verdict = Some(verdict);
        }
    }

    pub(super) fn auth_step(&mut self, env: &mut Env<'_>, now: Instant) -> Outcome {
        // CLOSE-WAIT too: a request or a password line may arrive with the client's FIN.
        if !matches!(self.client.state(), State::Established | State::CloseWait) {
            return Outcome::Continue;
        }
        // While an attempt is verified, what the client sends stays in its leg's buffer
        // (bounded: the window closes), read once the verdict is in.
        if self.verifying {
            return Outcome::Continue;
        }
        let mut input = Vec::new();
        let _ = self.client.socket().recv(|b| {
            input.extend_from_slice(b);
            (b.len(), ())
        });
        let verdict = self.verdict.take();
        if verdict == Some(Verdict::NoDirectory) {
            self.events.directory_down = true;
        }
        match &self.app {
            App::Open => self.phase = Phase::Relay,
            App::Line(_) => self.line_step(env, &input, verdict, now),
            App::Http(_) | App::Portal(_) => self.http_input(env, &input, verdict, now),
        }
        Outcome::Continue
    }

    /// `line`: the prompts, the attempts and their verdicts.
    fn line_step(
        &mut self,
        env: &mut Env<'_>,
        input: &[u8],
        verdict: Option<Verdict>,
        now: Instant,
    ) {
        let (key, client) = (self.key, self.key.src);
        let App::Line(l) = &mut self.app else {
            return;
        };
        if !l.started() {
            self.to_client.extend(l.start());
        }
        if input.is_empty() && verdict.is_none() {
            return;
        }
        let mut step = l.feed_deferred(input, env.limiter, env.now_ms);
        if let Some(v) = verdict {
            account(
                &key,
                AuthMethod::Line,
                &self.login,
                self.attempting.take(),
                &v,
            );
            step.append(l.resume(v, env.limiter, env.now_ms));
        }
        while let Some(c) = step.verify.take() {
            let name = String::from_utf8_lossy(&c.name).into_owned();
            self.attempt_fp = env.fingerprints.of(&c.name, &c.password);
            let against = Against {
                dir: env.dir.clone(),
                backend: self.login.login.backend,
            };
            let Some(v) = submit(
                env,
                key,
                &against,
                &mut self.verifying,
                &mut self.deferred,
                c,
            ) else {
                self.attempting = Some(name);
                break;
            };
            self.events.directory_down |= v == Verdict::NoDirectory;
            account(&key, AuthMethod::Line, &self.login, Some(name), &v);
            step.append(l.resume(v, env.limiter, env.now_ms));
        }
        self.to_client.extend(step.output);
        match step.outcome {
            Some(LineOutcome::Success { user }) => {
                log::info!("{}: line auth accepted user {user}", self.key);
                remember(
                    env,
                    client,
                    &self.login,
                    AuthMethod::Line,
                    user,
                    self.attempt_fp,
                );
                // What the client typed after its password is its first request.
                self.await_request &= step.leftover.is_empty();
                self.to_server.extend(step.leftover);
                self.phase = Phase::Relay;
                self.connect_server(self.client_ts(), now);
            }
            Some(LineOutcome::Close) => {
                log::info!("{}: line auth refused, closing", self.key);
                self.events.auth_failed = true;
                self.closing = true;
            }
            None => {}
        }
    }

    /// `http-basic` and the virtual HTTP origin: the request head, the attempt in it and its
    /// verdict.
    fn http_input(
        &mut self,
        env: &mut Env<'_>,
        input: &[u8],
        verdict: Option<Verdict>,
        now: Instant,
    ) {
        let (key, client) = (self.key, self.key.src);
        let portal = matches!(self.app, App::Portal(_));
        let (App::Http(h) | App::Portal(h)) = &mut self.app else {
            return;
        };
        if input.is_empty() && verdict.is_none() {
            return;
        }
        if !portal {
            // Logged in or not is a question for the moment the request comes.
            let login = env.cache.peek(client, &self.login.scope, env.now_ms);
            h.set_mode(http_mode(&self.login, login.as_ref(), &key));
        }
        let mut step = h.feed_deferred(input, env.limiter, env.now_ms, client);
        if let Some(v) = verdict {
            let name = self.attempting.take();
            account(&key, AuthMethod::HttpBasic, &self.login, name, &v);
            step = h.resume(v, env.limiter, env.now_ms, client);
        }
        if let HttpStep::Verify(c) = step {
            if portal {
                // The login is for the rule the redirect named.
                let target = h.target().unwrap_or_default();
                self.login = portal_login(env.policy, &target, &self.login.fingerprints);
            }
            let name = String::from_utf8_lossy(&c.name).into_owned();
            self.attempt_fp = env.fingerprints.of(&c.name, &c.password);
            let against = Against {
                dir: env.dir.clone(),
                backend: self.login.login.backend,
            };
            let submitted = submit(
                env,
                key,
                &against,
                &mut self.verifying,
                &mut self.deferred,
                c,
            );
            step = match submitted {
                Some(v) => {
                    self.events.directory_down |= v == Verdict::NoDirectory;
                    account(&key, AuthMethod::HttpBasic, &self.login, Some(name), &v);
                    h.resume(v, env.limiter, env.now_ms, client)
                }
                None => {
                    self.attempting = Some(name);
                    HttpStep::NeedMore
                }
            };
        }
        self.http_step(step, portal, env, now);
    }

    /// Acts on what the HTTP reader decided.
    fn http_step(&mut self, step: HttpStep, portal: bool, env: &mut Env<'_>, now: Instant) {
        let client = self.key.src;
        match step {
            HttpStep::NeedMore | HttpStep::Verify(_) => {}
            HttpStep::Accept { user, request, .. } => {
                let method = AuthMethod::HttpBasic;
                if portal {
                    log::info!("{}: virtual HTTP login accepted user {user}", self.key);
                    self.events.portal_login = true;
                    let answer = portal_answer(&request, &user);
                    remember(env, client, &self.login, method, user, self.attempt_fp);
                    self.to_client.extend(answer);
                    self.closing = true;
                    return;
                }
                log::info!("{}: http-basic accepted user {user}", self.key);
                remember(env, client, &self.login, method, user, self.attempt_fp);
                self.to_server.extend(request);
                self.phase = Phase::Relay;
                self.connect_server(self.client_ts(), now);
            }
            HttpStep::Pass { request } => {
                log::info!(
                    "{}: http-basic logged in before, request passed on",
                    self.key
                );
                // The login served this connection: counted, its idle time starts again.
                let _ = env.cache.use_login(client, &self.login.scope, env.now_ms);
                self.to_server.extend(request);
                self.phase = Phase::Relay;
                self.connect_server(self.client_ts(), now);
            }
            HttpStep::Answer { response } => {
                log::info!("{}: http-basic sent to the virtual HTTP origin", self.key);
                self.events.redirected = true;
                self.to_client.extend(response);
                self.closing = true;
            }
            HttpStep::Challenge { response } => {
                self.to_client.extend(response);
                self.closing = true;
            }
            HttpStep::Reject { response } | HttpStep::Bad { response } => {
                log::info!("{}: http-basic refused", self.key);
                self.events.auth_failed = true;
                self.to_client.extend(response);
                self.closing = true;
            }
        }
    }
}

/// How an `http-basic` rule reads a request: passed on for a client logged in (without its
/// credentials), else sent to the virtual HTTP origin, or asked in-band.
pub(super) fn http_mode(login: &LoginSetup, used: Option<&Used>, key: &FlowKey) -> HttpMode {
    match (used, &login.portal) {
        (Some(u), _) => HttpMode::Known {
            fingerprint: u.fingerprint,
        },
        (None, Some(portal)) => HttpMode::Redirect {
            portal: portal.clone(),
            server: format!("{}:{}", key.dst, key.dport),
        },
        (None, None) => HttpMode::Challenge,
    }
}

/// The accounting line of one login attempt: who, from where, to what, at which rule, how,
/// and the outcome.
fn account(
    key: &FlowKey,
    method: AuthMethod,
    login: &LoginSetup,
    user: Option<String>,
    v: &Verdict,
) {
    log::info!(
        "login {}: user {:?} client {} server {}:{} rule {} method {method} backend {}",
        v.outcome(),
        user.unwrap_or_default(),
        key.src,
        key.dst,
        key.dport,
        login.rule,
        login.login.backend,
    );
}

/// Records a successful login in the cache.
fn remember(
    env: &mut Env<'_>,
    client: common::wire::Ipv4Addr,
    login: &LoginSetup,
    method: AuthMethod,
    user: String,
    fingerprint: u64,
) {
    let made = Made {
        user,
        method,
        rule: login.rule.clone(),
        backend: login.login.backend,
        fingerprint,
    };
    env.cache
        .remember(client, login.scope.clone(), made, env.now_ms);
}

/// Hands an attempt to the verifier, or keeps it in `deferred` while its address has as many
/// attempts being verified as its remaining failure budget (`verifying` is set either way
/// while the verdict comes later, `None`).
fn submit(
    env: &mut Env<'_>,
    key: FlowKey,
    against: &Against,
    verifying: &mut bool,
    deferred: &mut Option<Credentials>,
    credentials: Credentials,
) -> Option<Verdict> {
    if env.limiter.must_wait(key.src, env.now_ms) {
        *deferred = Some(credentials);
        *verifying = true;
        return None;
    }
    let verdict = verify(env.verifier, against, env.limiter, key, credentials);
    *verifying = verdict.is_none();
    verdict
}

/// Hands an attempt to the verifier now: the verdict to answer at once (checked inline, or
/// refused unchecked on a full queue), or `None` while it is queued (the limiter counts it
/// until the proxy collects its verdict).
pub(in crate::proxy) fn verify(
    verifier: &mut Verifier<FlowKey>,
    against: &Against,
    limiter: &mut RateLimiter,
    key: FlowKey,
    credentials: Credentials,
) -> Option<Verdict> {
    match verifier.submit(key, against, credentials) {
        Submitted::Done(v) => Some(v),
        Submitted::Queued => {
            limiter.begin_attempt(key.src);
            None
        }
        Submitted::Full => {
            log::debug!("{key}: verifier queue full, attempt not checked");
            Some(Verdict::Unavailable)
        }
    }
}
