//! Page moves that follow the size mix (memcached's `slab_automove=1`): which class gives a
//! page to which, decided once a second from per-class samples.
//!
//! Owns: the sliding window of samples per class and the decision rule. Knows nothing of
//! locks, pages or items: `Store::automove` takes the samples (`ClassSample`) and carries the
//! move out; this module is pure, so the rule is tested on made-up samples.
//!
//! The rule is memcached 1.6's `slab_automove.c`: over a window of `window` seconds,
//! * a class whose free chunks exceed `FREE_PAGES` pages and that neither evicted nor ran out
//!   of memory in the window gives a page back to the global pool;
//! * otherwise the class with the oldest items (the window's mean age at its eviction hand)
//!   among those with more than `MIN_SOURCE_PAGES` pages gives a page to the class with the
//!   youngest items among those that evicted in more than half the window's seconds, if the
//!   youngest age is below `ratio` (`slab_automove_ratio`, 0.8) times the oldest.
//!
//! Why it matters more here than with memcached's default classes: finer classes (see
//! `slab::auto_factor`) mean a shift of value sizes lands in classes that own few pages, which
//! would otherwise keep evicting among themselves while pages of the old sizes sit idle.

use std::collections::VecDeque;

/// A class must own more than this many pages to give one (memcached's
/// `MIN_PAGES_FOR_SOURCE`).
const MIN_SOURCE_PAGES: usize = 2;

/// A class with more than this many pages' worth of free chunks gives a page to the pool
/// (memcached's `MIN_PAGES_FREE`).
const FREE_PAGES: f64 = 1.5;

/// What the store saw of one class this second.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassSample {
    pub pages: usize,
    pub per_page: usize,
    pub free_chunks: usize,
    /// Cumulative counters (differences are taken here).
    pub evicted: u64,
    pub outofmemory: u64,
    /// Seconds since the oldest item at the eviction hand was last used (0: no item).
    pub age: u64,
}

/// One second of one class, kept for the window.
#[derive(Clone, Copy, Debug, Default)]
struct Second {
    evicted: bool,
    age: u64,
}

/// Where a page should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// From class `src` to class `dst`.
    ToClass { src: usize, dst: usize },
    /// From class `src` to the global pool (it has free chunks to spare).
    ToPool { src: usize },
}

/// The sliding window.
pub struct Automove {
    window: usize,
    ratio: f64,
    /// Per class id: the previous sample's counters and the window's seconds.
    prev: Vec<Option<(u64, u64)>>,
    seconds: Vec<VecDeque<Second>>,
    /// Seconds seen since the start or the last move (no decision before a full window).
    seen: usize,
}

impl Automove {
    pub fn new(window: usize, ratio: f64) -> Automove {
        Automove { window: window.max(1), ratio, prev: Vec::new(), seconds: Vec::new(), seen: 0 }
    }

    /// Take one second's samples (index = class id, 0 unused) and say which page to move.
    pub fn decide(&mut self, samples: &[ClassSample]) -> Option<Move> {
        if self.prev.len() < samples.len() {
            self.prev.resize(samples.len(), None);
            self.seconds.resize(samples.len(), VecDeque::new());
        }
        self.seen += 1;
        let mut oldest: Option<(usize, u64)> = None;
        let mut youngest: Option<(usize, u64)> = None;
        let mut to_pool = None;
        for (id, s) in samples.iter().enumerate().skip(1) {
            let (ev, oom) = self.prev[id].unwrap_or((s.evicted, s.outofmemory));
            self.prev[id] = Some((s.evicted, s.outofmemory));
            let w = &mut self.seconds[id];
            w.push_back(Second { evicted: s.evicted > ev || s.outofmemory > oom, age: s.age });
            if w.len() > self.window {
                w.pop_front();
            }
            if s.pages == 0 {
                continue;
            }
            let evicted = w.iter().filter(|x| x.evicted).count();
            let age = w.iter().map(|x| x.age).sum::<u64>() / w.len() as u64;
            if to_pool.is_none() && evicted == 0 && s.free_chunks as f64 > s.per_page as f64 * FREE_PAGES {
                to_pool = Some(id);
            }
            if s.pages > MIN_SOURCE_PAGES && oldest.is_none_or(|(_, a)| age > a) {
                oldest = Some((id, age));
            }
            if evicted > self.window / 2 && youngest.is_none_or(|(_, a)| age < a) {
                youngest = Some((id, age));
            }
        }
        if self.seen <= self.window {
            return None;
        }
        let decision = if let Some(src) = to_pool {
            Some(Move::ToPool { src })
        } else {
            match (oldest, youngest) {
                (Some((src, old)), Some((dst, young))) if src != dst && (young as f64) < old as f64 * self.ratio => {
                    Some(Move::ToClass { src, dst })
                }
                _ => None,
            }
        };
        if decision.is_some() {
            // memcached clears its window after a move, so the next decision sees the new split.
            self.seen = 0;
            self.seconds.iter_mut().for_each(VecDeque::clear);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(pages: usize, evicted: u64, age: u64) -> ClassSample {
        ClassSample { pages, per_page: 100, free_chunks: 0, evicted, outofmemory: 0, age }
    }

    /// Run `secs` seconds where class 1 keeps old items and class 2 evicts young ones.
    fn run(am: &mut Automove, secs: u64, young_age: u64) -> Vec<Option<Move>> {
        (1..=secs)
            .map(|t| am.decide(&[ClassSample::default(), class(10, 0, 500), class(3, t * 50, young_age)]))
            .collect()
    }

    #[test]
    fn a_page_goes_from_the_oldest_class_to_the_youngest_evicting_one_after_a_window() {
        let mut am = Automove::new(30, 0.8);
        let d = run(&mut am, 31, 10);
        assert!(d[..30].iter().all(Option::is_none), "{d:?}");
        assert_eq!(d[30], Some(Move::ToClass { src: 1, dst: 2 }));
        // the window starts over after a move
        assert!(run(&mut am, 30, 10).iter().all(Option::is_none));
    }

    #[test]
    fn nothing_moves_when_ages_are_close_or_nobody_evicts() {
        let mut am = Automove::new(30, 0.8);
        assert!(run(&mut am, 60, 450).iter().all(Option::is_none));
        let mut am = Automove::new(30, 0.8);
        let quiet = |_| am.decide(&[ClassSample::default(), class(10, 0, 500), class(3, 7, 10)]);
        assert!((0..60).map(quiet).all(|d| d.is_none()));
    }

    #[test]
    fn a_class_with_spare_free_chunks_gives_a_page_to_the_pool() {
        let mut am = Automove::new(5, 0.8);
        let mut spare = class(4, 0, 100);
        spare.free_chunks = 200;
        let d: Vec<_> = (0..6).map(|_| am.decide(&[ClassSample::default(), spare, class(1, 0, 0)])).collect();
        assert_eq!(d[5], Some(Move::ToPool { src: 1 }));
    }

    #[test]
    fn a_class_with_few_pages_never_gives_one() {
        let mut am = Automove::new(5, 0.8);
        let d: Vec<_> =
            (1..=20).map(|t| am.decide(&[ClassSample::default(), class(2, 0, 500), class(3, t, 1)])).collect();
        assert!(d.iter().all(Option::is_none), "{d:?}");
    }
}
