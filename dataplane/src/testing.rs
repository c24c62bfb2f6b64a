//! Frame builders for tests and the simulation: whole Ethernet frames with correct
//! checksums, built from the wire module's own emitters; the testbed's addresses; workers on
//! in-memory NICs.

use crate::context::Context;
use crate::contract::Rings;
use crate::port::{MemNic, MemQueue};
use crate::worker::Worker;
use common::config::Iface;
use common::wire::arp::{ArpRepr, Operation};
use common::wire::ethernet::{build_frame as ethernet, EtherType};
use common::wire::icmp::{IcmpEchoRepr, IcmpErrorRepr, Message};
use common::wire::ipv4::{Ipv4Repr, Protocol};
use common::wire::tcp::TcpPacket;
use common::wire::{Ipv4Addr, MacAddr};
use std::sync::Arc;

/// The addresses of `config/testbed.yaml`: the box's two ports, a client inside and a server
/// outside.
pub const BOX_IN: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const BOX_OUT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
pub const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x01]);
pub const SERVER_MAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x02]);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
pub const BOX_IN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
pub const BOX_OUT_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 254);
/// The interfaces of `config/testbed.yaml`'s two ports.
pub const INSIDE: Iface = Iface(0);
pub const OUTSIDE: Iface = Iface(1);

/// One worker per queue of `inside` (and of `outside`, which has as many): worker `i` polls
/// queue `i` of each NIC and speaks on ring `i`, as the box lays its workers out on real ports.
pub fn mem_workers(
    inside: &Arc<MemNic>,
    outside: &Arc<MemNic>,
    ctx: &Arc<Context>,
    rings: &Rings<Vec<u8>>,
) -> Vec<Worker<MemQueue>> {
    assert_eq!(inside.queues(), outside.queues(), "one queue pair a worker");
    (0..inside.queues())
        .map(|i| {
            Worker::new(
                i as u16,
                vec![inside.queue(i), outside.queue(i)],
                Arc::clone(ctx),
                rings.worker(i),
            )
        })
        .collect()
}

/// NOP, NOP, timestamps (TSval, TSecr): a Linux data segment's options.
pub fn ts_option(tsval: u32, tsecr: u32) -> [u8; 12] {
    let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&tsval.to_be_bytes());
    o[8..12].copy_from_slice(&tsecr.to_be_bytes());
    o
}

/// The L2 and L3 envelope of a test frame.
#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
}

fn ipv4(e: &Envelope, protocol: Protocol, l4: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src: e.src,
        dst: e.dst,
        protocol,
        payload_len: l4.len(),
        ttl: e.ttl,
        ident: 0x4242,
    };
    let mut ip = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ip);
    ip[20..].copy_from_slice(l4);
    ethernet(e.src_mac, e.dst_mac, EtherType::IPV4, &ip)
}

/// A TCP segment.
#[derive(Debug, Clone, Default)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Already padded to a multiple of four bytes.
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

pub fn tcp_frame(e: &Envelope, t: &Tcp<'_>) -> Vec<u8> {
    assert!(t.options.len().is_multiple_of(4) && t.options.len() <= 40);
    let hl = 20 + t.options.len();
    let mut seg = vec![0u8; hl + t.payload.len()];
    seg[0..2].copy_from_slice(&t.sport.to_be_bytes());
    seg[2..4].copy_from_slice(&t.dport.to_be_bytes());
    seg[4..8].copy_from_slice(&t.seq.to_be_bytes());
    seg[8..12].copy_from_slice(&t.ack.to_be_bytes());
    seg[12] = ((hl / 4) as u8) << 4;
    seg[13] = t.flags;
    seg[14..16].copy_from_slice(&t.window.to_be_bytes());
    seg[20..hl].copy_from_slice(t.options);
    seg[hl..].copy_from_slice(t.payload);
    TcpPacket::new_unchecked(&mut seg[..]).fill_checksum(e.src.0, e.dst.0);
    ipv4(e, Protocol::TCP, &seg)
}

pub fn udp_frame(e: &Envelope, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]); // no checksum (allowed for UDP over IPv4)
    d.extend_from_slice(payload);
    ipv4(e, Protocol::UDP, &d)
}

pub fn icmp_echo_frame(e: &Envelope, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    icmp_echo(e, false, ident, seq_no, data)
}

pub fn icmp_echo_reply_frame(e: &Envelope, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    icmp_echo(e, true, ident, seq_no, data)
}

fn icmp_echo(e: &Envelope, is_reply: bool, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let repr = IcmpEchoRepr {
        is_reply,
        ident,
        seq_no,
        data,
    };
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b);
    ipv4(e, Protocol::ICMP, &b)
}

/// An ICMP error about `offending` (an Ethernet frame: its IPv4 datagram is quoted).
pub fn icmp_error_frame(e: &Envelope, msg: Message, code: u8, offending: &[u8]) -> Vec<u8> {
    let repr = IcmpErrorRepr::new(msg, code, &offending[14..]);
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b);
    ipv4(e, Protocol::ICMP, &b)
}

pub fn arp_request(src_mac: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr {
        op: Operation::REQUEST,
        sha: src_mac,
        spa,
        tha: MacAddr::ZERO,
        tpa,
    };
    let mut b = [0u8; ArpRepr::BUFFER_LEN];
    repr.emit(&mut b);
    ethernet(src_mac, MacAddr::BROADCAST, EtherType::ARP, &b)
}
