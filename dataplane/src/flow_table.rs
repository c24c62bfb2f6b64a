//! One worker's shard of the flow table: a fixed-capacity, open-addressing hash table of
//! 48-byte connection objects, owned by exactly one worker (no locks, no atomics).
//!
//! - A slot *is* the connection object ([`Conn`]): the key lives inside it and
//!   `TcpState::Free` marks an empty slot, so a tracked or spliced flow costs 48 bytes of table
//!   and its tag byte, 56 bytes per flow at the maximum load.
//! - Each connection is stored once, under its client→server key; the symmetric hash sends
//!   both directions to the same home slot, and a probe compares the packet's key in both
//!   orientations, which also yields the packet's direction.
//! - Linear probing with backward-shift deletion: no tombstones, so lookups stay short however
//!   many flows come and go.
//! - Beside the slots, one tag byte per slot (0: free, else 7 bits of the hash): a probe run
//!   (4.5 slots long on average at 7/8 load) is scanned in the tag array, one cache line, and
//!   only the slot whose tag matches is read. Slots are 48 bytes at 16-byte alignment, so
//!   half of them straddle two cache lines: a lookup touches the tag line and one or two slot
//!   lines, all known before the packet is processed: the vector path prefetches tag lines,
//!   then every line of the slot a 16-tag compare found ([`FlowTable::probe`]), ahead of use.
//! - All memory is allocated once, at start (from DPDK's hugepages when the EAL is up, see
//!   `Store`), and sized to the capacity asked for: capacity +
//!   capacity/7 slots (not rounded up to a power of two, which cost up to twice the memory),
//!   indexed by multiply-shift of the 32-bit hash. When the table holds `max_load` entries
//!   (7/8 of the slots, at least the capacity) `insert` refuses: the caller drops the SYN and counts `flow_table_full`; the
//!   client retransmits, by which time housekeeping may have expired idle entries. Existing
//!   flows are never evicted to make room.
//! - Ageing runs in housekeeping slices ([`FlowTable::expire`]) that visit a bounded number of
//!   slots per call, so a worker never stalls on a full sweep.

use common::conn::Conn;
use common::flow::{Direction, FlowKey};

/// What a table's memory may hold: with DPDK, types whose zeroed memory is their default
/// (tables then come zeroed from the EAL's hugepages, `crate::dpdk::HugeSlice`); without it,
/// anything.
#[cfg(feature = "dpdk")]
pub use crate::dpdk::Zeroed as SlotMemory;
#[cfg(not(feature = "dpdk"))]
pub trait SlotMemory {}
#[cfg(not(feature = "dpdk"))]
impl<T> SlotMemory for T {}

/// Where a table's arrays live: DPDK's memory when the EAL is up (hugepages, if it has
/// them), the heap otherwise (tests, the simulation, a build without DPDK).
#[derive(Debug)]
enum Store<T: SlotMemory> {
    Heap(Box<[T]>),
    #[cfg(feature = "dpdk")]
    Dpdk(crate::dpdk::HugeSlice<T>),
}

impl<T: SlotMemory + Copy + Default> Store<T> {
    fn new(len: usize) -> Store<T> {
        #[cfg(feature = "dpdk")]
        if let Some(h) = crate::dpdk::HugeSlice::zeroed(len) {
            return Store::Dpdk(h);
        }
        Store::Heap(vec![T::default(); len].into_boxed_slice())
    }
}

impl<T: SlotMemory> core::ops::Deref for Store<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        match self {
            Store::Heap(b) => b,
            #[cfg(feature = "dpdk")]
            Store::Dpdk(h) => h,
        }
    }
}

impl<T: SlotMemory> core::ops::DerefMut for Store<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Store::Heap(b) => b,
            #[cfg(feature = "dpdk")]
            Store::Dpdk(h) => h,
        }
    }
}

/// What a table slot holds: an entry keyed by a [`FlowKey`] in its first packet's orientation,
/// or nothing (`Default` is a free slot).
pub trait Slot: Copy + Default + SlotMemory {
    /// The key in the orientation it was inserted under.
    fn key(&self) -> FlowKey;
    fn is_free(&self) -> bool;
    /// Which way a packet with `key` travels on this entry, if it belongs to it.
    #[inline]
    fn direction_of(&self, key: &FlowKey) -> Option<Direction> {
        self.key().direction_of(key)
    }
}

impl Slot for Conn {
    #[inline]
    fn key(&self) -> FlowKey {
        Conn::key(self)
    }
    #[inline]
    fn is_free(&self) -> bool {
        Conn::is_free(self)
    }
}

/// A worker's table of `S` entries: TCP connections by default ([`Conn`]); the stateful
/// datagram flows use the same table with their own, smaller entry.
#[derive(Debug)]
pub struct FlowTable<S: Slot = Conn> {
    /// Any number of slots: indices wrap by compare-and-reset, never by a mask.
    slots: Store<S>,
    /// One per slot: 0 if it is free, else [`tag_of`] its key's hash.
    tags: Store<u8>,
    len: usize,
    max_load: usize,
    cursor: usize,
    /// Complete passes of the ageing cursor over the table.
    sweeps: u64,
    /// Inserts and removals so far: a probe made before a change may point at a moved
    /// entry ([`FlowTable::changes`]).
    changes: u64,
}

/// The slots of a table made for `capacity` connections.
const fn slots_for(capacity: usize) -> usize {
    let cap = if capacity < 8 { 8 } else { capacity };
    cap + cap / 7
}

/// A slot's tag: the hash's low 7 bits (the home index comes from its high bits) with the top
/// bit set, so it is never 0.
#[inline]
fn tag_of(hash: u32) -> u8 {
    (hash as u8) | 0x80
}

/// What [`FlowTable::probe`] found in the first 16 tags of a probe run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The first slot with the hash's tag (its key may still differ: tags are 7 bits).
    At(usize),
    /// Nowhere: the run ends first.
    Absent,
    /// None of the run's slots before this one has the tag; the run goes on here (past the
    /// 16 looked at, or from home when the 16 would wrap round the end).
    From(usize),
}

/// A byte in every lane of a word.
const LANES: u64 = 0x0101_0101_0101_0101;

/// The lowest zero byte of `x` has its top bit set in the result, and no byte below it does
/// (bytes above it may, falsely: only the lowest is used).
#[inline]
fn zero_lanes(x: u64) -> u64 {
    x.wrapping_sub(LANES) & !x & (LANES << 7)
}

impl FlowTable<Conn> {
    /// Stamps every connection as seen at `now_ms` under `timeouts` (`Conn::touch`): what
    /// a change of the timeouts needs, since the stamps count in units made from them. A
    /// reload keeps the timeouts, so this is a safeguard: were they to change, the flows
    /// would live their new timeouts from now, never less.
    #[cold]
    pub fn touch_all(&mut self, now_ms: u32, timeouts: &[u32; common::conn::TcpState::COUNT]) {
        for c in self.slots.iter_mut().filter(|c| !c.is_free()) {
            c.touch(now_ms, timeouts);
        }
    }
}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds its maximum load.
    Full,
    /// The key (in either orientation) is already present, at this slot.
    Exists(usize),
}

impl<S: Slot> FlowTable<S> {
    /// A table with room for at least `capacity` connections: capacity + capacity/7 slots,
    /// so that with `capacity` entries 1/8 of the slots are free and probes stay short.
    pub fn new(capacity: usize) -> FlowTable<S> {
        let slots = slots_for(capacity);
        // The multiply-shift index maps a 32-bit hash onto at most 2^32 slots.
        assert!(
            slots as u64 <= 1 << 32,
            "a flow-table shard of {capacity} connections"
        );
        FlowTable {
            slots: Store::new(slots),
            tags: Store::new(slots),
            len: 0,
            max_load: slots - slots / 8,
            cursor: 0,
            sweeps: 0,
            changes: 0,
        }
    }

    /// A count that moves with every insert and removal: a [`Probe`] taken under another
    /// count is stale.
    #[inline]
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Looks at the first 16 tags of `hash`'s probe run at once (two 8-byte words compared
    /// bytewise, no branch per tag) and says where the first entry with `hash`'s tag is, or
    /// that the run ends before one: what a burst works out for every packet before it
    /// looks at any entry, so each lookup then mostly reads one slot.
    #[inline]
    pub fn probe(&self, hash: u32) -> Probe {
        let home = self.home_of(hash);
        self.window(home, tag_of(hash)).unwrap_or(Probe::From(home))
    }

    /// The 16 tags from slot `at` of a run, as a [`Probe`]; `None` when they would wrap round
    /// the end of the table.
    #[inline(always)]
    fn window(&self, at: usize, want: u8) -> Option<Probe> {
        let tags = self.tags.get(at..at + 16)?;
        let want = u64::from(want) * LANES;
        let mut firsts = [0u32; 2];
        let mut frees = [0u32; 2];
        for (w, chunk) in tags.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            let x = u64::from_le_bytes(b);
            firsts[w] = zero_lanes(x ^ want).trailing_zeros() / 8;
            frees[w] = zero_lanes(x).trailing_zeros() / 8;
        }
        // Lane positions 0..=7 in a word, 8 when none: over both words, 0..=15 or 16.
        let first = if firsts[0] < 8 {
            firsts[0]
        } else {
            8 + firsts[1]
        };
        let free = if frees[0] < 8 { frees[0] } else { 8 + frees[1] };
        Some(if first < free && first < 16 {
            Probe::At(at + first as usize)
        } else if free < 16 {
            Probe::Absent
        } else {
            Probe::From(self.wrap(at + 16))
        })
    }

    /// [`FlowTable::lookup_hashed`] after a [`FlowTable::probe`] of `hash` taken when
    /// [`FlowTable::changes`] was `changes`: one slot read when the probe's candidate holds
    /// the key, else the run goes on from where the probe stopped.
    #[inline(always)]
    pub fn lookup_probed(
        &self,
        key: &FlowKey,
        hash: u32,
        probe: Probe,
        changes: u64,
    ) -> Option<(usize, Direction)> {
        if changes != self.changes {
            return self.lookup_hashed(key, hash);
        }
        match self.judge(key, probe) {
            Ok(found) => found,
            Err(at) => self.lookup_from(key, tag_of(hash), at),
        }
    }

    /// What `probe` says of `key`: the answer, or where the run goes on.
    #[inline(always)]
    fn judge(&self, key: &FlowKey, probe: Probe) -> Result<Option<(usize, Direction)>, usize> {
        match probe {
            Probe::At(i) => match self.slots[i].direction_of(key) {
                Some(d) => Ok(Some((i, d))),
                // Another key with the same tag: the rest of the run decides.
                None => Err(self.next(i)),
            },
            Probe::Absent => Ok(None),
            Probe::From(at) => Err(at),
        }
    }

    /// The lookup of a key with tag `want` from slot `at` of its probe run on, 16 tags at a
    /// time, one at a time where 16 would wrap round the end.
    #[inline(never)]
    fn lookup_from(&self, key: &FlowKey, want: u8, mut at: usize) -> Option<(usize, Direction)> {
        // Each turn moves on by at least one slot of the run, and a run ends at a free slot
        // (below the maximum load there is always one).
        loop {
            let Some(probe) = self.window(at, want) else {
                return self
                    .matching_from(at, want)
                    .find_map(|i| self.slots[i].direction_of(key).map(|d| (i, d)));
            };
            match self.judge(key, probe) {
                Ok(found) => return found,
                Err(next) => at = next,
            }
        }
    }

    /// `i` brought back into the table (at most one table length beyond it).
    #[inline]
    fn wrap(&self, i: usize) -> usize {
        if i >= self.slots.len() {
            i - self.slots.len()
        } else {
            i
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of connections the table accepts before refusing inserts.
    pub fn max_load(&self) -> usize {
        self.max_load
    }

    /// Bytes of table memory per slot: the connection object and its tag.
    pub fn bytes_per_slot(&self) -> usize {
        core::mem::size_of::<S>() + 1
    }

    /// The number of slots (free or not).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table is in DPDK's memory (hugepages when the EAL has them) rather than
    /// on the heap.
    pub fn in_dpdk_memory(&self) -> bool {
        !matches!(self.tags, Store::Heap(_))
    }

    /// Total table memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * self.bytes_per_slot()
    }

    /// Lemire's multiply-shift: the hash scaled onto `0..slots`, with no division and no
    /// power-of-two slot count.
    #[inline]
    fn home_of(&self, hash: u32) -> usize {
        ((u64::from(hash) * self.slots.len() as u64) >> 32) as usize
    }

    #[inline]
    fn home(&self, key: &FlowKey) -> usize {
        self.home_of(key.symmetric_hash())
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        let j = i + 1;
        if j == self.slots.len() {
            0
        } else {
            j
        }
    }

    /// How far `to` lies after `from` going forward round the table.
    #[inline]
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + self.slots.len() - from
        }
    }

    /// Finds the connection a packet with `key` belongs to, and which way it travels.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<(usize, Direction)> {
        self.lookup_hashed(key, key.symmetric_hash())
    }

    /// [`FlowTable::lookup`] with `key`'s symmetric hash already computed.
    #[inline]
    pub fn lookup_hashed(&self, key: &FlowKey, hash: u32) -> Option<(usize, Direction)> {
        debug_assert_eq!(hash, key.symmetric_hash());
        self.lookup_from(key, tag_of(hash), self.home_of(hash))
    }

    /// The slots of the probe run of a key with `hash` whose tag matches its hash, in probe
    /// order, up to the run's end (a free slot). Reads only tags.
    #[inline]
    fn matching(&self, hash: u32) -> impl Iterator<Item = usize> + '_ {
        self.matching_from(self.home_of(hash), tag_of(hash))
    }

    /// [`FlowTable::matching`] from slot `i` of the run on, for the tag `want`.
    #[inline]
    fn matching_from(&self, mut i: usize, want: u8) -> impl Iterator<Item = usize> + '_ {
        core::iter::from_fn(move || loop {
            let t = self.tags[i];
            if t == 0 {
                return None;
            }
            let at = i;
            i = self.next(i);
            if t == want {
                return Some(at);
            }
        })
    }

    /// The first free slot from `hash`'s home on (there is always one below max load).
    fn free_slot(&self, hash: u32) -> usize {
        let mut i = self.home_of(hash);
        while self.tags[i] != 0 {
            i = self.next(i);
        }
        i
    }

    /// The tag byte where the probe run of a key with `hash` begins: what to prefetch first
    /// for a burst's lookups.
    #[inline]
    pub fn tag_line(&self, hash: u32) -> &u8 {
        &self.tags[self.home_of(hash)]
    }

    /// The first slot of the probe run of a key with `hash` whose tag matches: most likely
    /// its connection, the slot to prefetch once the tags are in. Reads only tags.
    #[inline]
    pub fn candidate(&self, hash: u32) -> Option<&S> {
        self.matching(hash).next().map(|i| &self.slots[i])
    }

    /// Asks for every line of slot `idx` ahead of use (an entry may straddle two).
    #[inline]
    pub fn prefetch_slot(&self, idx: usize) {
        crate::hint::prefetch_all(&self.slots[idx]);
    }

    #[inline]
    pub fn get(&self, idx: usize) -> &S {
        &self.slots[idx]
    }

    #[inline]
    pub fn get_mut(&mut self, idx: usize) -> &mut S {
        &mut self.slots[idx]
    }

    /// Inserts `conn` (keyed client→server). Returns its slot.
    pub fn insert(&mut self, conn: S) -> Result<usize, InsertError> {
        debug_assert!(!conn.is_free());
        let key = conn.key();
        let hash = key.symmetric_hash();
        if let Some(i) = self
            .matching(hash)
            .find(|&i| self.slots[i].direction_of(&key).is_some())
        {
            return Err(InsertError::Exists(i));
        }
        if self.len >= self.max_load {
            return Err(InsertError::Full);
        }
        let i = self.free_slot(hash);
        self.slots[i] = conn;
        self.tags[i] = tag_of(hash);
        self.len += 1;
        self.changes += 1;
        Ok(i)
    }

    /// Removes the connection at `idx`, shifting later members of its probe run back so no
    /// tombstone is left.
    pub fn remove_at(&mut self, idx: usize) -> S {
        let removed = self.slots[idx];
        debug_assert!(!removed.is_free());
        let mut hole = idx;
        let mut j = self.next(idx);
        while self.tags[j] != 0 {
            let c = self.slots[j];
            let home = self.home(&c.key());
            // Move c into the hole unless its home lies cyclically in (hole, j].
            if self.distance(home, j) >= self.distance(hole, j) {
                self.slots[hole] = c;
                self.tags[hole] = self.tags[j];
                hole = j;
            }
            j = self.next(j);
        }
        self.slots[hole] = S::default();
        self.tags[hole] = 0;
        self.len -= 1;
        self.changes += 1;
        // Wrap-around cursor: a shifted entry may be visited twice or skipped once by the
        // current sweep; either is harmless for ageing.
        removed
    }

    /// Removes the connection `key` belongs to, if any.
    pub fn remove(&mut self, key: &FlowKey) -> Option<S> {
        self.lookup(key).map(|(i, _)| self.remove_at(i))
    }

    /// Visits up to `budget` slots from the sweep cursor and removes every connection for
    /// which `expired(conn)` is true, calling `on_expire` with it. Returns how many went.
    pub fn expire(
        &mut self,
        budget: usize,
        mut expired: impl FnMut(&S) -> bool,
        mut on_expire: impl FnMut(&S),
    ) -> usize {
        let mut n = 0;
        for _ in 0..budget.min(self.slots.len()) {
            let i = self.cursor;
            let c = self.slots[i];
            if !c.is_free() && expired(&c) {
                self.remove_at(i);
                on_expire(&c);
                n += 1;
                // The slot may now hold a shifted entry: look at it again next call.
                continue;
            }
            self.cursor = self.next(self.cursor);
            if self.cursor == 0 {
                self.sweeps += 1;
            }
        }
        n
    }

    /// How many times [`FlowTable::expire`] has gone all the way round the table.
    pub fn sweeps(&self) -> u64 {
        self.sweeps
    }

    /// Every slot, free or not, in table order (bounded scans for flow listings).
    pub fn slots(&self) -> &[S] {
        &self.slots
    }

    /// Panics unless every tag matches its slot (tests).
    #[cfg(test)]
    pub fn check_tags(&self) {
        for (i, c) in self.slots.iter().enumerate() {
            let want = if c.is_free() {
                0
            } else {
                tag_of(c.key().symmetric_hash())
            };
            assert_eq!(self.tags[i], want, "the tag of slot {i}");
        }
    }

    /// Iterates the live connections (management, not the hot path).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &S)> {
        self.slots.iter().enumerate().filter(|(_, c)| !c.is_free())
    }
}

#[cfg(test)]
mod tests;
