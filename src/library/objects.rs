//! Objects: who may create or change them, C_CreateObject, C_CopyObject, C_DestroyObject,
//! attributes (read through the gate for KMS keys) and searches.

use super::*;

impl Library {
    // ---- objects ----

    /// Whether session `h` may hold private objects: the user's login; on the `kms` face
    /// the SO's too (key administrators create KMS keys, as in AWS). On the PKCS#11 face
    /// private objects are the user's, as the specification has it.
    pub(super) fn holds_private(&self, token: &Token, h: CK_SESSION_HANDLE) -> bool {
        match token.logged_in() {
            Some(Role::User) => true,
            Some(Role::So) => self.face(h) == Face::Kms,
            _ => false,
        }
    }

    /// Checks that a session may create or change `obj`.
    pub(super) fn check_writable(&self, token: &Token, h: CK_SESSION_HANDLE, rw: bool, obj: &Object) -> Result<()> {
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
    pub(super) fn check_template_writable(
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
    pub(super) fn store_new(
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
    pub(super) fn store_new_kms(
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
    /// kms:DescribeKey. A secret value read out of a KMS key (an extractable key's
    /// CKA_VALUE) is the key leaving the token, which only an Enabled key may
    /// (kms:ReplicateKey, as C_WrapKey and C_CopyObject): when the gate refuses it, the
    /// object comes back with `withheld` set, and its secret values read as sensitive
    /// (CKR_ATTRIBUTE_SENSITIVE for those attributes, the others as usual).
    pub fn object(&self, h: CK_SESSION_HANDLE, handle: u64, types: &[CK_ATTRIBUTE_TYPE]) -> Result<Readable> {
        let (token, _) = self.token_of(h)?;
        let obj = kms::import::expire_if_due(&token, handle, token.object(handle)?)?;
        let face = self.face(h);
        self.permit_read(&token, face, &obj)?;
        let mut withheld = false;
        if kms::is_kms_key(&obj) && types.iter().any(|ty| obj.is_secret_value(*ty)) {
            match Self::touch(&token, face, &obj, Action::ReplicateKey) {
                Ok(()) => {}
                Err(Error::Kms(..)) => withheld = true,
                Err(e) => return Err(e),
            }
        }
        Ok(Readable { obj, withheld })
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
    pub(super) fn face(&self, h: CK_SESSION_HANDLE) -> Face {
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
}

/// An object as C_GetAttributeValue may read it.
pub struct Readable {
    pub obj: Arc<Object>,
    /// The gate refused to let the key's secret values out (kms:ReplicateKey).
    pub withheld: bool,
}

impl Readable {
    /// The value of attribute `ty` as the caller may see it.
    pub fn read(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
        if self.withheld && self.obj.is_secret_value(ty) {
            return Err(Error::AttributeSensitive);
        }
        self.obj.read(ty)
    }
}
