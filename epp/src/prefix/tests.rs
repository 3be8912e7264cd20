use super::*;

#[test]
fn entry_is_at_most_24_bytes() {
    assert_eq!(std::mem::size_of::<AtomicU64>(), 8);
    assert!(std::mem::size_of::<AtomicU64>() <= 24);
    // A set is exactly one cache line.
    assert_eq!(std::mem::size_of::<[AtomicU64; WAYS]>(), 64);
    let table = PrefixTable::new(DEFAULT_LRU_CAPACITY_PER_SERVER);
    assert_eq!(table.allocated_bytes() / table.capacity(), 8);
    assert!(table.capacity() >= DEFAULT_LRU_CAPACITY_PER_SERVER);
}

#[test]
fn hashes_are_chained_and_model_seeded() {
    let text = b"0123456789abcdef0123456789abcdefXY";
    let mut a = Vec::new();
    hash_prompt("m", "", text, 16, 256, &mut a);
    assert_eq!(a.len(), 2, "the partial block is not hashed");
    let mut b = Vec::new();
    hash_prompt("m", "", b"0123456789abcdef", 16, 256, &mut b);
    assert_eq!(b[0], a[0]);
    // The second block equals the first, but chaining makes its hash differ.
    assert_ne!(a[0], a[1]);
    hash_prompt("lora-x", "", text, 16, 256, &mut b);
    assert_ne!(a[0], b[0]);
    hash_prompt("m", "salt", text, 16, 256, &mut b);
    assert_ne!(a[0], b[0]);
    hash_prompt("m", "", text, 16, 1, &mut b);
    assert_eq!(b.len(), 1);
    hash_prompt("m", "", b"short", 16, 256, &mut b);
    assert!(b.is_empty());
    hash_prompt("m", "", text, 0, 256, &mut b);
    assert!(b.is_empty());
}

#[test]
fn lookup_counts_consecutive_blocks() {
    let table = PrefixTable::new(1024);
    assert!(table.is_empty());
    assert_eq!(table.matched_blocks(&[1, 2, 3]), 0);
    for h in [10, 11, 12] {
        table.insert(h);
    }
    assert_eq!(table.len(), 3);
    assert_eq!(table.matched_blocks(&[10, 11, 12, 13]), 3);
    assert_eq!(table.matched_blocks(&[10, 99, 12]), 1);
    assert_eq!(table.matched_blocks(&[99, 10]), 0);
    // Reinserting does not duplicate.
    table.insert(11);
    assert_eq!(table.len(), 3);
}

#[test]
fn sets_evict_least_recently_used() {
    // One set: capacity 8.
    let table = PrefixTable::new(WAYS);
    for h in 1..=8 {
        table.insert(h);
    }
    table.insert(1); // refresh 1; 2 is now the least recent
    table.insert(9);
    assert!(table.contains(1));
    assert!(!table.contains(2));
    assert!((3..=9).all(|h| table.contains(h)));
    assert_eq!(table.len(), WAYS);
}

#[test]
fn tiny_capacity_still_works() {
    let table = PrefixTable::new(0);
    assert_eq!(table.capacity(), WAYS);
    table.insert(u64::MAX);
    assert!(table.contains(u64::MAX));
}
