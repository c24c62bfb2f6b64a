//! What the box announces on each leg's handshake, so that after the splice neither peer is
//! allowed more than the other accepts (DESIGN.md §4 "MSS") and neither receives an option
//! it did not negotiate.
//!
//! An MSS counts the data and the options of a segment (RFC 6691): a peer told `m` sends at
//! most `m` bytes of both. Where the fast path will insert a timestamp option into a peer's
//! segments (that peer did not negotiate timestamps, the other one did), the box announces
//! to it 12 bytes less, so the grown segments still fit what the other side accepts. That
//! peer is always the server: the box offers the server timestamps only when the client
//! sent them, so a client without timestamps never meets a server with them.
//!
//! Toward the server the box knows the client's SYN, so it announces the client's MSS (less
//! the room for an inserted option unless the server is known to send timestamps itself).
//! Toward the client it announces what the server accepts when it knows it (from the
//! server's SYN-ACK with auth `none`, or from the cache of servers' options), otherwise
//! `min(client's MSS, proxy.client_mss)`; a server that turns out to accept less gets the
//! client's segments split by the fast path.

use common::config::Interface;
use common::wire::tcp::SynOptions;
use common::wire::{ipv4, tcp};

use super::leg::SynAnnounce;

/// The bytes an inserted timestamp option adds to a segment (NOP, NOP, kind, length,
/// TSval, TSecr).
pub const TS_ROOM: u16 = 12;

pub use common::wire::tcp::DEFAULT_MSS;

/// An IPv4 and a TCP header without options: what an MTU holds beside an MSS.
pub const IP_TCP_HEADERS: u16 = (ipv4::HEADER_LEN + tcp::HEADER_LEN) as u16;

/// The most MSS the box announces: what the MTU of its legs' interfaces holds.
pub const MAX_MSS: u16 = Interface::DEFAULT_MTU - IP_TCP_HEADERS;

fn mss_of(o: &SynOptions) -> u16 {
    o.mss.filter(|&m| m != 0).unwrap_or(DEFAULT_MSS)
}

/// What the client leg's SYN-ACK announces to a client that sent `client`: `server` is what
/// the server announced if the box knows it, `client_mss` the configured clamp used
/// otherwise.
pub fn to_client(client: &SynOptions, server: Option<&SynOptions>, client_mss: u16) -> SynAnnounce {
    let base = match server {
        Some(s) => mss_of(s),
        None => mss_of(client).min(client_mss),
    };
    SynAnnounce {
        mss: Some(base.clamp(DEFAULT_MSS - TS_ROOM, MAX_MSS)),
        sack: server.is_none_or(|s| s.sack_permitted),
    }
}

/// What the server leg's SYN announces for a client that sent `client`; `server` is what the
/// server announced last time, if the box remembers it.
pub fn to_server(client: &SynOptions, server: Option<&SynOptions>) -> SynAnnounce {
    let client_ts = client.timestamps.is_some();
    let server_ts = server.is_none_or(|s| s.timestamps.is_some());
    // Unknown servers get the room too: a server without timestamps would otherwise send
    // segments that no longer fit the client once the option is added.
    let room = if client_ts && !(server.is_some() && server_ts) {
        TS_ROOM
    } else {
        0
    };
    SynAnnounce {
        mss: Some(
            mss_of(client)
                .min(MAX_MSS)
                .saturating_sub(room)
                .max(DEFAULT_MSS - TS_ROOM),
        ),
        sack: client.sack_permitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(mss: u16, ts: bool, sack: bool) -> SynOptions {
        SynOptions {
            mss: Some(mss),
            window_scale: Some(7),
            sack_permitted: sack,
            timestamps: ts.then_some((1, 0)),
        }
    }

    #[test]
    fn a_known_server_is_announced_to_the_client() {
        let c = syn(1460, true, true);
        let a = to_client(&c, Some(&syn(1400, true, true)), 1380);
        assert_eq!(a.mss, Some(1400));
        assert!(a.sack);
    }

    #[test]
    fn an_unknown_server_gets_the_configured_clamp() {
        assert_eq!(
            to_client(&syn(1460, true, true), None, 1380).mss,
            Some(1380)
        );
        assert_eq!(
            to_client(&syn(1220, true, true), None, 1380).mss,
            Some(1220)
        );
    }

    #[test]
    fn a_client_without_timestamps_needs_no_room_the_server_never_gets_them() {
        let c = syn(1460, false, true);
        assert_eq!(to_client(&c, None, 1380).mss, Some(1380));
        assert_eq!(to_server(&c, None).mss, Some(1460));
    }

    #[test]
    fn the_server_is_told_what_the_client_accepts() {
        // The client sends timestamps: unless the server is known to, room for inserting.
        let c = syn(1360, true, true);
        assert_eq!(to_server(&c, None).mss, Some(1348));
        assert_eq!(to_server(&c, Some(&syn(1460, false, true))).mss, Some(1348));
        assert_eq!(to_server(&c, Some(&syn(1460, true, true))).mss, Some(1360));
        assert_eq!(to_server(&syn(1460, false, true), None).mss, Some(1460));
    }

    #[test]
    fn sack_is_offered_only_where_the_other_side_has_it() {
        assert!(!to_server(&syn(1460, true, false), None).sack);
        assert!(to_server(&syn(1460, true, true), None).sack);
        assert!(!to_client(&syn(1460, true, true), Some(&syn(1460, true, false)), 1380).sack);
    }

    #[test]
    fn no_announcement_is_below_the_minimum() {
        let c = syn(536, true, true);
        assert_eq!(to_server(&c, None).mss, Some(524));
        let none = SynOptions::default();
        assert_eq!(to_server(&none, None).mss, Some(536));
    }
}
