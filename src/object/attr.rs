//! The attribute rules of the specification, held as data: which attributes each object
//! class has, how their values are encoded, and when they may be given or changed.

use crate::vendor::*;
use cryptoki_sys::*;

/// How an attribute's value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Ulong,
    Bytes,
    /// CK_DATE (8 ASCII digits) or empty.
    Date,
    /// An array of CK_MECHANISM_TYPE.
    UlongArray,
    /// An array of attributes (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE), held in the
    /// encoding of `encode_array`.
    AttrArray,
}

/// Rules (the footnotes of the specification's attribute tables).
pub mod rule {
    /// Must be in the template of C_CreateObject.
    pub const REQUIRED_ON_CREATE: u32 = 1;
    /// May be given only when the object is made (create, generate, unwrap, copy).
    pub const CREATE_ONLY: u32 = 1 << 1;
    /// Set by the token only; never in a template.
    pub const READ_ONLY: u32 = 1 << 2;
    /// Hidden when the key is sensitive or unextractable.
    pub const SENSITIVE: u32 = 1 << 3;
    /// May change only from FALSE to TRUE.
    pub const ONLY_TO_TRUE: u32 = 1 << 4;
    /// May change only from TRUE to FALSE.
    pub const ONLY_TO_FALSE: u32 = 1 << 5;
    /// Must not be in the template of C_CreateObject.
    pub const NOT_ON_CREATE: u32 = 1 << 6;
    /// May be given on C_CopyObject even though it is CREATE_ONLY.
    pub const CHANGE_ON_COPY: u32 = 1 << 7;
    /// May be set to TRUE only by the security officer.
    pub const SO_ONLY_TRUE: u32 = 1 << 8;
    /// Kept sealed in the keystore whatever the object's CKA_PRIVATE.
    pub const SECRET: u32 = 1 << 9;
    /// KMS metadata: set by the KMS layer only, kept in clear (it is not secret, and key
    /// states and deletion dates must be readable without the master key).
    pub const KMS: u32 = 1 << 10;
    /// Kept by the token for itself: never returned, whatever CKA_SENSITIVE says.
    pub const NEVER_READ: u32 = 1 << 11;
}

use rule::*;

/// Object classes an attribute belongs to.
#[derive(Clone, Copy)]
pub enum Scope {
    /// Every object.
    Any,
    /// Keys of every class.
    Key,
    Secret,
    Data,
    Public,
    Private,
    /// Public and private keys.
    Asymmetric,
    /// Private and secret keys (what may be sensitive).
    Hidden,
    Certificate,
}

pub struct Rule {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub kind: Kind,
    pub scope: Scope,
    pub flags: u32,
}

const fn r(ty: CK_ATTRIBUTE_TYPE, kind: Kind, scope: Scope, flags: u32) -> Rule {
    Rule { ty, kind, scope, flags }
}

/// The table. Defaults are applied in `object::defaults`.
pub static RULES: &[Rule] = &[
    r(CKA_CLASS, Kind::Ulong, Scope::Any, REQUIRED_ON_CREATE | CREATE_ONLY),
    r(CKA_TOKEN, Kind::Bool, Scope::Any, CREATE_ONLY | CHANGE_ON_COPY),
    r(CKA_PRIVATE, Kind::Bool, Scope::Any, CREATE_ONLY | CHANGE_ON_COPY),
    r(CKA_MODIFIABLE, Kind::Bool, Scope::Any, CREATE_ONLY | CHANGE_ON_COPY),
    r(CKA_COPYABLE, Kind::Bool, Scope::Any, ONLY_TO_FALSE),
    r(CKA_DESTROYABLE, Kind::Bool, Scope::Any, ONLY_TO_FALSE | CHANGE_ON_COPY),
    r(CKA_LABEL, Kind::Bytes, Scope::Any, 0),
    r(CKA_UNIQUE_ID, Kind::Bytes, Scope::Any, READ_ONLY),
    // Data objects.
    r(CKA_APPLICATION, Kind::Bytes, Scope::Data, 0),
    r(CKA_OBJECT_ID, Kind::Bytes, Scope::Data, 0),
    r(CKA_VALUE, Kind::Bytes, Scope::Data, 0),
    // Every key.
    r(CKA_KEY_TYPE, Kind::Ulong, Scope::Key, REQUIRED_ON_CREATE | CREATE_ONLY),
    r(CKA_ID, Kind::Bytes, Scope::Key, 0),
    r(CKA_START_DATE, Kind::Date, Scope::Key, 0),
    r(CKA_END_DATE, Kind::Date, Scope::Key, 0),
    r(CKA_DERIVE, Kind::Bool, Scope::Key, 0),
    r(CKA_LOCAL, Kind::Bool, Scope::Key, READ_ONLY),
    r(CKA_KEY_GEN_MECHANISM, Kind::Ulong, Scope::Key, READ_ONLY),
    r(CKA_ALLOWED_MECHANISMS, Kind::UlongArray, Scope::Key, 0),
    // What keys may do: secret keys have all, public keys the public half, private keys
    // the private half.
    r(CKA_ENCRYPT, Kind::Bool, Scope::Secret, 0),
    r(CKA_DECRYPT, Kind::Bool, Scope::Secret, 0),
    r(CKA_SIGN, Kind::Bool, Scope::Secret, 0),
    r(CKA_VERIFY, Kind::Bool, Scope::Secret, 0),
    r(CKA_WRAP, Kind::Bool, Scope::Secret, 0),
    r(CKA_UNWRAP, Kind::Bool, Scope::Secret, 0),
    r(CKA_ENCRYPT, Kind::Bool, Scope::Public, 0),
    r(CKA_VERIFY, Kind::Bool, Scope::Public, 0),
    r(CKA_VERIFY_RECOVER, Kind::Bool, Scope::Public, 0),
    r(CKA_WRAP, Kind::Bool, Scope::Public, 0),
    r(CKA_DECRYPT, Kind::Bool, Scope::Private, 0),
    r(CKA_SIGN, Kind::Bool, Scope::Private, 0),
    r(CKA_SIGN_RECOVER, Kind::Bool, Scope::Private, 0),
    r(CKA_UNWRAP, Kind::Bool, Scope::Private, 0),
    r(CKA_SENSITIVE, Kind::Bool, Scope::Hidden, ONLY_TO_TRUE),
    r(CKA_EXTRACTABLE, Kind::Bool, Scope::Hidden, ONLY_TO_FALSE),
    r(CKA_ALWAYS_SENSITIVE, Kind::Bool, Scope::Hidden, READ_ONLY),
    r(CKA_NEVER_EXTRACTABLE, Kind::Bool, Scope::Hidden, READ_ONLY),
    r(CKA_WRAP_WITH_TRUSTED, Kind::Bool, Scope::Hidden, ONLY_TO_TRUE),
    r(CKA_ALWAYS_AUTHENTICATE, Kind::Bool, Scope::Hidden, 0),
    r(CKA_TRUSTED, Kind::Bool, Scope::Secret, SO_ONLY_TRUE),
    r(CKA_TRUSTED, Kind::Bool, Scope::Public, SO_ONLY_TRUE),
    r(CKA_CHECK_VALUE, Kind::Bytes, Scope::Secret, READ_ONLY),
    // What a wrapping key may wrap, and what the keys it unwraps get (see `encode_array`).
    r(CKA_WRAP_TEMPLATE, Kind::AttrArray, Scope::Secret, CREATE_ONLY),
    r(CKA_WRAP_TEMPLATE, Kind::AttrArray, Scope::Public, CREATE_ONLY),
    r(CKA_UNWRAP_TEMPLATE, Kind::AttrArray, Scope::Hidden, CREATE_ONLY),
    r(CKA_VALUE_LEN, Kind::Ulong, Scope::Secret, NOT_ON_CREATE | CREATE_ONLY),
    // (CKA_VALUE of keys: see `SECRET_VALUE` and `PRIVATE_VALUE`.)
    // Public and private keys.
    r(CKA_SUBJECT, Kind::Bytes, Scope::Asymmetric, 0),
    r(CKA_PUBLIC_KEY_INFO, Kind::Bytes, Scope::Asymmetric, CREATE_ONLY),
    r(CKA_MODULUS, Kind::Bytes, Scope::Asymmetric, CREATE_ONLY),
    r(CKA_PUBLIC_EXPONENT, Kind::Bytes, Scope::Asymmetric, CREATE_ONLY),
    r(CKA_MODULUS_BITS, Kind::Ulong, Scope::Public, NOT_ON_CREATE | CREATE_ONLY),
    r(CKA_EC_PARAMS, Kind::Bytes, Scope::Asymmetric, CREATE_ONLY),
    r(CKA_EC_POINT, Kind::Bytes, Scope::Public, CREATE_ONLY),
    // ML-DSA (PKCS#11 3.2): the parameter set, the public key's encoding, the private
    // key's seed.
    r(CKA_PARAMETER_SET, Kind::Ulong, Scope::Asymmetric, CREATE_ONLY),
    r(CKA_VALUE, Kind::Bytes, Scope::Public, CREATE_ONLY),
    r(CKA_SEED, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    // KEMs (PKCS#11 3.2).
    r(CKA_ENCAPSULATE, Kind::Bool, Scope::Public, 0),
    r(CKA_DECAPSULATE, Kind::Bool, Scope::Private, 0),
    r(CKA_PRIVATE_EXPONENT, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    r(CKA_PRIME_1, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    r(CKA_PRIME_2, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    r(CKA_EXPONENT_1, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    r(CKA_EXPONENT_2, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    r(CKA_COEFFICIENT, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET),
    // Certificates (X.509).
    r(CKA_CERTIFICATE_TYPE, Kind::Ulong, Scope::Certificate, REQUIRED_ON_CREATE | CREATE_ONLY),
    r(CKA_TRUSTED, Kind::Bool, Scope::Certificate, SO_ONLY_TRUE),
    r(CKA_CERTIFICATE_CATEGORY, Kind::Ulong, Scope::Certificate, CREATE_ONLY),
    r(CKA_CHECK_VALUE, Kind::Bytes, Scope::Certificate, READ_ONLY),
    r(CKA_START_DATE, Kind::Date, Scope::Certificate, 0),
    r(CKA_END_DATE, Kind::Date, Scope::Certificate, 0),
    r(CKA_PUBLIC_KEY_INFO, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_SUBJECT, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_ID, Kind::Bytes, Scope::Certificate, 0),
    r(CKA_ISSUER, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_SERIAL_NUMBER, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_VALUE, Kind::Bytes, Scope::Certificate, REQUIRED_ON_CREATE | CREATE_ONLY),
    r(CKA_URL, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Kind::Bytes, Scope::Certificate, CREATE_ONLY),
    r(CKA_JAVA_MIDP_SECURITY_DOMAIN, Kind::Ulong, Scope::Certificate, CREATE_ONLY),
    r(CKA_NAME_HASH_ALGORITHM, Kind::Ulong, Scope::Certificate, CREATE_ONLY),
    // KMS metadata of token keys.
    r(CKA_KMSTOKEN_KEY_ID, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_KEY_STATE, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_KEY_VERSION, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_KEY_SPEC, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_KEY_USAGE, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_ORIGIN, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_CREATION_DATE, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_DESCRIPTION, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_DELETION_DATE, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_PENDING_WINDOW_DAYS, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_ROTATION_ENABLED, Kind::Bool, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_ROTATION_PERIOD_DAYS, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_NEXT_ROTATION_DATE, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_ON_DEMAND_ROTATIONS, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_ARN, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_CURRENT, Kind::Bool, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_VALID_TO, Kind::Ulong, Scope::Key, READ_ONLY | KMS),
    r(CKA_KMSTOKEN_MATERIAL_FINGERPRINT, Kind::Bytes, Scope::Secret, READ_ONLY | NEVER_READ | SECRET),
    r(CKA_KMSTOKEN_IMPORT_PARAMETERS, Kind::Bytes, Scope::Secret, READ_ONLY | NEVER_READ | SECRET),
    r(CKA_KMSTOKEN_KEY_POLICY, Kind::Bytes, Scope::Key, READ_ONLY | KMS),
];

/// CKA_VALUE means different things for data objects, secret keys, EC private keys (the
/// scalar) and certificates.
static SECRET_VALUE: Rule =
    r(CKA_VALUE, Kind::Bytes, Scope::Secret, REQUIRED_ON_CREATE | CREATE_ONLY | SENSITIVE | SECRET);
static PRIVATE_VALUE: Rule = r(CKA_VALUE, Kind::Bytes, Scope::Private, CREATE_ONLY | SENSITIVE | SECRET);

fn in_scope(scope: Scope, class: CK_OBJECT_CLASS) -> bool {
    match scope {
        Scope::Any => true,
        Scope::Key => matches!(class, CKO_SECRET_KEY | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY),
        Scope::Secret => class == CKO_SECRET_KEY,
        Scope::Data => class == CKO_DATA,
        Scope::Public => class == CKO_PUBLIC_KEY,
        Scope::Private => class == CKO_PRIVATE_KEY,
        Scope::Asymmetric => matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY),
        Scope::Hidden => matches!(class, CKO_SECRET_KEY | CKO_PRIVATE_KEY),
        Scope::Certificate => class == CKO_CERTIFICATE,
    }
}

/// The rule for attribute `ty` on an object of `class`; None when the class has no such
/// attribute (CKR_ATTRIBUTE_TYPE_INVALID).
pub fn rule(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE) -> Option<&'static Rule> {
    if ty == CKA_VALUE && class == CKO_SECRET_KEY {
        return Some(&SECRET_VALUE);
    }
    if ty == CKA_VALUE && class == CKO_PRIVATE_KEY {
        return Some(&PRIVATE_VALUE);
    }
    RULES.iter().find(|r| r.ty == ty && in_scope(r.scope, class))
}

/// Classes this token stores.
pub fn class_supported(class: CK_OBJECT_CLASS) -> bool {
    matches!(class, CKO_DATA | CKO_SECRET_KEY | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_CERTIFICATE)
}

/// Checks that `value` is a valid encoding for `kind`.
pub fn well_formed(kind: Kind, value: &[u8]) -> bool {
    const UL: usize = std::mem::size_of::<CK_ULONG>();
    match kind {
        Kind::Bool => value.len() == 1 && value[0] <= 1,
        Kind::Ulong => value.len() == UL,
        Kind::Bytes => true,
        Kind::Date => value.is_empty() || (value.len() == 8 && value.iter().all(u8::is_ascii_digit)),
        Kind::UlongArray => value.len().is_multiple_of(UL),
        Kind::AttrArray => decode_array(value).is_some(),
    }
}

/// The attributes whose value is an array of attributes. (CKF_ARRAY_ATTRIBUTE alone does
/// not tell: CKA_ALLOWED_MECHANISMS carries it, and so may a vendor's attribute.)
pub fn is_attribute_array(ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(ty, CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE)
}

/// The owned form of an attribute array (the C form is an array of CK_ATTRIBUTE whose
/// values are pointers): each attribute as its type and its value's length (CK_ULONG,
/// native order) and the value. An empty array is empty.
pub fn encode_array(attrs: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ty, v) in attrs {
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&(v.len() as CK_ULONG).to_ne_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The attributes of an `encode_array` encoding; None when it is not one, or when an
/// attribute is itself an array (arrays do not nest) or is not well formed for any class.
pub fn decode_array(mut v: &[u8]) -> Option<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    const UL: usize = std::mem::size_of::<CK_ULONG>();
    let mut out = Vec::new();
    while !v.is_empty() {
        let ty = CK_ULONG::from_ne_bytes(v.get(..UL)?.try_into().ok()?);
        let len = usize::try_from(CK_ULONG::from_ne_bytes(v.get(UL..2 * UL)?.try_into().ok()?)).ok()?;
        let value = v.get(2 * UL..(2 * UL).checked_add(len)?)?;
        if is_attribute_array(ty) {
            return None;
        }
        out.push((ty, value.to_vec()));
        v = &v[2 * UL + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_attribute_is_listed_twice_for_one_class() {
        for class in [CKO_DATA, CKO_SECRET_KEY, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_CERTIFICATE] {
            for (i, a) in RULES.iter().enumerate() {
                for b in &RULES[i + 1..] {
                    assert!(
                        !(a.ty == b.ty && in_scope(a.scope, class) && in_scope(b.scope, class)),
                        "attribute {:#x} twice for class {class}",
                        a.ty
                    );
                }
            }
        }
    }

    #[test]
    fn encodings() {
        assert!(well_formed(Kind::Bool, &[1]));
        assert!(!well_formed(Kind::Bool, &[2]));
        assert!(!well_formed(Kind::Bool, &[1, 0]));
        assert!(well_formed(Kind::Ulong, &5u64.to_ne_bytes()));
        assert!(!well_formed(Kind::Ulong, &[5]));
        assert!(well_formed(Kind::Date, b"20261124"));
        assert!(!well_formed(Kind::Date, b"2026112"));
        assert!(well_formed(Kind::Date, b""));
    }

    #[test]
    fn attribute_arrays() {
        let attrs = vec![(CKA_EXTRACTABLE, vec![1]), (CKA_LABEL, b"x".to_vec()), (CKA_ID, Vec::new())];
        let enc = encode_array(&attrs);
        assert_eq!(decode_array(&enc), Some(attrs));
        assert!(well_formed(Kind::AttrArray, &enc) && well_formed(Kind::AttrArray, &[]));
        assert_eq!(decode_array(&enc[..enc.len() - 1]), None);
        assert_eq!(decode_array(&[enc.clone(), vec![0]].concat()), None);
        assert_eq!(decode_array(&encode_array(&[(CKA_WRAP_TEMPLATE, Vec::new())])), None);
        assert!(rule(CKO_PUBLIC_KEY, CKA_WRAP_TEMPLATE).is_some());
        assert!(rule(CKO_PRIVATE_KEY, CKA_WRAP_TEMPLATE).is_none());
        assert!(rule(CKO_PRIVATE_KEY, CKA_UNWRAP_TEMPLATE).is_some());
        assert!(rule(CKO_PUBLIC_KEY, CKA_UNWRAP_TEMPLATE).is_none());
    }

    #[test]
    fn secret_key_value_is_sensitive_and_data_value_is_not() {
        assert!(rule(CKO_SECRET_KEY, CKA_VALUE).unwrap().flags & SENSITIVE != 0);
        assert_eq!(rule(CKO_DATA, CKA_VALUE).unwrap().flags & SENSITIVE, 0);
        assert!(rule(CKO_DATA, CKA_ENCRYPT).is_none());
    }
}
