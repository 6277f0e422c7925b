//! The KMS layer. Every use of a key passes `authorize` before a mechanism runs: the
//! PKCS#11 usage rules (class, type, CKA_ENCRYPT and friends, CKA_ALLOWED_MECHANISMS),
//! then, for a token key, its KMS state, its one usage and its material's expiry; the
//! outcome is written to the audit trail before the mechanism may start. The lifecycle
//! operations (enable, disable, deletion, rotation, aliases, tags) live here too, shared
//! by the PKCS#11 functions and the command line.

pub mod audit;
pub mod blob;
pub mod clock;
pub mod envelope;
pub mod import;
pub mod lifecycle;
pub mod meta;

use crate::error::{Error, Result};
use crate::mech::Unit;
use crate::object::Object;
use crate::store::Role;
use crate::token::Token;
use crate::vendor::*;
use cryptoki_sys::*;
use meta::{KeyState, KeyUsage};

/// What a caller wants to do with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Derive,
    Digest,
}

impl KeyUse {
    /// The attribute that must be TRUE on the key.
    fn attribute(self) -> Option<CK_ATTRIBUTE_TYPE> {
        Some(match self {
            KeyUse::Encrypt => CKA_ENCRYPT,
            KeyUse::Decrypt => CKA_DECRYPT,
            KeyUse::Sign => CKA_SIGN,
            KeyUse::Verify => CKA_VERIFY,
            KeyUse::Wrap => CKA_WRAP,
            KeyUse::Unwrap => CKA_UNWRAP,
            KeyUse::Derive => CKA_DERIVE,
            KeyUse::Digest => return None,
        })
    }

    /// The KMS usage this use needs.
    fn usage(self, key_type: CK_KEY_TYPE) -> Option<KeyUsage> {
        Some(match self {
            KeyUse::Encrypt | KeyUse::Decrypt | KeyUse::Wrap | KeyUse::Unwrap => KeyUsage::EncryptDecrypt,
            KeyUse::Sign | KeyUse::Verify if matches!(key_type, CKK_EC | CKK_RSA) => KeyUsage::SignVerify,
            KeyUse::Sign | KeyUse::Verify => KeyUsage::GenerateVerifyMac,
            KeyUse::Derive => KeyUsage::KeyAgreement,
            KeyUse::Digest => return None,
        })
    }

    /// The KMS action this use is (C_WrapKey is kms:Encrypt on the wrapping key, ...).
    fn action(self, key_type: CK_KEY_TYPE) -> &'static str {
        let mac = !matches!(key_type, CKK_EC | CKK_RSA);
        match self {
            KeyUse::Encrypt | KeyUse::Wrap => "Encrypt",
            KeyUse::Decrypt | KeyUse::Unwrap => "Decrypt",
            KeyUse::Sign if mac => "GenerateMac",
            KeyUse::Verify if mac => "VerifyMac",
            KeyUse::Sign => "Sign",
            KeyUse::Verify => "Verify",
            KeyUse::Derive => "DeriveSharedSecret",
            KeyUse::Digest => "DigestKey",
        }
    }
}

/// A refusal in AWS terms: the exception name and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsError {
    pub code: &'static str,
    pub message: String,
}

impl KmsError {
    pub fn new(code: &'static str, message: impl Into<String>) -> KmsError {
        KmsError { code, message: message.into() }
    }

    /// The CK_RV a PKCS#11 caller gets for this refusal.
    pub fn to_error(&self) -> Error {
        match self.code {
            "NotFoundException" => Error::ObjectHandleInvalid,
            "KMSInternalException" => Error::General(self.message.clone()),
            "ValidationException" | "LimitExceededException" | "TagException" | "InvalidAliasNameException" => {
                Error::ArgumentsBad
            }
            _ => Error::KeyFunctionNotPermitted,
        }
    }
}

impl From<Error> for KmsError {
    fn from(e: Error) -> KmsError {
        match e {
            Error::ObjectHandleInvalid | Error::KeyHandleInvalid => KmsError::new("NotFoundException", "Key not found"),
            Error::UserNotLoggedIn => KmsError::new("AccessDeniedException", "log in first"),
            Error::Storage(m) | Error::General(m) => KmsError::new("KMSInternalException", m),
            other => KmsError::new("KMSInternalException", other.to_string()),
        }
    }
}

/// Whether an object is a KMS key (a token key that the KMS layer made).
pub fn is_kms_key(obj: &Object) -> bool {
    obj.is_token() && obj.get_raw(CKA_KMSTOKEN_KEY_ID).is_some()
}

fn text(obj: &Object, ty: CK_ATTRIBUTE_TYPE) -> String {
    obj.get_raw(ty).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()
}

pub fn key_id(obj: &Object) -> String {
    text(obj, CKA_KMSTOKEN_KEY_ID)
}

pub fn arn(obj: &Object) -> String {
    text(obj, CKA_KMSTOKEN_ARN)
}

pub fn state(obj: &Object) -> Result<KeyState> {
    KeyState::from_code(obj.ulong(CKA_KMSTOKEN_KEY_STATE).unwrap_or(KMSTOKEN_STATE_ENABLED))
}

pub fn usage(obj: &Object) -> Option<KeyUsage> {
    KeyUsage::parse(&text(obj, CKA_KMSTOKEN_KEY_USAGE))
}

/// The principal name of whoever is logged in on `token`.
pub fn principal(token: &Token) -> &'static str {
    match token.logged_in() {
        Some(Role::So) => "so",
        Some(Role::User) => "user",
        None => "public",
    }
}

/// The PKCS#11 rules for using `key` with `unit`.
fn pkcs11_rules(key: &Object, what: KeyUse, unit: &dyn Unit) -> Result<()> {
    // A mechanism that takes no key (a digest) is simply not one for this function.
    if what != KeyUse::Digest && unit.key_types().is_empty() {
        return Err(Error::MechanismInvalid);
    }
    if !matches!(key.class(), CKO_SECRET_KEY | CKO_PRIVATE_KEY | CKO_PUBLIC_KEY) {
        return Err(Error::KeyTypeInconsistent);
    }
    let key_type = key.key_type().ok_or(Error::KeyTypeInconsistent)?;
    if what != KeyUse::Digest && !unit.key_types().contains(&key_type) {
        return Err(Error::KeyTypeInconsistent);
    }
    if let Some(attr) = what.attribute() {
        if !key.bool(attr) {
            return Err(Error::KeyFunctionNotPermitted);
        }
    }
    if let Some(allowed) = key.allowed_mechanisms() {
        if !allowed.contains(&unit.ty()) {
            return Err(Error::MechanismInvalid);
        }
    }
    Ok(())
}

/// The state table for cryptographic use (kms-semantics §4.2) and the key's one usage.
fn kms_rules(key: &Object, what: KeyUse) -> std::result::Result<(), KmsError> {
    let arn = arn(key);
    match state(key) {
        Ok(KeyState::Enabled) => {}
        Ok(KeyState::Disabled) => return Err(KmsError::new("DisabledException", format!("{arn} is disabled."))),
        Ok(KeyState::PendingDeletion) => {
            return Err(KmsError::new("KMSInvalidStateException", format!("{arn} is pending deletion.")))
        }
        Ok(KeyState::PendingImport) => {
            return Err(KmsError::new("KMSInvalidStateException", format!("{arn} is pending import.")))
        }
        Err(_) => return Err(KmsError::new("KMSInvalidStateException", format!("{arn} has an unknown state."))),
    }
    let key_type = key.key_type().unwrap_or(CKK_GENERIC_SECRET);
    if let (Some(have), Some(want)) = (usage(key), what.usage(key_type)) {
        if have != want {
            return Err(KmsError::new(
                "InvalidKeyUsageException",
                format!("{arn} key usage is {} which is not valid for {}.", have.name(), what.action(key_type)),
            ));
        }
    }
    if material_expired(key) {
        return Err(KmsError::new("KMSInvalidStateException", format!("{arn} key material has expired.")));
    }
    Ok(())
}

/// CKA_END_DATE (YYYYMMDD) before today, or imported material past its ValidTo: the
/// material may no longer be used.
fn material_expired(key: &Object) -> bool {
    if import::material_expired(key) {
        return true;
    }
    let Some(end) = key.get_raw(CKA_END_DATE).filter(|d| d.len() == 8) else {
        return false;
    };
    let today = clock::iso8601(clock::now()).replace('-', "");
    end < &today.as_bytes()[..8]
}

/// Decides whether `key` may be used for `what` with mechanism `unit`, and records the
/// decision in the audit trail when `key` is a KMS key. If the record cannot be written,
/// the use is refused.
pub fn authorize(token: &Token, key: &Object, what: KeyUse, unit: &dyn Unit) -> Result<()> {
    let pkcs11 = pkcs11_rules(key, what, unit);
    if !is_kms_key(key) {
        return pkcs11;
    }
    let verdict = match &pkcs11 {
        Ok(()) => kms_rules(key, what),
        Err(e) => Err(KmsError::new("InvalidKeyUsageException", format!("{e:?}"))),
    };
    let key_type = key.key_type().unwrap_or(CKK_GENERIC_SECRET);
    let key_id = key_id(key);
    let recorded = token.audit.append(
        &token.serial,
        &audit::Event {
            name: what.action(key_type),
            principal: principal(token),
            key_id: Some(&key_id),
            key_arn: Some(arn(key)),
            key_version: key.ulong(CKA_KMSTOKEN_KEY_VERSION),
            mechanism: Some(unit.ty()),
            error: verdict.as_ref().err().map(|e| (e.code, e.message.clone())),
            read_only: true,
            ..Default::default()
        },
    );
    if let Err(e) = recorded {
        log::error!("key {key_id}: audit record not written: {e}");
        if token.kms.audit_required {
            return Err(e);
        }
    }
    pkcs11?;
    verdict.map_err(|e| {
        log::info!("key {key_id}: {}: {}", e.code, e.message);
        Error::KeyFunctionNotPermitted
    })
}
