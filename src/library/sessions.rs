//! Sessions and logins: C_OpenSession and C_CloseSession, C_Login for the SO, the user
//! and named users (C_LoginUser), PINs, and the named users the SO manages.

use super::*;

impl Library {
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

    pub(super) fn token_of(&self, h: CK_SESSION_HANDLE) -> Result<(Arc<Token>, bool)> {
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
        token.audit.append(&kms::audit::Event {
            name: "Login",
            principal: &who,
            error: r.as_ref().err().map(|e| (crate::error::AwsError::AccessDenied, format!("{e:?}"))),
            details: Some(serde_json::json!({ "contextSpecific": true })),
            ..Default::default()
        })?;
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
    pub(super) fn logged_in(token: &Token, role: Role, who: &str, r: Result<()>) -> Result<()> {
        let failure = r.as_ref().err().map(|e| (crate::error::AwsError::AccessDenied, format!("{e:?}")));
        token.audit.append(&kms::audit::Event {
            name: "Login",
            principal: who,
            error: failure,
            ..Default::default()
        })?;
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

    /// The named users (name, failed logins, created), for the SO.
    pub fn named_users(&self, h: CK_SESSION_HANDLE) -> Result<Vec<(String, u32, i64)>> {
        let (token, _) = self.token_of(h)?;
        if token.logged_in() != Some(Role::So) {
            return Err(Error::UserNotLoggedIn);
        }
        token.named_users()
    }

    /// The SO's check of every stored row (`kmstoken verify-keystore`).
    pub fn verify_keystore(&self, h: CK_SESSION_HANDLE, accept: bool) -> Result<serde_json::Value> {
        self.token_of(h)?.0.verify_keystore(accept)
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
        token.audit.append(&kms::audit::Event {
            name: event,
            principal: &kms::principal(token),
            error,
            details: Some(serde_json::json!({ "userName": format!("user/{name}") })),
            ..Default::default()
        })
    }
}
