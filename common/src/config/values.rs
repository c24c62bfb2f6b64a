//! The value types of the configuration that are parsed from strings: CIDR prefixes, IPv4
//! addresses, port ranges and MAC addresses. Parse errors are one message naming the input,
//! to which `validate` adds the path.

use core::fmt;
use core::str::FromStr;

use crate::wire::{Ipv4Addr, MacAddr};

/// An IPv4 prefix as written: `addr` keeps any host bits (an interface address is written as
/// the box's address with its subnet's length, e.g. `198.18.0.254/24`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    /// 0..=32.
    pub prefix: u8,
}

impl Cidr {
    /// `0.0.0.0/0`, every address.
    pub const ANY: Cidr = Cidr {
        addr: Ipv4Addr(0),
        prefix: 0,
    };

    /// The netmask in host order (`/24` is `0xffff_ff00`).
    pub fn mask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }

    /// The address with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr(self.addr.0 & self.mask())
    }

    /// The address with all host bits set.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr(self.addr.0 | !self.mask())
    }

    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        a.0 & self.mask() == self.network().0
    }

    /// Whether the two prefixes share any address (one then contains the other).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let m = self.mask() & other.mask();
        self.addr.0 & m == other.addr.0 & m
    }

    /// Whether bits beyond the prefix are set in `addr`.
    pub fn has_host_bits(&self) -> bool {
        self.addr.0 & !self.mask() != 0
    }

    /// The same prefix with host bits cleared.
    pub fn to_network(self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix: self.prefix,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not an address, prefix, port or duration; the message names the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses dotted-quad IPv4 only (no shorthand like `10.1`), with a message naming the input.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, ParseError> {
    std::net::Ipv4Addr::from_str(s)
        .map(Ipv4Addr::from)
        .map_err(|_| ParseError(format!("`{s}` is not an IPv4 address (a.b.c.d)")))
}

impl FromStr for Cidr {
    type Err = ParseError;

    /// Parses `a.b.c.d/n`; the prefix length is required.
    fn from_str(s: &str) -> Result<Cidr, ParseError> {
        let Some((a, p)) = s.split_once('/') else {
            return Err(ParseError(format!(
                "`{s}` is not a CIDR prefix: missing `/length` (write `{s}/32` for one address)"
            )));
        };
        let addr = std::net::Ipv4Addr::from_str(a).map_err(|_| {
            ParseError(format!(
                "`{s}` is not a CIDR prefix: `{a}` is not an IPv4 address"
            ))
        })?;
        let prefix = match p.parse::<u8>() {
            Ok(n) if n <= 32 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(ParseError(format!(
                    "`{s}` is not a CIDR prefix: the length `{p}` is not in 0..=32"
                )))
            }
        };
        Ok(Cidr {
            addr: addr.into(),
            prefix,
        })
    }
}

/// An inclusive range of ports; a single port has `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl FromStr for PortRange {
    type Err = ParseError;

    /// Parses `N` or `LO-HI`, each 1..=65535, with `LO <= HI`.
    fn from_str(s: &str) -> Result<PortRange, ParseError> {
        let port = |t: &str| -> Result<u16, ParseError> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError(format!(
                    "`{s}` is not a port or a port range (LO-HI)"
                )));
            }
            match t.parse::<u32>() {
                Ok(0) => Err(ParseError(
                    "port 0 is not a destination port (ports are 1..=65535)".to_string(),
                )),
                Ok(n) if n <= 65535 => Ok(n as u16),
                _ => Err(ParseError(format!(
                    "port {t} is out of range (ports are 1..=65535)"
                ))),
            }
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(ParseError(format!(
                "`{s}` is an empty port range: {lo} is greater than {hi}"
            )));
        }
        Ok(PortRange { lo, hi })
    }
}

/// Parses a size in bytes: an integer, or an integer with a binary unit (`64KiB`, `16MiB`,
/// `1GiB`). Decimal units (`MB`) are refused rather than guessed at.
pub fn parse_size(s: &str) -> Result<u64, ParseError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    if num.is_empty() {
        return Err(ParseError(format!(
            "`{s}` is not a size (write bytes as an integer, or a number with a unit: KiB, MiB, GiB)"
        )));
    }
    let per_unit: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        u => {
            return Err(ParseError(format!(
                "`{s}` is not a size: unknown unit `{u}` (use KiB, MiB or GiB)"
            )))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .ok_or_else(|| ParseError(format!("`{s}` is too large")))
}

/// Parses `02:00:00:00:00:01` (six two-digit hex groups separated by colons).
pub fn parse_mac(s: &str) -> Result<MacAddr, ParseError> {
    let bad = || {
        ParseError(format!(
            "`{s}` is not a MAC address (like 02:00:00:00:00:01)"
        ))
    };
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(MacAddr(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parses_and_keeps_host_bits() {
        let x = c("198.18.0.254/24");
        assert_eq!(x.addr, Ipv4Addr::new(198, 18, 0, 254));
        assert_eq!(x.prefix, 24);
        assert_eq!(x.mask(), 0xffff_ff00);
        assert_eq!(x.network(), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(x.broadcast(), Ipv4Addr::new(198, 18, 0, 255));
        assert!(x.has_host_bits());
        assert_eq!(x.to_string(), "198.18.0.254/24");
        assert!(x.contains(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(!x.contains(Ipv4Addr::new(198, 19, 0, 1)));
    }

    #[test]
    fn cidr_edges() {
        assert_eq!(c("0.0.0.0/0").mask(), 0);
        assert!(c("0.0.0.0/0").contains(Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(c("192.0.2.7/32").mask(), u32::MAX);
        assert!(c("192.0.2.7/32").contains(Ipv4Addr::new(192, 0, 2, 7)));
        assert!(!c("192.0.2.7/32").contains(Ipv4Addr::new(192, 0, 2, 6)));
        assert!(c("198.18.0.0/15").overlaps(&c("198.19.0.0/24")));
        assert!(c("198.19.0.0/24").overlaps(&c("198.18.0.0/15")));
        assert!(!c("198.18.0.0/24").overlaps(&c("198.19.0.0/24")));
    }

    #[test]
    fn cidr_rejects() {
        for (s, phrase) in [
            ("198.18.0.300/24", "`198.18.0.300` is not an IPv4 address"),
            ("198.18.0.0/33", "the length `33` is not in 0..=32"),
            ("198.18.0.0/+3", "the length `+3` is not in 0..=32"),
            ("198.18.0.0/", "the length `` is not in 0..=32"),
            ("198.18.0.1", "missing `/length`"),
            ("198.18/16", "`198.18` is not an IPv4 address"),
            ("", "missing `/length`"),
        ] {
            let e = s.parse::<Cidr>().unwrap_err().0;
            assert!(e.contains(phrase), "{s}: {e}");
        }
    }

    #[test]
    fn ports() {
        let p = |s: &str| s.parse::<PortRange>();
        assert_eq!(p("8080"), Ok(PortRange { lo: 8080, hi: 8080 }));
        assert_eq!(p("5201-5210"), Ok(PortRange { lo: 5201, hi: 5210 }));
        assert_eq!(p("1-65535"), Ok(PortRange { lo: 1, hi: 65535 }));
        assert_eq!(
            p("5210-5201").unwrap_err().0,
            "`5210-5201` is an empty port range: 5210 is greater than 5201"
        );
        assert_eq!(
            p("0").unwrap_err().0,
            "port 0 is not a destination port (ports are 1..=65535)"
        );
        assert_eq!(
            p("70000").unwrap_err().0,
            "port 70000 is out of range (ports are 1..=65535)"
        );
        assert!(p("http").unwrap_err().0.contains("is not a port"));
        assert!(p("-5").is_err());
        assert!(p("5-").is_err());
        assert!(p("1-2-3").is_err());
        assert!(PortRange { lo: 5201, hi: 5210 }.contains(5205));
        assert!(!PortRange { lo: 5201, hi: 5210 }.contains(5211));
        assert_eq!(PortRange { lo: 5201, hi: 5210 }.to_string(), "5201-5210");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(
            parse_size("16MB").unwrap_err().0,
            "`16MB` is not a size: unknown unit `MB` (use KiB, MiB or GiB)"
        );
        assert!(parse_size("MiB").unwrap_err().0.contains("is not a size"));
        assert!(parse_size("-1").is_err());
        assert_eq!(
            parse_size("99999999999GiB").unwrap_err().0,
            "`99999999999GiB` is too large"
        );
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:00:00:00:00:01"),
            Ok(MacAddr([2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(
            parse_mac("02:AB:cd:00:00:01"),
            Ok(MacAddr([2, 0xab, 0xcd, 0, 0, 1]))
        );
        for bad in [
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02-00-00-00-00-01",
            "2:0:0:0:0:1",
            "02:00:00:00:00:0g",
            "",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
