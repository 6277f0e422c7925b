//! Cryptographic operations: the key of every C_*Init passes the gate (`key_for`), then
//! the mechanism's unit runs in the session (encrypt, decrypt, sign, verify, digest,
//! message-based encryption, random).

use super::*;

impl Library {
    // ---- cryptography ----

    /// Resolves a key for a mechanism and passes the KMS gate; the common start of every
    /// *Init function. `ctx`: the encryption context of a KMS mechanism, for the key
    /// policy; `operation`: the KMS action a use is done for when it is not the use's own
    /// (AWS asks kms:GenerateDataKey, not kms:Encrypt, of generate-data-key).
    pub(super) fn key_for(
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
        let request = gate::Request::use_of(&obj, action, session.face, (what, unit), ctx);
        gate::check(&session.token, &request)?;
        Ok(obj)
    }

    /// The encryption context a mechanism carries (the KMS mechanisms'; none for others).
    pub(super) fn mech_context(mech: &Mechanism) -> Result<kms::blob::Context> {
        match mech.ty {
            crate::vendor::CKM_KMSTOKEN_ENCRYPT | crate::vendor::CKM_KMSTOKEN_DECRYPT => {
                crate::mech::kms::context(&mech.param)
            }
            _ => Ok(kms::blob::Context::new()),
        }
    }

    /// The gate for a call that touches a key without a mechanism (reading, changing,
    /// copying, destroying): the policy, the state table and the audit of `action`.
    pub(super) fn touch(token: &Token, face: Face, obj: &Object, action: Action) -> Result<()> {
        gate::check(token, &gate::Request::touch(obj, action, face))
    }

    /// The earlier versions of a rotated KMS key, newest first, for a mechanism that can
    /// tell them apart (decryption that checks integrity, MAC verification).
    pub(super) fn older_versions(session: &Session, obj: &Object, can_tell: bool) -> Result<Vec<Arc<Object>>> {
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
    pub(super) fn secret<'a>(token: &Token, obj: &'a Object) -> Result<Key<'a>> {
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
        // A single-part mechanism's operation ends here (PKCS#11 3.2 names none of its own).
        update_step(
            &mut s.sign,
            |op| if op.single_part() { Err(Error::OperationNotInitialized) } else { op.update(data) },
        )
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
        s.verify_signature = None;
        Ok(())
    }

    /// C_VerifySignatureInit (PKCS#11 3.2): a verification whose signature is given first.
    pub fn verify_signature_init(&self, h: CK_SESSION_HANDLE, mech: &Mechanism, key: u64, sig: &[u8]) -> Result<()> {
        self.verify_init(h, mech, key)?;
        self.session(h)?.lock().verify_signature = Some(sig.to_vec());
        Ok(())
    }

    /// The signature of the verification C_VerifySignatureInit began.
    fn given_signature(&self, h: CK_SESSION_HANDLE) -> Result<Vec<u8>> {
        let s = self.session(h)?;
        let s = s.lock();
        match (&s.verify, &s.verify_signature) {
            (Some(_), Some(sig)) => Ok(sig.clone()),
            // A verification begun by C_VerifyInit is not one of these.
            (Some(_), None) => Err(Error::OperationActive),
            (None, _) => Err(Error::OperationNotInitialized),
        }
    }

    /// C_VerifySignature (`data` Some) or C_VerifySignatureFinal (None). Ends the operation.
    pub fn verify_signature(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>) -> Result<()> {
        let sig = self.given_signature(h)?;
        self.verify(h, data, &sig)
    }

    pub fn verify_signature_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.given_signature(h)?;
        self.verify_update(h, data)
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
        update_step(
            &mut s.verify,
            |op| if op.single_part() { Err(Error::OperationNotInitialized) } else { op.update(data) },
        )
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
