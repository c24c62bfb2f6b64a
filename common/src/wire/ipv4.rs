//! IPv4 headers (RFC 791).
//!
//! Panic rule: after [`Ipv4Packet::new_checked`] succeeded no accessor panics: the check
//! guarantees `20 <= header_len <= total_len <= buffer.len()`. The buffer may be longer than
//! `total_len` (Ethernet pads short frames to 60 bytes); [`Ipv4Packet::payload`] stops at
//! `total_len`, so the padding never reaches a transport checksum. The header checksum is
//! not verified by the check: the fast path forwards datagrams whose checksum is
//! wrong with the error intact (RFC 1624 updates keep it), and callers that care ask
//! [`Ipv4Packet::verify_checksum`].
//!
//! [`Ipv4Packet::new_checked_quoted`] accepts the truncated datagram an ICMP error quotes,
//! whose `total_len` describes the original and so exceeds the bytes quoted.

use super::{be16, be32, put16, put32, Ipv4Addr, WireError};
use crate::checksum;

/// The IPv4 protocol number of the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    pub const ICMP: Protocol = Protocol(1);
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);
}

/// Field offsets from the start of the header (the rewrite patches some in place).
pub(crate) mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    /// TTL and protocol share the 16-bit word the header checksum sees.
    pub const TTL_PROTOCOL: usize = 8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const HEADER_LEN: usize = 20;

    pub const FLAG_DF: u16 = 0x4000;
    pub const FLAG_MF: u16 = 0x2000;
    pub const OFFSET_MASK: u16 = 0x1fff;
}

/// Length of a header without options: what [`Ipv4Repr::emit`] writes.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A view over an IPv4 datagram, from the version field to the end of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking version, IHL and total length.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header()?;
        if usize::from(packet.total_len()) > packet.buffer.as_ref().len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(packet)
    }

    /// Like [`Ipv4Packet::new_checked`] but accepts `total_len` beyond the buffer, for the
    /// original datagram quoted in an ICMP error: only its header and first bytes are there.
    /// The payload then ends at the end of the buffer.
    pub fn new_checked_quoted(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header()?;
        Ok(packet)
    }

    /// Everything but "total_len fits the buffer". Length first, so that any short buffer is
    /// `Truncated` whatever its first byte says.
    fn check_header(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = self.header_len();
        if hl < field::HEADER_LEN || hl > len {
            return Err(WireError::BadIhl);
        }
        if usize::from(self.total_len()) < hl {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in 32-bit words, as on the wire.
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & field::FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & field::FLAG_MF != 0
    }

    /// Fragment offset in bytes (the wire counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF) & field::OFFSET_MASK) << 3
    }

    /// Whether this datagram is a piece of a larger one: only the first fragment carries the
    /// transport header, so the fast path must not read ports from the others.
    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & (field::FLAG_MF | field::OFFSET_MASK) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> Protocol {
        Protocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr(be32(self.buffer.as_ref(), field::SRC))
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr(be32(self.buffer.as_ref(), field::DST))
    }

    /// The header, options included: what an ICMP error quotes first.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The options (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.header_len()]
    }

    /// The payload, ending at `total_len` (or at the end of a quoted datagram's buffer).
    pub fn payload(&self) -> &[u8] {
        let (start, end) = self.payload_range();
        &self.buffer.as_ref()[start..end]
    }

    /// Clamped rather than trusted, so that a setter that broke `total_len` cannot make the
    /// next accessor panic.
    #[inline]
    fn payload_range(&self) -> (usize, usize) {
        let start = self.header_len();
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        (start, end.max(start))
    }

    /// Whether the header checksum is correct (either zero of one's complement is accepted).
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Decrements the TTL and fixes the header checksum incrementally (RFC 1624 eq. 3 on the
    /// TTL|protocol word), so a checksum that was wrong on arrival stays wrong by the same
    /// amount. Returns the new TTL. A TTL of 0 is left alone and 0 is returned: such a
    /// datagram must not be forwarded (RFC 1812 §5.3.1), and wrapping to 255 would give it a
    /// new life. Callers answering with Time Exceeded check `ttl() <= 1` before, so the quote
    /// carries the header as it arrived.
    pub fn decrement_ttl(&mut self) -> u8 {
        let b = self.buffer.as_mut();
        let old = be16(b, field::TTL_PROTOCOL);
        if old < 0x0100 {
            return 0;
        }
        let new = old - 0x0100;
        let hc = checksum::update16(be16(b, field::CHECKSUM), old, new);
        put16(b, field::TTL_PROTOCOL, new);
        put16(b, field::CHECKSUM, hc);
        (new >> 8) as u8
    }

    pub fn set_src(&mut self, addr: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::SRC, addr.0);
    }

    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::DST, addr.0);
    }

    pub fn set_total_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, len);
    }

    pub fn set_ident(&mut self, ident: u16) {
        put16(self.buffer.as_mut(), field::IDENT, ident);
    }

    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.0;
    }

    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Recomputes the header checksum from scratch: for headers the box builds, never for
    /// forwarded ones (see [`Ipv4Packet::decrement_ttl`]).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = self.payload_range();
        &mut self.buffer.as_mut()[start..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An option-less IPv4 header the control plane builds (ICMP replies and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: Protocol,
    /// Bytes after the header; `total_len` is this plus 20.
    pub payload_len: usize,
    pub ttl: u8,
    pub ident: u16,
}

impl Ipv4Repr {
    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header at the start of `buf`: DSCP/ECN 0, DF set (the box's own
    /// replies are small and it does not fragment), checksum filled. The payload is the
    /// caller's.
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADER_LEN`] or the total length exceeds 65535: both are
    /// the caller's sizing bugs.
    pub fn emit(&self, buf: &mut [u8]) {
        assert!(buf.len() >= HEADER_LEN, "IPv4 emit buffer too short");
        let total = u16::try_from(self.buffer_len()).expect("IPv4 total length over 65535");
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.buffer[field::VER_IHL] = 0x45;
        p.buffer[field::DSCP_ECN] = 0;
        p.set_total_len(total);
        p.set_ident(self.ident);
        put16(p.buffer, field::FLG_OFF, field::FLAG_DF);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src(self.src);
        p.set_dst(self.dst);
        p.fill_checksum();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checksum::difference;
    use proptest::prelude::*;

    /// `ping 127.0.0.1` as Linux put it on the wire (captured on lo): echo request, 56 bytes of
    /// iputils-style data (16-byte timeval, then 0x10..0x37). The ICMP tests use it too.
    pub(crate) const PING: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0x11, 0xee, 0x40, 0x00, 0x40, 0x01, 0x2a, 0xb9, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01, //
        0x08, 0x00, 0x71, 0xfd, 0x1c, 0x46, 0x00, 0x01, 0xf2, 0xa0, 0x06, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0xa6, 0xdc, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

    /// The header of [`PING`] as the control plane would describe it.
    const PING_REPR: Ipv4Repr = Ipv4Repr {
        src: LOCALHOST,
        dst: LOCALHOST,
        protocol: Protocol::ICMP,
        payload_len: 64,
        ttl: 64,
        ident: 0x11ee,
    };

    #[test]
    fn deconstruct_ping() {
        let p = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(
            (p.version(), p.ihl(), p.header_len(), p.dscp(), p.ecn()),
            (4, 5, 20, 0, 0)
        );
        assert_eq!(
            (p.total_len(), p.ident(), p.ttl(), p.checksum()),
            (84, 0x11ee, 64, 0x2ab9)
        );
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment() && p.frag_offset() == 0);
        assert_eq!(
            (p.protocol(), p.src(), p.dst()),
            (Protocol::ICMP, LOCALHOST, LOCALHOST)
        );
        assert_eq!((p.header(), p.options()), (&PING[..20], &[][..]));
        assert_eq!(p.payload(), &PING[20..]);
        assert!(p.verify_checksum());
        // Ethernet padding after total_len is not payload.
        let mut padded = [0u8; 90];
        padded[..84].copy_from_slice(&PING);
        let mut p = Ipv4Packet::new_checked(&mut padded[..]).unwrap();
        assert_eq!(p.payload(), &PING[20..]);
        assert_eq!(p.payload_mut().len(), 64);
    }

    #[test]
    fn emit_matches_the_kernel() {
        assert_eq!(PING_REPR.buffer_len(), 84);
        let mut buf = [0xa5u8; 22];
        PING_REPR.emit(&mut buf);
        assert_eq!(&buf[..20], &PING[..20]);
        assert_eq!(&buf[20..], &[0xa5, 0xa5]);
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 with Router Alert (RFC 2113); MF set, offset 185 units = 1480 bytes.
        let mut b = [0u8; 28];
        b[..12].copy_from_slice(&[
            0x46, 0xb8, 0x00, 0x1c, 0x00, 0x01, 0x20, 0xb9, 0x01, 0x11, 0, 0,
        ]);
        b[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!((p.header_len(), p.dscp(), p.ecn()), (24, 46, 0));
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload().len(), 4);
        assert!(p.more_frags() && !p.dont_frag() && p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(p.protocol(), Protocol::UDP);
        // The last fragment: MF clear, offset non-zero.
        b[6] = 0x00;
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
    }

    /// The error, after checking the quoted variant agrees (it differs only on total_len
    /// beyond the buffer, tested apart).
    fn err(b: &[u8]) -> WireError {
        let e = Ipv4Packet::new_checked(b).unwrap_err();
        assert_eq!(Ipv4Packet::new_checked_quoted(b).unwrap_err(), e);
        e
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..HEADER_LEN {
            assert_eq!(err(&PING[..len]), WireError::Truncated, "len {len}");
        }
    }

    #[test]
    fn malformed_headers() {
        let with = |off: usize, bytes: &[u8]| {
            let mut b = PING;
            b[off..off + bytes.len()].copy_from_slice(bytes);
            b
        };
        for v in [0x05, 0x65, 0xf5] {
            assert_eq!(err(&with(0, &[v])), WireError::BadVersion);
        }
        for ihl in 0..5 {
            assert_eq!(err(&with(0, &[0x40 | ihl])), WireError::BadIhl, "ihl {ihl}");
        }
        // A 60-byte header in a 59-byte buffer.
        assert_eq!(err(&with(0, &[0x4f])[..59]), WireError::BadIhl);
        // total_len beyond the buffer, then below the header.
        let e = Ipv4Packet::new_checked(&PING[..83]).unwrap_err();
        assert_eq!(e, WireError::BadTotalLength);
        for (ihl, total) in [(0x45, 19u16), (0x45, 0), (0x46, 23)] {
            let [t0, t1] = total.to_be_bytes();
            assert_eq!(err(&with(0, &[ihl, 0, t0, t1])), WireError::BadTotalLength);
        }
    }

    #[test]
    fn quoted_datagram() {
        // What a Time Exceeded quotes: the header and the first 8 bytes of the ICMP message.
        let p = Ipv4Packet::new_checked_quoted(&PING[..28]).unwrap();
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.payload(), &PING[20..28]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        // Sweeping the ident moves the checksum through every value. A correct checksum of
        // 0x0000 may also arrive as 0xffff (the other one's-complement zero): the case the
        // RFC 1141 update got wrong.
        let mut b = PING;
        let mut negative_zeros = 0;
        for (ident, other_zero) in (0..=u16::MAX).flat_map(|i| [(i, false), (i, true)]) {
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.set_ident(ident);
            p.set_ttl(2);
            p.fill_checksum();
            if other_zero {
                if p.checksum() != 0 {
                    continue;
                }
                p.set_checksum(0xffff);
                assert!(p.verify_checksum());
                negative_zeros += 1;
            }
            assert_eq!(p.decrement_ttl(), 1);
            assert!(p.verify_checksum(), "ident {ident:#x} {other_zero}");
        }
        assert_eq!(negative_zeros, 1);
        for ident in [0x0000, 0x11ee, 0x6ab8, 0x6ab9, 0xffff] {
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.set_ident(ident);
            p.set_ttl(255);
            p.fill_checksum();
            for ttl in (0..255).rev() {
                assert_eq!(p.decrement_ttl(), ttl);
                assert_eq!(p.ttl(), ttl);
                assert!(p.verify_checksum(), "ident {ident:#x} ttl {ttl}");
            }
            // At zero nothing changes: no wrap to 255.
            let before = p.header().to_vec();
            assert_eq!(p.decrement_ttl(), 0);
            assert_eq!(p.header(), &before[..]);
        }
    }

    fn error_of(p: &Ipv4Packet<&mut [u8]>) -> u16 {
        let mut copy = [0u8; HEADER_LEN];
        copy.copy_from_slice(p.header());
        let mut q = Ipv4Packet::new_unchecked(&mut copy[..]);
        q.fill_checksum();
        difference(p.checksum(), q.checksum())
    }

    #[test]
    fn decrement_ttl_keeps_a_wrong_checksum_wrong() {
        for delta in [1u16, 0x0100, 0x1234, 0xfffe] {
            let mut b = PING;
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.set_checksum(checksum::add(p.checksum(), delta));
            let before = error_of(&p);
            assert_ne!(before, 0);
            for _ in 0..64 {
                p.decrement_ttl();
                assert!(!p.verify_checksum());
                assert_eq!(error_of(&p), before, "delta {delta:#x} ttl {}", p.ttl());
            }
        }
    }

    #[test]
    fn setters() {
        let mut b = [0xa5u8; 24];
        Ipv4Repr {
            payload_len: 0,
            ..PING_REPR
        }
        .emit(&mut b);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_src(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst(Ipv4Addr::new(192, 0, 2, 7));
        p.set_total_len(24);
        p.set_ident(0xbeef);
        p.set_protocol(Protocol::UDP);
        p.set_ttl(9);
        p.set_checksum(0x1234);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        let want = [
            0x45, 0x00, 0x00, 0x18, 0xbe, 0xef, 0x40, 0x00, 0x09, 0x11, 0xe6, 0xdd, //
            10, 0, 0, 1, 192, 0, 2, 7, 1, 2, 3, 4,
        ];
        assert_eq!(b, want);
    }

    fn touch_all(b: &[u8]) {
        let checked = [
            Ipv4Packet::new_checked(b),
            Ipv4Packet::new_checked_quoted(b),
        ];
        for p in checked.into_iter().flatten() {
            let _ = (p.version(), p.ihl(), p.dscp(), p.ecn());
            let _ = (p.total_len(), p.ident(), p.dont_frag(), p.more_frags());
            let _ = (p.frag_offset(), p.is_fragment(), p.ttl(), p.protocol());
            let _ = (p.checksum(), p.src(), p.dst(), p.verify_checksum());
            assert!(p.header().len() + p.payload().len() <= b.len());
            assert!(p.options().len() + HEADER_LEN == p.header_len());
        }
    }

    /// Half the cases get a plausible first byte and a total length within the buffer, so
    /// the accessors run on more than the rare random bytes that pass the check.
    fn ipv4_bytes() -> impl Strategy<Value = Vec<u8>> {
        let v = proptest::collection::vec(any::<u8>(), 0..200);
        (v, any::<bool>(), 5u8..16, any::<u16>()).prop_map(|(mut v, fix, ihl, t)| {
            if fix && v.len() >= HEADER_LEN {
                v[0] = 0x40 | ihl;
                let total = t % (v.len() as u16 + 1);
                v[2..4].copy_from_slice(&total.to_be_bytes());
            }
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn arbitrary_bytes_never_panic(b in ipv4_bytes()) {
            touch_all(&b);
        }

        #[test]
        fn truncated_valid_packets_never_panic(len in 0usize..=84) {
            touch_all(&PING[..len]);
        }

        #[test]
        fn decrement_ttl_matches_recomputation(mut b in ipv4_bytes()) {
            if let Ok(mut p) = Ipv4Packet::new_checked(&mut b[..]) {
                p.fill_checksum();
                let ttl = p.ttl();
                prop_assert_eq!(p.decrement_ttl(), ttl.saturating_sub(1));
                prop_assert!(p.verify_checksum());
            }
        }
    }
}
