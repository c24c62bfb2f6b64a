#![cfg(feature = "dpdk")]
//! Logins through the real box on the namespace testbed (over `net_af_packet`), with real
//! clients and servers: curl and a headless Chromium in `ct-inside`, nginx in `ct-outside`
//! serving `tests/net/www/` (a page with four PNG images) and a 4 MiB random `big.bin`, and a
//! FreeRADIUS 3.2 on 127.0.0.1 for the box's verifier threads. Every test has a box of its
//! own on a copy of `config/testbed.yaml` (edited as the test says, checked with
//! `cutthrough check-config`); nginx logs every request with its `Authorization` and
//! `Proxy-Authorization` headers (JSON, one line per request).
//!
//! - `curl_virtual_http_af_packet` (about 6 s): `curl -L --netrc-file` (credentials for the
//!   box's origin 198.18.0.254 ONLY) to `http://198.19.0.2/index.html` follows exactly two
//!   redirects (to `http://198.18.0.254:8888/login?rule=web&url=...`, which logs in, and back)
//!   and gets the page byte-exact; curl without credentials then gets the page and 4 MiB
//!   byte-exact at once, spliced; `auth list --json` shows alice (http-basic, rule web, shared);
//!   a wrong password and no password at the box's origin get `401` with the box's challenge;
//!   while logged in, the box removes the header carrying ITS credentials (`Authorization` or
//!   `Proxy-Authorization`) and passes other credentials (bob's) unchanged; after `auth clear
//!   --all` the server is not contacted and the client gets the `302` to the exact login URL.
//!   nginx never saw alice's credentials (every line decoded), the box's accounting lines are
//!   one accepted and one refused login at the virtual origin, and its counters agree.
//! - `browser_virtual_http_af_packet` (about 9 s): headless Chromium driven over the DevTools
//!   protocol (`tests/net/cdp.py`) loads the page: exactly one authentication challenge, from
//!   the box's origin `http://198.18.0.254:8888` (answered with alice's password), never from
//!   the server; the document's hops are round trips page -> login URL -> page, then the page
//!   (more than one round trip when Chromium sent the page request on a spare connection it
//!   had opened before its login: see the next-but-one test; the box's `portal_logins`,
//!   `auth_redirected` and accounting lines must count the same round trips); the page and
//!   its four images load from 198.19.0.2 (natural sizes checked);
//!   a reload (cache off) loads everything again without a challenge, and a `fetch()` of
//!   `big.bin` in the page is byte-exact (length and FNV-1a). Neither Chromium's own record of
//!   the headers it sent nor nginx's log (every request: page, images, favicon) shows an
//!   `Authorization` header; nginx saw exactly the requests the browser made to it but the
//!   one the box answered with its redirect.
//! - `shared_login_and_clear_af_packet` (about 4 s): a `line` login on 2323 lets the `web`
//!   rule (virtual HTTP) and the in-band `http-basic` rule on 8080 through without credentials;
//!   `auth clear 198.18.0.1` ends it and the next request is redirected (exact `Location`);
//!   a rule with `login: rule` (`own`, 8081, in-band) asks (`401`) although the shared login
//!   exists, and takes its own; `auth list` then shows two logins (scopes `shared` and `own`),
//!   `auth clear --all` ends both and both ask again; a login of `own` alone serves neither
//!   the virtual-HTTP rule (redirected), the in-band one (`401`) nor `line` (prompted).
//! - `login_decided_per_request_af_packet` (about 5 s): the box decides whether a client is
//!   logged in when it reads the request, not when the connection opened: a connection
//!   opened BEFORE a login whose request goes out after it reaches the server (`200`; browsers
//!   keep such spare connections: Chromium sent its page request on one right after its
//!   login), and one opened while logged in whose request goes out after `auth clear --all`
//!   gets the redirect and the server sees nothing.
//! - `radius_login_af_packet` (about 25 s): `auth.radius` with two servers, first a UDP port
//!   the test holds and never answers, second a real FreeRADIUS (`tests/net/freeradius.py`,
//!   user carol); timeout 500 ms, 1 retry. carol logs in on 2323 (`backend: radius`) after
//!   server 1 timed out twice (counters: 2 requests, 1 retransmission, 2 timeouts, 1 accept);
//!   a wrong password and alice (a YAML user only) get `Login incorrect.`; at the virtual
//!   origin (the `web` rule, `backend: radius`) carol logs in; on 2325 (`radius-then-local`)
//!   RADIUS's reject of alice is final. FreeRADIUS stopped: a login on 2323 gets
//!   `Authentication unavailable, try again later.` and the box closes within the bound
//!   (2 servers x 2 tries x 500 ms), the virtual origin answers `503`; while a RADIUS attempt
//!   hangs (both servers silent: 2 s), a local login on 2324 and a connection to the
//!   `auth: none` rule on 9000 complete in under 1 s, before the RADIUS attempt's answer; on
//!   2325 alice gets in through the local users. Accounting lines (with `backend`), the box's
//!   `auth_unavailable` and `radius` counters checked (`radius` read from the box's
//!   `--stats-json` file; last, that `cutthrough stats --json` carries it too).
//!
//! Run as root: `cargo test --test e2e_login -- --test-threads=1 --nocapture` (about 45 s,
//! most of it the RADIUS timeouts). Every wait and loop is bounded; servers, Chromium (its whole process group, and
//! anything else naming its profile directory), FreeRADIUS, the box and the testbed are torn
//! down by guards, on failure too.

#[path = "../net/mod.rs"]
mod net;

mod browser;
mod chromium;
mod cli;
mod config;
mod curl;
mod freeradius;
mod held;
mod radius;
mod rig;
mod shared;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use net::{ns, path_str, python, run, Background, BoxProcess, NetLock, TempDir, Testbed};
use net::{BOX_INSIDE_ADDR, CLIENT_ADDR, INSIDE, OUTSIDE, SERVER_ADDR};

use chromium::Chromium;
use cli::*;
use config::*;
use freeradius::FreeRadius;
use rig::Rig;

/// The rules of `config/testbed.yaml` (and those the tests add).
const WEB_PORT: u16 = 80;
const IN_BAND_PORT: u16 = 8080;
const OWN_PORT: u16 = 8081;
const LINE_PORT: u16 = 2323;
const LOCAL_LINE_PORT: u16 = 2324;
const FALLBACK_LINE_PORT: u16 = 2325;
const SPLICE_ONLY_PORT: u16 = 9000;
/// The box's virtual HTTP origin (`auth.virtual_http` of the testbed).
const PORTAL_PORT: u16 = 8888;
const PORTAL_ORIGIN: &str = "http://198.18.0.254:8888";

const USER: &str = "alice";
const PASSWORD: &str = "wonderland";
const ALICE: &str = "alice:wonderland";
const BOB: &str = "bob:other";
/// In FreeRADIUS only.
const CAROL: &str = "carol";
const CAROL_PASSWORD: &str = "radius-pass";

/// The page, and where the box sends a client without a login that asks for it.
const PAGE_URL: &str = "http://198.19.0.2/index.html";
const LOGIN_URL: &str =
    "http://198.18.0.254:8888/login?rule=web&url=http%3A%2F%2F198.19.0.2%2Findex.html";
/// The larger download, written per test.
const BIG: &str = "big.bin";
const BIG_BYTES: u64 = 4 << 20;
/// `tests/net/www/`'s images and their sizes.
const IMAGES: [(&str, u64, u64); 4] = [
    ("red.png", 16, 16),
    ("green.png", 24, 12),
    ("blue.png", 32, 8),
    ("yellow.png", 48, 20),
];
const TITLE: &str = "cutthrough test page";

const WWW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/www");
const CDP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/cdp.py");
const FREERADIUS_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/freeradius.py");
const NGINX: &str = "/usr/sbin/nginx";
const CHROMIUM: &str = "/usr/bin/chromium";
const FREERADIUS: &str = "/usr/sbin/freeradius";
/// Chromium's DevTools port, on 127.0.0.1 in ct-inside.
const CDP_PORT: u16 = 9222;

const RADIUS_SECRET: &str = "e2e-login-secret";
const RADIUS_TIMEOUT: Duration = Duration::from_millis(500);
const RADIUS_TRIES: u32 = 2;
/// The longest a RADIUS attempt may take: 2 servers x 2 tries x 500 ms.
const RADIUS_BOUND: Duration = Duration::from_millis(2 * 2 * 500);

const UNAVAILABLE_LINE: &str = "Authentication unavailable, try again later.";

/// The test's clients and servers in the namespaces (`python3 HELPER CMD ARGS...`; the shared
/// parts in `tests/net/dialogue.py`). Every socket operation has a timeout; every failure
/// exits non-zero with a message. Times are CLOCK_MONOTONIC seconds (`time.monotonic()`),
/// comparable between helper processes.
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/login_helper.py");
