//! ML-DSA (FIPS 204; PKCS#11 3.2, CKK_ML_DSA): key-pair generation and CKM_ML_DSA, the
//! pure signature with an empty context. aws-lc-rs signs hedged (randomised) with an empty
//! context only, so a CK_SIGN_ADDITIONAL_CONTEXT asking for a context or for deterministic
//! signing is CKR_MECHANISM_PARAM_INVALID; the pre-hash variants (CKM_HASH_ML_DSA*) are
//! not served.
//!
//! Keys: CKA_PARAMETER_SET names the set (CKP_ML_DSA_44/65/87); a public key's CKA_VALUE
//! is its encoding (pk); a private key keeps its CKA_SEED (ξ, 32 bytes) when the token made
//! it, and its CKA_VALUE, the expanded private key (sk) of FIPS 204.

use super::{Info, Key, KeyPair, Param, SignOp, Unit, VerifyOp};
use crate::crypto::{MlDsa, MlDsaSigningKey, MlDsaVerifyingKey};
use crate::error::{Error, Result};
use crate::object::{ck_ulong, Object, Template};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

const ML_DSA_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_ML_DSA];

/// CK_MECHANISM_INFO's key sizes for ML-DSA are the parameter sets.
fn info(flags: CK_FLAGS) -> Info {
    Info { min_key: CKP_ML_DSA_44, max_key: CKP_ML_DSA_87, flags }
}

/// The set a CKA_PARAMETER_SET names.
fn level_of(set: CK_ULONG) -> Option<MlDsa> {
    match set {
        CKP_ML_DSA_44 => Some(MlDsa::L44),
        CKP_ML_DSA_65 => Some(MlDsa::L65),
        CKP_ML_DSA_87 => Some(MlDsa::L87),
        _ => None,
    }
}

fn ml_dsa_object<'k>(key: &Key<'k>, class: CK_OBJECT_CLASS) -> Result<(&'k Object, MlDsa)> {
    super::parameter_set_key(key, CKK_ML_DSA, class, level_of)
}

/// The private key: from its seed when it has one, else from its expanded form.
fn private_key(obj: &Object, level: MlDsa) -> Result<MlDsaSigningKey> {
    match obj.get_raw(CKA_SEED).filter(|s| !s.is_empty()) {
        Some(seed) => MlDsaSigningKey::from_seed(level, seed),
        None => MlDsaSigningKey::from_private(level, obj.get_raw(CKA_VALUE).ok_or(Error::KeyTypeInconsistent)?),
    }
}

fn signing_key(key: &Key) -> Result<Arc<MlDsaSigningKey>> {
    let (obj, level) = ml_dsa_object(key, CKO_PRIVATE_KEY)?;
    obj.prepared(|| private_key(obj, level))
}

fn verifying_key(key: &Key) -> Result<Arc<MlDsaVerifyingKey>> {
    let (obj, level) = ml_dsa_object(key, CKO_PUBLIC_KEY)?;
    obj.prepared(|| MlDsaVerifyingKey::new(level, obj.get_raw(CKA_VALUE).unwrap_or_default()))
}

/// Checks an ML-DSA key given by C_CreateObject: a known set, a public key of its length,
/// a private key that aws-lc takes (a seed and an expanded key given together must be the
/// same key). The expanded key is written when only the seed was given.
pub fn check_import(obj: &mut Object) -> Result<()> {
    let level = obj.ulong(CKA_PARAMETER_SET).and_then(level_of).ok_or(Error::AttributeValueInvalid)?;
    match obj.class() {
        CKO_PUBLIC_KEY => {
            MlDsaVerifyingKey::new(level, obj.get_raw(CKA_VALUE).unwrap_or_default())
                .map_err(|_| Error::AttributeValueInvalid)?;
        }
        CKO_PRIVATE_KEY => {
            let key = private_key(obj, level).map_err(|_| Error::AttributeValueInvalid)?;
            let sk = key.private_key()?;
            match obj.get_raw(CKA_VALUE) {
                Some(v) if !v.is_empty() && v != sk.as_slice() => return Err(Error::TemplateInconsistent),
                Some(v) if !v.is_empty() => {}
                _ => obj.set(CKA_VALUE, sk.to_vec()),
            }
        }
        _ => {}
    }
    Ok(())
}

/// CKM_ML_DSA_KEY_PAIR_GEN: the set from CKA_PARAMETER_SET of the public template (or the
/// private one; the two must then agree).
struct MlDsaKeyPairGen;

impl Unit for MlDsaKeyPairGen {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_ML_DSA_KEY_PAIR_GEN
    }
    fn info(&self) -> Info {
        info(CKF_GENERATE_KEY_PAIR)
    }
    fn generate_key_pair(&self, public: &Template, private: &Template) -> Result<KeyPair> {
        let set = super::pair_attr(public, private, CKA_PARAMETER_SET)?;
        let level = super::ulong_of(set).and_then(level_of).ok_or(Error::ParameterSetNotSupported)?;
        let (seed, key) = MlDsaSigningKey::generate(level)?;
        let sk: Zeroizing<Vec<u8>> = key.private_key()?;
        Ok(KeyPair {
            public: vec![
                (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_ML_DSA)),
                (CKA_PARAMETER_SET, set.to_vec()),
                (CKA_VALUE, key.public_key()),
            ],
            private: vec![
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_ML_DSA)),
                (CKA_PARAMETER_SET, set.to_vec()),
                (CKA_SEED, seed.to_vec()),
                (CKA_VALUE, sk.to_vec()),
            ],
        })
    }
}

/// What CK_SIGN_ADDITIONAL_CONTEXT may ask of this token: hedged signing (preferred or
/// required) and an empty context.
fn check_param(p: &Param) -> Result<()> {
    match p {
        Param::None => Ok(()),
        Param::Bytes(b) if b.is_empty() => Ok(()),
        Param::SignContext { hedge: CKH_HEDGE_PREFERRED | CKH_HEDGE_REQUIRED, context } if context.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// The message, kept whole (ML-DSA signs it in one pass with the key's hash of pk first).
struct Message(Option<Zeroizing<Vec<u8>>>);

impl Message {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        let m = self.0.as_mut().ok_or(Error::OperationNotInitialized)?;
        let want = m.len().checked_add(data.len()).ok_or(Error::HostMemory)?;
        let mut grown = Zeroizing::new(Vec::new());
        grown.try_reserve_exact(want).map_err(|_| Error::HostMemory)?;
        grown.extend_from_slice(m);
        grown.extend_from_slice(data);
        *m = grown;
        Ok(())
    }

    fn take(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        self.0.take().ok_or(Error::OperationNotInitialized)
    }
}

struct MlDsaSign {
    key: Arc<MlDsaSigningKey>,
    len: usize,
    message: Message,
}

impl SignOp for MlDsaSign {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let m = self.message.take()?;
        self.key.sign(&m)
    }
    fn sig_len(&self) -> usize {
        self.len
    }
}

struct MlDsaVerify {
    key: Arc<MlDsaVerifyingKey>,
    message: Message,
}

impl VerifyOp for MlDsaVerify {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.update(data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let m = self.message.take()?;
        self.key.verify(&m, signature)
    }
}

/// CKM_ML_DSA.
struct MlDsaUnit;

impl Unit for MlDsaUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_ML_DSA
    }
    fn info(&self) -> Info {
        info(CKF_SIGN | CKF_VERIFY)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        ML_DSA_KEY_TYPES
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        check_param(p)?;
        let (_, level) = ml_dsa_object(key, CKO_PRIVATE_KEY)?;
        let key = signing_key(key)?;
        Ok(Box::new(MlDsaSign { key, len: level.signature_len(), message: Message(Some(Zeroizing::new(Vec::new()))) }))
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        check_param(p)?;
        let key = verifying_key(key)?;
        Ok(Box::new(MlDsaVerify { key, message: Message(Some(Zeroizing::new(Vec::new()))) }))
    }
}

pub static UNITS: &[&dyn Unit] = &[&MlDsaKeyPairGen, &MlDsaUnit];

#[cfg(test)]
mod tests {
    //! ML-DSA round trips, the key encodings against aws-lc's own parsing, and the errors.
    use super::*;
    use crate::mech::test_support::object;
    use crate::object::ck_bool;

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        crate::mech::test_support::unit(UNITS, ty)
    }

    fn key(o: &Object) -> Key<'_> {
        crate::mech::test_support::key(o, CKK_ML_DSA)
    }

    fn generate(set: CK_ULONG) -> (Object, Object) {
        let pair = unit(CKM_ML_DSA_KEY_PAIR_GEN).generate_key_pair(&[(CKA_PARAMETER_SET, ck_ulong(set))], &[]).unwrap();
        (object(&pair.public), object(&pair.private))
    }

    fn sign(private: &Object, msg: &[u8], p: &Param) -> Result<Vec<u8>> {
        let mut op = unit(CKM_ML_DSA).sign(&key(private), p)?;
        op.update(msg)?;
        op.finish()
    }

    fn verify(public: &Object, msg: &[u8], sig: &[u8]) -> Result<()> {
        let mut op = unit(CKM_ML_DSA).verify(&key(public), &Param::None)?;
        op.update(msg)?;
        op.finish(sig)
    }

    #[test]
    fn every_set_signs_and_verifies() {
        for (set, pk, sig_len) in
            [(CKP_ML_DSA_44, 1312, 2420), (CKP_ML_DSA_65, 1952, 3309), (CKP_ML_DSA_87, 2592, 4627)]
        {
            let (public, private) = generate(set);
            assert_eq!(public.get_raw(CKA_VALUE).unwrap().len(), pk);
            assert_eq!(private.get_raw(CKA_SEED).unwrap().len(), 32);
            let sig = sign(&private, b"message", &Param::None).unwrap();
            assert_eq!(sig.len(), sig_len);
            assert_eq!(verify(&public, b"message", &sig), Ok(()));
            assert_eq!(verify(&public, b"massage", &sig), Err(Error::SignatureInvalid));
            assert_eq!(verify(&public, b"message", &sig[1..]), Err(Error::SignatureLenRange));
            // Hedged: two signatures differ, both valid.
            let again = sign(&private, b"message", &Param::None).unwrap();
            assert_ne!(again, sig);
            assert_eq!(verify(&public, b"message", &again), Ok(()));
            // The expanded key alone is the same key.
            let expanded = object(&[
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_PARAMETER_SET, ck_ulong(set)),
                (CKA_VALUE, private.get_raw(CKA_VALUE).unwrap().to_vec()),
            ]);
            assert_eq!(verify(&public, b"m", &sign(&expanded, b"m", &Param::None).unwrap()), Ok(()));
        }
    }

    #[test]
    fn parameters_and_key_errors() {
        let gen = unit(CKM_ML_DSA_KEY_PAIR_GEN);
        assert_eq!(gen.generate_key_pair(&[], &[]).err(), Some(Error::TemplateIncomplete));
        assert_eq!(
            gen.generate_key_pair(&[(CKA_PARAMETER_SET, ck_ulong(9))], &[]).err(),
            Some(Error::ParameterSetNotSupported)
        );
        assert_eq!(
            gen.generate_key_pair(
                &[(CKA_PARAMETER_SET, ck_ulong(CKP_ML_DSA_44))],
                &[(CKA_PARAMETER_SET, ck_ulong(CKP_ML_DSA_65))]
            )
            .err(),
            Some(Error::TemplateInconsistent)
        );
        let (public, private) = generate(CKP_ML_DSA_44);
        let ctx = |hedge, context: &[u8]| Param::SignContext { hedge, context: context.to_vec() };
        assert!(sign(&private, b"m", &ctx(CKH_HEDGE_PREFERRED, b"")).is_ok());
        assert!(sign(&private, b"m", &ctx(CKH_HEDGE_REQUIRED, b"")).is_ok());
        for p in [ctx(CKH_DETERMINISTIC_REQUIRED, b""), ctx(CKH_HEDGE_PREFERRED, b"ctx"), Param::Bytes(vec![1])] {
            assert_eq!(sign(&private, b"m", &p).err(), Some(Error::MechanismParamInvalid));
        }
        // Wrong class, wrong set, a public key of the wrong length.
        assert!(matches!(unit(CKM_ML_DSA).sign(&key(&public), &Param::None), Err(Error::KeyTypeInconsistent)));
        let mut other = object(&[(CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)), (CKA_PARAMETER_SET, ck_ulong(CKP_ML_DSA_65))]);
        other.set(CKA_VALUE, public.get_raw(CKA_VALUE).unwrap().to_vec());
        assert!(matches!(unit(CKM_ML_DSA).verify(&key(&other), &Param::None), Err(Error::KeyTypeInconsistent)));
        // Imports: a seed alone gains its expanded key; a mismatched pair is refused.
        let mut seeded = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_PARAMETER_SET, ck_ulong(CKP_ML_DSA_44)),
            (CKA_SEED, private.get_raw(CKA_SEED).unwrap().to_vec()),
            (CKA_SENSITIVE, ck_bool(true)),
        ]);
        check_import(&mut seeded).unwrap();
        assert_eq!(seeded.get_raw(CKA_VALUE), private.get_raw(CKA_VALUE));
        let (_, stranger) = generate(CKP_ML_DSA_44);
        seeded.set(CKA_VALUE, stranger.get_raw(CKA_VALUE).unwrap().to_vec());
        assert_eq!(check_import(&mut seeded), Err(Error::TemplateInconsistent));
        let mut short = object(&[(CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)), (CKA_PARAMETER_SET, ck_ulong(CKP_ML_DSA_87))]);
        short.set(CKA_VALUE, vec![0; 10]);
        assert_eq!(check_import(&mut short), Err(Error::AttributeValueInvalid));
    }
}
