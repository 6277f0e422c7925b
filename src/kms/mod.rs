//! The KMS layer. Every use of a key passes `authorize` before a mechanism runs: the
//! PKCS#11 usage rules (class, type, CKA_ENCRYPT and friends, CKA_ALLOWED_MECHANISMS),
//! then, for a token key, its key policy (see `policy`), its KMS state, its one usage and
//! its material's expiry; the outcome is written to the audit trail before the mechanism
//! may start. Calls that touch a key without using it (reading or changing attributes,
//! destroying) pass `permit`, which checks the key policy alone. The lifecycle
//! operations (enable, disable, deletion, rotation, aliases, tags) live here too, shared
//! by the PKCS#11 functions and the command line.

pub mod audit;
pub mod blob;
pub mod clock;
pub mod envelope;
pub mod import;
pub mod key_policy;
pub mod lifecycle;
pub mod meta;
pub mod policy;

use crate::error::{Error, Result};
use crate::mech::Unit;
use crate::object::Object;
use crate::token::Token;
use crate::vendor::*;
use blob::Context;
use cryptoki_sys::*;
use meta::{KeyState, KeyUsage};
use policy::{Decision, Policy, Request};
use std::sync::Arc;

/// Where a request comes from. The PKCS#11 functions serve every capability a key's
/// template gives (profile `pkcs11`); a KMS operation (the `kms` command line, the vendor
/// KMS mechanisms) holds every key to its one KMS usage, as AWS does, in both profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    Pkcs11,
    Kms,
}

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
            KeyUse::Sign | KeyUse::Verify if crate::object::is_asymmetric(key_type) => KeyUsage::SignVerify,
            KeyUse::Sign | KeyUse::Verify => KeyUsage::GenerateVerifyMac,
            KeyUse::Derive => KeyUsage::KeyAgreement,
            KeyUse::Digest => return None,
        })
    }

    /// The KMS action this use is (C_WrapKey is kms:Encrypt on the wrapping key, ...).
    fn action(self, key_type: CK_KEY_TYPE) -> &'static str {
        let mac = !crate::object::is_asymmetric(key_type);
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

/// The principal of a session nobody has logged in to.
pub const PUBLIC: &str = "public";

/// The principal name of whoever is logged in on `token`: `so`, `user`, `user/NAME`, or
/// `public` before login.
pub fn principal(token: &Token) -> Arc<str> {
    token.principal().unwrap_or_else(|| Arc::from(PUBLIC))
}

fn raw_text(obj: &Object, ty: CK_ATTRIBUTE_TYPE) -> &str {
    std::str::from_utf8(obj.get_raw(ty).unwrap_or_default()).unwrap_or_default()
}

/// The key policy of `key`: the one put-key-policy stored, parsed once per cached object,
/// else the default policy of its kind. A stored document that no longer reads allows
/// nothing (put-key-policy checked it, so only a damaged keystore gets there).
pub fn key_policy(token: &Token, key: &Object) -> Arc<Policy> {
    match key.get_raw(CKA_KMSTOKEN_KEY_POLICY) {
        Some(text) => key.kms_prepared(|| {
            let parsed = std::str::from_utf8(text)
                .map_err(|_| KmsError::new(policy::MALFORMED, "not UTF-8"))
                .and_then(|t| policy::parse(t, &token.serial));
            parsed.unwrap_or_else(|e| {
                log::error!("key {}: stored key policy unreadable ({}); denying all", key_id(key), e.message);
                Policy::deny_all()
            })
        }),
        None => policy::default_policy(raw_text(key, CKA_KMSTOKEN_KEY_USAGE), raw_text(key, CKA_KMSTOKEN_KEY_SPEC)),
    }
}

/// AccessDeniedException in the words of AWS.
pub fn access_denied(token: &Token, who: &str, action: &str, key_arn: &str, explicit: bool) -> KmsError {
    let why = if explicit {
        "with an explicit deny in a resource-based policy".to_string()
    } else {
        format!("because no resource-based policy allows the kms:{action} action")
    };
    KmsError::new(
        "AccessDeniedException",
        format!(
            "User: {} is not authorized to perform: kms:{action} on resource: {key_arn} {why}",
            policy::principal_arn(&token.serial, who)
        ),
    )
}

/// The key policy's verdict on `action` (without `kms:`) by the principal logged in.
pub fn policy_verdict(
    token: &Token,
    key: &Object,
    action: &str,
    context: &Context,
) -> std::result::Result<(), KmsError> {
    let who = principal(token);
    let resource = raw_text(key, CKA_KMSTOKEN_ARN);
    let request = Request { principal: &who, action, resource, context };
    match key_policy(token, key).decide(&request) {
        Decision::Allow => Ok(()),
        // PKCS#11 lets anyone use a public object (CKA_PRIVATE false: a public key) without
        // logging in; only a statement that denies `public` by name takes that away.
        Decision::ImplicitDeny if &*who == PUBLIC && !key.is_private() => Ok(()),
        d => Err(access_denied(token, &who, action, resource, d == Decision::ExplicitDeny)),
    }
}

/// Checks a call that touches KMS key `key` without using it (C_GetAttributeValue is
/// kms:DescribeKey, C_DestroyObject kms:ScheduleKeyDeletion, ...) against its key policy.
/// A refusal is audited and returned as `Err` of the AWS error; objects that are not KMS
/// keys pass.
pub fn permit(token: &Token, key: &Object, action: &str, context: &Context) -> std::result::Result<(), KmsError> {
    if !is_kms_key(key) {
        return Ok(());
    }
    let verdict = policy_verdict(token, key, action, context);
    if let Err(e) = &verdict {
        if let Err(a) = record(token, key, action, None, context, Some(e)) {
            log::error!("key {}: audit record of a denial not written: {a}", key_id(key));
        }
    }
    verdict
}

/// Appends the audit record of a call on KMS key `key`: its action, the mechanism of a
/// cryptographic use, the encryption context's keys and the refusal, if any.
fn record(
    token: &Token,
    key: &Object,
    action: &str,
    mechanism: Option<CK_MECHANISM_TYPE>,
    context: &Context,
    error: Option<&KmsError>,
) -> Result<()> {
    let key_id = key_id(key);
    token.audit.append(
        &token.serial,
        &audit::Event {
            name: action,
            principal: &principal(token),
            key_id: Some(&key_id),
            key_arn: Some(arn(key)),
            key_version: mechanism.and(key.ulong(CKA_KMSTOKEN_KEY_VERSION)),
            mechanism,
            encryption_context_keys: context.keys().cloned().collect(),
            error: error.map(|e| (e.code, e.message.clone())),
            read_only: true,
            ..Default::default()
        },
    )
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

/// The state table for cryptographic use (kms-semantics §4.2) and, when `one_usage`, the
/// key's one KMS usage.
fn kms_rules(key: &Object, what: KeyUse, one_usage: bool) -> std::result::Result<(), KmsError> {
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
    if let (true, Some(have), Some(want)) = (one_usage, usage(key), what.usage(key_type)) {
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

/// Decides whether `key` may be used for `what` with mechanism `unit` by a request of
/// `face`, and records the decision in the audit trail when `key` is a KMS key. If the
/// record cannot be written, the use is refused. `context` is the encryption context
/// of a KMS mechanism (the key policy's conditions may look at it); `operation` names a
/// KMS operation whose action is not the use's own: AWS asks kms:GenerateDataKey (not
/// kms:Encrypt) of generate-data-key, and kms:ReEncryptFrom / kms:ReEncryptTo of
/// re-encrypt. The policy and the audit record name that action.
pub fn authorize(
    token: &Token,
    key: &Object,
    what: KeyUse,
    unit: &dyn Unit,
    face: Face,
    context: &Context,
    operation: Option<&str>,
) -> Result<()> {
    let pkcs11 = pkcs11_rules(key, what, unit);
    if !is_kms_key(key) {
        return pkcs11;
    }
    let key_type = key.key_type().unwrap_or(CKK_GENERIC_SECRET);
    let action = operation.unwrap_or(what.action(key_type));
    // As in AWS, the key policy is asked first: a principal it refuses learns nothing of
    // the key's state.
    // The vendor KMS mechanisms are KMS operations whichever face calls them.
    let kms_operation = face == Face::Kms || matches!(unit.ty(), CKM_KMSTOKEN_ENCRYPT | CKM_KMSTOKEN_DECRYPT);
    let one_usage = kms_operation || token.kms.profile.one_usage();
    let verdict = match &pkcs11 {
        Ok(()) => policy_verdict(token, key, action, context).and_then(|()| kms_rules(key, what, one_usage)),
        Err(e) => Err(KmsError::new("InvalidKeyUsageException", format!("{e:?}"))),
    };
    if let Err(e) = record(token, key, action, Some(unit.ty()), context, verdict.as_ref().err()) {
        log::error!("key {}: audit record not written: {e}", key_id(key));
        if token.kms.audit_required {
            return Err(e);
        }
    }
    pkcs11?;
    verdict.map_err(|e| {
        log::info!("key {}: {}: {}", key_id(key), e.code, e.message);
        Error::KeyFunctionNotPermitted
    })
}
