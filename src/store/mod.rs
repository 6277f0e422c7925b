//! Persistence of tokens. The token layer seals secrets before they reach a store, so a
//! store only ever sees ciphertext for them; `sqlite` is the embedded implementation.
//!
//! Integrity: every row a token keeps (objects, aliases, tags, named users) carries a MAC
//! under a key derived from the master key (`seal::Integrity`) over its canonical bytes
//! (`codec`), and the token record carries the authenticated state: the sum of all those
//! MACs, the failure counters and the generation at the last write made under the key.
//! Every change that needs no key (a failed login is counted before the PIN is checked)
//! moves the generation by one, so the state tells what may have happened since.

pub mod codec;
pub mod sqlite;
pub mod tree;

use crate::error::Result;
use crate::seal::Integrity;

/// Which PIN a counter or wrap belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    So,
    User,
}

/// The token-wide record.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub serial: String,
    pub label: String,
    pub slot_id: u64,
    /// The master key wrapped under the SO PIN (format of `seal::PinWrap`).
    pub so_wrap: Vec<u8>,
    /// The master key wrapped under the user PIN, once C_InitPIN has run.
    pub user_wrap: Option<Vec<u8>>,
    pub so_failed: u32,
    pub user_failed: u32,
    /// Seconds since the epoch.
    pub created: i64,
    /// Moves by one with every committed change, with or without the key.
    pub generation: u64,
    /// The authenticated state; None for a keystore made before rows were authenticated,
    /// until its first login seals it.
    pub state: Option<TokenState>,
}

/// What the last write under the key left, authenticated by `mac`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenState {
    /// The generation of that write.
    pub generation: u64,
    /// The failure counters then: SO, user, and the named users' together.
    pub so_failed: u32,
    pub user_failed: u32,
    pub named_failed: u32,
    /// The sum of the MACs of every row (`seal::Sum256`).
    pub digest: [u8; 32],
    /// The root of the objects' MAC tree (`tree`); None in a state from before it.
    pub tree: Option<[u8; 32]>,
    pub mac: Vec<u8>,
}

/// The failure counters to go by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    pub so: u32,
    pub user: u32,
    /// Added to every named user's own counter.
    pub named_extra: u32,
    /// False when the counters do not add up to the keyless changes since the state: a
    /// counter was lowered in the file.
    pub consistent: bool,
}

impl TokenRecord {
    /// The failure counters as they must be taken. Since the last write under the key,
    /// only failed logins changed anything without it, each by one counter and one
    /// generation; when the counters add up to that, they are as stored. When they fall
    /// short (a counter was lowered in the file), the missing count is added to the user's
    /// counter and to every named user's: a reset gains no guesses. The SO's counter is
    /// taken as stored (but never below its authenticated value), so that the SO, who
    /// resets the user PIN, is not locked out by someone else's edit.
    pub fn counters(&self, named_failed_now: u32) -> Counters {
        let stored = Counters { so: self.so_failed, user: self.user_failed, named_extra: 0, consistent: true };
        let Some(st) = &self.state else {
            return stored;
        };
        let since = self.generation.saturating_sub(st.generation);
        let now = self.so_failed as u64 + self.user_failed as u64 + named_failed_now as u64;
        let then = st.so_failed as u64 + st.user_failed as u64 + st.named_failed as u64;
        let missing = (then + since).saturating_sub(now).min(u32::MAX as u64) as u32;
        if missing == 0 && self.generation >= st.generation {
            return stored;
        }
        Counters {
            so: self.so_failed.max(st.so_failed),
            user: self.user_failed.max(st.user_failed).saturating_add(missing),
            named_extra: missing,
            consistent: false,
        }
    }
}

/// What an integrity scan of a token's rows found, read in one snapshot.
#[derive(Clone, Debug)]
pub struct Scan {
    pub record: TokenRecord,
    /// The sum of the MACs of every row.
    pub digest: [u8; 32],
    /// The same over every row but the objects.
    pub others: [u8; 32],
    /// When the rows do not add up to the state: what the objects' MAC tree says of them.
    pub findings: Option<tree::Findings>,
    /// Rows without a MAC (a keystore from before sealing, or stripped ones).
    pub unsealed: u64,
    /// The named users' failure counters, added up.
    pub named_failed: u32,
}

/// A named user: a principal `user/NAME` that the SO created, with its own PIN wrap of
/// the master key and its own failed-login counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedUser {
    pub name: String,
    /// The master key wrapped under this user's PIN (format of `seal::PinWrap`).
    pub wrap: Vec<u8>,
    pub failed: u32,
    /// Seconds since the epoch.
    pub created: i64,
    /// The row's MAC (empty when it has none).
    pub mac: Vec<u8>,
}

/// One attribute as stored: in clear, or sealed under the token master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAttr {
    pub ty: u64,
    pub sealed: bool,
    pub value: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Row id, which is also the object's handle; 0 before insertion.
    pub id: u64,
    /// CKA_UNIQUE_ID; also binds the object's sealed attributes.
    pub uid: String,
    pub class: u64,
    pub private: bool,
    pub attrs: Vec<StoredAttr>,
    /// The generation of its last write, and its MAC (empty when it has none); both are
    /// set by the store when it writes the object.
    pub gen: u64,
    pub mac: Vec<u8>,
}

/// An object row as read: the attribute list still encoded, so that its MAC can be
/// checked over exactly the stored bytes before anything is decoded.
#[derive(Clone, Debug)]
pub struct LoadedRow {
    pub id: u64,
    pub uid: String,
    pub class: u64,
    pub private: bool,
    pub gen: u64,
    pub attrs: Vec<u8>,
    pub mac: Vec<u8>,
}

/// What vouches for an object row as the one the token wrote last (`Store::load_vouched`).
#[derive(Clone, Debug)]
pub struct Vouch {
    pub record: TokenRecord,
    /// The MAC tree's nodes from the leaf (level 0) up to the root; None where none is
    /// stored.
    pub path: Vec<Option<Vec<u8>>>,
}

/// Where a segment of the audit trail stood when the database anchored it: its file name,
/// how many records and bytes it held, and its last record's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailHead {
    pub segment: String,
    pub records: u64,
    pub bytes: u64,
    pub link: [u8; 16],
}

/// What a store asks of the audit trail: the heads to anchor in each write under the key,
/// and each generation it commits (records carry it).
pub trait Trail: Send + Sync {
    fn heads(&self) -> Vec<TrailHead>;
    fn committed(&self, generation: u64);
}

/// A search key: attribute type and a hash of its value (see `seal::index_hash`).
pub type IndexEntry = (u64, Vec<u8>);

/// One change of a transaction.
pub enum Change {
    Insert(StoredObject, Vec<IndexEntry>),
    /// Replaces the object with the same id.
    Update(StoredObject, Vec<IndexEntry>),
    Delete(u64),
}

/// An alias: a name for a key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub key_id: String,
    pub created: i64,
    pub updated: i64,
    /// The row's MAC (empty when it has none).
    pub mac: Vec<u8>,
}

/// A tag of a key, with its row's MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key_id: String,
    pub key: String,
    pub value: String,
    pub mac: Vec<u8>,
}

/// How a failed login was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Counted; this many failures now stand.
    Counted(u32),
    /// The PIN was locked already: nothing counted.
    Locked,
}

/// What a token needs from its persistence. Every method that changes something returns
/// only after the change is durable. Methods that take an `Integrity` write under the key:
/// they check the authenticated state first (a state that fails its check refuses every
/// such write), MAC what they write and authenticate the new state.
pub trait Store: Send + Sync {
    fn record(&self) -> Result<TokenRecord>;
    fn set_user_wrap(&self, wrap: &[u8], auth: &Integrity) -> Result<()>;
    /// Moves the token to another slot (a restored token takes the empty slot). The slot
    /// is a placement, not a secret: it needs no key.
    fn set_slot_id(&self, slot_id: u64) -> Result<()>;
    fn set_so_wrap(&self, wrap: &[u8], auth: &Integrity) -> Result<()>;
    /// Holds PIN checks of this token one at a time, across processes, while the returned
    /// file is open: a check is counted, runs the PIN through Argon2 and is settled before
    /// the next one starts, so that right PINs at once never add up to a lock.
    fn login_lock(&self) -> Result<std::fs::File>;
    /// Counts a login attempt of `role` as failed until it succeeds, unless the counters to
    /// go by (`TokenRecord::counters`) already reach `max`. No key: it moves the generation
    /// by one.
    fn login_failed(&self, role: Role, max: u32) -> Result<Attempt>;
    /// A login of `role` succeeded: its counter goes back to zero, under the key.
    fn login_succeeded(&self, role: Role, auth: &Integrity) -> Result<()>;

    /// Named users, by name.
    fn named_users(&self) -> Result<Vec<NamedUser>>;
    fn named_user(&self, name: &str) -> Result<Option<NamedUser>>;
    /// Adds a named user; false when the name is taken.
    fn add_named_user(&self, user: &NamedUser, auth: &Integrity) -> Result<bool>;
    /// Replaces a named user's PIN wrap and clears its counter; false when there is none.
    fn set_named_wrap(&self, name: &str, wrap: &[u8], auth: &Integrity) -> Result<bool>;
    /// Removes a named user; false when there was none.
    fn delete_named_user(&self, name: &str, auth: &Integrity) -> Result<bool>;
    /// `login_failed` for a named user; None when there is no such user.
    fn named_login_failed(&self, name: &str, max: u32) -> Result<Option<Attempt>>;
    fn named_login_succeeded(&self, name: &str, auth: &Integrity) -> Result<()>;

    /// Applies the changes in one durable transaction (all or none); returns the ids of
    /// the inserted objects. Updating or deleting an object that is not there is
    /// CKR_OBJECT_HANDLE_INVALID and changes nothing.
    fn commit(&self, changes: Vec<Change>, auth: &Integrity) -> Result<Vec<u64>>;

    fn load(&self, id: u64) -> Result<Option<LoadedRow>>;
    /// The row with what vouches for it, read in one snapshot: the token record (whose
    /// state holds the MAC tree's root) and the tree's nodes on the way to the row's leaf.
    fn load_vouched(&self, id: u64) -> Result<Option<(LoadedRow, Vouch)>>;
    /// Ids of objects that match every `(attr, any of hashes)` condition and none of the
    /// `exclude` entries, public only unless `private` is set. With no conditions, every
    /// visible object.
    fn find(&self, conditions: &[(u64, Vec<Vec<u8>>)], private: bool, exclude: &[IndexEntry]) -> Result<Vec<u64>>;
    /// A number that changes whenever any process commits a change to the token, and the
    /// ids changed since `since` (None: too many to tell, drop everything cached).
    fn changes_since(&self, since: u64) -> Result<(u64, Option<Vec<u64>>)>;

    /// Aliases, by name.
    fn aliases(&self) -> Result<Vec<Alias>>;
    /// Creates an alias (`replace` false: false when the name exists) or points an
    /// existing one at another key (`replace` true: false when it does not exist).
    fn put_alias(&self, name: &str, key_id: &str, replace: bool, now: i64, auth: &Integrity) -> Result<bool>;
    /// Removes an alias; false when there was none.
    fn delete_alias(&self, name: &str, auth: &Integrity) -> Result<bool>;
    /// Deletes every object of a key, its aliases and its tags in one transaction (the
    /// purge of a key); returns how many objects went.
    fn purge_key(&self, ids: &[u64], key_id: &str, auth: &Integrity) -> Result<usize>;
    fn tags(&self, key_id: &str) -> Result<Vec<Tag>>;
    /// Sets and removes tags in one transaction; refuses (false) when the key would end
    /// with more than `max` tags.
    fn change_tags(
        &self,
        key_id: &str,
        set: &[(String, String)],
        remove: &[String],
        max: usize,
        auth: &Integrity,
    ) -> Result<bool>;

    /// Every row and the token record in one snapshot, for the integrity check at login.
    fn scan(&self) -> Result<Scan>;
    /// MACs every row of a keystore made before rows were authenticated, and its state.
    fn seal(&self, auth: &Integrity) -> Result<()>;
    /// Authenticates the state again over the rows as they are (the SO's acceptance after
    /// a review): the sum of the MACs the rows hold now; rows without a valid MAC gain
    /// none.
    fn accept(&self, auth: &Integrity) -> Result<()>;
    /// The audit trail whose heads every write under the key anchors, in its transaction.
    fn set_trail(&self, trail: std::sync::Arc<dyn Trail>);
    /// Anchors the trail's heads now: a write under the key that changes nothing else.
    fn anchor_trail(&self, auth: &Integrity) -> Result<()>;
    /// The anchored heads, each with whether its MAC holds under `auth` (false without).
    fn trail_anchors(&self, auth: Option<&Integrity>) -> Result<Vec<(TrailHead, bool)>>;
    /// The highest generation this token's database has been seen at (a second file
    /// beside it): a database older than that was put back from a copy.
    fn anchor(&self) -> Result<Option<u64>>;
}
