//! Key derivation from a secret key's value and data (PKCS#11 current mechanisms 2.43 and
//! 2.15): CKM_CONCATENATE_BASE_AND_KEY, CKM_CONCATENATE_BASE_AND_DATA,
//! CKM_CONCATENATE_DATA_AND_BASE, CKM_XOR_BASE_AND_DATA, CKM_EXTRACT_KEY_FROM_KEY, and
//! the encryption of data under an AES base key, CKM_AES_ECB_ENCRYPT_DATA and
//! CKM_AES_CBC_ENCRYPT_DATA.
//!
//! Each returns the bytes the new key's value is taken from; the token cuts them to the
//! length the template asks (`Library::derive_key`). The new key can be no less secret
//! than its base: these mechanisms answer `inherits_secrecy`.

use super::{Info, Key, Param, Unit};
use crate::crypto::{AesCbc, AesEcb, Direction, AES_BLOCK};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::Zeroizing;

type Secret = Zeroizing<Vec<u8>>;

/// Base keys of these mechanisms: any secret key the token holds.
const SECRET_KEY_TYPES: &[CK_KEY_TYPE] =
    &[CKK_GENERIC_SECRET, CKK_AES, CKK_SHA_1_HMAC, CKK_SHA224_HMAC, CKK_SHA256_HMAC, CKK_SHA384_HMAC, CKK_SHA512_HMAC];
const AES_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_AES];

/// Base key sizes in bytes (secret keys' values are 1 to 512 bytes).
fn derive_info(min_key: u64, max_key: u64) -> Info {
    Info { min_key, max_key, flags: CKF_DERIVE }
}

fn data(p: &Param) -> Result<&[u8]> {
    match p {
        Param::Bytes(d) => Ok(d),
        Param::None => Ok(&[]),
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn joined(a: &[u8], b: &[u8]) -> Secret {
    let mut v = Zeroizing::new(Vec::with_capacity(a.len() + b.len()));
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

#[derive(Clone, Copy)]
enum Kind {
    /// The base key's value, then the other key's (the library resolves the handle of the
    /// parameter into `Param::Key`).
    BaseAndKey,
    BaseAndData,
    DataAndBase,
    /// base XOR data, as long as the shorter of the two.
    Xor,
}

struct Combine {
    ty: CK_MECHANISM_TYPE,
    kind: Kind,
}

impl Unit for Combine {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        derive_info(1, 512)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        SECRET_KEY_TYPES
    }
    fn inherits_secrecy(&self) -> bool {
        true
    }
    fn derive(&self, base: &Key, p: &Param, _len: Option<usize>) -> Result<Secret> {
        Ok(match self.kind {
            Kind::BaseAndKey => match p {
                Param::Key(other) => joined(base.value, other.value()),
                _ => return Err(Error::MechanismParamInvalid),
            },
            Kind::BaseAndData => joined(base.value, data(p)?),
            Kind::DataAndBase => joined(data(p)?, base.value),
            Kind::Xor => Zeroizing::new(base.value.iter().zip(data(p)?).map(|(a, b)| a ^ b).collect()),
        })
    }
}

/// CKM_EXTRACT_KEY_FROM_KEY: `len` bytes of the base key's bits, from the bit the
/// parameter names (bit 0 is the high bit of the first byte), wrapping around to the
/// start; at most the base key's length.
struct Extract;

impl Unit for Extract {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_EXTRACT_KEY_FROM_KEY
    }
    fn info(&self) -> Info {
        derive_info(1, 512)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        SECRET_KEY_TYPES
    }
    fn inherits_secrecy(&self) -> bool {
        true
    }
    fn derive(&self, base: &Key, p: &Param, len: Option<usize>) -> Result<Secret> {
        let Param::Ulong(start) = p else {
            return Err(Error::MechanismParamInvalid);
        };
        let value = base.value;
        let bits = value.len() * 8;
        let len = len.ok_or(Error::TemplateIncomplete)?;
        if len == 0 || len > value.len() {
            return Err(Error::TemplateInconsistent);
        }
        let start = usize::try_from(*start).ok().filter(|s| *s < bits).ok_or(Error::MechanismParamInvalid)?;
        let bit = |i: usize| {
            let at = (start + i) % bits;
            (value[at / 8] >> (7 - at % 8)) & 1
        };
        Ok(Zeroizing::new((0..len).map(|byte| (0..8).fold(0u8, |acc, b| (acc << 1) | bit(byte * 8 + b))).collect()))
    }
}

/// CKM_AES_ECB_ENCRYPT_DATA (parameter: the data) and CKM_AES_CBC_ENCRYPT_DATA (an IV
/// and the data): the encryption of whole blocks of data under the AES base key, without
/// padding. Data that is no whole number of blocks, or shorter than the key asked for,
/// is CKR_MECHANISM_PARAM_INVALID.
struct EncryptData {
    ty: CK_MECHANISM_TYPE,
    cbc: bool,
}

impl Unit for EncryptData {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        derive_info(16, 32)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        AES_KEY_TYPES
    }
    fn inherits_secrecy(&self) -> bool {
        true
    }
    fn derive(&self, base: &Key, p: &Param, len: Option<usize>) -> Result<Secret> {
        let (iv, data) = match (self.cbc, p) {
            (true, Param::CbcData { iv, data }) => (Some(*iv), data.as_slice()),
            (false, p) => (None, data(p)?),
            _ => return Err(Error::MechanismParamInvalid),
        };
        if data.is_empty() || !data.len().is_multiple_of(AES_BLOCK) || len.is_some_and(|l| l > data.len()) {
            return Err(Error::MechanismParamInvalid);
        }
        let mut out = Zeroizing::new(data.to_vec());
        match iv {
            Some(mut iv) => AesCbc::new(base.value, Direction::Encrypt)?.apply(&mut iv, &mut out)?,
            None => AesEcb::new(base.value, Direction::Encrypt)?.apply(&mut out)?,
        }
        Ok(out)
    }
}

pub static UNITS: &[&dyn Unit] = &[
    &Combine { ty: CKM_CONCATENATE_BASE_AND_KEY, kind: Kind::BaseAndKey },
    &Combine { ty: CKM_CONCATENATE_BASE_AND_DATA, kind: Kind::BaseAndData },
    &Combine { ty: CKM_CONCATENATE_DATA_AND_BASE, kind: Kind::DataAndBase },
    &Combine { ty: CKM_XOR_BASE_AND_DATA, kind: Kind::Xor },
    &Extract,
    &EncryptData { ty: CKM_AES_ECB_ENCRYPT_DATA, cbc: false },
    &EncryptData { ty: CKM_AES_CBC_ENCRYPT_DATA, cbc: true },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::{h, rand};
    use crate::mech::SecretParam;
    use aes::cipher::{BlockEncrypt, KeyInit};

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        UNITS.iter().copied().find(|u| u.ty() == ty).expect("unit")
    }

    fn key(key_type: CK_KEY_TYPE, value: &[u8]) -> Key<'_> {
        Key { key_type, value, attrs: None }
    }

    #[test]
    fn combinations() {
        let (base, other, d) = (rand(16), rand(24), rand(20));
        let k = key(CKK_GENERIC_SECRET, &base);
        let with = |ty, p: &Param| unit(ty).derive(&k, p, None).unwrap().to_vec();
        let other_param = Param::Key(SecretParam::new(other.clone()));
        assert_eq!(with(CKM_CONCATENATE_BASE_AND_KEY, &other_param), [base.clone(), other].concat());
        assert_eq!(with(CKM_CONCATENATE_BASE_AND_DATA, &Param::Bytes(d.clone())), [base.clone(), d.clone()].concat());
        assert_eq!(with(CKM_CONCATENATE_DATA_AND_BASE, &Param::Bytes(d.clone())), [d.clone(), base.clone()].concat());
        let xor: Vec<u8> = base.iter().zip(&d).map(|(a, b)| a ^ b).collect();
        assert_eq!(with(CKM_XOR_BASE_AND_DATA, &Param::Bytes(d)), xor);
        assert_eq!(
            unit(CKM_CONCATENATE_BASE_AND_KEY).derive(&k, &Param::None, None).err(),
            Some(Error::MechanismParamInvalid)
        );
    }

    /// The specification's own example (current mechanisms 3.0, 2.43.7).
    #[test]
    fn extraction() {
        let k = key(CKK_GENERIC_SECRET, &[0x32, 0x9F, 0x84, 0xA9]);
        let got = unit(CKM_EXTRACT_KEY_FROM_KEY).derive(&k, &Param::Ulong(21), Some(2)).unwrap();
        assert_eq!(got.to_vec(), [0x95, 0x26]);
        let whole = unit(CKM_EXTRACT_KEY_FROM_KEY).derive(&k, &Param::Ulong(0), Some(4)).unwrap();
        assert_eq!(whole.to_vec(), [0x32, 0x9F, 0x84, 0xA9]);
        let e = |p: &Param, len| unit(CKM_EXTRACT_KEY_FROM_KEY).derive(&k, p, len).err();
        assert_eq!(e(&Param::Ulong(21), None), Some(Error::TemplateIncomplete));
        assert_eq!(e(&Param::Ulong(21), Some(5)), Some(Error::TemplateInconsistent));
        assert_eq!(e(&Param::Ulong(32), Some(1)), Some(Error::MechanismParamInvalid));
    }

    #[test]
    fn encryption_of_data_matches_the_aes_crate() {
        let base = rand(32);
        let cipher = aes::Aes256::new_from_slice(&base).unwrap();
        let data = rand(48);
        let k = key(CKK_AES, &base);
        let ecb = unit(CKM_AES_ECB_ENCRYPT_DATA).derive(&k, &Param::Bytes(data.clone()), Some(32)).unwrap();
        let mut expected = data.clone();
        for block in expected.chunks_mut(16) {
            cipher.encrypt_block(block.into());
        }
        assert_eq!(ecb.to_vec(), expected);
        let iv = h("000102030405060708090a0b0c0d0e0f");
        let p = Param::CbcData { iv: iv.clone().try_into().unwrap(), data: data.clone() };
        let cbc = unit(CKM_AES_CBC_ENCRYPT_DATA).derive(&k, &p, None).unwrap();
        let (mut chain, mut expected) = (iv, Vec::new());
        for block in data.chunks(16) {
            let mut b: Vec<u8> = block.iter().zip(&chain).map(|(x, y)| x ^ y).collect();
            cipher.encrypt_block(b.as_mut_slice().into());
            chain = b.clone();
            expected.extend(b);
        }
        assert_eq!(cbc.to_vec(), expected);
        // No whole blocks, or less data than the key asked for.
        let e = |p: &Param, len| unit(CKM_AES_ECB_ENCRYPT_DATA).derive(&k, p, len).err();
        assert_eq!(e(&Param::Bytes(rand(31)), None), Some(Error::MechanismParamInvalid));
        assert_eq!(e(&Param::Bytes(rand(16)), Some(32)), Some(Error::MechanismParamInvalid));
        assert_eq!(e(&Param::Bytes(Vec::new()), None), Some(Error::MechanismParamInvalid));
    }
}
