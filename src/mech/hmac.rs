//! HMAC mechanisms (RFC 2104) over SHA-1 and SHA-2: the full-length forms and the
//! *_HMAC_GENERAL forms, whose CK_MAC_GENERAL_PARAMS parameter truncates the output.
//! Also the sign/verify operations shared by every MAC (AES-CMAC uses them too).

use super::{Info, Key, Param, SignOp, Unit, VerifyOp};
use crate::crypto::{self, Hash};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use subtle::ConstantTimeEq;

/// Key sizes served, in bytes (the specification leaves the unit of HMAC key sizes to
/// the token; bytes is what CKA_VALUE_LEN counts and what other tokens report). Longer
/// keys would only be hashed down, and an empty key authenticates nothing.
const MIN_KEY: usize = 1;
const MAX_KEY: usize = 512;

/// A MAC computation the sign/verify operations can drive.
pub(super) trait Mac: Send {
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// The full-length MAC.
    fn finish(self) -> Result<Vec<u8>>;
}

impl Mac for crypto::Hmac {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        crypto::Hmac::update(self, data);
        Ok(())
    }
    fn finish(self) -> Result<Vec<u8>> {
        Ok(crypto::Hmac::finish(self))
    }
}

impl Mac for crypto::Cmac {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        crypto::Cmac::update(self, data)
    }
    fn finish(self) -> Result<Vec<u8>> {
        Ok(crypto::Cmac::finish(self)?.to_vec())
    }
}

/// MAC generation, truncated to `len` bytes (the full length unless a *_GENERAL
/// parameter asked for less).
pub(super) struct MacSign<M> {
    /// `None` once finished: the MAC state is consumed by finishing.
    mac: Option<M>,
    len: usize,
}

impl<M: Mac> MacSign<M> {
    pub(super) fn new(mac: M, len: usize) -> Self {
        MacSign { mac: Some(mac), len }
    }

    fn compute(&mut self) -> Result<Vec<u8>> {
        let mut full = self.mac.take().ok_or(Error::OperationNotInitialized)?.finish()?;
        if full.len() < self.len {
            return Err(Error::general("MAC shorter than requested"));
        }
        full.truncate(self.len);
        Ok(full)
    }
}

impl<M: Mac> SignOp for MacSign<M> {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        self.compute()
    }
    fn sig_len(&self) -> usize {
        self.len
    }
}

/// MAC verification: recomputes and compares in constant time.
pub(super) struct MacVerify<M>(MacSign<M>);

impl<M: Mac> MacVerify<M> {
    pub(super) fn new(mac: M, len: usize) -> Self {
        MacVerify(MacSign::new(mac, len))
    }
}

impl<M: Mac> VerifyOp for MacVerify<M> {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let expected = self.0.compute()?;
        if signature.len() != expected.len() {
            return Err(Error::SignatureLenRange);
        }
        if bool::from(expected.ct_eq(signature)) {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

/// Output length asked by a MAC mechanism's parameter: none for the full-length form,
/// CK_MAC_GENERAL_PARAMS in 1..=`full` for the general form. The specification allows a
/// length of 0, but an empty MAC authenticates nothing, so it is refused.
pub(super) fn mac_len(general: bool, p: &Param, full: usize) -> Result<usize> {
    match (general, p) {
        (false, Param::None) => Ok(full),
        (true, Param::Ulong(n)) => match usize::try_from(*n) {
            Ok(n) if (1..=full).contains(&n) => Ok(n),
            _ => Err(Error::MechanismParamInvalid),
        },
        _ => Err(Error::MechanismParamInvalid),
    }
}

struct HmacUnit {
    ty: CK_MECHANISM_TYPE,
    hash: Hash,
    general: bool,
    /// Generic secrets and the HMAC key type of the same hash.
    key_types: &'static [CK_KEY_TYPE],
}

impl HmacUnit {
    fn start(&self, key: &Key, p: &Param) -> Result<(crypto::Hmac, usize)> {
        if !self.key_types.contains(&key.key_type) {
            return Err(Error::KeyTypeInconsistent);
        }
        if !(MIN_KEY..=MAX_KEY).contains(&key.value.len()) {
            return Err(Error::KeySizeRange);
        }
        let len = mac_len(self.general, p, self.hash.output_len())?;
        Ok((crypto::Hmac::new(self.hash, key.value), len))
    }
}

impl Unit for HmacUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        Info { min_key: MIN_KEY as u64, max_key: MAX_KEY as u64, flags: CKF_SIGN | CKF_VERIFY }
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        self.key_types
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        let (mac, len) = self.start(key, p)?;
        Ok(Box::new(MacSign::new(mac, len)))
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        let (mac, len) = self.start(key, p)?;
        Ok(Box::new(MacVerify::new(mac, len)))
    }
}

macro_rules! hmac_pair {
    ($full:ident, $general:ident, $ckm:ident, $ckm_general:ident, $hash:expr, $ckk:ident) => {
        const $full: HmacUnit =
            HmacUnit { ty: $ckm, hash: $hash, general: false, key_types: &[CKK_GENERIC_SECRET, $ckk] };
        const $general: HmacUnit =
            HmacUnit { ty: $ckm_general, hash: $hash, general: true, key_types: &[CKK_GENERIC_SECRET, $ckk] };
    };
}

hmac_pair!(SHA_1, SHA_1_GEN, CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, Hash::Sha1, CKK_SHA_1_HMAC);
hmac_pair!(SHA224, SHA224_GEN, CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, Hash::Sha224, CKK_SHA224_HMAC);
hmac_pair!(SHA256, SHA256_GEN, CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, Hash::Sha256, CKK_SHA256_HMAC);
hmac_pair!(SHA384, SHA384_GEN, CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, Hash::Sha384, CKK_SHA384_HMAC);
hmac_pair!(SHA512, SHA512_GEN, CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, Hash::Sha512, CKK_SHA512_HMAC);

pub static UNITS: &[&dyn Unit] =
    &[&SHA_1, &SHA_1_GEN, &SHA224, &SHA224_GEN, &SHA256, &SHA256_GEN, &SHA384, &SHA384_GEN, &SHA512, &SHA512_GEN];

#[cfg(test)]
mod tests {
    //! HMAC-SHA-2 against the RustCrypto `hmac` crate; HMAC-SHA-1 against RFC 2202 (no
    //! independent SHA-1 implementation is at hand), plus every parameter and key error.
    use super::*;
    use crate::crypto::test_keys::{h, rand};

    fn key(key_type: CK_KEY_TYPE, value: &[u8]) -> Key<'_> {
        Key { key_type, value, attrs: None }
    }

    fn is_general(ty: CK_MECHANISM_TYPE) -> bool {
        [
            CKM_SHA_1_HMAC_GENERAL,
            CKM_SHA224_HMAC_GENERAL,
            CKM_SHA256_HMAC_GENERAL,
            CKM_SHA384_HMAC_GENERAL,
            CKM_SHA512_HMAC_GENERAL,
        ]
        .contains(&ty)
    }

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        UNITS.iter().copied().find(|u| u.ty() == ty).expect("unit")
    }

    fn oracle(hash: Hash, k: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: ::hmac::Mac + ::hmac::digest::KeyInit>(k: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <M as ::hmac::digest::KeyInit>::new_from_slice(k).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        match hash {
            Hash::Sha224 => run::<::hmac::Hmac<sha2::Sha224>>(k, data),
            Hash::Sha256 => run::<::hmac::Hmac<sha2::Sha256>>(k, data),
            Hash::Sha384 => run::<::hmac::Hmac<sha2::Sha384>>(k, data),
            Hash::Sha512 => run::<::hmac::Hmac<sha2::Sha512>>(k, data),
            Hash::Sha1 => panic!("no SHA-1 oracle"),
        }
    }

    /// Signs `data` in parts of `part` bytes.
    fn sign(u: &dyn Unit, k: &Key, p: &Param, data: &[u8], part: usize) -> Result<Vec<u8>> {
        let mut op = u.sign(k, p)?;
        for chunk in data.chunks(part) {
            op.update(chunk)?;
        }
        let sig = op.finish()?;
        assert_eq!(sig.len(), op.sig_len());
        Ok(sig)
    }

    fn verify(u: &dyn Unit, k: &Key, p: &Param, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut op = u.verify(k, p)?;
        op.update(data)?;
        op.finish(sig)
    }

    const SHA2: [(CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, Hash, CK_KEY_TYPE); 4] = [
        (CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, Hash::Sha224, CKK_SHA224_HMAC),
        (CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, Hash::Sha256, CKK_SHA256_HMAC),
        (CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, Hash::Sha384, CKK_SHA384_HMAC),
        (CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, Hash::Sha512, CKK_SHA512_HMAC),
    ];

    #[test]
    fn sha2_matches_oracle() {
        for (full, general, hash, ckk) in SHA2 {
            let n = hash.output_len();
            // Short keys, keys of a block and over a block (hashed first), the largest.
            for klen in [1, 20, 64, 65, 128, 129, 512] {
                let value = rand(klen);
                for dlen in [0, 1, 63, 64, 65, 1000] {
                    let data = rand(dlen);
                    let expect = oracle(hash, &value, &data);
                    for k in [key(CKK_GENERIC_SECRET, &value), key(ckk, &value)] {
                        assert_eq!(sign(unit(full), &k, &Param::None, &data, 7).unwrap(), expect);
                        assert_eq!(sign(unit(full), &k, &Param::None, &data, 1000).unwrap(), expect);
                        assert_eq!(verify(unit(full), &k, &Param::None, &data, &expect), Ok(()));
                        for len in [1, n / 2, n] {
                            let p = Param::Ulong(len as u64);
                            assert_eq!(sign(unit(general), &k, &p, &data, 13).unwrap(), expect[..len]);
                            assert_eq!(verify(unit(general), &k, &p, &data, &expect[..len]), Ok(()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sha1_rfc2202() {
        let cases = [
            (vec![0x0b; 20], b"Hi There".to_vec(), "b617318655057264e28bc0b6fb378c8ef146be00"),
            (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (vec![0xaa; 20], vec![0xdd; 50], "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
            // A key longer than the block.
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ];
        for (value, data, mac) in cases {
            for ckk in [CKK_GENERIC_SECRET, CKK_SHA_1_HMAC] {
                let k = key(ckk, &value);
                assert_eq!(sign(unit(CKM_SHA_1_HMAC), &k, &Param::None, &data, 3).unwrap(), h(mac));
                let p = Param::Ulong(10);
                assert_eq!(sign(unit(CKM_SHA_1_HMAC_GENERAL), &k, &p, &data, 5).unwrap(), h(mac)[..10]);
                assert_eq!(verify(unit(CKM_SHA_1_HMAC), &k, &Param::None, &data, &h(mac)), Ok(()));
            }
        }
    }

    #[test]
    fn verify_errors() {
        let value = rand(32);
        let k = key(CKK_GENERIC_SECRET, &value);
        let data = rand(100);
        for u in UNITS {
            let p = if is_general(u.ty()) { Param::Ulong(12) } else { Param::None };
            let sig = sign(*u, &k, &p, &data, 9).unwrap();
            assert_eq!(verify(*u, &k, &p, &data, &sig), Ok(()));
            assert_eq!(verify(*u, &k, &p, &data, &sig[1..]), Err(Error::SignatureLenRange));
            assert_eq!(verify(*u, &k, &p, &data, &[sig.as_slice(), &[0]].concat()), Err(Error::SignatureLenRange));
            for i in [0, sig.len() - 1] {
                let mut bad = sig.clone();
                bad[i] ^= 0x10;
                assert_eq!(verify(*u, &k, &p, &data, &bad), Err(Error::SignatureInvalid));
            }
            assert_eq!(verify(*u, &k, &p, &data[1..], &sig), Err(Error::SignatureInvalid));
        }
    }

    #[test]
    fn parameters() {
        let value = rand(32);
        let k = key(CKK_GENERIC_SECRET, &value);
        for u in UNITS {
            let general = is_general(u.ty());
            let full = u.sign(&k, &Param::None).map(|op| op.sig_len());
            if general {
                assert_eq!(full.err(), Some(Error::MechanismParamInvalid));
                let n = u.sign(&k, &Param::Ulong(1)).unwrap().sig_len();
                assert_eq!(n, 1);
                // The largest accepted length is the hash length.
                let mut max = 0;
                for len in 1..=64u64 {
                    if u.sign(&k, &Param::Ulong(len)).is_ok() {
                        max = len;
                    }
                }
                assert!([20, 28, 32, 48, 64].contains(&max));
                for bad in [Param::Ulong(0), Param::Ulong(max + 1), Param::Ulong(u64::MAX), Param::Bytes(vec![4])] {
                    assert_eq!(u.sign(&k, &bad).err(), Some(Error::MechanismParamInvalid));
                    assert_eq!(u.verify(&k, &bad).err(), Some(Error::MechanismParamInvalid));
                }
            } else {
                assert!([20, 28, 32, 48, 64].contains(&full.unwrap()));
                assert_eq!(u.sign(&k, &Param::Ulong(8)).err(), Some(Error::MechanismParamInvalid));
            }
        }
    }

    #[test]
    fn keys() {
        let value = rand(32);
        let s256 = unit(CKM_SHA256_HMAC);
        for wrong in [CKK_AES, CKK_SHA384_HMAC, CKK_SHA_1_HMAC] {
            assert_eq!(s256.sign(&key(wrong, &value), &Param::None).err(), Some(Error::KeyTypeInconsistent));
            assert_eq!(s256.verify(&key(wrong, &value), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        }
        assert_eq!(s256.key_types(), &[CKK_GENERIC_SECRET, CKK_SHA256_HMAC]);
        for len in [0, 513] {
            let v = vec![1u8; len];
            assert_eq!(s256.sign(&key(CKK_GENERIC_SECRET, &v), &Param::None).err(), Some(Error::KeySizeRange));
        }
        for u in UNITS {
            let info = u.info();
            assert_eq!((info.min_key, info.max_key, info.flags), (1, 512, CKF_SIGN | CKF_VERIFY));
            assert_eq!(u.encrypt(&key(CKK_GENERIC_SECRET, &value), &Param::None).err(), Some(Error::MechanismInvalid));
        }
    }

    #[test]
    fn finished_operations_stay_finished() {
        let value = rand(32);
        let k = key(CKK_GENERIC_SECRET, &value);
        let mut op = unit(CKM_SHA256_HMAC).sign(&k, &Param::None).unwrap();
        op.update(b"x").unwrap();
        op.finish().unwrap();
        assert_eq!(op.update(b"y").err(), Some(Error::OperationNotInitialized));
        assert_eq!(op.finish().err(), Some(Error::OperationNotInitialized));
    }
}
