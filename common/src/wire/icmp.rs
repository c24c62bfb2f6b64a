//! ICMP for IPv4 (RFC 792), with the error-message rules of RFC 1812 §4.3.
//!
//! The box answers echo requests addressed to it and sends Time Exceeded and Fragmentation
//! Needed for transit traffic; the fast path may also have to rewrite the datagram an error
//! quotes, hence [`IcmpPacket::quoted_mut`].
//!
//! Panic rule: after [`IcmpPacket::new_checked`] succeeded no accessor panics: every field
//! lies in the 8-byte fixed header, whatever the type, and the body is whatever follows. The
//! view must wrap exactly the ICMP message (the IPv4 payload, which ends at `total_len`),
//! since the checksum covers all of it. The `emit` functions panic on a buffer shorter than
//! their `buffer_len()`, a caller's sizing bug.

use super::ipv4::Ipv4Packet;
use super::{be16, put16, WireError};
use crate::checksum;

/// ICMP message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Message(pub u8);

impl Message {
    pub const ECHO_REPLY: Message = Message(0);
    pub const DST_UNREACHABLE: Message = Message(3);
    pub const SOURCE_QUENCH: Message = Message(4);
    pub const REDIRECT: Message = Message(5);
    pub const ECHO_REQUEST: Message = Message(8);
    pub const TIME_EXCEEDED: Message = Message(11);
    pub const PARAM_PROBLEM: Message = Message(12);

    /// Error messages quote the offending datagram, and must never be answered with another
    /// error (RFC 1812 §4.3.2.7).
    pub const fn is_error(self) -> bool {
        matches!(self.0, 3 | 4 | 5 | 11 | 12)
    }
}

/// Codes for [`Message::DST_UNREACHABLE`] and [`Message::TIME_EXCEEDED`].
pub mod code {
    pub const NET_UNREACHABLE: u8 = 0;
    pub const HOST_UNREACHABLE: u8 = 1;
    pub const PROTO_UNREACHABLE: u8 = 2;
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
    /// Time exceeded: TTL reached zero in transit.
    pub const TTL_EXCEEDED: u8 = 0;
    /// Time exceeded: fragment reassembly time exceeded.
    pub const REASSEMBLY_EXCEEDED: u8 = 1;
}

/// Field offsets from the start of the message (the rewrite patches some in place).
pub(crate) mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ_NO: usize = 6;
    /// Parameter problem: offset of the offending octet.
    pub const POINTER: usize = 4;
    /// Fragmentation needed: next-hop MTU in the low half of the "unused" word.
    pub const NEXT_HOP_MTU: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

/// Length of the fixed header every ICMP message has.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Most bytes of the offending datagram an error quotes, so that the error fits the 576
/// bytes every host accepts (RFC 1812 §4.3.2.3: 576 - 20 IP - 8 ICMP).
pub const MAX_QUOTE: usize = 576 - 20 - HEADER_LEN;

/// A view over one ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps a buffer after checking the fixed header fits. An error quoting less than
    /// RFC 792 asks is still accepted: whoever reads the quote checks it as IPv4.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> Message {
        Message(self.buffer.as_ref()[field::TYPE])
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn is_error(&self) -> bool {
        self.msg_type().is_error()
    }

    /// Echo identifier (meaningful for types 0 and 8).
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number (meaningful for types 0 and 8).
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// Next-hop MTU (meaningful for type 3 code 4; 0 from pre-RFC 1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Offending octet (meaningful for type 12).
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// The body after the fixed header: echo data.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }

    /// The body after the fixed header: for an error, the offending datagram's header and
    /// at least its first 8 payload bytes. Read it with [`Ipv4Packet::new_checked_quoted`].
    pub fn quoted(&self) -> &[u8] {
        self.data()
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn set_msg_type(&mut self, t: Message) {
        self.buffer.as_mut()[field::TYPE] = t.0;
    }

    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_echo_ident(&mut self, ident: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, ident);
    }

    pub fn set_echo_seq_no(&mut self, seq_no: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQ_NO, seq_no);
    }

    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        put16(self.buffer.as_mut(), field::NEXT_HOP_MTU, mtu);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_LEN..]
    }

    /// For rewriting the quoted datagram as the fast path rewrote the original (addresses,
    /// sequence numbers), so the error still matches the sender's connection.
    pub fn quoted_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }

    /// Recomputes the checksum over the whole message: for messages the box builds.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for IcmpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Writes the fixed header and body, then the checksum over exactly those bytes.
fn emit_message(buf: &mut [u8], t: Message, code: u8, rest: [u8; 4], body: &[u8]) -> usize {
    let len = HEADER_LEN + body.len();
    assert!(buf.len() >= len, "ICMP emit buffer too short");
    let mut p = IcmpPacket::new_unchecked(&mut buf[..len]);
    p.set_msg_type(t);
    p.set_code(code);
    p.buffer[field::ECHO_IDENT..HEADER_LEN].copy_from_slice(&rest);
    p.data_mut().copy_from_slice(body);
    p.fill_checksum();
    len
}

/// An echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpEchoRepr<'a> {
    /// Reply (type 0) or request (type 8).
    pub is_reply: bool,
    pub ident: u16,
    pub seq_no: u16,
    pub data: &'a [u8],
}

impl<'a> IcmpEchoRepr<'a> {
    /// `None` unless the message is an echo request or reply. The checksum is the caller's
    /// to verify first.
    pub fn parse<T: AsRef<[u8]>>(packet: &'a IcmpPacket<T>) -> Option<Self> {
        let is_reply = match packet.msg_type() {
            Message::ECHO_REPLY => true,
            Message::ECHO_REQUEST => false,
            _ => return None,
        };
        Some(IcmpEchoRepr {
            is_reply,
            ident: packet.echo_ident(),
            seq_no: packet.echo_seq_no(),
            data: packet.data(),
        })
    }

    /// The reply to this request: same identifier, sequence number and data (RFC 792).
    pub const fn to_reply(&self) -> Self {
        IcmpEchoRepr {
            is_reply: true,
            ..*self
        }
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Writes the message at the start of `buf`, checksum filled; returns its length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`IcmpEchoRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let t = if self.is_reply {
            Message::ECHO_REPLY
        } else {
            Message::ECHO_REQUEST
        };
        let [i0, i1] = self.ident.to_be_bytes();
        let [s0, s1] = self.seq_no.to_be_bytes();
        emit_message(buf, t, 0, [i0, i1, s0, s1], self.data)
    }
}

/// An error message the box originates (RFC 1812 §4.3.2): type, code, the quoted datagram,
/// and the next-hop MTU for Fragmentation Needed. The control plane decides whether an error
/// may be sent at all (never about an ICMP error, a broadcast, or a non-first fragment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpErrorRepr<'a> {
    pub msg_type: Message,
    pub code: u8,
    /// Written to bytes 6..8; `None` leaves the "unused" word zero.
    pub mtu: Option<u16>,
    pub quoted: &'a [u8],
}

impl<'a> IcmpErrorRepr<'a> {
    /// The error for `datagram` (the offending IPv4 datagram from its first header byte).
    pub fn new(msg_type: Message, code: u8, datagram: &'a [u8]) -> Self {
        IcmpErrorRepr {
            msg_type,
            code,
            mtu: None,
            quoted: quote(datagram),
        }
    }

    /// TTL reached zero in transit (type 11 code 0).
    pub fn time_exceeded(datagram: &'a [u8]) -> Self {
        Self::new(Message::TIME_EXCEEDED, code::TTL_EXCEEDED, datagram)
    }

    /// The datagram has DF set and does not fit `mtu` (type 3 code 4, RFC 1191).
    pub fn frag_needed(mtu: u16, datagram: &'a [u8]) -> Self {
        IcmpErrorRepr {
            mtu: Some(mtu),
            ..Self::new(Message::DST_UNREACHABLE, code::FRAG_NEEDED, datagram)
        }
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.quoted.len()
    }

    /// Writes the message at the start of `buf`, checksum filled; returns its length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`IcmpErrorRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let [m0, m1] = self.mtu.unwrap_or(0).to_be_bytes();
        emit_message(buf, self.msg_type, self.code, [0, 0, m0, m1], self.quoted)
    }
}

/// How much of `datagram` an error quotes: as much as fits [`MAX_QUOTE`], and never the
/// Ethernet padding past a valid IPv4 total length.
pub fn quote(datagram: &[u8]) -> &[u8] {
    let end = match Ipv4Packet::new_checked(datagram) {
        Ok(p) => usize::from(p.total_len()),
        Err(_) => datagram.len(),
    };
    &datagram[..end.min(MAX_QUOTE)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // `ping 127.0.0.1` from Linux, captured on lo: the IPv4 datagram of the echo request.
    use crate::wire::ipv4::tests::PING;

    /// The fixed header of the kernel's echo reply to it (same capture); the data is equal.
    const PONG_HEADER: [u8; 8] = [0x00, 0x00, 0x79, 0xfd, 0x1c, 0x46, 0x00, 0x01];

    fn request() -> IcmpPacket<&'static [u8]> {
        IcmpPacket::new_checked(&PING[20..]).unwrap()
    }

    #[test]
    fn deconstruct_echo_request() {
        let p = request();
        assert_eq!((p.msg_type(), p.code()), (Message::ECHO_REQUEST, 0));
        assert_eq!(p.checksum(), 0x71fd);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1c46, 1));
        assert_eq!(p.data(), &PING[28..]);
        assert!(!p.is_error());
        assert!(p.verify_checksum());
    }

    #[test]
    fn answer_echo_like_the_kernel() {
        let req = request();
        let reply = IcmpEchoRepr::parse(&req).unwrap().to_reply();
        assert_eq!(reply.buffer_len(), 64);
        let mut buf = [0xa5u8; 66];
        assert_eq!(reply.emit(&mut buf), 64);
        assert_eq!(&buf[..8], &PONG_HEADER);
        assert_eq!(&buf[8..64], &PING[28..]);
        assert_eq!(&buf[64..], &[0xa5, 0xa5]);
        let back = IcmpPacket::new_checked(&buf[..64]).unwrap();
        assert!(back.verify_checksum());
        assert_eq!(IcmpEchoRepr::parse(&back), Some(reply));
    }

    #[test]
    fn time_exceeded() {
        let repr = IcmpErrorRepr::time_exceeded(&PING);
        assert_eq!(repr.quoted, &PING[..]);
        let mut buf = [0xa5u8; 94];
        assert_eq!(repr.emit(&mut buf), 92);
        assert_eq!(&buf[..8], &[11, 0, 0xf4, 0xff, 0, 0, 0, 0]);
        assert_eq!(&buf[92..], &[0xa5, 0xa5]);
        let p = IcmpPacket::new_checked(&buf[..92]).unwrap();
        assert!(p.is_error() && p.verify_checksum());
        assert_eq!(
            (p.msg_type(), p.code()),
            (Message::TIME_EXCEEDED, code::TTL_EXCEEDED)
        );
        assert_eq!(p.quoted(), &PING[..]);
        assert_eq!(IcmpEchoRepr::parse(&p), None);
    }

    #[test]
    fn frag_needed_with_minimal_quote() {
        let repr = IcmpErrorRepr::frag_needed(1400, &PING[..28]);
        let mut buf = [0xa5u8; 36];
        assert_eq!(repr.emit(&mut buf), 36);
        assert_eq!(&buf[..8], &[3, 4, 0x61, 0x3f, 0, 0, 0x05, 0x78]);
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), 1400);
        let quoted = Ipv4Packet::new_checked_quoted(p.quoted()).unwrap();
        assert_eq!(quoted.total_len(), 84);
        assert_eq!(quoted.payload(), &PING[20..28]);
    }

    #[test]
    fn quote_limits() {
        let mut padded = [0u8; 90];
        padded[..84].copy_from_slice(&PING);
        assert_eq!(quote(&padded).len(), 84);
        let mut big = vec![0u8; 1500];
        big[..20].copy_from_slice(&PING[..20]);
        big[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert_eq!(quote(&big).len(), MAX_QUOTE);
        assert_eq!(quote(&PING[..28]).len(), 28);
    }

    #[test]
    fn setters_and_quoted_mut() {
        let mut buf = [0u8; 36];
        IcmpErrorRepr::frag_needed(1400, &PING[..28]).emit(&mut buf);
        let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
        // What the fast path does to an error about a translated flow: rewrite the quote.
        p.quoted_mut()[12..16].copy_from_slice(&[10, 0, 0, 1]);
        assert!(!p.verify_checksum());
        // Echo sequence number and next-hop MTU share bytes 6..8.
        p.set_next_hop_mtu(1280);
        assert_eq!(p.echo_seq_no(), 1280);
        p.set_msg_type(Message::ECHO_REQUEST);
        p.set_code(0);
        p.set_echo_ident(7);
        p.set_echo_seq_no(9);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.echo_ident(), p.echo_seq_no(), p.next_hop_mtu()),
            (7, 9, 9)
        );
        p.set_msg_type(Message::PARAM_PROBLEM);
        assert_eq!(p.pointer(), 0);
        assert!(p.is_error());
    }

    #[test]
    fn error_classes() {
        for t in 0..=255u8 {
            let expect = matches!(t, 3 | 4 | 5 | 11 | 12);
            assert_eq!(Message(t).is_error(), expect, "type {t}");
        }
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..HEADER_LEN {
            let err = IcmpPacket::new_checked(&PING[20..20 + len]).unwrap_err();
            assert_eq!(err, WireError::Truncated, "len {len}");
        }
        assert!(IcmpPacket::new_checked(&PING[20..28])
            .unwrap()
            .data()
            .is_empty());
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn emit_short_buffer_panics() {
        IcmpErrorRepr::time_exceeded(&PING).emit(&mut [0u8; 91]);
    }

    fn touch_all(b: &[u8]) {
        if let Ok(p) = IcmpPacket::new_checked(b) {
            let _ = (
                p.msg_type(),
                p.code(),
                p.checksum(),
                p.is_error(),
                p.pointer(),
            );
            let _ = (
                p.echo_ident(),
                p.echo_seq_no(),
                p.next_hop_mtu(),
                p.verify_checksum(),
            );
            assert_eq!(p.data().len() + HEADER_LEN, b.len());
            let _ = Ipv4Packet::new_checked_quoted(p.quoted()).map(|q| q.payload().len());
            let _ = IcmpEchoRepr::parse(&p).map(|e| e.buffer_len());
        }
        let _ = quote(b);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            touch_all(&b);
        }

        #[test]
        fn truncated_valid_packets_never_panic(len in 0usize..=64) {
            touch_all(&PING[20..20 + len]);
        }

        #[test]
        fn emitted_errors_verify(b in proptest::collection::vec(any::<u8>(), 0..700), mtu: u16) {
            let mut out = vec![0xa5u8; 8 + b.len()];
            let n = IcmpErrorRepr::frag_needed(mtu, &b).emit(&mut out);
            prop_assert!(n <= 8 + MAX_QUOTE);
            prop_assert!(IcmpPacket::new_checked(&out[..n]).unwrap().verify_checksum());
        }
    }
}
