//! A token in this process: its store, who is logged in, the master key while someone is,
//! a cache of unsealed objects kept coherent with other processes through the store's
//! change counter, and the session objects of this process.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kms::audit::AuditLog;
use crate::object::{ck_ulong, Object};
use crate::seal::{index_hash, role_aad, KdfParams, MasterKey};
use crate::store::sqlite::SqliteStore;
use crate::store::{Change, IndexEntry, NamedUser, Role, Store, StoredAttr, StoredObject, TokenRecord};
use crate::vendor::{CKA_KMSTOKEN_KEY_ID, CKA_KMSTOKEN_KEY_STATE, CKA_KMSTOKEN_ROTATION_ENABLED};
use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Handles of session objects start here; token objects use their row id, far below.
pub const SESSION_OBJECT_BASE: u64 = 1 << 40;

/// Attributes the store indexes for C_FindObjects.
const INDEXED: [CK_ATTRIBUTE_TYPE; 7] = [
    CKA_CLASS,
    CKA_ID,
    CKA_LABEL,
    CKA_KEY_TYPE,
    CKA_KMSTOKEN_KEY_ID,
    CKA_KMSTOKEN_KEY_STATE,
    CKA_KMSTOKEN_ROTATION_ENABLED,
];

/// Indexed KMS metadata is not secret: its index uses the plain hash even on private
/// objects, so that key ids and states are found without the master key.
fn plain_index(ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(ty, CKA_KMSTOKEN_KEY_ID | CKA_KMSTOKEN_KEY_STATE | CKA_KMSTOKEN_ROTATION_ENABLED)
}

/// The index entry that marks a key pending deletion (hidden from ordinary searches).
pub fn pending_deletion_entry() -> IndexEntry {
    let v = ck_ulong(crate::vendor::KMSTOKEN_STATE_PENDING_DELETION);
    (CKA_KMSTOKEN_KEY_STATE, index_hash(None, CKA_KMSTOKEN_KEY_STATE, &v))
}

/// A key scheduled for deletion has no handle any more (the KMS layer still finds it,
/// through `object_any`), except the public half of a pair: that is an ordinary object,
/// which stays until the client destroys it or the key is purged.
fn hidden(obj: &Object) -> bool {
    obj.class() != CKO_PUBLIC_KEY
        && obj.ulong(CKA_KMSTOKEN_KEY_STATE) == Some(crate::vendor::KMSTOKEN_STATE_PENDING_DELETION)
}

#[derive(Default)]
struct Login {
    role: Option<Role>,
    /// The principal: `so`, `user`, or `user/NAME` for a named user (who holds the
    /// user role: same objects, its own key-policy rights).
    principal: Option<Arc<str>>,
    mk: Option<MasterKey>,
    index_key: Option<Zeroizing<Vec<u8>>>,
}

#[derive(Default)]
struct Cache {
    generation: u64,
    objects: HashMap<u64, Arc<Object>>,
}

/// How many token objects a process keeps unsealed. Any of them can be loaded again from
/// the store, so the bound costs only an unseal on a miss; without it a process that made
/// or touched 100 000 keys held them all (over 400 MiB).
const CACHE_MAX: usize = 4096;

impl Cache {
    fn put(&mut self, id: u64, obj: Arc<Object>) {
        if self.objects.len() >= CACHE_MAX && !self.objects.contains_key(&id) {
            // Drop a quarter, whichever the map yields first: no recency is tracked, as a
            // key in use is found again at the price of one unseal.
            let mut drop = CACHE_MAX / 4;
            self.objects.retain(|_, _| {
                if drop == 0 {
                    return true;
                }
                drop -= 1;
                false
            });
        }
        self.objects.insert(id, obj);
    }
}

struct SessionObject {
    owner: CK_SESSION_HANDLE,
    obj: Arc<Object>,
}

pub struct Token {
    pub slot_id: u64,
    pub serial: String,
    pub label: String,
    path: PathBuf,
    store: Box<dyn Store>,
    login: RwLock<Login>,
    cache: Mutex<Cache>,
    session_objects: RwLock<HashMap<u64, SessionObject>>,
    next_session_object: AtomicU64,
    max_failed: u32,
    pub kms: KmsSettings,
    pub audit: AuditLog,
}

/// The configuration the KMS layer applies to this token.
#[derive(Clone, Debug)]
pub struct KmsSettings {
    pub profile: crate::config::Profile,
    pub deletion_window_days: u32,
    pub audit_required: bool,
}

/// What C_GetTokenInfo needs beyond the label and serial.
pub struct TokenStatus {
    pub user_pin_initialized: bool,
    pub so_failed: u32,
    pub user_failed: u32,
    pub max_failed: u32,
}

fn kdf(config: &Config) -> KdfParams {
    KdfParams {
        memory_kib: config.argon2.memory_kib,
        iterations: config.argon2.iterations,
        parallelism: config.argon2.parallelism,
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::So => "so",
        Role::User => "user",
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Token {
    /// Creates a token database in `dir` for `slot_id` (C_InitToken, `kmstoken init-token`).
    pub fn create(dir: &Path, slot_id: u64, label: &str, so_pin: &[u8], config: &Config) -> Result<Token> {
        let mut serial_bytes = [0u8; 8];
        crate::crypto::random(&mut serial_bytes)?;
        let serial: String = serial_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mk = MasterKey::generate()?;
        let rec = TokenRecord {
            serial: serial.clone(),
            label: label.to_string(),
            slot_id,
            so_wrap: mk.wrap(so_pin, kdf(config), &role_aad(&serial, "so"))?,
            user_wrap: None,
            so_failed: 0,
            user_failed: 0,
            created: now_secs(),
        };
        let path = dir.join(format!("token-{serial}.sqlite"));
        let store = SqliteStore::create(&path, &rec)?;
        Ok(Self::with_store(path, Box::new(store), rec, config))
    }

    pub fn open(path: &Path, config: &Config) -> Result<Token> {
        let store = SqliteStore::open(path)?;
        let rec = store.record()?;
        Ok(Self::with_store(path.to_path_buf(), Box::new(store), rec, config))
    }

    fn with_store(path: PathBuf, store: Box<dyn Store>, rec: TokenRecord, config: &Config) -> Token {
        Token {
            slot_id: rec.slot_id,
            store,
            login: RwLock::new(Login::default()),
            cache: Mutex::new(Cache::default()),
            session_objects: RwLock::new(HashMap::new()),
            next_session_object: AtomicU64::new(SESSION_OBJECT_BASE),
            max_failed: config.pin.max_failed_logins,
            kms: KmsSettings {
                profile: config.profile,
                deletion_window_days: config.kms.deletion_window_days,
                audit_required: config.kms.audit_required,
            },
            audit: AuditLog::new(
                path.parent().unwrap_or(Path::new(".")).join("audit").join(format!("token-{}.jsonl", rec.serial)),
            ),
            serial: rec.serial,
            label: rec.label,
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn status(&self) -> Result<TokenStatus> {
        let r = self.store.record()?;
        Ok(TokenStatus {
            user_pin_initialized: r.user_wrap.is_some(),
            so_failed: r.so_failed,
            user_failed: r.user_failed,
            max_failed: self.max_failed,
        })
    }

    pub fn logged_in(&self) -> Option<Role> {
        self.login.read().role
    }

    /// Who is logged in: `so`, `user` or `user/NAME`.
    pub fn principal(&self) -> Option<Arc<str>> {
        self.login.read().principal.clone()
    }

    fn user_logged_in(&self) -> bool {
        self.logged_in() == Some(Role::User)
    }

    /// Checks `pin` for `role` against the stored wrap, counting failures on disk.
    pub fn verify_pin(&self, role: Role, pin: &[u8]) -> Result<MasterKey> {
        let rec = self.store.record()?;
        let (wrap, failed) = match role {
            Role::So => (Some(rec.so_wrap), rec.so_failed),
            Role::User => (rec.user_wrap, rec.user_failed),
        };
        let wrap = wrap.ok_or(Error::UserPinNotInitialized)?;
        if failed >= self.max_failed {
            return Err(Error::PinLocked);
        }
        match MasterKey::unwrap(&wrap, pin, &role_aad(&self.serial, role_name(role))) {
            Ok(mk) => {
                self.store.login_succeeded(role)?;
                Ok(mk)
            }
            Err(Error::PinIncorrect) => {
                let n = self.store.login_failed(role)?;
                log::warn!(
                    "token {}: wrong {} PIN ({n} of {} tries used)",
                    self.serial,
                    role_name(role),
                    self.max_failed
                );
                Err(Error::PinIncorrect)
            }
            Err(e) => Err(e),
        }
    }

    pub fn login(&self, role: Role, pin: &[u8]) -> Result<()> {
        if let Some(have) = self.logged_in() {
            return Err(if have == role { Error::UserAlreadyLoggedIn } else { Error::UserAnotherAlreadyLoggedIn });
        }
        let mk = self.verify_pin(role, pin)?;
        self.logged_in_as(role, role_name(role).into(), mk);
        Ok(())
    }

    fn logged_in_as(&self, role: Role, principal: Arc<str>, mk: MasterKey) {
        let mut l = self.login.write();
        l.index_key = Some(mk.index_key());
        l.mk = Some(mk);
        l.role = Some(role);
        l.principal = Some(principal);
        drop(l);
        self.cache.lock().objects.clear();
    }

    // ---- named users ----

    /// The wrap's associated data names the principal, so that one user's wrap cannot
    /// stand in for another's.
    fn named_aad(&self, name: &str) -> Vec<u8> {
        role_aad(&self.serial, &format!("user/{name}"))
    }

    /// Checks a named user's PIN, counting failures on disk as for the user PIN. An
    /// unknown name is CKR_USER_TYPE_INVALID (C_LoginUser names no user the token has).
    pub fn verify_named_pin(&self, name: &str, pin: &[u8]) -> Result<MasterKey> {
        let user = self.store.named_user(name)?.ok_or(Error::UserTypeInvalid)?;
        if user.failed >= self.max_failed {
            return Err(Error::PinLocked);
        }
        match MasterKey::unwrap(&user.wrap, pin, &self.named_aad(name)) {
            Ok(mk) => {
                self.store.named_login_succeeded(name)?;
                Ok(mk)
            }
            Err(Error::PinIncorrect) => {
                let n = self.store.named_login_failed(name)?;
                log::warn!("token {}: wrong PIN of user/{name} ({n} of {} tries used)", self.serial, self.max_failed);
                Err(Error::PinIncorrect)
            }
            Err(e) => Err(e),
        }
    }

    /// C_LoginUser(CKU_USER, pin, name): a named user logs in with the user role.
    pub fn login_named(&self, name: &str, pin: &[u8]) -> Result<()> {
        if let Some(have) = self.logged_in() {
            return Err(if have == Role::User {
                Error::UserAlreadyLoggedIn
            } else {
                Error::UserAnotherAlreadyLoggedIn
            });
        }
        let mk = self.verify_named_pin(name, pin)?;
        self.logged_in_as(Role::User, format!("user/{name}").into(), mk);
        Ok(())
    }

    /// The SO creates a named user with its own PIN over the same master key; false when
    /// the name is taken.
    pub fn add_named_user(&self, name: &str, pin: &[u8], config: &Config) -> Result<bool> {
        let l = self.login.read();
        if l.role != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        let mk = l.mk.as_ref().ok_or(Error::UserNotLoggedIn)?;
        let wrap = mk.wrap(pin, kdf(config), &self.named_aad(name))?;
        self.store.add_named_user(&NamedUser { name: name.to_string(), wrap, failed: 0, created: now_secs() })
    }

    /// C_SetPIN by a named user: its own PIN, proving the old one.
    pub fn set_named_pin(&self, name: &str, old: &[u8], new: &[u8], config: &Config) -> Result<()> {
        let mk = self.verify_named_pin(name, old)?;
        let wrap = mk.wrap(new, kdf(config), &self.named_aad(name))?;
        if !self.store.set_named_wrap(name, &wrap)? {
            return Err(Error::UserTypeInvalid);
        }
        Ok(())
    }

    /// The SO removes a named user; false when there was none.
    pub fn delete_named_user(&self, name: &str) -> Result<bool> {
        if self.logged_in() != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        self.store.delete_named_user(name)
    }

    /// The named users: (name, failed logins, created).
    pub fn named_users(&self) -> Result<Vec<(String, u32, i64)>> {
        Ok(self.store.named_users()?.into_iter().map(|u| (u.name, u.failed, u.created)).collect())
    }

    pub fn logout(&self) -> Result<()> {
        let mut l = self.login.write();
        if l.role.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        *l = Login::default();
        drop(l);
        // Unsealed private objects must not outlive the login.
        self.cache.lock().objects.clear();
        Ok(())
    }

    /// C_InitPIN: the SO sets the user PIN.
    pub fn init_pin(&self, pin: &[u8], config: &Config) -> Result<()> {
        let l = self.login.read();
        if l.role != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        let mk = l.mk.as_ref().ok_or(Error::UserNotLoggedIn)?;
        let wrap = mk.wrap(pin, kdf(config), &role_aad(&self.serial, "user"))?;
        self.store.set_user_wrap(&wrap)
    }

    /// C_SetPIN: `role` changes its own PIN, proving the old one.
    pub fn set_pin(&self, role: Role, old: &[u8], new: &[u8], config: &Config) -> Result<()> {
        let mk = self.verify_pin(role, old)?;
        let wrap = mk.wrap(new, kdf(config), &role_aad(&self.serial, role_name(role)))?;
        match role {
            Role::So => self.store.set_so_wrap(&wrap),
            Role::User => self.store.set_user_wrap(&wrap),
        }
    }

    // ---- objects ----

    /// Drops cached objects that another process (or this one) changed since last time.
    fn sync(&self, cache: &mut Cache) -> Result<()> {
        let (generation, changed) = self.store.changes_since(cache.generation)?;
        if generation != cache.generation {
            match changed {
                Some(ids) => ids.iter().for_each(|id| {
                    cache.objects.remove(id);
                }),
                None => cache.objects.clear(),
            }
            cache.generation = generation;
        }
        Ok(())
    }

    fn unseal(&self, so: StoredObject) -> Result<Object> {
        let l = self.login.read();
        let mut obj = Object::default();
        for a in so.attrs {
            let v = if a.sealed {
                match &l.mk {
                    Some(mk) => mk.open(&self.serial, &so.uid, a.ty, &a.value)?,
                    // Without the master key a sealed secret stays unknown; an object that
                    // needs it is unusable until login (see `usable_value`).
                    None => continue,
                }
            } else {
                Zeroizing::new(a.value)
            };
            obj.attrs.insert(a.ty, v);
        }
        Ok(obj)
    }

    /// The object behind `handle`, as the current login may see it.
    pub fn object(&self, handle: u64) -> Result<Arc<Object>> {
        let obj = if handle >= SESSION_OBJECT_BASE {
            self.session_objects.read().get(&handle).map(|s| s.obj.clone())
        } else {
            self.token_object(handle)?
        };
        let obj = obj.ok_or(Error::ObjectHandleInvalid)?;
        if obj.is_private() && !self.user_logged_in() {
            return Err(Error::ObjectHandleInvalid);
        }
        if hidden(&obj) {
            return Err(Error::ObjectHandleInvalid);
        }
        Ok(obj)
    }

    /// A token object whatever its KMS state, for the KMS layer, which key
    /// administrators (the SO) use too: any login that holds the master key will do.
    pub fn object_any(&self, handle: u64) -> Result<Arc<Object>> {
        self.token_object(handle)?.ok_or(Error::ObjectHandleInvalid)
    }

    fn token_object(&self, id: u64) -> Result<Option<Arc<Object>>> {
        let mut cache = self.cache.lock();
        self.sync(&mut cache)?;
        self.cached_object(&mut cache, id)
    }

    /// The object `id` from an already synchronised cache, loading it if needed.
    fn cached_object(&self, cache: &mut Cache, id: u64) -> Result<Option<Arc<Object>>> {
        if let Some(o) = cache.objects.get(&id) {
            return Ok(Some(o.clone()));
        }
        let Some(stored) = self.store.load(id)? else {
            return Ok(None);
        };
        // Any login that holds the master key may load a private object (the KMS layer
        // serves key administrators, the SO, through `object_any`); `object`, the PKCS#11
        // view, still hides private objects from all but the user.
        if stored.private && self.login.read().mk.is_none() {
            return Ok(None);
        }
        let obj = Arc::new(self.unseal(stored)?);
        cache.put(id, obj.clone());
        Ok(Some(obj))
    }

    fn to_stored(&self, obj: &Object, id: u64) -> Result<(StoredObject, Vec<IndexEntry>)> {
        let l = self.login.read();
        let uid = String::from_utf8_lossy(obj.get_raw(CKA_UNIQUE_ID).unwrap_or_default()).into_owned();
        let mut attrs = Vec::with_capacity(obj.attrs.len());
        for (ty, v) in &obj.attrs {
            let sealed = obj.must_seal(*ty);
            let value = if sealed {
                let mk = l.mk.as_ref().ok_or(Error::UserNotLoggedIn)?;
                mk.seal(&self.serial, &uid, *ty, v)?
            } else {
                v.to_vec()
            };
            attrs.push(StoredAttr { ty: *ty, sealed, value });
        }
        let key =
            if obj.is_private() { Some(l.index_key.as_ref().ok_or(Error::UserNotLoggedIn)?.as_slice()) } else { None };
        let index = INDEXED
            .iter()
            // The state indexes what searches hide (`hidden`): a public key never is.
            .filter(|ty| !(**ty == CKA_KMSTOKEN_KEY_STATE && obj.class() == CKO_PUBLIC_KEY))
            .filter_map(|ty| {
                let k = if plain_index(*ty) { None } else { key };
                obj.get_raw(*ty).map(|v| (*ty, index_hash(k, *ty, v)))
            })
            .collect();
        Ok((StoredObject { id, uid, class: obj.class(), private: obj.is_private(), attrs }, index))
    }

    /// Stores a new object; returns its handle. Token objects are durable on return.
    pub fn add_object(&self, mut obj: Object, owner: CK_SESSION_HANDLE) -> Result<u64> {
        if obj.is_private() && !self.user_logged_in() {
            return Err(Error::UserNotLoggedIn);
        }
        obj.set(CKA_UNIQUE_ID, uuid::Uuid::new_v4().to_string().into_bytes());
        if !obj.is_token() {
            let h = self.next_session_object.fetch_add(1, Ordering::Relaxed);
            self.session_objects.write().insert(h, SessionObject { owner, obj: Arc::new(obj) });
            return Ok(h);
        }
        let (stored, index) = self.to_stored(&obj, 0)?;
        let id = self.store.insert(&stored, &index)?;
        self.cache.lock().put(id, Arc::new(obj));
        Ok(id)
    }

    /// Replaces the object behind `handle` (C_SetAttributeValue).
    pub fn replace_object(&self, handle: u64, obj: Object) -> Result<()> {
        if handle >= SESSION_OBJECT_BASE {
            let mut so = self.session_objects.write();
            let s = so.get_mut(&handle).ok_or(Error::ObjectHandleInvalid)?;
            s.obj = Arc::new(obj);
            return Ok(());
        }
        let (stored, index) = self.to_stored(&obj, handle)?;
        self.store.update(&stored, &index)?;
        self.cache.lock().put(handle, Arc::new(obj));
        Ok(())
    }

    pub fn remove_object(&self, handle: u64) -> Result<()> {
        if handle >= SESSION_OBJECT_BASE {
            return self.session_objects.write().remove(&handle).map(|_| ()).ok_or(Error::ObjectHandleInvalid);
        }
        self.cache.lock().objects.remove(&handle);
        if !self.store.delete(handle)? {
            return Err(Error::ObjectHandleInvalid);
        }
        Ok(())
    }

    /// Several token-object changes in one durable transaction (a rotation writes the
    /// old version and the new material together). Returns the handles of `inserts`.
    pub fn apply(&self, inserts: Vec<Object>, updates: Vec<(u64, Object)>, deletes: Vec<u64>) -> Result<Vec<u64>> {
        let mut changes = Vec::new();
        let mut inserted = Vec::new();
        for mut obj in inserts {
            obj.set(CKA_UNIQUE_ID, uuid::Uuid::new_v4().to_string().into_bytes());
            let (stored, index) = self.to_stored(&obj, 0)?;
            changes.push(Change::Insert(stored, index));
            inserted.push(obj);
        }
        for (h, obj) in &updates {
            let (stored, index) = self.to_stored(obj, *h)?;
            changes.push(Change::Update(stored, index));
        }
        changes.extend(deletes.iter().map(|h| Change::Delete(*h)));
        let ids = self.store.commit(changes)?;
        let mut cache = self.cache.lock();
        for (id, obj) in ids.iter().zip(inserted) {
            cache.put(*id, Arc::new(obj));
        }
        for (h, obj) in updates {
            cache.put(h, Arc::new(obj));
        }
        for h in deletes {
            cache.objects.remove(&h);
        }
        Ok(ids)
    }

    /// Handles of every token object of KMS key `key_id` (all versions, any state).
    pub fn objects_of_key(&self, key_id: &str) -> Result<Vec<u64>> {
        let cond = vec![(CKA_KMSTOKEN_KEY_ID, vec![index_hash(None, CKA_KMSTOKEN_KEY_ID, key_id.as_bytes())])];
        self.store.find(&cond, true, &[])
    }

    /// Objects pending deletion whose date has come: (handle, key id), read from the store
    /// directly because purging needs no login.
    pub fn due_for_purge(&self, now: i64) -> Result<Vec<(u64, String)>> {
        let state = ck_ulong(crate::vendor::KMSTOKEN_STATE_PENDING_DELETION);
        let cond = vec![(CKA_KMSTOKEN_KEY_STATE, vec![index_hash(None, CKA_KMSTOKEN_KEY_STATE, &state)])];
        let mut due = Vec::new();
        for id in self.store.find(&cond, true, &[])? {
            let Some(so) = self.store.load(id)? else {
                continue;
            };
            let clear = |ty: u64| so.attrs.iter().find(|a| a.ty == ty && !a.sealed).map(|a| a.value.clone());
            let date = clear(crate::vendor::CKA_KMSTOKEN_DELETION_DATE)
                .and_then(|v| v.try_into().ok())
                .map(u64::from_ne_bytes)
                .unwrap_or(0);
            let key_id = clear(CKA_KMSTOKEN_KEY_ID).map(|v| String::from_utf8_lossy(&v).into_owned());
            if let (true, Some(k)) = (date as i64 <= now, key_id) {
                due.push((id, k));
            }
        }
        Ok(due)
    }

    /// Deletes every object of a KMS key without login (the purge of keys whose
    /// deletion date has come), its public half included.
    /// Returns how many objects went.
    pub fn purge(&self, key_id: &str) -> Result<usize> {
        let handles = self.objects_of_key(key_id)?;
        self.store.commit(handles.iter().map(|h| Change::Delete(*h)).collect())?;
        self.store.delete_aliases_of(key_id)?;
        let mut cache = self.cache.lock();
        handles.iter().for_each(|h| {
            cache.objects.remove(h);
        });
        Ok(handles.len())
    }

    /// Handles of the keys whose automatic rotation is enabled (found by the index, so
    /// that a login does not load every key to look for due rotations).
    pub fn rotating_keys(&self) -> Result<Vec<u64>> {
        let on = crate::object::ck_bool(true);
        let cond = vec![(CKA_KMSTOKEN_ROTATION_ENABLED, vec![index_hash(None, CKA_KMSTOKEN_ROTATION_ENABLED, &on)])];
        self.store.find(&cond, true, &[])
    }

    /// Every token object's handle, in any state (for listing KMS keys).
    pub fn token_handles(&self) -> Result<Vec<u64>> {
        self.store.find(&[], true, &[])
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Session objects die with their session.
    pub fn drop_session_objects(&self, owner: CK_SESSION_HANDLE) {
        self.session_objects.write().retain(|_, s| s.owner != owner);
    }

    /// Handles of the objects matching `template`, token objects through the index.
    pub fn find(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<Vec<u64>> {
        let user = self.user_logged_in();
        let key = self.login.read().index_key.clone();
        let conditions: Vec<(u64, Vec<Vec<u8>>)> = template
            .iter()
            .filter(|(ty, _)| INDEXED.contains(ty))
            .map(|(ty, v)| {
                let mut hashes = vec![index_hash(None, *ty, v)];
                if let (true, Some(k), false) = (user, key.as_ref(), plain_index(*ty)) {
                    hashes.push(index_hash(Some(k), *ty, v));
                }
                (*ty, hashes)
            })
            .collect();
        let wants_token = template.iter().find(|(ty, _)| *ty == CKA_TOKEN).map(|(_, v)| v.first() == Some(&1));
        let mut out = Vec::new();
        if wants_token != Some(false) {
            // Keys pending deletion are hidden unless the template asks for their state.
            let asks_state = template.iter().any(|(ty, _)| *ty == CKA_KMSTOKEN_KEY_STATE);
            let exclude = if asks_state { Vec::new() } else { vec![pending_deletion_entry()] };
            let ids = self.store.find(&conditions, user, &exclude)?;
            // When the index decides every condition, the objects need not be loaded (and
            // unsealed) at all: a search stays proportional to what it finds.
            if template.iter().all(|(ty, _)| INDEXED.contains(ty) || *ty == CKA_TOKEN) {
                out = ids;
            } else {
                let mut cache = self.cache.lock();
                self.sync(&mut cache)?;
                for id in ids {
                    if self.cached_object(&mut cache, id)?.is_some_and(|o| o.matches(template)) {
                        out.push(id);
                    }
                }
            }
        }
        if wants_token != Some(true) {
            let so = self.session_objects.read();
            let mut hs: Vec<u64> = so
                .iter()
                .filter(|(_, s)| (user || !s.obj.is_private()) && s.obj.matches(template))
                .map(|(h, _)| *h)
                .collect();
            hs.sort_unstable();
            out.extend(hs);
        }
        Ok(out)
    }

    /// A key derived from the master key for one purpose (see `MasterKey::purpose_key`);
    /// only while someone is logged in.
    pub fn purpose_key(&self, label: &str) -> Result<Zeroizing<Vec<u8>>> {
        self.login.read().mk.as_ref().map(|mk| mk.purpose_key(label)).ok_or(Error::UserNotLoggedIn)
    }

    /// A key's value for a mechanism. A public object whose value is sealed cannot be
    /// used before login.
    pub fn usable_value<'a>(&self, obj: &'a Object) -> Result<&'a [u8]> {
        obj.get_raw(CKA_VALUE).ok_or(Error::UserNotLoggedIn)
    }

    /// Size of an object as stored, for C_GetObjectSize.
    pub fn object_size(&self, obj: &Object) -> usize {
        obj.attrs.values().map(|v| v.len() + 13).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_keeps_the_newest_entry() {
        let mut c = Cache { generation: 0, objects: HashMap::new() };
        for id in 0..(3 * CACHE_MAX as u64) {
            c.put(id, Arc::new(Object::default()));
            assert!(c.objects.len() <= CACHE_MAX, "{} entries", c.objects.len());
            assert!(c.objects.contains_key(&id), "entry {id} was just put");
        }
        // Replacing an entry that is there drops nothing.
        let before = c.objects.len();
        let id = *c.objects.keys().next().unwrap();
        c.put(id, Arc::new(Object::default()));
        assert_eq!(c.objects.len(), before);
    }
}
