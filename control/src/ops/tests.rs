use super::*;
use crate::testing::CLIENT_TO_SERVER;
use common::wire::MacAddr;
use dataplane::context::ForwardMode;
use dataplane::port::{MemNic, MemQueue};
use dataplane::testing::{tcp_frame, Tcp};
use dataplane::worker::Worker;

const BOX_IN: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const BOX_OUT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

fn testbed() -> PathBuf {
    PathBuf::from(crate::testing::TESTBED)
}

struct Bed {
    inside: Arc<MemNic>,
    rings: Rings<Vec<u8>>,
    workers: Vec<Worker<MemQueue>>,
    plane: ControlPlane<Vec<u8>>,
    ops: Ops,
    dir: PathBuf,
}

impl Bed {
    fn new(workers: usize) -> Bed {
        let cfg = common::config::load(&testbed()).unwrap();
        let settings = Arc::new(Settings::new(cfg, &[BOX_IN, BOX_OUT], ForwardMode::Full));
        let inside = MemNic::new(workers, 4096);
        let outside = MemNic::new(workers, 4096);
        let rings = Rings::new(workers, 1024, 64);
        let ws = dataplane::testing::mem_workers(&inside, &outside, &settings.workers, &rings);
        let dir = std::env::temp_dir().join(format!(
            "ct-ops-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("box.yaml");
        std::fs::copy(testbed(), &file).unwrap();
        let ops = Ops::new(
            OpsConfig {
                config_file: Some(file),
                stats_json: Some(dir.join("stats.json")),
                lcores: (1..=workers as u32).collect(),
                ..Default::default()
            },
            ws.iter().map(|w| w.stats_slot()).collect(),
        );
        Bed {
            inside,
            rings,
            workers: ws,
            plane: ControlPlane::new(settings),
            ops,
            dir,
        }
    }

    fn turn(&mut self, now: u32) {
        for w in &mut self.workers {
            w.poll(now);
        }
        self.ops
            .turn(&mut self.plane, &self.rings, IoCounters::default(), &|| {
                vec![
                    ("inside".to_string(), PortCounters::default()),
                    ("outside".to_string(), PortCounters::default()),
                ]
            });
    }

    fn syn(&self, sport: u16, dport: u16) {
        let e = CLIENT_TO_SERVER;
        let t = Tcp {
            sport,
            dport,
            seq: 1000,
            flags: common::wire::tcp::flags::SYN,
            window: 64000,
            ..Tcp::default()
        };
        assert!(self.inside.inject(tcp_frame(&e, &t)));
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn flow_queries() {
    let q = FlowQuery::parse("").unwrap();
    assert_eq!(q, FlowQuery::default());
    let q = FlowQuery::parse("20").unwrap();
    assert_eq!((q.limit, q.filter), (20, FlowFilter::default()));
    let q = FlowQuery::parse("500,198.18.0.0/24:9000").unwrap();
    assert_eq!(q.limit, FLOWS_MAX);
    assert_eq!(q.filter.port, Some(9000));
    assert_eq!(FlowQuery::parse(&q.to_params()).unwrap(), q);
    // A lone number above the cap is a port filter.
    assert_eq!(FlowQuery::parse("9000").unwrap().filter.port, Some(9000));
    assert_eq!(FlowQuery::parse(":9000").unwrap().filter.port, Some(9000));
    assert!(FlowQuery::parse("x,1.2.3.4").is_err());
}

/// What DPDK writes for a prepared value (its JSON).
fn tel_json(v: &TelValue) -> serde_json::Value {
    match v {
        TelValue::U64(x) => serde_json::json!(x),
        TelValue::Int(x) => serde_json::json!(x),
        TelValue::Str(s) => serde_json::json!(s),
        TelValue::Dict(d) => {
            serde_json::Value::Object(d.iter().map(|(k, v)| (k.clone(), tel_json(v))).collect())
        }
        TelValue::Array(a) => serde_json::Value::Array(a.iter().map(tel_json).collect()),
    }
}

#[test]
fn listings_and_reports_survive_telemetry() {
    let row = |i: u64| FlowRow {
        worker: 0,
        client: format!("198.18.0.1:{}", 40000 + i),
        server: "198.19.0.2:9000".into(),
        phase: "spliced".into(),
        state: "established".into(),
        delta1: 4_000_000_000,
        delta2: i,
        idle_ms: 12,
    };
    let l = FlowListing {
        total: 30,
        matched: 12,
        complete: true,
        flows: (0..12).map(row).collect(),
    };
    let v = l.to_tel().prepare();
    assert_eq!(FlowListing::from_json(&tel_json(&v)).unwrap(), l);
    assert!(serde_json::to_string(&tel_json(&v)).unwrap().len() < 16 * 1024);
    // A full listing still fits in one telemetry reply.
    let full = FlowListing {
        flows: (0..FLOWS_MAX as u64).map(row).collect(),
        ..l.clone()
    };
    let json = serde_json::to_string(&tel_json(&full.to_tel().prepare())).unwrap();
    assert!(json.len() < 16 * 1024, "{} bytes", json.len());
    let text = l.to_text();
    assert!(text.contains("198.18.0.1:40000"));
    assert!(text.contains("12 of 12 matching flows shown (30 in the flow tables)"));

    let r = Report::new(&Stats::default(), None, &[]);
    let back: Report =
        serde_json::from_value(tel_json(&json_to_tel(&serde_json::json!(r)).prepare())).unwrap();
    assert_eq!(back, r);
}

#[test]
fn live_stats_come_from_the_workers_slots() {
    let mut b = Bed::new(2);
    for i in 0..6 {
        b.syn(40000 + i, 5201);
    }
    b.syn(40100, 22); // denied
    b.turn(1_000);
    b.turn(1_200);
    let s = b.ops.stats(
        &b.plane,
        &b.rings,
        IoCounters::default(),
        Default::default(),
    );
    assert_eq!(s.flows.active, 6);
    assert_eq!(s.workers.len(), 2);
    assert_eq!(
        s.workers
            .iter()
            .map(|w| w.counters.flows_created)
            .sum::<u64>(),
        6
    );
    assert_eq!(s.drops["policy_deny"], 1);
    assert_eq!(s.rings.to_control_capacity, 1024);
    // The first turn refreshed the telemetry snapshot and wrote the JSON file.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.dir.join("stats.json")).unwrap()).unwrap();
    assert!(json.get("flows").is_some() && json.get("rings").is_some());
    assert!(matches!(b.ops.hub.stats(), TelValue::Dict(_)));
    assert!(
        matches!(b.ops.hub.drops(), TelValue::Dict(d) if d.iter().any(|(k, _)| k == "policy_deny"))
    );
}

#[test]
fn a_flow_request_is_answered_by_every_worker() {
    let mut b = Bed::new(2);
    for i in 0..30 {
        b.syn(40000 + i, 5201 + i % 3);
    }
    b.turn(1_000);
    let hub = Arc::clone(&b.ops.hub);
    let asker = std::thread::spawn(move || {
        let q = FlowQuery::parse("10,:5202").unwrap();
        hub.flows(q, Duration::from_secs(20))
    });
    let mut now = 1_000;
    while !asker.is_finished() {
        now += 1;
        b.turn(now);
        std::thread::sleep(Duration::from_micros(200));
    }
    let l = asker.join().unwrap();
    assert!(l.complete, "{l:?}");
    assert_eq!((l.total, l.matched, l.flows.len()), (30, 10, 10));
    assert!(l
        .flows
        .iter()
        .all(|f| f.server.ends_with(":5202") && f.phase == "pass" && f.state == "syn_sent"));
}

#[test]
fn sighup_reload_good_and_bad() {
    let mut b = Bed::new(2);
    let file = b.ops.cfg.config_file.clone().unwrap();
    // A broken file: refused with check-config's words, the policy stays.
    std::fs::write(&file, "policy: [").unwrap();
    let expected = common::config::load(&file).unwrap_err().to_string();
    assert_eq!(b.ops.reload(&mut b.plane), Err(expected));
    assert_eq!(b.plane.proxy.settings().generation(), 0);
    assert!(b.rings.commands.iter().all(|r| r.is_empty()));

    // A good one: 5201 denied from now on, and the workers take it between bursts.
    let text = std::fs::read_to_string(testbed()).unwrap();
    std::fs::write(&file, text.replace("\"5201-5210\"", "\"5202-5210\"")).unwrap();
    b.syn(40000, 5201);
    b.turn(1_000);
    assert_eq!(b.ops.reload(&mut b.plane), Ok(1));
    assert_eq!(b.plane.proxy.settings().generation(), 1);
    b.turn(1_001); // control queues the new context
    b.turn(1_002); // the workers apply it between bursts
    assert!(b.workers.iter().all(|w| w.policy_generation() == 1));
    b.syn(40001, 5201);
    b.turn(1_003);
    b.turn(1_200); // the workers publish every 100 ms
    let s = b.ops.stats(
        &b.plane,
        &b.rings,
        IoCounters::default(),
        Default::default(),
    );
    assert_eq!(
        s.flows.active, 1,
        "the old flow stays, the new SYN is denied"
    );
    assert_eq!(s.drops["policy_deny"], 1);
    assert_eq!(s.policy_generation, 1);
    // The SIGHUP flag is what the loop looks at.
    std::fs::write(&file, "nonsense: 1").unwrap();
    b.ops.reload_requested.store(true, Ordering::Relaxed);
    b.turn(1_201);
    assert_eq!(b.plane.proxy.settings().generation(), 1);
    assert!(matches!(b.ops.hub.config(), TelValue::Dict(d)
        if d.iter().any(|(k, v)| k == "last_reload"
            && matches!(v, TelValue::Str(s) if s.starts_with("refused: ")))));
}

#[test]
fn login_clear_parameters() {
    use crate::auth::Clear;
    use crate::ops::AuthOp;
    assert_eq!(AuthOp::parse_clear("all"), Ok(AuthOp::Clear(Clear::All)));
    assert_eq!(
        AuthOp::parse_clear("user=alice"),
        Ok(AuthOp::Clear(Clear::User("alice".into())))
    );
    assert_eq!(
        AuthOp::parse_clear(" 198.18.0.1 "),
        Ok(AuthOp::Clear(Clear::Client(common::wire::Ipv4Addr::new(
            198, 18, 0, 1
        ))))
    );
    for bad in ["", "user=", "198.18.0", "everyone"] {
        assert!(AuthOp::parse_clear(bad).is_err(), "{bad:?}");
    }
}

/// A login request waits for control's answer (here, a thread playing control) and a
/// request nobody answers comes back empty-handed after its deadline, never hangs.
#[test]
fn a_login_request_is_answered_by_control_or_times_out() {
    use crate::ops::AuthOp;
    let hub = std::sync::Arc::new(Hub::default());
    let h = std::sync::Arc::clone(&hub);
    let control = std::thread::spawn(move || {
        for _ in 0..2000 {
            if let Some(op) = h.take_auth_op() {
                assert_eq!(op, AuthOp::List);
                h.publish_auth(serde_json::json!({ "logins": [] }));
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    });
    let v = hub.auth(AuthOp::List, std::time::Duration::from_secs(5));
    assert!(control.join().unwrap());
    assert_eq!(v, serde_json::json!({ "logins": [] }));
    let t0 = std::time::Instant::now();
    let none = hub.auth(AuthOp::List, std::time::Duration::from_millis(50));
    assert_eq!(none, serde_json::Value::Null);
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
}

/// The listing survives DPDK's telemetry, which drops objects inside arrays: the rows are
/// keyed by index, and the client reads them back in order.
#[test]
fn login_listings_survive_telemetry() {
    use crate::auth::Login;
    let logins: Vec<Login> = (0..12)
        .map(|i| Login {
            user: format!("user{i}"),
            client: format!("198.18.0.{i}"),
            method: "line".into(),
            rule: "line-auth".into(),
            scope: "shared".into(),
            backend: "radius-then-local".into(),
            since_ms: 1000 + i,
            idle_ms: i,
            connections: i,
        })
        .collect();
    let reply = crate::ops::logins_reply(&logins);
    let through = tel_json(&json_to_tel(&reply).prepare());
    let rows = crate::ops::logins_of(&through);
    assert_eq!(rows.len(), 12, "{through}");
    assert_eq!(
        rows[10]["user"], "user10",
        "in index order, not string order"
    );
    assert_eq!(rows[3]["connections"], 3);
    assert_eq!(rows[3]["backend"], "radius-then-local");
    assert_eq!(through["total"], 12);
}
