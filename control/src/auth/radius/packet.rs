//! The RADIUS codec of the client: Access-Request out, Access-Accept / Access-Reject /
//! Access-Challenge in. Pure functions on byte slices, no I/O, no randomness (the caller
//! passes the identifier and the Request Authenticator), no panics on any input.
//!
//! - RFC 2865 §3: the header (code, identifier, length, authenticator) and the attributes;
//!   octets beyond the Length field are padding and ignored. The Response Authenticator is
//!   MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret).
//! - RFC 2865 §5.2: User-Password hidden with MD5 chained over 16-byte blocks.
//! - RFC 3579 §3.2: Message-Authenticator, HMAC-MD5 keyed with the secret over the whole
//!   packet with the attribute's value zeroed (in a response, over the packet with the
//!   Request Authenticator in the authenticator field). Every request carries one, first
//!   among the attributes as the BlastRADIUS advisory recommends; a response's is checked
//!   when present (FreeRADIUS before 3.2.5 sends none in Access-Accept/Reject).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// Code of an Access-Request.
pub const ACCESS_REQUEST: u8 = 1;
/// Code of an Access-Accept.
pub const ACCESS_ACCEPT: u8 = 2;
/// Code of an Access-Reject.
pub const ACCESS_REJECT: u8 = 3;
/// Code of an Access-Challenge.
pub const ACCESS_CHALLENGE: u8 = 11;

/// Offsets of the header fields.
pub const CODE: usize = 0;
pub const IDENTIFIER: usize = 1;
pub const LENGTH: std::ops::Range<usize> = 2..4;
pub const AUTHENTICATOR: std::ops::Range<usize> = 4..20;
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 §3 allows.
pub const MAX_PACKET: usize = 4096;

/// Attribute types sent or read.
pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const SERVICE_TYPE: u8 = 6;
pub const NAS_IDENTIFIER: u8 = 32;
pub const NAS_PORT_TYPE: u8 = 61;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;

/// Service-Type Login: the user is let through to a host, which is what a cut-through
/// proxy does after the login.
pub const SERVICE_TYPE_LOGIN: u32 = 1;
/// NAS-Port-Type Virtual: the "port" is a proxied TCP connection, not a line.
pub const NAS_PORT_TYPE_VIRTUAL: u32 = 5;

/// The longest attribute value (the length octet counts the two header octets).
pub const MAX_ATTRIBUTE_VALUE: usize = 253;
/// The longest password User-Password can carry (RFC 2865 §5.2).
pub const MAX_PASSWORD: usize = 128;
/// Bytes of an MD5 digest, of the authenticators and of a User-Password block.
pub const BLOCK: usize = 16;

/// The 16 bytes of a Request or Response Authenticator.
pub type Authenticator = [u8; BLOCK];

/// Why an Access-Request could not be built. The client refuses such logins before asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("empty user name")]
    EmptyName,
    #[error("user name longer than {MAX_ATTRIBUTE_VALUE} bytes")]
    NameTooLong,
    #[error("password longer than {MAX_PASSWORD} bytes")]
    PasswordTooLong,
    #[error("NAS-Identifier empty or longer than {MAX_ATTRIBUTE_VALUE} bytes")]
    NasIdentifier,
}

/// What a checked response said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Accept,
    Reject,
    /// PAP has no second round: the client treats it as a reject.
    Challenge,
}

/// Why a datagram was not taken as the answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    #[error("shorter than a RADIUS header")]
    TooShort,
    #[error("length field {0} outside 20..=4096 or beyond the datagram")]
    BadLength(u16),
    #[error("code {0} is not an answer to an Access-Request")]
    UnexpectedCode(u8),
    #[error("identifier {got} does not match the request's {want}")]
    WrongId { got: u8, want: u8 },
    #[error("attributes overrun the packet or have a length below 2")]
    MalformedAttributes,
    #[error("Response Authenticator does not check (wrong shared secret?)")]
    BadAuthenticator,
    #[error("Message-Authenticator malformed, repeated or not checking")]
    BadMessageAuthenticator,
}

/// Builds the Access-Request: Message-Authenticator (computed last, over the final bytes),
/// User-Name, User-Password (hidden with `secret` and `authenticator`), Service-Type Login,
/// NAS-Identifier, NAS-Port-Type Virtual.
pub fn encode_access_request(
    id: u8,
    authenticator: &Authenticator,
    name: &[u8],
    password: &[u8],
    secret: &[u8],
    nas_identifier: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    if name.is_empty() {
        return Err(EncodeError::EmptyName);
    }
    if name.len() > MAX_ATTRIBUTE_VALUE {
        return Err(EncodeError::NameTooLong);
    }
    if nas_identifier.is_empty() || nas_identifier.len() > MAX_ATTRIBUTE_VALUE {
        return Err(EncodeError::NasIdentifier);
    }
    let hidden = hide_password(password, secret, authenticator)?;

    let mut p = Vec::with_capacity(HEADER_LEN + 18 + 2 * 255 + 18);
    p.extend_from_slice(&[ACCESS_REQUEST, id, 0, 0]);
    p.extend_from_slice(authenticator);
    let ma = p.len() + 2;
    push_attribute(&mut p, MESSAGE_AUTHENTICATOR, &[0; BLOCK]);
    push_attribute(&mut p, USER_NAME, name);
    push_attribute(&mut p, USER_PASSWORD, &hidden);
    push_attribute(&mut p, SERVICE_TYPE, &SERVICE_TYPE_LOGIN.to_be_bytes());
    push_attribute(&mut p, NAS_IDENTIFIER, nas_identifier);
    push_attribute(&mut p, NAS_PORT_TYPE, &NAS_PORT_TYPE_VIRTUAL.to_be_bytes());
    // At most 20 + 18 + 255 + 130 + 6 + 255 + 6 bytes: far below MAX_PACKET.
    let len = p.len() as u16;
    p[LENGTH].copy_from_slice(&len.to_be_bytes());
    let mac = message_authenticator(&p, secret);
    p[ma..ma + BLOCK].copy_from_slice(&mac);
    Ok(p)
}

/// Appends one attribute; `value` is at most 253 bytes (checked by the callers).
fn push_attribute(p: &mut Vec<u8>, kind: u8, value: &[u8]) {
    p.push(kind);
    p.push((value.len() + 2) as u8);
    p.extend_from_slice(value);
}

/// RFC 2865 §5.2: `password` zero-padded to a multiple of 16 bytes (16 for an empty one),
/// c(1) = p(1) XOR MD5(secret + Request Authenticator), c(i) = p(i) XOR MD5(secret + c(i-1)).
/// The cleartext is copied only into the output, which is hidden in place.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &Authenticator,
) -> Result<Vec<u8>, EncodeError> {
    if password.len() > MAX_PASSWORD {
        return Err(EncodeError::PasswordTooLong);
    }
    let blocks = password.len().div_ceil(BLOCK).max(1);
    let mut out = vec![0u8; blocks * BLOCK];
    out[..password.len()].copy_from_slice(password);
    let mut previous: Authenticator = *authenticator;
    for block in out.chunks_exact_mut(BLOCK) {
        xor_block_key(block, secret, &previous);
        previous.copy_from_slice(block);
    }
    Ok(out)
}

/// The inverse of [`hide_password`], with the padding left on (a server's view: it cannot
/// tell padding from trailing zero bytes).
pub fn unhide_password(hidden: &[u8], secret: &[u8], authenticator: &Authenticator) -> Vec<u8> {
    let mut out = hidden.to_vec();
    let mut previous: Authenticator = *authenticator;
    for block in out.chunks_mut(BLOCK) {
        // The next key hashes the hidden block, so keep it before revealing this one.
        let mut hidden_block = [0u8; BLOCK];
        hidden_block[..block.len()].copy_from_slice(block);
        xor_block_key(block, secret, &previous);
        previous = hidden_block;
    }
    out
}

/// XORs `block` with MD5(secret + `previous`), the key of one block of RFC 2865 §5.2 both
/// ways (hiding and revealing are the same operation).
fn xor_block_key(block: &mut [u8], secret: &[u8], previous: &Authenticator) {
    let mut md5 = Md5::new();
    md5.update(secret);
    md5.update(previous);
    let key = md5.finalize();
    for (b, k) in block.iter_mut().zip(key.iter()) {
        *b ^= k;
    }
}

/// HMAC-MD5 of `packet` (whose Message-Authenticator value must already be zero) keyed with
/// `secret`.
pub fn message_authenticator(packet: &[u8], secret: &[u8]) -> Authenticator {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret) else {
        return [0; BLOCK];
    };
    mac.update(packet);
    mac.finalize().into_bytes().into()
}

/// MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret), the
/// Response Authenticator a server computes over `response` (its own authenticator field is
/// not read).
pub fn response_authenticator(
    response: &[u8],
    request_authenticator: &Authenticator,
    secret: &[u8],
) -> Authenticator {
    let mut md5 = Md5::new();
    md5.update(&response[..AUTHENTICATOR.start.min(response.len())]);
    md5.update(request_authenticator);
    md5.update(response.get(HEADER_LEN..).unwrap_or_default());
    md5.update(secret);
    md5.finalize().into()
}

/// Checks a datagram as the answer to the request with `id` and `request_authenticator`:
/// header, length, code, identifier, attribute framing, Response Authenticator and, when
/// present, the Message-Authenticator. Octets beyond the Length field are ignored.
pub fn check_response(
    datagram: &[u8],
    id: u8,
    request_authenticator: &Authenticator,
    secret: &[u8],
) -> Result<Code, BadResponse> {
    if datagram.len() < HEADER_LEN {
        return Err(BadResponse::TooShort);
    }
    let length = u16::from_be_bytes([datagram[LENGTH.start], datagram[LENGTH.start + 1]]);
    let len = usize::from(length);
    if !(HEADER_LEN..=MAX_PACKET).contains(&len) || len > datagram.len() {
        return Err(BadResponse::BadLength(length));
    }
    let packet = &datagram[..len];
    let code = match packet[CODE] {
        ACCESS_ACCEPT => Code::Accept,
        ACCESS_REJECT => Code::Reject,
        ACCESS_CHALLENGE => Code::Challenge,
        other => return Err(BadResponse::UnexpectedCode(other)),
    };
    if packet[IDENTIFIER] != id {
        return Err(BadResponse::WrongId {
            got: packet[IDENTIFIER],
            want: id,
        });
    }
    let ma = find_message_authenticator(packet)?;
    let expected = response_authenticator(packet, request_authenticator, secret);
    if !equal(&expected, &packet[AUTHENTICATOR]) {
        return Err(BadResponse::BadAuthenticator);
    }
    if let Some(at) = ma {
        let mut copy = packet.to_vec();
        copy[AUTHENTICATOR].copy_from_slice(request_authenticator);
        copy[at..at + BLOCK].fill(0);
        let mac = message_authenticator(&copy, secret);
        if !equal(&mac, &packet[at..at + BLOCK]) {
            return Err(BadResponse::BadMessageAuthenticator);
        }
    }
    Ok(code)
}

/// Walks the attributes: the offset of the one Message-Authenticator's value, if any.
fn find_message_authenticator(packet: &[u8]) -> Result<Option<usize>, BadResponse> {
    let mut found = None;
    let mut at = HEADER_LEN;
    while at < packet.len() {
        let (Some(&kind), Some(&len)) = (packet.get(at), packet.get(at + 1)) else {
            return Err(BadResponse::MalformedAttributes);
        };
        let len = usize::from(len);
        if len < 2 || at + len > packet.len() {
            return Err(BadResponse::MalformedAttributes);
        }
        if kind == MESSAGE_AUTHENTICATOR {
            if len != 2 + BLOCK || found.is_some() {
                return Err(BadResponse::BadMessageAuthenticator);
            }
            found = Some(at + 2);
        }
        at += len;
    }
    Ok(found)
}

/// Compares without an early exit, so the time taken does not tell how many leading bytes
/// of a forged authenticator were right.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Builds a response as a server would: `attributes` (whole attributes, type and length
/// included) after the header, a Message-Authenticator appended when `with_ma`, then the
/// Response Authenticator. For the tests' fake servers.
pub fn encode_response(
    code: u8,
    id: u8,
    request_authenticator: &Authenticator,
    attributes: &[u8],
    with_ma: bool,
    secret: &[u8],
) -> Vec<u8> {
    let mut p = vec![code, id, 0, 0];
    p.extend_from_slice(request_authenticator);
    p.extend_from_slice(attributes);
    let ma = p.len() + 2;
    if with_ma {
        push_attribute(&mut p, MESSAGE_AUTHENTICATOR, &[0; BLOCK]);
    }
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
    p[LENGTH].copy_from_slice(&len.to_be_bytes());
    if with_ma {
        let mac = message_authenticator(&p, secret);
        p[ma..ma + BLOCK].copy_from_slice(&mac);
    }
    let auth = response_authenticator(&p, request_authenticator, secret);
    p[AUTHENTICATOR].copy_from_slice(&auth);
    p
}
