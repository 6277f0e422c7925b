//! The one gate every touch of a key passes, from every face: a typed request (who, which
//! action, which key, the cryptographic use if any, the encryption context) is checked in
//! one order, and the outcome of a KMS key's check is audited:
//!
//! 1. the PKCS#11 rules of a cryptographic use (class, key type for the mechanism, the
//!    capability attribute, CKA_ALLOWED_MECHANISMS);
//! 2. the key policy (as in AWS, first: a principal it refuses learns nothing of the key);
//! 3. the key state table (kms-semantics §4.2), per action;
//! 4. the KMS key usage of a use, when the face or the profile holds keys to it;
//! 5. the expiry of the key material, for a use.
//!
//! Objects that are not KMS keys pass steps 2 to 5. On a KMS key, every refusal is
//! audited here, and so is every use and every read of the `kms` face that goes through;
//! a change that goes through is audited by the operation, with its outcome
//! (`Action::audited_on_success`).

use super::meta::KeyState;
use super::{blob::Context, import, is_kms_key, policy_verdict, principal, record, state, usage, Face, KeyUse};
use crate::error::{AwsError, KmsError};
use crate::error::{Error, Result};
use crate::mech::Unit;
use crate::object::Object;
use crate::token::Token;
use cryptoki_sys::*;
use std::sync::Arc;

named_enum! {
    /// A KMS action, as key policies and the audit trail name it (without `kms:`).
    pub enum Action {
        // Cryptographic uses.
        Encrypt => "Encrypt",
        Decrypt => "Decrypt",
        GenerateMac => "GenerateMac",
        VerifyMac => "VerifyMac",
        Sign => "Sign",
        Verify => "Verify",
        DeriveSharedSecret => "DeriveSharedSecret",
        GenerateDataKey => "GenerateDataKey",
        GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
        GenerateDataKeyPair => "GenerateDataKeyPair",
        GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
        ReEncryptFrom => "ReEncryptFrom",
        ReEncryptTo => "ReEncryptTo",
        /// C_DigestKey: the key's value digested.
        DigestKey => "DigestKey",
        /// The key's value leaving the token: C_GetAttributeValue(CKA_VALUE) of an extractable
        /// key, C_WrapKey of it, C_CopyObject (AWS's ReplicateKey copies a key too).
        ReplicateKey => "ReplicateKey",
        GetPublicKey => "GetPublicKey",
        // Management.
        DescribeKey => "DescribeKey",
        GetKeyPolicy => "GetKeyPolicy",
        PutKeyPolicy => "PutKeyPolicy",
        ListKeyPolicies => "ListKeyPolicies",
        ListResourceTags => "ListResourceTags",
        EnableKey => "EnableKey",
        DisableKey => "DisableKey",
        ScheduleKeyDeletion => "ScheduleKeyDeletion",
        CancelKeyDeletion => "CancelKeyDeletion",
        EnableKeyRotation => "EnableKeyRotation",
        DisableKeyRotation => "DisableKeyRotation",
        GetKeyRotationStatus => "GetKeyRotationStatus",
        RotateKeyOnDemand => "RotateKeyOnDemand",
        ListKeyRotations => "ListKeyRotations",
        CreateAlias => "CreateAlias",
        UpdateAlias => "UpdateAlias",
        DeleteAlias => "DeleteAlias",
        TagResource => "TagResource",
        UntagResource => "UntagResource",
        UpdateKeyDescription => "UpdateKeyDescription",
        GetParametersForImport => "GetParametersForImport",
        ImportKeyMaterial => "ImportKeyMaterial",
        DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial",
    }
}

/// Which key states an action is allowed in, as the state table of kms-semantics §4.2
/// has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum States {
    /// Enabled only (every cryptographic use, GetPublicKey).
    Use,
    /// Any state (descriptions, policies, listings, DeleteAlias).
    Any,
    /// Not pending deletion (aliases, tags, descriptions).
    NotPendingDeletion,
    /// Enabled or Disabled (EnableKey, DisableKey).
    EnabledOrDisabled,
    /// Only pending deletion (CancelKeyDeletion).
    PendingDeletionOnly,
    /// Enabled, for a key whose material the token made (rotation).
    Rotation,
    /// Pending import, or Enabled/Disabled for an EXTERNAL key (import of material).
    Import,
}

impl Action {
    fn states(self) -> States {
        use Action::*;
        match self {
            Encrypt
            | Decrypt
            | GenerateMac
            | VerifyMac
            | Sign
            | Verify
            | DeriveSharedSecret
            | GenerateDataKey
            | GenerateDataKeyWithoutPlaintext
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | ReEncryptFrom
            | ReEncryptTo
            | DigestKey
            | ReplicateKey
            | GetPublicKey => States::Use,
            DescribeKey
            | GetKeyPolicy
            | PutKeyPolicy
            | ListKeyPolicies
            | ListResourceTags
            | DeleteAlias
            | DeleteImportedKeyMaterial
            | GetKeyRotationStatus
            | ListKeyRotations => States::Any,
            CreateAlias | UpdateAlias | TagResource | UntagResource | UpdateKeyDescription | ScheduleKeyDeletion => {
                States::NotPendingDeletion
            }
            EnableKey | DisableKey => States::EnabledOrDisabled,
            CancelKeyDeletion => States::PendingDeletionOnly,
            EnableKeyRotation | DisableKeyRotation | RotateKeyOnDemand => States::Rotation,
            GetParametersForImport | ImportKeyMaterial => States::Import,
        }
    }

    /// CloudTrail's readOnly: uses and reads are; changes are not.
    pub fn read_only(self) -> bool {
        use Action::*;
        self.states() == States::Use
            || matches!(
                self,
                DescribeKey
                    | GetKeyPolicy
                    | ListKeyPolicies
                    | ListResourceTags
                    | GetKeyRotationStatus
                    | ListKeyRotations
            )
    }

    /// Whether the gate audits the action when it lets it through: every use; the reads
    /// of the `kms` face. A change (enable, alias, policy...) is audited by the operation
    /// itself, with its outcome; the metadata reads of the PKCS#11 face are not audited
    /// when they succeed (a client lists every attribute of every key it finds).
    fn audited_on_success(self, face: Face) -> bool {
        self.states() == States::Use || (face == Face::Kms && self.read_only())
    }

    /// The action of a cryptographic use of a key of `key_type`.
    pub fn of_use(what: KeyUse, key_type: CK_KEY_TYPE) -> Action {
        let mac = !crate::object::is_asymmetric(key_type);
        match what {
            KeyUse::Encrypt | KeyUse::Wrap => Action::Encrypt,
            KeyUse::Decrypt | KeyUse::Unwrap => Action::Decrypt,
            KeyUse::Sign if mac => Action::GenerateMac,
            KeyUse::Verify if mac => Action::VerifyMac,
            KeyUse::Sign => Action::Sign,
            KeyUse::Verify => Action::Verify,
            KeyUse::Derive | KeyUse::Encapsulate | KeyUse::Decapsulate => Action::DeriveSharedSecret,
            KeyUse::Digest => Action::DigestKey,
        }
    }
}

/// One request to the gate.
pub struct Request<'a> {
    /// Who asks: `so`, `user`, `user/NAME`, or `public` (no login); None for whoever is
    /// logged in on the token, looked up only for a KMS key (a session key's use skips it).
    pub principal: Option<Arc<str>>,
    pub key: &'a Object,
    pub action: Action,
    pub face: Face,
    /// The cryptographic use and its mechanism, for a use.
    pub mechanism: Option<(KeyUse, &'a dyn Unit)>,
    pub context: &'a Context,
}

/// The encryption context of a request that has none.
static NO_CONTEXT: Context = Context::new();

impl<'a> Request<'a> {
    /// A request by whoever is logged in that touches `key` without a mechanism.
    pub fn touch(key: &'a Object, action: Action, face: Face) -> Request<'a> {
        Request { principal: None, key, action, face, mechanism: None, context: &NO_CONTEXT }
    }

    /// A cryptographic use of `key` through `unit` by whoever is logged in.
    pub fn use_of(
        key: &'a Object,
        action: Action,
        face: Face,
        what: (KeyUse, &'a dyn Unit),
        context: &'a Context,
    ) -> Request<'a> {
        Request { principal: None, key, action, face, mechanism: Some(what), context }
    }
}

/// The state table (step 3) for `action` on `key`.
fn state_rule(key: &Object, action: Action) -> std::result::Result<(), KmsError> {
    let arn = super::arn_ref(key);
    let st =
        state(key).map_err(|_| KmsError::new(AwsError::KmsInvalidState, format!("{arn} has an unknown state.")))?;
    let pending_deletion = || KmsError::new(AwsError::KmsInvalidState, format!("{arn} is pending deletion."));
    let pending_import = || KmsError::new(AwsError::KmsInvalidState, format!("{arn} is pending import."));
    let disabled = || KmsError::new(AwsError::Disabled, format!("{arn} is disabled."));
    let external = import::is_external(key);
    match (action.states(), st) {
        (States::Any, _) => Ok(()),
        (_, KeyState::PendingDeletion) if action.states() == States::PendingDeletionOnly => Ok(()),
        (States::PendingDeletionOnly, _) => {
            Err(KmsError::new(AwsError::KmsInvalidState, format!("{arn} is not pending deletion.")))
        }
        (States::Import, KeyState::PendingDeletion) => Err(pending_deletion()),
        (States::Import, KeyState::PendingImport) => Ok(()),
        (States::Import, _) if external => Ok(()),
        (States::Import, _) => Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("{arn} origin is AWS_KMS which is not valid for this operation."),
        )),
        (_, KeyState::PendingDeletion) => Err(pending_deletion()),
        (States::Rotation, _) if external => Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("{arn} origin is EXTERNAL which is not valid for this operation."),
        )),
        (States::NotPendingDeletion, _) => Ok(()),
        (_, KeyState::PendingImport) => Err(pending_import()),
        (States::EnabledOrDisabled, _) => Ok(()),
        (States::Use | States::Rotation, KeyState::Disabled) => Err(disabled()),
        (States::Use | States::Rotation, KeyState::Enabled) => Ok(()),
    }
}

/// The PKCS#11 rules of a cryptographic use (step 1).
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

/// The KMS usage of a use (step 4) and the expiry of the material (step 5).
fn use_rules(key: &Object, what: KeyUse, action: Action, one_usage: bool) -> std::result::Result<(), KmsError> {
    let arn = super::arn_ref(key);
    let key_type = key.key_type().unwrap_or(CKK_GENERIC_SECRET);
    if let (true, Some(have), Some(want)) = (one_usage, usage(key), what.usage(key_type)) {
        if have != want {
            return Err(KmsError::new(
                AwsError::InvalidKeyUsage,
                format!("{arn} key usage is {} which is not valid for {}.", have.name(), action.name()),
            ));
        }
    }
    if super::material_expired(key) {
        return Err(KmsError::new(AwsError::KmsInvalidState, format!("{arn} key material has expired.")));
    }
    Ok(())
}

/// The gate. `Ok` lets the request go on; a refusal is `Error::Kms` with the AWS error
/// (CKR_KEY_FUNCTION_NOT_PERMITTED for a use through a mechanism, CKR_ACTION_PROHIBITED
/// for the rest), or
/// the PKCS#11 error of step 1. If the audit record of a KMS key cannot be written while
/// the token requires it, the request is refused with that error.
pub fn check(token: &Token, r: &Request) -> Result<()> {
    let pkcs11 = match r.mechanism {
        Some((what, unit)) => pkcs11_rules(r.key, what, unit),
        None => Ok(()),
    };
    if !is_kms_key(r.key) {
        return pkcs11;
    }
    let who = r.principal.clone().unwrap_or_else(|| principal(token));
    // The vendor KMS mechanisms are KMS operations whichever face calls them.
    let kms_operation = r.face == Face::Kms
        || r.mechanism.is_some_and(|(_, u)| {
            matches!(u.ty(), crate::vendor::CKM_KMSTOKEN_ENCRYPT | crate::vendor::CKM_KMSTOKEN_DECRYPT)
        });
    let one_usage = kms_operation || token.kms.profile.one_usage();
    let verdict = match &pkcs11 {
        Ok(()) => policy_verdict(token, &who, r.key, r.action.name(), r.context)
            .and_then(|()| state_rule(r.key, r.action))
            .and_then(|()| match r.mechanism {
                Some((what, _)) => use_rules(r.key, what, r.action, one_usage),
                None => Ok(()),
            }),
        Err(e) => Err(KmsError::new(AwsError::InvalidKeyUsage, format!("{e:?}"))),
    };
    if verdict.is_err() || r.action.audited_on_success(r.face) {
        let mechanism = r.mechanism.map(|(_, u)| u.ty());
        if let Err(e) = record(token, &who, r.key, r.action, mechanism, r.context, verdict.as_ref().err()) {
            log::error!("key {}: audit record not written: {e}", super::key_id(r.key));
            if token.kms.audit_required {
                return Err(e);
            }
        }
    }
    pkcs11?;
    verdict.map_err(|e| {
        log::info!("key {}: {}: {}", super::key_id(r.key), e.code.name(), e.message);
        // A use through a mechanism is a key function; a touch (a read, a digest of the
        // value, a copy, a change) is an action.
        Error::kms(e, if r.mechanism.is_some() { CKR_KEY_FUNCTION_NOT_PERMITTED } else { CKR_ACTION_PROHIBITED })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::spec::Origin;
    use crate::object::ck_ulong;
    use crate::vendor::*;

    fn key(st: KeyState, external: bool) -> Object {
        let mut o = Object::default();
        o.set(CKA_CLASS, ck_ulong(CKO_SECRET_KEY));
        o.set(CKA_KEY_TYPE, ck_ulong(CKK_AES));
        o.set(CKA_KMSTOKEN_KEY_STATE, ck_ulong(st.code()));
        o.set(CKA_KMSTOKEN_ARN, b"arn:k".to_vec());
        let origin = if external { Origin::External } else { Origin::AwsKms };
        o.set(CKA_KMSTOKEN_ORIGIN, origin.name().as_bytes().to_vec());
        o
    }

    #[test]
    fn every_action_has_a_name_that_parses_back() {
        for &a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
    }

    /// The state table of kms-semantics §4.2, row by row: the error of each (action,
    /// state), None for success.
    #[test]
    fn the_state_table() {
        use AwsError::{KmsInvalidState, UnsupportedOperation};
        use KeyState::{Enabled, PendingDeletion, PendingImport};
        let cases: &[(Action, [Option<AwsError>; 4])] = &[
            (Action::Encrypt, [None, Some(AwsError::Disabled), Some(KmsInvalidState), Some(KmsInvalidState)]),
            (Action::GetPublicKey, [None, Some(AwsError::Disabled), Some(KmsInvalidState), Some(KmsInvalidState)]),
            (Action::DescribeKey, [None, None, None, None]),
            (Action::DeleteAlias, [None, None, None, None]),
            (Action::CreateAlias, [None, None, Some(KmsInvalidState), None]),
            (Action::TagResource, [None, None, Some(KmsInvalidState), None]),
            (Action::EnableKey, [None, None, Some(KmsInvalidState), Some(KmsInvalidState)]),
            (Action::ScheduleKeyDeletion, [None, None, Some(KmsInvalidState), None]),
            (Action::CancelKeyDeletion, [Some(KmsInvalidState), Some(KmsInvalidState), None, Some(KmsInvalidState)]),
            (Action::EnableKeyRotation, [None, Some(AwsError::Disabled), Some(KmsInvalidState), Some(KmsInvalidState)]),
        ];
        for (action, row) in cases {
            for (st, want) in [Enabled, KeyState::Disabled, PendingDeletion, PendingImport].into_iter().zip(row) {
                let got = state_rule(&key(st, false), *action).err().map(|e| e.code);
                assert_eq!(got, *want, "{action:?} in {st:?}");
            }
        }
        // The material of an EXTERNAL key: rotation is unsupported, import allowed.
        let ext = key(Enabled, true);
        assert_eq!(state_rule(&ext, Action::EnableKeyRotation).unwrap_err().code, UnsupportedOperation);
        assert!(state_rule(&ext, Action::ImportKeyMaterial).is_ok());
        assert_eq!(state_rule(&key(Enabled, false), Action::ImportKeyMaterial).unwrap_err().code, UnsupportedOperation);
        assert!(state_rule(&key(PendingImport, true), Action::ImportKeyMaterial).is_ok());
        assert_eq!(
            state_rule(&key(PendingImport, true), Action::EnableKeyRotation).unwrap_err().code,
            UnsupportedOperation
        );
    }
}
