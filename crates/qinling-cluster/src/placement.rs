//! Where a function version runs: rendezvous (highest random weight) hashing of the
//! version's key over the live nodes. Every node computes the same order from the same
//! membership, with no coordination; the first node is the version's home, so its warm
//! workers concentrate there, and the next ones take what the home cannot (spill-over).
//! When a node joins or leaves, only the versions whose home it becomes or was move.
//!
//! The hash is FNV-1a with a 64-bit finalizer, written here rather than std's `Hasher`,
//! whose output may change between Rust releases: nodes built by different compilers must
//! agree on the order.

/// The order in which `nodes` (their ids) serve `key`: home first. Ties cannot split nodes
/// with distinct ids in practice; they fall back to the id order so the result is total.
pub fn order<'a>(key: &str, nodes: &[&'a str]) -> Vec<&'a str> {
    let mut scored: Vec<(u64, &str)> = nodes.iter().map(|n| (score(key, n), *n)).collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, n)| n).collect()
}

/// The placement key of a function version.
pub fn key(function_id: &str, version: i64) -> String {
    format!("{function_id}/{version}")
}

fn score(key: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain([0u8]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finalizer: FNV alone mixes the last bytes poorly.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn every_node_computes_the_same_order_whatever_order_it_lists_them_in() {
        let a = order("f/0", &["n1", "n2", "n3"]);
        let b = order("f/0", &["n3", "n1", "n2"]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Pinned: a change here would make nodes of two builds disagree on placement.
        assert_eq!(score("f/0", "n1"), 0x181c_3a57_fd58_079d);
    }

    #[test]
    fn homes_spread_over_the_nodes() {
        let nodes = ["n1", "n2", "n3"];
        let mut homes: HashMap<&str, usize> = HashMap::new();
        for i in 0..3000 {
            *homes
                .entry(order(&key(&format!("fn{i}"), 0), &nodes)[0])
                .or_default() += 1;
        }
        for n in nodes {
            let share = homes[n];
            assert!(
                (800..1200).contains(&share),
                "{n} is home of {share} of 3000"
            );
        }
    }

    #[test]
    fn losing_a_node_moves_only_the_versions_it_was_home_of() {
        let all = ["n1", "n2", "n3"];
        let rest = ["n1", "n3"];
        for i in 0..500 {
            let k = key(&format!("fn{i}"), 0);
            let before = order(&k, &all);
            let after = order(&k, &rest);
            if before[0] != "n2" {
                assert_eq!(before[0], after[0], "{k} moved although its home stayed");
            } else {
                // Its new home is the one that was next in line.
                assert_eq!(after[0], before[1]);
            }
        }
    }
}
