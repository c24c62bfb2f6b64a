//! The fixed-offset rewrite against the reference one: same bytes for every frame of the
//! template's layout, whatever the parameters (the checksum's single fold included).

use super::*;
use crate::rewrite::fixed::{rewrite_fixed, TCP_WITH_TS};

/// Specs of the template's layout: untagged, no SYN/FIN/RST/URG, no options or NOP, NOP,
/// timestamps, a TTL above 1.
fn template_spec() -> impl Strategy<Value = Spec> {
    (
        spec_strategy(),
        any::<bool>(),
        (any::<u32>(), any::<u32>()),
        any::<u8>(),
    )
        .prop_map(|(mut s, ts, (tsval, tsecr), fl)| {
            s.vlan = false;
            s.ttl = s.ttl.max(2);
            s.flags = fl & !(flags::SYN | flags::FIN | flags::RST | flags::URG);
            s.options = if ts {
                let mut o = vec![1, 1, 8, 10];
                o.extend_from_slice(&tsval.to_be_bytes());
                o.extend_from_slice(&tsecr.to_be_bytes());
                o
            } else {
                Vec::new()
            };
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn the_fixed_rewrite_writes_what_the_reference_writes(
        s in template_spec(),
        p in params_strategy(),
        bad in any::<u16>(),
    ) {
        let mut frame = build(&s);
        // A checksum wrong on the wire stays wrong by as much in both.
        if bad % 4 == 0 {
            let at = 14 + 20 + 16;
            let c = be16(&frame, at).wrapping_add(bad);
            frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        let mut want = frame.clone();
        rewrite_frame(&mut want, &p, Some(&HOP)).unwrap();
        let tcp_len = if s.options.is_empty() { 20 } else { TCP_WITH_TS };
        assert!(rewrite_fixed(&mut frame, &p, &HOP, tcp_len));
        prop_assert_eq!(frame, want);
    }
}
