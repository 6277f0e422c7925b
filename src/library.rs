//! The library in Rust terms: slots and tokens found in the keystore, sessions, and every
//! PKCS#11 function as a typed method. The C ABI shell and the command line both drive it.

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

    // ---- tokens and PINs ----

    /// C_InitToken: makes a token on the empty slot, or re-initialises a token after
    /// checking its SO PIN; the old database goes to the keystore's archive.
    pub fn init_token(&self, slot_id: u64, so_pin: &[u8], label: &str) -> Result<Arc<Token>> {
        if !pin_len_ok(&self.config, so_pin) {
            return Err(Error::PinLenRange);
        }
        let _guard = KeystoreLock::take(&self.keystore)?;
        self.refresh()?;
        match self.slot(slot_id)? {
            Slot::Empty => {}
            Slot::Token(old) => {
                if self.session_counts(slot_id).0 > 0 {
                    return Err(Error::SessionExists);
                }
                old.verify_pin(Role::So, so_pin)?;
                self.archive(&old)?;
                self.tokens.write().remove(&slot_id);
            }
        }
        let token = Arc::new(Token::create(&self.keystore, slot_id, label, so_pin, &self.config)?);
        self.tokens.write().insert(slot_id, token.clone());
        log::info!("slot {slot_id}: token {:?} (serial {}) initialised", label, token.serial);
        Ok(token)
    }

    /// Moves a token's database aside into `archive/` under the keystore.
    fn archive(&self, token: &Token) -> Result<()> {
        let dir = self.keystore.join("archive");
        ensure_dir(&dir)?;
        let stamp = crate::kms::clock::now();
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", token.path().display()));
            if from.exists() {
                let name = from.file_name().and_then(|n| n.to_str()).unwrap_or("token");
                std::fs::rename(&from, dir.join(format!("{stamp}-{name}")))
                    .map_err(|e| Error::storage(format!("{}: cannot archive: {e}", from.display())))?;
            }
        }
        Ok(())
    }

    /// Archived token databases, newest first: (path, serial, seconds since the epoch when
    /// archived).
    pub fn archived(&self) -> Result<Vec<(PathBuf, String, i64)>> {
        let dir = self.keystore.join("archive");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut out: Vec<(PathBuf, String, i64)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                let (stamp, rest) = name.split_once("-token-")?;
                let serial = rest.strip_suffix(".sqlite")?.to_string();
                Some((p, serial, stamp.parse().ok()?))
            })
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.2));
        Ok(out)
    }

    /// Brings the newest archived database of token `serial` back, on the empty slot.
    pub fn restore_token(&self, serial: &str) -> Result<Arc<Token>> {
        let _guard = KeystoreLock::take(&self.keystore)?;
        self.refresh()?;
        if self.tokens.read().values().any(|t| t.serial == serial) {
            return Err(Error::SessionExists);
        }
        let (from, _, _) = self.archived()?.into_iter().find(|a| a.1 == serial).ok_or(Error::SlotIdInvalid)?;
        let to = self.keystore.join(format!("token-{serial}.sqlite"));
        for suffix in ["", "-wal", "-shm"] {
            let f = PathBuf::from(format!("{}{suffix}", from.display()));
            if f.exists() {
                let t = PathBuf::from(format!("{}{suffix}", to.display()));
                std::fs::rename(&f, &t).map_err(|e| Error::storage(format!("{}: cannot restore: {e}", f.display())))?;
            }
        }
        let slot_id = self.empty_slot_id();
        crate::store::Store::set_slot_id(&crate::store::sqlite::SqliteStore::open(&to)?, slot_id)?;
        let token = Arc::new(Token::open(&to, &self.config)?);
        self.tokens.write().insert(slot_id, token.clone());
        log::info!("token {serial} restored from the archive to slot {slot_id}");
        Ok(token)
    }

    /// Archived databases older than the deletion window are purged when a library opens.
    fn purge_archive(&self) {
        let window = self.config.kms.deletion_window_days as i64 * crate::kms::clock::DAY;
        let now = crate::kms::clock::now();
        for (path, serial, at) in self.archived().unwrap_or_default() {
            if at + window <= now {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                log::info!("archived token {serial} purged after its deletion window");
            }
        }
    }

    /// Deletes a token for good (the command line's delete-token).
    pub fn delete_token(&self, slot_id: u64) -> Result<()> {
        let Slot::Token(t) = self.slot(slot_id)? else {
            return Err(Error::SlotIdInvalid);
        };
        self.archive(&t)?;
        self.tokens.write().remove(&slot_id);
        Ok(())
    }

    // ---- sessions ----

    pub fn open_session(&self, slot_id: u64, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        self.open_session_as(slot_id, flags, Face::Pkcs11)
    }

    /// C_OpenSession for a face: the `kms` command line opens its sessions as `Face::Kms`.
    pub fn open_session_as(&self, slot_id: u64, flags: CK_FLAGS, face: Face) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let token = match self.slot(slot_id)? {
            Slot::Token(t) => t,
            Slot::Empty => return Err(Error::TokenNotRecognized),
        };
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && token.logged_in() == Some(Role::So) {
            return Err(Error::SessionReadWriteSoExists);
        }
        let h = self.next_session.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Mutex::new(Session::new(h, token, rw, face)));
        self.sessions.write().insert(h, SessionEntry { slot_id, rw, session });
        Ok(h)
    }

    pub fn session(&self, h: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions.read().get(&h).map(|e| e.session.clone()).ok_or(Error::SessionHandleInvalid)
    }

    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let entry = self.sessions.write().remove(&h).ok_or(Error::SessionHandleInvalid)?;
        let s = entry.session.lock();
        s.token.drop_session_objects(h);
        // The login belongs to the application: it ends with the token's last session.
        if self.session_counts(s.slot_id).0 == 0 {
            let _ = s.token.logout();
        }
        Ok(())
    }

    pub fn close_all_sessions(&self, slot_id: u64) -> Result<()> {
        if let Slot::Empty = self.slot(slot_id)? {
            return Ok(());
        }
        let handles: Vec<_> = {
            let sessions = self.sessions.read();
            sessions.iter().filter(|(_, s)| s.slot_id == slot_id).map(|(h, _)| *h).collect()
        };
        for h in handles {
            let _ = self.close_session(h);
        }
        Ok(())
    }

    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> Result<SessionView> {
        let s = self.session(h)?;
        let s = s.lock();
        let state = match (s.token.logged_in(), s.rw) {
            (None, false) => CKS_RO_PUBLIC_SESSION,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (Some(Role::User), false) => CKS_RO_USER_FUNCTIONS,
            (Some(Role::User), true) => CKS_RW_USER_FUNCTIONS,
            (Some(Role::So), _) => CKS_RW_SO_FUNCTIONS,
        };
        Ok(SessionView { slot_id: s.slot_id, state, rw: s.rw })
    }

    fn token_of(&self, h: CK_SESSION_HANDLE) -> Result<(Arc<Token>, bool)> {
        let s = self.session(h)?;
        let s = s.lock();
        Ok((s.token.clone(), s.rw))
    }

    pub fn login(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        let (token, _) = self.token_of(h)?;
        let role = match user_type {
            CKU_SO => Role::So,
            CKU_USER => Role::User,
            CKU_CONTEXT_SPECIFIC => return self.context_login(h, pin),
            _ => return Err(Error::UserTypeInvalid),
        };
        if role == Role::So && token.logged_in().is_none() {
            let (all, rw) = self.session_counts(token.slot_id);
            if all > rw {
                return Err(Error::SessionReadOnlyExists);
            }
        }
        if !pin_len_ok(&self.config, pin) && token.logged_in().is_none() {
            return Err(Error::PinIncorrect);
        }
        let r = token.login(role, pin);
        let who = if role == Role::So { "so" } else { "user" };
        Self::logged_in(&token, role, who, r)
    }

    /// C_Login(CKU_CONTEXT_SPECIFIC): the PIN again, for the sign or decrypt operation just
    /// started with a key whose CKA_ALWAYS_AUTHENTICATE is TRUE. The PIN is checked (and
    /// its failures counted) as at login, for the principal logged in; it lets that one
    /// operation run.
    fn context_login(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        let token = s.token.clone();
        let waiting = match (&s.sign, &s.decrypt) {
            (Some(a), _) if a.needs_login => Operation::Sign,
            (_, Some(a)) if a.needs_login => Operation::Decrypt,
            _ => return Err(Error::OperationNotInitialized),
        };
        if token.logged_in() != Some(Role::User) {
            return Err(Error::UserNotLoggedIn);
        }
        let who = kms::principal(&token);
        let r = match who.strip_prefix("user/") {
            Some(name) => token.verify_named_pin(name, pin).map(|_| ()),
            None => token.verify_pin(Role::User, pin).map(|_| ()),
        };
        token.audit.append(
            &token.serial,
            &kms::audit::Event {
                name: "Login",
                principal: &who,
                error: r.as_ref().err().map(|e| (crate::error::AwsError::AccessDenied, format!("{e:?}"))),
                details: Some(serde_json::json!({ "contextSpecific": true })),
                ..Default::default()
            },
        )?;
        r?;
        match waiting {
            Operation::Sign => s.sign.as_mut().map(|a| a.needs_login = false),
            _ => s.decrypt.as_mut().map(|a| a.needs_login = false),
        };
        Ok(())
    }

    /// C_LoginUser: `name` is `user` or `so` (the same as C_Login), or a named user
    /// (`alice` or `user/alice`) logging in with CKU_USER. A name the token does not know
    /// is CKR_USER_TYPE_INVALID.
    pub fn login_user(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8], name: &[u8]) -> Result<()> {
        match (user_type, name) {
            (CKU_USER, b"user") | (CKU_SO, b"so") => return self.login(h, user_type, pin),
            (CKU_USER, _) => {}
            _ => return Err(Error::UserTypeInvalid),
        }
        let name = std::str::from_utf8(name).map_err(|_| Error::UserTypeInvalid)?;
        let name = name.strip_prefix("user/").unwrap_or(name);
        if !kms::policy::valid_user_name(name) {
            return Err(Error::UserTypeInvalid);
        }
        let (token, _) = self.token_of(h)?;
        if !pin_len_ok(&self.config, pin) && token.logged_in().is_none() {
            return Err(Error::PinIncorrect);
        }
        let r = token.login_named(name, pin);
        Self::logged_in(&token, Role::User, &format!("user/{name}"), r)
    }

    /// Audits a login attempt; after a user's login, runs what fell due meanwhile.
    fn logged_in(token: &Token, role: Role, who: &str, r: Result<()>) -> Result<()> {
        let failure = r.as_ref().err().map(|e| (crate::error::AwsError::AccessDenied, format!("{e:?}")));
        token.audit.append(
            &token.serial,
            &kms::audit::Event { name: "Login", principal: who, error: failure, ..Default::default() },
        )?;
        r?;
        if role == Role::User {
            // Deletions and rotations that fell due while nobody could act on them; the
            // login stands if they cannot run now (they run at a later login).
            if let Err(e) = kms::lifecycle::purge_due(token) {
                log::error!("token {}: purge of due keys failed: {}: {}", token.serial, e.code.name(), e.message);
            }
            if let Err(e) = kms::lifecycle::rotate_all_due(token) {
                log::error!("token {}: due rotations failed: {e}", token.serial);
            }
        }
        Ok(())
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (token, _) = self.token_of(h)?;
        token.logout()
    }

    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let (token, rw) = self.token_of(h)?;
        if token.logged_in() != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        if !rw {
            return Err(Error::SessionReadOnly);
        }
        if !pin_len_ok(&self.config, pin) {
            return Err(Error::PinLenRange);
        }
        token.init_pin(pin, &self.config)
    }

    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let (token, rw) = self.token_of(h)?;
        if !rw {
            return Err(Error::SessionReadOnly);
        }
        if !pin_len_ok(&self.config, new) {
            return Err(Error::PinLenRange);
        }
        if let Some(name) = token.principal().as_deref().and_then(|p| p.strip_prefix("user/")) {
            return token.set_named_pin(name, old, new, &self.config);
        }
        let role = if token.logged_in() == Some(Role::So) { Role::So } else { Role::User };
        token.set_pin(role, old, new, &self.config)
    }

    /// The SO creates a named user (principal `user/NAME`) with its own PIN; false when
    /// the name is taken. Audited as CreateUser.
    pub fn add_named_user(&self, h: CK_SESSION_HANDLE, name: &str, pin: &[u8]) -> Result<bool> {
        let (token, rw) = self.token_of(h)?;
        if token.logged_in() != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        if !rw {
            return Err(Error::SessionReadOnly);
        }
        if !kms::policy::valid_user_name(name) {
            return Err(Error::ArgumentsBad);
        }
        if !pin_len_ok(&self.config, pin) {
            return Err(Error::PinLenRange);
        }
        let added = token.add_named_user(name, pin, &self.config)?;
        Self::audit_user_change(&token, "CreateUser", name, added)?;
        Ok(added)
    }

    /// The SO removes a named user; false when there was none. Audited as DeleteUser.
    pub fn delete_named_user(&self, h: CK_SESSION_HANDLE, name: &str) -> Result<bool> {
        let (token, _) = self.token_of(h)?;
        let deleted = token.delete_named_user(name)?;
        Self::audit_user_change(&token, "DeleteUser", name, deleted)?;
        Ok(deleted)
    }

    fn audit_user_change(token: &Token, event: &str, name: &str, done: bool) -> Result<()> {
        let error = (!done).then(|| {
            let code = if event == "CreateUser" {
                crate::error::AwsError::EntityAlreadyExists
            } else {
                crate::error::AwsError::NoSuchEntity
            };
            (code, format!("user/{name}"))
        });
        token.audit.append(
            &token.serial,
            &kms::audit::Event {
                name: event,
                principal: &kms::principal(token),
                error,
                details: Some(serde_json::json!({ "userName": format!("user/{name}") })),
                ..Default::default()
            },
        )
    }

    // ---- objects ----

    /// Whether session `h` may hold private objects: the user's login; on the `kms` face
    /// the SO's too (key administrators create KMS keys, as in AWS). On the PKCS#11 face
    /// private objects are the user's, as the specification has it.
    fn holds_private(&self, token: &Token, h: CK_SESSION_HANDLE) -> bool {
        match token.logged_in() {
            Some(Role::User) => true,
            Some(Role::So) => self.face(h) == Face::Kms,
            _ => false,
        }
    }

    /// Checks that a session may create or change `obj`.
    fn check_writable(&self, token: &Token, h: CK_SESSION_HANDLE, rw: bool, obj: &Object) -> Result<()> {
        if obj.is_token() && !rw {
            return Err(Error::SessionReadOnly);
        }
        if obj.is_private() && !self.holds_private(token, h) {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    /// The session's right to create what `template` describes, checked before anything of
    /// the template is read, so that CKR_SESSION_READ_ONLY and CKR_USER_NOT_LOGGED_IN come
    /// before any template error (the order `check_writable` keeps). `class`: the class the
    /// call makes, when the template need not say it.
    fn check_template_writable(
        &self,
        token: &Token,
        h: CK_SESSION_HANDLE,
        rw: bool,
        template: &[Attribute],
        class: Option<CK_OBJECT_CLASS>,
    ) -> Result<()> {
        let flag = |ty| template.iter().find(|(t, _)| *t == ty).map(|(_, v)| v.first() == Some(&1));
        let class = class.or_else(|| template_ulong(template, CKA_CLASS).ok().flatten());
        // Keys are private unless asked otherwise (as `Object::build` has it).
        let private = flag(CKA_PRIVATE).unwrap_or(matches!(class, Some(CKO_SECRET_KEY | CKO_PRIVATE_KEY)));
        if flag(CKA_TOKEN) == Some(true) && !rw {
            return Err(Error::SessionReadOnly);
        }
        if private && !self.holds_private(token, h) {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    /// Stores a new object: the session may write it, and a new token key gets its KMS
    /// life (key id, spec, one usage, state) and a CreateKey record.
    fn store_new(
        &self,
        token: &Token,
        rw: bool,
        h: CK_SESSION_HANDLE,
        obj: Object,
        template: &[Attribute],
    ) -> Result<u64> {
        self.store_new_kms(token, rw, h, obj, template, false)
    }

    /// `store_new`, for a key whose material is to be imported (Origin EXTERNAL): it
    /// starts in PendingImport and cannot be used until then.
    fn store_new_kms(
        &self,
        token: &Token,
        rw: bool,
        h: CK_SESSION_HANDLE,
        mut obj: Object,
        template: &[Attribute],
        external: bool,
    ) -> Result<u64> {
        self.check_writable(token, h, rw, &obj)?;
        let kms_key = obj.is_token() && matches!(obj.class(), CKO_SECRET_KEY | CKO_PRIVATE_KEY);
        if kms_key {
            kms::lifecycle::on_create(token, &mut obj, template, external)?;
        }
        let handle = token.add_object_as(obj, h, self.holds_private(token, h))?;
        if kms_key {
            let obj = token.object_any(handle)?;
            kms::lifecycle::audit(token, "CreateKey", Some(&obj), None, None).map_err(|e| e.to_error())?;
        }
        Ok(handle)
    }

    pub fn create_object(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<u64> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, template, None)?;
        // Under the AWS rules no key material leaves the token, imported or not.
        let mut extra = Vec::new();
        if self.config.profile.one_usage() && template_ulong(template, CKA_CLASS) == Ok(Some(CKO_SECRET_KEY)) {
            for (ty, value) in [(CKA_SENSITIVE, true), (CKA_EXTRACTABLE, false)] {
                if !template.iter().any(|(t, _)| *t == ty) {
                    extra.push((ty, crate::object::ck_bool(value)));
                }
            }
        }
        let mut obj = Object::build(template, Origin::Create, &extra, token.logged_in() == Some(Role::So))?;
        crate::mech::check_imported_key(&mut obj, self.config.profile)?;
        self.store_new(&token, rw, h, obj, template)
    }

    /// A key pair made outside the token (the command line's import): each key built and
    /// checked as C_CreateObject builds it, then both stored as C_GenerateKeyPair stores a
    /// pair, so that a token pair is one KMS key whose public half shares its identity.
    pub fn create_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        public_template: &[Attribute],
        private_template: &[Attribute],
    ) -> Result<(u64, u64)> {
        let (token, rw) = self.token_of(h)?;
        let so = token.logged_in() == Some(Role::So);
        let mut public = Object::build(public_template, Origin::Create, &[], so)?;
        crate::mech::check_imported_key(&mut public, self.config.profile)?;
        let mut private = Object::build(private_template, Origin::Create, &[], so)?;
        crate::mech::check_imported_key(&mut private, self.config.profile)?;
        if public.class() != CKO_PUBLIC_KEY
            || private.class() != CKO_PRIVATE_KEY
            || public.key_type() != private.key_type()
        {
            return Err(Error::TemplateInconsistent);
        }
        self.store_pair(&token, rw, h, (public, private), (public_template, private_template))
    }

    pub fn copy_object(&self, h: CK_SESSION_HANDLE, from: u64, template: &[Attribute]) -> Result<u64> {
        let (token, rw) = self.token_of(h)?;
        let src = token.object(from)?;
        if !src.bool(CKA_COPYABLE) {
            return Err(Error::ActionProhibited);
        }
        // A copy of a KMS key is a new key with the same material and the default policy:
        // as AWS's ReplicateKey, it needs kms:ReplicateKey on the source.
        Self::touch(&token, self.face(h), &src, Action::ReplicateKey)?;
        let mut obj = (*src).clone();
        obj.attrs.remove(&CKA_UNIQUE_ID);
        obj.apply_changes(template, true, token.logged_in() == Some(Role::So))?;
        self.store_new(&token, rw, h, obj, template)
    }

    /// C_DestroyObject destroys one object. A KMS secret key or the private key of a KMS
    /// pair is not destroyed but scheduled for deletion (kms:ScheduleKeyDeletion, with the
    /// token's window): its handle is gone at once, its material stays until the window
    /// ends. The public half of a pair is an ordinary object: it goes alone, so that a
    /// client destroying both halves, in either order, gets CKR_OK twice.
    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, handle: u64) -> Result<()> {
        let (token, rw) = self.token_of(h)?;
        let obj = token.object(handle)?;
        if obj.is_token() && !rw {
            return Err(Error::SessionReadOnly);
        }
        if !obj.bool(CKA_DESTROYABLE) {
            return Err(Error::ActionProhibited);
        }
        if !kms::is_kms_key(&obj) {
            return token.remove_object(handle);
        }
        if obj.class() == CKO_PUBLIC_KEY {
            token.remove_object(handle)?;
            return kms::lifecycle::audit(&token, "DestroyObject", Some(&obj), None, None).map_err(|e| e.to_error());
        }
        Self::touch(&token, self.face(h), &obj, Action::ScheduleKeyDeletion)?;
        let days = token.kms.deletion_window_days;
        kms::lifecycle::schedule_deletion(&token, handle, days).map(|_| ()).map_err(|e| e.to_error())
    }

    /// An object to read (C_GetAttributeValue of `types`): for a private KMS key,
    /// kms:DescribeKey; a secret value read out of a KMS key (an extractable key's
    /// CKA_VALUE) is the key leaving the token, which only an Enabled key may
    /// (kms:ReplicateKey, as C_WrapKey and C_CopyObject).
    pub fn object(&self, h: CK_SESSION_HANDLE, handle: u64, types: &[CK_ATTRIBUTE_TYPE]) -> Result<Arc<Object>> {
        let (token, _) = self.token_of(h)?;
        let obj = kms::import::expire_if_due(&token, handle, token.object(handle)?)?;
        let face = self.face(h);
        self.permit_read(&token, face, &obj)?;
        if kms::is_kms_key(&obj) && types.iter().any(|ty| obj.is_secret_value(*ty)) {
            Self::touch(&token, face, &obj, Action::ReplicateKey)?;
        }
        Ok(obj)
    }

    pub fn object_size(&self, h: CK_SESSION_HANDLE, handle: u64) -> Result<usize> {
        let (token, _) = self.token_of(h)?;
        let obj = token.object(handle)?;
        self.permit_read(&token, self.face(h), &obj)?;
        Ok(token.object_size(&obj))
    }

    /// Reading a public object (CKA_PRIVATE false: a public key, a certificate) needs no
    /// policy, as PKCS#11 lets anyone read it, logged in or not (libp11 and pkcs11-tool find
    /// public keys before they log in); a private object's attributes are kms:DescribeKey.
    fn permit_read(&self, token: &Token, face: Face, obj: &Object) -> Result<()> {
        if obj.bool(CKA_PRIVATE) {
            Self::touch(token, face, obj, Action::DescribeKey)?;
        }
        Ok(())
    }

    /// The face of session `h` (the PKCS#11 one when the session is gone: the call that
    /// asks fails on its own).
    fn face(&self, h: CK_SESSION_HANDLE) -> Face {
        self.session(h).map(|s| s.lock().face).unwrap_or(Face::Pkcs11)
    }

    pub fn set_attributes(&self, h: CK_SESSION_HANDLE, handle: u64, template: &[Attribute]) -> Result<()> {
        let (token, rw) = self.token_of(h)?;
        let obj = token.object(handle)?;
        if obj.is_token() && !rw {
            return Err(Error::SessionReadOnly);
        }
        if !obj.bool(CKA_MODIFIABLE) {
            return Err(Error::ActionProhibited);
        }
        // Changing a KMS key's attributes (its label, ...) is the nearest thing to
        // UpdateKeyDescription; the gate audits it.
        Self::touch(&token, self.face(h), &obj, Action::UpdateKeyDescription)?;
        let mut changed = (*obj).clone();
        changed.apply_changes(template, false, token.logged_in() == Some(Role::So))?;
        let types: Vec<String> = template.iter().map(|(t, _)| format!("{t:#x}")).collect();
        let r = token.replace_object(handle, changed);
        if kms::is_kms_key(&obj) {
            let error = r.as_ref().err().map(|e| KmsError::from(e.clone()));
            let details = Some(serde_json::json!({ "attributes": types }));
            kms::lifecycle::audit(&token, "UpdateKeyDescription", Some(&obj), error.as_ref(), details)
                .map_err(Error::from)?;
        }
        r
    }

    /// Ends the operation of kind `op` in progress on session `h`, if any: the end of
    /// every step that fails (see `abi::step`), and C_SessionCancel.
    pub fn end_operation(&self, h: CK_SESSION_HANDLE, op: Operation) {
        if let Ok(s) = self.session(h) {
            s.lock().end(op);
        }
    }

    pub fn find_init(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if s.find.is_some() {
            return Err(Error::OperationActive);
        }
        let handles = s.token.find(template)?;
        s.find = Some(Find { handles, pos: 0 });
        Ok(())
    }

    pub fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<u64>> {
        let s = self.session(h)?;
        let mut s = s.lock();
        let f = s.find.as_mut().ok_or(Error::OperationNotInitialized)?;
        // `max` is the caller's ulMaxObjectCount, which may be anything up to ULONG_MAX.
        let end = f.pos.saturating_add(max).min(f.handles.len());
        let out = f.handles[f.pos..end].to_vec();
        f.pos = end;
        Ok(out)
    }

    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        s.find.take().map(|_| ()).ok_or(Error::OperationNotInitialized)
    }

    // ---- cryptography ----

    /// Resolves a key for a mechanism and passes the KMS gate; the common start of every
    /// *Init function. `ctx`: the encryption context of a KMS mechanism, for the key
    /// policy; `operation`: the KMS action a use is done for when it is not the use's own
    /// (AWS asks kms:GenerateDataKey, not kms:Encrypt, of generate-data-key).
    fn key_for(
        session: &Session,
        key: u64,
        what: KeyUse,
        unit: &dyn Unit,
        ctx: &kms::blob::Context,
        operation: Option<Action>,
    ) -> Result<Arc<Object>> {
        // The kms face resolved the key by its id, for any principal: the key policy says
        // who may use it (an SO learns AccessDenied, not that the handle is invalid).
        let found = match session.face {
            Face::Kms => session.token.object_any(key),
            _ => session.token.object(key),
        };
        let obj = found.map_err(|e| match e {
            Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
            e => e,
        })?;
        let obj = kms::lifecycle::rotate_if_due(&session.token, key, obj)?;
        let obj = kms::import::expire_if_due(&session.token, key, obj)?;
        let action = operation.unwrap_or(Action::of_use(what, obj.key_type().unwrap_or(CKK_GENERIC_SECRET)));
        let request =
            gate::Request { key: &obj, action, face: session.face, mechanism: Some((what, unit)), context: ctx };
        gate::check(&session.token, &request)?;
        Ok(obj)
    }

    /// The encryption context a mechanism carries (the KMS mechanisms'; none for others).
    fn mech_context(mech: &Mechanism) -> Result<kms::blob::Context> {
        match mech.ty {
            crate::vendor::CKM_KMSTOKEN_ENCRYPT | crate::vendor::CKM_KMSTOKEN_DECRYPT => {
                crate::mech::kms::context(&mech.param)
            }
            _ => Ok(kms::blob::Context::new()),
        }
    }

    /// The gate for a call that touches a key without a mechanism (reading, changing,
    /// copying, destroying): the policy, the state table and the audit of `action`.
    fn touch(token: &Token, face: Face, obj: &Object, action: Action) -> Result<()> {
        gate::check(token, &gate::Request::touch(obj, action, face, &kms::blob::Context::new()))
    }

    /// The earlier versions of a rotated KMS key, newest first, for a mechanism that can
    /// tell them apart (decryption that checks integrity, MAC verification).
    fn older_versions(session: &Session, obj: &Object, can_tell: bool) -> Result<Vec<Arc<Object>>> {
        // A key at its first version has no earlier one: skip the store query, which
        // otherwise ran on every decryption.
        let rotated = obj.ulong(crate::vendor::CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1) > 1;
        if !can_tell || !rotated || !kms::is_kms_key(obj) {
            return Ok(Vec::new());
        }
        kms::lifecycle::versions(&session.token, obj)?.into_iter().map(|(_, h)| session.token.object_any(h)).collect()
    }

    /// A key as a mechanism sees it. A secret key needs its value, which a public object
    /// has only after login; an asymmetric key's material is in its attributes.
    fn secret<'a>(token: &Token, obj: &'a Object) -> Result<Key<'a>> {
        let value = if obj.class() == CKO_SECRET_KEY {
            token.usable_value(obj)?
        } else {
            obj.get_raw(CKA_VALUE).unwrap_or_default()
        };
        Ok(Key { key_type: obj.key_type().ok_or(Error::KeyTypeInconsistent)?, value, attrs: Some(obj) })
    }

    pub fn cipher_init(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, key: u64, encrypt: bool) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if (encrypt && s.encrypt.is_some()) || (!encrypt && s.decrypt.is_some()) {
            return Err(Error::OperationActive);
        }
        let unit = self.registry.lookup(mech.ty)?;
        if mech.ty == crate::vendor::CKM_KMSTOKEN_DECRYPT && !encrypt {
            // The key comes from the blob; a handle, if given, names the key expected.
            let expected = match key {
                CK_INVALID_HANDLE => None,
                h => Some(s.token.object(h).map_err(|_| Error::KeyHandleInvalid)?),
            };
            let ctx = crate::mech::kms::context(&mech.param)?;
            let op = kms::envelope::BlobDecrypt::new(s.token.clone(), unit, expected.as_deref(), ctx);
            s.decrypt = Some(Active::new(Box::new(op)));
            return Ok(());
        }
        let what = if encrypt { KeyUse::Encrypt } else { KeyUse::Decrypt };
        let obj = Self::key_for(&s, key, what, unit, &Self::mech_context(mech)?, None)?;
        let sk = Self::secret(&s.token, &obj)?;
        let op = if encrypt {
            unit.encrypt(&sk, &mech.param)?
        } else {
            let older = Self::older_versions(&s, &obj, crate::mech::is_authenticated(mech.ty))?;
            let mut ops = vec![unit.decrypt(&sk, &mech.param)?];
            for o in &older {
                ops.push(unit.decrypt(&Self::secret(&s.token, o)?, &mech.param)?);
            }
            if ops.len() == 1 {
                ops.remove(0)
            } else {
                Box::new(crate::mech::FirstAuthentic(ops))
            }
        };
        let c = Some(Active::with_login(op, !encrypt && obj.bool(CKA_ALWAYS_AUTHENTICATE)));
        if encrypt {
            s.encrypt = c;
        } else {
            s.decrypt = c;
        }
        Ok(())
    }

    pub fn cipher(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        step: Step,
        input: &[u8],
        out: Option<&mut [u8]>,
    ) -> Result<usize> {
        let s = self.session(h)?;
        let mut s = s.lock();
        let slot = if encrypt { &mut s.encrypt } else { &mut s.decrypt };
        cipher_step(slot, step, input, out)
    }

    pub fn sign_init(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, key: u64) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if s.sign.is_some() {
            return Err(Error::OperationActive);
        }
        let unit = self.registry.lookup(mech.ty)?;
        let obj = Self::key_for(&s, key, KeyUse::Sign, unit, &kms::blob::Context::new(), None)?;
        let op = unit.sign(&Self::secret(&s.token, &obj)?, &mech.param)?;
        s.sign = Some(Active::with_login(op, obj.bool(CKA_ALWAYS_AUTHENTICATE)));
        Ok(())
    }

    /// C_Sign (`data` Some: all at once) or C_SignFinal (None).
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, out: Option<&mut [u8]>) -> Result<usize> {
        let s = self.session(h)?;
        let mut s = s.lock();
        fixed_len_step(
            &mut s.sign,
            data.is_some(),
            |op| op.sig_len(),
            out,
            |op| {
                if let Some(d) = data {
                    op.update(d)?;
                }
                op.finish()
            },
        )
    }

    pub fn sign_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        update_step(&mut s.sign, |op| op.update(data))
    }

    pub fn verify_init(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, key: u64) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if s.verify.is_some() {
            return Err(Error::OperationActive);
        }
        let unit = self.registry.lookup(mech.ty)?;
        let obj = Self::key_for(&s, key, KeyUse::Verify, unit, &kms::blob::Context::new(), None)?;
        let mut ops = vec![unit.verify(&Self::secret(&s.token, &obj)?, &mech.param)?];
        let secret_key = obj.class() == CKO_SECRET_KEY;
        for o in Self::older_versions(&s, &obj, secret_key)? {
            ops.push(unit.verify(&Self::secret(&s.token, &o)?, &mech.param)?);
        }
        s.verify =
            Some(Active::new(if ops.len() == 1 { ops.remove(0) } else { Box::new(crate::mech::AnyVerifies(ops)) }));
        Ok(())
    }

    /// C_Verify (`data` Some) or C_VerifyFinal (None). Ends the operation.
    pub fn verify(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, signature: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        let a = s.verify.as_ref().ok_or(Error::OperationNotInitialized)?;
        if data.is_some() && a.multipart {
            return Err(Error::OperationActive);
        }
        let mut op = s.verify.take().ok_or(Error::OperationNotInitialized)?.op;
        if let Some(d) = data {
            op.update(d)?;
        }
        op.finish(signature)
    }

    pub fn verify_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        update_step(&mut s.verify, |op| op.update(data))
    }

    pub fn digest_init(&self, h: CK_SESSION_HANDLE, mech: &Mechanism) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if s.digest.is_some() {
            return Err(Error::OperationActive);
        }
        s.digest = Some(Active::new(self.registry.lookup(mech.ty)?.digest(&mech.param)?));
        Ok(())
    }

    /// C_Digest (`data` Some) or C_DigestFinal (None).
    pub fn digest(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, out: Option<&mut [u8]>) -> Result<usize> {
        let s = self.session(h)?;
        let mut s = s.lock();
        fixed_len_step(
            &mut s.digest,
            data.is_some(),
            |op| op.output_len(),
            out,
            |op| {
                if let Some(d) = data {
                    op.update(d);
                }
                Ok(op.finish())
            },
        )
    }

    pub fn digest_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        update_step(&mut s.digest, |op| {
            op.update(data);
            Ok(())
        })
    }

    /// C_DigestKey: feeds a secret key's value to the digest in progress.
    pub fn digest_key(&self, h: CK_SESSION_HANDLE, key: u64) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if s.digest.is_none() {
            return Err(Error::OperationNotInitialized);
        }
        let obj = s.token.object(key).map_err(|e| match e {
            Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
            e => e,
        })?;
        if obj.class() != CKO_SECRET_KEY {
            return Err(Error::KeyIndigestible);
        }
        // A digest of a KMS key's material is asked of its policy too (kms:DigestKey, which
        // only `kms:*` grants in the default policy), so a named user cannot hash a key it
        // may only use.
        Self::touch(&s.token, s.face, &obj, Action::DigestKey)?;
        let value = s.token.usable_value(&obj)?.to_vec();
        update_step(&mut s.digest, |op| {
            op.update(&value);
            Ok(())
        })
    }

    pub fn generate_key(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, template: &[Attribute]) -> Result<u64> {
        self.generate_kms_key(h, mech, template, false)
    }

    /// C_GenerateKey, or (`external`) the key of a KMS CreateKey with Origin EXTERNAL: its
    /// generated value is a placeholder that is never usable, and import replaces it.
    pub fn generate_kms_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        template: &[Attribute],
        external: bool,
    ) -> Result<u64> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, template, Some(CKO_SECRET_KEY))?;
        let unit = self.registry.lookup(mech.ty)?;
        if mech.param != crate::mech::Param::None {
            return Err(Error::MechanismParamInvalid);
        }
        let len = template_ulong(template, CKA_VALUE_LEN)?.map(|l| l as usize);
        let (key_type, value) = unit.generate_key(len)?;
        let extra = vec![
            (CKA_CLASS, ck_ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ck_ulong(key_type)),
            (CKA_VALUE, value.to_vec()),
        ];
        let obj = Object::build(template, Origin::Generate(mech.ty), &extra, token.logged_in() == Some(Role::So))?;
        self.store_new_kms(&token, rw, h, obj, template, external)
    }

    /// C_GenerateKeyPair: both keys made by the mechanism; a token pair is one KMS key
    /// (the private key carries its life, the public key shares its id and state).
    pub fn generate_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        public_template: &[Attribute],
        private_template: &[Attribute],
    ) -> Result<(u64, u64)> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, public_template, Some(CKO_PUBLIC_KEY))?;
        self.check_template_writable(&token, h, rw, private_template, Some(CKO_PRIVATE_KEY))?;
        let unit = self.registry.lookup(mech.ty)?;
        if mech.param != crate::mech::Param::None {
            return Err(Error::MechanismParamInvalid);
        }
        if mech.ty == CKM_RSA_PKCS_KEY_PAIR_GEN {
            // The profile's sizes: kms-strict makes only the sizes of AWS's key specs.
            let bits = template_ulong(public_template, CKA_MODULUS_BITS)?;
            let allowed = |b: u64| {
                usize::try_from(b).is_ok_and(|b| self.config.profile.rsa_bits_allowed(RsaKeyKind::Generated, b))
            };
            if bits.is_some_and(|b| !allowed(b)) {
                return Err(Error::KeySizeRange);
            }
        }
        let mut pair = unit.generate_key_pair(public_template, private_template)?;
        let so = token.logged_in() == Some(Role::So);
        let built = Object::build(public_template, Origin::Generate(mech.ty), &pair.public, so).and_then(|public| {
            Ok((public, Object::build(private_template, Origin::Generate(mech.ty), &pair.private, so)?))
        });
        // The private material now lives (zeroised on drop) in the private object only.
        for (_, v) in pair.private.iter_mut() {
            v.zeroize();
        }
        let (public, private) = built?;
        self.store_pair(&token, rw, h, (public, private), (public_template, private_template))
    }

    /// Stores the two halves of a key pair. One id for both when only one template names
    /// it (as most clients do); a token pair is one KMS key (the private key carries its
    /// life, the public key shares its id and state). The KMS usage is what the private
    /// template asks for; under `kms-strict`, what both ask for (one usage in all).
    fn store_pair(
        &self,
        token: &Token,
        rw: bool,
        h: CK_SESSION_HANDLE,
        (mut public, mut private): (Object, Object),
        (public_template, private_template): (&[Attribute], &[Attribute]),
    ) -> Result<(u64, u64)> {
        let (pub_id, priv_id) =
            (public.get_raw(CKA_ID).map(<[u8]>::to_vec), private.get_raw(CKA_ID).map(<[u8]>::to_vec));
        match (pub_id.filter(|v| !v.is_empty()), priv_id.filter(|v| !v.is_empty())) {
            (Some(id), None) => private.set(CKA_ID, id),
            (None, Some(id)) => public.set(CKA_ID, id),
            _ => {}
        }
        self.check_writable(token, h, rw, &public)?;
        self.check_writable(token, h, rw, &private)?;
        let kms_key = private.is_token();
        if kms_key {
            let asked = if token.kms.profile.one_usage() {
                [public_template, private_template].concat()
            } else {
                private_template.to_vec()
            };
            kms::lifecycle::on_create(token, &mut private, &asked, false)?;
            if public.is_token() {
                kms::lifecycle::share_identity(token, &private, &mut public);
            }
        }
        // A pair on the token is one transaction: a failure leaves neither half behind.
        let (ph, kh) = if public.is_token() && private.is_token() {
            if (public.is_private() || private.is_private()) && !self.holds_private(token, h) {
                return Err(Error::UserNotLoggedIn);
            }
            match token.apply(vec![public, private], Vec::new(), Vec::new())?[..] {
                [ph, kh] => (ph, kh),
                _ => return Err(Error::general("a key pair was stored as other than two objects")),
            }
        } else {
            let ph = token.add_object(public, h)?;
            (ph, token.add_object(private, h)?)
        };
        if kms_key {
            let obj = token.object_any(kh)?;
            kms::lifecycle::audit(token, "CreateKey", Some(&obj), None, None).map_err(|e| e.to_error())?;
        }
        Ok((ph, kh))
    }

    /// C_DeriveKey: a new secret key from what the mechanism derives (an ECDH shared
    /// secret, a concatenation, ...), cut to the length the template asks. A second key a
    /// concatenation names passes the gate as the base does. Under the derivations from a
    /// key's value, a sensitive base makes a sensitive key and an unextractable base an
    /// unextractable one: a template asking otherwise is CKR_TEMPLATE_INCONSISTENT.
    pub fn derive_key(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, base: u64, template: &[Attribute]) -> Result<u64> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, template, Some(CKO_SECRET_KEY))?;
        let unit = self.registry.lookup(mech.ty)?;
        let len = template_ulong(template, CKA_VALUE_LEN)?
            .map(|l| usize::try_from(l).map_err(|_| Error::AttributeValueInvalid))
            .transpose()?;
        let (secret, secrecy) = {
            let s = self.session(h)?;
            let s = s.lock();
            let none = kms::blob::Context::new();
            let bk = Self::key_for(&s, base, KeyUse::Derive, unit, &none, None)?;
            let mut secrecy = Secrecy::of(&bk);
            let resolved;
            let param = match &mech.param {
                crate::mech::Param::Handle(other) => {
                    let ok = Self::key_for(&s, *other, KeyUse::Derive, unit, &none, None)?;
                    secrecy = secrecy.and(Secrecy::of(&ok));
                    resolved = crate::mech::Param::Key(crate::mech::SecretParam::new(
                        Self::secret(&s.token, &ok)?.value.to_vec(),
                    ));
                    &resolved
                }
                p => p,
            };
            (unit.derive(&Self::secret(&s.token, &bk)?, param, len)?, secrecy)
        };
        let key_type = template_ulong(template, CKA_KEY_TYPE).ok().flatten().unwrap_or(CKK_GENERIC_SECRET);
        let len = len.unwrap_or(match key_type {
            CKK_AES => 32.min(secret.len()),
            _ => secret.len(),
        });
        if len == 0 || len > secret.len() {
            return Err(Error::TemplateInconsistent);
        }
        let value = secret[..len].to_vec();
        let mut rest: Vec<Attribute> = template.iter().filter(|(t, _)| *t != CKA_VALUE_LEN).cloned().collect();
        if unit.inherits_secrecy() {
            secrecy.impose(&mut rest);
        }
        let extra = vec![(CKA_CLASS, ck_ulong(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ck_ulong(key_type)), (CKA_VALUE, value)];
        let origin =
            Origin::Derive { always_sensitive: secrecy.always_sensitive, never_extractable: secrecy.never_extractable };
        let obj = Object::build(&rest, origin, &extra, token.logged_in() == Some(Role::So))?;
        self.store_new(&token, rw, h, obj, template)
    }

    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        wrapping: u64,
        key: u64,
        out: Option<&mut [u8]>,
    ) -> Result<usize> {
        let s = self.session(h)?;
        let s = s.lock();
        let unit = self.registry.lookup(mech.ty)?;
        let ctx = Self::mech_context(mech)?;
        let wk = Self::key_for(&s, wrapping, KeyUse::Wrap, unit, &ctx, None).map_err(|e| match e {
            Error::KeyHandleInvalid => Error::WrappingKeyHandleInvalid,
            Error::KeyTypeInconsistent => Error::WrappingKeyTypeInconsistent,
            e => e,
        })?;
        let target = s.token.object(key).map_err(|e| match e {
            Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
            e => e,
        })?;
        if target.class() != CKO_SECRET_KEY {
            return Err(Error::KeyNotWrappable);
        }
        // Wrapping a KMS key takes its material out of the key's policy: as AWS's
        // ReplicateKey (a copy of the material elsewhere), it needs kms:ReplicateKey.
        Self::touch(&s.token, s.face, &target, Action::ReplicateKey)?;
        if !target.bool(CKA_EXTRACTABLE) {
            return Err(Error::KeyUnextractable);
        }
        if target.bool(CKA_WRAP_WITH_TRUSTED) && !wk.bool(CKA_TRUSTED) {
            return Err(Error::KeyNotWrappable);
        }
        // CKA_WRAP_TEMPLATE: the wrapping key wraps only the keys that match it.
        if let Some(t) = wk.get_raw(CKA_WRAP_TEMPLATE).filter(|t| !t.is_empty()) {
            let wanted = crate::object::attr::decode_array(t).ok_or(Error::KeyNotWrappable)?;
            if !target.matches(&wanted) {
                return Err(Error::KeyNotWrappable);
            }
        }
        let wrapped = unit.wrap(&Self::secret(&s.token, &wk)?, &mech.param, s.token.usable_value(&target)?)?;
        match out {
            None => Ok(wrapped.len()),
            Some(buf) if buf.len() < wrapped.len() => Err(Error::BufferTooSmall(wrapped.len())),
            Some(buf) => {
                buf[..wrapped.len()].copy_from_slice(&wrapped);
                Ok(wrapped.len())
            }
        }
    }

    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        unwrapping: u64,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<u64> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, template, None)?;
        let unit = self.registry.lookup(mech.ty)?;
        let (value, unwrap_template) =
            {
                let s = self.session(h)?;
                let s = s.lock();
                let uk = Self::key_for(&s, unwrapping, KeyUse::Unwrap, unit, &kms::blob::Context::new(), None)
                    .map_err(|e| match e {
                        Error::KeyHandleInvalid => Error::UnwrappingKeyHandleInvalid,
                        Error::KeyTypeInconsistent => Error::UnwrappingKeyTypeInconsistent,
                        e => e,
                    })?;
                let mut keys = vec![uk.clone()];
                keys.extend(Self::older_versions(&s, &uk, crate::mech::is_authenticated(mech.ty))?);
                let mut result = Err(Error::WrappedKeyInvalid);
                for k in &keys {
                    result = unit.unwrap(&Self::secret(&s.token, k)?, &mech.param, wrapped);
                    if !matches!(result, Err(Error::WrappedKeyInvalid)) {
                        break;
                    }
                }
                let unwrap_template = uk
                    .get_raw(CKA_UNWRAP_TEMPLATE)
                    .map(|t| crate::object::attr::decode_array(t).ok_or(Error::TemplateInconsistent))
                    .transpose()?
                    .unwrap_or_default();
                (result?, unwrap_template)
            };
        // CKA_UNWRAP_TEMPLATE: the new key has its attributes, then the caller's, as if
        // the caller changed an object made from it; where the two disagree, the template
        // is inconsistent (Object::build refuses an attribute given twice with two values).
        let merged: Vec<Attribute>;
        let template = if unwrap_template.is_empty() {
            template
        } else {
            merged = unwrap_template.into_iter().chain(template.iter().cloned()).collect();
            &merged[..]
        };
        let value = if mech.ty == CKM_RSA_PKCS { Self::fit_unwrapped(value, template)? } else { value };
        if !template.iter().any(|(t, _)| *t == CKA_CLASS) || !template.iter().any(|(t, _)| *t == CKA_KEY_TYPE) {
            return Err(Error::TemplateIncomplete);
        }
        let rest: Vec<Attribute> = template.iter().filter(|(t, _)| *t != CKA_VALUE_LEN).cloned().collect();
        let obj =
            Object::build(&rest, Origin::Unwrap, &[(CKA_VALUE, value.to_vec())], token.logged_in() == Some(Role::So))?;
        self.store_new(&token, rw, h, obj, template)
    }

    /// CKM_RSA_PKCS unwrapping answers a bad padding with a synthetic value of
    /// pseudorandom length (implicit rejection, see `crypto::RsaPrivateKey::decrypt_pkcs1`).
    /// Were a value of the wrong length then refused by the new object's checks, the
    /// token's own checks would tell good padding from bad again (Bleichenbacher's oracle).
    /// So the unwrap never fails for the value's length: a value of the wrong length is
    /// replaced, in constant time, by a random one of the expected length (as TLS servers
    /// do with the premaster secret). The expected length is CKA_VALUE_LEN when the
    /// template gives it; without it, a value whose length suits the key type is kept and
    /// any other becomes 32 random bytes. That last case still shows, through the new
    /// key's CKA_VALUE_LEN, whether the length suited the key type: a caller who wants no
    /// signal at all gives CKA_VALUE_LEN.
    fn fit_unwrapped(value: Zeroizing<Vec<u8>>, template: &[Attribute]) -> Result<Zeroizing<Vec<u8>>> {
        let expected = match (template_ulong(template, CKA_VALUE_LEN)?, template_ulong(template, CKA_KEY_TYPE)?) {
            (Some(len), _) => usize::try_from(len).map_err(|_| Error::AttributeValueInvalid)?,
            (None, Some(kt)) if crate::object::secret_len_ok(kt, value.len()).is_ok() => value.len(),
            (None, _) => 32,
        };
        if expected > 512 {
            return Err(Error::AttributeValueInvalid);
        }
        crate::crypto::exact_len_or_random(&value, expected)
    }

    /// KMS Encrypt: the blob of `plaintext` under token key `key`, on behalf of
    /// `operation` (Encrypt, GenerateDataKey, ReEncryptTo...): the action the key policy
    /// is asked and the audit record names.
    pub fn kms_encrypt(
        &self,
        h: CK_SESSION_HANDLE,
        key: u64,
        ctx: &kms::blob::Context,
        plaintext: &[u8],
        operation: Action,
    ) -> Result<Vec<u8>> {
        let s = self.session(h)?;
        let s = s.lock();
        let unit = self.registry.lookup(crate::vendor::CKM_KMSTOKEN_ENCRYPT)?;
        let obj = Self::key_for(&s, key, KeyUse::Encrypt, unit, ctx, Some(operation))?;
        let (id, version) = (kms::key_id(&obj), obj.ulong(crate::vendor::CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1));
        let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::KeyTypeInconsistent)?;
        kms::blob::seal(&id, version as u32, s.token.usable_value(&obj)?, ctx, plaintext)
    }

    /// KMS Decrypt on behalf of `operation` (Decrypt, ReEncryptFrom): the plaintext of a
    /// blob and the key that made it.
    pub fn kms_decrypt(
        &self,
        h: CK_SESSION_HANDLE,
        expected: Option<&str>,
        ctx: &kms::blob::Context,
        blob: &[u8],
        operation: Action,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Arc<Object>)> {
        let token = self.token_of(h)?.0;
        let unit = self.registry.lookup(crate::vendor::CKM_KMSTOKEN_DECRYPT)?;
        kms::envelope::open(&token, unit, expected, ctx, blob, Some(operation))
    }

    // ---- message-based encryption (PKCS#11 3.0) ----

    /// The message-based operation of session `h` in one direction.
    fn message_op<T>(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        f: impl FnOnce(&mut MessageCipher) -> Result<T>,
    ) -> Result<T> {
        let s = self.session(h)?;
        let mut s = s.lock();
        let slot = if encrypt { &mut s.message_encrypt } else { &mut s.message_decrypt };
        f(slot.as_mut().ok_or(Error::OperationNotInitialized)?)
    }

    /// C_MessageEncryptInit / C_MessageDecryptInit: AES-GCM with `key`, which passes the
    /// KMS gate once for the messages to come. The mechanism's parameter (each message
    /// brings its own) is not read.
    pub fn message_init(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, key: u64, encrypt: bool) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        if (encrypt && s.message_encrypt.is_some()) || (!encrypt && s.message_decrypt.is_some()) {
            return Err(Error::OperationActive);
        }
        if mech.ty != CKM_AES_GCM {
            return Err(Error::MechanismInvalid);
        }
        let unit = self.registry.lookup(mech.ty)?;
        let what = if encrypt { KeyUse::Encrypt } else { KeyUse::Decrypt };
        let obj = Self::key_for(&s, key, what, unit, &kms::blob::Context::new(), None)?;
        let cipher = MessageCipher::new(Self::secret(&s.token, &obj)?.value, encrypt)?;
        if encrypt {
            s.message_encrypt = Some(cipher);
        } else {
            s.message_decrypt = Some(cipher);
        }
        Ok(())
    }

    /// C_MessageEncryptFinal / C_MessageDecryptFinal.
    pub fn message_final(&self, h: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
        let s = self.session(h)?;
        let mut s = s.lock();
        let slot = if encrypt { &mut s.message_encrypt } else { &mut s.message_decrypt };
        slot.take().map(|_| ()).ok_or(Error::OperationNotInitialized)
    }

    /// C_EncryptMessage / C_DecryptMessage (see `MessageCipher::one_shot`).
    pub fn message(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        p: &mut GcmMessageParams,
        aad: &[u8],
        data: &[u8],
        out: Option<&mut [u8]>,
    ) -> Result<usize> {
        self.message_op(h, encrypt, |m| m.one_shot(p, aad, data, out))
    }

    /// C_EncryptMessageBegin / C_DecryptMessageBegin.
    pub fn message_begin(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        p: &mut GcmMessageParams,
        aad: &[u8],
    ) -> Result<()> {
        self.message_op(h, encrypt, |m| m.begin(p, aad))
    }

    /// C_EncryptMessageNext / C_DecryptMessageNext.
    pub fn message_next(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        p: &mut GcmMessageParams,
        data: &[u8],
        out: Option<&mut [u8]>,
        end: bool,
    ) -> Result<usize> {
        self.message_op(h, encrypt, |m| m.next(p, data, out, end))
    }

    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(h)?;
        crate::crypto::random(out)
    }
}

/// How secret the base key(s) of a derivation are, which the derived key inherits.
#[derive(Clone, Copy)]
struct Secrecy {
    sensitive: bool,
    extractable: bool,
    always_sensitive: bool,
    never_extractable: bool,
}

impl Secrecy {
    fn of(key: &Object) -> Secrecy {
        Secrecy {
            sensitive: key.bool(CKA_SENSITIVE),
            extractable: key.bool(CKA_EXTRACTABLE),
            always_sensitive: key.bool(CKA_ALWAYS_SENSITIVE),
            never_extractable: key.bool(CKA_NEVER_EXTRACTABLE),
        }
    }

    /// Two keys together are as secret as the more secret of the two.
    fn and(self, other: Secrecy) -> Secrecy {
        Secrecy {
            sensitive: self.sensitive || other.sensitive,
            extractable: self.extractable && other.extractable,
            always_sensitive: self.always_sensitive && other.always_sensitive,
            never_extractable: self.never_extractable && other.never_extractable,
        }
    }

    /// Makes the derived key sensitive (unextractable) when its base is, whatever the
    /// template asks: "if the base key has CKA_SENSITIVE set to CK_TRUE, so does the
    /// derived key" (PKCS#11 3.0 current mechanisms, 2.43) sets the value, it does not
    /// refuse the template.
    fn impose(&self, template: &mut Vec<Attribute>) {
        for (ty, forced, value) in [(CKA_SENSITIVE, self.sensitive, true), (CKA_EXTRACTABLE, !self.extractable, false)]
        {
            if forced {
                template.retain(|(t, _)| *t != ty);
                template.push((ty, vec![value as u8]));
            }
        }
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
