//! The codec on byte arrays (RFC 2865 §7.1's worked example first), then the client against
//! UDP sockets of the test playing servers that answer wrong things, late, or not at all.
//! The tests against a real FreeRADIUS are in `tests/radius.rs`.

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use common::config::{Radius, RadiusServer};
use common::wire::Ipv4Addr;
use md5::{Digest, Md5};

use super::packet::*;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn auth16(s: &str) -> Authenticator {
    hex(s).try_into().unwrap()
}

const RFC_SECRET: &[u8] = b"xyzzy5461";
const RFC_AUTH: &str = "0f403f9473978057bd83d5cb98f4227a";

/// The attributes of a packet as (type, value), checking the framing on the way.
fn attributes(p: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < p.len() {
        let len = usize::from(p[at + 1]);
        assert!(len >= 2 && at + len <= p.len(), "attribute framing at {at}");
        out.push((p[at], p[at + 2..at + len].to_vec()));
        at += len;
    }
    out
}

fn attribute(p: &[u8], kind: u8) -> Option<Vec<u8>> {
    attributes(p)
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| v)
}

/// What a server checks in an Access-Request's Message-Authenticator.
fn request_ma_checks(p: &[u8], secret: &[u8]) -> bool {
    let mut at = HEADER_LEN;
    while at < p.len() {
        if p[at] == MESSAGE_AUTHENTICATOR {
            let mut copy = p.to_vec();
            copy[at + 2..at + 18].fill(0);
            return message_authenticator(&copy, secret)[..] == p[at + 2..at + 18];
        }
        at += usize::from(p[at + 1]);
    }
    false
}

// ---- the codec ----

#[test]
fn rfc2865_example_hides_arctangent() {
    let hidden = hide_password(b"arctangent", RFC_SECRET, &auth16(RFC_AUTH)).unwrap();
    assert_eq!(hidden, hex("0dbe708d93d413ce3196e43f782a0aee"));
    let mut padded = b"arctangent".to_vec();
    padded.resize(16, 0);
    assert_eq!(
        unhide_password(&hidden, RFC_SECRET, &auth16(RFC_AUTH)),
        padded
    );
}

#[test]
fn rfc2865_example_access_accept_checks() {
    // RFC 2865 §7.1: the Access-Accept answering the request above (Service-Type Login,
    // Login-Service Telnet, Login-IP-Host 192.168.1.3).
    let accept = hex("02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
         06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03");
    assert_eq!(
        check_response(&accept, 0, &auth16(RFC_AUTH), RFC_SECRET),
        Ok(Code::Accept)
    );
    assert_eq!(
        check_response(&accept, 0, &auth16(RFC_AUTH), b"xyzzy5462"),
        Err(BadResponse::BadAuthenticator)
    );
}

#[test]
fn password_of_two_blocks_chains_on_the_first_hidden_block() {
    let secret = b"s3cret";
    let auth = auth16("00112233445566778899aabbccddeeff");
    let password = b"correct horse battery"; // 21 bytes: two blocks
    let hidden = hide_password(password, secret, &auth).unwrap();
    assert_eq!(hidden.len(), 32);

    // A deliberate oracle: the keys are computed here from RFC 2865 §5.2, not with the codec's.
    let mut padded = password.to_vec();
    padded.resize(32, 0);
    let key1 = Md5::digest([&secret[..], &auth[..]].concat());
    let key2 = Md5::digest([&secret[..], &hidden[..16]].concat());
    let expected: Vec<u8> = padded[..16]
        .iter()
        .zip(key1.iter())
        .chain(padded[16..].iter().zip(key2.iter()))
        .map(|(p, k)| p ^ k)
        .collect();
    assert_eq!(hidden, expected);
    assert_eq!(unhide_password(&hidden, secret, &auth), padded);
}

#[test]
fn password_lengths_pad_to_blocks_up_to_128() {
    let auth = [7u8; 16];
    for (len, hidden_len) in [
        (0, 16),
        (1, 16),
        (16, 16),
        (17, 32),
        (32, 32),
        (127, 128),
        (128, 128),
    ] {
        let password = vec![b'p'; len];
        let hidden = hide_password(&password, b"k", &auth).unwrap();
        assert_eq!(hidden.len(), hidden_len, "password of {len} bytes");
        assert_eq!(&unhide_password(&hidden, b"k", &auth)[..len], &password[..]);
    }
    assert_eq!(
        hide_password(&[b'p'; 129], b"k", &auth),
        Err(EncodeError::PasswordTooLong)
    );
}

#[test]
fn access_request_carries_the_attributes_and_a_checking_message_authenticator() {
    let auth = auth16("a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5");
    let p =
        encode_access_request(0x42, &auth, b"alice", b"wonderland", b"s3cret", b"box-1").unwrap();
    assert_eq!(p[CODE], ACCESS_REQUEST);
    assert_eq!(p[IDENTIFIER], 0x42);
    assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
    assert_eq!(&p[AUTHENTICATOR], &auth[..]);

    let attrs = attributes(&p);
    let kinds: Vec<u8> = attrs.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            MESSAGE_AUTHENTICATOR,
            USER_NAME,
            USER_PASSWORD,
            SERVICE_TYPE,
            NAS_IDENTIFIER,
            NAS_PORT_TYPE
        ]
    );
    assert_eq!(attribute(&p, USER_NAME).unwrap(), b"alice");
    assert_eq!(attribute(&p, NAS_IDENTIFIER).unwrap(), b"box-1");
    assert_eq!(attribute(&p, SERVICE_TYPE).unwrap(), [0, 0, 0, 1]);
    assert_eq!(attribute(&p, NAS_PORT_TYPE).unwrap(), [0, 0, 0, 5]);
    let mut clear = unhide_password(&attribute(&p, USER_PASSWORD).unwrap(), b"s3cret", &auth);
    assert_eq!(clear.len(), 16);
    clear.truncate(10);
    assert_eq!(clear, b"wonderland");

    assert!(request_ma_checks(&p, b"s3cret"));
    assert!(!request_ma_checks(&p, b"s3creT"));
    let mut tampered = p.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(!request_ma_checks(&tampered, b"s3cret"));
}

#[test]
fn unsendable_requests_are_refused() {
    let auth = [0u8; 16];
    let enc = |name: &[u8], password: &[u8], nas: &[u8]| {
        encode_access_request(1, &auth, name, password, b"k", nas).map(|_| ())
    };
    assert_eq!(enc(b"", b"pw", b"n"), Err(EncodeError::EmptyName));
    assert_eq!(
        enc(&[b'n'; 254], b"pw", b"n"),
        Err(EncodeError::NameTooLong)
    );
    assert_eq!(enc(&[b'n'; 253], &[b'p'; 128], b"n"), Ok(()));
    assert_eq!(
        enc(b"a", &[b'p'; 129], b"n"),
        Err(EncodeError::PasswordTooLong)
    );
    assert_eq!(enc(b"a", b"pw", b""), Err(EncodeError::NasIdentifier));
    assert_eq!(
        enc(b"a", b"pw", &[b'n'; 254]),
        Err(EncodeError::NasIdentifier)
    );
}

const AUTH: Authenticator = [0x5a; 16];
const SECRET: &[u8] = b"s3cret";
/// A Reply-Message attribute, so responses have something besides the header.
const REPLY: &[u8] = b"\x12\x07hello";

#[test]
fn message_authenticator_round_trip() {
    for code in [ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE] {
        let with = encode_response(code, 9, &AUTH, REPLY, true, SECRET);
        let without = encode_response(code, 9, &AUTH, REPLY, false, SECRET);
        assert_eq!(with.len(), without.len() + 18);
        let want = match code {
            ACCESS_ACCEPT => Code::Accept,
            ACCESS_REJECT => Code::Reject,
            _ => Code::Challenge,
        };
        assert_eq!(check_response(&with, 9, &AUTH, SECRET), Ok(want));
        assert_eq!(check_response(&without, 9, &AUTH, SECRET), Ok(want));
    }
}

/// `p` with its Response Authenticator recomputed, as a server holding the secret would.
fn resign(mut p: Vec<u8>) -> Vec<u8> {
    let auth = response_authenticator(&p, &AUTH, SECRET);
    p[AUTHENTICATOR].copy_from_slice(&auth);
    p
}

#[test]
fn tampered_responses_are_rejected() {
    let good = encode_response(ACCESS_ACCEPT, 9, &AUTH, REPLY, true, SECRET);
    let check = |p: &[u8]| check_response(p, 9, &AUTH, SECRET);
    assert_eq!(check(&good), Ok(Code::Accept));

    assert_eq!(check(&good[..19]), Err(BadResponse::TooShort));
    assert_eq!(
        check_response(&good, 10, &AUTH, SECRET),
        Err(BadResponse::WrongId { got: 9, want: 10 })
    );
    assert_eq!(
        check_response(&good, 9, &[0xa5; 16], SECRET),
        Err(BadResponse::BadAuthenticator)
    );
    assert_eq!(
        check_response(&good, 9, &AUTH, b"other"),
        Err(BadResponse::BadAuthenticator)
    );

    let mut p = good.clone();
    p[AUTHENTICATOR.start] ^= 0x80;
    assert_eq!(check(&p), Err(BadResponse::BadAuthenticator));

    for length in [0u16, 19, good.len() as u16 + 1, 4097, u16::MAX] {
        let mut p = good.clone();
        p[LENGTH].copy_from_slice(&length.to_be_bytes());
        assert_eq!(check(&p), Err(BadResponse::BadLength(length)), "{length}");
    }

    let mut p = good.clone();
    p[CODE] = ACCESS_REQUEST;
    assert_eq!(check(&resign(p)), Err(BadResponse::UnexpectedCode(1)));

    // A Message-Authenticator that does not check under an authenticator that does: only a
    // holder of the secret could build this, but the check must not depend on that.
    let mut p = good.clone();
    let ma = p.len() - 16;
    p[ma] ^= 1;
    assert_eq!(check(&resign(p)), Err(BadResponse::BadMessageAuthenticator));
}

#[test]
fn malformed_attributes_and_message_authenticators_are_rejected() {
    let check = |attrs: &[u8]| {
        let p = encode_response(ACCESS_ACCEPT, 1, &AUTH, attrs, false, SECRET);
        check_response(&p, 1, &AUTH, SECRET)
    };
    assert_eq!(check(b"\x12\x01"), Err(BadResponse::MalformedAttributes));
    assert_eq!(
        check(b"\x12\x09hello"),
        Err(BadResponse::MalformedAttributes)
    );
    assert_eq!(check(b"\x12"), Err(BadResponse::MalformedAttributes));
    assert_eq!(
        check(b"\x50\x04ab"),
        Err(BadResponse::BadMessageAuthenticator)
    );
    // Two Message-Authenticators: the second one built by encode_response checks, the first
    // one (zeros) is a duplicate.
    let p = encode_response(
        ACCESS_ACCEPT,
        1,
        &AUTH,
        &[&[MESSAGE_AUTHENTICATOR, 18][..], &[0; 16]].concat(),
        true,
        SECRET,
    );
    assert_eq!(
        check_response(&p, 1, &AUTH, SECRET),
        Err(BadResponse::BadMessageAuthenticator)
    );
}

#[test]
fn every_single_byte_change_of_a_response_is_caught() {
    let good = encode_response(ACCESS_REJECT, 200, &AUTH, REPLY, true, SECRET);
    for at in 0..good.len() {
        for bit in 0..8 {
            let mut p = good.clone();
            p[at] ^= 1 << bit;
            assert!(
                check_response(&p, 200, &AUTH, SECRET).is_err(),
                "byte {at} bit {bit} went unnoticed"
            );
        }
    }
    // Octets beyond the Length field are padding (RFC 2865 §3).
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xff; 7]);
    assert_eq!(
        check_response(&padded, 200, &AUTH, SECRET),
        Ok(Code::Reject)
    );
    // Every truncation is refused, and no prefix of any length panics.
    for len in 0..good.len() {
        assert!(check_response(&good[..len], 200, &AUTH, SECRET).is_err());
    }
}

// ---- the client against fake servers ----

const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

fn config(ports: &[u16], timeout_ms: u64, retries: u32) -> Radius {
    Radius {
        servers: ports
            .iter()
            .map(|&port| RadiusServer {
                address: LOCALHOST,
                port,
                secret: String::from_utf8(SECRET.to_vec()).unwrap(),
            })
            .collect(),
        timeout: Duration::from_millis(timeout_ms),
        retries,
        nas_identifier: "cutthrough-test".into(),
    }
}

fn fake_server() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// A port nothing listens on (bound, then closed: the kernel answers port unreachable).
fn closed_port() -> u16 {
    fake_server().1
}

/// One request as a server sees it: checked, with its identifier and authenticator.
struct Request {
    bytes: Vec<u8>,
    from: SocketAddr,
    id: u8,
    auth: Authenticator,
}

fn receive(s: &UdpSocket) -> Request {
    let mut buf = [0u8; 4096];
    let (n, from) = s.recv_from(&mut buf).expect("the client sent no request");
    let bytes = buf[..n].to_vec();
    assert!(request_ma_checks(&bytes, SECRET));
    Request {
        id: bytes[IDENTIFIER],
        auth: bytes[AUTHENTICATOR].try_into().unwrap(),
        bytes,
        from,
    }
}

impl Request {
    fn password(&self) -> Vec<u8> {
        let mut p = unhide_password(
            &attribute(&self.bytes, USER_PASSWORD).unwrap(),
            SECRET,
            &self.auth,
        );
        while p.last() == Some(&0) {
            p.pop();
        }
        p
    }

    fn answer(&self, code: u8) -> Vec<u8> {
        encode_response(code, self.id, &self.auth, REPLY, true, SECRET)
    }
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RadiusClient>();
}

#[test]
fn wrong_answers_are_ignored_until_the_right_one() {
    let (server, port) = fake_server();
    let script = thread::spawn(move || {
        let r = receive(&server);
        assert_eq!(attribute(&r.bytes, USER_NAME).unwrap(), b"alice");
        assert_eq!(r.password(), b"wonderland");
        assert_eq!(
            attribute(&r.bytes, NAS_IDENTIFIER).unwrap(),
            b"cutthrough-test"
        );
        let mut wrong_auth = r.answer(ACCESS_ACCEPT);
        wrong_auth[AUTHENTICATOR.start] ^= 1;
        let mut wrong_length = r.answer(ACCESS_ACCEPT);
        wrong_length[LENGTH].copy_from_slice(&5000u16.to_be_bytes());
        let wrongs = [
            b"junk".to_vec(),
            encode_response(
                ACCESS_ACCEPT,
                r.id.wrapping_add(1),
                &r.auth,
                b"",
                false,
                SECRET,
            ),
            encode_response(ACCESS_ACCEPT, r.id, &r.auth, b"", false, b"not the secret"),
            wrong_auth,
            wrong_length,
            encode_response(ACCESS_REQUEST, r.id, &r.auth, b"", false, SECRET),
        ];
        for w in &wrongs {
            server.send_to(w, r.from).unwrap();
        }
        // The right answer from the wrong address: the connected socket never sees it.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(&r.answer(ACCESS_REJECT), r.from).unwrap();
        server.send_to(&r.answer(ACCESS_ACCEPT), r.from).unwrap();
        wrongs.len() as u64
    });
    let client = RadiusClient::new(&config(&[port], 2000, 0));
    let started = Instant::now();
    assert_eq!(
        client.authenticate(b"alice", b"wonderland"),
        RadiusAnswer::Accept
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let wrongs = script.join().unwrap();
    assert_eq!(
        client.counters().snapshot(),
        RadiusStats {
            requests: 1,
            accepts: 1,
            bad_responses: wrongs,
            ..RadiusStats::default()
        }
    );
}

#[test]
fn a_retransmission_is_the_identical_datagram() {
    let (server, port) = fake_server();
    let script = thread::spawn(move || {
        let first = receive(&server);
        let second = receive(&server);
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(first.from, second.from);
        server
            .send_to(&second.answer(ACCESS_REJECT), second.from)
            .unwrap();
    });
    let client = RadiusClient::new(&config(&[port], 300, 2));
    assert_eq!(client.authenticate(b"bob", b"x"), RadiusAnswer::Reject);
    script.join().unwrap();
    assert_eq!(
        client.counters().snapshot(),
        RadiusStats {
            requests: 1,
            retransmissions: 1,
            timeouts: 1,
            rejects: 1,
            ..RadiusStats::default()
        }
    );
}

#[test]
fn a_challenge_is_a_reject_and_a_reject_is_final() {
    let (server, port) = fake_server();
    let (second, second_port) = fake_server();
    second.set_nonblocking(true).unwrap();
    let script = thread::spawn(move || {
        let r = receive(&server);
        server.send_to(&r.answer(ACCESS_CHALLENGE), r.from).unwrap();
    });
    let client = RadiusClient::new(&config(&[port, second_port], 2000, 0));
    assert_eq!(client.authenticate(b"carol", b"pw"), RadiusAnswer::Reject);
    script.join().unwrap();
    assert_eq!(client.counters().snapshot().rejects, 1);
    let mut buf = [0u8; 64];
    assert!(
        second.recv_from(&mut buf).is_err(),
        "the second server was asked"
    );
}

#[test]
fn a_closed_port_moves_on_at_once() {
    let (server, port) = fake_server();
    let script = thread::spawn(move || {
        let r = receive(&server);
        server.send_to(&r.answer(ACCESS_ACCEPT), r.from).unwrap();
    });
    let client = RadiusClient::new(&config(&[closed_port(), port], 3000, 2));
    let started = Instant::now();
    assert_eq!(client.authenticate(b"dave", b"pw"), RadiusAnswer::Accept);
    assert!(started.elapsed() < Duration::from_secs(1));
    script.join().unwrap();
    let s = client.counters().snapshot();
    assert_eq!((s.requests, s.timeouts, s.retransmissions), (2, 0, 0));
}

#[test]
fn silence_is_no_answer_within_the_bound() {
    let (server, port) = fake_server();
    let client = RadiusClient::new(&config(&[port], 100, 1));
    let started = Instant::now();
    assert_eq!(client.authenticate(b"erin", b"pw"), RadiusAnswer::NoAnswer);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    drop(server);
    assert_eq!(
        client.counters().snapshot(),
        RadiusStats {
            requests: 1,
            retransmissions: 1,
            timeouts: 2,
            unavailable: 1,
            ..RadiusStats::default()
        }
    );
}

#[test]
fn no_servers_is_no_answer() {
    let client = RadiusClient::new(&config(&[], 100, 1));
    assert_eq!(client.authenticate(b"a", b"b"), RadiusAnswer::NoAnswer);
    assert_eq!(client.counters().snapshot().unavailable, 1);
}

#[test]
fn unsendable_logins_are_rejected_without_asking() {
    let (server, port) = fake_server();
    server.set_nonblocking(true).unwrap();
    let client = RadiusClient::new(&config(&[port], 2000, 2));
    let started = Instant::now();
    assert_eq!(client.authenticate(b"", b"pw"), RadiusAnswer::Reject);
    assert_eq!(
        client.authenticate(&[b'n'; 254], b"pw"),
        RadiusAnswer::Reject
    );
    assert_eq!(
        client.authenticate(b"a", &[b'p'; 129]),
        RadiusAnswer::Reject
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 64];
    assert!(server.recv_from(&mut buf).is_err(), "a request was sent");
    assert_eq!(client.counters().snapshot(), RadiusStats::default());
}

#[test]
fn the_stats_serialize_with_one_key_per_counter() {
    let json = serde_json::to_value(RadiusStats::default()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accepts",
            "bad_responses",
            "rejects",
            "requests",
            "retransmissions",
            "timeouts",
            "unavailable"
        ]
    );
}
