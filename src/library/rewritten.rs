//! Recently rewritten segments (continuous timestamps): the bytes of
//! segment `g` depend only on `g` and the file, and clients at the live edge
//! all ask for the same few numbers, so each is rewritten once and then
//! served like a file.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// Rewritten segments kept per track: the newest one or two a player at the
/// live edge asks for, the ones players a few segments behind ask for, and
/// the next one.
pub const KEPT_PER_TRACK: usize = 4;

/// One track's recently rewritten segments, most recently used first.
#[derive(Debug, Default)]
pub struct Rewritten {
    entries: Mutex<VecDeque<Entry>>,
}

#[derive(Debug)]
struct Entry {
    g: u64,
    /// The file's bytes it was rewritten from. Holding them keeps their
    /// allocation alive, so another `Bytes` at the same address and length
    /// is the same content.
    source: Bytes,
    body: Bytes,
}

impl Entry {
    fn is_of(&self, g: u64, source: &Bytes) -> bool {
        self.g == g && self.source.as_ptr() == source.as_ptr() && self.source.len() == source.len()
    }
}

impl Rewritten {
    /// The kept rewrite of segment `g` from these very bytes, if any.
    pub fn get(&self, g: u64, source: &Bytes) -> Option<Bytes> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries.iter().position(|e| e.is_of(g, source))?;
        let entry = entries.remove(i).expect("position is in range");
        let body = entry.body.clone();
        entries.push_front(entry);
        Some(body)
    }

    /// Segment `g` rewritten from `source` (the file's current bytes): the
    /// kept copy when there is one from these very bytes, else `rewrite()`,
    /// kept for the next request. Concurrent first requests may both
    /// rewrite; they get the same bytes.
    pub fn get_or_rewrite<E>(
        &self,
        g: u64,
        source: &Bytes,
        rewrite: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        if let Some(body) = self.get(g, source) {
            return Ok(body);
        }
        let body = rewrite()?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // A file read again (changed on disk) makes its old entries useless.
        entries.retain(|e| e.g != g);
        entries.push_front(Entry {
            g,
            source: source.clone(),
            body: body.clone(),
        });
        entries.truncate(KEPT_PER_TRACK);
        Ok(body)
    }

    /// How many rewritten segments are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn rewrite_count(cache: &Rewritten, g: u64, source: &Bytes, calls: &Cell<u32>) -> Bytes {
        cache
            .get_or_rewrite(g, source, || {
                calls.set(calls.get() + 1);
                Ok::<_, ()>(Bytes::from(format!("{g}:{}", source.len())))
            })
            .unwrap()
    }

    #[test]
    fn a_segment_is_rewritten_once_while_its_file_is_the_same() {
        let cache = Rewritten::default();
        let file = Bytes::from(vec![0x47; 188]);
        let calls = Cell::new(0);
        let first = rewrite_count(&cache, 7, &file, &calls);
        let again = rewrite_count(&cache, 7, &file.clone(), &calls);
        assert_eq!(first, again);
        assert_eq!(calls.get(), 1);
        // Another number of the same file is another rewrite.
        rewrite_count(&cache, 8, &file, &calls);
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn new_bytes_of_the_file_are_rewritten_again() {
        let cache = Rewritten::default();
        let calls = Cell::new(0);
        let old = Bytes::from(vec![0x47; 188]);
        rewrite_count(&cache, 7, &old, &calls);
        // Equal content in another allocation is not taken for the same.
        let reread = Bytes::from(vec![0x47; 376]);
        let body = rewrite_count(&cache, 7, &reread, &calls);
        assert_eq!(calls.get(), 2);
        assert_eq!(body, Bytes::from("7:376"));
        assert_eq!(cache.len(), 1, "the stale entry of the same number is gone");
    }

    #[test]
    fn only_the_most_recently_used_are_kept() {
        let cache = Rewritten::default();
        let file = Bytes::from(vec![0x47; 188]);
        let calls = Cell::new(0);
        for g in 0..KEPT_PER_TRACK as u64 {
            rewrite_count(&cache, g, &file, &calls);
        }
        rewrite_count(&cache, 0, &file, &calls); // used again: kept
        rewrite_count(&cache, 100, &file, &calls); // evicts 1, the oldest
        assert_eq!(cache.len(), KEPT_PER_TRACK);
        let before = calls.get();
        rewrite_count(&cache, 0, &file, &calls);
        assert_eq!(calls.get(), before, "0 was kept");
        rewrite_count(&cache, 1, &file, &calls);
        assert_eq!(calls.get(), before + 1, "1 was evicted");
    }

    #[test]
    fn a_failed_rewrite_keeps_nothing() {
        let cache = Rewritten::default();
        let file = Bytes::from(vec![0x47; 188]);
        assert_eq!(cache.get_or_rewrite(3, &file, || Err("bad")), Err("bad"));
        assert!(cache.is_empty());
    }
}
