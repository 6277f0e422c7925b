//! Keys made by the token: generation of keys and pairs (with their KMS life for token
//! keys), derivation, wrapping and unwrapping.

use super::*;

impl Library {
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
    pub(super) fn store_pair(
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
        self.derive_keys(h, mech, base, template).map(|keys| keys[0])
    }

    /// C_DeriveKey, with the additional keys an SP 800-108 derivation makes: the handles
    /// of the main key and then of each additional key, in the order of their templates.
    pub fn derive_keys(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        base: u64,
        template: &[Attribute],
    ) -> Result<Vec<u64>> {
        let (token, rw) = self.token_of(h)?;
        let extra: &[Vec<Attribute>] = match &mech.param {
            crate::mech::Param::Kbkdf(p) => &p.additional,
            _ => &[],
        };
        let templates: Vec<&[Attribute]> = std::iter::once(template).chain(extra.iter().map(Vec::as_slice)).collect();
        for t in &templates {
            self.check_template_writable(&token, h, rw, t, Some(CKO_SECRET_KEY))?;
        }
        let unit = self.registry.lookup(mech.ty)?;
        let lens = templates
            .iter()
            .map(|t| {
                template_ulong(t, CKA_VALUE_LEN)?
                    .map(|l| usize::try_from(l).map_err(|_| Error::AttributeValueInvalid))
                    .transpose()
            })
            .collect::<Result<Vec<Option<usize>>>>()?;
        let (secrets, secrecy) = {
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
            let base_key = Self::secret(&s.token, &bk)?;
            let secrets = match param {
                crate::mech::Param::Kbkdf(p) => {
                    // Every key's length must be known before the PRF runs (it is input).
                    let lens = templates
                        .iter()
                        .zip(&lens)
                        .map(|(t, l)| l.or_else(|| default_len(derived_type(t))).ok_or(Error::TemplateIncomplete))
                        .collect::<Result<Vec<usize>>>()?;
                    if lens.iter().any(|l| *l == 0 || *l > 512) {
                        return Err(Error::TemplateInconsistent);
                    }
                    crate::mech::kbkdf::derive(&base_key, p, &lens)?
                }
                p => vec![unit.derive(&base_key, p, lens[0])?],
            };
            (secrets, secrecy)
        };
        let mut made = Vec::with_capacity(secrets.len());
        for ((t, secret), len) in templates.iter().zip(&secrets).zip(&lens) {
            let key_type = derived_type(t);
            let len = len.unwrap_or(match key_type {
                CKK_AES => 32.min(secret.len()),
                _ => secret.len(),
            });
            let stored = if len == 0 || len > secret.len() {
                Err(Error::TemplateInconsistent)
            } else {
                self.store_derived(&token, rw, h, t, key_type, secret[..len].to_vec(), secrecy, unit)
            };
            match stored {
                Ok(handle) => made.push(handle),
                Err(e) => {
                    // All or none: the keys made before this one go.
                    for handle in made {
                        let _ = token.remove_object(handle);
                    }
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// C_EncapsulateKey (PKCS#11 3.2): a shared secret made under the public key `public`
    /// and stored as a new secret key of `template`. Returns the ciphertext's length and,
    /// when `out` is given (and long enough), the key's handle with the ciphertext in
    /// `out`; a length query makes no key.
    pub fn encapsulate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        public: u64,
        template: &[Attribute],
        out: Option<&mut [u8]>,
    ) -> Result<(usize, Option<u64>)> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, template, Some(CKO_SECRET_KEY))?;
        let unit = self.registry.lookup(mech.ty)?;
        let (len, secret, secrecy) = {
            let s = self.session(h)?;
            let s = s.lock();
            let pk = Self::key_for(&s, public, KeyUse::Encapsulate, unit, &kms::blob::Context::new(), None)?;
            let key = Self::secret(&s.token, &pk)?;
            let need = unit.ciphertext_len(&key)?;
            let Some(out) = out else { return Ok((need, None)) };
            if out.len() < need {
                return Err(Error::BufferTooSmall(need));
            }
            let (ct, secret) = unit.encapsulate(&key, &mech.param)?;
            out[..ct.len()].copy_from_slice(&ct);
            (ct.len(), secret, Secrecy::of(&pk))
        };
        let handle = self.store_shared(&token, rw, h, template, &secret, secrecy, unit)?;
        Ok((len, Some(handle)))
    }

    /// C_DecapsulateKey (PKCS#11 3.2): the shared secret in `ciphertext` under the private
    /// key `private`, stored as a new secret key of `template`.
    pub fn decapsulate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        private: u64,
        template: &[Attribute],
        ciphertext: &[u8],
    ) -> Result<u64> {
        let (token, rw) = self.token_of(h)?;
        self.check_template_writable(&token, h, rw, template, Some(CKO_SECRET_KEY))?;
        let unit = self.registry.lookup(mech.ty)?;
        let (secret, secrecy) = {
            let s = self.session(h)?;
            let s = s.lock();
            let sk = Self::key_for(&s, private, KeyUse::Decapsulate, unit, &kms::blob::Context::new(), None)?;
            let secret = unit.decapsulate(&Self::secret(&s.token, &sk)?, &mech.param, ciphertext)?;
            (secret, Secrecy::of(&sk))
        };
        self.store_shared(&token, rw, h, template, &secret, secrecy, unit)
    }

    /// A KEM's shared secret stored as a secret key of `template`: cut to its CKA_VALUE_LEN,
    /// or AES-256 for an AES key, or whole.
    #[allow(clippy::too_many_arguments)]
    fn store_shared(
        &self,
        token: &Token,
        rw: bool,
        h: CK_SESSION_HANDLE,
        template: &[Attribute],
        secret: &[u8],
        secrecy: Secrecy,
        unit: &dyn crate::mech::Unit,
    ) -> Result<u64> {
        let key_type = derived_type(template);
        let len = match template_ulong(template, CKA_VALUE_LEN)? {
            Some(l) => usize::try_from(l).map_err(|_| Error::AttributeValueInvalid)?,
            None => default_len(key_type).unwrap_or(secret.len()),
        };
        if len == 0 || len > secret.len() {
            return Err(Error::TemplateInconsistent);
        }
        self.store_derived(token, rw, h, template, key_type, secret[..len].to_vec(), secrecy, unit)
    }

    /// One derived key stored: its template, the value, the base's secrecy imposed when the
    /// mechanism derives from the base's value, and the capabilities not named FALSE when
    /// the mechanism asks it.
    #[allow(clippy::too_many_arguments)]
    fn store_derived(
        &self,
        token: &Token,
        rw: bool,
        h: CK_SESSION_HANDLE,
        template: &[Attribute],
        key_type: CK_KEY_TYPE,
        value: Vec<u8>,
        secrecy: Secrecy,
        unit: &dyn crate::mech::Unit,
    ) -> Result<u64> {
        let mut rest: Vec<Attribute> = template.iter().filter(|(t, _)| *t != CKA_VALUE_LEN).cloned().collect();
        if unit.inherits_secrecy() {
            secrecy.impose(&mut rest);
        }
        if unit.names_capabilities() {
            for ty in [CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE] {
                if !rest.iter().any(|(a, _)| *a == ty) {
                    rest.push((ty, crate::object::ck_bool(false)));
                }
            }
        }
        let extra = vec![(CKA_CLASS, ck_ulong(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ck_ulong(key_type)), (CKA_VALUE, value)];
        let origin =
            Origin::Derive { always_sensitive: secrecy.always_sensitive, never_extractable: secrecy.never_extractable };
        let obj = Object::build(&rest, origin, &extra, token.logged_in() == Some(Role::So))?;
        self.store_new(token, rw, h, obj, template)
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
}

/// The key type a derivation's template asks for (a generic secret when it names none).
fn derived_type(template: &[Attribute]) -> CK_KEY_TYPE {
    template_ulong(template, CKA_KEY_TYPE).ok().flatten().unwrap_or(CKK_GENERIC_SECRET)
}

/// The length of a derived key whose template gives none: AES-256 for AES; none for the
/// rest (the template must say).
fn default_len(key_type: CK_KEY_TYPE) -> Option<usize> {
    (key_type == CKK_AES).then_some(32)
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
