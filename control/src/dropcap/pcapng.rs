//! The pcapng blocks the drop capture writes (draft-ietf-opsawg-pcapng): a Section Header
//! Block, one Interface Description Block per port, Enhanced Packet Blocks. Little-endian;
//! readers take the byte order from the section header's magic. Every block and option is
//! padded to 32 bits, and a block's length is written at both ends so readers can walk it
//! either way.

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u16 = 1;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;
/// `epb_flags` direction bits: inbound (the box received every frame it drops).
const EPB_INBOUND: u32 = 0b01;

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// Appends `value` zero-padded to 32 bits.
fn put_padded(b: &mut Vec<u8>, value: &[u8]) {
    b.extend_from_slice(value);
    b.resize(b.len() + pad4(value.len()) - value.len(), 0);
}

fn option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    put16(b, code);
    put16(b, value.len() as u16);
    put_padded(b, value);
}

/// Appends a block of type `ty` whose body `body` writes, with both length fields.
fn block(b: &mut Vec<u8>, ty: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    put32(b, ty);
    put32(b, 0);
    body(b);
    let len = (b.len() - start + 4) as u32;
    put32(b, len);
    b[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
}

/// The head of every file: a section, then one interface per name (link type Ethernet,
/// microsecond timestamps), numbered from 0 in order.
pub fn header(b: &mut Vec<u8>, application: &str, interfaces: &[&str], snaplen: u32) {
    block(b, SHB, |b| {
        put32(b, BYTE_ORDER_MAGIC);
        put16(b, 1);
        put16(b, 0);
        // Section length unknown: the file grows as it is written.
        b.extend_from_slice(&(-1i64).to_le_bytes());
        option(b, SHB_USERAPPL, application.as_bytes());
        option(b, OPT_END, &[]);
    });
    for name in interfaces {
        block(b, IDB, |b| {
            put16(b, LINKTYPE_ETHERNET);
            put16(b, 0);
            put32(b, snaplen);
            option(b, IF_NAME, name.as_bytes());
            option(b, IF_TSRESOL, &[6]);
            option(b, OPT_END, &[]);
        });
    }
}

/// A received frame: the first `snaplen` bytes of it with its original length, its
/// timestamp in microseconds since the epoch, a comment, and the inbound flag.
pub fn packet(
    b: &mut Vec<u8>,
    interface: u32,
    ts_us: u64,
    frame: &[u8],
    snaplen: u32,
    comment: &str,
) {
    let kept = &frame[..frame.len().min(snaplen as usize)];
    block(b, EPB, |b| {
        put32(b, interface);
        put32(b, (ts_us >> 32) as u32);
        put32(b, ts_us as u32);
        put32(b, kept.len() as u32);
        put32(b, frame.len() as u32);
        put_padded(b, kept);
        option(b, OPT_COMMENT, comment.as_bytes());
        option(b, EPB_FLAGS, &EPB_INBOUND.to_le_bytes());
        option(b, OPT_END, &[]);
    });
}
