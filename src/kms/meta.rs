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

/// What the template asks a key to do, as the KMS usages it implies.
fn requested(template: &crate::object::Template, key_type: CK_KEY_TYPE) -> Vec<KeyUsage> {
    let asked = |ty: CK_ATTRIBUTE_TYPE| template.iter().any(|(t, v)| *t == ty && v.first() == Some(&1));
    let sign = if matches!(key_type, CKK_EC | CKK_RSA) { KeyUsage::SignVerify } else { KeyUsage::GenerateVerifyMac };
    let mut out = Vec::new();
    // The order is the precedence of the compat rule: SIGN_VERIFY, ENCRYPT_DECRYPT, KEY_AGREEMENT.
    if asked(CKA_SIGN) || asked(CKA_VERIFY) {
        out.push(sign);
    }
    if asked(CKA_ENCRYPT) || asked(CKA_DECRYPT) || asked(CKA_WRAP) || asked(CKA_UNWRAP) {
        out.push(KeyUsage::EncryptDecrypt);
    }
    if asked(CKA_DERIVE) {
        out.push(KeyUsage::KeyAgreement);
    }
    out
}

/// The usage a key type has when the template asks for nothing in particular.
fn default_usage(key_type: CK_KEY_TYPE) -> KeyUsage {
    match key_type {
        CKK_AES => KeyUsage::EncryptDecrypt,
        CKK_EC | CKK_RSA => KeyUsage::SignVerify,
        _ => KeyUsage::GenerateVerifyMac,
    }
}

/// The key's one usage: what the template asks for; with two or more, `strict` refuses
/// (CKR_TEMPLATE_INCONSISTENT) and compat keeps the first by precedence.
pub fn derive_usage(template: &crate::object::Template, key_type: CK_KEY_TYPE, strict: bool) -> Result<KeyUsage> {
    let asked = requested(template, key_type);
    match asked.as_slice() {
        [] => Ok(default_usage(key_type)),
        [one] => Ok(*one),
        [first, ..] if !strict => Ok(*first),
        _ => Err(Error::TemplateInconsistent),
    }
}

/// The AWS key spec of a key object.
pub fn key_spec(obj: &Object) -> String {
    let len = obj.ulong(CKA_VALUE_LEN).unwrap_or(0);
    match obj.key_type() {
        Some(CKK_AES) if len == 32 => "SYMMETRIC_DEFAULT".into(),
        Some(CKK_AES) => format!("AES_{}", len * 8),
        // The curves by their named-curve OIDs (prime256v1, secp384r1).
        Some(CKK_EC) => match obj.get_raw(CKA_EC_PARAMS) {
            Some([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]) => "ECC_NIST_P256".into(),
            Some([0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]) => "ECC_NIST_P384".into(),
            _ => "ECC".into(),
        },
        Some(CKK_RSA) => {
            let bits = obj.get_raw(CKA_MODULUS).map(|m| m.iter().skip_while(|b| **b == 0).count() * 8).unwrap_or(0);
            format!("RSA_{bits}")
        }
        Some(_) => format!("HMAC_{}", len * 8),
        None => "UNKNOWN".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ck_bool;

    #[test]
    fn one_usage_per_key() {
        let both = vec![(CKA_SIGN, ck_bool(true)), (CKA_DECRYPT, ck_bool(true))];
        assert_eq!(derive_usage(&both, CKK_RSA, false).unwrap(), KeyUsage::SignVerify);
        assert_eq!(derive_usage(&both, CKK_RSA, true).unwrap_err(), Error::TemplateInconsistent);
        assert_eq!(derive_usage(&[], CKK_AES, true).unwrap(), KeyUsage::EncryptDecrypt);
        assert_eq!(derive_usage(&[], CKK_GENERIC_SECRET, true).unwrap(), KeyUsage::GenerateVerifyMac);
        let derive = vec![(CKA_DERIVE, ck_bool(true))];
        assert_eq!(derive_usage(&derive, CKK_EC, true).unwrap(), KeyUsage::KeyAgreement);
        // FALSE asks for nothing.
        let no = vec![(CKA_SIGN, ck_bool(false)), (CKA_ENCRYPT, ck_bool(true))];
        assert_eq!(derive_usage(&no, CKK_AES, true).unwrap(), KeyUsage::EncryptDecrypt);
    }

    #[test]
    fn state_codes_round_trip_and_unknown_is_refused() {
        for s in [KeyState::Enabled, KeyState::Disabled, KeyState::PendingDeletion, KeyState::PendingImport] {
            assert_eq!(KeyState::from_code(s.code()).unwrap(), s);
        }
        assert_eq!(KeyState::from_code(99).unwrap_err(), Error::AttributeValueInvalid);
    }
}
