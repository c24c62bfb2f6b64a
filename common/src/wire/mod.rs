//! Zero-copy typed views over packet bytes, in the manner of smoltcp's `wire`.
//!
//! Rules every view keeps:
//! - `new_checked` validates every length the accessors rely on and returns a [`WireError`];
//!   after it succeeded, no accessor panics and none reads out of bounds.
//! - Fields are read and written by offset (named constants), never by casting bytes to a
//!   packed struct.
//! - Setters on `&mut [u8]` views do not touch checksums: callers fix them incrementally
//!   with [`crate::checksum`].

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;

use core::fmt;

/// Why a buffer is not a well-formed header of the protocol asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the fixed header needs.
    #[error("truncated header")]
    Truncated,
    /// IPv4 IHL below 5 (20 bytes) or beyond the buffer.
    #[error("bad IPv4 header length")]
    BadIhl,
    /// The IP version field is not 4.
    #[error("not IPv4")]
    BadVersion,
    /// IPv4 total length shorter than the header or beyond the buffer.
    #[error("bad IPv4 total length")]
    BadTotalLength,
    /// TCP data offset below 5 or beyond the segment.
    #[error("bad TCP data offset")]
    BadDataOffset,
    /// A TCP option whose length is 0 or 1, overruns the header, or whose fixed length is wrong.
    #[error("malformed TCP option")]
    BadOption,
    /// ARP hardware/protocol types or address lengths other than Ethernet/IPv4 (6/4).
    #[error("unsupported ARP format")]
    BadArp,
    /// More 802.1Q tags than the view accepts.
    #[error("too many VLAN tags")]
    TooManyVlanTags,
}

/// An IPv4 address as the fast path holds it: host byte order, `Copy`, 4 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ipv4Addr(pub u32);

impl Ipv4Addr {
    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Self {
        Ipv4Addr(u32::from_be_bytes([a, b, c, d]))
    }
    pub const fn octets(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl From<std::net::Ipv4Addr> for Ipv4Addr {
    fn from(a: std::net::Ipv4Addr) -> Self {
        Ipv4Addr(u32::from(a))
    }
}

impl From<Ipv4Addr> for std::net::Ipv4Addr {
    fn from(a: Ipv4Addr) -> Self {
        std::net::Ipv4Addr::from(a.0)
    }
}

impl fmt::Display for Ipv4Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.octets();
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl fmt::Debug for Ipv4Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads a big-endian u16 at `off`. Callers have checked the length.
#[inline]
pub fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Reads a big-endian u32 at `off`. Callers have checked the length.
#[inline]
pub fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The MAC address in `b[r]` (`r` six bytes long).
#[inline]
pub(crate) fn mac_at(b: &[u8], r: core::ops::Range<usize>) -> MacAddr {
    let mut m = [0; 6];
    m.copy_from_slice(&b[r]);
    MacAddr(m)
}

#[inline]
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}
