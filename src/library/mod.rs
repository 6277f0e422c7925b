//! The library in Rust terms: slots and tokens found in the keystore, sessions, and every
//! PKCS#11 function as a typed method. The C ABI shell and the command line both drive it.
//! This file holds the slots and the tokens found in the keystore; each kind of call has
//! its module.

mod envelope;
mod keys;
mod objects;
mod operations;
mod sessions;
mod tokens;

pub use objects::Readable;
pub use tokens::{NoSingleToken, TokenInfo, TrailReport};

use crate::config::{Config, RsaKeyKind};
use crate::error::{Error, Result};
use crate::kms::gate::{self, Action};
use crate::kms::{self, Face, KeyUse, KmsError};
use crate::mech::{Key, Mechanism, Registry, Unit};
use crate::message::{GcmMessageParams, MessageCipher};
use crate::object::{ck_ulong, Object, Origin};
use crate::session::{cipher_step, fixed_len_step, update_step, Active, Find, Operation, Session, Step};
use crate::store::Role;
use crate::token::Token;
use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

pub type Attribute = (CK_ATTRIBUTE_TYPE, Vec<u8>);

/// A CK_ULONG attribute of a caller's template, if present; CKR_ATTRIBUTE_VALUE_INVALID
/// when its value is not one.
fn template_ulong(template: &[Attribute], ty: CK_ATTRIBUTE_TYPE) -> Result<Option<u64>> {
    template
        .iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).map(u64::from_ne_bytes))
        .transpose()
        .map_err(|_| Error::AttributeValueInvalid)
}

/// A slot: a token, or the one empty slot where C_InitToken makes a new token.
pub enum Slot {
    Token(Arc<Token>),
    Empty,
}

/// The state of a session, as C_GetSessionInfo reports it.
pub struct SessionView {
    pub slot_id: u64,
    pub state: CK_STATE,
    pub rw: bool,
}

/// A session and what others need to know of it without waiting for its lock (which a
/// long cryptographic operation may hold).
struct SessionEntry {
    slot_id: u64,
    rw: bool,
    session: Arc<Mutex<Session>>,
}

pub struct Library {
    pub config: Config,
    registry: Registry,
    keystore: PathBuf,
    tokens: RwLock<BTreeMap<u64, Arc<Token>>>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, SessionEntry>>,
    next_session: AtomicU64,
}

/// Creates the keystore directory, private to its owner.
fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::storage(format!("{}: cannot create keystore: {e}", dir.display())))
}

fn pin_len_ok(config: &Config, pin: &[u8]) -> bool {
    (config.pin.min_len..=config.pin.max_len).contains(&pin.len())
}

impl Library {
    pub fn new(config: Config) -> Result<Library> {
        let keystore = config.keystore_dir();
        ensure_dir(&keystore)?;
        let lib = Library {
            registry: Registry::new(config.aes_ecb(), config.profile),
            config,
            keystore,
            tokens: RwLock::new(BTreeMap::new()),
            sessions: RwLock::new(HashMap::new()),
            next_session: AtomicU64::new(1),
        };
        lib.purge_archive();
        lib.refresh()?;
        Ok(lib)
    }

    pub fn keystore(&self) -> &Path {
        &self.keystore
    }

    /// Finds tokens that other processes created or deleted since the last look.
    pub fn refresh(&self) -> Result<()> {
        let entries = std::fs::read_dir(&self.keystore)
            .map_err(|e| Error::storage(format!("{}: {e}", self.keystore.display())))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("token-") && n.ends_with(".sqlite"))
            })
            .collect();
        paths.sort();
        let mut tokens = self.tokens.write();
        tokens.retain(|_, t| t.path().exists());
        for p in paths {
            if tokens.values().any(|t| t.path() == p) {
                continue;
            }
            match Token::open(&p, &self.config) {
                Ok(t) if tokens.contains_key(&t.slot_id) => {
                    log::error!("{}: slot {} is already taken by another token; skipped", p.display(), t.slot_id)
                }
                // Keys whose deletion window has passed go at the next login: a purge is a
                // write, and writes renew the state under the key.
                Ok(t) => {
                    tokens.insert(t.slot_id, Arc::new(t));
                }
                Err(e) => log::error!("{}: token cannot be opened, skipped: {e}", p.display()),
            }
        }
        Ok(())
    }

    /// The id of the empty slot: the smallest id no token holds.
    pub fn empty_slot_id(&self) -> u64 {
        let tokens = self.tokens.read();
        (0..).find(|id| !tokens.contains_key(id)).unwrap_or(0)
    }

    pub fn slot_list(&self) -> Result<Vec<u64>> {
        self.refresh()?;
        let mut ids: Vec<u64> = self.tokens.read().keys().copied().collect();
        ids.push(self.empty_slot_id());
        ids.sort_unstable();
        Ok(ids)
    }

    pub fn slot(&self, id: u64) -> Result<Slot> {
        if let Some(t) = self.tokens.read().get(&id) {
            return Ok(Slot::Token(t.clone()));
        }
        if id == self.empty_slot_id() {
            return Ok(Slot::Empty);
        }
        self.refresh()?;
        match self.tokens.read().get(&id) {
            Some(t) => Ok(Slot::Token(t.clone())),
            None if id == self.empty_slot_id() => Ok(Slot::Empty),
            None => Err(Error::SlotIdInvalid),
        }
    }

    pub fn tokens(&self) -> Vec<Arc<Token>> {
        self.tokens.read().values().cloned().collect()
    }

    /// Sessions open on `slot_id`: (all, read/write).
    pub fn session_counts(&self, slot_id: u64) -> (usize, usize) {
        let sessions = self.sessions.read();
        let mut all = 0;
        let mut rw = 0;
        for s in sessions.values() {
            if s.slot_id == slot_id {
                all += 1;
                rw += s.rw as usize;
            }
        }
        (all, rw)
    }

    pub fn mechanisms(&self) -> Vec<CK_MECHANISM_TYPE> {
        self.registry.list()
    }

    pub fn mechanism_info(&self, ty: CK_MECHANISM_TYPE) -> Result<crate::mech::Info> {
        self.registry.info(ty)
    }
}

/// An exclusive lock on the keystore directory while tokens are created or archived, so
/// that two processes initialising the empty slot at once get two different slots.
struct KeystoreLock(std::fs::File);

impl KeystoreLock {
    fn take(dir: &Path) -> Result<KeystoreLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .mode(0o600)
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(|e| Error::storage(format!("{}: {e}", dir.display())))?;
        f.lock().map_err(|e| Error::storage(format!("{}: cannot lock: {e}", dir.display())))?;
        Ok(KeystoreLock(f))
    }
}

impl Drop for KeystoreLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
