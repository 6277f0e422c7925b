//! Imported key material (BYOK), as AWS KMS imports it. A key created with Origin
//! EXTERNAL waits in PendingImport. GetParametersForImport makes an RSA wrapping key pair
//! and an import token valid 24 hours: the public half goes to the caller, the private
//! half stays sealed on the key together with the token's id, and a later call replaces
//! both. ImportKeyMaterial unwraps the material with it (RSAES-OAEP, or RSA-OAEP of an AES
//! key followed by AES key wrap with padding) and makes the key usable, until the
//! material's optional ValidTo: then the material is deleted and the key waits again.
//!
//! A key only ever takes the material first imported into it: a keyed fingerprint of that
//! material (HMAC-SHA256 under a key derived from the token master key, never a plain
//! hash) outlives every deletion and recognises it when it comes back.
//!
//! Import token layout: magic "KTIT" | key id (16, the UUID's bytes) | token id (16).
//! Sealed parameters (CKA_KMSTOKEN_IMPORT_PARAMETERS): version (1) | wrapping algorithm
//! (1) | token id (16) | valid-to (8, big-endian seconds) | RSAPrivateKey DER.

use super::audit::Event;
use super::gate::Action;
use super::lifecycle::{self as lc, KmsResult};
use super::meta::KeyState;
use super::spec::{ExpirationModel, KeySpec, Material, Origin, WrappingAlgorithm, TABLE};
use super::{arn, clock, is_kms_key, key_id, state, AwsError, KmsError};
use crate::crypto::{self, Hash, RsaPrivateKey, RsaPublicKey};
use crate::error::Result;
use crate::object::{ck_ulong, Object};
use crate::token::Token;
use crate::vendor::*;
use cryptoki_sys::*;
use serde_json::{json, Value};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// How long import parameters stay valid, as in AWS.
pub const PARAMETERS_LIFETIME: i64 = clock::DAY;
/// The furthest ValidTo may lie ahead, as in AWS.
pub const MAX_VALID_TO_DAYS: i64 = 365;

const TOKEN_MAGIC: &[u8; 4] = b"KTIT";
const TOKEN_LEN: usize = 4 + 16 + 16;
const PARAMETERS_VERSION: u8 = 1;
const PARAMETERS_HEADER: usize = 1 + 1 + 16 + 8;
const FINGERPRINT_PURPOSE: &str = "imported key material fingerprint";

impl WrappingAlgorithm {
    fn code(self) -> u8 {
        Self::ALL.iter().position(|a| *a == self).unwrap_or(0) as u8 + 1
    }

    fn from_code(code: u8) -> Option<WrappingAlgorithm> {
        Self::ALL.get((code as usize).checked_sub(1)?).copied()
    }

    fn hash(self) -> Hash {
        match self {
            WrappingAlgorithm::OaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => Hash::Sha1,
            _ => Hash::Sha256,
        }
    }

    /// RSA-OAEP of an ephemeral AES key, then the material under AES-KWP.
    fn hybrid(self) -> bool {
        matches!(self, WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256)
    }
}

/// The modulus length of a WrappingKeySpec.
pub fn wrapping_key_bits(spec: &str) -> KmsResult<usize> {
    match KeySpec::parse(spec).map(|s| s.row().material) {
        Some(Material::Rsa(bits)) => Ok(bits),
        _ => {
            let rsa: Vec<&str> =
                TABLE.iter().filter(|r| matches!(r.material, Material::Rsa(_))).map(|r| r.name).collect();
            Err(KmsError::new(
                AwsError::Validation,
                format!("WrappingKeySpec {spec} is not supported; use {}", rsa.join(", ")),
            ))
        }
    }
}

/// What GetParametersForImport returns.
pub struct ImportParameters {
    pub import_token: Vec<u8>,
    /// The wrapping public key, SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    pub valid_to: i64,
}

/// When imported material expires: `Some(seconds since the epoch)`, or never.
pub type ValidTo = Option<i64>;

/// ExpirationModel and ValidTo as AWS reads them: KEY_MATERIAL_EXPIRES (the default)
/// needs a ValidTo in the future, at most 365 days ahead; KEY_MATERIAL_DOES_NOT_EXPIRE
/// takes none.
pub fn expiration(model: Option<&str>, valid_to: Option<i64>) -> KmsResult<ValidTo> {
    use ExpirationModel::*;
    let invalid = |m: String| KmsError::new(AwsError::Validation, m);
    let (expires, never) = (KeyMaterialExpires.name(), KeyMaterialDoesNotExpire.name());
    let model = match model {
        None => KeyMaterialExpires,
        Some(name) => ExpirationModel::parse(name)
            .ok_or_else(|| invalid(format!("ExpirationModel {name} is not {expires} or {never}")))?,
    };
    match (model, valid_to) {
        (KeyMaterialDoesNotExpire, None) => Ok(None),
        (KeyMaterialDoesNotExpire, Some(_)) => {
            Err(invalid(format!("ValidTo must be omitted when ExpirationModel is {never}")))
        }
        (KeyMaterialExpires, None) => Err(invalid(format!("ValidTo is required when ExpirationModel is {expires}"))),
        (KeyMaterialExpires, Some(t)) => {
            let now = clock::now();
            if t <= now || t > now + MAX_VALID_TO_DAYS * clock::DAY {
                return Err(invalid(format!(
                    "ValidTo {} must lie in the future and at most {MAX_VALID_TO_DAYS} days ahead",
                    clock::iso8601(t)
                )));
            }
            Ok(Some(t))
        }
    }
}

/// Runs an import operation through the gate and records it with `details`.
fn audited<T>(
    token: &Token,
    action: Action,
    handle: u64,
    details: Value,
    op: impl FnOnce(&Object) -> KmsResult<T>,
) -> KmsResult<T> {
    lc::audited_with(token, action, handle, Some(details), op)
}

/// Import serves keys made for it, and not while their deletion is pending.
fn importable(obj: &Object) -> KmsResult<()> {
    if !is_external(obj) {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!(
                "{} origin is not {}; only keys created for imported key material take it.",
                arn(obj),
                Origin::External.name()
            ),
        ));
    }
    if obj.class() != CKO_SECRET_KEY {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("{} is asymmetric; importing asymmetric key material is not served yet.", arn(obj)),
        ));
    }
    if state(obj)? == KeyState::PendingDeletion {
        return Err(KmsError::new(AwsError::KmsInvalidState, format!("{} is pending deletion.", arn(obj))));
    }
    Ok(())
}

/// Changes every object of the key in one transaction.
fn rewrite(token: &Token, obj: &Object, change: impl Fn(&mut Object) -> Result<()>) -> KmsResult<()> {
    let mut updates = Vec::new();
    for h in token.objects_of_key(&key_id(obj))? {
        let mut o = (*token.object_any(h)?).clone();
        change(&mut o)?;
        updates.push((h, o));
    }
    token.apply(Vec::new(), updates, Vec::new())?;
    Ok(())
}

/// GetParametersForImport: a new wrapping key pair and import token for key `handle`,
/// replacing any earlier ones.
pub fn get_parameters(token: &Token, handle: u64, algorithm: &str, key_spec: &str) -> KmsResult<ImportParameters> {
    let details = json!({ "wrappingAlgorithm": algorithm, "wrappingKeySpec": key_spec });
    audited(token, Action::GetParametersForImport, handle, details, |obj| {
        let alg = WrappingAlgorithm::parse(algorithm)?;
        let bits = wrapping_key_bits(key_spec)?;
        importable(obj)?;
        let parts = crypto::rsa_generate(bits)?;
        let private = RsaPrivateKey::new(&parts.as_refs())?;
        let public_key = RsaPublicKey::new(&parts.n, &parts.e)?.spki().to_vec();
        let mut token_id = [0u8; 16];
        crypto::random(&mut token_id)?;
        let valid_to = clock::now() + PARAMETERS_LIFETIME;
        let mut sealed = Zeroizing::new(vec![PARAMETERS_VERSION, alg.code()]);
        sealed.extend_from_slice(&token_id);
        sealed.extend_from_slice(&valid_to.to_be_bytes());
        sealed.extend_from_slice(&private.pkcs1_der());
        rewrite(token, obj, |o| {
            if o.class() == CKO_SECRET_KEY {
                o.set(CKA_KMSTOKEN_IMPORT_PARAMETERS, sealed.to_vec());
            }
            Ok(())
        })?;
        let mut import_token = TOKEN_MAGIC.to_vec();
        import_token.extend_from_slice(uuid_bytes(obj)?.as_slice());
        import_token.extend_from_slice(&token_id);
        Ok(ImportParameters { import_token, public_key, valid_to })
    })
}

fn uuid_bytes(obj: &Object) -> KmsResult<[u8; 16]> {
    uuid::Uuid::parse_str(&key_id(obj))
        .map(|u| *u.as_bytes())
        .map_err(|_| KmsError::new(AwsError::KmsInternal, "key id is not a UUID"))
}

/// The wrapping key and algorithm of the parameters `import_token` names, once the token
/// is known to be this key's current one and still valid.
fn redeem(obj: &Object, import_token: &[u8]) -> KmsResult<(WrappingAlgorithm, RsaPrivateKey)> {
    let invalid = |m: &str| KmsError::new(AwsError::InvalidImportToken, m);
    if import_token.len() != TOKEN_LEN || &import_token[..4] != TOKEN_MAGIC {
        return Err(invalid("The import token is not valid."));
    }
    if import_token[4..20] != uuid_bytes(obj)? {
        return Err(invalid("The import token was issued for another key."));
    }
    let stored = obj
        .get_raw(CKA_KMSTOKEN_IMPORT_PARAMETERS)
        .filter(|s| s.len() > PARAMETERS_HEADER && s[0] == PARAMETERS_VERSION)
        .ok_or_else(|| invalid("No import parameters are outstanding for this key: call GetParametersForImport."))?;
    if !bool::from(stored[2..18].ct_eq(&import_token[20..36])) {
        return Err(invalid("The import token was replaced by a later GetParametersForImport."));
    }
    let valid_to = i64::from_be_bytes(stored[18..26].try_into().map_err(|_| invalid("corrupt parameters"))?);
    if clock::now() >= valid_to {
        return Err(KmsError::new(
            AwsError::ExpiredImportToken,
            format!("The import token expired at {}: call GetParametersForImport again.", clock::iso8601(valid_to)),
        ));
    }
    let alg = WrappingAlgorithm::from_code(stored[1]).ok_or_else(|| invalid("corrupt parameters"))?;
    Ok((alg, RsaPrivateKey::from_pkcs1_der(&stored[PARAMETERS_HEADER..])?))
}

/// The material inside `encrypted`; anything that does not unwrap is
/// InvalidCiphertextException.
fn unwrap(alg: WrappingAlgorithm, key: &RsaPrivateKey, encrypted: &[u8]) -> KmsResult<Zeroizing<Vec<u8>>> {
    let bad = || {
        KmsError::new(
            AwsError::InvalidCiphertext,
            "The encrypted key material does not unwrap with the wrapping key and algorithm of this import token.",
        )
    };
    let h = alg.hash();
    if !alg.hybrid() {
        return key.decrypt_oaep(h, h, b"", encrypted).map_err(|_| bad());
    }
    let k = key.modulus_len();
    if encrypted.len() <= k {
        return Err(bad());
    }
    let (wrapped_key, wrapped_material) = encrypted.split_at(k);
    let aes = key.decrypt_oaep(h, h, b"", wrapped_key).map_err(|_| bad())?;
    if !crypto::is_kek_len(aes.len()) {
        return Err(bad());
    }
    crypto::kwp_unwrap(&aes, wrapped_material).map_err(|_| bad())
}

/// The lengths of material a key spec takes, as in AWS.
fn material_lengths(spec: &[u8]) -> Option<std::ops::RangeInclusive<usize>> {
    let (min, max) = KeySpec::parse(std::str::from_utf8(spec).ok()?)?.row().import?;
    Some(min..=max)
}

fn fingerprint(token: &Token, obj: &Object, material: &[u8]) -> KmsResult<Vec<u8>> {
    let key = token.purpose_key(FINGERPRINT_PURPOSE)?;
    let mut m = crypto::Hmac::new(Hash::Sha256, &key);
    m.update(key_id(obj).as_bytes());
    m.update(&[0]);
    m.update(material);
    Ok(m.finish())
}

/// CKA_END_DATE of material valid to `t`: its day (YYYYMMDD).
fn end_date(t: i64) -> Vec<u8> {
    clock::iso8601(t).replace('-', "").as_bytes()[..8].to_vec()
}

/// ImportKeyMaterial: unwraps the material with the parameters of `import_token` and
/// makes it the key's. A key pending import becomes Enabled; a disabled key stays
/// disabled; the same material imported again only changes its expiry.
pub fn import_material(
    token: &Token,
    handle: u64,
    import_token: &[u8],
    encrypted: &[u8],
    valid_to: ValidTo,
) -> KmsResult<()> {
    let details = json!({
        "expirationModel": ExpirationModel::of(valid_to).name(),
        "validTo": valid_to.map(clock::iso8601),
    });
    audited(token, Action::ImportKeyMaterial, handle, details, |obj| {
        importable(obj)?;
        let (alg, wrapping) = redeem(obj, import_token)?;
        let material = unwrap(alg, &wrapping, encrypted)?;
        let spec = obj.get_raw(CKA_KMSTOKEN_KEY_SPEC).unwrap_or_default();
        let lengths = material_lengths(spec).ok_or_else(|| {
            KmsError::new(AwsError::UnsupportedOperation, format!("{} takes no imported key material.", arn(obj)))
        })?;
        if !lengths.contains(&material.len()) {
            return Err(KmsError::new(
                AwsError::InvalidCiphertext,
                format!(
                    "The key material is {} bytes; a {} key takes {} to {} bytes.",
                    material.len(),
                    String::from_utf8_lossy(spec),
                    lengths.start(),
                    lengths.end()
                ),
            ));
        }
        let print = fingerprint(token, obj, &material)?;
        if let Some(first) = obj.get_raw(CKA_KMSTOKEN_MATERIAL_FINGERPRINT) {
            if !bool::from(first.ct_eq(&print)) {
                return Err(KmsError::new(
                    AwsError::IncorrectKeyMaterial,
                    format!("The key material is not the material first imported into {}.", arn(obj)),
                ));
            }
        }
        let next = match state(obj)? {
            KeyState::Disabled => KeyState::Disabled,
            _ => KeyState::Enabled,
        };
        rewrite(token, obj, |o| {
            if o.class() == CKO_SECRET_KEY {
                o.set(CKA_VALUE, material.to_vec());
                o.set(CKA_VALUE_LEN, ck_ulong(material.len() as u64));
                o.attrs.remove(&CKA_CHECK_VALUE);
                o.set(CKA_KMSTOKEN_MATERIAL_FINGERPRINT, print.clone());
            }
            o.set(CKA_KMSTOKEN_VALID_TO, ck_ulong(valid_to.unwrap_or(0) as u64));
            o.set(CKA_END_DATE, valid_to.map(end_date).unwrap_or_default());
            o.set(CKA_KMSTOKEN_KEY_STATE, ck_ulong(next.code()));
            Ok(())
        })
    })
}

/// Deletes the material of an object: the value becomes random bytes that nobody knows,
/// and the key waits for its material again (unless its deletion is pending).
fn forget_material(o: &mut Object) -> Result<()> {
    if o.class() == CKO_SECRET_KEY {
        let len = o.get_raw(CKA_VALUE).map(<[u8]>::len).unwrap_or(32);
        o.set(CKA_VALUE, crypto::random_secret(len)?.to_vec());
        o.attrs.remove(&CKA_CHECK_VALUE);
    }
    o.attrs.remove(&CKA_KMSTOKEN_VALID_TO);
    o.set(CKA_END_DATE, Vec::new());
    if o.ulong(CKA_KMSTOKEN_KEY_STATE) != Some(KMSTOKEN_STATE_PENDING_DELETION) {
        o.set(CKA_KMSTOKEN_KEY_STATE, ck_ulong(KeyState::PendingImport.code()));
    }
    Ok(())
}

/// Whether the key holds imported material now.
fn has_material(obj: &Object) -> bool {
    obj.get_raw(CKA_KMSTOKEN_VALID_TO).is_some()
}

/// Whether the key's material comes from outside (Origin EXTERNAL).
pub fn is_external(obj: &Object) -> bool {
    Origin::of(obj) == Origin::External
}

/// An EXTERNAL key without its material: whatever happens to it, it can only wait for
/// an import (a cancelled deletion brings it back to PendingImport, not Disabled).
pub fn awaits_material(obj: &Object) -> bool {
    is_external(obj) && !has_material(obj)
}

/// DeleteImportedKeyMaterial: the key returns to PendingImport (a key pending deletion
/// stays so); on a key without material it changes nothing.
pub fn delete_material(token: &Token, handle: u64) -> KmsResult<()> {
    audited(token, Action::DeleteImportedKeyMaterial, handle, json!({}), |obj| {
        if !is_external(obj) {
            return Err(KmsError::new(
                AwsError::UnsupportedOperation,
                format!(
                    "{} origin is not {}; it has no imported key material to delete.",
                    arn(obj),
                    Origin::External.name()
                ),
            ));
        }
        if !has_material(obj) {
            return Ok(());
        }
        rewrite(token, obj, forget_material)
    })
}

/// Whether the material of `obj` has passed its ValidTo.
pub fn material_expired(obj: &Object) -> bool {
    matches!(obj.ulong(CKA_KMSTOKEN_VALID_TO), Some(t) if t > 0 && t as i64 <= clock::now())
}

/// Deletes the material of key `handle` if its ValidTo has passed (checked whenever the
/// key is looked up or used), as the service event DeleteExpiredKeyMaterial; returns the
/// object as it is now. Without a login that holds the master key nothing can be
/// rewritten: the material stays, refused by the KMS gate, until the next lookup.
pub fn expire_if_due(token: &Token, handle: u64, obj: Arc<Object>) -> Result<Arc<Object>> {
    if !is_kms_key(&obj) || !material_expired(&obj) {
        return Ok(obj);
    }
    if let Err(e) = rewrite(token, &obj, forget_material) {
        log::warn!("key {}: expired material not deleted yet: {}", key_id(&obj), e.message);
        return Ok(obj);
    }
    token.audit.append(&Event {
        name: "DeleteExpiredKeyMaterial",
        key_id: Some(&key_id(&obj)),
        service: true,
        ..Default::default()
    })?;
    token.object_any(handle)
}

/// The members describe-key adds for imported material: ExpirationModel, and ValidTo
/// when the material expires.
pub fn describe(obj: &Object, metadata: &mut Value) {
    if !is_external(obj) {
        return;
    }
    match obj.ulong(CKA_KMSTOKEN_VALID_TO) {
        Some(0) => metadata["ExpirationModel"] = json!(ExpirationModel::KeyMaterialDoesNotExpire.name()),
        Some(t) => {
            metadata["ExpirationModel"] = json!(ExpirationModel::KeyMaterialExpires.name());
            metadata["ValidTo"] = json!(clock::iso8601(t as i64));
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_algorithms() {
        for a in WrappingAlgorithm::ALL {
            assert_eq!(WrappingAlgorithm::parse(a.name()).unwrap(), a);
            assert_eq!(WrappingAlgorithm::from_code(a.code()), Some(a));
        }
        assert_eq!(WrappingAlgorithm::parse("RSAES_PKCS1_V1_5").unwrap_err().code, AwsError::Validation);
        assert_eq!(WrappingAlgorithm::from_code(0), None);
        assert_eq!(wrapping_key_bits("RSA_1024").unwrap_err().code, AwsError::Validation);
    }

    #[test]
    fn expiration_rules() {
        let now = clock::now();
        assert_eq!(expiration(Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None).unwrap(), None);
        assert_eq!(expiration(None, Some(now + 3600)).unwrap(), Some(now + 3600));
        for (model, t) in [
            (None, None),
            (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(now + 3600)),
            (Some("KEY_MATERIAL_EXPIRES"), Some(now - 1)),
            (Some("KEY_MATERIAL_EXPIRES"), Some(now + 366 * clock::DAY)),
            (Some("SOMETIMES"), None),
        ] {
            assert_eq!(expiration(model, t).unwrap_err().code, AwsError::Validation, "{model:?} {t:?}");
        }
    }

    #[test]
    fn hybrid_unwrap_and_refusals() {
        let parts = crypto::rsa_generate(2048).unwrap();
        let private =
            RsaPrivateKey::from_pkcs1_der(&RsaPrivateKey::new(&parts.as_refs()).unwrap().pkcs1_der()).unwrap();
        let public = RsaPublicKey::new(&parts.n, &parts.e).unwrap();
        let material = [9u8; 32];
        let aes = [3u8; 32];
        let mut blob = public.encrypt_oaep(Hash::Sha256, Hash::Sha256, b"", &aes).unwrap();
        blob.extend(crypto::kwp_wrap(&aes, &material).unwrap());
        let got = unwrap(WrappingAlgorithm::RsaAesKeyWrapSha256, &private, &blob).unwrap();
        assert_eq!(got.as_slice(), &material);
        // The SHA-1 variant, or a plain OAEP reading, of the same bytes fails.
        for alg in [WrappingAlgorithm::RsaAesKeyWrapSha1, WrappingAlgorithm::OaepSha256] {
            assert_eq!(unwrap(alg, &private, &blob).unwrap_err().code, AwsError::InvalidCiphertext);
        }
        let direct = public.encrypt_oaep(Hash::Sha1, Hash::Sha1, b"", &material).unwrap();
        assert_eq!(unwrap(WrappingAlgorithm::OaepSha1, &private, &direct).unwrap().as_slice(), &material);
    }

    #[test]
    fn end_date_is_the_day() {
        assert_eq!(end_date(1_795_478_400), b"20261124".to_vec());
    }
}
