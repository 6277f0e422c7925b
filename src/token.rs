//! A token in this process: its store, who is logged in, the master key while someone is,
//! a cache of unsealed objects kept coherent with other processes through the store's
//! change counter, and the session objects of this process.
//!
//! Integrity: with the master key, every object is checked against its MAC when it is
//! loaded (one that fails is refused alone, with a logged reason), and every login checks
//! the token as a whole (`check_integrity`): the authenticated state, the sum of all row
//! MACs, the failure counters and the anchor. Token objects change only under a login,
//! since every write renews the authenticated state.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kms::audit::AuditLog;
use crate::object::{ck_ulong, Object};
use crate::seal::{index_hash, role_aad, Integrity, KdfParams, MasterKey, Sum256};
use crate::store::sqlite::SqliteStore;
use crate::store::{
    codec, tree, Alias, Attempt, Change, IndexEntry, LoadedRow, NamedUser, Role, Scan, Store, StoredAttr, StoredObject,
    Tag, TokenRecord, Vouch,
};
use crate::vendor::{CKA_KMSTOKEN_KEY_ID, CKA_KMSTOKEN_KEY_STATE, CKA_KMSTOKEN_ROTATION_ENABLED};
use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::Zeroizing;

/// What the audit key is derived for (`MasterKey::purpose_key`).
pub const AUDIT_PURPOSE: &str = "audit chain";

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
    integrity: Option<Integrity>,
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
    pub audit: Arc<AuditLog>,
    /// The database's generation and the anchor's, when the anchor is ahead: the database
    /// was put back from an older copy (found at open).
    pub rolled_back: Option<(u64, u64)>,
    /// Why the token's rows cannot be trusted as a whole (found at login): rows added,
    /// removed or put back from a copy cannot be told apart, so no token object is used
    /// and nothing is written until the SO has looked (`verify_keystore`).
    suspect: Mutex<Option<String>>,
    /// Objects the MAC tree names as not the rows the token wrote last (found at login):
    /// each is refused alone, with its reason, and every other object keeps working.
    refused: Mutex<HashMap<u64, &'static str>>,
}

/// The configuration the KMS layer applies to this token.
#[derive(Clone, Debug)]
pub struct KmsSettings {
    pub profile: crate::config::Profile,
    pub deletion_window_days: u32,
    pub audit_required: bool,
}

/// What C_GetTokenInfo needs beyond the label and serial.
#[derive(Clone, Debug)]
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

/// What an integrity scan shows wrong.
#[derive(Default)]
struct Problems {
    /// Each one, for the log and the audit trail.
    all: Vec<String>,
    /// Why the token is suspect: rows added, removed or put back that the objects' MAC tree
    /// does not account for, or a state that fails.
    suspect: Option<String>,
    /// The objects to refuse alone, and why.
    refused: HashMap<u64, &'static str>,
}

fn integrity_problems(auth: &Integrity, scan: &Scan, sealed_wrap: bool) -> Problems {
    let rec = &scan.record;
    let mut p = Problems::default();
    match &rec.state {
        None if sealed_wrap => {
            p.suspect = Some("the token's authenticated state was removed".to_string());
        }
        None => {}
        Some(st) if !auth.verify(&codec::state_row(rec, st), &st.mac) => {
            p.suspect = Some("the token state fails its integrity check (edited outside the module)".to_string());
        }
        Some(st) => {
            if st.digest != scan.digest {
                account_for_rows(st, scan, &mut p);
            }
            if !rec.counters(scan.named_failed).consistent {
                p.all.push("failed-login counters were lowered outside the module".to_string());
            }
            if scan.unsealed > 0 {
                p.all.push(format!("{} rows have no MAC (refused)", scan.unsealed));
            }
        }
    }
    p.all.extend(p.suspect.clone());
    p
}

/// The rows do not add up to the state. When the objects' MAC tree holds and the objects
/// it expects, with every other row as it is, make up the state's sum, only objects were
/// added, removed or put back: the tree names them and they alone are refused.
fn account_for_rows(st: &crate::store::TokenState, scan: &Scan, p: &mut Problems) {
    let explained = scan.findings.as_ref().filter(|f| f.whole).filter(|f| {
        let mut sum = Sum256::from_bytes(&f.expected).unwrap_or_default();
        sum.add(&scan.others);
        sum.to_bytes() == st.digest
    });
    let Some(f) = explained else {
        p.suspect = Some(
            "the rows do not add up to the authenticated state: a row was added, removed or put back \
             from an older copy"
                .to_string(),
        );
        return;
    };
    for (id, why) in &f.refused {
        p.all.push(format!("object {id} is refused: {why}"));
        p.refused.insert(*id, why);
    }
    for id in &f.removed {
        p.all.push(format!("object {id} was removed outside the module"));
    }
}

/// The Argon2id parameters of an existing PIN wrap, to wrap again at the same cost.
fn wrap_params(wrap: &[u8]) -> KdfParams {
    MasterKey::wrap_params(wrap).unwrap_or(KdfParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::So => "so",
        Role::User => "user",
    }
}

/// The audit trail as the store sees it: the heads it anchors, the generations it commits.
struct TrailHook(Arc<AuditLog>);

impl crate::store::Trail for TrailHook {
    fn heads(&self) -> Vec<crate::store::TrailHead> {
        self.0.heads()
    }

    fn committed(&self, generation: u64) {
        self.0.saw_generation(generation);
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
        let mut rec = TokenRecord {
            serial: serial.clone(),
            label: label.to_string(),
            slot_id,
            so_wrap: mk.wrap(so_pin, kdf(config), &role_aad(&serial, "so", true))?,
            user_wrap: None,
            so_failed: 0,
            user_failed: 0,
            created: now_secs(),
            generation: 0,
            state: None,
        };
        rec.state = Some(crate::store::sqlite::initial_state(&mk.integrity(), &rec));
        let path = dir.join(format!("token-{serial}.sqlite"));
        let store = SqliteStore::create(&path, &rec)?;
        Ok(Self::with_store(path, Box::new(store), rec, config))
    }

    pub fn open(path: &Path, config: &Config) -> Result<Token> {
        let store = SqliteStore::open(path)?;
        let rec = store.record()?;
        let anchor = store.anchor()?;
        let mut t = Self::with_store(path.to_path_buf(), Box::new(store), rec.clone(), config);
        if let Some(a) = anchor.filter(|a| *a > rec.generation) {
            log::error!(
                "token {}: the database is at generation {} but has been at {a}: it was put back from an \
                 older copy (changes made since that copy are lost, and failed logins may have been undone)",
                rec.serial,
                rec.generation
            );
            t.rolled_back = Some((rec.generation, a));
        }
        t.check_trail_at_open();
        Ok(t)
    }

    fn with_store(path: PathBuf, store: Box<dyn Store>, rec: TokenRecord, config: &Config) -> Token {
        let keystore = path.parent().unwrap_or(Path::new("."));
        let audit = Arc::new(AuditLog::new(crate::kms::audit::trail_dir(keystore, &rec.serial), &rec.serial));
        audit.saw_generation(rec.generation);
        store.set_trail(Arc::new(TrailHook(audit.clone())));
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
            audit,
            serial: rec.serial,
            label: rec.label,
            path,
            rolled_back: None,
            suspect: Mutex::new(None),
            refused: Mutex::new(HashMap::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn status(&self) -> Result<TokenStatus> {
        let r = self.store.record()?;
        // The counters that logins go by, which a counter lowered in the file does not move.
        let c = r.counters(self.store.named_users()?.iter().map(|u| u.failed).sum());
        Ok(TokenStatus {
            user_pin_initialized: r.user_wrap.is_some(),
            so_failed: c.so,
            user_failed: c.user,
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

    /// Checks `pin` for `role` against the stored wrap. PIN checks of a token run one at
    /// a time across processes (`Store::login_lock`), each counted on disk before it runs,
    /// so that guesses made at once never pass the limit; the count goes back to zero
    /// under the key when the PIN is right.
    pub fn verify_pin(&self, role: Role, pin: &[u8]) -> Result<MasterKey> {
        self.check_pin(role, pin, false)
    }

    /// `verify_pin`, and with `check` the token's integrity checked beside the PIN.
    fn check_pin(&self, role: Role, pin: &[u8], check: bool) -> Result<MasterKey> {
        let _one_at_a_time = self.store.login_lock()?;
        let rec = self.store.record()?;
        let wrap = match role {
            Role::So => Some(rec.so_wrap.clone()),
            Role::User => rec.user_wrap.clone(),
        };
        let wrap = wrap.ok_or(Error::UserPinNotInitialized)?;
        let c = rec.counters(self.store.named_users()?.iter().map(|u| u.failed).sum());
        let failed = match role {
            Role::So => c.so,
            Role::User => c.user,
        };
        if failed >= self.max_failed {
            return Err(Error::PinLocked);
        }
        // Counted before it is checked: a check that could not be counted (a full disk, a
        // crash during Argon2) never happens uncounted.
        let n = match self.store.login_failed(role, self.max_failed)? {
            Attempt::Counted(n) => n,
            Attempt::Locked => return Err(Error::PinLocked),
        };
        let who = role_name(role);
        let (r, scan) = self.unwrap_beside_scan(&wrap, pin, who, check);
        match r {
            Ok((mk, sealed)) => {
                let auth = mk.integrity();
                if check {
                    self.check_integrity(&auth, scan, sealed)?;
                }
                if !sealed {
                    // The first login after the upgrade: this role's wrap becomes a sealed
                    // token's, which cannot be presented as an unsealed one again.
                    let wrap = mk.wrap(pin, wrap_params(&wrap), &role_aad(&self.serial, who, true))?;
                    match role {
                        Role::So => self.store.set_so_wrap(&wrap, &auth)?,
                        Role::User => self.store.set_user_wrap(&wrap, &auth)?,
                    }
                } else {
                    self.reset_counter(|| self.store.login_succeeded(role, &auth))?;
                }
                Ok(mk)
            }
            Err(Error::PinIncorrect) => {
                log::warn!("token {}: wrong {who} PIN ({n} of {} tries used)", self.serial, self.max_failed);
                Err(Error::PinIncorrect)
            }
            Err(e) => Err(e),
        }
    }

    /// Resets a failure counter after a right PIN. On a suspect token nothing is written
    /// (the state cannot be renewed): the login stands, and the attempt stays counted
    /// until the SO has looked.
    fn reset_counter(&self, reset: impl FnOnce() -> Result<()>) -> Result<()> {
        match reset() {
            Err(Error::Storage(e)) if self.suspect.lock().is_some() => {
                log::warn!("token {}: failure counter not reset: {e}", self.serial);
                Ok(())
            }
            r => r,
        }
    }

    /// Unwraps the master key with `pin` (the PIN check: Argon2id, tens of milliseconds),
    /// while another thread reads the integrity scan when `scan` is asked: the two cost
    /// one Argon2 run. Tells whether the wrap is a sealed token's (v2) or one from before.
    fn unwrap_beside_scan(
        &self,
        wrap: &[u8],
        pin: &[u8],
        who: &str,
        scan: bool,
    ) -> (Result<(MasterKey, bool)>, Option<Result<Scan>>) {
        std::thread::scope(|s| {
            let scanning = scan.then(|| s.spawn(|| self.store.scan()));
            let aads = [role_aad(&self.serial, who, true), role_aad(&self.serial, who, false)];
            // A wrap from before sealing still opens (each role's is renewed at its first
            // login after the upgrade); it can seal only a token that has no state.
            let r = MasterKey::unwrap_any(wrap, pin, &aads).map(|(mk, i)| (mk, i == 0));
            let scanned = scanning.map(|h| h.join().unwrap_or_else(|_| Err(Error::general("integrity scan panicked"))));
            (r, scanned)
        })
    }

    /// The integrity check at login: seals a keystore from before sealing (when the PIN
    /// wrap is one from before too); else checks the authenticated state, the sum of the
    /// row MACs, rows without a MAC, the failure counters and the anchor. What fails is
    /// logged and audited. Rows added, removed or put back, or a state that fails, make the
    /// token suspect: its objects are refused until the SO has looked (`verify_keystore`).
    /// Each object is also checked when it is loaded, so an edited row is refused alone.
    fn check_integrity(&self, auth: &Integrity, scan: Option<Result<Scan>>, sealed_wrap: bool) -> Result<()> {
        let scan = match scan {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                log::error!("token {}: integrity scan failed: {e}", self.serial);
                return Ok(());
            }
            None => return Ok(()),
        };
        let Problems { all: problems, suspect, refused } = integrity_problems(auth, &scan, sealed_wrap);
        if scan.record.state.is_none() && !sealed_wrap {
            self.store.seal(auth)?;
            log::info!("token {}: rows authenticated for the first time (keystore upgrade)", self.serial);
            self.audit_integrity(None, Some(serde_json::json!({ "sealed": true })))?;
        }
        let mut problems = problems;
        if let Some((db, anchor)) = self.rolled_back {
            problems.push(format!("the database (generation {db}) is older than its anchor ({anchor})"));
        }
        for p in &problems {
            log::error!("token {}: integrity: {p}", self.serial);
        }
        if !problems.is_empty() {
            self.audit_integrity(Some(problems.join("; ")), None)?;
        }
        *self.suspect.lock() = suspect;
        *self.refused.lock() = refused;
        Ok(())
    }

    fn audit_integrity(&self, error: Option<String>, details: Option<serde_json::Value>) -> Result<()> {
        self.audit.append(&crate::kms::audit::Event {
            name: "IntegrityCheck",
            service: true,
            error: error.map(|m| (crate::error::AwsError::KmsInvalidState, m)),
            details,
            ..Default::default()
        })
    }

    pub fn login(&self, role: Role, pin: &[u8]) -> Result<()> {
        if let Some(have) = self.logged_in() {
            return Err(if have == role { Error::UserAlreadyLoggedIn } else { Error::UserAnotherAlreadyLoggedIn });
        }
        let mk = self.check_pin(role, pin, true)?;
        self.logged_in_as(role, role_name(role).into(), mk);
        Ok(())
    }

    fn logged_in_as(&self, role: Role, principal: Arc<str>, mk: MasterKey) {
        self.audit.set_key(&mk.purpose_key(AUDIT_PURPOSE));
        let mut l = self.login.write();
        l.index_key = Some(mk.index_key());
        l.integrity = Some(mk.integrity());
        l.mk = Some(mk);
        l.role = Some(role);
        l.principal = Some(principal);
        drop(l);
        self.cache.lock().objects.clear();
    }

    /// Runs `f` with the integrity key of the current login: token writes need it, and
    /// none is made while the token is suspect.
    fn with_integrity<T>(&self, f: impl FnOnce(&Integrity) -> Result<T>) -> Result<T> {
        self.refuse_if_suspect()?;
        // The record of this change must find room once the change is made.
        self.audit.ensure_room()?;
        let l = self.login.read();
        f(l.integrity.as_ref().ok_or(Error::UserNotLoggedIn)?)
    }

    fn refuse_if_suspect(&self) -> Result<()> {
        match &*self.suspect.lock() {
            Some(why) => Err(Error::storage(format!(
                "token {} is refused until the SO has looked (kmstoken verify-keystore): {why}",
                self.serial
            ))),
            None => Ok(()),
        }
    }

    /// The SO's full check of the keystore: the state, the sum of the row MACs, and every
    /// object, alias, tag and named user against its MAC. With `accept`, the state is
    /// authenticated again over the rows as they are now (what fails its own MAC stays
    /// refused), which ends a suspect state after review.
    pub fn verify_keystore(&self, accept: bool) -> Result<serde_json::Value> {
        if self.logged_in() != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        let scan = self.store.scan()?;
        let mut problems = self.with_key(|auth| Ok(integrity_problems(auth, &scan, true)))?.all;
        let mut refused = Vec::new();
        let ids = self.store.find(&[], true, &[])?;
        for id in &ids {
            if let Some(row) = self.store.load(*id)? {
                if let Err(e) = self.unseal(row) {
                    refused.push(serde_json::json!({ "Handle": id, "Reason": e.to_string() }));
                }
            }
        }
        let bad_aliases = self.store.aliases()?.len() - self.aliases()?.len();
        if bad_aliases > 0 {
            problems.push(format!("{bad_aliases} aliases fail their integrity check"));
        }
        if let Some((db, anchor)) = self.rolled_back {
            problems.push(format!("the database (generation {db}) is older than its anchor ({anchor})"));
        }
        if accept {
            self.with_key(|auth| self.store.accept(auth))?;
            *self.suspect.lock() = None;
            self.refused.lock().clear();
            self.audit_integrity(None, Some(serde_json::json!({ "accepted": true, "problems": problems })))?;
        }
        Ok(serde_json::json!({
            "Objects": ids.len(),
            "RefusedObjects": refused,
            "Problems": problems,
            "Accepted": accept,
        }))
    }

    /// `f` with the integrity key, suspect or not (for the SO's review).
    fn with_key<T>(&self, f: impl FnOnce(&Integrity) -> Result<T>) -> Result<T> {
        let l = self.login.read();
        f(l.integrity.as_ref().ok_or(Error::UserNotLoggedIn)?)
    }

    // ---- named users ----

    /// The wrap's associated data names the principal, so that one user's wrap cannot
    /// stand in for another's.
    fn named_aad(&self, name: &str, sealed: bool) -> Vec<u8> {
        role_aad(&self.serial, &format!("user/{name}"), sealed)
    }

    /// Checks a named user's PIN, counting the attempt first as for the user PIN. An
    /// unknown name is CKR_USER_TYPE_INVALID (C_LoginUser names no user the token has).
    pub fn verify_named_pin(&self, name: &str, pin: &[u8]) -> Result<MasterKey> {
        self.check_named_pin(name, pin, false)
    }

    fn check_named_pin(&self, name: &str, pin: &[u8], check: bool) -> Result<MasterKey> {
        let _one_at_a_time = self.store.login_lock()?;
        let user = self.store.named_user(name)?.ok_or(Error::UserTypeInvalid)?;
        let rec = self.store.record()?;
        let c = rec.counters(self.store.named_users()?.iter().map(|u| u.failed).sum());
        let failed = user.failed.saturating_add(c.named_extra);
        if failed >= self.max_failed {
            return Err(Error::PinLocked);
        }
        let n = match self.store.named_login_failed(name, self.max_failed)? {
            Some(Attempt::Counted(n)) => n,
            Some(Attempt::Locked) => return Err(Error::PinLocked),
            None => return Err(Error::UserTypeInvalid),
        };
        let who = format!("user/{name}");
        let (r, scan) = self.unwrap_beside_scan(&user.wrap, pin, &who, check);
        match r {
            Ok((mk, sealed)) => {
                let auth = mk.integrity();
                if check {
                    self.check_integrity(&auth, scan, sealed)?;
                }
                // The row as it stands now (a first login after the upgrade has just sealed
                // it), which must be the one whose wrap was opened.
                let now = self.store.named_user(name)?.filter(|u| u.wrap == user.wrap);
                if !now.is_some_and(|u| auth.verify(&codec::user_row(&self.serial, name, &u.wrap, u.created), &u.mac)) {
                    log::error!("token {}: the row of user/{name} fails its integrity check", self.serial);
                    return Err(Error::storage(format!("the row of user/{name} fails its integrity check")));
                }
                if !sealed {
                    let wrap = mk.wrap(pin, wrap_params(&user.wrap), &self.named_aad(name, true))?;
                    self.store.set_named_wrap(name, &wrap, &auth)?;
                } else {
                    self.reset_counter(|| self.store.named_login_succeeded(name, &auth))?;
                }
                Ok(mk)
            }
            Err(Error::PinIncorrect) => {
                log::warn!("token {}: wrong PIN of {who} ({n} of {} tries used)", self.serial, self.max_failed);
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
        let mk = self.check_named_pin(name, pin, true)?;
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
        let (mk, auth) = l.mk.as_ref().zip(l.integrity.as_ref()).ok_or(Error::UserNotLoggedIn)?;
        let wrap = mk.wrap(pin, kdf(config), &self.named_aad(name, true))?;
        let user = NamedUser { name: name.to_string(), wrap, failed: 0, created: now_secs(), mac: Vec::new() };
        self.store.add_named_user(&user, auth)
    }

    /// C_SetPIN by a named user: its own PIN, proving the old one.
    pub fn set_named_pin(&self, name: &str, old: &[u8], new: &[u8], config: &Config) -> Result<()> {
        let mk = self.verify_named_pin(name, old)?;
        let wrap = mk.wrap(new, kdf(config), &self.named_aad(name, true))?;
        if !self.store.set_named_wrap(name, &wrap, &mk.integrity())? {
            return Err(Error::UserTypeInvalid);
        }
        Ok(())
    }

    /// The SO removes a named user; false when there was none.
    pub fn delete_named_user(&self, name: &str) -> Result<bool> {
        if self.logged_in() != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        self.with_integrity(|auth| self.store.delete_named_user(name, auth))
    }

    /// The named users: (name, failed logins, created).
    pub fn named_users(&self) -> Result<Vec<(String, u32, i64)>> {
        Ok(self.store.named_users()?.into_iter().map(|u| (u.name, u.failed, u.created)).collect())
    }

    pub fn logout(&self) -> Result<()> {
        if self.logged_in().is_some() {
            self.anchor_trail();
        }
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
        let (mk, auth) = l.mk.as_ref().zip(l.integrity.as_ref()).ok_or(Error::UserNotLoggedIn)?;
        let wrap = mk.wrap(pin, kdf(config), &role_aad(&self.serial, "user", true))?;
        self.store.set_user_wrap(&wrap, auth)
    }

    /// C_SetPIN: `role` changes its own PIN, proving the old one.
    pub fn set_pin(&self, role: Role, old: &[u8], new: &[u8], config: &Config) -> Result<()> {
        let mk = self.verify_pin(role, old)?;
        let wrap = mk.wrap(new, kdf(config), &role_aad(&self.serial, role_name(role), true))?;
        match role {
            Role::So => self.store.set_so_wrap(&wrap, &mk.integrity()),
            Role::User => self.store.set_user_wrap(&wrap, &mk.integrity()),
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
            self.audit.saw_generation(generation);
        }
        Ok(())
    }

    /// An object from its row: with the integrity key (any login), the row's MAC checked
    /// over exactly the stored bytes first; then the attributes, each sealed one opened.
    /// Without a login only public objects are loaded, unchecked (there is no key before
    /// login); they are checked again after it, as the cache is emptied at login.
    fn unseal(&self, row: LoadedRow) -> Result<Object> {
        let l = self.login.read();
        let corrupt = |why: String| Error::storage(format!("object {} is refused: {why}", row.id));
        if let Some(why) = self.refused.lock().get(&row.id) {
            return Err(corrupt(why.to_string()));
        }
        if let Some(auth) = &l.integrity {
            if row.mac.is_empty() {
                return Err(corrupt("it has no MAC".into()));
            }
            let bytes = codec::object_row(&self.serial, row.id, &row.uid, row.class, row.private, row.gen, &row.attrs);
            if !auth.verify(&bytes, &row.mac) {
                return Err(corrupt("it fails its integrity check (edited outside the module)".into()));
            }
        }
        let attrs = codec::decode(&row.attrs).map_err(|e| corrupt(e.to_string()))?;
        let mut obj = Object::default();
        let mut sealed_types = Vec::new();
        for a in attrs {
            let v = if a.sealed {
                sealed_types.push(a.ty);
                match &l.mk {
                    Some(mk) => mk.open(&self.serial, &row.uid, a.ty, &a.value).map_err(|e| corrupt(e.to_string()))?,
                    // Without the master key a sealed secret stays unknown; an object that
                    // needs it is unusable until login (see `usable_value`).
                    None => continue,
                }
            } else {
                Zeroizing::new(a.value)
            };
            obj.attrs.insert(a.ty, v);
        }
        // What the row says of itself must agree with the object, and nothing that must be
        // sealed may come in clear.
        if obj.class() != row.class || obj.is_private() != row.private {
            return Err(corrupt("its class or privacy columns disagree with its attributes".into()));
        }
        if let Some(ty) = obj.attrs.keys().find(|ty| obj.must_seal(**ty) && !sealed_types.contains(ty)) {
            return Err(corrupt(format!("attribute {ty:#x} is stored in clear")));
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

    /// Whether object `id`, found through the index, matches `template`: from the cache
    /// when it is there; else its row is checked against its MAC and only the attributes
    /// the template names are opened (a search stays cheap: the rest of the object is
    /// unsealed when it is used).
    fn found_matches(&self, cache: &Cache, id: u64, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<bool> {
        if let Some(o) = cache.objects.get(&id) {
            return Ok(o.matches(template));
        }
        let Some(row) = self.store.load(id)? else {
            return Ok(false);
        };
        let l = self.login.read();
        let (Some(auth), Some(mk)) = (&l.integrity, &l.mk) else {
            return Ok(false);
        };
        let refuse = |why: &str| {
            log::error!("token {}: object {id} is refused: {why}", self.serial);
            Ok(false)
        };
        if let Some(why) = self.refused.lock().get(&id) {
            return refuse(why);
        }
        let bytes = codec::object_row(&self.serial, row.id, &row.uid, row.class, row.private, row.gen, &row.attrs);
        if row.mac.is_empty() || !auth.verify(&bytes, &row.mac) {
            return refuse("it fails its integrity check (edited outside the module)");
        }
        let Ok(attrs) = codec::decode(&row.attrs) else {
            return refuse("its attribute list is corrupt");
        };
        for (ty, want) in template {
            if *ty == CKA_TOKEN {
                continue;
            }
            let Some(a) = attrs.iter().find(|a| a.ty == *ty).filter(|_| crate::object::searchable(row.class, *ty))
            else {
                return Ok(false);
            };
            let same = if a.sealed {
                match mk.open(&self.serial, &row.uid, a.ty, &a.value) {
                    Ok(v) => v.as_slice() == want.as_slice(),
                    Err(_) => return refuse("a sealed attribute fails its check"),
                }
            } else {
                a.value == *want
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The object `id` from an already synchronised cache, loading it if needed.
    fn cached_object(&self, cache: &mut Cache, id: u64) -> Result<Option<Arc<Object>>> {
        if let Some(o) = cache.objects.get(&id) {
            return Ok(Some(o.clone()));
        }
        let Some((stored, vouch)) = self.store.load_vouched(id)? else {
            return Ok(None);
        };
        // Any login that holds the master key may load a private object (the KMS layer
        // serves key administrators, the SO, through `object_any`); `object`, the PKCS#11
        // view, still hides private objects from all but the user.
        if stored.private && self.login.read().mk.is_none() {
            return Ok(None);
        }
        self.refuse_if_suspect()?;
        let vouched = self.vouched(&stored, &vouch);
        let obj = Arc::new(
            self.unseal(stored)
                .and_then(|o| vouched.map(|()| o))
                .inspect_err(|e| log::error!("token {}: {e}", self.serial))?,
        );
        cache.put(id, obj.clone());
        Ok(Some(obj))
    }

    /// With the key: whether the row is the one the token wrote last, as the MAC tree under
    /// the authenticated state says. A row put back while this process is logged in is
    /// refused here, when it is loaded, and not only at the next login.
    fn vouched(&self, row: &LoadedRow, v: &Vouch) -> Result<()> {
        let l = self.login.read();
        let (Some(auth), Some(st)) = (&l.integrity, &v.record.state) else {
            return Ok(());
        };
        let refuse = |why: &str| Err(Error::storage(format!("object {} is refused: {why}", row.id)));
        if !auth.verify(&codec::state_row(&v.record, st), &st.mac) {
            return refuse("the token state that vouches for it fails its integrity check");
        }
        match &st.tree {
            Some(root) if !tree::vouches(root, row.id, &v.path, &row.mac) => {
                refuse("it is not the row the token wrote last (put back from an older copy)")
            }
            _ => Ok(()),
        }
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
        Ok((
            StoredObject { id, uid, class: obj.class(), private: obj.is_private(), attrs, gen: 0, mac: Vec::new() },
            index,
        ))
    }

    /// Stores a new object; returns its handle. Token objects are durable on return, and
    /// need a login: their write renews the token's authenticated state.
    pub fn add_object(&self, obj: Object, owner: CK_SESSION_HANDLE) -> Result<u64> {
        self.add_object_as(obj, owner, self.user_logged_in())
    }

    /// `add_object`, for a caller that decided whether the session may hold private
    /// objects (`holder`: the SO may, for a KMS key made on the `kms` face).
    pub fn add_object_as(&self, mut obj: Object, owner: CK_SESSION_HANDLE, holder: bool) -> Result<u64> {
        if obj.is_private() && !holder {
            return Err(Error::UserNotLoggedIn);
        }
        obj.set(CKA_UNIQUE_ID, uuid::Uuid::new_v4().to_string().into_bytes());
        if !obj.is_token() {
            let h = self.next_session_object.fetch_add(1, Ordering::Relaxed);
            self.session_objects.write().insert(h, SessionObject { owner, obj: Arc::new(obj) });
            return Ok(h);
        }
        let (stored, index) = self.to_stored(&obj, 0)?;
        let ids = self.with_integrity(|auth| self.store.commit(vec![Change::Insert(stored, index)], auth))?;
        let id = *ids.first().ok_or_else(|| Error::general("insert returned no id"))?;
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
        self.with_integrity(|auth| self.store.commit(vec![Change::Update(stored, index)], auth))?;
        self.cache.lock().put(handle, Arc::new(obj));
        Ok(())
    }

    pub fn remove_object(&self, handle: u64) -> Result<()> {
        if handle >= SESSION_OBJECT_BASE {
            return self.session_objects.write().remove(&handle).map(|_| ()).ok_or(Error::ObjectHandleInvalid);
        }
        self.cache.lock().objects.remove(&handle);
        self.with_integrity(|auth| self.store.commit(vec![Change::Delete(handle)], auth))?;
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
        let ids = self.with_integrity(|auth| self.store.commit(changes, auth))?;
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

    /// Keys pending deletion whose date has come: (handle, key id). Each object is loaded
    /// and checked as any other, so that a date edited in the file purges nothing.
    pub fn due_for_purge(&self, now: i64) -> Result<Vec<(u64, String)>> {
        let state = ck_ulong(crate::vendor::KMSTOKEN_STATE_PENDING_DELETION);
        let cond = vec![(CKA_KMSTOKEN_KEY_STATE, vec![index_hash(None, CKA_KMSTOKEN_KEY_STATE, &state)])];
        let mut due = Vec::new();
        for id in self.store.find(&cond, true, &[])? {
            let Ok(Some(obj)) = self.token_object(id) else {
                continue;
            };
            let date = obj.ulong(crate::vendor::CKA_KMSTOKEN_DELETION_DATE).unwrap_or(0);
            let pending = obj.ulong(CKA_KMSTOKEN_KEY_STATE) == Some(crate::vendor::KMSTOKEN_STATE_PENDING_DELETION);
            let key_id = obj.get_raw(CKA_KMSTOKEN_KEY_ID).map(|v| String::from_utf8_lossy(v).into_owned());
            if let (true, true, Some(k)) = (pending, date as i64 <= now, key_id) {
                due.push((id, k));
            }
        }
        Ok(due)
    }

    /// Deletes every object of a KMS key, its public half included, with its aliases and
    /// tags, in one transaction (under a login: see `add_object`). Returns how many
    /// objects went.
    pub fn purge(&self, key_id: &str) -> Result<usize> {
        let handles = self.objects_of_key(key_id)?;
        let n = self.with_integrity(|auth| self.store.purge_key(&handles, key_id, auth))?;
        let mut cache = self.cache.lock();
        handles.iter().for_each(|h| {
            cache.objects.remove(h);
        });
        Ok(n)
    }

    // ---- aliases and tags, each row checked against its MAC when read ----

    /// Whether a row's MAC is right; without a login nothing can be checked (and nothing
    /// of the KMS layer runs without one).
    fn row_ok(&self, what: &str, bytes: &[u8], mac: &[u8]) -> bool {
        let l = self.login.read();
        let ok = l.integrity.as_ref().is_none_or(|auth| auth.verify(bytes, mac));
        if !ok {
            log::error!("token {}: {what} is refused: it fails its integrity check", self.serial);
        }
        ok
    }

    /// The aliases whose rows are intact, by name.
    pub fn aliases(&self) -> Result<Vec<Alias>> {
        let all = self.store.aliases()?;
        Ok(all
            .into_iter()
            .filter(|a| self.row_ok(&format!("alias {}", a.name), &codec::alias_row(&self.serial, a), &a.mac))
            .collect())
    }

    pub fn put_alias(&self, name: &str, key_id: &str, replace: bool, now: i64) -> Result<bool> {
        self.with_integrity(|auth| self.store.put_alias(name, key_id, replace, now, auth))
    }

    pub fn delete_alias(&self, name: &str) -> Result<bool> {
        self.with_integrity(|auth| self.store.delete_alias(name, auth))
    }

    /// A key's tags whose rows are intact: (key, value), by key.
    pub fn tags(&self, key_id: &str) -> Result<Vec<(String, String)>> {
        let all: Vec<Tag> = self.store.tags(key_id)?;
        Ok(all
            .into_iter()
            .filter(|t| self.row_ok(&format!("tag {} of {key_id}", t.key), &codec::tag_row(&self.serial, t), &t.mac))
            .map(|t| (t.key, t.value))
            .collect())
    }

    pub fn change_tags(&self, key_id: &str, set: &[(String, String)], remove: &[String], max: usize) -> Result<bool> {
        self.with_integrity(|auth| self.store.change_tags(key_id, set, remove, max, auth))
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

    /// Anchors the audit trail's segments in the database now (a write under the key);
    /// without a login there is no key, and the next write under it anchors them. A
    /// failure costs only the anchor: it is logged.
    pub fn anchor_trail(&self) {
        if self.suspect.lock().is_some() {
            return;
        }
        let l = self.login.read();
        if let Some(auth) = &l.integrity {
            if let Err(e) = self.store.anchor_trail(auth) {
                log::warn!("token {}: audit trail not anchored: {e}", self.serial);
            }
        }
    }

    /// Compares the database's anchors with the segments there are, without the key (the
    /// anchors' MACs and the records' links wait for `audit verify`): a segment gone, or
    /// shorter than anchored, is logged and recorded as a failed IntegrityCheck.
    fn check_trail_at_open(&self) {
        let anchors = match self.store.trail_anchors(None) {
            Ok(a) => a,
            Err(e) => return log::warn!("token {}: audit anchors unreadable: {e}", self.serial),
        };
        let mut problems = Vec::new();
        for (h, _) in anchors {
            match std::fs::metadata(self.audit.dir().join(&h.segment)) {
                Err(_) => problems.push(format!("segment {} (anchored at {} records) is gone", h.segment, h.records)),
                Ok(m) if m.len() < h.bytes => problems.push(format!(
                    "segment {} is shorter ({} bytes) than anchored ({} bytes): records were cut off or an older \
                     copy was put back",
                    h.segment,
                    m.len(),
                    h.bytes
                )),
                Ok(_) => {}
            }
        }
        if !problems.is_empty() {
            let what = problems.join("; ");
            log::error!("token {}: audit trail: {what}", self.serial);
            if let Err(e) = self.audit_integrity(Some(format!("audit trail: {what}")), None) {
                log::error!("token {}: the finding was not recorded: {e}", self.serial);
            }
        }
    }

    /// The anchored heads of the audit trail, each with whether its MAC holds; needs a login.
    pub fn trail_anchors(&self) -> Result<Vec<(crate::store::TrailHead, bool)>> {
        self.with_key(|auth| self.store.trail_anchors(Some(auth)))
    }

    /// The audit key of the current login.
    pub fn audit_key(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.purpose_key(AUDIT_PURPOSE)
    }

    /// The database's generation and the anchor's.
    pub fn generations(&self) -> Result<(u64, Option<u64>)> {
        Ok((self.store.record()?.generation, self.store.anchor()?))
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Session objects die with their session.
    pub fn drop_session_objects(&self, owner: CK_SESSION_HANDLE) {
        self.session_objects.write().retain(|_, s| s.owner != owner);
    }

    /// Handles of the objects matching `template`, token objects through the index. With
    /// a login every object found is loaded (checked against its MAC) and matched against
    /// the whole template, so that an index row edited in the file yields no other object;
    /// an object that fails its check is left out (and logged), the others are found.
    pub fn find(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<Vec<u64>> {
        let user = self.user_logged_in();
        let (key, checked) = {
            let l = self.login.read();
            (l.index_key.clone(), l.integrity.is_some())
        };
        let mut conditions: Vec<(u64, Vec<Vec<u8>>)> = template
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
        // The store drives a search by its first condition: the most selective one.
        conditions.sort_by_key(|(ty, _)| !matches!(*ty, CKA_LABEL | CKA_ID | CKA_KMSTOKEN_KEY_ID));
        let wants_token = template.iter().find(|(ty, _)| *ty == CKA_TOKEN).map(|(_, v)| v.first() == Some(&1));
        let mut out = Vec::new();
        if wants_token != Some(false) {
            if checked {
                self.refuse_if_suspect()?;
            }
            // Keys pending deletion are hidden unless the template asks for their state.
            let asks_state = template.iter().any(|(ty, _)| *ty == CKA_KMSTOKEN_KEY_STATE);
            let exclude = if asks_state { Vec::new() } else { vec![pending_deletion_entry()] };
            let ids = self.store.find(&conditions, user, &exclude)?;
            // Before login nothing can be checked, and when the index decides every
            // condition the objects need not be loaded: a public search stays
            // proportional to what it finds.
            if !checked && template.iter().all(|(ty, _)| INDEXED.contains(ty) || *ty == CKA_TOKEN) {
                out = ids;
            } else {
                let mut cache = self.cache.lock();
                self.sync(&mut cache)?;
                for id in ids {
                    // A refused object is logged where it is checked.
                    if self.found_matches(&cache, id, template).unwrap_or(false) {
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
