//! The objects' MAC tree: which MAC each object's row must carry, authenticated by one hash
//! in the token state. The state's sum of row MACs notices that a row was added, removed or
//! put back from an older copy (whose own MAC still holds); this tree names which objects,
//! so that those are refused and every other object keeps working.
//!
//! A leaf (level 0) holds `FANOUT` slots of 32 bytes: slot `s` of leaf `i` is the MAC of
//! object `i * FANOUT + s`, or zeros when there is no such object. A node at level L > 0
//! holds the hashes of its `FANOUT` children at level L - 1. `LEVELS` levels cover every
//! id below `FANOUT^LEVELS`; the root is node (LEVELS - 1, 0). A node is stored without its
//! trailing zero slots and not at all when it is empty; an empty node hashes to zeros.
//! A write touches one node per level.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::crypto::{Digest, Hash};
use crate::error::{Error, Result};
use crate::seal::Sum256;

pub const FANOUT: u64 = 128;
pub const LEVELS: u32 = 5;
const SLOT: usize = 32;
const NODE: usize = FANOUT as usize * SLOT;

/// A node's place: (level, index within the level).
pub type Key = (u32, u64);

/// Where nodes are kept (a store's transaction).
pub trait Nodes {
    fn get(&self, key: Key) -> Result<Option<Vec<u8>>>;
    /// Stores a node; `None` removes it.
    fn put(&self, key: Key, node: Option<&[u8]>) -> Result<()>;
}

/// The hash of a stored node; zeros for an empty one.
pub fn node_hash(key: Key, node: &[u8]) -> [u8; 32] {
    if node.iter().all(|b| *b == 0) {
        return [0; 32];
    }
    let mut d = Digest::new(Hash::Sha256);
    d.update(b"kmstoken mac tree node");
    d.update(&key.0.to_le_bytes());
    d.update(&key.1.to_le_bytes());
    d.update(node);
    let mut out = [0; 32];
    out.copy_from_slice(&d.finish());
    out
}

/// The node as stored: without its trailing zero slots.
fn trimmed(node: &[u8]) -> &[u8] {
    let used = node.chunks(SLOT).rposition(|s| s.iter().any(|b| *b != 0)).map_or(0, |i| i + 1);
    &node[..used * SLOT]
}

/// Changes to the tree in one transaction: the nodes touched, written and hashed upward
/// by `finish`.
#[derive(Default)]
pub struct Edit {
    nodes: HashMap<Key, Vec<u8>>,
    dirty: BTreeSet<Key>,
}

impl Edit {
    fn node<'a>(&'a mut self, store: &dyn Nodes, key: Key) -> Result<&'a mut Vec<u8>> {
        use std::collections::hash_map::Entry;
        Ok(match self.nodes.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let mut n = store.get(key)?.unwrap_or_default();
                n.resize(NODE, 0);
                e.insert(n)
            }
        })
    }

    fn set_slot(&mut self, store: &dyn Nodes, key: Key, slot: usize, value: &[u8; 32]) -> Result<()> {
        self.node(store, key)?[slot * SLOT..(slot + 1) * SLOT].copy_from_slice(value);
        self.dirty.insert(key);
        Ok(())
    }

    /// Object `id` now carries `mac` (None: it is gone).
    pub fn set(&mut self, store: &dyn Nodes, id: u64, mac: Option<&[u8]>) -> Result<()> {
        if id >= FANOUT.pow(LEVELS) {
            return Err(Error::storage(format!("object id {id} is beyond what the MAC tree covers")));
        }
        let mut value = [0; 32];
        if let Some(m) = mac {
            let m: &[u8; 32] = m.try_into().map_err(|_| Error::storage("a row MAC of the wrong length"))?;
            value = *m;
        }
        self.set_slot(store, (0, id / FANOUT), (id % FANOUT) as usize, &value)
    }

    /// Writes the touched nodes, level by level, each one's hash into its parent; returns
    /// the new root hash.
    pub fn finish(mut self, store: &dyn Nodes) -> Result<[u8; 32]> {
        for level in 0..LEVELS {
            let keys: Vec<Key> = self.dirty.range((level, 0)..(level + 1, 0)).copied().collect();
            for key in keys {
                let node = trimmed(&self.nodes[&key]).to_vec();
                store.put(key, (!node.is_empty()).then_some(node.as_slice()))?;
                let h = node_hash(key, &node);
                if level + 1 < LEVELS {
                    self.set_slot(store, (level + 1, key.1 / FANOUT), (key.1 % FANOUT) as usize, &h)?;
                }
            }
        }
        let root = (LEVELS - 1, 0);
        Ok(match store.get(root)? {
            Some(n) => node_hash(root, &n),
            None => [0; 32],
        })
    }
}

/// The keys of the nodes from object `id`'s leaf up to the root.
pub fn path_of(id: u64) -> Vec<Key> {
    (0..LEVELS).map(|level| (level, id / FANOUT.pow(level + 1))).collect()
}

/// Whether the nodes `path` (from `path_of(id)`) hash up to `root` and name `mac` as
/// object `id`'s.
pub fn vouches(root: &[u8; 32], id: u64, path: &[Option<Vec<u8>>], mac: &[u8]) -> bool {
    if path.len() != LEVELS as usize || id >= FANOUT.pow(LEVELS) {
        return false;
    }
    let mut want = *root;
    for level in (0..LEVELS).rev() {
        let key = (level, id / FANOUT.pow(level + 1));
        let node = path[level as usize].as_deref().unwrap_or_default();
        if node.len() > NODE || node_hash(key, node) != want {
            return false;
        }
        let slot = ((id / FANOUT.pow(level)) % FANOUT) as usize * SLOT;
        want = node.get(slot..slot + SLOT).map_or([0; 32], |s| s.try_into().expect("a whole slot"));
    }
    want != [0; 32] && want.as_slice() == mac
}

/// What the tree says of the object rows as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Objects whose row is not the one the token wrote last, with the reason.
    pub refused: Vec<(u64, &'static str)>,
    /// Objects the token wrote whose row is gone.
    pub removed: Vec<u64>,
    /// The sum of the MACs the tree expects (whole only when `whole`).
    pub expected: [u8; 32],
    /// Whether every stored node on the way holds: when a node was edited or put back, the
    /// objects below it are refused and the expected sum is unknown.
    pub whole: bool,
}

/// Compares the object rows (id, MAC) with the tree under `root`. `nodes` is every stored
/// node.
pub fn check(root: &[u8; 32], nodes: &HashMap<Key, Vec<u8>>, rows: &[(u64, Vec<u8>)]) -> Findings {
    // Walk down from the root, trusting a node only when its hash is the one its parent
    // (or the state) names; collect the MACs the trusted leaves expect.
    let mut expected: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    let mut broken: Vec<(u64, u64)> = Vec::new(); // id ranges below a node that fails
    let mut todo = vec![((LEVELS - 1, 0u64), *root)];
    while let Some((key, want)) = todo.pop() {
        if want == [0; 32] {
            continue;
        }
        let node = nodes.get(&key).map(Vec::as_slice).unwrap_or_default();
        if !node.len().is_multiple_of(SLOT) || node.len() > NODE || node_hash(key, node) != want {
            let span = FANOUT.pow(key.0 + 1);
            broken.push((key.1.saturating_mul(span), key.1.saturating_add(1).saturating_mul(span)));
            continue;
        }
        for (i, slot) in node.chunks(SLOT).enumerate() {
            let value: [u8; 32] = slot.try_into().expect("whole slots");
            let child = key.1 * FANOUT + i as u64;
            if key.0 == 0 {
                if value != [0; 32] {
                    expected.insert(child, value);
                }
            } else {
                todo.push(((key.0 - 1, child), value));
            }
        }
    }
    let in_broken = |id: u64| broken.iter().any(|(lo, hi)| (*lo..*hi).contains(&id));
    let mut f = Findings { whole: broken.is_empty(), ..Default::default() };
    let mut sum = Sum256::default();
    expected.values().for_each(|m| sum.add(m));
    f.expected = sum.to_bytes();
    let mut seen = BTreeSet::new();
    for (id, mac) in rows {
        seen.insert(*id);
        if in_broken(*id) {
            f.refused.push((*id, "the part of the MAC tree that vouches for it was edited or put back"));
            continue;
        }
        match expected.get(id) {
            None => f.refused.push((*id, "the token never wrote it (a row added, or put back after its deletion)")),
            Some(want) if want.as_slice() != mac.as_slice() => {
                f.refused.push((*id, "it is not the row the token wrote last (put back from an older copy)"))
            }
            Some(_) => {}
        }
    }
    f.removed = expected.keys().filter(|id| !seen.contains(id)).copied().collect();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Mem(RefCell<HashMap<Key, Vec<u8>>>);

    impl Nodes for Mem {
        fn get(&self, key: Key) -> Result<Option<Vec<u8>>> {
            Ok(self.0.borrow().get(&key).cloned())
        }
        fn put(&self, key: Key, node: Option<&[u8]>) -> Result<()> {
            match node {
                Some(n) => self.0.borrow_mut().insert(key, n.to_vec()),
                None => self.0.borrow_mut().remove(&key),
            };
            Ok(())
        }
    }

    fn mac(n: u8) -> Vec<u8> {
        vec![n; 32]
    }

    fn write(store: &Mem, changes: &[(u64, Option<u8>)]) -> [u8; 32] {
        let mut e = Edit::default();
        for (id, m) in changes {
            e.set(store, *id, m.map(mac).as_deref()).unwrap();
        }
        e.finish(store).unwrap()
    }

    #[test]
    fn the_root_depends_on_every_mac_and_not_on_the_order_of_writes() {
        let a = Mem::default();
        let b = Mem::default();
        let ra = write(&a, &[(1, Some(1)), (200, Some(2)), (70_000, Some(3))]);
        write(&b, &[(70_000, Some(3))]);
        let rb = write(&b, &[(200, Some(2)), (1, Some(1))]);
        assert_eq!(ra, rb);
        assert_ne!(write(&b, &[(200, Some(9))]), ra);
        // Back to nothing: an empty tree, no node left.
        assert_eq!(write(&b, &[(1, None), (200, None), (70_000, None)]), [0; 32]);
        assert!(b.0.borrow().is_empty());
    }

    #[test]
    fn check_names_what_was_put_back_added_or_removed() {
        let store = Mem::default();
        let root = write(&store, &[(1, Some(1)), (2, Some(2)), (300, Some(3))]);
        let nodes = store.0.borrow().clone();
        let rows = vec![(1, mac(1)), (2, mac(2)), (300, mac(3))];
        let ok = check(&root, &nodes, &rows);
        assert!(ok.whole && ok.refused.is_empty() && ok.removed.is_empty());
        let mut sum = Sum256::default();
        rows.iter().for_each(|(_, m)| sum.add(m));
        assert_eq!(ok.expected, sum.to_bytes());

        // Object 2 put back from an older copy, object 300 removed, object 7 added.
        let rows = vec![(1, mac(1)), (2, mac(9)), (7, mac(7))];
        let f = check(&root, &nodes, &rows);
        assert!(f.whole);
        assert_eq!(f.refused.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 7]);
        assert_eq!(f.removed, vec![300]);
        assert_eq!(f.expected, ok.expected);
    }

    #[test]
    fn an_edited_node_refuses_only_the_objects_below_it() {
        let store = Mem::default();
        let root = write(&store, &[(1, Some(1)), (300, Some(3))]);
        let mut nodes = store.0.borrow().clone();
        // The leaf of object 300 (leaf 2) made to vouch for an older MAC.
        let leaf = nodes.get_mut(&(0, 2)).unwrap();
        leaf[(300 % FANOUT) as usize * SLOT] ^= 1;
        let f = check(&root, &nodes, &[(1, mac(1)), (300, mac(3))]);
        assert!(!f.whole);
        assert_eq!(f.refused.iter().map(|r| r.0).collect::<Vec<_>>(), vec![300]);
        // A root that names another tree vouches for nothing.
        let f = check(&[7; 32], &store.0.borrow(), &[(1, mac(1))]);
        assert_eq!(f.refused.len(), 1);
    }

    #[test]
    fn a_path_vouches_for_the_last_mac_only() {
        let store = Mem::default();
        write(&store, &[(5, Some(1)), (70_000, Some(2))]);
        let path = |id| path_of(id).into_iter().map(|k| store.0.borrow().get(&k).cloned()).collect::<Vec<_>>();
        let root = write(&store, &[(5, Some(3))]);
        assert!(vouches(&root, 5, &path(5), &mac(3)));
        assert!(!vouches(&root, 5, &path(5), &mac(1)), "an older MAC");
        assert!(vouches(&root, 70_000, &path(70_000), &mac(2)));
        assert!(!vouches(&root, 6, &path(6), &mac(3)), "an id never written");
        // A path taken from before the write does not hash up to the new root.
        let old_root = write(&store, &[(5, Some(1))]);
        let old_path = path(5);
        let root = write(&store, &[(5, Some(3))]);
        assert!(vouches(&old_root, 5, &old_path, &mac(1)));
        assert!(!vouches(&root, 5, &old_path, &mac(1)));
    }

    #[test]
    fn ids_beyond_the_tree_are_refused_cleanly() {
        let store = Mem::default();
        let mut e = Edit::default();
        assert!(e.set(&store, FANOUT.pow(LEVELS), Some(&mac(1))).is_err());
    }
}
