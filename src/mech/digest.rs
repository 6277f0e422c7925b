//! Message digests: SHA-1 and SHA-2 (224, 256, 384, 512). They take no parameter.

use super::{DigestOp, Info, Param, Unit};
use crate::crypto::{self, Hash};
use crate::error::{Error, Result};
use cryptoki_sys::*;

struct DigestUnit {
    ty: CK_MECHANISM_TYPE,
    hash: Hash,
}

impl Unit for DigestUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        // Digests use no key: the sizes are unused and reported as zero.
        Info { min_key: 0, max_key: 0, flags: CKF_DIGEST }
    }
    fn digest(&self, p: &Param) -> Result<Box<dyn DigestOp>> {
        if *p != Param::None {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(Box::new(Digesting { hash: self.hash, state: crypto::Digest::new(self.hash) }))
    }
}

#[derive(Clone)]
struct Digesting {
    hash: Hash,
    state: crypto::Digest,
}

impl DigestOp for Digesting {
    fn update(&mut self, data: &[u8]) {
        self.state.update(data);
    }
    fn finish(&mut self) -> Vec<u8> {
        // Finishing consumes the state; a fresh one takes its place so the operation
        // stays well-defined (the session ends it anyway).
        std::mem::replace(&mut self.state, crypto::Digest::new(self.hash)).finish()
    }
    fn output_len(&self) -> usize {
        self.hash.output_len()
    }
}

const SHA_1: DigestUnit = DigestUnit { ty: CKM_SHA_1, hash: Hash::Sha1 };
const SHA224: DigestUnit = DigestUnit { ty: CKM_SHA224, hash: Hash::Sha224 };
const SHA256: DigestUnit = DigestUnit { ty: CKM_SHA256, hash: Hash::Sha256 };
const SHA384: DigestUnit = DigestUnit { ty: CKM_SHA384, hash: Hash::Sha384 };
const SHA512: DigestUnit = DigestUnit { ty: CKM_SHA512, hash: Hash::Sha512 };

pub static UNITS: &[&dyn Unit] = &[&SHA_1, &SHA224, &SHA256, &SHA384, &SHA512];

#[cfg(test)]
mod tests {
    //! SHA-2 against the RustCrypto `sha2` crate; SHA-1 against FIPS 180 examples.
    use super::*;
    use crate::crypto::test_keys::rand;
    use sha2::Digest as _;

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        UNITS.iter().copied().find(|u| u.ty() == ty).expect("unit")
    }

    fn digest(ty: CK_MECHANISM_TYPE, data: &[u8], part: usize) -> Vec<u8> {
        let mut op = unit(ty).digest(&Param::None).unwrap();
        for chunk in data.chunks(part) {
            op.update(chunk);
        }
        let out = op.finish();
        assert_eq!(out.len(), op.output_len());
        out
    }

    #[test]
    fn sha2_matches_oracle() {
        for len in [0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 5000] {
            let data = rand(len);
            for part in [1, 7, 64, 10_000] {
                assert_eq!(digest(CKM_SHA224, &data, part), sha2::Sha224::digest(&data).to_vec());
                assert_eq!(digest(CKM_SHA256, &data, part), sha2::Sha256::digest(&data).to_vec());
                assert_eq!(digest(CKM_SHA384, &data, part), sha2::Sha384::digest(&data).to_vec());
                assert_eq!(digest(CKM_SHA512, &data, part), sha2::Sha512::digest(&data).to_vec());
            }
        }
    }

    #[test]
    fn sha1_fips180() {
        let h = |s: &str| hex::decode(s).unwrap();
        assert_eq!(digest(CKM_SHA_1, b"abc", 1), h("a9993e364706816aba3e25717850c26c9cd0d89d"));
        assert_eq!(digest(CKM_SHA_1, b"", 1), h("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
        let a_million = vec![b'a'; 1_000_000];
        assert_eq!(digest(CKM_SHA_1, &a_million, 4099), h("34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
    }

    #[test]
    fn parameters_info_and_state() {
        for u in UNITS {
            assert_eq!(u.digest(&Param::Ulong(1)).err(), Some(Error::MechanismParamInvalid));
            assert_eq!(u.digest(&Param::Bytes(vec![])).err(), Some(Error::MechanismParamInvalid));
            let info = u.info();
            assert_eq!((info.min_key, info.max_key, info.flags), (0, 0, CKF_DIGEST));
            // A finished digest starts over rather than failing or repeating itself.
            let mut op = u.digest(&Param::None).unwrap();
            op.update(b"abc");
            let first = op.finish();
            assert_eq!(op.finish(), digest(u.ty(), b"", 1));
            assert_ne!(first, op.finish());
        }
        let lens: Vec<usize> = UNITS.iter().map(|u| u.digest(&Param::None).unwrap().output_len()).collect();
        assert_eq!(lens, [20, 28, 32, 48, 64]);
    }
}
