//! `browser_virtual_http_af_packet`.

use super::*;

#[test]
fn browser_virtual_http_af_packet() {
    let mut rig = Rig::up("e2e-login-browser", &testbed_yaml(), &[WEB_PORT], &[]);
    let t = Instant::now();
    let (report, context) = load_in_chromium(&mut rig, t);
    let navs = report["navigations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(navs.len(), 3, "navigate, reload, fetch: {context}");
    let server_prefix = format!("http://{SERVER_ADDR}/");
    let mut round_trips = 0;
    for (i, nav) in navs[..2].iter().enumerate() {
        let n = check_navigation(i, nav, &server_prefix, &context);
        if i == 0 {
            round_trips = n;
        }
    }
    check_fetch(&rig, &report);
    let served = check_nginx(&rig, &navs, &server_prefix);
    check_the_end(&mut rig, round_trips, served, t);
}

/// Starts Chromium and has `tests/net/cdp.py` load the page twice (navigate, reload) and
/// fetch big.bin in it; its report, and the context for assertion messages.
fn load_in_chromium(rig: &mut Rig, t: Instant) -> (serde_json::Value, String) {
    let chromium_dir = rig.tmp.join("chromium");
    rig.chromium = Some(Chromium::start(&chromium_dir, CDP_PORT));
    let port = CDP_PORT.to_string();
    let big_url = format!("/{BIG}");
    let out = ns(
        INSIDE,
        python(),
        &[
            CDP,
            "--port",
            &port,
            "--url",
            PAGE_URL,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--navigations",
            "2",
            "--fetch",
            &big_url,
            "--timeout",
            "60",
            "--settle",
            "1.5",
        ],
        Duration::from_secs(80),
    );
    let chromium = rig
        .chromium
        .as_ref()
        .map(Chromium::describe)
        .unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "cdp.py printed no JSON ({e}): {}\n{chromium}\n{}",
            out.describe(),
            rig.logs()
        )
    });
    let context = format!(
        "{}\n--- cdp.py report ---\n{report:#}\n{chromium}\n{}",
        out.describe(),
        rig.logs()
    );
    assert!(
        out.success() && report["error"].is_null(),
        "cdp.py failed: {context}"
    );
    eprintln!(
        "[browser] {} loaded the page through the box ({:.1} s)",
        report["browser"],
        t.elapsed().as_secs_f64()
    );
    (report, context)
}

/// Checks one load of the page (`i` 0: navigate, 1: reload); the round trips to the box's
/// origin of the first load's document (0 for the reload).
fn check_navigation(
    i: usize,
    nav: &serde_json::Value,
    server_prefix: &str,
    context: &str,
) -> usize {
    let kind = nav["kind"].as_str().unwrap_or("?");
    check_document(kind, nav, server_prefix, context);
    let challenges = check_challenges(i, kind, nav);
    let requests = nav["requests"].as_array().cloned().unwrap_or_default();
    check_requests(i, kind, nav, &requests, server_prefix, context);
    let round_trips = if i == 0 {
        document_round_trips(&requests)
    } else {
        0
    };
    eprintln!(
        "[browser] {kind}: {} ms, {} request(s), {} challenge(s), 4 images complete",
        nav["load_ms"],
        requests.len(),
        challenges
    );
    round_trips
}

/// The document and its four images, from the server, natural sizes checked.
fn check_document(kind: &str, nav: &serde_json::Value, server_prefix: &str, context: &str) {
    let doc = &nav["document"];
    assert_eq!(
        (doc["url"].as_str(), doc["title"].as_str()),
        (Some(PAGE_URL), Some(TITLE)),
        "{kind}: the document: {context}"
    );
    let images = doc["images"].as_array().cloned().unwrap_or_default();
    let got: Vec<(String, bool, u64, u64)> = images
        .iter()
        .map(|im| {
            (
                im["src"].as_str().unwrap_or("").to_string(),
                im["complete"].as_bool().unwrap_or(false),
                im["naturalWidth"].as_u64().unwrap_or(0),
                im["naturalHeight"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want: Vec<(String, bool, u64, u64)> = IMAGES
        .iter()
        .map(|(name, w, h)| (format!("{server_prefix}{name}"), true, *w, *h))
        .collect();
    assert_eq!(got, want, "{kind}: the images: {context}");
}

/// Who asked for credentials: the box's origin once, on the first load only. Returns how
/// many challenges there were.
fn check_challenges(i: usize, kind: &str, nav: &serde_json::Value) -> usize {
    let challenges = nav["challenges"].as_array().cloned().unwrap_or_default();
    if i == 0 {
        assert!(
            challenges.len() == 1
                && challenges[0]["origin"] == PORTAL_ORIGIN
                && challenges[0]["source"] == "Server"
                && challenges[0]["realm"] == "cutthrough"
                && challenges[0]["scheme"]
                    .as_str()
                    .map(str::to_ascii_lowercase)
                    == Some("basic".to_string())
                && challenges[0]["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("{PORTAL_ORIGIN}/login?"))),
            "navigate: exactly one challenge, from {PORTAL_ORIGIN}, expected: {challenges:#?}"
        );
    } else {
        assert!(
            challenges.is_empty(),
            "{kind}: no challenge expected: {challenges:#?}"
        );
    }
    challenges.len()
}

/// Every request to the server completed from the server (but the first load's first,
/// which the box redirected); the headers Chromium put on the wire: no credentials for the
/// server.
fn check_requests(
    i: usize,
    kind: &str,
    nav: &serde_json::Value,
    requests: &[serde_json::Value],
    server_prefix: &str,
    context: &str,
) {
    for r in requests {
        let url = r["url"].as_str().unwrap_or("");
        let redirected_by_box = i == 0 && url == PAGE_URL && r["status"] == 302;
        if url.starts_with(server_prefix) && !redirected_by_box {
            assert!(
                r["error"].is_null()
                    && r["remote"] == SERVER_ADDR
                    && matches!(r["status"].as_u64(), Some(200 | 404)),
                "{kind}: request {r} did not complete from the server: {context}"
            );
        }
    }
    // The headers Chromium put on the wire: no credentials for the server.
    for h in nav["sent_headers"].as_array().into_iter().flatten() {
        if h["host"] == SERVER_ADDR {
            assert!(
                h["authorization"] == false && h["proxy_authorization"] == false,
                "{kind}: Chromium sent credentials to the server: {h}"
            );
        }
    }
}

/// The first load's document: its hops and how many round trips to the box's origin.
fn document_round_trips(requests: &[serde_json::Value]) -> usize {
    // The document's hops (one request id): to the box's origin and back, then the
    // page. More than one round trip when the page request went out on a connection
    // Chromium had opened before its login (see
    // `login_decided_per_request_af_packet`): reported, checked against the box's
    // counters below.
    let doc = requests
        .first()
        .map(|r| r["id"].clone())
        .unwrap_or_default();
    let hops: Vec<(String, Option<u64>, Option<String>)> = requests
        .iter()
        .filter(|r| r["id"] == doc)
        .map(|r| {
            (
                r["url"].as_str().unwrap_or("").to_string(),
                r["status"].as_u64(),
                r["redirected_to"].as_str().map(str::to_string),
            )
        })
        .collect();
    let round_trips = hops.len().saturating_sub(1) / 2;
    // The box judges a request when it comes: a page request on a connection Chromium
    // opened before its login is passed on, not sent to log in again.
    assert_eq!(
        round_trips, 1,
        "one round trip to the box's origin: {hops:?}"
    );
    let mut want = Vec::new();
    for _ in 0..round_trips {
        want.push((PAGE_URL.to_string(), Some(302), Some(LOGIN_URL.to_string())));
        want.push((LOGIN_URL.to_string(), Some(302), Some(PAGE_URL.to_string())));
    }
    want.push((PAGE_URL.to_string(), Some(200), None));
    assert!(
        round_trips >= 1 && hops == want,
        "navigate: the redirect chain (page -> {LOGIN_URL} -> page, then the page): \
                 {hops:#?}"
    );
    round_trips
}

/// The `fetch()` of big.bin in the page: byte-exact (length and FNV-1a).
fn check_fetch(rig: &Rig, report: &serde_json::Value) {
    let big = rig.file(BIG);
    let fetched = &report["fetch"];
    assert_eq!(
        (
            fetched["status"].as_u64(),
            fetched["length"].as_u64(),
            fetched["fnv1a32"].as_u64()
        ),
        (Some(200), Some(BIG_BYTES), Some(u64::from(fnv1a32(&big)))),
        "fetch() of big.bin in the page: {fetched}"
    );
}

/// nginx: exactly the requests the browser made to it (all but the redirected one), and none
/// with credentials; each image twice. Returns how many requests it served.
fn check_nginx(rig: &Rig, navs: &[serde_json::Value], server_prefix: &str) -> usize {
    let to_server: Vec<String> = navs
        .iter()
        .flat_map(|n| n["requests"].as_array().cloned().unwrap_or_default())
        .filter(|r| {
            r["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(server_prefix))
                && r["remote"] == SERVER_ADDR
                && r["redirected_to"] != LOGIN_URL
        })
        .map(|r| {
            r["url"]
                .as_str()
                .unwrap_or("")
                .replacen(server_prefix, "/", 1)
        })
        .collect();
    let entries = rig.nginx_wait(to_server.len());
    std::thread::sleep(Duration::from_millis(300));
    let entries_now = rig.nginx_entries();
    assert_eq!(
        entries_now.len(),
        entries.len(),
        "nginx is still logging requests: {entries_now:#?}"
    );
    let mut logged: Vec<String> = entries
        .iter()
        .map(|e| {
            let r = e["request"].as_str().unwrap_or("");
            r.split(' ').nth(1).unwrap_or("").to_string()
        })
        .collect();
    let mut wanted = to_server.clone();
    logged.sort();
    wanted.sort();
    assert_eq!(
        logged, wanted,
        "nginx's requests and the browser's to 198.19.0.2 differ: nginx {entries:#?}"
    );
    for e in &entries {
        assert!(
            e["authorization"] == "" && e["proxy_authorization"] == "",
            "nginx got credentials: {e}"
        );
    }
    for (name, _, _) in IMAGES {
        let n = logged.iter().filter(|p| *p == &format!("/{name}")).count();
        assert_eq!(
            n, 2,
            "nginx should have served {name} twice (load and reload): {logged:?}"
        );
    }
    entries.len()
}

/// The login, the accounting lines and the final counters: one login at the box's origin
/// per round trip.
fn check_the_end(rig: &mut Rig, round_trips: usize, served: usize, t: Instant) {
    let list = logins();
    assert_eq!(list.len(), 1, "auth list --json: {list:#?}");
    check_login(&list[0], USER, "http-basic", "web", "shared", "local");
    let portal = format!("{BOX_INSIDE_ADDR}:{PORTAL_PORT}");
    // One login at the box's origin per round trip (Chromium answered the challenge once
    // and then sent the credentials it had for the box's origin by itself).
    rig.check_login_lines(&[(
        account("accepted", USER, &portal, "web", "http-basic", "local"),
        round_trips,
    )]);
    rig.chromium = None;
    let rt = round_trips as u64;
    rig.stop_with_portal_counts(rt, rt);
    eprintln!(
        "[browser] done: {round_trips} round trip(s) to the box's origin{}, nginx served {} \
         requests, none with credentials ({:.1} s)",
        if round_trips > 1 {
            " (the page request went out on a connection opened before the login, which the \
             box redirected again)"
        } else {
            ""
        },
        served,
        t.elapsed().as_secs_f64()
    );
}
