//! PKCS#11 3.0 message-based encryption for AES-GCM (C_MessageEncryptInit ...
//! C_MessageDecryptFinal): one key for many messages, each with its own IV, additional
//! data and tag, in one call (C_EncryptMessage) or in parts (C_EncryptMessageBegin and
//! C_EncryptMessageNext, the last part flagged CKF_END_OF_MESSAGE). The key passed the
//! KMS gate when the operation began; each message is one more use of it.
//!
//! The IV: as given (CKG_NO_GENERATE), or made by the token in the bits after the fixed
//! ones (CKG_GENERATE_RANDOM: random; CKG_GENERATE_COUNTER and CKG_GENERATE: a counter of
//! this operation's messages) and written back to the caller. A message being
//! decrypted is released only once its tag has checked.

use crate::crypto::{self, GcmStream};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// CK_GCM_MESSAGE_PARAMS in Rust: what the caller gave, and what the token writes back
/// (a generated IV, the tag of an encryption).
#[derive(Clone, Debug, Default)]
pub struct GcmMessageParams {
    pub iv: Vec<u8>,
    pub iv_fixed_bits: u64,
    pub generator: CK_GENERATOR_FUNCTION,
    pub tag_bits: u64,
    /// The tag: read for decryption, written by encryption.
    pub tag: Vec<u8>,
}

/// IV lengths served, in bytes (as CKM_AES_GCM's).
const MAX_IV: usize = 1024;

impl GcmMessageParams {
    fn tag_len(&self) -> Result<usize> {
        if !(32..=128).contains(&self.tag_bits) || !self.tag_bits.is_multiple_of(8) {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(self.tag_bits as usize / 8)
    }
}

/// A message begun with C_*MessageBegin.
enum InProgress {
    Encrypt { stream: GcmStream, tag_len: usize },
    Decrypt { iv: Vec<u8>, aad: Vec<u8>, tag: Vec<u8>, data: Zeroizing<Vec<u8>> },
}

/// A message-based AES-GCM operation.
pub struct MessageCipher {
    key: Zeroizing<Vec<u8>>,
    encrypt: bool,
    /// Messages this operation has made an IV for with a counter.
    counter: u64,
    current: Option<InProgress>,
}

impl MessageCipher {
    pub fn new(key: &[u8], encrypt: bool) -> Result<Self> {
        if !crypto::is_aes_key_len(key.len()) {
            return Err(Error::KeySizeRange);
        }
        Ok(MessageCipher { key: Zeroizing::new(key.to_vec()), encrypt, counter: 0, current: None })
    }

    /// Checks the IV, and for an encryption makes it as the generator asks.
    fn prepare_iv(&mut self, p: &mut GcmMessageParams) -> Result<()> {
        if p.iv.is_empty() || p.iv.len() > MAX_IV {
            return Err(Error::MechanismParamInvalid);
        }
        let fixed_bits = usize::try_from(p.iv_fixed_bits).map_err(|_| Error::MechanismParamInvalid)?;
        if p.generator == CKG_NO_GENERATE {
            return Ok(());
        }
        // The generated part is whole bytes after the fixed bits.
        let fixed = fixed_bits.div_ceil(8);
        if !self.encrypt || !fixed_bits.is_multiple_of(8) || fixed >= p.iv.len() {
            return Err(Error::MechanismParamInvalid);
        }
        let free = &mut p.iv[fixed..];
        match p.generator {
            CKG_GENERATE_RANDOM => crypto::random(free)?,
            CKG_GENERATE | CKG_GENERATE_COUNTER => {
                self.counter = self.counter.checked_add(1).ok_or(Error::MechanismParamInvalid)?;
                let c = self.counter.to_be_bytes();
                let n = free.len().min(c.len());
                free.fill(0);
                let at = free.len() - n;
                free[at..].copy_from_slice(&c[c.len() - n..]);
            }
            _ => return Err(Error::MechanismParamInvalid),
        }
        Ok(())
    }

    /// C_EncryptMessage / C_DecryptMessage: a whole message. With `out` None, only the
    /// output's length (as long as the input: the tag travels in the parameter).
    pub fn one_shot(
        &mut self,
        p: &mut GcmMessageParams,
        aad: &[u8],
        data: &[u8],
        out: Option<&mut [u8]>,
    ) -> Result<usize> {
        if self.current.is_some() {
            return Err(Error::OperationActive);
        }
        let tag_len = p.tag_len()?;
        let Some(out) = out else { return Ok(data.len()) };
        if out.len() < data.len() {
            return Err(Error::BufferTooSmall(data.len()));
        }
        self.prepare_iv(p)?;
        if self.encrypt {
            let sealed = crypto::gcm_seal_any(&self.key, &p.iv, aad, tag_len, data)?;
            let (ct, tag) = sealed.split_at(data.len());
            out[..ct.len()].copy_from_slice(ct);
            p.tag = tag.to_vec();
        } else {
            if p.tag.len() != tag_len {
                return Err(Error::MechanismParamInvalid);
            }
            let sealed = [data, &p.tag].concat();
            let plain = crypto::gcm_open_any(&self.key, &p.iv, aad, tag_len, &sealed)?;
            out[..plain.len()].copy_from_slice(&plain);
        }
        Ok(data.len())
    }

    /// C_*MessageBegin: a message in parts, its IV (made now for an encryption) and
    /// additional data.
    pub fn begin(&mut self, p: &mut GcmMessageParams, aad: &[u8]) -> Result<()> {
        if self.current.is_some() {
            return Err(Error::OperationActive);
        }
        let tag_len = p.tag_len()?;
        self.prepare_iv(p)?;
        self.current = Some(if self.encrypt {
            InProgress::Encrypt { stream: GcmStream::new(&self.key, &p.iv, aad)?, tag_len }
        } else {
            if p.tag.len() != tag_len {
                return Err(Error::MechanismParamInvalid);
            }
            InProgress::Decrypt {
                iv: p.iv.clone(),
                aad: aad.to_vec(),
                tag: p.tag.clone(),
                data: Zeroizing::new(Vec::new()),
            }
        });
        Ok(())
    }

    /// C_*MessageNext: one part; `end` (CKF_END_OF_MESSAGE) ends the message, writing an
    /// encryption's tag into `p`. A decryption releases the whole plaintext at the end,
    /// once the tag has checked, so every part before announces and gives nothing.
    pub fn next(&mut self, p: &mut GcmMessageParams, data: &[u8], out: Option<&mut [u8]>, end: bool) -> Result<usize> {
        let current = self.current.as_mut().ok_or(Error::OperationNotInitialized)?;
        let need = match current {
            InProgress::Encrypt { .. } => data.len(),
            InProgress::Decrypt { data: have, .. } if end => have.len().saturating_add(data.len()),
            InProgress::Decrypt { .. } => 0,
        };
        let Some(out) = out else { return Ok(need) };
        if out.len() < need {
            return Err(Error::BufferTooSmall(need));
        }
        let result = match current {
            InProgress::Encrypt { stream, .. } => stream.update(data).map(|ct| {
                out[..ct.len()].copy_from_slice(&ct);
                ct.len()
            }),
            InProgress::Decrypt { data: have, .. } => {
                // The parts wait for the tag; their total is the caller's to choose, so
                // an allocation that fails is CKR_HOST_MEMORY, not an abort.
                let mut grown = Zeroizing::new(Vec::new());
                let total = have.len().checked_add(data.len()).ok_or(Error::HostMemory);
                total.and_then(|n| grown.try_reserve_exact(n).map_err(|_| Error::HostMemory)).map(|_| {
                    grown.extend_from_slice(have);
                    grown.extend_from_slice(data);
                    *have = grown;
                    0
                })
            }
        };
        if !end || result.is_err() {
            if result.is_err() {
                self.current = None;
            }
            return result;
        }
        let written = result?;
        match self.current.take() {
            Some(InProgress::Encrypt { stream, tag_len }) => {
                p.tag = stream.finish(tag_len)?;
                Ok(written)
            }
            Some(InProgress::Decrypt { iv, aad, tag, data }) => {
                let sealed = Zeroizing::new([&data[..], &tag].concat());
                let plain = crypto::gcm_open_any(&self.key, &iv, &aad, tag.len(), &sealed)?;
                out[..plain.len()].copy_from_slice(&plain);
                Ok(plain.len())
            }
            None => Err(Error::OperationNotInitialized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::rand;

    fn params(iv: Vec<u8>, generator: CK_GENERATOR_FUNCTION, fixed_bits: u64) -> GcmMessageParams {
        GcmMessageParams { iv, iv_fixed_bits: fixed_bits, generator, tag_bits: 128, tag: Vec::new() }
    }

    #[test]
    fn messages_round_trip_whole_and_in_parts() {
        let key = rand(32);
        let mut enc = MessageCipher::new(&key, true).unwrap();
        let mut dec = MessageCipher::new(&key, false).unwrap();
        let (aad, pt) = (rand(9), rand(50));
        let mut p = params(rand(12), CKG_NO_GENERATE, 0);
        let mut ct = vec![0u8; 50];
        assert_eq!(enc.one_shot(&mut p, &aad, &pt, None).unwrap(), 50);
        enc.one_shot(&mut p, &aad, &pt, Some(&mut ct)).unwrap();
        let whole = crypto::gcm_seal_any(&key, &p.iv, &aad, 16, &pt).unwrap();
        assert_eq!([ct.clone(), p.tag.clone()].concat(), whole, "the same as CKM_AES_GCM");
        let mut back = vec![0u8; 50];
        dec.one_shot(&mut p, &aad, &ct, Some(&mut back)).unwrap();
        assert_eq!(back, pt);

        // In parts.
        let mut q = params(rand(16), CKG_NO_GENERATE, 0);
        enc.begin(&mut q, &aad).unwrap();
        let mut parts = Vec::new();
        for (i, chunk) in pt.chunks(20).enumerate() {
            let mut out = vec![0u8; chunk.len()];
            let n = enc.next(&mut q, chunk, Some(&mut out), i == 2).unwrap();
            parts.extend_from_slice(&out[..n]);
        }
        assert_eq!([parts.clone(), q.tag.clone()].concat(), crypto::gcm_seal_any(&key, &q.iv, &aad, 16, &pt).unwrap());
        dec.begin(&mut q, &aad).unwrap();
        assert_eq!(dec.next(&mut q, &parts[..30], Some(&mut []), false).unwrap(), 0);
        let mut out = vec![0u8; 50];
        assert_eq!(dec.next(&mut q, &parts[30..], None, true).unwrap(), 50);
        assert_eq!(dec.next(&mut q, &parts[30..], Some(&mut out), true).unwrap(), 50);
        assert_eq!(out, pt);

        // A wrong tag releases nothing.
        p.tag[0] ^= 1;
        let mut sink = vec![0u8; 50];
        assert_eq!(dec.one_shot(&mut p, &aad, &ct, Some(&mut sink)), Err(Error::EncryptedDataInvalid));
        assert_eq!(sink, vec![0u8; 50]);
    }

    #[test]
    fn generated_ivs() {
        let mut enc = MessageCipher::new(&rand(16), true).unwrap();
        let mut out = [0u8; 4];
        let mut p = params(vec![0xAA, 0xBB, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], CKG_GENERATE_COUNTER, 16);
        enc.one_shot(&mut p, b"", b"data", Some(&mut out)).unwrap();
        assert_eq!(p.iv, [0xAA, 0xBB, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        enc.one_shot(&mut p, b"", b"data", Some(&mut out)).unwrap();
        assert_eq!(p.iv, [0xAA, 0xBB, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let mut r = params(vec![0x11; 12], CKG_GENERATE_RANDOM, 32);
        enc.one_shot(&mut r, b"", b"data", Some(&mut out)).unwrap();
        assert_eq!(&r.iv[..4], &[0x11; 4]);
        assert_ne!(&r.iv[4..], &[0x11; 8]);
        // Decryption takes the IV as given; bad parameters are refused.
        let mut dec = MessageCipher::new(&rand(16), false).unwrap();
        let mut g = params(vec![0; 12], CKG_GENERATE_RANDOM, 0);
        g.tag = vec![0; 16];
        assert_eq!(dec.one_shot(&mut g, b"", b"data", Some(&mut out)), Err(Error::MechanismParamInvalid));
        let mut bad = params(vec![0; 12], CKG_GENERATE_RANDOM, 4);
        assert_eq!(enc.one_shot(&mut bad, b"", b"data", Some(&mut out)), Err(Error::MechanismParamInvalid));
        let mut no_iv = params(Vec::new(), CKG_NO_GENERATE, 0);
        assert_eq!(enc.one_shot(&mut no_iv, b"", b"data", Some(&mut out)), Err(Error::MechanismParamInvalid));
        let mut short_tag = params(vec![0; 12], CKG_NO_GENERATE, 0);
        short_tag.tag_bits = 24;
        assert_eq!(enc.one_shot(&mut short_tag, b"", b"data", Some(&mut out)), Err(Error::MechanismParamInvalid));
    }
}
