//! The simulation's randomness, faults and links (see the harness docs in `mod.rs`).

use super::*;

/// A small seeded PRNG (splitmix64): reproducible, no dependency.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed ^ 0x5eed_5eed_5eed_5eed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (never for `p <= 0`, without drawing).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// Uniform in [0, n) (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A deterministic pseudo-random payload of `len` bytes for one stream of one seed.
pub fn payload(seed: u64, stream: u64, len: usize) -> Vec<u8> {
    let mut rng = SimRng::new(seed.wrapping_mul(0x100_0000_01b3) ^ stream.rotate_left(17));
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// The fast path's key of the connection from the client's port `cport` to the server's
/// `dport`, in the client → server direction.
pub fn flow_key(cport: u16, dport: u16) -> FlowKey {
    let v4 = |a: Ipv4Address| {
        let [a, b, c, d] = a.octets();
        common::wire::Ipv4Addr::new(a, b, c, d)
    };
    FlowKey::new(v4(CLIENT_IP), cport, v4(SERVER_IP), dport)
}

/// The stream number of one direction of the connection from client port `cport`.
pub fn stream_id(cport: u16, dir: Dir) -> u64 {
    (u64::from(cport) << 1) | dir as u64
}

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToServer = 0,
    ServerToClient = 1,
}

// ---------------------------------------------------------------------------------------------
// Links

/// Faults applied to every frame, independently in each direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Probability that a frame is lost.
    pub drop: f64,
    /// Probability that a frame is delivered twice (each copy delayed independently).
    pub duplicate: f64,
    /// Probability that a frame is held back 1..=`max_delay_ms` ms, so later frames overtake
    /// it.
    pub reorder: f64,
    pub max_delay_ms: u32,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        max_delay_ms: 0,
    };

    /// Drop 2 %, duplicate 1 %, reorder 5 % by up to 5 ms.
    pub const HOSTILE: Faults = Faults {
        drop: 0.02,
        duplicate: 0.01,
        reorder: 0.05,
        max_delay_ms: 5,
    };
}

/// What an [`Intercept`] decides for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Through the link's random [`Faults`] as usual.
    Pass,
    /// Lost.
    Drop,
    /// Delivered `n` times (n ≥ 1), no random faults.
    Copies(u32),
    /// Delivered once, this many ms late, no random faults.
    Delay(u64),
}

/// A targeted fault: called with the time, the hop and the frame for every frame put on a
/// link (ARP included), before the random faults. For scripted scenarios ("drop the first
/// data segment").
pub type Intercept = Box<dyn FnMut(u64, Hop, &[u8]) -> Fate>;

/// One direction of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hop {
    ClientToBox,
    BoxToClient,
    ServerToBox,
    BoxToServer,
}

impl Hop {
    pub const ALL: [Hop; 4] = [
        Hop::ClientToBox,
        Hop::BoxToClient,
        Hop::ServerToBox,
        Hop::BoxToServer,
    ];
    /// The box port this hop touches.
    pub fn side(self) -> Side {
        match self {
            Hop::ClientToBox | Hop::BoxToClient => Side::Inside,
            Hop::ServerToBox | Hop::BoxToServer => Side::Outside,
        }
    }
}

/// What a link did to the frames sent over one hop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopStats {
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub delivered: u64,
}

/// The two links as one timed queue: frames keyed on (delivery time, sequence).
#[derive(Debug, Default)]
pub(super) struct Wire {
    pub(super) queue: BTreeMap<(u64, u64), (Hop, Vec<u8>)>,
    pub(super) seq: u64,
    pub(super) stats: [HopStats; 4],
}

impl Wire {
    pub(super) fn push(&mut self, due: u64, hop: Hop, frame: Vec<u8>) {
        self.seq += 1;
        self.queue.insert((due, self.seq), (hop, frame));
    }

    pub(super) fn pop_due(&mut self, now: u64) -> Option<(Hop, Vec<u8>)> {
        let (&(due, _), _) = self.queue.first_key_value()?;
        if due > now {
            return None;
        }
        let (_, (hop, frame)) = self.queue.pop_first()?;
        self.stats[hop as usize].delivered += 1;
        Some((hop, frame))
    }

    pub(super) fn next_due(&self) -> Option<u64> {
        self.queue.first_key_value().map(|(&(due, _), _)| due)
    }
}

pub(super) fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= 14 && frame[12..14] == [0x08, 0x06]
}
