//! NIST SP 800-108 key derivation (PKCS#11 3.0 current mechanisms, "SP 800-108 Key
//! Derivation"): CKM_SP800_108_COUNTER_KDF and CKM_SP800_108_FEEDBACK_KDF, with AES-CMAC
//! or HMAC as the PRF, and additional derived keys.
//!
//! Each PRF input is the caller's data parameters in their order: the iteration variable
//! (counter mode: the counter i from 1, in the caller's format; feedback mode: the
//! previous output, the IV before the first), an optional counter (feedback mode only),
//! the length of the derived keying material, and byte arrays. Every key takes whole PRF
//! outputs ("segments"), in order, the main key first; the DKM length is the keys' lengths
//! added up (SUM_OF_KEYS) or their segments' (SUM_OF_SEGMENTS), in bits.
//!
//! The library drives it (`Library::derive_keys`), as several keys come out of one call;
//! the unit itself serves the mechanism list and the gate's key types.

use super::{Info, Key, Param, Unit};
use crate::crypto::{Cmac, Hash, Hmac};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The encoding of the counter or of the DKM length: width in bits and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub little_endian: bool,
    pub bits: u64,
}

impl Encoding {
    /// `v` in this encoding, or None when it does not fit.
    fn encode(self, v: u64) -> Option<Vec<u8>> {
        let n = (self.bits / 8) as usize;
        if self.bits < 64 && v >> self.bits != 0 {
            return None;
        }
        let be = v.to_be_bytes();
        let mut out = be[8 - n..].to_vec();
        if self.little_endian {
            out.reverse();
        }
        Some(out)
    }
}

/// One CK_PRF_DATA_PARAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataParam {
    /// CK_SP800_108_ITERATION_VARIABLE: with the counter's encoding in counter mode, none
    /// in feedback mode.
    Iteration(Option<Encoding>),
    /// CK_SP800_108_OPTIONAL_COUNTER (feedback mode).
    Counter(Encoding),
    /// CK_SP800_108_DKM_LENGTH: the sum of the segments (true) or of the keys.
    DkmLength { segments: bool, encoding: Encoding },
    /// CK_SP800_108_BYTE_ARRAY.
    Bytes(Vec<u8>),
}

/// CK_SP800_108_KDF_PARAMS or CK_SP800_108_FEEDBACK_KDF_PARAMS, read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub feedback: bool,
    pub prf: CK_MECHANISM_TYPE,
    pub data: Vec<DataParam>,
    /// The feedback mode's IV (empty: none).
    pub iv: Vec<u8>,
    /// The templates of the additional derived keys.
    pub additional: Vec<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>>,
}

type Secret = Zeroizing<Vec<u8>>;

/// The PRF of `prf` keyed with `key`, and its output length.
enum Prf {
    Cmac(Cmac),
    Hmac(Box<Hmac>),
}

impl Prf {
    fn new(prf: CK_MECHANISM_TYPE, base: &Key) -> Result<(Prf, usize)> {
        let hash = match prf {
            CKM_AES_CMAC => {
                if base.key_type != CKK_AES {
                    return Err(Error::KeyTypeInconsistent);
                }
                return Ok((Prf::Cmac(Cmac::new(base.value)?), 16));
            }
            CKM_SHA_1_HMAC => Hash::Sha1,
            CKM_SHA224_HMAC => Hash::Sha224,
            CKM_SHA256_HMAC => Hash::Sha256,
            CKM_SHA384_HMAC => Hash::Sha384,
            CKM_SHA512_HMAC => Hash::Sha512,
            _ => return Err(Error::MechanismParamInvalid),
        };
        Ok((Prf::Hmac(Box::new(Hmac::new(hash, base.value))), hash.output_len()))
    }

    fn run(&self, parts: &[&[u8]]) -> Result<Secret> {
        match self {
            Prf::Cmac(c) => {
                let mut c = c.clone();
                for p in parts {
                    c.update(p)?;
                }
                Ok(Zeroizing::new(c.finish()?.to_vec()))
            }
            Prf::Hmac(h) => {
                let mut h = (**h).clone();
                for p in parts {
                    h.update(p);
                }
                Ok(Zeroizing::new(h.finish()))
            }
        }
    }
}

fn valid_counter(e: Encoding) -> bool {
    matches!(e.bits, 8 | 16 | 24 | 32)
}

fn valid_dkm(e: Encoding) -> bool {
    e.bits > 0 && e.bits <= 64 && e.bits.is_multiple_of(8)
}

/// The rules of the data parameters for the mode (CKR_MECHANISM_PARAM_INVALID otherwise):
/// exactly one iteration variable, in counter mode with an encoding and no optional
/// counter, in feedback mode without one and at most one counter; at most one DKM length.
fn check(p: &Params) -> Result<()> {
    let mut iterations = 0;
    let mut counters = 0;
    let mut dkms = 0;
    for d in &p.data {
        let ok = match d {
            DataParam::Iteration(e) => {
                iterations += 1;
                match (p.feedback, e) {
                    (false, Some(e)) => valid_counter(*e),
                    (true, None) => true,
                    _ => false,
                }
            }
            DataParam::Counter(e) => {
                counters += 1;
                p.feedback && valid_counter(*e)
            }
            DataParam::DkmLength { encoding, .. } => {
                dkms += 1;
                valid_dkm(*encoding)
            }
            DataParam::Bytes(_) => true,
        };
        if !ok {
            return Err(Error::MechanismParamInvalid);
        }
    }
    if iterations != 1 || counters > 1 || dkms > 1 || (!p.feedback && !p.iv.is_empty()) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(())
}

/// Derives keys of `lengths` bytes (the main key first) from `base`.
pub fn derive(base: &Key, p: &Params, lengths: &[usize]) -> Result<Vec<Secret>> {
    check(p)?;
    let (prf, h) = Prf::new(p.prf, base)?;
    let segments: Vec<usize> = lengths.iter().map(|l| l.div_ceil(h) * h).collect();
    let total: usize = segments.iter().sum();
    let blocks = (total / h) as u64;
    let keys_bits = lengths.iter().sum::<usize>() as u64 * 8;
    let mut dkm = Zeroizing::new(Vec::with_capacity(total));
    let mut prev: Secret = Zeroizing::new(p.iv.clone());
    for i in 1..=blocks {
        let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(p.data.len());
        for d in &p.data {
            let e = match d {
                DataParam::Iteration(Some(e)) | DataParam::Counter(e) => e.encode(i),
                DataParam::DkmLength { segments: true, encoding } => encoding.encode(total as u64 * 8),
                DataParam::DkmLength { segments: false, encoding } => encoding.encode(keys_bits),
                DataParam::Iteration(None) | DataParam::Bytes(_) => Some(Vec::new()),
            };
            encoded.push(e.ok_or(Error::MechanismParamInvalid)?);
        }
        let parts: Vec<&[u8]> = p
            .data
            .iter()
            .zip(&encoded)
            .map(|(d, e)| match d {
                DataParam::Iteration(None) => prev.as_slice(),
                DataParam::Bytes(b) => b.as_slice(),
                _ => e.as_slice(),
            })
            .collect();
        let k = prf.run(&parts)?;
        dkm.extend_from_slice(&k);
        prev = k;
    }
    let mut out = Vec::with_capacity(lengths.len());
    let mut at = 0;
    for (len, seg) in lengths.iter().zip(&segments) {
        out.push(Zeroizing::new(dkm[at..at + len].to_vec()));
        at += seg;
    }
    Ok(out)
}

/// The mechanism in the registry; `Library::derive_keys` calls `derive` for it.
struct Kbkdf(CK_MECHANISM_TYPE);

/// Base keys: AES (for AES-CMAC or HMAC) and the generic and HMAC secrets (for HMAC).
const BASE_TYPES: &[CK_KEY_TYPE] =
    &[CKK_AES, CKK_GENERIC_SECRET, CKK_SHA_1_HMAC, CKK_SHA224_HMAC, CKK_SHA256_HMAC, CKK_SHA384_HMAC, CKK_SHA512_HMAC];

impl Unit for Kbkdf {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.0
    }
    fn info(&self) -> Info {
        Info { min_key: 1, max_key: 512, flags: CKF_DERIVE }
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        BASE_TYPES
    }
    fn inherits_secrecy(&self) -> bool {
        true
    }
    /// Such a derivation splits one secret into keys for separate purposes; the peer
    /// suites (cryptoki's, after Kryoptic) expect the capabilities not named FALSE.
    fn names_capabilities(&self) -> bool {
        true
    }
    fn derive(&self, _base: &Key, _p: &Param, _len: Option<usize>) -> Result<Secret> {
        // Several keys come out of one call: the library drives `derive` itself.
        Err(Error::MechanismParamInvalid)
    }
}

pub static UNITS: &[&dyn Unit] = &[&Kbkdf(CKM_SP800_108_COUNTER_KDF), &Kbkdf(CKM_SP800_108_FEEDBACK_KDF)];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &[u8]) -> Key<'_> {
        Key { key_type: CKK_AES, value, attrs: None }
    }

    fn params(feedback: bool, data: Vec<DataParam>) -> Params {
        Params { feedback, prf: CKM_AES_CMAC, data, iv: Vec::new(), additional: Vec::new() }
    }

    const CTR8: Encoding = Encoding { little_endian: false, bits: 8 };

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// NIST CAVP SP 800-108 vectors (KDFCTR and KDFFeedback, CMAC-AES128).
    #[test]
    fn cavp_vectors() {
        let counter = |ki: &str, bits: u64, fixed: &str, ko: &str| {
            let ki = hex(ki);
            let p = params(
                false,
                vec![DataParam::Iteration(Some(Encoding { little_endian: false, bits })), DataParam::Bytes(hex(fixed))],
            );
            let ko = hex(ko);
            assert_eq!(derive(&key(&ki), &p, &[ko.len()]).unwrap()[0].as_slice(), ko.as_slice());
        };
        // [CTRLOCATION=BEFORE_FIXED][RLEN=32_BITS] COUNT=0, L=128
        counter(
            "c10b152e8c97b77e18704e0f0bd38305",
            32,
            "98cd4cbbbebe15d17dc86e6dbad800a2dcbd64f7c7ad0e78e9cf94ffdba89d03e97eadf6c4f7b806caf52aa38f09d0eb71d71f497bcc6906b48d36c4",
            "26faf61908ad9ee881b8305c221db53f",
        );
        // [CTRLOCATION=BEFORE_FIXED][RLEN=8_BITS] L=128
        counter(
            "dff1e50ac0b69dc40f1051d46c2b069c",
            8,
            "c16e6e02c5a3dcc8d78b9ac1306877761310455b4e41469951d9e6c2245a064b33fd8c3b01203a7824485bf0a64060c4648b707d2607935699316ea5",
            "8be8f0869b3c0ba97b71863d1b9f7813",
        );
        // KDFFeedback [CTRLOCATION=AFTER_ITER][RLEN=16_BITS], IVlen = 0, L=512
        let p = params(
            true,
            vec![
                DataParam::Iteration(None),
                DataParam::Counter(Encoding { little_endian: false, bits: 16 }),
                DataParam::Bytes(hex(
                    "fb5294ed40a0e4aa70a7be13913070a4c5cfc05f89b9f7dd26a493b8c63889c7c3b0b60dd6d598ffa296a426224c727a501946",
                )),
            ],
        );
        let ko = hex(
            "7164471f559812581a53aaf7fb6d6c53a1293115cda873887efcc7ce6b3a026b2d19f0d38db8590e218a2676df88f53cab3313ed63bd1e4828f3c066ea5eb1fd",
        );
        let ki = hex("d7f5fa7551645de0b36aecd46565f954");
        assert_eq!(derive(&key(&ki), &p, &[64]).unwrap()[0].as_slice(), ko.as_slice());
    }

    #[test]
    fn counter_mode_is_the_prf_over_counter_and_fixed_data() {
        // Two blocks of AES-CMAC over i || fixed, computed independently with the cmac crate
        // semantics of aws-lc: PRF(K, 01 || F) || PRF(K, 02 || F), cut to 20 bytes.
        let k = [7u8; 16];
        let fixed = b"label\0context".to_vec();
        let p = params(false, vec![DataParam::Iteration(Some(CTR8)), DataParam::Bytes(fixed.clone())]);
        let out = derive(&key(&k), &p, &[20]).unwrap();
        let prf = |i: u8| {
            let mut c = Cmac::new(&k).unwrap();
            c.update(&[i]).unwrap();
            c.update(&fixed).unwrap();
            c.finish().unwrap()
        };
        let mut want = prf(1).to_vec();
        want.extend_from_slice(&prf(2));
        assert_eq!(out[0].as_slice(), &want[..20]);
    }

    #[test]
    fn additional_keys_start_on_whole_segments() {
        let k = [9u8; 32];
        let p = params(false, vec![DataParam::Iteration(Some(CTR8)), DataParam::Bytes(b"x".to_vec())]);
        let one = derive(&key(&k), &p, &[40]).unwrap();
        let three = derive(&key(&k), &p, &[20, 1, 16]).unwrap();
        // 20 bytes take two 16-byte segments: the second key starts at byte 32.
        assert_eq!(three[0].as_slice(), &one[0][..20]);
        assert_eq!(three[1].as_slice(), &one[0][32..33]);
        assert_eq!(three.iter().map(|k| k.len()).collect::<Vec<_>>(), [20, 1, 16]);
    }

    #[test]
    fn feedback_mode_chains_the_outputs() {
        let k = [3u8; 16];
        let mut p = params(true, vec![DataParam::Iteration(None), DataParam::Counter(CTR8)]);
        p.iv = b"sixteen bytes iv".to_vec();
        let out = derive(&key(&k), &p, &[32]).unwrap();
        let prf = |prev: &[u8], i: u8| {
            let mut c = Cmac::new(&k).unwrap();
            c.update(prev).unwrap();
            c.update(&[i]).unwrap();
            c.finish().unwrap()
        };
        let k1 = prf(b"sixteen bytes iv", 1);
        let k2 = prf(&k1, 2);
        assert_eq!(&out[0][..16], &k1);
        assert_eq!(&out[0][16..], &k2);
    }

    #[test]
    fn malformed_data_parameters_are_refused() {
        let k = [1u8; 16];
        let dkm = DataParam::DkmLength { segments: true, encoding: Encoding { little_endian: false, bits: 32 } };
        for (feedback, data) in [
            (false, vec![DataParam::Bytes(vec![1])]),
            (false, vec![DataParam::Iteration(None)]),
            (false, vec![DataParam::Iteration(Some(CTR8)), DataParam::Counter(CTR8)]),
            (false, vec![DataParam::Iteration(Some(CTR8)), dkm.clone(), dkm.clone()]),
            (true, vec![DataParam::Iteration(Some(CTR8))]),
            (false, vec![DataParam::Iteration(Some(Encoding { little_endian: false, bits: 12 }))]),
        ] {
            let r = derive(&key(&k), &params(feedback, data.clone()), &[16]);
            assert_eq!(r.err(), Some(Error::MechanismParamInvalid), "{data:?}");
        }
        // An 8-bit counter cannot count 256 blocks.
        let p = params(false, vec![DataParam::Iteration(Some(CTR8))]);
        assert!(derive(&key(&k), &p, &[256 * 16]).is_err());
        assert!(derive(&key(&k), &p, &[255 * 16]).is_ok());
        // Little-endian and wide encodings.
        assert_eq!(Encoding { little_endian: true, bits: 32 }.encode(0x0102).unwrap(), [2, 1, 0, 0]);
        assert_eq!(Encoding { little_endian: false, bits: 64 }.encode(5).unwrap(), [0, 0, 0, 0, 0, 0, 0, 5]);
    }
}
