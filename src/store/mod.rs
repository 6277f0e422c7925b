//! Persistence of tokens. The token layer seals secrets before they reach a store, so a
//! store only ever sees ciphertext for them; `sqlite` is the embedded implementation.

pub mod codec;
pub mod sqlite;

use crate::error::Result;

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
}

/// What a token needs from its persistence. Every method that changes something returns
/// only after the change is durable.
pub trait Store: Send + Sync {
    fn record(&self) -> Result<TokenRecord>;
    fn set_user_wrap(&self, wrap: &[u8]) -> Result<()>;
    /// Moves the token to another slot (a restored token takes the empty slot).
    fn set_slot_id(&self, slot_id: u64) -> Result<()>;
    fn set_so_wrap(&self, wrap: &[u8]) -> Result<()>;
    /// Counts one failed login of `role` and returns the new count.
    fn login_failed(&self, role: Role) -> Result<u32>;
    fn login_succeeded(&self, role: Role) -> Result<()>;

    /// Named users, by name.
    fn named_users(&self) -> Result<Vec<NamedUser>>;
    fn named_user(&self, name: &str) -> Result<Option<NamedUser>>;
    /// Adds a named user; false when the name is taken.
    fn add_named_user(&self, user: &NamedUser) -> Result<bool>;
    /// Replaces a named user's PIN wrap and clears its counter; false when there is none.
    fn set_named_wrap(&self, name: &str, wrap: &[u8]) -> Result<bool>;
    /// Removes a named user; false when there was none.
    fn delete_named_user(&self, name: &str) -> Result<bool>;
    /// Counts one failed login of a named user and returns the new count.
    fn named_login_failed(&self, name: &str) -> Result<u32>;
    fn named_login_succeeded(&self, name: &str) -> Result<()>;

    /// Applies the changes in one durable transaction (all or none); returns the ids of
    /// the inserted objects. Updating or deleting an object that is not there is
    /// CKR_OBJECT_HANDLE_INVALID and changes nothing.
    fn commit(&self, changes: Vec<Change>) -> Result<Vec<u64>>;

    /// Inserts an object with its search keys; returns its id.
    fn insert(&self, obj: &StoredObject, index: &[IndexEntry]) -> Result<u64> {
        let ids = self.commit(vec![Change::Insert(obj.clone(), index.to_vec())])?;
        ids.first().copied().ok_or_else(|| crate::error::Error::general("insert returned no id"))
    }
    /// Replaces an object (same id) and its search keys.
    fn update(&self, obj: &StoredObject, index: &[IndexEntry]) -> Result<()> {
        self.commit(vec![Change::Update(obj.clone(), index.to_vec())]).map(|_| ())
    }
    /// Removes an object; false if it was not there.
    fn delete(&self, id: u64) -> Result<bool> {
        match self.commit(vec![Change::Delete(id)]) {
            Ok(_) => Ok(true),
            Err(crate::error::Error::ObjectHandleInvalid) => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn load(&self, id: u64) -> Result<Option<StoredObject>>;
    /// Ids of objects that match every `(attr, any of hashes)` condition and none of the
    /// `exclude` entries, public only unless `private` is set. With no conditions, every
    /// visible object.
    fn find(&self, conditions: &[(u64, Vec<Vec<u8>>)], private: bool, exclude: &[IndexEntry]) -> Result<Vec<u64>>;
    /// A number that changes whenever any process commits a change to the token, and the
    /// ids changed since `since` (None: too many to tell, drop everything cached).
    fn changes_since(&self, since: u64) -> Result<(u64, Option<Vec<u64>>)>;

    /// Aliases, by name.
    fn aliases(&self) -> Result<Vec<Alias>>;
    /// Creates an alias (`replace` false: an existing name is CKR_... AlreadyExists, told
    /// by returning false) or points an existing one at another key (`replace` true:
    /// false when it does not exist).
    fn put_alias(&self, name: &str, key_id: &str, replace: bool, now: i64) -> Result<bool>;
    /// Removes an alias; false when there was none.
    fn delete_alias(&self, name: &str) -> Result<bool>;
    /// Removes every alias of a key (its deletion).
    fn delete_aliases_of(&self, key_id: &str) -> Result<()>;
    fn tags(&self, key_id: &str) -> Result<Vec<(String, String)>>;
    /// Sets and removes tags in one transaction; refuses (false) when the key would end
    /// with more than `max` tags.
    fn change_tags(&self, key_id: &str, set: &[(String, String)], remove: &[String], max: usize) -> Result<bool>;
}
