//! The per-core hierarchical timer wheel: a pure data structure mapping
//! millisecond ticks to wakers. It never reads a clock or makes a system
//! call; the driver tells it what time it is via [`Wheel::advance`].

use std::fmt;
use std::mem;
use std::task::Waker;

/// Tick bits consumed per level. 64 slots per level lets one `u64` hold a
/// level's occupancy, so finding the next busy slot is one `trailing_zeros`.
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// `ceil(64 / 6)`: eleven levels span every `u64` tick, so far deadlines need
/// no overflow list. The top level only ever uses its low 16 slots.
const LEVELS: usize = 11;
/// List id of the overdue list (entries whose tick was already `<= elapsed`
/// when inserted); ids below it are `level * SLOTS + slot`.
const OVERDUE: usize = LEVELS * SLOTS;
const LISTS: usize = OVERDUE + 1;
/// `Entry::list` value of an entry that sits in the free list.
const VACANT: u16 = u16::MAX;
/// Null link.
const NIL: u32 = u32::MAX;
/// `next_expiration` scans at most this many entries of the earliest
/// higher-level slot for an exact answer, keeping the call O(1).
const EXACT_SCAN_LIMIT: usize = 16;

/// Per-core hierarchical timer wheel (11 levels × 64 slots over `u64` ticks).
///
/// Level `L` slot `s` holds entries whose tick first differs from `elapsed`
/// in the `L`-th 6-bit digit, that digit being `s`; since such a tick is in
/// the future, `s` is always strictly above `elapsed`'s own digit, so no slot
/// at or behind the current position is ever occupied. Every slot is an
/// intrusive doubly-linked FIFO threaded through one arena (index-parallel
/// `Vec`s of entries and links plus a stack of free indices; keys carry a
/// generation so stale keys are ignored), which makes insert and remove O(1)
/// with no per-timer allocation. Each level has a `u64` occupancy bitmap.
/// Advancing jumps `elapsed` to the start of the earliest busy slot: a
/// level-0 slot fires whole (its entries share one tick), a higher slot is
/// cascaded, each entry re-filed at a lower level relative to the new
/// `elapsed`. An entry thus moves at most 10 times, so `advance` is amortised
/// O(fired + levels). Ticks already due when inserted wait in a separate
/// overdue list that the next `advance` fires first.
pub(crate) struct Wheel {
    /// Current time; every entry outside the overdue list has `tick > elapsed`.
    elapsed: u64,
    entries: Vec<Entry>,
    /// List links, kept apart from `entries` so walking a list chases
    /// pointers through 8-byte records (cache-resident for ~100k timers)
    /// while the loads of ticks and wakers stay independent of one another.
    links: Vec<Link>,
    /// Vacant arena indices. A stack rather than a list threaded through the
    /// entries: popping must not wait on a cache miss in a cold entry.
    free: Vec<u32>,
    len: usize,
    lists: [List; LISTS],
    occupied: [u64; LEVELS],
    /// Lower bound on the ticks in the overdue list (stale after a removal,
    /// which only makes it earlier; it is reset when the list empties).
    overdue_min: u64,
    /// Reused buffer for sorting overdue entries, so firing them does not
    /// allocate in the steady state.
    scratch: Vec<u32>,
}

/// Handle to a timer. The generation makes a key whose entry has fired or
/// been removed (and whose arena slot may have been reused) inert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Entry {
    tick: u64,
    /// `Some` exactly while the entry is pending.
    waker: Option<Waker>,
    generation: u32,
    /// Id of the list holding the entry, or `VACANT`.
    list: u16,
}

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY_LIST: List = List {
    head: NIL,
    tail: NIL,
};

impl Wheel {
    pub(crate) fn new() -> Self {
        Wheel {
            elapsed: 0,
            entries: Vec::new(),
            links: Vec::new(),
            free: Vec::new(),
            len: 0,
            lists: [EMPTY_LIST; LISTS],
            occupied: [0; LEVELS],
            overdue_min: u64::MAX,
            scratch: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Registers `waker` to fire at `tick`. A tick `<= elapsed()` is overdue
    /// and fires on the next `advance`, in tick order ahead of everything else.
    ///
    /// Panics only if more than `u32::MAX - 1` timers are live at once (a
    /// capacity overflow, like `Vec`'s).
    pub(crate) fn insert(&mut self, tick: u64, waker: Waker) -> TimerKey {
        let index = self.alloc(tick, waker);
        self.file(index);
        self.len += 1;
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Replaces the waker of a pending timer unless the stored one would wake
    /// the same task (saves a clone on every re-poll). No-op on a stale key.
    pub(crate) fn set_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(stored) = self.live_mut(key).and_then(|e| e.waker.as_mut()) {
            if !stored.will_wake(waker) {
                *stored = waker.clone();
            }
        }
    }

    /// Cancels a timer in O(1), dropping its waker. Returns whether it was
    /// still pending; a fired, removed or stale key returns `false`.
    pub(crate) fn remove(&mut self, key: TimerKey) -> bool {
        if !self.is_pending(key) {
            return false;
        }
        self.unlink(key.index);
        drop(self.release(key.index));
        true
    }

    pub(crate) fn is_pending(&self, key: TimerKey) -> bool {
        self.entries
            .get(key.index as usize)
            .is_some_and(|e| e.generation == key.generation && e.list != VACANT)
    }

    /// Moves time to `now` (never backwards: an earlier `now` is treated as
    /// `elapsed()`), appends to `fired` the waker of every entry with
    /// `tick <= now` in tick order, FIFO among equal ticks, and returns how
    /// many were appended.
    pub(crate) fn advance(&mut self, now: u64, fired: &mut Vec<Waker>) -> usize {
        let before = fired.len();
        // Overdue ticks are <= elapsed < every filed tick, so they go first.
        self.fire_overdue(fired);
        let now = now.max(self.elapsed);
        while let Some((level, slot)) = self.earliest_slot() {
            let start = slot_start(self.elapsed, level, slot);
            if start > now {
                break;
            }
            // Stepping exactly to the slot's start (rather than to `now`) is
            // what keeps every entry at the level its tick implies.
            self.elapsed = start;
            self.drain_slot(level, slot, fired);
        }
        // Entries left are in slots starting after `now`, hence share
        // `now`'s higher digits: their levels stay valid.
        self.elapsed = now;
        fired.len() - before
    }

    /// A tick by which the loop must wake: never later than the earliest
    /// pending tick. It is exact unless the earliest entries sit in a
    /// higher-level slot holding more than `EXACT_SCAN_LIMIT` entries; then
    /// it is that slot's start (a cascade point, always `> elapsed()`), and
    /// the loop just wakes, advances and asks again. With overdue entries it
    /// is `<= elapsed()`, meaning "do not sleep".
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.lists[OVERDUE].head != NIL {
            return Some(self.overdue_min);
        }
        let (level, slot) = self.earliest_slot()?;
        let start = slot_start(self.elapsed, level, slot);
        if level == 0 {
            // A level-0 slot covers a single tick.
            return Some(start);
        }
        // Lower levels are empty, so this slot's minimum is the global one.
        Some(self.short_list_min(list_id(level, slot)).unwrap_or(start))
    }

    /// Earliest busy slot. Lower levels always expire before higher ones
    /// because a level-`L` entry shares all digits above `L` with `elapsed`.
    fn earliest_slot(&self) -> Option<(usize, usize)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// Minimum tick of a list of at most `EXACT_SCAN_LIMIT` entries.
    fn short_list_min(&self, list: usize) -> Option<u64> {
        let mut index = self.lists[list].head;
        let mut min = u64::MAX;
        for _ in 0..EXACT_SCAN_LIMIT {
            if index == NIL {
                return Some(min);
            }
            min = min.min(self.entries[index as usize].tick);
            index = self.links[index as usize].next;
        }
        (index == NIL).then_some(min)
    }

    fn drain_slot(&mut self, level: usize, slot: usize, fired: &mut Vec<Waker>) {
        let mut index = self.take_list(list_id(level, slot));
        self.occupied[level] &= !(1 << slot);
        // Walking in list order and appending keeps FIFO among equal ticks:
        // lower levels were empty, so cascaded entries land in empty slots.
        while index != NIL {
            let next = self.links[index as usize].next;
            if self.entries[index as usize].tick <= self.elapsed {
                self.fire(index, fired);
            } else {
                self.file(index);
            }
            index = next;
        }
    }

    fn fire_overdue(&mut self, fired: &mut Vec<Waker>) {
        let mut index = self.take_list(OVERDUE);
        self.overdue_min = u64::MAX;
        if index == NIL {
            return;
        }
        let mut order = mem::take(&mut self.scratch);
        while index != NIL {
            order.push(index);
            index = self.links[index as usize].next;
        }
        // Overdue ticks arrive in any order; a stable sort yields tick order
        // and keeps FIFO among equal ticks. Cost is only paid by overdue inserts.
        let entries = &self.entries;
        order.sort_by_key(|&i| entries[i as usize].tick);
        for &i in &order {
            self.fire(i, fired);
        }
        order.clear();
        self.scratch = order;
    }

    /// Frees an entry already detached from its list and collects its waker.
    fn fire(&mut self, index: u32, fired: &mut Vec<Waker>) {
        fired.extend(self.release(index));
    }

    /// Puts a detached entry in the list its tick calls for.
    fn file(&mut self, index: u32) {
        let tick = self.entries[index as usize].tick;
        if tick <= self.elapsed {
            self.overdue_min = self.overdue_min.min(tick);
            self.push_back(OVERDUE, index);
        } else {
            let level = level_for(self.elapsed, tick);
            let slot = slot_for(tick, level);
            self.occupied[level] |= 1 << slot;
            self.push_back(list_id(level, slot), index);
        }
    }

    fn alloc(&mut self, tick: u64, waker: Waker) -> u32 {
        if let Some(index) = self.free.pop() {
            let entry = &mut self.entries[index as usize];
            entry.tick = tick;
            entry.waker = Some(waker);
            return index;
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("timer wheel capacity overflow");
        self.entries.push(Entry {
            tick,
            waker: Some(waker),
            generation: 0,
            list: VACANT,
        });
        self.links.push(Link {
            prev: NIL,
            next: NIL,
        });
        index
    }

    /// Returns a detached entry to the free list; bumping the generation
    /// invalidates every outstanding key to it.
    fn release(&mut self, index: u32) -> Option<Waker> {
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.list = VACANT;
        self.free.push(index);
        self.len -= 1;
        entry.waker.take()
    }

    fn live_mut(&mut self, key: TimerKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|e| e.generation == key.generation && e.list != VACANT)
    }

    fn push_back(&mut self, list: usize, index: u32) {
        let tail = self.lists[list].tail;
        self.entries[index as usize].list = list as u16;
        self.links[index as usize] = Link {
            prev: tail,
            next: NIL,
        };
        match tail {
            NIL => self.lists[list].head = index,
            _ => self.links[tail as usize].next = index,
        }
        self.lists[list].tail = index;
    }

    fn unlink(&mut self, index: u32) {
        let list = self.entries[index as usize].list as usize;
        let Link { prev, next } = self.links[index as usize];
        match prev {
            NIL => self.lists[list].head = next,
            _ => self.links[prev as usize].next = next,
        }
        match next {
            NIL => self.lists[list].tail = prev,
            _ => self.links[next as usize].prev = prev,
        }
        if self.lists[list].head != NIL {
            return;
        }
        if list == OVERDUE {
            self.overdue_min = u64::MAX;
        } else {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }

    /// Detaches a whole list, returning its head; links inside stay intact.
    fn take_list(&mut self, list: usize) -> u32 {
        mem::replace(&mut self.lists[list], EMPTY_LIST).head
    }
}

impl Default for Wheel {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Wheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len)
            .field("next_expiration", &self.next_expiration())
            .field("occupied", &self.occupied)
            .finish_non_exhaustive()
    }
}

/// Level of a future `tick`: the 6-bit digit holding the highest bit in
/// which it differs from `elapsed` (`| SLOT_MASK` sends differences confined
/// to the lowest digit, and `tick == elapsed`, to level 0).
fn level_for(elapsed: u64, tick: u64) -> usize {
    let significant = 63 - ((elapsed ^ tick) | SLOT_MASK).leading_zeros();
    (significant / SLOT_BITS) as usize
}

fn slot_for(tick: u64, level: usize) -> usize {
    ((tick >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize
}

/// First tick covered by `slot` of `level`, given the current time.
fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let shift = level as u32 * SLOT_BITS;
    // For the top level the shift reaches 66 bits: nothing lies above it.
    let above = u64::MAX.checked_shl(shift + SLOT_BITS).unwrap_or(0);
    (elapsed & above) | ((slot as u64) << shift)
}

fn list_id(level: usize, slot: usize) -> usize {
    level * SLOTS + slot
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    use std::time::Instant;

    /// Waker that records its id in a shared log when woken.
    struct Recorder {
        id: usize,
        log: Arc<Mutex<Vec<usize>>>,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.log.lock().unwrap().push(self.id);
        }
    }

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    struct Ids(Arc<Mutex<Vec<usize>>>);

    impl Ids {
        fn new() -> Self {
            Ids(Arc::default())
        }
        fn waker(&self, id: usize) -> Waker {
            let log = self.0.clone();
            Waker::from(Arc::new(Recorder { id, log }))
        }
        /// Wakes (and drains) `fired`, returning the ids in firing order.
        fn woken(&self, fired: &mut Vec<Waker>) -> Vec<usize> {
            fired.drain(..).for_each(Waker::wake);
            mem::take(&mut *self.0.lock().unwrap())
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn fires_exactly_at_tick_never_before() {
        let ticks = [
            1,
            2,
            63,
            64,
            65,
            100,
            4095,
            4096,
            4097,
            262_143,
            (1 << 24) + 7,
            1 << 40,
            (1 << 60) + 3,
            u64::MAX - 1,
            u64::MAX,
        ];
        for origin in [0, 5000, (1 << 36) - 3] {
            for &delta in &ticks {
                let tick = origin + delta.min(u64::MAX - origin);
                let mut wheel = Wheel::new();
                let mut fired = Vec::new();
                wheel.advance(origin, &mut fired);
                let (count, waker) = counter();
                let key = wheel.insert(tick, waker);
                assert_eq!(wheel.next_expiration(), Some(tick), "tick {tick}");
                // Approach in two hops so intermediate cascades happen.
                let mid = origin + (tick - origin) / 2;
                assert_eq!(wheel.advance(mid, &mut fired), 0);
                assert_eq!(wheel.advance(tick - 1, &mut fired), 0, "tick {tick}");
                assert!(wheel.is_pending(key));
                assert_eq!(wheel.next_expiration(), Some(tick));
                assert_eq!(wheel.advance(tick, &mut fired), 1, "tick {tick}");
                fired.drain(..).for_each(Waker::wake);
                assert_eq!(count.0.load(Ordering::SeqCst), 1);
                assert!(!wheel.is_pending(key) && wheel.is_empty());
                assert_eq!(wheel.next_expiration(), None);
                assert_eq!(wheel.elapsed(), tick);
            }
        }
    }

    fn random_tick(rng: &mut XorShift, elapsed: u64) -> u64 {
        match rng.below(100) {
            0..=59 => elapsed.saturating_add(1 + rng.below(100)),
            60..=79 => elapsed.saturating_add(rng.below(5000)),
            80..=89 => elapsed.saturating_sub(rng.below(50)),
            90..=96 => elapsed.saturating_add(rng.below(1 << 24)),
            97..=98 => elapsed.saturating_add(rng.below(1 << 41)),
            _ => u64::MAX - rng.below(3),
        }
    }

    fn random_now(rng: &mut XorShift, wheel: &Wheel, all_inserted: bool) -> u64 {
        let elapsed = wheel.elapsed();
        // While inserting, do not jump to the u64::MAX timers: later inserts
        // would all be overdue.
        let cap = if all_inserted {
            u64::MAX
        } else {
            elapsed.saturating_add(1 << 42)
        };
        let next = wheel.next_expiration().unwrap_or(elapsed).min(cap);
        match rng.below(32) {
            0 => elapsed.saturating_sub(3),
            1..=3 => next,
            4 => elapsed.saturating_add(rng.below(1 << 20)),
            5 => elapsed.saturating_add(rng.below(1 << 42)),
            _ if all_inserted => next.max(elapsed.saturating_add(rng.below(64))),
            _ => elapsed.saturating_add(rng.below(64)),
        }
    }

    /// Checks `next_expiration` against the brute-force minimum: never later,
    /// and only at or before `elapsed` when something is really overdue.
    fn check_next(wheel: &Wheel, model: &BTreeSet<(u64, usize)>) {
        match (wheel.next_expiration(), model.first()) {
            (None, None) => {}
            (Some(next), Some(&(min, _))) => {
                assert!(next <= min, "next {next} later than min {min}");
                assert!(next > wheel.elapsed() || min <= wheel.elapsed());
            }
            other => panic!("next_expiration mismatch: {other:?}"),
        }
    }

    #[test]
    fn random_against_model() {
        const N: usize = 100_000;
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let ids = Ids::new();
        let mut wheel = Wheel::new();
        let mut model = BTreeSet::new();
        let (mut ticks, mut keys, mut candidates) = (Vec::new(), Vec::new(), Vec::new());
        let (mut fired, mut fired_total, mut removed) = (Vec::new(), 0, 0);
        while ticks.len() < N || !model.is_empty() {
            for _ in 0..rng.below(64).min((N - ticks.len()) as u64) {
                let id = ticks.len();
                let tick = random_tick(&mut rng, wheel.elapsed());
                ticks.push(tick);
                keys.push(wheel.insert(tick, ids.waker(id)));
                model.insert((tick, id));
                candidates.push(id);
            }
            if rng.below(4) == 0 && !candidates.is_empty() {
                // Candidates include fired ids: their keys are stale and
                // their arena slots have likely been reused.
                let id = candidates.swap_remove(rng.below(candidates.len() as u64) as usize);
                let pending = model.remove(&(ticks[id], id));
                assert_eq!(wheel.remove(keys[id]), pending);
                assert!(!wheel.remove(keys[id]));
                removed += usize::from(pending);
            }
            assert_eq!(wheel.len(), model.len());
            check_next(&wheel, &model);
            let now = random_now(&mut rng, &wheel, ticks.len() == N);
            let horizon = now.max(wheel.elapsed());
            let mut expected = Vec::new();
            while let Some(&(tick, id)) = model.first().filter(|&&(t, _)| t <= horizon) {
                model.remove(&(tick, id));
                expected.push(id);
            }
            assert_eq!(wheel.advance(now, &mut fired), expected.len());
            assert_eq!(ids.woken(&mut fired), expected);
            assert_eq!(wheel.elapsed(), horizon);
            fired_total += expected.len();
        }
        assert_eq!(fired_total + removed, N);
        assert!(wheel.is_empty() && wheel.next_expiration().is_none());
    }

    #[test]
    fn remove_before_firing_and_stale_keys() {
        let ids = Ids::new();
        let mut wheel = Wheel::new();
        let mut fired = Vec::new();
        let a = wheel.insert(10, ids.waker(1));
        let b = wheel.insert(10, ids.waker(2));
        let far = wheel.insert(1 << 30, ids.waker(3));
        assert!(wheel.remove(a));
        assert!(!wheel.remove(a));
        assert!(wheel.remove(far));
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.advance(100, &mut fired), 1);
        assert_eq!(ids.woken(&mut fired), [2]);
        assert_eq!(wheel.advance(u64::MAX, &mut fired), 0);
        // b fired; a new entry reuses its slot, and b's stale key must not
        // touch it.
        let c = wheel.insert(u64::MAX, ids.waker(4));
        assert_eq!(c.index, b.index);
        assert!(!wheel.is_pending(b) && wheel.is_pending(c));
        assert!(!wheel.remove(b));
        wheel.set_waker(b, &ids.waker(5));
        let bogus = TimerKey {
            index: 12345,
            generation: 0,
        };
        assert!(!wheel.remove(bogus) && !wheel.is_pending(bogus));
        wheel.set_waker(bogus, &ids.waker(6));
        assert_eq!(wheel.advance(u64::MAX, &mut fired), 1);
        assert_eq!(ids.woken(&mut fired), [4]);
        assert!(!wheel.remove(c));
    }

    #[test]
    fn past_ticks_fire_on_next_advance_in_tick_order() {
        let ids = Ids::new();
        let mut wheel = Wheel::new();
        let mut fired = Vec::new();
        wheel.insert(0, ids.waker(0));
        assert_eq!(wheel.next_expiration(), Some(0));
        assert_eq!(wheel.advance(0, &mut fired), 1);
        assert_eq!(ids.woken(&mut fired), [0]);
        wheel.advance(100, &mut fired);
        wheel.insert(101, ids.waker(5));
        for (id, tick) in [(1, 50), (2, 100), (3, 30), (4, 50)] {
            wheel.insert(tick, ids.waker(id));
        }
        let removed = wheel.insert(7, ids.waker(9));
        assert_eq!(wheel.next_expiration(), Some(7));
        assert!(wheel.remove(removed));
        assert!(wheel.next_expiration() <= Some(30));
        // An earlier `now` neither moves time back nor holds overdue timers.
        assert_eq!(wheel.advance(60, &mut fired), 4);
        assert_eq!(ids.woken(&mut fired), [3, 1, 4, 2]);
        assert_eq!(wheel.elapsed(), 100);
        assert_eq!(wheel.next_expiration(), Some(101));
    }

    #[test]
    fn huge_jump_fires_everything_due_in_order() {
        let ids = Ids::new();
        let mut rng = XorShift(42);
        let mut wheel = Wheel::new();
        let mut expected = Vec::new();
        for id in 0..10_000 {
            let tick = match id % 4 {
                0 => rng.below(1 << 12),
                1 => rng.below(1 << 40),
                2 => 1 << 40,
                _ => u64::MAX - rng.below(2),
            };
            wheel.insert(tick, ids.waker(id));
            expected.push((tick, id));
        }
        expected.sort_unstable();
        let split = expected.partition_point(|&(t, _)| t <= 1 << 40);
        let mut fired = Vec::new();
        assert_eq!(wheel.advance(1 << 40, &mut fired), split);
        let due: Vec<_> = expected[..split].iter().map(|&(_, id)| id).collect();
        assert_eq!(ids.woken(&mut fired), due);
        // ~5000 entries share the top-level slot: its start is the answer.
        let next = wheel.next_expiration().unwrap();
        assert!(next > 1 << 40 && next <= expected[split].0);
        assert_eq!(wheel.advance(u64::MAX - 2, &mut fired), 0);
        wheel.advance(u64::MAX, &mut fired);
        let rest: Vec<_> = expected[split..].iter().map(|&(_, id)| id).collect();
        assert_eq!(ids.woken(&mut fired), rest);
        assert!(wheel.is_empty());
    }

    #[test]
    fn set_waker_replaces_unless_will_wake() {
        let mut wheel = Wheel::new();
        let (first, first_waker) = counter();
        let (second, second_waker) = counter();
        let key = wheel.insert(5, first_waker);
        wheel.set_waker(key, &second_waker);
        assert_eq!(Arc::strong_count(&first), 1, "old waker dropped");
        // Same task: no clone is taken.
        wheel.set_waker(key, &second_waker);
        assert_eq!(Arc::strong_count(&second), 3);
        let mut fired = Vec::new();
        wheel.advance(5, &mut fired);
        fired.drain(..).for_each(Waker::wake);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(format!("{wheel:?}").contains("elapsed: 5"));
    }

    #[test]
    fn next_expiration_of_crowded_slot_is_a_lower_bound() {
        let mut wheel = Wheel::new();
        for tick in 100..100 + EXACT_SCAN_LIMIT as u64 + 1 {
            wheel.insert(tick, Waker::noop().clone());
        }
        // All in level 1, slot 1 (ticks 64..128): the cascade point.
        assert_eq!(wheel.next_expiration(), Some(64));
        assert_eq!(wheel.advance(64, &mut Vec::new()), 0);
        assert_eq!(wheel.next_expiration(), Some(100));
    }

    #[test]
    fn wheel_speed() {
        const N: u64 = 100_000;
        let mut rng = XorShift(7);
        let waker = Waker::noop();
        let mut wheel = Wheel::new();
        let mut fired = Vec::with_capacity(N as usize);
        for round in 0..3 {
            let start = Instant::now();
            let base = wheel.elapsed();
            for _ in 0..N {
                wheel.insert(base + 1 + rng.below(100), waker.clone());
            }
            let inserted = start.elapsed();
            let mut total = 0;
            while !wheel.is_empty() {
                total += wheel.advance(wheel.elapsed() + 1, &mut fired);
                fired.clear();
            }
            let elapsed = start.elapsed();
            assert_eq!(total, N as usize);
            // Round 0 includes growing the arena (page faults); later rounds
            // reuse it, like a long-lived per-core wheel.
            println!(
                "wheel_speed round {round}: {N} timers over 1..=100 ms: insert {inserted:?}, \
                 insert + advance-to-empty {elapsed:?}"
            );
        }
    }
}
