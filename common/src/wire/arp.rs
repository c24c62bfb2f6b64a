//! ARP (RFC 826), restricted to Ethernet hardware addresses and IPv4 protocol addresses: the
//! only kind the box answers or sends.
//!
//! Panic rule: after [`ArpPacket::new_checked`] succeeded no accessor panics. The check
//! rejects other hardware/protocol formats, so every address sits at a fixed offset and the
//! fixed 28-byte layout is all the accessors rely on. Ethernet pads ARP to 46 bytes: a longer
//! buffer is accepted and the tail ignored. [`ArpRepr::emit`] panics on a buffer shorter than
//! [`ArpRepr::BUFFER_LEN`], which is a caller's sizing bug, not a wire condition.

use super::{be16, be32, mac_at, put16, put32, Ipv4Addr, MacAddr, WireError};

/// ARP opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operation(pub u16);

impl Operation {
    pub const REQUEST: Operation = Operation(1);
    pub const REPLY: Operation = Operation(2);
}

/// Hardware type "Ethernet (10Mb)", the value every Ethernet stack uses.
pub const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4 (the EtherType).
pub const PTYPE_IPV4: u16 = 0x0800;

mod field {
    use core::ops::Range;

    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: usize = 14;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: usize = 24;
    pub const PACKET_LEN: usize = 28;
}

/// A view over an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after checking its length and that it is Ethernet/IPv4.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Length first, so that any short buffer is `Truncated` whatever its first bytes say.
    pub fn check(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < field::PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if self.hardware_type() != HTYPE_ETHERNET
            || self.protocol_type() != PTYPE_IPV4
            || self.hardware_len() != 6
            || self.protocol_len() != 4
        {
            return Err(WireError::BadArp);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE)
    }

    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE)
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> Operation {
        Operation(be16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address.
    pub fn sha(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol address.
    pub fn spa(&self) -> Ipv4Addr {
        Ipv4Addr(be32(self.buffer.as_ref(), field::SPA))
    }

    /// Target hardware address (zero in a request).
    pub fn tha(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol address.
    pub fn tpa(&self) -> Ipv4Addr {
        Ipv4Addr(be32(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    pub fn set_operation(&mut self, op: Operation) {
        put16(self.buffer.as_mut(), field::OPER, op.0);
    }

    pub fn set_sha(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    pub fn set_spa(&mut self, addr: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::SPA, addr.0);
    }

    pub fn set_tha(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    pub fn set_tpa(&mut self, addr: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::TPA, addr.0);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for ArpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An Ethernet/IPv4 ARP request or reply, as the control plane reads and builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub op: Operation,
    pub sha: MacAddr,
    pub spa: Ipv4Addr,
    pub tha: MacAddr,
    pub tpa: Ipv4Addr,
}

impl ArpRepr {
    /// Bytes [`ArpRepr::emit`] writes (before Ethernet padding).
    pub const BUFFER_LEN: usize = field::PACKET_LEN;

    /// Reads a checked packet. Opcodes other than request and reply (RARP, InARP) are
    /// `BadArp`: the box has no use for them and must not answer them.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self, WireError> {
        let op = packet.operation();
        if op != Operation::REQUEST && op != Operation::REPLY {
            return Err(WireError::BadArp);
        }
        Ok(ArpRepr {
            op,
            sha: packet.sha(),
            spa: packet.spa(),
            tha: packet.tha(),
            tpa: packet.tpa(),
        })
    }

    /// Writes the 28-byte packet at the start of `buf`; bytes after it are left alone.
    ///
    /// # Panics
    /// If `buf` is shorter than [`ArpRepr::BUFFER_LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        assert!(buf.len() >= Self::BUFFER_LEN, "ARP emit buffer too short");
        put16(buf, field::HTYPE, HTYPE_ETHERNET);
        put16(buf, field::PTYPE, PTYPE_IPV4);
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        let mut p = ArpPacket::new_unchecked(buf);
        p.set_operation(self.op);
        p.set_sha(self.sha);
        p.set_spa(self.spa);
        p.set_tha(self.tha);
        p.set_tpa(self.tpa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Linux ARP request "who-has 192.168.1.1 tell 192.168.1.10", as it follows the Ethernet
    /// header (target hardware address zero, padded to 46 bytes).
    const REQUEST: [u8; 46] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0, 0xa8, 0x01, 0x0a, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00,
    ];

    /// The reply 192.168.1.1 (02:00:00:00:00:01) sends back.
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0, 0xa8, 0x01, 0x01, //
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0, 0xa8, 0x01, 0x0a,
    ];

    const HOST: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const BOX: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);

    #[test]
    fn deconstruct_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), Operation::REQUEST);
        assert_eq!(p.sha(), HOST);
        assert_eq!(p.spa(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(p.tha(), MacAddr::ZERO);
        assert_eq!(p.tpa(), Ipv4Addr::new(192, 168, 1, 1));
    }

    #[test]
    fn answer_request() {
        let req = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        let reply = ArpRepr {
            op: Operation::REPLY,
            sha: BOX,
            spa: req.tpa,
            tha: req.sha,
            tpa: req.spa,
        };
        let mut buf = [0xa5u8; 30];
        reply.emit(&mut buf);
        assert_eq!(&buf[..28], &REPLY[..]);
        assert_eq!(&buf[28..], &[0xa5, 0xa5]);
        let back = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(back, reply);
    }

    #[test]
    fn setters() {
        let mut buf = REQUEST;
        let mut p = ArpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_operation(Operation::REPLY);
        p.set_sha(BOX);
        p.set_spa(Ipv4Addr::new(192, 168, 1, 1));
        p.set_tha(HOST);
        p.set_tpa(Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(&buf[..28], &REPLY[..]);
        assert!(buf[28..].iter().all(|&b| b == 0));
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..28 {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST[..len]).unwrap_err(),
                WireError::Truncated,
                "len {len}"
            );
        }
        assert!(ArpPacket::new_checked(&REQUEST[..28]).is_ok());
    }

    #[test]
    fn other_formats_rejected() {
        // htype 6 (IEEE 802), ptype IPv6, hlen 8 (EUI-64), plen 16.
        for (off, bad) in [(0, 0x06u8), (1, 0x06), (2, 0x86), (4, 8), (5, 16), (5, 0)] {
            let mut b = REQUEST;
            b[off] = bad;
            assert_eq!(
                ArpPacket::new_checked(&b[..]).unwrap_err(),
                WireError::BadArp,
                "{off}"
            );
        }
    }

    #[test]
    fn unknown_opcode_is_not_a_repr() {
        let mut b = REQUEST;
        b[7] = 3; // RARP request
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.operation(), Operation(3));
        assert_eq!(ArpRepr::parse(&p).unwrap_err(), WireError::BadArp);
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn emit_short_buffer_panics() {
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REPLY[..]).unwrap()).unwrap();
        repr.emit(&mut [0u8; 27]);
    }

    fn touch_all(b: &[u8]) {
        if let Ok(p) = ArpPacket::new_checked(b) {
            let _ = (
                p.hardware_type(),
                p.protocol_type(),
                p.hardware_len(),
                p.protocol_len(),
            );
            let _ = (p.operation(), p.sha(), p.spa(), p.tha(), p.tpa());
            let _ = ArpRepr::parse(&p);
        }
    }

    /// Starts most cases with the valid prefix so the accessors are reached, not just the check.
    fn arp_bytes() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(prefix, mut v)| {
                if prefix {
                    let n = v.len().min(6);
                    v[..n].copy_from_slice(&REQUEST[..n]);
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn arbitrary_bytes_never_panic(b in arp_bytes()) {
            touch_all(&b);
        }

        #[test]
        fn truncated_valid_packets_never_panic(len in 0usize..=46) {
            touch_all(&REQUEST[..len]);
        }
    }
}
