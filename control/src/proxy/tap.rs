//! The sequence numbers of one leg, read off the segments that cross it.
//!
//! smoltcp has no public accessor for a socket's sequence variables, but every segment a leg
//! sends or receives passes through our device, so the leg keeps the four numbers of
//! DESIGN.md §4 (and the timestamps, windows and handshake options) itself.

use common::seq::SeqNumber;
use common::wire::ipv4::{Ipv4Packet, Protocol};
use common::wire::tcp::{flags, SynOptions, TcpOption, TcpPacket};

/// What the handshake on this leg announced, and the latest numbers each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegTap {
    /// The options of the box's SYN or SYN-ACK on this leg.
    pub box_syn: Option<SynOptions>,
    /// The options of the peer's SYN or SYN-ACK.
    pub peer_syn: Option<SynOptions>,
    /// Next sequence number the box will send (its highest seq + length).
    pub snd_nxt: Option<SeqNumber>,
    /// Next byte the box expects from the peer (its latest acknowledgement).
    pub rcv_nxt: Option<SeqNumber>,
    /// The peer's highest seq + length, and its highest acknowledgement of the box's data.
    pub peer_nxt: Option<SeqNumber>,
    pub peer_acked: Option<SeqNumber>,
    /// The latest TSval each side sent.
    pub box_tsval: Option<u32>,
    pub peer_tsval: Option<u32>,
    /// The latest raw window field each side sent (after the handshake).
    pub box_window: u16,
    pub peer_window: u16,
    /// The largest raw window field the box announced (after the handshake): what the peer
    /// may still have in flight when the legs go away.
    pub box_window_max: u16,
    /// The peer sent FIN or RST.
    pub peer_fin: bool,
    pub peer_rst: bool,
}

fn later(cur: Option<SeqNumber>, new: SeqNumber) -> Option<SeqNumber> {
    Some(cur.map_or(new, |c| c.max(new)))
}

/// The parts of a TCP segment the tap reads.
struct Seen {
    flags: u8,
    ack: SeqNumber,
    end: SeqNumber,
    window: u16,
    tsval: Option<u32>,
    syn: Option<SynOptions>,
}

fn read(ip_packet: &[u8]) -> Option<Seen> {
    let ip = Ipv4Packet::new_checked(ip_packet).ok()?;
    if ip.protocol() != Protocol::TCP {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let fl = tcp.flags();
    let mut tsval = None;
    for (_, o) in tcp.option_iter().map_while(Result::ok) {
        if let TcpOption::Timestamps { tsval: v, .. } = o {
            tsval = Some(v);
        }
    }
    let syn = if fl & flags::SYN != 0 {
        SynOptions::parse(tcp.options()).ok()
    } else {
        None
    };
    Some(Seen {
        flags: fl,
        ack: tcp.ack_number(),
        end: tcp.seq_number() + tcp.segment_len(),
        window: tcp.window_len(),
        tsval,
        syn,
    })
}

impl LegTap {
    /// A segment the box sent on this leg.
    pub fn outgoing(&mut self, ip_packet: &[u8]) {
        let Some(s) = read(ip_packet) else { return };
        if s.syn.is_some() {
            self.box_syn = s.syn;
        } else {
            self.box_window = s.window;
            self.box_window_max = self.box_window_max.max(s.window);
        }
        if s.flags & flags::RST == 0 {
            self.snd_nxt = later(self.snd_nxt, s.end);
        }
        if s.flags & flags::ACK != 0 {
            self.rcv_nxt = later(self.rcv_nxt, s.ack);
        }
        self.box_tsval = s.tsval.or(self.box_tsval);
    }

    /// A segment the peer sent, as the leg's stack gets it.
    pub fn incoming(&mut self, ip_packet: &[u8]) {
        let Some(s) = read(ip_packet) else { return };
        if s.syn.is_some() {
            self.peer_syn = s.syn;
        } else {
            self.peer_window = s.window;
        }
        self.peer_nxt = later(self.peer_nxt, s.end);
        if s.flags & flags::ACK != 0 {
            self.peer_acked = later(self.peer_acked, s.ack);
        }
        self.peer_tsval = s.tsval.or(self.peer_tsval);
        self.peer_fin |= s.flags & flags::FIN != 0;
        self.peer_rst |= s.flags & flags::RST != 0;
    }

    /// Everything the box sent on this leg has been acknowledged.
    pub fn all_acked(&self) -> bool {
        matches!((self.snd_nxt, self.peer_acked), (Some(s), Some(a)) if a >= s)
    }

    /// Both handshake segments were seen and both offered timestamps.
    pub fn timestamps(&self) -> bool {
        matches!((self.box_syn, self.peer_syn), (Some(b), Some(p)) if b.timestamps.is_some() && p.timestamps.is_some())
    }

    /// The shifts in use (peer's own, box's own): zero unless both offered window scaling.
    pub fn shifts(&self) -> (u8, u8) {
        match (
            self.peer_syn.and_then(|p| p.window_scale),
            self.box_syn.and_then(|b| b.window_scale),
        ) {
            (Some(p), Some(b)) => (p, b),
            _ => (0, 0),
        }
    }
}
