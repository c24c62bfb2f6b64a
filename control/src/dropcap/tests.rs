//! The pcapng ring read back with a small reader of its own: block structure, the packets'
//! fields and options, rotation within the size, the oldest file overwritten, a restart
//! continuing the ring, I/O errors; then the whole path from a worker's drop to the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use dataplane::testing::{INSIDE, OUTSIDE};

/// The testbed's interfaces, as the box names them in its captures.
const NAMES: &[&str] = &["inside", "outside"];

/// A new directory of its own under the system's temp dir, removed when dropped. Never one
/// that existed before: `create_dir` fails rather than reuse (and later remove) it.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d =
            std::env::temp_dir().join(format!("ct-dropcap-{}-{name}-{nanos}", std::process::id()));
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cfg(path: PathBuf, file_size: u64, files: u32, snaplen: u32) -> config::DropCapture {
    config::DropCapture {
        path,
        file_size,
        files,
        rate: 100,
        snaplen,
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// A block's options, walked to `opt_endofopt`, which must end the block exactly.
fn options(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut o = 0;
    loop {
        assert!(o + 4 <= b.len(), "options run past the block");
        let (code, len) = (u16_at(b, o), usize::from(u16_at(b, o + 2)));
        if code == 0 {
            assert_eq!((len, o + 4), (0, b.len()), "opt_endofopt ends the block");
            return out;
        }
        let padded = (len + 3) & !3;
        assert!(o + 4 + padded <= b.len());
        assert!(b[o + 4 + len..o + 4 + padded].iter().all(|&x| x == 0));
        out.push((code, b[o + 4..o + 4 + len].to_vec()));
        o += 4 + padded;
    }
}

fn text_option(opts: &[(u16, Vec<u8>)], code: u16) -> Option<String> {
    opts.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
}

#[derive(Debug, PartialEq, Eq)]
struct Epb {
    interface: u32,
    ts_us: u64,
    orig_len: u32,
    data: Vec<u8>,
    comment: String,
    flags: u32,
}

/// Reads one file: its interface names and packets. Panics unless it is a well-formed
/// pcapng file as this writer makes them (one little-endian section, the two interfaces
/// first).
fn read(path: &Path) -> (Vec<String>, Vec<Epb>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut o = 0;
    while o < b.len() {
        assert!(o + 12 <= b.len(), "a partial block at {o}");
        let (ty, len) = (u32_at(&b, o), u32_at(&b, o + 4) as usize);
        assert!(
            len >= 12 && len % 4 == 0 && o + len <= b.len(),
            "block at {o}"
        );
        assert_eq!(u32_at(&b, o + len - 4) as usize, len, "trailer at {o}");
        blocks.push((ty, b[o + 8..o + len - 4].to_vec()));
        o += len;
    }
    let (ty, shb) = &blocks[0];
    assert_eq!(*ty, 0x0A0D_0D0A);
    assert_eq!(u32_at(shb, 0), 0x1A2B_3C4D, "little-endian magic");
    assert_eq!((u16_at(shb, 4), u16_at(shb, 6)), (1, 0), "version 1.0");
    assert_eq!(i64::from_le_bytes(shb[8..16].try_into().unwrap()), -1);
    let app = text_option(&options(&shb[16..]), 4).unwrap();
    assert!(app.starts_with("cutthrough "), "{app}");
    let mut names = Vec::new();
    let mut packets = Vec::new();
    for (ty, body) in &blocks[1..] {
        match ty {
            1 => {
                assert!(packets.is_empty(), "interfaces come before packets");
                assert_eq!(u16_at(body, 0), 1, "Ethernet");
                let opts = options(&body[8..]);
                assert_eq!(text_option(&opts, 9).map(|s| s.into_bytes()), Some(vec![6]));
                names.push(text_option(&opts, 2).unwrap());
            }
            6 => {
                let interface = u32_at(body, 0);
                assert!((interface as usize) < names.len());
                let ts_us = u64::from(u32_at(body, 4)) << 32 | u64::from(u32_at(body, 8));
                let (cap, orig_len) = (u32_at(body, 12) as usize, u32_at(body, 16));
                assert!(cap as u32 <= orig_len);
                let padded = (cap + 3) & !3;
                let data = body[20..20 + cap].to_vec();
                let opts = options(&body[20 + padded..]);
                let flags = opts
                    .iter()
                    .find(|(c, _)| *c == 2)
                    .map(|(_, v)| u32_at(v, 0));
                packets.push(Epb {
                    interface,
                    ts_us,
                    orig_len,
                    data,
                    comment: text_option(&opts, 1).unwrap(),
                    flags: flags.unwrap(),
                });
            }
            t => panic!("unexpected block type {t}"),
        }
    }
    (names, packets)
}

#[test]
fn blocks_are_well_formed_and_frames_kept_to_snaplen() {
    let dir = Dir::new("blocks");
    let path = dir.0.join("drops.pcapng");
    let mut c = DropCapture::open(&cfg(path.clone(), 1 << 20, 2, 64), NAMES);
    assert!(c.is_writing());
    let long: Vec<u8> = (0..100u8).collect();
    let short = [0xabu8; 30];
    c.write(
        INSIDE,
        3,
        DropReason::OutOfWindow,
        &long,
        1_700_000_000_123_456,
    );
    c.write(
        OUTSIDE,
        0,
        DropReason::NotForUs,
        &short,
        1_700_000_001_000_000,
    );
    c.flush();
    let (names, p) = read(&path);
    assert_eq!(names, ["inside", "outside"]);
    assert_eq!(
        p,
        [
            Epb {
                interface: 0,
                ts_us: 1_700_000_000_123_456,
                orig_len: 100,
                data: long[..64].to_vec(),
                comment: "drop: out_of_window, worker 3".into(),
                flags: 1,
            },
            Epb {
                interface: 1,
                ts_us: 1_700_000_001_000_000,
                orig_len: 30,
                data: short.to_vec(),
                comment: "drop: not_for_us, worker 0".into(),
                flags: 1,
            },
        ]
    );
    assert_eq!(c.counters.captured, 2);
    assert_eq!(
        c.counters.bytes,
        std::fs::metadata(&path).unwrap().len(),
        "bytes counts what is in the file"
    );
}

#[test]
fn the_largest_packet_fits_the_overhead_validation_allows() {
    let longest = DropReason::ALL
        .iter()
        .map(|r| r.name().len())
        .max()
        .unwrap();
    let comment = format!("drop: {}, worker {}", "x".repeat(longest), u16::MAX);
    let mut b = Vec::new();
    pcapng::header(
        &mut b,
        "cutthrough 999.999.999",
        &["inside", "outside"],
        65535,
    );
    pcapng::packet(&mut b, 1, u64::MAX, &[0; 70000], 65535, &comment);
    assert!(b.len() as u64 <= 65535 + config::DropCapture::FILE_OVERHEAD);
}

/// The packet sequence numbers in a file (the first four bytes of each frame).
fn seqs(path: &Path) -> Vec<u32> {
    read(path)
        .1
        .iter()
        .map(|p| u32::from_be_bytes(p.data[..4].try_into().unwrap()))
        .collect()
}

#[test]
fn rotation_keeps_every_file_whole_and_within_its_size_and_overwrites_the_oldest() {
    let dir = Dir::new("ring");
    let path = dir.0.join("d.pcapng");
    let cfg = cfg(path.clone(), 2048, 3, 256);
    let mut c = DropCapture::open(&cfg, NAMES);
    for i in 0..100u32 {
        let mut frame = vec![0x5a; 200];
        frame[..4].copy_from_slice(&i.to_be_bytes());
        c.write(INSIDE, 0, DropReason::Truncated, &frame, 1);
    }
    c.flush();
    assert!(!cfg.file(3).exists(), "three files, not four");
    let per_file: Vec<Vec<u32>> = (0..3)
        .map(|i| {
            let f = cfg.file(i);
            let size = std::fs::metadata(&f).unwrap().len();
            assert!(size <= 2048, "{} has {size} bytes", f.display());
            seqs(&f)
        })
        .collect();
    // About 7 packets a file: the ring has gone round several times, and holds the newest
    // packets, in order, across the files from the one after the current one.
    let cur = (0..3).find(|&i| cfg.file(i) == c.current_file()).unwrap();
    let ring: Vec<u32> = (1..=3)
        .flat_map(|k| per_file[((cur + k) % 3) as usize].clone())
        .collect();
    assert_eq!(*ring.last().unwrap(), 99);
    assert!(ring.windows(2).all(|w| w[1] == w[0] + 1), "{ring:?}");
    assert!(ring[0] > 50, "the oldest were overwritten: {ring:?}");
    // A file was closed only when the next packet would not fit.
    let block = 48 + 200 + "drop: truncated, worker 0".len().next_multiple_of(4) as u64;
    for i in (0..3).filter(|&i| i != cur) {
        let size = std::fs::metadata(cfg.file(i)).unwrap().len();
        assert!(size + block > 2048, "file {i} closed at {size} bytes");
    }
    assert_eq!(c.counters.captured, 100);
    assert!(c.counters.files_rotated >= 10, "{:?}", c.counters);
    assert_eq!(c.counters.errors, 0);
}

#[test]
fn a_restart_begins_after_the_newest_file() {
    let dir = Dir::new("restart");
    let cfg = cfg(dir.0.join("d.pcapng"), 1 << 20, 3, 256);
    assert_eq!(next_index(&cfg), 0, "no files yet");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for (i, age) in [(0, 10), (1, 30), (2, 20)] {
        let f = File::create(cfg.file(i)).unwrap();
        f.set_modified(old + std::time::Duration::from_secs(age))
            .unwrap();
    }
    let c = DropCapture::open(&cfg, NAMES);
    assert_eq!(c.current_file(), cfg.file(2), "after file 1, the newest");
    drop(c);
    // Now 2 is the newest: the next run begins on 0 again.
    assert_eq!(next_index(&cfg), 0);
}

#[test]
fn an_io_error_stops_the_capture_and_is_counted() {
    // Writes to /dev/full fail when the buffer is flushed.
    let mut c = DropCapture::open(&cfg("/dev/full".into(), 1 << 20, 1, 64), NAMES);
    assert!(c.is_writing());
    c.write(INSIDE, 0, DropReason::NoFlow, &[0; 60], 1);
    c.flush();
    assert!(!c.is_writing());
    c.write(INSIDE, 0, DropReason::NoFlow, &[0; 60], 2);
    c.flush();
    assert_eq!((c.counters.errors, c.counters.lost), (1, 1));

    // A directory that cannot be made: the capture never starts.
    let dir = Dir::new("error");
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let mut c = DropCapture::open(&cfg(file.join("d.pcapng"), 1 << 20, 2, 64), NAMES);
    assert!(!c.is_writing());
    c.write(INSIDE, 0, DropReason::NoFlow, &[0; 60], 1);
    assert_eq!(c.counters.errors, 1);
    assert_eq!((c.counters.captured, c.counters.lost), (0, 1));
}

/// A worker drops malformed frames, hands the rate's worth to control over the ring, and
/// control writes them with their reasons; the statistics count both sides.
#[test]
fn from_a_workers_drop_to_the_file() {
    use crate::settings::Settings;
    use common::wire::MacAddr;
    use dataplane::context::ForwardMode;
    use dataplane::contract::Rings;
    use dataplane::port::MemNic;
    use dataplane::testing::{mem_workers, tcp_frame, Tcp};

    use crate::plane::{ControlPlane, RingIo};
    use crate::testing::CLIENT_TO_SERVER;

    let dir = Dir::new("pipeline");
    let path = dir.0.join("drops.pcapng");
    let mut config = crate::testing::testbed_config();
    config.capture.drops = Some(cfg(path.clone(), 1 << 20, 2, 64));
    config.capture.drops.as_mut().unwrap().rate = 4;
    let box_in = MacAddr([2, 0, 0, 0, 0, 1]);
    let settings = Arc::new(Settings::new(
        config,
        &[box_in, MacAddr([2, 0, 0, 0, 0, 2])],
        ForwardMode::Full,
    ));
    let inside = MemNic::new(1, 64);
    let outside = MemNic::new(1, 64);
    let rings: Rings<Vec<u8>> = Rings::new(1, 64, 64);
    let mut w = mem_workers(&inside, &outside, &settings.workers, &rings)
        .pop()
        .unwrap();
    let mut plane: ControlPlane<Vec<u8>> = ControlPlane::new(settings);
    let env = CLIENT_TO_SERVER;
    // An ACK for no connection (no_flow), a SYN to a denied port (policy_deny), by turns.
    let frames: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            let t = Tcp {
                sport: 40000 + i,
                dport: if i % 2 == 0 { 5201 } else { 7000 },
                flags: if i % 2 == 0 { 0x10 } else { 0x02 },
                ..Tcp::default()
            };
            tcp_frame(&env, &t)
        })
        .collect();
    for f in &frames {
        assert!(inside.inject(f.clone()));
    }
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    w.poll(1_000);
    let mut io = RingIo::new(&rings, |f: &[u8]| Some(f.to_vec()));
    assert_eq!(plane.poll(&rings, 1_000, &mut io), 4, "the rate's worth");
    plane.finish(&rings);
    let (_, p) = read(&path);
    let comments: Vec<&str> = p.iter().map(|e| e.comment.as_str()).collect();
    assert_eq!(
        comments,
        [
            "drop: no_flow, worker 0",
            "drop: policy_deny, worker 0",
            "drop: no_flow, worker 0",
            "drop: policy_deny, worker 0",
        ]
    );
    for (e, f) in p.iter().zip(&frames) {
        assert_eq!((e.interface, e.orig_len as usize), (0, f.len()));
        assert_eq!(e.data, f[..f.len().min(64)]);
    }
    assert!(p.iter().all(|e| e.ts_us >= t0 && e.ts_us < t0 + 60_000_000));
    let c = plane.dropcap.as_ref().unwrap();
    assert_eq!(c.counters.captured, 4);
    assert_eq!(w.counters.drops_captured, 4);
    assert_eq!(w.counters.drops.total(), 10);
}
