use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Instant;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber,
};

use common::flow::FlowKey;
use common::wire::tcp::SynOptions;
use common::wire::Ipv4Addr;

use super::*;
use crate::proxy::cookie::rebuilt_syn;

fn key() -> FlowKey {
    FlowKey::new(
        Ipv4Addr::new(198, 18, 0, 2),
        40_000,
        Ipv4Addr::new(198, 19, 0, 2),
        2323,
    )
}

/// Parses what a leg sent (checksum included).
fn parsed(ip: &[u8]) -> TcpRepr<'_> {
    let p = Ipv4Packet::new_checked(ip).expect("IPv4");
    let (src, dst) = (p.src_addr(), p.dst_addr());
    let t = TcpPacket::new_checked(&ip[p.header_len() as usize..]).expect("TCP");
    TcpRepr::parse(
        &t,
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        &ChecksumCapabilities::default(),
    )
    .expect("a valid segment, checksum included")
}

/// The client's ACK of the SYN-ACK with `data`, as an IP datagram.
fn ack_with(k: &FlowKey, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: k.sport,
        dst_port: k.dport,
        control: TcpControl::None,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: Some(TcpSeqNumber(ack as i32)),
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: data,
    };
    let (src, dst) = (
        Ipv4Address::from_bits(k.src.0),
        Ipv4Address::from_bits(k.dst.0),
    );
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut p, &caps);
    let mut t = TcpPacket::new_unchecked(p.payload_mut());
    tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
    buf
}

/// A client leg answers a SYN that offers `scale`, then takes 3000 bytes: returns the
/// window-scale option of its SYN-ACK and the window field of its next segment.
fn handshake_and_data(scale: Option<u8>) -> (Option<u8>, u16) {
    let k = key();
    let now = Instant::from_millis(1_000);
    let syn = SynOptions {
        mss: Some(1460),
        window_scale: scale,
        sack_permitted: true,
        timestamps: None,
    };
    let mut leg = Leg::client_leg(k.dst, k.dport, 1500, false, false, 7, now);
    leg.input(rebuilt_syn(&k, 100, 64_240, &syn, None));
    let sent: Vec<Vec<u8>> = leg.poll(now).collect();
    let synack = parsed(&sent[0]);
    let isn = synack.seq_number.0 as u32;
    let announced = synack.window_scale;
    leg.input(ack_with(&k, 101, isn.wrapping_add(1), &[7u8; 3000]));
    let sent: Vec<Vec<u8>> = leg.poll(now).collect();
    let ack = parsed(sent.last().expect("an acknowledgement"));
    assert_eq!(ack.ack_number.map(|a| a.0 as u32), Some(101 + 3000));
    (announced, ack.window_len)
}

/// With window scaling on, the leg announces WINDOW_SHIFT and its windows (smoltcp's, in its
/// own shift) are rescaled to it, rounded down: 128 KiB - 3000 free, in units of 2^4.
#[test]
fn a_leg_announces_its_shift_and_rescales_its_windows() {
    let free = (BUFFER - 3000) as u32;
    let (announced, window) = handshake_and_data(Some(7));
    assert_eq!(announced, Some(WINDOW_SHIFT));
    let stack = (free >> STACK_SHIFT) as u16;
    assert_eq!(window, stack >> (WINDOW_SHIFT - STACK_SHIFT));
    let seen = u32::from(window) << WINDOW_SHIFT;
    assert!(
        seen <= free && free - seen < 1 << WINDOW_SHIFT,
        "{seen} of {free}"
    );
}

/// Without window scaling (the client offered none), nothing is rewritten.
#[test]
fn without_window_scaling_the_windows_are_untouched() {
    let (announced, window) = handshake_and_data(None);
    assert_eq!(announced, None);
    assert_eq!(window, u16::MAX, "min(free, 65535) unscaled");
}
