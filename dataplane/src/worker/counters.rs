//! What a worker counts, declared once: the list in [`worker_counters!`] below makes the
//! struct, its field names (the JSON keys, in their order), and the value arrays that the
//! publication words ([`WorkerCounters::to_words`]), the sum over workers and the tests are
//! built from. A new counter is one line of that list.

use crate::verdict::{DropCounters, DropReason};

/// Declares [`WorkerCounters`] from a list of documented `u64` fields, with
/// [`WorkerCounters::NAMES`], [`WorkerCounters::values`] and [`WorkerCounters::values_mut`]
/// over exactly those fields, in the list's order. The drop counters follow as `drops`.
macro_rules! worker_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// What a worker counts. Plain integers: only the worker writes them.
        ///
        /// Serialised as they are into each worker's object of the statistics JSON
        /// (`control`'s `WorkerStats` flattens them), the field order being the key order
        /// there, and published to control as words (`crate::live`).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
        pub struct WorkerCounters {
            $($(#[doc = $doc])* pub $name: u64,)*
            pub drops: DropCounters,
        }

        impl WorkerCounters {
            /// The counters other than `drops`, by field name, in declaration order.
            pub const NAMES: [&'static str; SCALARS] = [$(stringify!($name)),*];

            /// The counters other than `drops`, in the order of [`WorkerCounters::NAMES`].
            #[inline]
            pub fn values(&self) -> [u64; SCALARS] {
                [$(self.$name),*]
            }

            /// The counters other than `drops`, mutably, in the order of
            /// [`WorkerCounters::NAMES`].
            #[inline]
            pub fn values_mut(&mut self) -> [&mut u64; SCALARS] {
                [$(&mut self.$name),*]
            }
        }

        const SCALARS: usize = [$(stringify!($name)),*].len();
    };
}

worker_counters! {
    rx,
    tx,
    forwarded,
    to_control,
    /// Packets the control plane sent through this worker.
    from_control,
    flows_created,
    /// Packets the vector path carried (`worker::vector`); in lookup-only mode, the lookups
    /// that found a flow.
    fast_path,
    /// Flows removed by their idle or closing timeout (TIME-WAIT ending included).
    flows_expired,
    /// Flows that reached TIME-WAIT (FIN both ways, acknowledged) or CLOSE (a valid RST).
    flows_closed,
    flows_installed,
    /// Packets whose TCP options were malformed: forwarded with the options untouched.
    options_malformed,
    /// Segments forwarded without a state update (old duplicates, SYN on a flow).
    ignored,
    /// ICMP errors about spliced connections whose quote was put back into its sender's space.
    icmp_quotes_rewritten,
    /// ICMP errors passed because they quote a packet of a tracked flow (TCP, UDP, echo).
    icmp_related,
    /// UDP flows made by a first datagram the policy passed.
    udp_flows_created,
    /// ICMP echo exchanges made by a request the policy passed.
    icmp_flows_created,
    /// UDP flows and echo exchanges removed by their idle timeout.
    datagram_flows_expired,
    /// Packets handed to the worker that owns their flow (`crate::steer`).
    handed_off,
    /// Packets another worker handed to this one.
    handoff_received,
    /// Dropped packets handed to control for the drop capture.
    drops_captured,
    /// Dropped packets the capture's rate allowed but the ring to control had no room for.
    capture_ring_full,
    /// Spliced segments that gained a timestamp option (their receiver negotiated
    /// timestamps with the box, their sender did not).
    ts_inserted,
    /// Spliced segments whose timestamp option was removed (their receiver did not
    /// negotiate it).
    ts_removed,
    /// Of the segments that should have gained one, those sent without it: no headroom in
    /// the buffer, or a malformed option list.
    ts_insert_failed,
    /// Spliced segments larger than their receiver accepts (a server accepting less than
    /// the client was told), split into pieces that fit.
    segments_split,
    /// The pieces of those segments sent.
    split_pieces,
    /// Segments whose split stopped for want of a buffer (the pieces not sent are lost; the
    /// sender retransmits them).
    split_failed,
}

impl WorkerCounters {
    /// How many words [`WorkerCounters::to_words`] makes: every counter, drops included.
    pub const WORDS: usize = SCALARS + DropReason::COUNT;

    /// Every counter as one word: the fields in declaration order, then the drops by reason.
    pub fn to_words(&self) -> [u64; WorkerCounters::WORDS] {
        let mut w = [0u64; WorkerCounters::WORDS];
        let (scalars, drops) = w.split_at_mut(SCALARS);
        scalars.copy_from_slice(&self.values());
        drops.copy_from_slice(&self.drops.0);
        w
    }

    /// The counters [`WorkerCounters::to_words`] made `w` of.
    pub fn from_words(w: &[u64; WorkerCounters::WORDS]) -> WorkerCounters {
        let mut c = WorkerCounters::default();
        let (scalars, drops) = w.split_at(SCALARS);
        for (v, &x) in c.values_mut().into_iter().zip(scalars) {
            *v = x;
        }
        c.drops.0.copy_from_slice(drops);
        c
    }

    /// Adds every counter of `other` to this one's.
    pub fn add(&mut self, other: &WorkerCounters) {
        for (a, b) in self.values_mut().into_iter().zip(other.values()) {
            *a += b;
        }
        self.drops.add(&other.drops);
    }
}

/// The sum of several workers' counters, every counter included.
impl<'a> std::iter::Sum<&'a WorkerCounters> for WorkerCounters {
    fn sum<I: Iterator<Item = &'a WorkerCounters>>(iter: I) -> WorkerCounters {
        let mut t = WorkerCounters::default();
        for c in iter {
            t.add(c);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter, drops included, set to a distinct value from `base` on.
    fn distinct(base: u64) -> WorkerCounters {
        let words: [u64; WorkerCounters::WORDS] = std::array::from_fn(|i| base + i as u64);
        let mut c = WorkerCounters::default();
        for (v, w) in c.values_mut().into_iter().zip(words) {
            *v = w;
        }
        c.drops
            .0
            .copy_from_slice(&words[WorkerCounters::NAMES.len()..]);
        c
    }

    /// The list covers the whole struct: its `Debug` (derived, so it sees every field) names
    /// exactly the listed fields and `drops`, with the values the list's accessors set.
    #[test]
    fn the_list_is_every_field() {
        let c = distinct(1000);
        let debug = format!("{c:?}");
        // `name: value` per field; `drops` shows as `drops: DropCounters([..])`.
        assert_eq!(
            debug.matches(": ").count(),
            WorkerCounters::NAMES.len() + 1,
            "{debug}"
        );
        for (name, value) in WorkerCounters::NAMES.iter().zip(c.values()) {
            assert!(
                debug.contains(&format!("{name}: {value},")),
                "{name} in {debug}"
            );
        }
        let mut names = WorkerCounters::NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), WorkerCounters::NAMES.len());
    }

    #[test]
    fn every_counter_survives_the_words() {
        let c = distinct(1);
        let w = c.to_words();
        let mut seen = w.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), WorkerCounters::WORDS, "a word written twice");
        assert_eq!(WorkerCounters::from_words(&w), c);
    }

    #[test]
    fn the_sum_adds_every_counter() {
        let (a, b) = (distinct(1), distinct(10_000));
        let total: WorkerCounters = [a, b, WorkerCounters::default()].iter().sum();
        let (ta, tb, tt) = (a.to_words(), b.to_words(), total.to_words());
        for i in 0..WorkerCounters::WORDS {
            assert_eq!(tt[i], ta[i] + tb[i], "word {i}");
        }
    }
}
