//! A strict base64 decoder (RFC 4648 §4: the standard alphabet, with padding), enough for
//! HTTP Basic credentials. Strict means: the length is a multiple of 4, `=` appears only as
//! one or two final characters, no whitespace or other characters, and the bits a padded
//! final group leaves over are zero (so every byte string has exactly one accepted encoding).

/// The value of one alphabet character, or `None`.
fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes `input`, or `None` when it is not strict standard base64.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() & 3 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let groups = input.len() / 4;
    for (g, chunk) in input.chunks_exact(4).enumerate() {
        let last = g + 1 == groups;
        let pad = if last {
            chunk.iter().rev().take_while(|&&c| c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | u32::from(value(c)?);
        }
        match pad {
            0 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            // 3 characters: 18 bits, 16 used.
            1 => {
                if n & 0x3 != 0 {
                    return None;
                }
                out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
            }
            // 2 characters: 12 bits, 8 used.
            _ => {
                if n & 0xf != 0 {
                    return None;
                }
                out.push((n >> 4) as u8);
            }
        }
    }
    Some(out)
}

/// Encodes `input` (standard alphabet, padded). Used by the tests to build credentials.
#[cfg(test)]
pub fn encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let vectors: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in vectors {
            assert_eq!(decode(enc.as_bytes()).as_deref(), Some(plain.as_bytes()));
            assert_eq!(encode(plain.as_bytes()), enc);
        }
        // The RFC 7617 example.
        assert_eq!(
            decode(b"QWxhZGRpbjpvcGVuIHNlc2FtZQ==").as_deref(),
            Some(&b"Aladdin:open sesame"[..])
        );
        assert_eq!(decode(b"+/+/").as_deref(), Some(&[0xfb, 0xff, 0xbf][..]));
    }

    #[test]
    fn round_trip_all_lengths_and_bytes() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let enc = encode(&data[..len]);
            assert_eq!(decode(enc.as_bytes()).as_deref(), Some(&data[..len]));
        }
    }

    #[test]
    fn rejects_non_strict_input() {
        for bad in [
            &b"Zg"[..],  // missing padding
            b"Zg=",      // short padding
            b"Zg===",    // too much padding
            b"Z===",     // three pads
            b"====",     // only padding
            b"Zh==",     // non-zero leftover bits
            b"Zm9=",     // non-zero leftover bits
            b"Zg==Zg==", // padding in the middle
            b"Zm=v",     // `=` inside a group
            b"Zm9v\n",   // whitespace
            b"Zm 9v",    // whitespace
            b"Zm9-",     // URL-safe alphabet
            b"Zm9_",     // URL-safe alphabet
            b"Zm9\xff",  // not ASCII
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
