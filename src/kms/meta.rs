//! The KMS metadata of a token key and how it is derived from a PKCS#11 template: key
//! spec, one key usage, state, origin. Stored as vendor attributes of the key object.

use crate::error::{Error, Result};
use crate::object::Object;
use cryptoki_sys::*;

/// The single usage of a key, in AWS's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsage {
    SignVerify,
    GenerateVerifyMac,
    EncryptDecrypt,
    KeyAgreement,
}

impl KeyUsage {
    pub fn name(self) -> &'static str {
        match self {
            KeyUsage::SignVerify => "SIGN_VERIFY",
            KeyUsage::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
            KeyUsage::EncryptDecrypt => "ENCRYPT_DECRYPT",
            KeyUsage::KeyAgreement => "KEY_AGREEMENT",
        }
    }

    pub fn parse(s: &str) -> Option<KeyUsage> {
        [KeyUsage::SignVerify, KeyUsage::GenerateVerifyMac, KeyUsage::EncryptDecrypt, KeyUsage::KeyAgreement]
            .into_iter()
            .find(|u| u.name() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
}

impl KeyState {
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
        }
    }

    pub fn code(self) -> CK_ULONG {
        use crate::vendor::*;
        match self {
            KeyState::Enabled => KMSTOKEN_STATE_ENABLED,
            KeyState::Disabled => KMSTOKEN_STATE_DISABLED,
            KeyState::PendingDeletion => KMSTOKEN_STATE_PENDING_DELETION,
            KeyState::PendingImport => KMSTOKEN_STATE_PENDING_IMPORT,
        }
    }

    /// An unknown value is refused rather than guessed.
    pub fn from_code(v: CK_ULONG) -> Result<KeyState> {
        [KeyState::Enabled, KeyState::Disabled, KeyState::PendingDeletion, KeyState::PendingImport]
            .into_iter()
            .find(|s| s.code() == v)
            .ok_or(Error::AttributeValueInvalid)
    }
}

/// The KMS usages a key type can have.
fn usages_of(key_type: CK_KEY_TYPE) -> &'static [KeyUsage] {
    match key_type {
        // AES keys also serve CMAC, which the token has always let a key choose.
        CKK_AES => &[KeyUsage::EncryptDecrypt, KeyUsage::GenerateVerifyMac],
        CKK_EC => &[KeyUsage::SignVerify, KeyUsage::KeyAgreement],
        CKK_RSA => &[KeyUsage::SignVerify, KeyUsage::EncryptDecrypt],
        CKK_EC_EDWARDS | CKK_ML_DSA => &[KeyUsage::SignVerify],
        CKK_EC_MONTGOMERY | CKK_ML_KEM => &[KeyUsage::KeyAgreement],
        _ => &[KeyUsage::GenerateVerifyMac],
    }
}

/// The KMS usage a capability attribute belongs to, on a key of `key_type`.
fn usage_of_capability(ty: CK_ATTRIBUTE_TYPE, key_type: CK_KEY_TYPE) -> Option<KeyUsage> {
    let asymmetric = crate::object::is_asymmetric(key_type);
    Some(match ty {
        CKA_SIGN | CKA_VERIFY if asymmetric => KeyUsage::SignVerify,
        CKA_SIGN | CKA_VERIFY => KeyUsage::GenerateVerifyMac,
        CKA_ENCRYPT | CKA_DECRYPT | CKA_WRAP | CKA_UNWRAP => KeyUsage::EncryptDecrypt,
        CKA_DERIVE | CKA_ENCAPSULATE | CKA_DECAPSULATE => KeyUsage::KeyAgreement,
        _ => return None,
    })
}

/// The capability attributes, and the order of precedence of the usages they imply
/// (DESIGN section 4: SIGN_VERIFY, ENCRYPT_DECRYPT, KEY_AGREEMENT, GENERATE_VERIFY_MAC).
pub const CAPABILITIES: [CK_ATTRIBUTE_TYPE; 9] = [
    CKA_SIGN,
    CKA_VERIFY,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
    CKA_ENCAPSULATE,
    CKA_DECAPSULATE,
];
const PRECEDENCE: [KeyUsage; 4] =
    [KeyUsage::SignVerify, KeyUsage::EncryptDecrypt, KeyUsage::KeyAgreement, KeyUsage::GenerateVerifyMac];

/// The usages that the capabilities for which `has` is true imply, in precedence order.
fn implied(key_type: CK_KEY_TYPE, has: impl Fn(CK_ATTRIBUTE_TYPE) -> bool) -> Vec<KeyUsage> {
    let found: Vec<KeyUsage> =
        CAPABILITIES.iter().filter(|ty| has(**ty)).filter_map(|ty| usage_of_capability(*ty, key_type)).collect();
    PRECEDENCE.into_iter().filter(|u| found.contains(u)).collect()
}

/// The usage a key type has when nothing in particular is asked.
fn default_usage(key_type: CK_KEY_TYPE) -> KeyUsage {
    usages_of(key_type)[0]
}

/// A key's one KMS usage, from what `template` asks for (its TRUE capability attributes).
/// - `kms-strict` (`one_usage`): two usages, or one the key type cannot have, are
///   CKR_TEMPLATE_INCONSISTENT.
/// - `pkcs11`: the first usage by precedence among those the template asks for and the
///   key type can have; when it asks for none, among the capabilities the key `obj` has
///   (the token's defaults), so that `pkcs11-tool --usage-derive` makes a KEY_AGREEMENT
///   key although CKA_SIGN defaults to TRUE.
///
/// With nothing asked or had, the key type's default.
pub fn derive_usage(obj: &Object, template: &crate::object::Template, one_usage: bool) -> Result<KeyUsage> {
    let key_type = obj.key_type().ok_or(Error::TemplateIncomplete)?;
    let possible = usages_of(key_type);
    let asked = implied(key_type, |ty| template.iter().any(|(t, v)| *t == ty && v.first() == Some(&1)));
    if one_usage {
        return match asked.as_slice() {
            [] => Ok(default_usage(key_type)),
            [one] if possible.contains(one) => Ok(*one),
            _ => Err(Error::TemplateInconsistent),
        };
    }
    let first = |usages: Vec<KeyUsage>| usages.into_iter().find(|u| possible.contains(u));
    Ok(first(asked).or_else(|| first(implied(key_type, |ty| obj.bool(ty)))).unwrap_or_else(|| default_usage(key_type)))
}

/// Under `kms-strict`, a key can do only what its usage allows: the capabilities of other
/// usages read FALSE (the template could not have asked for them, see `derive_usage`).
pub fn restrict_to_usage(obj: &mut Object, usage: KeyUsage) {
    let key_type = obj.key_type().unwrap_or(CKK_GENERIC_SECRET);
    for ty in CAPABILITIES {
        if obj.get_raw(ty).is_some() && usage_of_capability(ty, key_type) != Some(usage) {
            obj.set(ty, crate::object::ck_bool(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ck_bool;

    fn key(key_type: CK_KEY_TYPE, caps: &[(CK_ATTRIBUTE_TYPE, bool)]) -> Object {
        let mut o = Object::default();
        o.set(CKA_KEY_TYPE, crate::object::ck_ulong(key_type));
        for (ty, v) in caps {
            o.set(*ty, ck_bool(*v));
        }
        o
    }

    #[test]
    fn strict_takes_one_usage_from_the_template() {
        let both = vec![(CKA_SIGN, ck_bool(true)), (CKA_DECRYPT, ck_bool(true))];
        let rsa = key(CKK_RSA, &[]);
        assert_eq!(derive_usage(&rsa, &both, true).unwrap_err(), Error::TemplateInconsistent);
        assert_eq!(derive_usage(&key(CKK_AES, &[]), &[], true).unwrap(), KeyUsage::EncryptDecrypt);
        assert_eq!(derive_usage(&key(CKK_GENERIC_SECRET, &[]), &[], true).unwrap(), KeyUsage::GenerateVerifyMac);
        let derive = vec![(CKA_DERIVE, ck_bool(true))];
        assert_eq!(derive_usage(&key(CKK_EC, &[]), &derive, true).unwrap(), KeyUsage::KeyAgreement);
        // FALSE asks for nothing.
        let no = vec![(CKA_SIGN, ck_bool(false)), (CKA_ENCRYPT, ck_bool(true))];
        assert_eq!(derive_usage(&key(CKK_AES, &[]), &no, true).unwrap(), KeyUsage::EncryptDecrypt);
        // An HMAC key cannot encrypt, an EC key cannot decrypt.
        let enc = vec![(CKA_ENCRYPT, ck_bool(true))];
        assert_eq!(derive_usage(&key(CKK_GENERIC_SECRET, &[]), &enc, true).unwrap_err(), Error::TemplateInconsistent);
        let dec = vec![(CKA_DECRYPT, ck_bool(true))];
        assert_eq!(derive_usage(&key(CKK_EC, &[]), &dec, true).unwrap_err(), Error::TemplateInconsistent);
    }

    #[test]
    fn pkcs11_takes_the_first_usage_the_key_has() {
        let all = [
            (CKA_SIGN, true),
            (CKA_VERIFY, true),
            (CKA_ENCRYPT, true),
            (CKA_DECRYPT, true),
            (CKA_WRAP, true),
            (CKA_UNWRAP, true),
            (CKA_DERIVE, false),
        ];
        // AES: ENCRYPT_DECRYPT comes before GENERATE_VERIFY_MAC; a generic secret can only MAC.
        assert_eq!(derive_usage(&key(CKK_AES, &all), &[], false).unwrap(), KeyUsage::EncryptDecrypt);
        assert_eq!(derive_usage(&key(CKK_GENERIC_SECRET, &all), &[], false).unwrap(), KeyUsage::GenerateVerifyMac);
        let rsa = key(CKK_RSA, &[(CKA_SIGN, true), (CKA_DECRYPT, true)]);
        assert_eq!(derive_usage(&rsa, &[], false).unwrap(), KeyUsage::SignVerify);
        let rsa = key(CKK_RSA, &[(CKA_SIGN, false), (CKA_DECRYPT, true)]);
        assert_eq!(derive_usage(&rsa, &[], false).unwrap(), KeyUsage::EncryptDecrypt);
        let ec = key(CKK_EC, &[(CKA_SIGN, false), (CKA_DERIVE, true)]);
        assert_eq!(derive_usage(&ec, &[], false).unwrap(), KeyUsage::KeyAgreement);
        let ec = key(CKK_EC, &[(CKA_SIGN, true), (CKA_DERIVE, true)]);
        assert_eq!(derive_usage(&ec, &[], false).unwrap(), KeyUsage::SignVerify);
        let aes_mac = key(CKK_AES, &[(CKA_SIGN, true), (CKA_ENCRYPT, false), (CKA_DECRYPT, false)]);
        assert_eq!(derive_usage(&aes_mac, &[], false).unwrap(), KeyUsage::GenerateVerifyMac);
        // What the template asks for comes before the defaults the key has beside it.
        let ec = key(CKK_EC, &[(CKA_SIGN, true), (CKA_DERIVE, true)]);
        assert_eq!(derive_usage(&ec, &[(CKA_DERIVE, ck_bool(true))], false).unwrap(), KeyUsage::KeyAgreement);
        let rsa = key(CKK_RSA, &[(CKA_SIGN, true), (CKA_DECRYPT, true)]);
        assert_eq!(derive_usage(&rsa, &[(CKA_DECRYPT, ck_bool(true))], false).unwrap(), KeyUsage::EncryptDecrypt);
        let both = [(CKA_DECRYPT, ck_bool(true)), (CKA_SIGN, ck_bool(true))];
        assert_eq!(derive_usage(&rsa, &both, false).unwrap(), KeyUsage::SignVerify);
    }

    #[test]
    fn restricting_clears_the_other_usages() {
        let mut o = key(CKK_RSA, &[(CKA_SIGN, true), (CKA_DECRYPT, true), (CKA_UNWRAP, true)]);
        restrict_to_usage(&mut o, KeyUsage::SignVerify);
        assert!(o.bool(CKA_SIGN) && !o.bool(CKA_DECRYPT) && !o.bool(CKA_UNWRAP));
        assert!(o.get_raw(CKA_DERIVE).is_none(), "absent attributes stay absent");
    }

    #[test]
    fn state_codes_round_trip_and_unknown_is_refused() {
        for s in [KeyState::Enabled, KeyState::Disabled, KeyState::PendingDeletion, KeyState::PendingImport] {
            assert_eq!(KeyState::from_code(s.code()).unwrap(), s);
        }
        assert_eq!(KeyState::from_code(99).unwrap_err(), Error::AttributeValueInvalid);
    }
}
