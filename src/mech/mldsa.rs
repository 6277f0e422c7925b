//! ML-DSA (FIPS 204; PKCS#11 3.2, CKK_ML_DSA): key-pair generation, CKM_ML_DSA and
//! HashML-DSA (CKM_HASH_ML_DSA and CKM_HASH_ML_DSA_<hash>). aws-lc signs hedged with an
//! empty context; a context, deterministic signing and HashML-DSA are made from the key's
//! seed by RustCrypto's ml-dsa (`crypto::MlDsaOptions`), so they need a key with a seed
//! (every key the token makes has one).
//!
//! Keys: CKA_PARAMETER_SET names the set (CKP_ML_DSA_44/65/87); a public key's CKA_VALUE
//! is its encoding (pk); a private key keeps its CKA_SEED (ξ, 32 bytes) when the token made
//! it, and its CKA_VALUE, the expanded private key (sk) of FIPS 204.

use super::{Info, Key, KeyPair, Param, SignOp, Unit, VerifyOp};
use crate::crypto::{MlDsa, MlDsaOptions, MlDsaSigningKey, MlDsaVerifyingKey, PreHash, PreHasher};
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

/// The pre-hash a CK_HASH_SIGN_ADDITIONAL_CONTEXT names.
fn prehash_of(hash: CK_MECHANISM_TYPE) -> Result<PreHash> {
    Ok(match hash {
        CKM_SHA224 => PreHash::Sha224,
        CKM_SHA256 => PreHash::Sha256,
        CKM_SHA384 => PreHash::Sha384,
        CKM_SHA512 => PreHash::Sha512,
        CKM_SHA3_224 => PreHash::Sha3_224,
        CKM_SHA3_256 => PreHash::Sha3_256,
        CKM_SHA3_384 => PreHash::Sha3_384,
        CKM_SHA3_512 => PreHash::Sha3_512,
        _ => return Err(Error::MechanismParamInvalid),
    })
}

/// What the mechanism parameter asks: hedged or deterministic signing, a context of at
/// most 255 bytes, and for CKM_HASH_ML_DSA (`generic`) the pre-hash; `fixed` is the
/// pre-hash of a CKM_HASH_ML_DSA_<hash> mechanism.
fn options(p: &Param, generic: bool, fixed: Option<PreHash>) -> Result<MlDsaOptions> {
    let (hedge, context, hash) = match p {
        Param::MlDsaExternalMu if !generic => {
            return Ok(MlDsaOptions { external_mu: true, deterministic: true, ..Default::default() })
        }
        Param::None if !generic => (CKH_HEDGE_PREFERRED, Vec::new(), None),
        Param::Bytes(b) if b.is_empty() && !generic => (CKH_HEDGE_PREFERRED, Vec::new(), None),
        Param::SignContext { hedge, context } if !generic => (*hedge, context.clone(), None),
        Param::HashSignContext { hedge, context, hash } if generic => (*hedge, context.clone(), Some(*hash)),
        _ => return Err(Error::MechanismParamInvalid),
    };
    let deterministic = match hedge {
        CKH_HEDGE_PREFERRED | CKH_HEDGE_REQUIRED => false,
        CKH_DETERMINISTIC_REQUIRED => true,
        _ => return Err(Error::MechanismParamInvalid),
    };
    if context.len() > 255 {
        return Err(Error::MechanismParamInvalid);
    }
    let prehash = match hash {
        Some(h) => Some(prehash_of(h)?),
        None => fixed,
    };
    Ok(MlDsaOptions { context, deterministic, prehash, external_mu: false })
}

/// The input of a signature: the message kept whole (ML-DSA reads it in one pass, after
/// the key's hash of pk), or its pre-hash computed as it comes (HashML-DSA_<hash>).
enum Input {
    Message(Zeroizing<Vec<u8>>),
    Hashed(Box<PreHasher>),
}

impl Input {
    fn new(opts: &MlDsaOptions, hashes: bool) -> Input {
        match opts.prehash {
            Some(h) if hashes => Input::Hashed(Box::new(PreHasher::new(h))),
            _ => Input::Message(Zeroizing::new(Vec::new())),
        }
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Message(m) => {
                let want = m.len().checked_add(data.len()).ok_or(Error::HostMemory)?;
                let mut grown = Zeroizing::new(Vec::new());
                grown.try_reserve_exact(want).map_err(|_| Error::HostMemory)?;
                grown.extend_from_slice(m);
                grown.extend_from_slice(data);
                *m = grown;
            }
            Input::Hashed(h) => h.update(data),
        }
        Ok(())
    }

    fn finish(self) -> Zeroizing<Vec<u8>> {
        match self {
            Input::Message(m) => m,
            Input::Hashed(h) => Zeroizing::new((*h).finish()),
        }
    }
}

struct MlDsaSign {
    key: Arc<MlDsaSigningKey>,
    len: usize,
    opts: MlDsaOptions,
    input: Option<Input>,
    single: bool,
}

impl SignOp for MlDsaSign {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let m = self.input.take().ok_or(Error::OperationNotInitialized)?.finish();
        if self.opts.plain() {
            self.key.sign(&m)
        } else {
            self.key.sign_with(&m, &self.opts)
        }
    }
    fn sig_len(&self) -> usize {
        self.len
    }
    fn single_part(&self) -> bool {
        self.single
    }
}

struct MlDsaVerify {
    key: Arc<MlDsaVerifyingKey>,
    opts: MlDsaOptions,
    input: Option<Input>,
    single: bool,
}

impl VerifyOp for MlDsaVerify {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let m = self.input.take().ok_or(Error::OperationNotInitialized)?.finish();
        if self.opts.plain() {
            self.key.verify(&m, signature)
        } else {
            self.key.verify_with(&m, signature, &self.opts)
        }
    }
    fn single_part(&self) -> bool {
        self.single
    }
}

/// CKM_ML_DSA (pure; hedged or deterministic; with a context), CKM_HASH_ML_DSA (the
/// input is a pre-hash the parameter names; single-part) and CKM_HASH_ML_DSA_<hash> (the
/// token pre-hashes the data).
struct MlDsaUnit {
    ty: CK_MECHANISM_TYPE,
    prehash: Option<PreHash>,
}

impl MlDsaUnit {
    fn generic(&self) -> bool {
        self.ty == CKM_HASH_ML_DSA
    }
}

impl Unit for MlDsaUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        info(CKF_SIGN | CKF_VERIFY)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        ML_DSA_KEY_TYPES
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        let opts = options(p, self.generic(), self.prehash)?;
        let (_, level) = ml_dsa_object(key, CKO_PRIVATE_KEY)?;
        let input = Some(Input::new(&opts, !self.generic()));
        let key = signing_key(key)?;
        Ok(Box::new(MlDsaSign { key, len: level.signature_len(), opts, input, single: self.generic() }))
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        let opts = options(p, self.generic(), self.prehash)?;
        let input = Some(Input::new(&opts, !self.generic()));
        let key = verifying_key(key)?;
        Ok(Box::new(MlDsaVerify { key, opts, input, single: self.generic() }))
    }
}

const fn unit(ty: CK_MECHANISM_TYPE, prehash: Option<PreHash>) -> MlDsaUnit {
    MlDsaUnit { ty, prehash }
}

pub static UNITS: &[&dyn Unit] = &[
    &MlDsaKeyPairGen,
    &unit(CKM_ML_DSA, None),
    &unit(CKM_HASH_ML_DSA, None),
    &unit(CKM_HASH_ML_DSA_SHA224, Some(PreHash::Sha224)),
    &unit(CKM_HASH_ML_DSA_SHA256, Some(PreHash::Sha256)),
    &unit(CKM_HASH_ML_DSA_SHA384, Some(PreHash::Sha384)),
    &unit(CKM_HASH_ML_DSA_SHA512, Some(PreHash::Sha512)),
    &unit(CKM_HASH_ML_DSA_SHA3_224, Some(PreHash::Sha3_224)),
    &unit(CKM_HASH_ML_DSA_SHA3_256, Some(PreHash::Sha3_256)),
    &unit(CKM_HASH_ML_DSA_SHA3_384, Some(PreHash::Sha3_384)),
    &unit(CKM_HASH_ML_DSA_SHA3_512, Some(PreHash::Sha3_512)),
    &unit(CKM_HASH_ML_DSA_SHAKE128, Some(PreHash::Shake128)),
    &unit(CKM_HASH_ML_DSA_SHAKE256, Some(PreHash::Shake256)),
];

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
        for p in [ctx(7, b""), ctx(CKH_HEDGE_PREFERRED, &[0; 256]), Param::Bytes(vec![1])] {
            assert_eq!(sign(&private, b"m", &p).err(), Some(Error::MechanismParamInvalid));
        }
        // Deterministic: the same signature twice, which aws-lc's own verifier (a code
        // path apart from the signer's) accepts.
        let det = ctx(CKH_DETERMINISTIC_REQUIRED, b"");
        let a = sign(&private, b"m", &det).unwrap();
        assert_eq!(sign(&private, b"m", &det).unwrap(), a);
        assert_eq!(verify(&public, b"m", &a), Ok(()));
        // A context binds: the signature verifies under its own context only.
        let with_ctx = ctx(CKH_HEDGE_REQUIRED, b"context");
        let b = sign(&private, b"m", &with_ctx).unwrap();
        let verify_with = |p: &Param, sig: &[u8]| {
            let mut op = unit(CKM_ML_DSA).verify(&key(&public), p)?;
            op.update(b"m")?;
            op.finish(sig)
        };
        assert_eq!(verify_with(&with_ctx, &b), Ok(()));
        assert_eq!(verify_with(&ctx(CKH_HEDGE_PREFERRED, b"other"), &b), Err(Error::SignatureInvalid));
        assert_eq!(verify(&public, b"m", &b), Err(Error::SignatureInvalid));
        // A key known only by its expanded form has no seed for these.
        let expanded = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_PARAMETER_SET, ck_ulong(CKP_ML_DSA_44)),
            (CKA_VALUE, private.get_raw(CKA_VALUE).unwrap().to_vec()),
        ]);
        assert_eq!(sign(&expanded, b"m", &det).err(), Some(Error::MechanismParamInvalid));
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

    #[test]
    fn hash_ml_dsa_signs_the_pre_hash() {
        use sha2::Digest as _;
        let (public, private) = generate(CKP_ML_DSA_65);
        let data = b"a long message, hashed first";
        let run = |ty, p: &Param, input: &[u8]| -> Result<Vec<u8>> {
            let mut op = unit(ty).sign(&key(&private), p)?;
            op.update(input)?;
            op.finish()
        };
        let check = |ty, p: &Param, input: &[u8], sig: &[u8]| -> Result<()> {
            let mut op = unit(ty).verify(&key(&public), p)?;
            op.update(input)?;
            op.finish(sig)
        };
        // The token's pre-hash and the caller's are one signature scheme: each verifies
        // the other's signature; pure ML-DSA does not.
        let det = Param::SignContext { hedge: CKH_DETERMINISTIC_REQUIRED, context: Vec::new() };
        let by_token = run(CKM_HASH_ML_DSA_SHA256, &det, data).unwrap();
        let hash = sha2::Sha256::digest(data).to_vec();
        let given = Param::HashSignContext { hedge: CKH_DETERMINISTIC_REQUIRED, context: Vec::new(), hash: CKM_SHA256 };
        assert_eq!(run(CKM_HASH_ML_DSA, &given, &hash).unwrap(), by_token, "deterministic, the same");
        assert_eq!(check(CKM_HASH_ML_DSA, &given, &hash, &by_token), Ok(()));
        assert_eq!(check(CKM_HASH_ML_DSA_SHA256, &Param::None, data, &by_token), Ok(()));
        assert_eq!(check(CKM_ML_DSA, &Param::None, data, &by_token), Err(Error::SignatureInvalid));
        assert_eq!(check(CKM_HASH_ML_DSA_SHA384, &Param::None, data, &by_token), Err(Error::SignatureInvalid));
        // Every pre-hash signs and verifies; CKM_HASH_ML_DSA takes one part of the hash's
        // length, and needs its parameter.
        for ty in [
            CKM_HASH_ML_DSA_SHA224,
            CKM_HASH_ML_DSA_SHA512,
            CKM_HASH_ML_DSA_SHA3_224,
            CKM_HASH_ML_DSA_SHA3_512,
            CKM_HASH_ML_DSA_SHAKE128,
            CKM_HASH_ML_DSA_SHAKE256,
        ] {
            let sig = run(ty, &Param::None, data).unwrap();
            assert_eq!(check(ty, &Param::None, data, &sig), Ok(()), "{ty:#x}");
        }
        assert_eq!(run(CKM_HASH_ML_DSA, &given, &hash[1..]).err(), Some(Error::DataLenRange));
        assert_eq!(run(CKM_HASH_ML_DSA, &Param::None, &hash).err(), Some(Error::MechanismParamInvalid));
        let shake = Param::HashSignContext {
            hedge: CKH_HEDGE_PREFERRED,
            context: Vec::new(),
            hash: CKM_SHAKE_128_KEY_DERIVATION,
        };
        assert_eq!(run(CKM_HASH_ML_DSA, &shake, &hash).err(), Some(Error::MechanismParamInvalid));
        assert!(unit(CKM_HASH_ML_DSA).sign(&key(&private), &given).unwrap().single_part());
        assert!(!unit(CKM_HASH_ML_DSA_SHA256).sign(&key(&private), &Param::None).unwrap().single_part());
    }
}
