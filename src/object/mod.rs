//! Objects as typed attribute sets, and the rules of creating, copying, reading and
//! changing them (section 4 of the base specification).

pub mod attr;
pub mod cert;

use crate::error::{Error, Result};
use attr::{rule, rule::*, Kind};
use cryptoki_sys::*;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// An attribute template as the caller gave it (type, value).
pub type Template = [(CK_ATTRIBUTE_TYPE, Vec<u8>)];

/// Attribute values in their PKCS#11 encoding; zeroised on drop because some are secret.
pub type Attrs = BTreeMap<CK_ATTRIBUTE_TYPE, Zeroizing<Vec<u8>>>;

#[derive(Default)]
pub struct Object {
    pub attrs: Attrs,
    /// Something costly derived from the attributes (a parsed key), made on first use and
    /// kept as long as the object is cached; a changed or copied object starts without.
    prepared: OnceLock<Arc<dyn Any + Send + Sync>>,
    /// The same for the KMS layer (a parsed key policy), apart from `prepared` because
    /// one asymmetric key needs both.
    kms_prepared: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Clone for Object {
    fn clone(&self) -> Self {
        Object { attrs: self.attrs.clone(), prepared: OnceLock::new(), kms_prepared: OnceLock::new() }
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Attribute values may be secret: show only which attributes there are.
        f.debug_struct("Object").field("attributes", &self.attrs.keys().collect::<Vec<_>>()).finish()
    }
}

/// How an object comes into being; decides which attributes the template may hold and
/// what the token sets (CKA_LOCAL, CKA_KEY_GEN_MECHANISM, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Create,
    Generate(CK_MECHANISM_TYPE),
    Unwrap,
    /// C_DeriveKey, with what the base key (both, for a concatenation) has always been:
    /// the new key is always sensitive (never extractable) only if its base was.
    Derive {
        always_sensitive: bool,
        never_extractable: bool,
    },
}

/// Whether a search may compare attribute `ty` of objects of `class`: never a secret
/// value, which a search would otherwise probe.
pub fn searchable(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE) -> bool {
    rule(class, ty).is_none_or(|r| r.flags & (SENSITIVE | NEVER_READ) == 0)
}

/// Whether keys of `key_type` come in pairs (public and private).
pub fn is_asymmetric(key_type: CK_KEY_TYPE) -> bool {
    matches!(key_type, CKK_RSA | CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY | CKK_ML_DSA | CKK_ML_KEM)
}

pub fn ck_bool(b: bool) -> Vec<u8> {
    vec![b as u8]
}

pub fn ck_ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn as_ulong(v: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(v.try_into().ok()?))
}

/// Key types this token stores, with the lengths their values may have.
pub(crate) fn secret_len_ok(key_type: CK_KEY_TYPE, len: usize) -> Result<()> {
    let ok = match key_type {
        CKK_AES => matches!(len, 16 | 24 | 32),
        CKK_GENERIC_SECRET | CKK_SHA_1_HMAC | CKK_SHA224_HMAC | CKK_SHA256_HMAC | CKK_SHA384_HMAC | CKK_SHA512_HMAC => {
            (1..=512).contains(&len)
        }
        _ => return Err(Error::AttributeValueInvalid),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

impl Object {
    /// The value `make` derives from this object (e.g. a parsed private key), computed
    /// once per cached object.
    pub fn prepared<T: Any + Send + Sync>(&self, make: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        if let Some(p) = self.prepared.get() {
            if let Ok(t) = p.clone().downcast::<T>() {
                return Ok(t);
            }
        }
        let t = Arc::new(make()?);
        let _ = self.prepared.set(t.clone());
        Ok(t)
    }

    /// `prepared` for the KMS layer (see the field).
    pub fn kms_prepared<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(t) = self.kms_prepared.get().and_then(|p| p.clone().downcast::<T>().ok()) {
            return t;
        }
        let t = Arc::new(make());
        let _ = self.kms_prepared.set(t.clone());
        t
    }

    pub fn get_raw(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.attrs.get(&ty).map(|v| v.as_slice())
    }

    pub fn bool(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.get_raw(ty).is_some_and(|v| v.first() == Some(&1))
    }

    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get_raw(ty).and_then(as_ulong)
    }

    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.ulong(CKA_KEY_TYPE)
    }

    pub fn is_token(&self) -> bool {
        self.bool(CKA_TOKEN)
    }

    pub fn is_private(&self) -> bool {
        self.bool(CKA_PRIVATE)
    }

    pub fn set(&mut self, ty: CK_ATTRIBUTE_TYPE, v: Vec<u8>) {
        self.attrs.insert(ty, Zeroizing::new(v));
    }

    /// Mechanisms this key may be used with; None when unrestricted.
    pub fn allowed_mechanisms(&self) -> Option<Vec<CK_MECHANISM_TYPE>> {
        let raw = self.get_raw(CKA_ALLOWED_MECHANISMS).filter(|v| !v.is_empty())?;
        Some(raw.chunks_exact(8).filter_map(as_ulong).collect())
    }

    /// Whether the key's value (and other SENSITIVE attributes) must stay inside.
    fn hides_secrets(&self) -> bool {
        self.bool(CKA_SENSITIVE) || !self.bool(CKA_EXTRACTABLE)
    }

    /// Whether `ty` is one of the object's secret values (CKA_VALUE of a secret key, the
    /// private parts of a private key): what leaves the token when it is read.
    pub fn is_secret_value(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        rule(self.class(), ty).is_some_and(|r| r.flags & SENSITIVE != 0)
    }

    /// C_GetAttributeValue for one attribute: the value, or why it cannot be read.
    pub fn read(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
        let r = rule(self.class(), ty).ok_or(Error::AttributeTypeInvalid)?;
        if (r.flags & SENSITIVE != 0 && self.hides_secrets()) || r.flags & NEVER_READ != 0 {
            return Err(Error::AttributeSensitive);
        }
        self.get_raw(ty).ok_or(Error::AttributeTypeInvalid)
    }

    /// Whether every attribute of `template` is present with the same value.
    pub fn matches(&self, template: &Template) -> bool {
        template.iter().all(|(ty, v)| match self.get_raw(*ty) {
            Some(have) => searchable(self.class(), *ty) && have == v.as_slice(),
            None => false,
        })
    }

    /// Builds a new object from a template (C_CreateObject, C_GenerateKey, C_UnwrapKey).
    /// `extra` holds what the token supplies: the key value and class of generated or
    /// unwrapped keys. Derived attributes are filled in; CKA_UNIQUE_ID is set by the token
    /// when it stores the object.
    pub fn build(template: &Template, origin: Origin, extra: &Template, is_so: bool) -> Result<Object> {
        let mut obj = Object::default();
        let class = template
            .iter()
            .chain(extra.iter())
            .find(|(t, _)| *t == CKA_CLASS)
            .map(|(_, v)| as_ulong(v).ok_or(Error::AttributeValueInvalid))
            .transpose()?
            .ok_or(Error::TemplateIncomplete)?;
        if !attr::class_supported(class) {
            return Err(Error::AttributeValueInvalid);
        }
        for (ty, v) in template {
            let r = rule(class, *ty).ok_or(Error::AttributeTypeInvalid)?;
            if !attr::well_formed(r.kind, v) {
                return Err(Error::AttributeValueInvalid);
            }
            if r.flags & READ_ONLY != 0 {
                return Err(Error::AttributeReadOnly);
            }
            if r.flags & NOT_ON_CREATE != 0 && origin == Origin::Create {
                return Err(Error::TemplateInconsistent);
            }
            if r.flags & SO_ONLY_TRUE != 0 && v.first() == Some(&1) && !is_so {
                return Err(Error::AttributeReadOnly);
            }
            if class == CKO_SECRET_KEY && *ty == CKA_VALUE && origin != Origin::Create {
                return Err(Error::TemplateInconsistent);
            }
            if let Some(prev) = obj.attrs.get(ty) {
                if prev.as_slice() != v.as_slice() {
                    return Err(Error::TemplateInconsistent);
                }
            }
            obj.set(*ty, v.clone());
        }
        // What the token supplies wins over the template (a normalised CKA_EC_PARAMS, the
        // key material), but the template may not ask for another class or key type.
        for (ty, v) in extra {
            if let Some(prev) = obj.attrs.get(ty) {
                if matches!(*ty, CKA_CLASS | CKA_KEY_TYPE) && prev.as_slice() != v.as_slice() {
                    return Err(Error::TemplateInconsistent);
                }
            }
            obj.set(*ty, v.clone());
        }
        if origin == Origin::Create {
            for r in attr::RULES.iter().filter(|r| r.flags & REQUIRED_ON_CREATE != 0) {
                // The rule of this class decides: CKA_VALUE is required of a certificate,
                // not of an RSA private key or a data object.
                let required = rule(class, r.ty).is_some_and(|own| own.flags & REQUIRED_ON_CREATE != 0);
                if required && !obj.attrs.contains_key(&r.ty) {
                    return Err(Error::TemplateIncomplete);
                }
            }
        }
        obj.apply_defaults(class, origin);
        match class {
            CKO_SECRET_KEY => obj.derive_key_attributes(origin)?,
            CKO_PUBLIC_KEY | CKO_PRIVATE_KEY => obj.derive_asymmetric_attributes(origin)?,
            CKO_CERTIFICATE if obj.ulong(CKA_CERTIFICATE_TYPE) != Some(CKC_X_509) => {
                return Err(Error::AttributeValueInvalid)
            }
            CKO_CERTIFICATE => cert::fill_x509(&mut obj)?,
            _ => {}
        }
        Ok(obj)
    }

    fn apply_defaults(&mut self, class: CK_OBJECT_CLASS, origin: Origin) {
        let kem = self.key_type() == Some(CKK_ML_KEM);
        let mut def = |ty, v: Vec<u8>| {
            self.attrs.entry(ty).or_insert_with(|| Zeroizing::new(v));
        };
        def(CKA_TOKEN, ck_bool(false));
        // Keys are private unless asked otherwise; data objects are public, as in SoftHSM2.
        def(CKA_PRIVATE, ck_bool(matches!(class, CKO_SECRET_KEY | CKO_PRIVATE_KEY)));
        def(CKA_MODIFIABLE, ck_bool(true));
        def(CKA_COPYABLE, ck_bool(true));
        def(CKA_DESTROYABLE, ck_bool(true));
        def(CKA_LABEL, Vec::new());
        match class {
            CKO_DATA => {
                def(CKA_APPLICATION, Vec::new());
                def(CKA_OBJECT_ID, Vec::new());
                def(CKA_VALUE, Vec::new());
            }
            CKO_SECRET_KEY => {
                def(CKA_ID, Vec::new());
                def(CKA_START_DATE, Vec::new());
                def(CKA_END_DATE, Vec::new());
                def(CKA_DERIVE, ck_bool(false));
                def(CKA_ALLOWED_MECHANISMS, Vec::new());
                for ty in [CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, CKA_WRAP, CKA_UNWRAP] {
                    def(ty, ck_bool(true));
                }
                // A value the caller hands in (C_CreateObject) is no secret from the caller:
                // readable, as the specification's CKA_SENSITIVE default (CK_FALSE) and the
                // peers' suites expect. A key the token makes stays inside unless the
                // template says otherwise.
                let imported = origin == Origin::Create;
                def(CKA_SENSITIVE, ck_bool(!imported));
                def(CKA_EXTRACTABLE, ck_bool(imported));
                def(CKA_WRAP_WITH_TRUSTED, ck_bool(false));
                def(CKA_TRUSTED, ck_bool(false));
                def(CKA_ALWAYS_AUTHENTICATE, ck_bool(false));
            }
            CKO_PUBLIC_KEY | CKO_PRIVATE_KEY => {
                def(CKA_ID, Vec::new());
                def(CKA_START_DATE, Vec::new());
                def(CKA_END_DATE, Vec::new());
                def(CKA_DERIVE, ck_bool(false));
                def(CKA_ALLOWED_MECHANISMS, Vec::new());
                def(CKA_SUBJECT, Vec::new());
                let public = class == CKO_PUBLIC_KEY;
                let caps: &[CK_ATTRIBUTE_TYPE] =
                    if public { &[CKA_ENCRYPT, CKA_VERIFY, CKA_WRAP] } else { &[CKA_DECRYPT, CKA_SIGN, CKA_UNWRAP] };
                for ty in caps {
                    def(*ty, ck_bool(true));
                }
                // A KEM key (PKCS#11 3.2) encapsulates and decapsulates unless told not to.
                if kem {
                    def(if public { CKA_ENCAPSULATE } else { CKA_DECAPSULATE }, ck_bool(true));
                }
                if public {
                    def(CKA_VERIFY_RECOVER, ck_bool(false));
                    def(CKA_TRUSTED, ck_bool(false));
                } else {
                    def(CKA_SIGN_RECOVER, ck_bool(false));
                    def(CKA_SENSITIVE, ck_bool(true));
                    def(CKA_EXTRACTABLE, ck_bool(false));
                    def(CKA_WRAP_WITH_TRUSTED, ck_bool(false));
                    def(CKA_ALWAYS_AUTHENTICATE, ck_bool(false));
                }
            }
            CKO_CERTIFICATE => {
                def(CKA_TRUSTED, ck_bool(false));
                def(CKA_CERTIFICATE_CATEGORY, ck_ulong(0));
                def(CKA_ID, Vec::new());
                def(CKA_ISSUER, Vec::new());
                def(CKA_SERIAL_NUMBER, Vec::new());
                def(CKA_START_DATE, Vec::new());
                def(CKA_END_DATE, Vec::new());
            }
            _ => {}
        }
    }

    fn derive_key_attributes(&mut self, origin: Origin) -> Result<()> {
        let key_type = self.key_type().ok_or(Error::TemplateIncomplete)?;
        let len = self.get_raw(CKA_VALUE).map(<[u8]>::len).ok_or(Error::TemplateIncomplete)?;
        secret_len_ok(key_type, len)?;
        let (local, mech) = match origin {
            Origin::Generate(m) => (true, m),
            _ => (false, CK_UNAVAILABLE_INFORMATION),
        };
        let sensitive = self.bool(CKA_SENSITIVE);
        let extractable = self.bool(CKA_EXTRACTABLE);
        self.set(CKA_LOCAL, ck_bool(local));
        self.set(CKA_KEY_GEN_MECHANISM, ck_ulong(mech));
        // A key that was ever outside the token cannot claim to have always been secret;
        // a derived key has been as secret as its base and itself.
        let (always, never) = match origin {
            Origin::Derive { always_sensitive, never_extractable } => (always_sensitive, never_extractable),
            _ => (local, local),
        };
        self.set(CKA_ALWAYS_SENSITIVE, ck_bool(always && sensitive));
        self.set(CKA_NEVER_EXTRACTABLE, ck_bool(never && !extractable));
        self.set(CKA_VALUE_LEN, ck_ulong(len as CK_ULONG));
        Ok(())
    }

    /// Public and private keys: the key material each key type needs must be there, and
    /// the token sets what it knows of the key's history.
    fn derive_asymmetric_attributes(&mut self, origin: Origin) -> Result<()> {
        let key_type = self.key_type().ok_or(Error::TemplateIncomplete)?;
        let private = self.class() == CKO_PRIVATE_KEY;
        let needed: &[CK_ATTRIBUTE_TYPE] = match (key_type, private) {
            (CKK_RSA, false) => &[CKA_MODULUS, CKA_PUBLIC_EXPONENT],
            (CKK_RSA, true) => &[
                CKA_MODULUS,
                CKA_PUBLIC_EXPONENT,
                CKA_PRIVATE_EXPONENT,
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ],
            (CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY, false) => &[CKA_EC_PARAMS, CKA_EC_POINT],
            (CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY, true) => &[CKA_EC_PARAMS, CKA_VALUE],
            (CKK_ML_DSA, false) | (CKK_ML_KEM, _) => &[CKA_PARAMETER_SET, CKA_VALUE],
            // The seed or the expanded key (`mldsa::check_import` writes the latter).
            (CKK_ML_DSA, true) => &[CKA_PARAMETER_SET],
            _ => return Err(Error::AttributeValueInvalid),
        };
        if needed.iter().any(|ty| self.get_raw(*ty).is_none_or(<[u8]>::is_empty)) {
            return Err(Error::TemplateIncomplete);
        }
        let (local, mech) = match origin {
            Origin::Generate(m) => (true, m),
            _ => (false, CK_UNAVAILABLE_INFORMATION),
        };
        self.set(CKA_LOCAL, ck_bool(local));
        self.set(CKA_KEY_GEN_MECHANISM, ck_ulong(mech));
        if key_type == CKK_RSA && !private {
            let n = self.get_raw(CKA_MODULUS).unwrap_or_default();
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            let lead = n.iter().find(|b| **b != 0).map_or(0, |b| b.leading_zeros() as usize);
            self.set(CKA_MODULUS_BITS, ck_ulong((bits - lead) as CK_ULONG));
        }
        if private {
            let sensitive = self.bool(CKA_SENSITIVE);
            let extractable = self.bool(CKA_EXTRACTABLE);
            self.set(CKA_ALWAYS_SENSITIVE, ck_bool(local && sensitive));
            self.set(CKA_NEVER_EXTRACTABLE, ck_bool(local && !extractable));
        }
        Ok(())
    }

    /// Checks a C_SetAttributeValue template (or the changes of a C_CopyObject) against
    /// the rules, then applies it; nothing changes unless everything is allowed.
    pub fn apply_changes(&mut self, template: &Template, copying: bool, is_so: bool) -> Result<()> {
        let class = self.class();
        for (ty, v) in template {
            let r = rule(class, *ty).ok_or(Error::AttributeTypeInvalid)?;
            if !attr::well_formed(r.kind, v) {
                return Err(Error::AttributeValueInvalid);
            }
            let unchanged = self.get_raw(*ty) == Some(v.as_slice());
            if r.flags & READ_ONLY != 0 || r.flags & NOT_ON_CREATE != 0 {
                if unchanged {
                    continue;
                }
                return Err(Error::AttributeReadOnly);
            }
            if r.flags & CREATE_ONLY != 0 && !(copying && r.flags & CHANGE_ON_COPY != 0) && !unchanged {
                return Err(Error::AttributeReadOnly);
            }
            let now = self.bool(*ty);
            let new = v.first() == Some(&1);
            if r.flags & ONLY_TO_TRUE != 0 && now && !new {
                return Err(Error::AttributeReadOnly);
            }
            if r.flags & ONLY_TO_FALSE != 0 && !now && new {
                return Err(Error::AttributeReadOnly);
            }
            if r.flags & SO_ONLY_TRUE != 0 && new && !is_so {
                return Err(Error::AttributeReadOnly);
            }
        }
        for (ty, v) in template {
            self.set(*ty, v.clone());
        }
        Ok(())
    }

    /// Attributes that must be sealed in the keystore: all of a private object (but its
    /// class and the flags needed before login), and secret values everywhere.
    pub fn must_seal(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        match rule(self.class(), ty).map(|r| r.flags) {
            Some(f) if f & SECRET != 0 => true,
            Some(f) if f & KMS != 0 => false,
            _ => self.is_private() && !matches!(ty, CKA_CLASS | CKA_TOKEN | CKA_PRIVATE),
        }
    }

    pub fn kind_of(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<Kind> {
        rule(self.class(), ty).map(|r| r.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aes_template(value: &[u8]) -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
        vec![(CKA_CLASS, ck_ulong(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ck_ulong(CKK_AES)), (CKA_VALUE, value.to_vec())]
    }

    #[test]
    fn create_secret_key_with_defaults() {
        // A value handed in is readable by default: its owner holds it already.
        let o = Object::build(&aes_template(&[7; 32]), Origin::Create, &[], false).unwrap();
        assert!(!o.bool(CKA_SENSITIVE) && o.bool(CKA_EXTRACTABLE) && o.bool(CKA_PRIVATE));
        assert!(!o.bool(CKA_LOCAL) && !o.bool(CKA_ALWAYS_SENSITIVE));
        assert_eq!(o.ulong(CKA_VALUE_LEN), Some(32));
        assert_eq!(o.ulong(CKA_KEY_GEN_MECHANISM), Some(CK_UNAVAILABLE_INFORMATION));
        assert_eq!(o.read(CKA_VALUE).unwrap(), &[7; 32]);
        assert_eq!(o.read(CKA_MODULUS), Err(Error::AttributeTypeInvalid));
        // A value the token made stays inside.
        let extra =
            [(CKA_CLASS, ck_ulong(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ck_ulong(CKK_AES)), (CKA_VALUE, vec![1; 32])];
        let o = Object::build(&[], Origin::Generate(CKM_AES_KEY_GEN), &extra, false).unwrap();
        assert!(o.bool(CKA_SENSITIVE) && !o.bool(CKA_EXTRACTABLE) && o.bool(CKA_ALWAYS_SENSITIVE));
        assert_eq!(o.read(CKA_VALUE), Err(Error::AttributeSensitive));
    }

    #[test]
    fn create_errors() {
        let mut t = aes_template(&[7; 15]);
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::AttributeValueInvalid);
        t = aes_template(&[7; 16]);
        t.push((CKA_LOCAL, ck_bool(true)));
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::AttributeReadOnly);
        t = aes_template(&[7; 16]);
        t.push((CKA_VALUE_LEN, ck_ulong(16)));
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::TemplateInconsistent);
        t = aes_template(&[7; 16]);
        t.push((CKA_SENSITIVE, vec![1, 0]));
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::AttributeValueInvalid);
        t = aes_template(&[7; 16]);
        t.push((CKA_MODULUS, vec![1]));
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::AttributeTypeInvalid);
        t = aes_template(&[7; 16]);
        t.push((CKA_TRUSTED, ck_bool(true)));
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::AttributeReadOnly);
        assert!(Object::build(&t, Origin::Create, &[], true).is_ok());
        t = aes_template(&[7; 16]);
        t.remove(2);
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::TemplateIncomplete);
        t = vec![(CKA_KEY_TYPE, ck_ulong(CKK_AES))];
        assert_eq!(Object::build(&t, Origin::Create, &[], false).unwrap_err(), Error::TemplateIncomplete);
    }

    #[test]
    fn generated_key_is_local() {
        let t = vec![(CKA_VALUE_LEN, ck_ulong(32)), (CKA_EXTRACTABLE, ck_bool(true)), (CKA_SENSITIVE, ck_bool(false))];
        let extra =
            vec![(CKA_CLASS, ck_ulong(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ck_ulong(CKK_AES)), (CKA_VALUE, vec![1; 32])];
        let o = Object::build(&t, Origin::Generate(CKM_AES_KEY_GEN), &extra, false).unwrap();
        assert!(o.bool(CKA_LOCAL) && !o.bool(CKA_NEVER_EXTRACTABLE) && !o.bool(CKA_ALWAYS_SENSITIVE));
        assert_eq!(o.ulong(CKA_KEY_GEN_MECHANISM), Some(CKM_AES_KEY_GEN));
        assert_eq!(o.read(CKA_VALUE).unwrap(), &[1; 32]);
        let mut bad = t.clone();
        bad.push((CKA_VALUE, vec![1; 32]));
        assert_eq!(
            Object::build(&bad, Origin::Generate(CKM_AES_KEY_GEN), &extra, false).unwrap_err(),
            Error::TemplateInconsistent
        );
    }

    #[test]
    fn change_rules() {
        let mut t = aes_template(&[7; 16]);
        t.extend([(CKA_SENSITIVE, ck_bool(true)), (CKA_EXTRACTABLE, ck_bool(false))]);
        let mut o = Object::build(&t, Origin::Create, &[], false).unwrap();
        assert_eq!(o.apply_changes(&[(CKA_SENSITIVE, ck_bool(false))], false, false), Err(Error::AttributeReadOnly));
        assert_eq!(o.apply_changes(&[(CKA_EXTRACTABLE, ck_bool(true))], false, false), Err(Error::AttributeReadOnly));
        assert_eq!(o.apply_changes(&[(CKA_KEY_TYPE, ck_ulong(CKK_DES3))], false, false), Err(Error::AttributeReadOnly));
        assert_eq!(o.apply_changes(&[(CKA_TOKEN, ck_bool(true))], false, false), Err(Error::AttributeReadOnly));
        assert!(o.apply_changes(&[(CKA_TOKEN, ck_bool(true))], true, false).is_ok());
        // Nothing of a refused template is applied.
        let before = o.get_raw(CKA_LABEL).map(<[u8]>::to_vec);
        assert!(o.apply_changes(&[(CKA_LABEL, b"x".to_vec()), (CKA_LOCAL, ck_bool(true))], false, false).is_err());
        assert_eq!(o.get_raw(CKA_LABEL).map(<[u8]>::to_vec), before);
        o.apply_changes(&[(CKA_LABEL, b"x".to_vec()), (CKA_COPYABLE, ck_bool(false))], false, false).unwrap();
        assert_eq!(o.apply_changes(&[(CKA_COPYABLE, ck_bool(true))], false, false), Err(Error::AttributeReadOnly));
    }

    #[test]
    fn search_never_matches_secret_values() {
        let mut t = aes_template(&[7; 16]);
        t.push((CKA_EXTRACTABLE, ck_bool(true)));
        t.push((CKA_SENSITIVE, ck_bool(false)));
        let o = Object::build(&t, Origin::Create, &[], false).unwrap();
        assert!(!o.matches(&[(CKA_VALUE, vec![7; 16])]));
        assert!(o.matches(&[(CKA_CLASS, ck_ulong(CKO_SECRET_KEY))]));
    }
}
