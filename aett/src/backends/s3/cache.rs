//! Objects this store has read or written, kept by key and ETag. A listing gives each key's
//! ETag, which changes whenever the object is replaced (a commit made a tombstone, a slot
//! voided), so an object is taken from here only when the listing says it is still the same:
//! a read of a stream or of the log fetches only what it has not seen, never a stale object.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Objects by key, up to a budget of bytes; the oldest go first.
#[derive(Debug, Default)]
pub(super) struct ObjectCache {
    budget: usize,
    used: usize,
    objects: HashMap<String, (String, Arc<Vec<u8>>)>,
    order: VecDeque<String>,
}

impl ObjectCache {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// The object at `key` if it is the version `etag` names.
    pub fn get(&self, key: &str, etag: &str) -> Option<Arc<Vec<u8>>> {
        self.objects
            .get(key)
            .filter(|(stored, _)| stored == etag)
            .map(|(_, bytes)| bytes.clone())
    }

    pub fn put(&mut self, key: &str, etag: &str, bytes: Arc<Vec<u8>>) {
        if bytes.len() > self.budget / 8 {
            return;
        }
        if let Some((_, old)) = self.objects.remove(key) {
            self.used -= old.len();
        }
        self.used += bytes.len();
        self.objects
            .insert(key.to_owned(), (etag.to_owned(), bytes));
        self.order.push_back(key.to_owned());
        while self.used > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            // A key put again later is further back in the queue as well; it goes now.
            if let Some((_, old)) = self.objects.remove(&oldest) {
                self.used -= old.len();
            }
        }
        // Keys replaced leave stale entries in the queue: drop them when it grows too long.
        if self.order.len() > 2 * self.objects.len() + 1024 {
            let objects = &self.objects;
            let mut seen = std::collections::HashSet::new();
            let mut kept: VecDeque<String> = self
                .order
                .drain(..)
                .rev()
                .filter(|key| objects.contains_key(key) && seen.insert(key.clone()))
                .collect();
            kept.make_contiguous().reverse();
            self.order = kept;
        }
    }

    pub fn clear(&mut self) {
        self.objects.clear();
        self.order.clear();
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_served_only_in_the_version_listed() {
        let mut cache = ObjectCache::new(1000);
        cache.put("a", "e1", Arc::new(vec![1; 10]));
        assert!(cache.get("a", "e1").is_some());
        assert!(cache.get("a", "e2").is_none(), "replaced since");
        cache.put("a", "e2", Arc::new(vec![2; 10]));
        assert_eq!(cache.get("a", "e2").unwrap()[0], 2);
        for n in 0..200 {
            cache.put(&format!("k{n}"), "e", Arc::new(vec![0; 100]));
        }
        assert!(cache.used <= 1000);
        assert!(cache.get("k199", "e").is_some());
        assert!(cache.get("k0", "e").is_none(), "the oldest went first");
    }
}
