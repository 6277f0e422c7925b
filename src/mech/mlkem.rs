//! ML-KEM (FIPS 203; PKCS#11 3.2, CKK_ML_KEM): key-pair generation and CKM_ML_KEM for
//! C_EncapsulateKey / C_DecapsulateKey. Keys: CKA_PARAMETER_SET names the set
//! (CKP_ML_KEM_512/768/1024); a public key's CKA_VALUE is the encapsulation key (ek), a
//! private key's the decapsulation key (dk). aws-lc-rs gives no seed of a key it makes,
//! so CKA_SEED is not kept.

use super::{Info, Key, KeyPair, Param, Unit};
use crate::crypto::{self, MlKem};
use crate::error::{Error, Result};
use crate::object::{ck_ulong, Object, Template};
use cryptoki_sys::*;
use zeroize::Zeroizing;

const ML_KEM_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_ML_KEM];

/// CK_MECHANISM_INFO's key sizes for ML-KEM are the parameter sets.
fn info(flags: CK_FLAGS) -> Info {
    Info { min_key: CKP_ML_KEM_512, max_key: CKP_ML_KEM_1024, flags }
}

/// The set a CKA_PARAMETER_SET names.
fn level_of(set: CK_ULONG) -> Option<MlKem> {
    match set {
        CKP_ML_KEM_512 => Some(MlKem::L512),
        CKP_ML_KEM_768 => Some(MlKem::L768),
        CKP_ML_KEM_1024 => Some(MlKem::L1024),
        _ => None,
    }
}

fn ml_kem_object<'k>(key: &Key<'k>, class: CK_OBJECT_CLASS) -> Result<(&'k Object, MlKem)> {
    super::parameter_set_key(key, CKK_ML_KEM, class, level_of)
}

/// Checks an ML-KEM key given by C_CreateObject: a known set, and a key aws-lc takes.
pub fn check_import(obj: &mut Object) -> Result<()> {
    let level = obj.ulong(CKA_PARAMETER_SET).and_then(level_of).ok_or(Error::AttributeValueInvalid)?;
    let value = obj.get_raw(CKA_VALUE).unwrap_or_default();
    let ok = match obj.class() {
        CKO_PUBLIC_KEY => crypto::ml_kem_check_public(level, value).is_ok(),
        CKO_PRIVATE_KEY => crypto::ml_kem_public(level, value).is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

/// CKM_ML_KEM_KEY_PAIR_GEN: the set from CKA_PARAMETER_SET of the public template (or the
/// private one; the two must then agree).
struct MlKemKeyPairGen;

impl Unit for MlKemKeyPairGen {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_ML_KEM_KEY_PAIR_GEN
    }
    fn info(&self) -> Info {
        info(CKF_GENERATE_KEY_PAIR)
    }
    fn generate_key_pair(&self, public: &Template, private: &Template) -> Result<KeyPair> {
        let set = super::pair_attr(public, private, CKA_PARAMETER_SET)?;
        let level = super::ulong_of(set).and_then(level_of).ok_or(Error::ParameterSetNotSupported)?;
        let (dk, ek): (Zeroizing<Vec<u8>>, Vec<u8>) = crypto::ml_kem_generate(level)?;
        Ok(KeyPair {
            public: vec![
                (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_ML_KEM)),
                (CKA_PARAMETER_SET, set.to_vec()),
                (CKA_VALUE, ek),
            ],
            private: vec![
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_ML_KEM)),
                (CKA_PARAMETER_SET, set.to_vec()),
                (CKA_VALUE, dk.to_vec()),
            ],
        })
    }
}

/// CKM_ML_KEM takes no parameter.
fn check_param(p: &Param) -> Result<()> {
    match p {
        Param::None => Ok(()),
        Param::Bytes(b) if b.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// CKM_ML_KEM: the shared secret is 32 bytes, the value of the key C_EncapsulateKey and
/// C_DecapsulateKey make (cut to the template's CKA_VALUE_LEN).
struct MlKemUnit;

impl Unit for MlKemUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_ML_KEM
    }
    fn info(&self) -> Info {
        info(CKF_ENCAPSULATE | CKF_DECAPSULATE)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        ML_KEM_KEY_TYPES
    }
    fn ciphertext_len(&self, public: &Key) -> Result<usize> {
        Ok(ml_kem_object(public, CKO_PUBLIC_KEY)?.1.ciphertext_len())
    }
    fn encapsulate(&self, public: &Key, p: &Param) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        check_param(p)?;
        let (obj, level) = ml_kem_object(public, CKO_PUBLIC_KEY)?;
        crypto::ml_kem_encapsulate(level, obj.get_raw(CKA_VALUE).unwrap_or_default())
            .map_err(|_| Error::KeyTypeInconsistent)
    }
    fn decapsulate(&self, private: &Key, p: &Param, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        check_param(p)?;
        let (obj, level) = ml_kem_object(private, CKO_PRIVATE_KEY)?;
        crypto::ml_kem_decapsulate(level, obj.get_raw(CKA_VALUE).unwrap_or_default(), ciphertext)
    }
}

pub static UNITS: &[&dyn Unit] = &[&MlKemKeyPairGen, &MlKemUnit];

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mech::test_support::object;

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        crate::mech::test_support::unit(UNITS, ty)
    }

    fn key(o: &Object) -> Key<'_> {
        crate::mech::test_support::key(o, CKK_ML_KEM)
    }

    #[test]
    fn every_set_agrees_on_a_secret() {
        for (set, ek_len, ct_len) in
            [(CKP_ML_KEM_512, 800, 768), (CKP_ML_KEM_768, 1184, 1088), (CKP_ML_KEM_1024, 1568, 1568)]
        {
            let pair =
                unit(CKM_ML_KEM_KEY_PAIR_GEN).generate_key_pair(&[(CKA_PARAMETER_SET, ck_ulong(set))], &[]).unwrap();
            let (public, private) = (object(&pair.public), object(&pair.private));
            assert_eq!(public.get_raw(CKA_VALUE).unwrap().len(), ek_len);
            let kem = unit(CKM_ML_KEM);
            assert_eq!(kem.ciphertext_len(&key(&public)), Ok(ct_len));
            let (ct, secret) = kem.encapsulate(&key(&public), &Param::None).unwrap();
            assert_eq!((ct.len(), secret.len()), (ct_len, 32));
            assert_eq!(kem.decapsulate(&key(&private), &Param::None, &ct).unwrap(), secret);
            // Implicit rejection: another ciphertext gives another secret, not an error.
            let mut other = ct.clone();
            other[0] ^= 1;
            assert_ne!(kem.decapsulate(&key(&private), &Param::None, &other).unwrap(), secret);
            assert_eq!(
                kem.decapsulate(&key(&private), &Param::None, &ct[1..]).err(),
                Some(Error::EncryptedDataLenRange)
            );
            // The wrong halves, a parameter where none belongs.
            assert_eq!(kem.encapsulate(&key(&private), &Param::None).err(), Some(Error::KeyTypeInconsistent));
            assert_eq!(kem.decapsulate(&key(&public), &Param::None, &ct).err(), Some(Error::KeyTypeInconsistent));
            assert_eq!(
                kem.encapsulate(&key(&public), &Param::Bytes(vec![1])).err(),
                Some(Error::MechanismParamInvalid)
            );
            // The private key is the public key's partner.
            assert_eq!(
                crypto::ml_kem_public(level_of(set).unwrap(), private.get_raw(CKA_VALUE).unwrap()).unwrap(),
                public.get_raw(CKA_VALUE).unwrap()
            );
        }
        assert_eq!(
            unit(CKM_ML_KEM_KEY_PAIR_GEN).generate_key_pair(&[(CKA_PARAMETER_SET, ck_ulong(7))], &[]).err(),
            Some(Error::ParameterSetNotSupported)
        );
        let mut short = object(&[(CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)), (CKA_PARAMETER_SET, ck_ulong(CKP_ML_KEM_768))]);
        short.set(CKA_VALUE, vec![0; 100]);
        assert_eq!(check_import(&mut short), Err(Error::AttributeValueInvalid));
    }
}
