//! The KMS layer. Every touch of a key, from every face, passes the one gate (`gate`):
//! the PKCS#11 rules of a use, the key policy (`policy`), the key state table, the key
//! usage and the material's expiry, in that order, audited. The lifecycle operations
//! (enable, disable, deletion, rotation, aliases, tags) live here too, shared by the
//! PKCS#11 functions and the command line, and pass the gate themselves.

pub mod audit;
pub mod blob;
pub mod clock;
pub mod envelope;
pub mod gate;
pub mod import;
pub mod key_policy;
pub mod lifecycle;
pub mod meta;
pub mod policy;
pub mod spec;

use crate::error::Result;
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
    /// A KEM's encapsulation with a public key, and decapsulation with a private one.
    Encapsulate,
    Decapsulate,
}

impl KeyUse {
    /// The attribute that must be TRUE on the key.
    pub(crate) fn attribute(self) -> Option<CK_ATTRIBUTE_TYPE> {
        Some(match self {
            KeyUse::Encrypt => CKA_ENCRYPT,
            KeyUse::Decrypt => CKA_DECRYPT,
            KeyUse::Sign => CKA_SIGN,
            KeyUse::Verify => CKA_VERIFY,
            KeyUse::Wrap => CKA_WRAP,
            KeyUse::Unwrap => CKA_UNWRAP,
            KeyUse::Derive => CKA_DERIVE,
            KeyUse::Encapsulate => CKA_ENCAPSULATE,
            KeyUse::Decapsulate => CKA_DECAPSULATE,
            KeyUse::Digest => return None,
        })
    }

    /// The KMS usage this use needs.
    pub(crate) fn usage(self, key_type: CK_KEY_TYPE) -> Option<KeyUsage> {
        Some(match self {
            KeyUse::Encrypt | KeyUse::Decrypt | KeyUse::Wrap | KeyUse::Unwrap => KeyUsage::EncryptDecrypt,
            KeyUse::Sign | KeyUse::Verify if crate::object::is_asymmetric(key_type) => KeyUsage::SignVerify,
            KeyUse::Sign | KeyUse::Verify => KeyUsage::GenerateVerifyMac,
            KeyUse::Derive | KeyUse::Encapsulate | KeyUse::Decapsulate => KeyUsage::KeyAgreement,
            KeyUse::Digest => return None,
        })
    }
}

pub use crate::error::{AwsError, KmsError};

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

/// The ARN without a copy, for messages made only on a refusal.
pub(crate) fn arn_ref(obj: &Object) -> &str {
    raw_text(obj, CKA_KMSTOKEN_ARN)
}

pub fn state(obj: &Object) -> Result<KeyState> {
    KeyState::from_code(obj.ulong(CKA_KMSTOKEN_KEY_STATE).unwrap_or(KMSTOKEN_STATE_ENABLED))
}

pub fn usage(obj: &Object) -> Option<KeyUsage> {
    KeyUsage::parse(raw_text(obj, CKA_KMSTOKEN_KEY_USAGE))
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
        None => policy::default_policy(policy::KeyKind::of(key)),
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
        AwsError::AccessDenied,
        format!(
            "User: {} is not authorized to perform: kms:{action} on resource: {key_arn} {why}",
            policy::principal_arn(&token.serial, who)
        ),
    )
}

/// The key policy's verdict on `action` (without `kms:`) by `who`.
pub fn policy_verdict(
    token: &Token,
    who: &str,
    key: &Object,
    action: &str,
    context: &Context,
) -> std::result::Result<(), KmsError> {
    let resource = raw_text(key, CKA_KMSTOKEN_ARN);
    let request = Request { principal: who, action, resource, context };
    match key_policy(token, key).decide(&request) {
        Decision::Allow => Ok(()),
        // PKCS#11 lets anyone use a public object (CKA_PRIVATE false: a public key) without
        // logging in; only a statement that denies `public` by name takes that away.
        Decision::ImplicitDeny if who == PUBLIC && !key.is_private() => Ok(()),
        d => Err(access_denied(token, who, action, resource, d == Decision::ExplicitDeny)),
    }
}

/// Appends the audit record of a call on KMS key `key`: its action, the mechanism of a
/// cryptographic use, the encryption context's keys and the refusal, if any. Now and then
/// (`AuditLog::anchor_due`) the database anchors the trail.
pub(crate) fn record(
    token: &Token,
    who: &str,
    key: &Object,
    action: gate::Action,
    mechanism: Option<CK_MECHANISM_TYPE>,
    context: &Context,
    error: Option<&KmsError>,
) -> Result<()> {
    let key_id = key.get_raw(CKA_KMSTOKEN_KEY_ID).and_then(|b| std::str::from_utf8(b).ok());
    token.audit.append(&audit::Event {
        name: action.name(),
        principal: who,
        key_id,
        key_version: mechanism.and(key.ulong(CKA_KMSTOKEN_KEY_VERSION)),
        mechanism,
        context: Some(context),
        error: error.map(|e| (e.code, e.message.clone())),
        read_only: action.read_only(),
        ..Default::default()
    })?;
    if token.audit.anchor_due() {
        token.anchor_trail();
    }
    Ok(())
}

/// CKA_END_DATE (YYYYMMDD) before today, or imported material past its ValidTo: the
/// material may no longer be used.
pub(crate) fn material_expired(key: &Object) -> bool {
    if import::material_expired(key) {
        return true;
    }
    let Some(end) = key.get_raw(CKA_END_DATE).filter(|d| d.len() == 8) else {
        return false;
    };
    let today = clock::iso8601(clock::now()).replace('-', "");
    end < &today.as_bytes()[..8]
}
