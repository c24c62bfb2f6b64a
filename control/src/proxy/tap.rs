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
    /// The window field of the peer's SYN or SYN-ACK (never scaled), and whether a later
    /// segment has given [`LegTap::peer_window`] since.
    pub peer_syn_window: u16,
    pub peer_window_seen: bool,
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
            self.peer_syn_window = s.window;
        } else {
            self.peer_window = s.window;
            self.peer_window_seen = true;
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
    /// The bytes the peer's latest window offers: its SYN's window (RFC 7323 §2.2: never
    /// scaled) until it sends something after the handshake. A server that has only answered
    /// the box's SYN has offered that much, not nothing.
    pub fn peer_window_bytes(&self) -> u64 {
        if self.peer_window_seen {
            u64::from(self.peer_window) << self.shifts().0
        } else {
            u64::from(self.peer_syn_window)
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::Ipv4Addr;
    use dataplane::testing::{tcp_frame, Envelope, Tcp, BOX_OUT, SERVER, SERVER_MAC};

    /// The server's segment `t` as the box's server leg gets it (the IP datagram).
    fn from_server(t: &Tcp<'_>) -> Vec<u8> {
        let e = Envelope {
            src_mac: SERVER_MAC,
            dst_mac: BOX_OUT,
            src: SERVER,
            dst: Ipv4Addr::new(198, 18, 0, 1),
            ttl: 64,
        };
        tcp_frame(&e, t)[14..].to_vec()
    }

    #[test]
    fn a_peer_that_only_answered_the_syn_offers_its_syn_window() {
        let mut tap = LegTap::default();
        let wscale = [3, 3, 10, 1];
        let synack = Tcp {
            flags: flags::SYN | flags::ACK,
            window: 65160,
            options: &wscale,
            ..Tcp::default()
        };
        tap.incoming(&from_server(&synack));
        assert_eq!(tap.peer_window_bytes(), 65160, "unscaled, and not zero");
        let box_syn = [3, 3, 2, 1];
        tap.outgoing(&from_server(&Tcp {
            flags: flags::SYN,
            options: &box_syn,
            ..Tcp::default()
        }));
        tap.incoming(&from_server(&Tcp {
            flags: flags::ACK,
            window: 64,
            ..Tcp::default()
        }));
        assert_eq!(
            tap.peer_window_bytes(),
            64 << 10,
            "then scaled by its shift"
        );
        tap.incoming(&from_server(&Tcp {
            flags: flags::ACK,
            window: 0,
            ..Tcp::default()
        }));
        assert_eq!(tap.peer_window_bytes(), 0, "a zero window is a zero window");
    }
}
