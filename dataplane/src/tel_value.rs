//! A telemetry reply as plain data, and what DPDK's telemetry can carry of it. Control's
//! snapshots (`control::ops`) answer the `/cutthrough/*` commands with a [`TelValue`];
//! `crate::dpdk::telemetry` (the `dpdk` feature) registers the commands and hands DPDK the
//! [`prepare`](TelValue::prepare)d value. None of this needs DPDK, so control builds and tests
//! its replies without it.
//!
//! What DPDK 22.11 can carry, and what [`TelValue::prepare`] makes of the rest:
//! - the top level is a dict, an array or a string; a scalar becomes a one-entry dict;
//! - a container may hold scalars and containers of scalars, one level deep: a container
//!   deeper than that is dropped (design the value with one level of nesting);
//! - an array holds values of one type (its first element's): the others are dropped;
//!   arrays of containers hold arrays only, so a dict inside an array is dropped;
//! - at most [`MAX_DICT_ENTRIES`] / [`MAX_ARRAY_ENTRIES`] entries, strings and names of at
//!   most [`MAX_STRING_LEN`] bytes (cut at a character boundary), 32-bit signed integers;
//! - the whole reply is at most 16 KiB of JSON: DPDK leaves out what does not fit.
//!
//! The limits come from the installed DPDK's headers; a build without DPDK uses those of
//! DPDK 22.11, the oldest the box supports.

/// Longest string value or name, in bytes (`RTE_TEL_MAX_STRING_LEN` less the NUL).
#[cfg(feature = "dpdk")]
pub const MAX_STRING_LEN: usize = dpdk_sys::RTE_TEL_MAX_STRING_LEN as usize - 1;
/// Most entries of a dict (`RTE_TEL_MAX_DICT_ENTRIES`).
#[cfg(feature = "dpdk")]
pub const MAX_DICT_ENTRIES: usize = dpdk_sys::RTE_TEL_MAX_DICT_ENTRIES as usize;
/// Most entries of an array (`RTE_TEL_MAX_ARRAY_ENTRIES`).
#[cfg(feature = "dpdk")]
pub const MAX_ARRAY_ENTRIES: usize = dpdk_sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize;

/// Longest string value or name, in bytes (DPDK 22.11's `RTE_TEL_MAX_STRING_LEN` less the NUL).
#[cfg(not(feature = "dpdk"))]
pub const MAX_STRING_LEN: usize = 128 - 1;
/// Most entries of a dict (DPDK 22.11's `RTE_TEL_MAX_DICT_ENTRIES`).
#[cfg(not(feature = "dpdk"))]
pub const MAX_DICT_ENTRIES: usize = 256;
/// Most entries of an array (DPDK 22.11's `RTE_TEL_MAX_ARRAY_ENTRIES`).
#[cfg(not(feature = "dpdk"))]
pub const MAX_ARRAY_ENTRIES: usize = 512;

/// A telemetry reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelValue {
    U64(u64),
    Int(i32),
    Str(String),
    Dict(Vec<(String, TelValue)>),
    Array(Vec<TelValue>),
}

/// `s` cut to at most [`MAX_STRING_LEN`] bytes, at a character boundary.
pub(crate) fn cut(s: &str) -> &str {
    if s.len() <= MAX_STRING_LEN {
        return s;
    }
    let mut end = MAX_STRING_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn is_scalar(v: &TelValue) -> bool {
    matches!(v, TelValue::U64(_) | TelValue::Int(_) | TelValue::Str(_))
}

fn same_kind(a: &TelValue, b: &TelValue) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl TelValue {
    /// The value as DPDK will carry it (see the module documentation).
    pub fn prepare(self) -> TelValue {
        match self {
            TelValue::Str(s) => TelValue::Str(cut(&s).to_string()),
            v @ (TelValue::U64(_) | TelValue::Int(_)) => {
                TelValue::Dict(vec![("value".to_string(), v)])
            }
            v => v.prepare_at(0),
        }
    }

    fn prepare_at(self, depth: usize) -> TelValue {
        match self {
            TelValue::Str(s) => TelValue::Str(cut(&s).to_string()),
            TelValue::Dict(entries) => TelValue::Dict(
                entries
                    .into_iter()
                    .filter(|(_, v)| depth == 0 || is_scalar(v))
                    .take(MAX_DICT_ENTRIES)
                    .map(|(k, v)| (cut(&k).to_string(), v.prepare_at(depth + 1)))
                    .collect(),
            ),
            TelValue::Array(items) => {
                let Some(first) = items.first().cloned() else {
                    return TelValue::Array(items);
                };
                let keep = |v: &TelValue| {
                    same_kind(v, &first)
                        && match v {
                            TelValue::Dict(_) => false,
                            TelValue::Array(inner) => depth == 0 && inner.iter().all(is_scalar),
                            _ => true,
                        }
                };
                TelValue::Array(
                    items
                        .into_iter()
                        .filter(keep)
                        .take(MAX_ARRAY_ENTRIES)
                        .map(|v| v.prepare_at(depth + 1))
                        .collect(),
                )
            }
            v => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TelValue::*;
    use super::*;

    #[test]
    fn one_level_of_nesting_survives_deeper_is_dropped() {
        let v = Dict(vec![
            ("a".into(), U64(1)),
            (
                "port".into(),
                Dict(vec![
                    ("rx".into(), U64(2)),
                    ("deep".into(), Dict(vec![("x".into(), U64(3))])),
                ]),
            ),
            ("list".into(), Array(vec![Str("x".into()), U64(4)])),
        ]);
        assert_eq!(
            v.prepare(),
            Dict(vec![
                ("a".into(), U64(1)),
                ("port".into(), Dict(vec![("rx".into(), U64(2))])),
                ("list".into(), Array(vec![Str("x".into())])),
            ])
        );
    }

    #[test]
    fn limits_are_applied() {
        let long = "é".repeat(100);
        let Str(s) = Str(long).prepare() else {
            panic!()
        };
        assert!(s.len() <= MAX_STRING_LEN && s.chars().all(|c| c == 'é'));
        let many = Array((0..1000).map(U64).collect()).prepare();
        assert!(matches!(many, Array(v) if v.len() == MAX_ARRAY_ENTRIES));
        assert_eq!(U64(7).prepare(), Dict(vec![("value".into(), U64(7))]));
        // Arrays of dicts cannot be carried by 22.11.
        assert_eq!(Array(vec![Dict(vec![])]).prepare(), Array(vec![]),);
    }
}
