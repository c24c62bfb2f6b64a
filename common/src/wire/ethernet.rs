//! Ethernet II frames (IEEE 802.3) with up to two VLAN tags: IEEE 802.1Q (TPID 0x8100) and
//! 802.1ad "QinQ" (TPID 0x88a8), in any order.
//!
//! The frame check sequence is not part of the view: the NIC strips and adds it.
//!
//! Panic rule: after [`EthernetFrame::new_checked`] succeeded no accessor panics. The tag
//! stack is re-read on each call rather than cached, so that the view stays a plain wrapper
//! over the buffer (two byte compares at most); the check guarantees every tag it finds is
//! inside the buffer. A view built with [`EthernetFrame::new_unchecked`] over a short buffer
//! may panic.

use super::{be16, mac_at, put16, MacAddr, WireError};

/// An EtherType (or, inside a tag stack, a TPID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q customer tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IEEE 802.1ad service tag (the outer tag of QinQ).
    pub const QINQ: EtherType = EtherType(0x88a8);

    /// Whether a tag follows instead of a payload.
    pub const fn is_vlan_tag(self) -> bool {
        self.0 == Self::VLAN.0 || self.0 == Self::QINQ.0
    }
}

/// The most tags the view accepts; a third is [`WireError::TooManyVlanTags`].
pub const MAX_VLAN_TAGS: usize = 2;

mod field {
    use core::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    /// The outer EtherType or TPID; the i-th tag's TCI follows its TPID.
    pub const ETHERTYPE: usize = 12;
    pub const TAG_LEN: usize = 4;
    /// Header without tags.
    pub const HEADER_LEN: usize = 14;
}

/// Header length of an untagged frame.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A view over an Ethernet frame, from the destination address to the end of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking that the header and every tag fit.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Walks the tag stack with bounds checks: the accessors later walk it without them.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let mut off = field::ETHERTYPE;
        for _ in 0..=MAX_VLAN_TAGS {
            if b.len() < off + 2 {
                return Err(WireError::Truncated);
            }
            if !EtherType(be16(b, off)).is_vlan_tag() {
                return Ok(());
            }
            off += field::TAG_LEN;
        }
        Err(WireError::TooManyVlanTags)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Number of VLAN tags (0, 1 or 2).
    #[inline]
    pub fn vlan_count(&self) -> usize {
        let b = self.buffer.as_ref();
        let mut n = 0;
        while n < MAX_VLAN_TAGS
            && EtherType(be16(b, field::ETHERTYPE + n * field::TAG_LEN)).is_vlan_tag()
        {
            n += 1;
        }
        n
    }

    /// Header length including tags: 14, 18 or 22.
    #[inline]
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.vlan_count() * field::TAG_LEN
    }

    pub fn dst(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::DESTINATION)
    }

    pub fn src(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SOURCE)
    }

    /// The EtherType after the tags: what the payload is.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), self.header_len() - 2))
    }

    /// TPID and TCI of tag `i` (0 = outermost), or `None` past the last tag.
    pub fn vlan_tag(&self, i: usize) -> Option<(EtherType, u16)> {
        if i >= self.vlan_count() {
            return None;
        }
        let b = self.buffer.as_ref();
        let off = field::ETHERTYPE + i * field::TAG_LEN;
        Some((EtherType(be16(b, off)), be16(b, off + 2)))
    }

    /// The 12-bit VLAN IDs, outermost first, and how many of the two slots are used (unused
    /// slots are 0).
    pub fn vlan_ids(&self) -> ([u16; MAX_VLAN_TAGS], usize) {
        let mut ids = [0; MAX_VLAN_TAGS];
        let n = self.vlan_count();
        for (i, id) in ids.iter_mut().enumerate().take(n) {
            let off = field::ETHERTYPE + i * field::TAG_LEN + 2;
            *id = be16(self.buffer.as_ref(), off) & 0x0fff;
        }
        (ids, n)
    }

    /// Everything after the header and tags, Ethernet padding included: the next layer
    /// trims it (IPv4 by its total length).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac.0);
    }

    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac.0);
    }

    /// Writes the EtherType after the tags. To build an untagged header, wrap at least
    /// [`HEADER_LEN`] bytes whose offset 12 is not a TPID (fresh buffers are), then set the
    /// three fields. Writing a TPID here changes the tag stack; re-check the frame after.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let off = self.header_len() - 2;
        put16(self.buffer.as_mut(), off, ethertype.0);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let off = self.header_len();
        &mut self.buffer.as_mut()[off..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Builds an untagged Ethernet II frame around `payload`, padded to the 60-byte minimum (for
/// frames the control plane sends; the fast path rewrites in place instead).
pub fn build_frame(src: MacAddr, dst: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity((14 + payload.len()).max(60));
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.0.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Linux ARP request for 192.168.1.1 from 52:54:00:12:34:56 / 192.168.1.10, padded by the
    /// sender to the 60-byte minimum.
    const UNTAGGED_ARP: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, //
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0,
        0xa8, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];

    /// 802.1Q tag, PCP 0, VID 100, carrying the start of an IPv4 header.
    const VLAN_IPV4: [u8; 22] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x81, 0x00, 0x00, 0x64, 0x08, 0x00, //
        0x45, 0x00, 0x00, 0x54,
    ];

    /// QinQ: 802.1ad service tag VID 10 (PCP 3), then 802.1Q customer tag VID 20, then ARP.
    const QINQ_ARP: [u8; 24] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x88, 0xa8, 0x60, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x06, //
        0x00, 0x01,
    ];

    #[test]
    fn untagged() {
        let f = EthernetFrame::new_checked(&UNTAGGED_ARP[..]).unwrap();
        assert_eq!(f.dst(), MacAddr::BROADCAST);
        assert_eq!(f.src(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.vlan_count(), 0);
        assert_eq!(f.vlan_ids(), ([0, 0], 0));
        assert_eq!(f.vlan_tag(0), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &UNTAGGED_ARP[14..]);
    }

    #[test]
    fn single_tag() {
        let f = EthernetFrame::new_checked(&VLAN_IPV4[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.vlan_count(), 1);
        assert_eq!(f.vlan_ids(), ([100, 0], 1));
        assert_eq!(f.vlan_tag(0), Some((EtherType::VLAN, 0x0064)));
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x45, 0x00, 0x00, 0x54]);
    }

    #[test]
    fn qinq() {
        let f = EthernetFrame::new_checked(&QINQ_ARP[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.vlan_ids(), ([10, 20], 2));
        assert_eq!(f.vlan_tag(0), Some((EtherType::QINQ, 0x600a)));
        assert_eq!(f.vlan_tag(1), Some((EtherType::VLAN, 0x0014)));
        assert_eq!(f.vlan_tag(2), None);
        assert_eq!(f.header_len(), 22);
        assert_eq!(f.payload(), &[0x00, 0x01]);
    }

    #[test]
    fn three_tags_rejected() {
        let mut b = [0u8; 30];
        b[12..14].copy_from_slice(&[0x88, 0xa8]);
        b[16..18].copy_from_slice(&[0x81, 0x00]);
        b[20..22].copy_from_slice(&[0x81, 0x00]);
        b[24..26].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&b[..]).unwrap_err(),
            WireError::TooManyVlanTags
        );
    }

    #[test]
    fn truncated_at_every_length() {
        for (frame, hl) in [
            (&UNTAGGED_ARP[..], 14),
            (&VLAN_IPV4[..], 18),
            (&QINQ_ARP[..], 22),
        ] {
            for len in 0..hl {
                assert_eq!(
                    EthernetFrame::new_checked(&frame[..len]).unwrap_err(),
                    WireError::Truncated,
                    "len {len}"
                );
            }
            // A header with nothing after it is a valid (empty-payload) frame.
            let f = EthernetFrame::new_checked(&frame[..hl]).unwrap();
            assert!(f.payload().is_empty());
        }
    }

    #[test]
    fn emit_untagged_header() {
        let mut b = [0xa5u8; 16];
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        f.set_ethertype(EtherType::ARP);
        f.payload_mut().copy_from_slice(&[0x00, 0x01]);
        assert_eq!(&b[..], &UNTAGGED_ARP[..16]);
    }

    #[test]
    fn setters_keep_tags() {
        let mut b = QINQ_ARP;
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_src(MacAddr([1, 2, 3, 4, 5, 6]));
        f.set_dst(MacAddr([7, 8, 9, 10, 11, 12]));
        f.set_ethertype(EtherType::IPV4);
        f.payload_mut()[0] = 0x45;
        assert_eq!(f.vlan_ids(), ([10, 20], 2));
        assert_eq!(&b[..12], &[7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            &b[12..],
            &[0x88, 0xa8, 0x60, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00, 0x45, 0x01]
        );
    }

    fn touch_all(b: &[u8]) {
        if let Ok(f) = EthernetFrame::new_checked(b) {
            let _ = (
                f.dst(),
                f.src(),
                f.ethertype(),
                f.vlan_ids(),
                f.header_len(),
            );
            for i in 0..=MAX_VLAN_TAGS {
                let _ = f.vlan_tag(i);
            }
            assert!(f.header_len() + f.payload().len() == b.len());
        }
    }

    /// Biases the byte stream towards TPIDs so that tag stacks are actually explored.
    fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            any::<u8>(),
            Just(0x81u8),
            Just(0x00u8),
            Just(0x88u8),
            Just(0xa8u8)
        ];
        proptest::collection::vec(byte, 0..200)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn arbitrary_bytes_never_panic(b in frame_bytes()) {
            touch_all(&b);
        }

        #[test]
        fn truncated_valid_frames_never_panic(which in 0usize..3, len in 0usize..60) {
            let frame: &[u8] = [&UNTAGGED_ARP[..], &VLAN_IPV4[..], &QINQ_ARP[..]][which];
            touch_all(&frame[..len.min(frame.len())]);
        }
    }
}
