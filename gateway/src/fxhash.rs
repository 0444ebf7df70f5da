//! A fast, non-cryptographic hasher for maps keyed by schema names (type and
//! field names, looked up for every field of every response). Keys come from
//! the supergraph and from trusted subgraphs, never straight from clients, so
//! SipHash's flooding resistance buys nothing here and costs time.

use std::hash::{BuildHasherDefault, Hasher};

/// The multiply-rotate hash of rustc's `FxHasher`, a word at a time.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `HashMap<K, V, FxBuildHasher>` hashes with [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;

/// A `HashSet` with [`FxHasher`].
pub type FxHashSet<K> = std::collections::HashSet<K, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_keys_that_share_prefixes_and_lengths() {
        let mut map: FxHashMap<String, usize> = FxHashMap::default();
        for (i, key) in [
            "Product",
            "Products",
            "Product\0",
            "Review",
            "Reviews",
            "a",
            "b",
            "",
        ]
        .iter()
        .enumerate()
        {
            map.insert((*key).to_owned(), i);
        }
        assert_eq!(map["Products"], 1);
        assert_eq!(map["Product\0"], 2);
        assert_eq!(map[""], 7);
        assert_eq!(map.len(), 8);
    }
}
