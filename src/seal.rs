//! Encryption at rest. A random 256-bit token master key seals every secret with
//! AES-256-GCM (random 96-bit nonce, full tag) under associated data that names the
//! token, the object and the attribute, so sealed blobs cannot be moved between them.
//! The master key is kept wrapped under keys derived from the PINs with Argon2id, whose
//! parameters travel with each wrap. A key derived from the master key authenticates every
//! stored row and the token's state as a whole (`Integrity`); the rows' MACs add up to a
//! digest (`Sum256`) that the state carries, so that a row removed, added or put back
//! from an older copy shows.

use crate::crypto;
use crate::error::{Error, Result};
use zeroize::Zeroizing;

pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const SALT_LEN: usize = 16;
const WRAP_VERSION: u8 = 1;

/// The token master key, in memory only while someone is logged in.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; MASTER_KEY_LEN]>);

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl MasterKey {
    pub fn generate() -> Result<MasterKey> {
        let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        crypto::random(k.as_mut())?;
        Ok(MasterKey(k))
    }

    /// Seals one attribute value of object `uid` on token `serial`.
    pub fn seal(&self, serial: &str, uid: &str, attr: u64, value: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        crypto::random(&mut nonce)?;
        let aad = attr_aad(serial, uid, attr);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&crypto::gcm_seal(self.0.as_ref(), &nonce, &aad, value)?);
        Ok(out)
    }

    /// Opens what `seal` made for the same token, object and attribute; anything else
    /// (another object's blob, a flipped bit) is a keystore error.
    pub fn open(&self, serial: &str, uid: &str, attr: u64, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if blob.len() < NONCE_LEN {
            return Err(Error::storage(format!("sealed attribute {attr:#x} of object {uid} is truncated")));
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::storage("nonce"))?;
        crypto::gcm_open(self.0.as_ref(), nonce, &attr_aad(serial, uid, attr), ct).map_err(|_| {
            Error::storage(format!("sealed attribute {attr:#x} of object {uid} fails its integrity check"))
        })
    }

    /// A key for the blind search index of private objects, derived so that it reveals
    /// nothing about the master key.
    pub fn index_key(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(hmac_sha256(self.0.as_ref(), b"kmstoken index key v1"))
    }

    /// A key for one purpose of the KMS layer (`label` names it), derived so that it
    /// reveals nothing about the master key or the keys of other purposes.
    pub fn purpose_key(&self, label: &str) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(hmac_sha256(self.0.as_ref(), format!("kmstoken purpose v1\0{label}").as_bytes()))
    }

    /// The key that authenticates the stored rows and the token state.
    pub fn integrity(&self) -> Integrity {
        Integrity(self.purpose_key("keystore integrity"))
    }

    /// Wraps the master key under a PIN. Layout: version | m_kib | t | p (u32 LE each) |
    /// salt (16) | nonce (12) | ciphertext+tag (48).
    pub fn wrap(&self, pin: &[u8], params: KdfParams, role_aad: &[u8]) -> Result<Vec<u8>> {
        let mut salt = [0u8; SALT_LEN];
        crypto::random(&mut salt)?;
        let mut nonce = [0u8; NONCE_LEN];
        crypto::random(&mut nonce)?;
        let kek = derive(pin, &salt, params)?;
        let mut out = vec![WRAP_VERSION];
        for v in [params.memory_kib, params.iterations, params.parallelism] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&salt);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&crypto::gcm_seal(kek.as_ref(), &nonce, role_aad, self.0.as_ref())?);
        Ok(out)
    }

    /// Unwraps with a PIN. A wrong PIN fails the GCM tag check (constant time):
    /// CKR_PIN_INCORRECT; a malformed blob is a keystore error.
    pub fn unwrap(blob: &[u8], pin: &[u8], role_aad: &[u8]) -> Result<MasterKey> {
        Self::unwrap_any(blob, pin, &[role_aad]).map(|(mk, _)| mk)
    }

    /// `unwrap` under the first of `aads` that opens the wrap (the PIN is derived once);
    /// returns which one did.
    pub fn unwrap_any<A: AsRef<[u8]>>(blob: &[u8], pin: &[u8], aads: &[A]) -> Result<(MasterKey, usize)> {
        let bad = || Error::storage("PIN-wrapped master key is malformed");
        let params = Self::wrap_params(blob).ok_or_else(bad)?;
        let salt = &blob[13..13 + SALT_LEN];
        let nonce: &[u8; NONCE_LEN] = blob[13 + SALT_LEN..13 + SALT_LEN + NONCE_LEN].try_into().map_err(|_| bad())?;
        let ct = &blob[13 + SALT_LEN + NONCE_LEN..];
        let kek = derive(pin, salt, params)?;
        for (i, aad) in aads.iter().enumerate() {
            if let Ok(mk) = crypto::gcm_open(kek.as_ref(), nonce, aad.as_ref(), ct) {
                let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
                k.copy_from_slice(&mk);
                return Ok((MasterKey(k), i));
            }
        }
        Err(Error::PinIncorrect)
    }

    /// The Argon2id parameters a wrap was made with; None when it is malformed.
    pub fn wrap_params(blob: &[u8]) -> Option<KdfParams> {
        if blob.len() != 1 + 12 + SALT_LEN + NONCE_LEN + MASTER_KEY_LEN + 16 || blob[0] != WRAP_VERSION {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([blob[i], blob[i + 1], blob[i + 2], blob[i + 3]]);
        Some(KdfParams { memory_kib: u32_at(1), iterations: u32_at(5), parallelism: u32_at(9) })
    }
}

/// The MAC key of the keystore's rows (HMAC-SHA256).
pub struct Integrity(Zeroizing<Vec<u8>>);

pub const MAC_LEN: usize = 32;

impl Integrity {
    /// The MAC of one row's canonical encoding (`store::rows`).
    pub fn mac(&self, row: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&hmac_sha256(&self.0, row));
        out
    }

    /// Whether `mac` is the MAC of `row`, compared in constant time.
    pub fn verify(&self, row: &[u8], mac: &[u8]) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(self.mac(row).as_slice(), mac))
    }
}

/// A sum of MACs modulo 2^256: the digest of a set of rows, updated row by row as rows
/// come and go. Addition rather than XOR: the sum of a subset of old MACs that equals a
/// given value is a modular subset-sum problem, where XOR would be linear algebra.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum256([u64; 4]);

impl Sum256 {
    pub fn from_bytes(b: &[u8]) -> Option<Sum256> {
        let b: &[u8; 32] = b.try_into().ok()?;
        let mut limbs = [0u64; 4];
        for (i, l) in limbs.iter_mut().enumerate() {
            *l = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().ok()?);
        }
        Some(Sum256(limbs))
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, l) in self.0.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&l.to_le_bytes());
        }
        out
    }

    /// Adds a row's MAC (a MAC of another length, which no row has, counts as zero).
    pub fn add(&mut self, mac: &[u8]) {
        if let Some(m) = Sum256::from_bytes(mac) {
            let mut carry = false;
            for (a, b) in self.0.iter_mut().zip(m.0) {
                let (s1, c1) = a.overflowing_add(b);
                let (s2, c2) = s1.overflowing_add(carry as u64);
                *a = s2;
                carry = c1 || c2;
            }
        }
    }

    /// Takes a row's MAC away.
    pub fn sub(&mut self, mac: &[u8]) {
        if let Some(m) = Sum256::from_bytes(mac) {
            let mut borrow = false;
            for (a, b) in self.0.iter_mut().zip(m.0) {
                let (d1, b1) = a.overflowing_sub(b);
                let (d2, b2) = d1.overflowing_sub(borrow as u64);
                *a = d2;
                borrow = b1 || b2;
            }
        }
    }
}

/// The associated data binding a sealed attribute to its place.
fn attr_aad(serial: &str, uid: &str, attr: u64) -> Vec<u8> {
    let mut aad = b"kmstoken attr v1\0".to_vec();
    aad.extend_from_slice(serial.as_bytes());
    aad.push(0);
    aad.extend_from_slice(uid.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&attr.to_le_bytes());
    aad
}

/// The associated data of a PIN wrap: which token and which role it opens. `sealed`
/// tells a wrap of a token whose rows are authenticated (v2) from one of a keystore made
/// before (v1): a v2 wrap cannot be passed off as a v1 one, so the rows of a token that
/// has been sealed cannot be presented as never sealed.
pub fn role_aad(serial: &str, role: &str, sealed: bool) -> Vec<u8> {
    let v = if sealed { 2 } else { 1 };
    format!("kmstoken master key v{v}\0{serial}\0{role}").into_bytes()
}

fn derive(pin: &[u8], salt: &[u8], p: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| Error::storage(format!("Argon2id parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    // Argon2's memory (19 MiB by default). glibc serves an allocation this large with mmap
    // and gives it back with munmap, but the first such free raises its mmap threshold to
    // the freed size (up to 32 MiB), so the next PIN check would take the memory from the
    // heap, where it stays resident for the life of the host process. Reserving more than
    // that maximum keeps every derivation on mmap: only the blocks Argon2 touches become
    // resident, and they go back to the system when it is done.
    const GLIBC_MMAP_THRESHOLD_MAX: usize = 32 << 20;
    let count = params.block_count();
    let reserve = count.max(GLIBC_MMAP_THRESHOLD_MAX / std::mem::size_of::<Block>() + 1);
    let mut blocks: Vec<Block> = Vec::with_capacity(reserve);
    blocks.resize(count, Block::default());
    let r = Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into_with_memory(
        pin,
        salt,
        out.as_mut(),
        &mut blocks,
    );
    blocks.iter_mut().for_each(zeroize::Zeroize::zeroize);
    r.map_err(|e| Error::general(format!("Argon2id: {e}")))?;
    Ok(out)
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = crypto::Hmac::new(crypto::Hash::Sha256, key);
    m.update(data);
    m.finish()
}

/// The search-index hash of an attribute value: keyed (blind) for private objects, a
/// plain hash for public ones, which must be findable before login.
pub fn index_hash(key: Option<&[u8]>, attr: u64, value: &[u8]) -> Vec<u8> {
    let mut data = attr.to_le_bytes().to_vec();
    data.extend_from_slice(value);
    let h = match key {
        Some(k) => hmac_sha256(k, &data),
        None => {
            let mut d = crypto::Digest::new(crypto::Hash::Sha256);
            d.update(&data);
            d.finish()
        }
    };
    h[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn pin_wrap_round_trip_and_wrong_pin() {
        let mk = MasterKey::generate().unwrap();
        let aad = role_aad("serial", "user", true);
        let w = mk.wrap(b"1234", CHEAP, &aad).unwrap();
        let back = MasterKey::unwrap(&w, b"1234", &aad).unwrap();
        assert_eq!(back.0.as_ref(), mk.0.as_ref());
        assert!(matches!(MasterKey::unwrap(&w, b"1235", &aad), Err(Error::PinIncorrect)));
        // The SO wrap cannot stand in for the user wrap.
        assert!(matches!(MasterKey::unwrap(&w, b"1234", &role_aad("serial", "so", true)), Err(Error::PinIncorrect)));
        // Nor can a wrap of a sealed token pass for one of a keystore made before sealing.
        assert!(matches!(MasterKey::unwrap(&w, b"1234", &role_aad("serial", "user", false)), Err(Error::PinIncorrect)));
        assert!(matches!(MasterKey::unwrap(&w[..40], b"1234", &aad), Err(Error::Storage(_))));
    }

    #[test]
    fn sealed_blobs_are_bound_to_their_place() {
        let mk = MasterKey::generate().unwrap();
        let b = mk.seal("s", "obj1", 0x11, b"secret").unwrap();
        assert_eq!(mk.open("s", "obj1", 0x11, &b).unwrap().as_slice(), b"secret");
        assert!(mk.open("s", "obj2", 0x11, &b).is_err());
        assert!(mk.open("s", "obj1", 0x03, &b).is_err());
        assert!(mk.open("t", "obj1", 0x11, &b).is_err());
        let mut flipped = b.clone();
        flipped[20] ^= 1;
        assert!(mk.open("s", "obj1", 0x11, &flipped).is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(b, mk.seal("s", "obj1", 0x11, b"secret").unwrap());
    }

    #[test]
    fn sums_of_macs_add_and_take_away() {
        let m = |b: u8| [b; 32];
        let mut s = Sum256::default();
        for b in [1, 200, 255, 7] {
            s.add(&m(b));
        }
        let mut t = s;
        t.sub(&m(200));
        t.add(&m(201));
        assert_ne!(s, t);
        t.sub(&m(201));
        t.add(&m(200));
        assert_eq!(s, t);
        // The carry runs across limbs: all-ones plus one is zero.
        let mut z = Sum256::from_bytes(&[0xff; 32]).unwrap();
        let mut one = [0u8; 32];
        one[0] = 1;
        z.add(&one);
        assert_eq!(z, Sum256::default());
        z.sub(&one);
        assert_eq!(z.to_bytes(), [0xff; 32]);
        // A value of the wrong length changes nothing.
        z.add(&[1; 31]);
        assert_eq!(z.to_bytes(), [0xff; 32]);
    }

    #[test]
    fn integrity_macs_depend_on_key_and_row() {
        let a = MasterKey::generate().unwrap().integrity();
        let b = MasterKey::generate().unwrap().integrity();
        let m = a.mac(b"row");
        assert!(a.verify(b"row", &m));
        assert!(!a.verify(b"rov", &m));
        assert!(!b.verify(b"row", &m));
        assert!(!a.verify(b"row", &m[..31]));
    }

    #[test]
    fn index_hashes_depend_on_key_attr_and_value() {
        let k = [1u8; 32];
        assert_ne!(index_hash(None, 3, b"a"), index_hash(Some(&k), 3, b"a"));
        assert_ne!(index_hash(None, 3, b"a"), index_hash(None, 0x102, b"a"));
        assert_eq!(index_hash(None, 3, b"a"), index_hash(None, 3, b"a"));
    }
}
