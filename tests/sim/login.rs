//! One proxied connection from the client's side, shared by the splice simulations: the
//! application step of its rule's login, and its end (bulk both ways, both sides closed).

use common::config::AuthMethod;

use super::script::*;
use super::*;

impl Sim {
    /// One worker on a clean network, the box logging as `RUST_LOG` says.
    pub fn clean(seed: u64) -> Sim {
        let _ = env_logger::builder().is_test(true).try_init();
        Sim::new(seed, 1, Faults::NONE)
    }

    /// A listener on `port` and a client from a fresh port connecting to it: (client,
    /// server, client port).
    pub fn dial(&mut self, port: u16) -> (EpId, EpId, u16) {
        let server = self.listen(port);
        let cport = self.client_port();
        (self.connect(cport, port), server, cport)
    }
}

/// The `line` client answers the user name prompt with `alice` and waits for the password
/// prompt.
pub fn line_prompts(sim: &mut Sim, client: EpId) {
    expect_from_box(sim, client, b"Username: ", "the user name prompt");
    sim.send(client, b"alice\r\n");
    expect_from_box(sim, client, b"Username: Password: ", "the password prompt");
}

/// Drives the application step of a rule with `auth` to its end (authenticated, the request
/// delivered) on the connection `client` → `server`: `none`, the client says hello and the
/// server sends a banner, both at once; `line`, the server's banner and `alice`, `wonderland`
/// with the client's first bytes in the password's segment, or only after the welcome with
/// `leftover_after_welcome` (the drain then waits for them); `http-basic`, a GET with
/// credentials. Checks no login failed (`what` starts the message) and returns what each
/// stream carried so far (client→server, server→client).
pub fn application_step(
    sim: &mut Sim,
    what: &str,
    auth: AuthMethod,
    leftover_after_welcome: bool,
    client: EpId,
    server: EpId,
) -> (Vec<u8>, Vec<u8>) {
    let streams = match auth {
        AuthMethod::None => {
            // Written as soon as each side is connected.
            sim.send(server, BANNER);
            sim.send(client, HELLO);
            (HELLO.to_vec(), BANNER.to_vec())
        }
        AuthMethod::Line => {
            sim.send(server, BANNER);
            line_prompts(sim, client);
            if leftover_after_welcome {
                sim.send(client, PASSWORD_LINE);
                expect_from_box(sim, client, LINE_OUTPUT, "the welcome");
                sim.send(client, LEFTOVER);
            } else {
                sim.send(client, &[PASSWORD_LINE, LEFTOVER].concat());
                expect_from_box(sim, client, LINE_OUTPUT, "the welcome");
            }
            (LEFTOVER.to_vec(), [LINE_OUTPUT, BANNER].concat())
        }
        AuthMethod::HttpBasic => {
            let seed = sim.seed;
            http_first_request(sim, seed, client, server)
        }
    };
    assert_eq!(
        sim.proxy_connections().auth_failed,
        0,
        "{what}: authentication failed\n{}",
        sim.report()
    );
    streams
}

/// The end of the connection `client` (from `cport`) → `server`: queues `bulk` bytes each
/// way, appends them to what each stream must carry (`c2s`, `s2c`), closes both sides after
/// them, runs until both have everything and have closed, and checks both streams
/// byte-exact. `what` starts every failure message.
pub fn finish_both_ways(
    sim: &mut Sim,
    what: &str,
    (client, server): (EpId, EpId),
    cport: u16,
    (c2s, s2c): (&mut Vec<u8>, &mut Vec<u8>),
    bulk: usize,
) {
    let seed = sim.seed;
    let bc = payload(seed, stream_id(cport, Dir::ClientToServer), bulk);
    let bs = payload(seed, stream_id(cport, Dir::ServerToClient), bulk);
    sim.send(client, &bc);
    sim.send(server, &bs);
    sim.close_when_sent(client);
    sim.close_when_sent(server);
    c2s.extend_from_slice(&bc);
    s2c.extend_from_slice(&bs);
    let (nc, ns) = (s2c.len(), c2s.len());
    let done = sim.try_run_until(MAX_STEPS, |s| {
        s.received(client).len() >= nc
            && s.received(server).len() >= ns
            && s.is_finished(client)
            && s.is_finished(server)
    });
    // Bytes first: a wrong byte explains more than a stuck close.
    let dport = sim.endpoint(client).peer_port.unwrap_or(0);
    for (dir, expected, got) in [
        (
            format!("client:{cport} -> server:{dport}"),
            &*c2s,
            sim.received(server),
        ),
        (
            format!("server:{dport} -> client:{cport}"),
            &*s2c,
            sim.received(client),
        ),
    ] {
        if expected != got {
            panic!(
                "{what}: {dir}: expected {} bytes, got {}; first difference at offset {}{}\n{}\n\
                 last segments:\n{}",
                expected.len(),
                got.len(),
                first_difference(expected, got),
                if done.is_err() { " (not finished)" } else { "" },
                sim.report(),
                sim.last_segments(cport, 12)
            );
        }
    }
    if done.is_err() {
        let stalled: Vec<&str> = [(client, "client"), (server, "server")]
            .into_iter()
            .filter(|&(ep, _)| sim.fin_stalled(ep))
            .map(|(_, name)| name)
            .collect();
        panic!(
            "{what}: both sides did not finish closing (FIN stalled in smoltcp: {stalled:?})\n\
             {}\nlast segments:\n{}",
            sim.report(),
            sim.last_segments(cport, 12)
        );
    }
}

/// The four handshake segments of a proxied connection as they were put on the links.
pub struct Handshakes {
    pub client_syn: SegInfo,
    pub box_synack: SegInfo,
    pub box_syn: SegInfo,
    pub server_synack: SegInfo,
}

impl fmt::Display for Handshakes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SYNs: client {}, box→client {}, box→server {}, server {}",
            self.client_syn, self.box_synack, self.box_syn, self.server_synack
        )
    }
}

impl Handshakes {
    /// Checks the installed object's Δ1 and Δ2 against the initial sequence numbers on the
    /// wire and the bytes the box kept of the client's stream (`consumed`) and said to the
    /// client itself (`produced`): an oracle of the wire's, independent of the box's splice
    /// code. `what` starts the message.
    pub fn assert_deltas(&self, what: &str, conn: &Conn, consumed: u32, produced: u32) {
        let delta1 = self
            .box_syn
            .seq
            .wrapping_sub(self.client_syn.seq)
            .wrapping_sub(consumed);
        let delta2 = self
            .box_synack
            .seq
            .wrapping_sub(self.server_synack.seq)
            .wrapping_add(produced);
        assert_eq!(
            (conn.delta1, conn.delta2),
            (delta1, delta2),
            "{what}: (Δ1, Δ2) of {conn:?}; {self}"
        );
    }
}
