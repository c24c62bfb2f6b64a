//! TCP header view and its options (RFC 9293 §3.1; MSS RFC 9293 §3.7.1; window scale and
//! timestamps RFC 7323; SACK RFC 2018).
//!
//! `TcpPacket::new_checked` validates the data offset; after that no accessor panics.
//! Options are read by [`TcpOptions`], an iterator that yields each option with its byte
//! offset inside the header (the rewrite needs it to fix the checksum at odd offsets) and
//! stops at the first malformed option with [`WireError::BadOption`]: kind 0 ends the list,
//! kind 1 is one byte, every other kind carries a length that must be at least 2 and stay
//! inside the header; known kinds must have their fixed length (SACK: 2 + 8n, n = 1..=4).
//! Unknown kinds are skipped by their length.
//!
//! The fast path does not iterate: [`OptionMap`] walks the list once by the same rules and
//! keeps only offsets (timestamps, SACK blocks), the window scale and a malformed flag, which
//! both the tracker and the rewrite read.

use super::{be16, be32, put16, put32, WireError};
use crate::seq::SeqNumber;

/// Field offsets from the start of the header (the rewrite patches some in place).
pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: usize = 20;
}

/// The fixed TCP header length.
pub const HEADER_LEN: usize = field::OPTIONS;
/// The offset of the checksum field, for incremental updates.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
/// The most option bytes a header holds (a 60-byte header).
pub const MAX_OPTIONS_LEN: usize = 40;
/// The timestamps option's length (kind, length, TSval, TSecr).
pub const TIMESTAMPS_LEN: usize = 10;
/// The MSS a peer accepts that sent no MSS option, over IPv4 (RFC 9293 §3.7.1: the 576-byte
/// datagram every host takes, less 40 bytes of headers).
pub const DEFAULT_MSS: u16 = 536;

/// Offsets inside one option, from its kind byte (RFC 9293 §3.1; timestamps RFC 7323 §3;
/// SACK RFC 2018 §3).
pub(crate) mod option_field {
    /// The length byte, after the kind.
    pub const LEN: usize = 1;
    /// Where the value starts, after kind and length (a SACK option's first block).
    pub const DATA: usize = 2;
    /// The timestamps option's TSval and TSecr.
    pub const TSVAL: usize = 2;
    pub const TSECR: usize = 6;
    /// A SACK block: its left edge, then its right edge [`SACK_RIGHT`] bytes on.
    pub const SACK_BLOCK_LEN: usize = 8;
    pub const SACK_RIGHT: usize = 4;
}

/// TCP flag bits as they sit in byte 13.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
pub mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// A TCP segment (header and payload) over a byte buffer that ends where the IP payload ends.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Checks that the fixed header is present and the data offset is 5..=15 words and
    /// within the segment.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = TcpPacket { buffer };
        let hl = p.header_len();
        if hl < HEADER_LEN || hl > len {
            return Err(WireError::BadDataOffset);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.b(), field::SRC_PORT)
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), field::DST_PORT)
    }
    #[inline]
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(be32(self.b(), field::SEQ))
    }
    #[inline]
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(be32(self.b(), field::ACK))
    }
    /// The header length in bytes, from the data offset field.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::DATA_OFF] >> 4) * 4
    }
    #[inline]
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.b(), field::WINDOW)
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(self.b(), field::URGENT)
    }
    /// The option bytes (between the fixed header and the payload).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.b()[field::OPTIONS..self.header_len()]
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
    /// The sequence space the segment occupies: payload plus one for SYN and one for FIN.
    #[inline]
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }
    /// The options, each with its offset from the start of the TCP header.
    #[inline]
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options(), field::OPTIONS)
    }
    /// The header, options included (the bytes an [`OptionMap`]'s offsets point into).
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }
    /// Where the options the fast path reads and rewrites sit, found in one walk.
    #[inline]
    pub fn option_map(&self) -> OptionMap {
        OptionMap::parse(self.options())
    }
    /// Verifies the checksum against the IPv4 pseudo-header.
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.b();
        let acc = crate::checksum::pseudo_header_sum(src, dst, 6, b.len() as u16)
            + crate::checksum::sum(b);
        crate::checksum::fold(acc) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.bm(), field::SRC_PORT, v)
    }
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.bm(), field::DST_PORT, v)
    }
    #[inline]
    pub fn set_seq_number(&mut self, v: SeqNumber) {
        put32(self.bm(), field::SEQ, v.0)
    }
    #[inline]
    pub fn set_ack_number(&mut self, v: SeqNumber) {
        put32(self.bm(), field::ACK, v.0)
    }
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.bm()[field::FLAGS] = v
    }
    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        put16(self.bm(), field::WINDOW, v)
    }
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.bm(), field::CHECKSUM, v)
    }
    /// The whole header, options included, for in-place option rewriting.
    #[inline]
    pub fn header_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.bm()[..hl]
    }
    /// Recomputes the checksum from scratch (for tests and packets built by the control plane).
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let acc = crate::checksum::pseudo_header_sum(src, dst, 6, b.len() as u16)
            + crate::checksum::sum(b);
        let c = !crate::checksum::fold(acc);
        self.set_checksum(c);
    }
}

/// Up to four SACK blocks, left and right edges (RFC 2018 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    pub blocks: [(SeqNumber, SeqNumber); 4],
    pub count: u8,
}

impl SackBlocks {
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.blocks[..usize::from(self.count)]
    }
}

/// One parsed TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    End,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(SackBlocks),
    Timestamps { tsval: u32, tsecr: u32 },
    Unknown { kind: u8, data: &'a [u8] },
}

/// Iterates the options of a header, yielding `(offset_in_tcp_header, option)`.
///
/// After `End`, or after an error, the iterator is finished. Padding after `End` is not
/// inspected.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
    done: bool,
}

impl<'a> TcpOptions<'a> {
    /// `base` is the offset of `bytes[0]` inside the TCP header (20 for a real header).
    pub fn new(bytes: &'a [u8], base: usize) -> Self {
        TcpOptions {
            bytes,
            pos: 0,
            base,
            done: false,
        }
    }

    fn parse_one(&mut self) -> Result<TcpOption<'a>, WireError> {
        let b = self.bytes;
        let kind = b[self.pos];
        match kind {
            kind::END => {
                self.done = true;
                return Ok(TcpOption::End);
            }
            kind::NOP => {
                self.pos += 1;
                return Ok(TcpOption::Nop);
            }
            _ => {}
        }
        let len = match b.get(self.pos + option_field::LEN) {
            Some(&l) => usize::from(l),
            None => return Err(WireError::BadOption),
        };
        if len < option_field::DATA || self.pos + len > b.len() {
            return Err(WireError::BadOption);
        }
        let data = &b[self.pos + option_field::DATA..self.pos + len];
        let opt = match (kind, len) {
            (kind::MSS, 4) => TcpOption::Mss(be16(data, 0)),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::TIMESTAMPS, TIMESTAMPS_LEN) => TcpOption::Timestamps {
                tsval: be32(b, self.pos + option_field::TSVAL),
                tsecr: be32(b, self.pos + option_field::TSECR),
            },
            (kind::SACK, l) if (10..=34).contains(&l) && (l - 2) % 8 == 0 => {
                let mut s = SackBlocks::default();
                for (i, chunk) in data.chunks_exact(option_field::SACK_BLOCK_LEN).enumerate() {
                    s.blocks[i] = (
                        SeqNumber(be32(chunk, 0)),
                        SeqNumber(be32(chunk, option_field::SACK_RIGHT)),
                    );
                    s.count += 1;
                }
                TcpOption::Sack(s)
            }
            (
                kind::MSS
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::TIMESTAMPS
                | kind::SACK,
                _,
            ) => return Err(WireError::BadOption),
            _ => TcpOption::Unknown { kind, data },
        };
        self.pos += len;
        Ok(opt)
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<(usize, TcpOption<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let at = self.base + self.pos;
        let r = self.parse_one();
        if r.is_err() {
            self.done = true;
        }
        Some(r.map(|o| (at, o)))
    }
}

/// Timestamps and SACK options one option list can hold: each takes at least 10 of its at
/// most 40 bytes.
const MAPPED_MAX: usize = 4;

/// The options of one header that the fast path needs, located by a single walk: the
/// timestamps and SACK options (offsets only, so the rewrite patches them in place and the
/// tracker reads the SACK edges without copying anything), the window scale, and whether the
/// list is malformed.
///
/// It walks exactly as [`TcpOptions`] does and stops where that reports
/// [`WireError::BadOption`], so what it holds is what the iterator yields before the error; a
/// SYN's window scale is only given for a list [`SynOptions::parse`] accepts. A header
/// without options (20 bytes) gives the empty map without reading a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionMap {
    /// Offsets from the start of the TCP header of the mapped options, in list order.
    at: [u8; MAPPED_MAX],
    /// Per mapped option: 0 for timestamps, else the number of SACK blocks (1..=4).
    blocks: [u8; MAPPED_MAX],
    len: u8,
    window_scale: Option<u8>,
    malformed: bool,
}

/// One option an [`OptionMap`] located; `at` is its offset from the start of the TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappedOption {
    /// TSval at `at + 2`, TSecr at `at + 6`.
    Timestamps { at: usize },
    /// Block `i` has its left edge at `at + 2 + 8 * i` and its right edge 4 bytes later.
    Sack { at: usize, blocks: usize },
}

impl OptionMap {
    /// Walks `options` (the bytes after the fixed header).
    #[inline]
    pub fn parse(options: &[u8]) -> OptionMap {
        let mut m = OptionMap::default();
        if options.is_empty() {
            return m;
        }
        let mut pos = 0;
        while pos < options.len() {
            let k = options[pos];
            if k == kind::END {
                break;
            }
            if k == kind::NOP {
                pos += 1;
                continue;
            }
            let len = match options.get(pos + option_field::LEN) {
                Some(&l) => usize::from(l),
                None => {
                    m.malformed = true;
                    break;
                }
            };
            if len < option_field::DATA || pos + len > options.len() {
                m.malformed = true;
                break;
            }
            match (k, len) {
                (kind::TIMESTAMPS, TIMESTAMPS_LEN) => m.push(pos, 0),
                (kind::SACK, l) if (10..=34).contains(&l) && (l - 2) % 8 == 0 => {
                    m.push(pos, ((l - 2) / 8) as u8)
                }
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                (kind::WINDOW_SCALE, 3) => {
                    m.window_scale = Some(options[pos + option_field::DATA].min(14))
                }
                (kind::MSS, 4) | (kind::SACK_PERMITTED, 2) => {}
                (
                    kind::MSS
                    | kind::WINDOW_SCALE
                    | kind::SACK_PERMITTED
                    | kind::TIMESTAMPS
                    | kind::SACK,
                    _,
                ) => {
                    m.malformed = true;
                    break;
                }
                _ => {}
            }
            pos += len;
        }
        m
    }

    #[inline]
    fn push(&mut self, pos: usize, blocks: u8) {
        let i = usize::from(self.len);
        // Never full (see MAPPED_MAX); the guard only keeps a logic error from panicking.
        if i < MAPPED_MAX {
            self.at[i] = (HEADER_LEN + pos) as u8;
            self.blocks[i] = blocks;
            self.len += 1;
        }
    }

    /// The offset of the timestamps option from the start of the header, if mapped.
    #[inline]
    pub fn timestamps_at(&self) -> Option<usize> {
        self.iter().find_map(|o| match o {
            MappedOption::Timestamps { at } => Some(at),
            MappedOption::Sack { .. } => None,
        })
    }

    /// The list stopped at a malformed option; the map holds what came before it.
    #[inline]
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// The window scale a SYN announces (clamped to 14), as [`SynOptions::parse`] gives it:
    /// none for a malformed list.
    #[inline]
    pub fn window_scale(&self) -> Option<u8> {
        if self.malformed {
            None
        } else {
            self.window_scale
        }
    }

    /// True when there is nothing to rewrite or read: no timestamps, no SACK.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The timestamps and SACK options, in list order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = MappedOption> + '_ {
        self.at[..usize::from(self.len)]
            .iter()
            .zip(&self.blocks)
            .map(|(&at, &blocks)| match blocks {
                0 => MappedOption::Timestamps {
                    at: usize::from(at),
                },
                n => MappedOption::Sack {
                    at: usize::from(at),
                    blocks: usize::from(n),
                },
            })
    }

    /// The SACK blocks, in list order, read from `header` (the header this map was made of).
    #[inline]
    pub fn sack_blocks<'h>(
        &'h self,
        header: &'h [u8],
    ) -> impl Iterator<Item = (SeqNumber, SeqNumber)> + 'h {
        self.iter()
            .filter_map(|o| match o {
                MappedOption::Sack { at, blocks } => Some((at, blocks)),
                MappedOption::Timestamps { .. } => None,
            })
            .flat_map(move |(at, blocks)| {
                (0..blocks).map(move |i| {
                    let e = at + option_field::DATA + option_field::SACK_BLOCK_LEN * i;
                    (
                        SeqNumber(be32(header, e)),
                        SeqNumber(be32(header, e + option_field::SACK_RIGHT)),
                    )
                })
            })
    }

    /// The TSval of the timestamps option, read from `header` (the header this map was made
    /// of); `None` without one.
    #[inline]
    pub fn tsval(&self, header: &[u8]) -> Option<u32> {
        let at = self.timestamps_at()? + option_field::TSVAL;
        let b = header.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// What a SYN or SYN-ACK announced, gathered in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: Option<(u32, u32)>,
}

impl SynOptions {
    /// Collects the options the handshake negotiates; a malformed option list is an error.
    pub fn parse(options: &[u8]) -> Result<SynOptions, WireError> {
        let mut s = SynOptions::default();
        for item in TcpOptions::new(options, HEADER_LEN) {
            match item?.1 {
                TcpOption::Mss(m) => s.mss = Some(m),
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                TcpOption::WindowScale(w) => s.window_scale = Some(w.min(14)),
                TcpOption::SackPermitted => s.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => s.timestamps = Some((tsval, tsecr)),
                _ => {}
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
