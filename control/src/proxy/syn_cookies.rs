//! SYN cookies on the proxy's side: when a SYN gets one, answering it, checking the ACK that
//! returns one, and telling the workers (see [`super::cookie`] for the cookie itself).

use common::config::SynCookies;
use common::flow::FlowKey;
use common::wire::ipv4::Ipv4Packet;
use common::wire::tcp::{SynOptions, TcpOption, TcpOptions, TcpPacket};
use dataplane::contract::ToControl;
use dataplane::packet::Packet;

use super::{announce, cookie, leg, Proxy, MAX_EMBRYONIC};
use crate::local::LocalStack;
use dataplane::contract::ControlIo;

impl Proxy {
    /// Tells the workers whether SYNs now get cookies (so they keep no placeholder for them).
    pub(super) fn signal_cookies<P>(&mut self, io: &mut impl ControlIo<P>) {
        let on = self.cookie_time();
        if on != self.cookies_signalled {
            self.cookies_signalled = on;
            io.syn_cookies(on);
        }
    }

    /// Whether a SYN to a `proxy` rule gets a cookie instead of a connection now.
    pub(super) fn cookie_time(&self) -> bool {
        match self.settings.config.proxy.syn_cookies {
            SynCookies::Always => true,
            SynCookies::Auto => self.embryonic.len() >= MAX_EMBRYONIC,
            SynCookies::Never => false,
        }
    }

    /// Answers the SYN in `msg` with a cookie.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_cookie<P: Packet>(
        &mut self,
        key: FlowKey,
        msg: &ToControl<P>,
        ip_off: std::ops::Range<usize>,
        opts: &SynOptions,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        let Some(isn) = Ipv4Packet::new_checked(&msg.pkt.data()[ip_off])
            .ok()
            .and_then(|ip| {
                TcpPacket::new_checked(ip.payload())
                    .ok()
                    .map(|t| t.seq_number().0)
            })
        else {
            self.counters.malformed += 1;
            return;
        };
        let answer = cookie::SynAck {
            isn: self.cookies.make(&key, isn, opts, now_ms),
            // The server is not asked (nothing is kept for a cookie): the configured clamp.
            mss: announce::to_client(opts, None, self.settings.config.proxy.client_mss)
                .mss
                .unwrap_or(announce::MAX_MSS),
            window_shift: leg::WINDOW_SHIFT,
            tsval: Some(leg::tsval_at(now_ms)),
        };
        let ip = cookie::syn_ack(&key, isn, opts, &answer);
        local.send_ip(msg.iface, &ip, now_ms as u32, io);
        self.counters.syn_cookies_sent += 1;
    }

    /// If the segment `ip` (an ACK without a flow) acknowledges a cookie of ours: the client's
    /// ISN, the cookie, its window, and the SYN's options (timestamps from the ACK).
    pub(super) fn check_cookie(
        &self,
        key: FlowKey,
        ip: &[u8],
        now_ms: u64,
    ) -> Option<(Answered, SynOptions)> {
        let ip = Ipv4Packet::new_checked(ip).ok()?;
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        let isn = tcp.seq_number().0.wrapping_sub(1);
        let cookie = tcp.ack_number().0.wrapping_sub(1);
        let mut opts = self.cookies.check(&key, isn, cookie, now_ms)?;
        let tsval = TcpOptions::new(tcp.options(), 20).find_map(|o| match o {
            Ok((_, TcpOption::Timestamps { tsval, .. })) => Some(tsval),
            _ => None,
        });
        opts.timestamps = tsval.map(|v| (v, 0));
        let answered = Answered {
            isn,
            cookie,
            window: tcp.window_len(),
        };
        Some((answered, opts))
    }
}

/// What the ACK of a cookie tells: the client's ISN, the cookie (the box's ISN) and the
/// client's window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answered {
    pub isn: u32,
    pub cookie: u32,
    pub window: u16,
}
