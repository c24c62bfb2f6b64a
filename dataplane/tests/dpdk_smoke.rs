#![cfg(feature = "dpdk")]
//! Smoke test of the DPDK boundary (`dataplane::dpdk`) on virtual devices.
//!
//! DPDK allows one `rte_eal_init` per process, so everything runs in one `#[test]`, in steps.
//! The EAL runs with `--no-huge --no-pci --no-shconf` and a file prefix of its own (test
//! processes run in parallel and must share nothing; `--in-memory` would say the same, but
//! DPDK 22.11 refuses it with `--no-huge`, which implies legacy memory mode). The drivers are not linked into this binary: they are
//! found and loaded by the EAL itself, which is what the `--vdev`s here prove.
//!
//! Devices: `net_ring0`, `net_ring1` and `net_ring2` (with no arguments a ring device's RX
//! queue *i* reads what its TX queue *i* wrote: a loopback), `net_null0` (RX makes 64-byte
//! packets) and, when the test can make a veth pair in a network
//! namespace (root), `net_af_packet0` on `ctt-a0`, whose peer `ctt-b0` sits in namespace
//! `ctt-ns0` with 198.18.99.2/24, and `net_tap0` (interface `ctt-tap0`, no address), the one
//! virtual device here that hashes, for the symmetric-RSS configuration. Every loop is bounded
//! in count and time.
//!
//! The worker loop itself runs here too, unchanged, over `net_ring1` (inside) and `net_ring2`
//! (outside) through [`DpdkQueuePair`]: the bursts DPDK fills are the worker's own
//! [`Burst`]s of [`Mbuf`]s.
use dataplane::testing::{INSIDE, OUTSIDE};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::checksum::checksum;
use common::wire::MacAddr;
use dataplane::context::{Context, ForwardMode};
use dataplane::contract::{Command as WorkerCommand, Rings, Why};
use dataplane::dpdk::{
    lcore_id, tsc, tsc_hz, DpdkError, Eal, Mbuf, Mempool, Port, SYMMETRIC_RSS_KEY,
};
use dataplane::dpdk_port::DpdkQueuePair;
use dataplane::packet::{Burst, Packet};
use dataplane::testing::{arp_request, icmp_echo_frame, Envelope};
use dataplane::testing::{BOX_IN_IP, CLIENT, CLIENT_MAC, SERVER, SERVER_MAC};
use dataplane::verdict::DropReason;
use dataplane::worker::Worker;

const NS: &str = "ctt-ns0";
const ROOT_IF: &str = "ctt-a0";
const NS_IF: &str = "ctt-b0";
const NS_ADDR: &str = "198.18.99.2";
/// The address the namespace is told the DPDK port has (a static neighbour entry).
const DPDK_ADDR: [u8; 4] = [198, 18, 99, 1];

#[test]
fn dpdk_smoke() {
    let _runtime_dir = RuntimeDir; // dropped last: after the EAL cleanup
    let veth = Veth::create();
    let two_cores = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let mut args: Vec<String> = [
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "--vdev=net_ring0",
        "--vdev=net_ring1",
        "--vdev=net_ring2",
        "--vdev=net_null0",
        "--log-level=warning",
    ]
    .map(String::from)
    .to_vec();
    args.extend([
        "-l".to_string(),
        if two_cores { "0-1" } else { "0" }.to_string(),
    ]);
    args.push(format!("--file-prefix={}", prefix()));
    if veth.is_some() {
        args.push(format!("--vdev=net_af_packet0,iface={ROOT_IF}"));
        args.push("--vdev=net_tap0,iface=ctt-tap0".to_string());
    }

    let eal = Eal::init(&args).expect("rte_eal_init with virtual devices");
    assert_eq!(Eal::init(&args).unwrap_err(), DpdkError::AlreadyInitialised);
    assert_eq!(lcore_id(), Some(eal.main_lcore()));
    assert!(tsc_hz() > 0);
    let t0 = tsc();
    assert!(tsc() >= t0);

    let pool =
        Mempool::new(&eal, "ct_smoke", 4095, 256, Mempool::DEFAULT_DATA_ROOM, -1).expect("mempool");
    assert_eq!(pool.in_use(), 0);

    mbuf_api(&pool);
    burst_api(&pool);
    lcores(&eal, two_cores);
    ring_loopback(&eal, &pool);
    worker_on_mbufs(&eal, &pool);
    null_rx(&eal, &pool);
    bad_names(&eal);
    match &veth {
        Some(v) => {
            af_packet(&eal, &pool, v);
            tap_rss(&eal, &pool);
        }
        None => eprintln!("dpdk_smoke: net_af_packet step skipped (no veth: needs root and ip)"),
    }
    assert_eq!(pool.in_use(), 0, "every mbuf is back in the pool");
}

/// A real Ethernet/IPv4/UDP frame, 198.18.0.1:(1024+i) -> 198.19.0.2:9, payload naming `i`.
fn udp_frame(dst: MacAddr, src: MacAddr, from: [u8; 4], to: [u8; 4], i: u16) -> Vec<u8> {
    let payload = format!("cutthrough smoke packet {i:04}");
    let udp_len = 8 + payload.len() as u16;
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + usize::from(ip_len));
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&i.to_be_bytes()); // identification
    f.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]); // DF, TTL 64, UDP, checksum 0 for now
    f.extend_from_slice(&from);
    f.extend_from_slice(&to);
    let ip_sum = checksum(&f[ip_start..ip_start + 20]);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    f.extend_from_slice(&(1024 + i).to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    f.extend_from_slice(payload.as_bytes());
    f
}

const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

fn mbuf_api(pool: &Mempool) {
    let frame = udp_frame(B, A, [198, 18, 0, 1], [198, 19, 0, 2], 7);
    let mut m = Mbuf::from_slice(pool, &frame).expect("from_slice");
    assert_eq!(m.data(), &frame[..]);
    assert_eq!((m.len(), m.pkt_len()), (frame.len(), frame.len()));
    assert!(m.is_contiguous());
    assert_eq!(m.headroom(), usize::from(Mempool::HEADROOM));
    assert_eq!(m.rss_hash(), None, "software packets carry no RSS hash");
    m.set_port(3);
    assert_eq!(m.port(), 3);

    // Strip and restore the Ethernet header, grow and shrink the tail.
    assert!(m.adj(14));
    assert_eq!(m.data(), &frame[14..]);
    m.prepend(14)
        .expect("headroom")
        .copy_from_slice(&frame[..14]);
    assert_eq!(m.data(), &frame[..]);
    m.append(4).expect("tailroom").copy_from_slice(&[0xa5; 4]);
    assert_eq!(&m.data()[frame.len()..], &[0xa5; 4]);
    assert!(m.trim(4));
    m.data_mut()[0] = 0xff;
    assert_eq!(m.data()[0], 0xff);
    assert!(!m.trim(10_000) && !m.adj(10_000) && m.append(100_000).is_none());
    assert_eq!(m.len(), frame.len(), "failed edits change nothing");

    let too_big = vec![0u8; usize::from(pool.max_packet_len()) + 1];
    assert!(matches!(
        Mbuf::from_slice(pool, &too_big),
        Err(DpdkError::NoRoom { .. })
    ));
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

fn burst_api(pool: &Mempool) {
    let mut burst = Burst::<Mbuf, 4>::new();
    for i in 0..4u8 {
        burst
            .push(Mbuf::from_slice(pool, &[i; 60]).unwrap())
            .unwrap();
    }
    assert!(burst.is_full());
    let extra = Mbuf::from_slice(pool, &[9; 60]).unwrap();
    assert!(
        burst.push(extra).is_err(),
        "a full burst gives the mbuf back"
    );
    let taken = burst.consume_front(1).next().unwrap();
    assert_eq!(taken.data()[0], 0);
    let firsts: Vec<u8> = burst.iter().map(|m| m.data()[0]).collect();
    assert_eq!(firsts, [1, 2, 3], "consume_front keeps the order");
    assert_eq!(Packet::data(burst.get(0).unwrap()), &[1; 60][..]);
    assert_eq!(Packet::rss_hash(burst.get(0).unwrap()), None);
    let mut drain = burst.drain();
    assert_eq!(drain.next().unwrap().data()[0], 1);
    drop(drain); // frees the two not taken
    assert!(burst.is_empty());
    assert_eq!(pool.in_use(), 1);
    drop(taken);
    assert_eq!(pool.in_use(), 0);
}

fn lcores(eal: &Eal, two_cores: bool) {
    let workers: Vec<u32> = eal.worker_lcores().collect();
    assert!(matches!(
        eal.launch_on_lcore(eal.main_lcore(), || 0),
        Err(DpdkError::Lcore { .. })
    ));
    if !two_cores {
        assert!(workers.is_empty());
        return;
    }
    assert_eq!(workers, [1]);
    let (tx, rx) = std::sync::mpsc::channel();
    eal.launch_on_lcore(1, move || {
        tx.send(lcore_id()).unwrap();
        7
    })
    .expect("launch");
    assert_eq!(eal.wait_lcore(1).unwrap(), 7);
    assert_eq!(rx.recv().unwrap(), Some(1), "the job ran on lcore 1");
    eal.launch_on_lcore(1, || panic!("a panicking job (expected by the test)"))
        .expect("launch");
    assert_eq!(
        eal.wait_lcore(1).unwrap(),
        -1,
        "a panic is caught and becomes -1"
    );
    // Only the main lcore may launch.
    let e2 = eal.clone();
    let other = std::thread::spawn(move || e2.launch_on_lcore(1, || 0).is_err());
    assert!(other.join().unwrap());
    eal.wait_all().unwrap();
}

fn ring_loopback(eal: &Eal, pool: &Mempool) {
    let mut port = Port::by_name(eal, "net_ring0").expect("net_ring0 is loaded and probed");
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_ring");
    let cfg = port
        .configure(1, 1, 512, 512, 1500, pool)
        .expect("configure net_ring0");
    assert!(!cfg.rss, "one RX queue: no RSS");
    port.start().unwrap();
    assert!(port.link().unwrap().up);

    // 32 distinct frames out, the same 32 back, in order.
    let frames: Vec<Vec<u8>> = (0..32)
        .map(|i| udp_frame(B, A, [198, 18, 0, 1], [198, 19, 0, 2], i))
        .collect();
    let mut out = Burst::<Mbuf, 32>::new();
    for f in &frames {
        out.push(Mbuf::from_slice(pool, f).unwrap()).unwrap();
    }
    assert_eq!(port.tx_burst(0, &mut out), 32);
    assert!(out.is_empty());
    let mut back = Burst::<Mbuf, 64>::new();
    for _ in 0..100 {
        port.rx_burst(0, &mut back);
        if back.len() >= 32 {
            break;
        }
    }
    assert_eq!(back.len(), 32, "net_ring0 loops TX back to RX");
    for (m, f) in back.iter().zip(&frames) {
        assert_eq!(m.data(), &f[..]);
    }
    back.drain().for_each(drop);
    let stats = port.stats().unwrap();
    assert_eq!((stats.opackets, stats.ipackets), (32, 32));
    // (net_ring counts packets only: its byte counters stay 0.)
    let xstats = port.xstats().unwrap();
    assert!(
        xstats.contains(&("tx_good_packets".to_string(), 32)),
        "{xstats:?}"
    );

    // A full ring: what tx_burst cannot send stays in the burst, in order.
    let mut sent = 0;
    let mut unsent = 0;
    for round in 0..40u16 {
        let mut b = Burst::<Mbuf, 32>::new();
        for i in 0..32 {
            let f = udp_frame(B, A, [198, 18, 0, 1], [198, 19, 0, 2], round * 32 + i);
            b.push(Mbuf::from_slice(pool, &f).unwrap()).unwrap();
        }
        let n = port.tx_burst(0, &mut b);
        sent += n;
        if n < 32 {
            assert_eq!(b.len(), 32 - n);
            let first = b.get(0).unwrap().data();
            let id = u16::from_be_bytes([first[18], first[19]]);
            assert_eq!(
                id,
                round * 32 + n as u16,
                "the first unsent is next in order"
            );
            unsent += b.len();
        }
        assert_eq!(pool.in_use() as usize, sent + b.len());
    }
    assert!(unsent > 0 && sent < 40 * 32, "the 1024-slot ring filled up");
    let mut drained = 0;
    for _ in 0..200 {
        let mut b = Burst::<Mbuf, 64>::new();
        let n = port.rx_burst(0, &mut b);
        drained += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(drained, sent);

    // Queue handles: one per queue, and none while reconfiguring.
    let mut rxq = port.rx_queue(0).unwrap();
    assert!(matches!(port.rx_queue(0), Err(DpdkError::PortBusy { .. })));
    assert!(port.rx_queue(1).is_err());
    let mut txq = port.tx_queue(0).unwrap();
    let mut b = Burst::<Mbuf, 8>::new();
    b.push(Mbuf::from_slice(pool, &frames[0]).unwrap()).unwrap();
    let worker = std::thread::spawn(move || {
        let sent = txq.tx_burst(&mut b);
        let mut got = Burst::<Mbuf, 8>::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.is_empty() && Instant::now() < deadline {
            rxq.rx_burst(&mut got);
        }
        (sent, got.len(), rxq, txq)
    });
    let (sent, got, rxq, txq) = worker.join().unwrap();
    assert_eq!((sent, got), (1, 1), "handles work from another thread");
    assert!(matches!(port.stop(), Err(DpdkError::PortBusy { .. })));
    drop((rxq, txq));
    port.stop().unwrap();
    assert!(
        Port::by_name(eal, "net_ring0").is_err(),
        "a port opens once"
    );
    drop(port);
}

/// The worker loop, unchanged, on DPDK: `net_ring1` is the inside port and `net_ring2` the
/// outside one, each a loopback with 1 RX and 2 TX queues (queue 0 the worker's, queue 1 the
/// control plane's), and the testbed's configuration. An ARP request for the box goes to the
/// control ring as the very mbuf DPDK received; an ICMP echo to the server is forwarded out of
/// the outside port, whose loopback brings it back to the worker, which drops it (it is
/// addressed to the server's MAC, not the box's).
fn worker_on_mbufs(eal: &Eal, pool: &Mempool) {
    let mut ports = ["net_ring1", "net_ring2"].map(|name| {
        let mut port = Port::by_name(eal, name).expect("a net_ring device is probed");
        port.configure(1, 2, 512, 512, 1500, pool)
            .expect("configure 1 RX + 2 TX queues");
        port.start().unwrap();
        port
    });
    let macs = [ports[0].mac_addr().unwrap(), ports[1].mac_addr().unwrap()];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/testbed.yaml");
    let config = common::config::load(std::path::Path::new(path)).expect("config/testbed.yaml");
    let ctx = Arc::new(Context::new(&config, &macs, ForwardMode::Full));
    let rings: Rings<Mbuf> = Rings::new(1, 64, 64);
    let full = rings.broadcast(&WorkerCommand::Neighbour {
        iface: OUTSIDE,
        ip: SERVER,
        mac: Some(SERVER_MAC),
    });
    assert_eq!(full, 0);

    // Into the inside port's TX queue 0, which its ring loops back to its RX queue 0, before
    // the worker takes the queues.
    let arp = arp_request(CLIENT_MAC, CLIENT, BOX_IN_IP);
    let to_server = Envelope {
        src_mac: CLIENT_MAC,
        dst_mac: macs[0],
        src: CLIENT,
        dst: SERVER,
        ttl: 64,
    };
    let ping = icmp_echo_frame(&to_server, 1, 1, b"ping");
    let mut wire = Burst::<Mbuf, 2>::new();
    for f in [&arp, &ping] {
        wire.push(Mbuf::from_slice(pool, f).unwrap()).unwrap();
    }
    assert_eq!(ports[0].tx_burst(0, &mut wire), 2);

    let pair = |p: &Port| DpdkQueuePair::new(p.rx_queue(0).unwrap(), p.tx_queue(0).unwrap());
    let mut worker = Worker::new(
        0,
        vec![pair(&ports[0]), pair(&ports[1])],
        ctx,
        rings.worker(0),
    );
    // With the EAL up, the flow table comes from its memory (hugepages when it has them).
    assert!(worker.table().in_dpdk_memory());
    for t in 0..8 {
        worker.poll(1000 + t);
    }

    let msg = rings
        .to_control
        .pop()
        .expect("the ARP request reached control");
    assert_eq!(msg.why, Why::Local);
    assert_eq!((msg.iface, msg.worker), (INSIDE, 0));
    assert_eq!(msg.pkt.data(), &arp[..], "the mbuf round-trips");
    assert!(rings.to_control.pop().is_none());
    let c = worker.counters;
    assert_eq!(
        (c.rx, c.forwarded, c.tx, c.to_control),
        (3, 1, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.drops.get(DropReason::NotForUs), 1, "{c:?}");
    assert_eq!(c.drops.total(), 1, "{c:?}");
    assert_eq!(worker.pending_tx(), 0);
    drop(worker); // gives the queues back

    // The handed-over mbuf and a frame copied into a new one go out again. On net_ring only
    // TX queue 0 loops back to the one RX queue: with the worker gone it is free.
    let mut tx = ports[0].tx_queue(0).unwrap();
    let mut out = Burst::<Mbuf, 2>::new();
    assert!(out.push(msg.pkt).is_ok());
    assert!(out.push(Mbuf::from_slice(pool, &ping).unwrap()).is_ok());
    assert_eq!(tx.tx_burst(&mut out), 2, "both sent");
    let too_big = vec![0u8; usize::from(pool.max_packet_len()) + 1];
    assert!(
        Mbuf::from_slice(pool, &too_big).is_err(),
        "one mbuf or none"
    );
    let mut back = Burst::<Mbuf, 4>::new();
    for _ in 0..100 {
        ports[0].rx_burst(0, &mut back);
        if back.len() >= 2 {
            break;
        }
    }
    let got: Vec<&[u8]> = back.iter().map(|m| m.data()).collect();
    assert_eq!(got, [&arp[..], &ping[..]]);
    back.drain().for_each(drop);
    drop(tx);
    for port in &mut ports {
        port.stop().unwrap();
    }
}

fn null_rx(eal: &Eal, pool: &Mempool) {
    let mut port = Port::by_name(eal, "net_null0").expect("net_null0 is loaded and probed");
    assert_eq!(port.info().unwrap().driver, "net_null");
    port.configure(1, 1, 256, 256, 1500, pool)
        .expect("configure net_null0");
    port.start().unwrap();
    let mut burst = Burst::<Mbuf, 32>::new();
    assert_eq!(port.rx_burst(0, &mut burst), 32);
    assert!(
        burst.iter().all(|m| m.len() == 64),
        "net_null's default packet size"
    );
    assert!(burst.iter().all(|m| m.port() == port.id()));
    assert_eq!(
        port.tx_burst(0, &mut burst),
        32,
        "net_null swallows everything"
    );
    assert!(port.stats().unwrap().ipackets >= 32);
    let mac = port.mac_addr().unwrap();
    let _ = port.promiscuous(true); // ENOTSUP is allowed on vdevs
    let _ = port.set_mac_addr(mac);
}

fn bad_names(eal: &Eal) {
    let err = Port::by_name(eal, "net_nosuch0").unwrap_err();
    assert!(matches!(err, DpdkError::NoSuchPort { .. }));
    let text = err.to_string();
    assert!(text.contains("net_nosuch0"), "{text}");
    assert_eq!(SYMMETRIC_RSS_KEY[..4], [0x6d, 0x5a, 0x6d, 0x5a]);
}

/// net_af_packet on the root end of a veth: the namespace sends real UDP to the DPDK port,
/// and the DPDK port sends real UDP into the namespace (counted by its kernel).
fn af_packet(eal: &Eal, pool: &Mempool, veth: &Veth) {
    let mut port = Port::by_name(eal, "net_af_packet0").expect("net_af_packet0 probed");
    assert_eq!(port.info().unwrap().driver, "net_af_packet");
    port.configure(1, 1, 512, 512, 1500, pool)
        .expect("configure net_af_packet0");
    port.start().unwrap();
    let mac = port.mac_addr().unwrap();
    let dpdk_ip = DPDK_ADDR.map(|b| b.to_string()).join(".");
    veth.ip(&[
        "-n",
        NS,
        "neigh",
        "replace",
        &dpdk_ip,
        "lladdr",
        &mac.to_string(),
        "dev",
        NS_IF,
    ]);

    // Namespace -> DPDK: bash's /dev/udp sends one datagram.
    let payload = "hello from the namespace";
    let sent = Command::new("ip")
        .args(["netns", "exec", NS, "bash", "-c"])
        .arg(format!("printf '{payload}' > /dev/udp/{dpdk_ip}/9"))
        .status()
        .expect("run bash in the namespace");
    assert!(sent.success());
    let mut burst = Burst::<Mbuf, 32>::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut found = false;
    while !found && Instant::now() < deadline {
        port.rx_burst(0, &mut burst);
        found = burst.iter().any(|m| m.data().ends_with(payload.as_bytes()));
        burst.drain().for_each(drop);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(found, "the namespace's UDP datagram reached net_af_packet0");

    // DPDK -> namespace: frames to ctt-b0's MAC, counted by the kernel there.
    let ns_mac = veth.ns_mac();
    let before = veth.ns_rx_packets();
    let mut out = Burst::<Mbuf, 8>::new();
    for i in 0..8 {
        let f = udp_frame(ns_mac, mac, DPDK_ADDR, [198, 18, 99, 2], i);
        out.push(Mbuf::from_slice(pool, &f).unwrap()).unwrap();
    }
    assert_eq!(port.tx_burst(0, &mut out), 8);
    let deadline = Instant::now() + Duration::from_secs(3);
    while veth.ns_rx_packets() < before + 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        veth.ns_rx_packets() >= before + 8,
        "ctt-b0 received the 8 frames"
    );
    assert!(port.stats().unwrap().opackets >= 8);
    port.stop().unwrap();
}

/// This process's own EAL file prefix.
fn prefix() -> String {
    format!("ct-smoke-{}", std::process::id())
}

/// Removes the EAL's (empty, with `--no-shconf`) runtime directory of this process.
struct RuntimeDir;

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let mut bases = vec!["/var/run/dpdk".to_string(), "/tmp/dpdk".to_string()];
        if let Ok(xdg) = std::env::var("XDG_RUNTIME_DIR") {
            bases.push(format!("{xdg}/dpdk"));
        }
        for base in bases {
            let _ = std::fs::remove_dir_all(format!("{base}/{}", prefix()));
        }
    }
}

/// Symmetric RSS is configured on a device that can hash (net_tap; its probe complains about
/// the multiq qdisc and rte_flow, which this kernel lacks: expected).
fn tap_rss(eal: &Eal, pool: &Mempool) {
    let mut port = Port::by_name(eal, "net_tap0").expect("net_tap0 probed");
    let info = port.info().unwrap();
    assert!(info.has_rss && info.max_rx_queues >= 2, "{info:?}");
    let one = port.configure(1, 1, 512, 512, 1500, pool).unwrap();
    assert!(!one.rss, "one queue: no RSS");
    let cfg = port.configure(2, 2, 512, 512, 1500, pool).unwrap();
    assert!(cfg.rss, "two queues on a hashing device: RSS on");
    assert!(cfg.rss_hf != 0 && cfg.rss_hf & !info.rss_offloads == 0);
    port.start().unwrap();
    let queues = (port.rx_queue(0).unwrap(), port.rx_queue(1).unwrap());
    drop(queues);
    port.stop().unwrap();
}

/// The veth pair and namespace, removed on drop (also when an assertion fails).
struct Veth;

impl Veth {
    /// Makes ctt-a0 (root namespace, no address) <-> ctt-b0 (in ctt-ns0, 198.18.99.2/24);
    /// `None` if this process may not (not root, or no `ip`).
    fn create() -> Option<Veth> {
        Veth::teardown(); // leftovers of an interrupted run
        let ok = Command::new("ip")
            .args(["netns", "add", NS])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let veth = Veth;
        veth.ip(&[
            "link", "add", ROOT_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS,
        ]);
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{ROOT_IF}/disable_ipv6"),
            "1",
        );
        veth.ip(&["link", "set", ROOT_IF, "up"]);
        veth.ip(&[
            "-n",
            NS,
            "addr",
            "add",
            &format!("{NS_ADDR}/24"),
            "dev",
            NS_IF,
        ]);
        veth.ip(&["-n", NS, "link", "set", NS_IF, "up"]);
        veth.ip(&["-n", NS, "link", "set", "lo", "up"]);
        Some(veth)
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ns_mac(&self) -> MacAddr {
        let text = self.ip(&["-n", NS, "-o", "link", "show", NS_IF]);
        let mac = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("a link/ether address");
        let mut bytes = [0u8; 6];
        for (b, part) in bytes.iter_mut().zip(mac.split(':')) {
            *b = u8::from_str_radix(part, 16).expect("hex");
        }
        MacAddr(bytes)
    }

    fn ns_rx_packets(&self) -> u64 {
        let path = format!("/sys/class/net/{NS_IF}/statistics/rx_packets");
        let out = Command::new("ip")
            .args(["netns", "exec", NS, "cat", &path])
            .output()
            .expect("read the namespace's counters");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a packet count")
    }

    fn teardown() {
        let _ = Command::new("ip").args(["link", "del", ROOT_IF]).output();
        let _ = Command::new("ip").args(["netns", "del", NS]).output();
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        Veth::teardown();
    }
}
