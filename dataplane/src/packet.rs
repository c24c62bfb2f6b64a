//! The packet handle the worker loop works on, and a fixed-capacity burst of them.
//!
//! The same worker code runs over DPDK mbufs and over in-memory buffers ([`Vec<u8>`]) in
//! tests; both implement [`Packet`]. A [`Burst`] never allocates after it is made: its
//! storage is an inline array (`Option<P>` of a non-null handle costs no extra space, so a
//! burst of mbufs has the layout of DPDK's own `rte_mbuf *[]`).

/// A received frame that can be read and rewritten in place.
pub trait Packet: Send {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// The RSS hash the NIC computed, if it did.
    fn rss_hash(&self) -> Option<u32> {
        None
    }
    /// Makes the frame start `n` bytes earlier (their contents are unspecified: overwrite
    /// them); false, and nothing changed, if the buffer has no room for them in front.
    fn grow_front(&mut self, n: usize) -> bool;
    /// Makes the frame start `n` bytes later; false, and nothing changed, if it is shorter.
    fn shrink_front(&mut self, n: usize) -> bool;
}

impl Packet for Vec<u8> {
    fn data(&self) -> &[u8] {
        self
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self
    }
    fn grow_front(&mut self, n: usize) -> bool {
        self.splice(0..0, std::iter::repeat_n(0, n));
        true
    }
    fn shrink_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.drain(..n);
        true
    }
}

/// Packets per burst: RX, TX buffering and rings all work in groups of this many.
pub const BURST: usize = 32;

/// Up to `N` packets, dense from index 0.
#[derive(Debug)]
pub struct Burst<P, const N: usize = BURST> {
    slots: [Option<P>; N],
    len: usize,
}

impl<P, const N: usize> Default for Burst<P, N> {
    fn default() -> Self {
        Burst {
            slots: std::array::from_fn(|_| None),
            len: 0,
        }
    }
}

impl<P, const N: usize> Burst<P, N> {
    pub fn new() -> Self {
        Self::default()
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }
    #[inline]
    pub fn room(&self) -> usize {
        N - self.len
    }
    pub const fn capacity(&self) -> usize {
        N
    }
    /// Appends, or hands the packet back when full.
    #[inline]
    pub fn push(&mut self, p: P) -> Result<(), P> {
        if self.len == N {
            return Err(p);
        }
        self.slots[self.len] = Some(p);
        self.len += 1;
        Ok(())
    }
    /// Takes every packet out, in order, leaving the burst empty.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = P> + '_ {
        let n = std::mem::take(&mut self.len);
        Taken(self.slots[..n].iter_mut())
    }
    /// Removes the first `n` packets (those a TX burst sent), shifting the rest to the front.
    pub fn consume_front(&mut self, n: usize) -> impl Iterator<Item = P> + '_ {
        let n = n.min(self.len);
        self.slots[..self.len].rotate_left(n);
        self.len -= n;
        let start = self.len;
        let end = start + n;
        Taken(self.slots[start..end].iter_mut())
    }
    #[inline]
    pub fn get(&self, i: usize) -> Option<&P> {
        self.slots[..self.len].get(i).and_then(Option::as_ref)
    }
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &P> {
        self.slots[..self.len].iter().filter_map(Option::as_ref)
    }
    /// The raw slot array and the count, for a port driver filling or emptying the burst in
    /// place: slots `0..len` are `Some`, the rest `None` (packets that [`Burst::drain`] or
    /// [`Burst::consume_front`] moved out of the count but nobody took are dropped with the
    /// iterator), and a driver must leave it so.
    pub fn slots_mut(&mut self) -> (&mut [Option<P>; N], &mut usize) {
        (&mut self.slots, &mut self.len)
    }
}

/// Moves the packets out of a run of slots that is already outside the count; the packets
/// not taken are dropped with the iterator, so the slots past `len` are `None` again.
struct Taken<'a, P>(std::slice::IterMut<'a, Option<P>>);

impl<P> Iterator for Taken<'_, P> {
    type Item = P;
    #[inline]
    fn next(&mut self) -> Option<P> {
        self.0.by_ref().find_map(Option::take)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.0.len()))
    }
}

impl<P> Drop for Taken<'_, P> {
    fn drop(&mut self) {
        self.0.by_ref().for_each(|slot| *slot = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_drain_and_consume_front() {
        let mut b: Burst<u32, 4> = Burst::new();
        for i in 0..4 {
            b.push(i).unwrap();
        }
        assert_eq!(b.push(9), Err(9));
        let sent: Vec<u32> = b.consume_front(3).collect();
        assert_eq!(sent, vec![0, 1, 2]);
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![3]);
        b.push(5).unwrap();
        assert_eq!(b.drain().collect::<Vec<_>>(), vec![3, 5]);
        assert!(b.is_empty());
    }

    #[test]
    fn untaken_packets_are_dropped_with_the_iterator() {
        let mut b: Burst<u32, 4> = Burst::new();
        for i in 0..4 {
            b.push(i).unwrap();
        }
        assert_eq!(b.consume_front(2).next(), Some(0));
        assert_eq!(b.drain().next(), Some(2));
        let (slots, len) = b.slots_mut();
        assert_eq!(*len, 0);
        assert!(slots.iter().all(Option::is_none), "{slots:?}");
    }
}
