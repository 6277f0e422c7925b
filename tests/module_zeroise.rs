//! Secrets do not outlive their use in the host's memory: after keys are used (their
//! values unsealed, their aws-lc key schedules made), destroyed and the library
//! finalized, the process's whole memory is read back (as a core dump would hold it) and
//! searched for the key values. The test never holds a value itself except masked, so
//! what it finds is the module's.

mod common;

use common::raw::{raw, Mech, Op};
use common::*;
use cryptoki_sys::*;

/// A key value kept masked: `value = masked ^ mask`, never put together in memory.
struct Masked {
    masked: [u8; 32],
    mask: [u8; 32],
}

impl Masked {
    fn random() -> Masked {
        let (mut masked, mut mask) = ([0u8; 32], [0u8; 32]);
        masked.copy_from_slice(&random_bytes(32));
        mask.copy_from_slice(&random_bytes(32));
        Masked { masked, mask }
    }

    /// Whether `hay` holds bytes `from..from + n` of the value at `at`.
    fn at(&self, hay: &[u8], at: usize, from: usize, n: usize) -> bool {
        (0..n).all(|j| hay[at + j] == self.masked[from + j] ^ self.mask[from + j])
    }

    /// Writes the value into `buf`, for the one call that hands it to the module.
    fn reveal_into(&self, buf: &mut [u8; 32]) {
        for (j, b) in buf.iter_mut().enumerate() {
            *b = self.masked[j] ^ self.mask[j];
        }
    }
}

/// Every readable mapping of this process, read back through /proc/self/mem; returns
/// where either half of each value is found.
fn search_memory(values: &[&Masked]) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
    let mut found = Vec::new();
    let mut buf = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else { continue };
        let name = parts.nth(3).unwrap_or("");
        if !perms.starts_with('r') || name.starts_with("[v") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap());
        buf.clear();
        buf.resize((b - a) as usize, 0);
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        // Either half of a value: a freed buffer's first bytes are overwritten by the
        // allocator's own pointers, and an AES-256 schedule holds the key's two halves as
        // its first two round keys.
        for (i, v) in values.iter().enumerate() {
            for from in [0, 16] {
                let first = v.masked[from] ^ v.mask[from];
                for at in 0..buf.len().saturating_sub(16) {
                    if buf[at] == first && v.at(&buf, at, from, 16) {
                        found.push(format!("value {i} (bytes {from}..) at {:#x} in {line}", a + at as u64));
                    }
                }
            }
        }
    }
    found
}

/// Creates a secret key from a masked value with C_CreateObject, from a buffer that is
/// wiped as soon as the call returns.
fn create_key(h: CK_SESSION_HANDLE, v: &Masked, key_type: CK_KEY_TYPE, token: bool) -> CK_OBJECT_HANDLE {
    let (class, yes, no) = (CKO_SECRET_KEY, CK_TRUE, CK_FALSE);
    let token_flag = if token { yes } else { no };
    let mut value = [0u8; 32];
    v.reveal_into(&mut value);
    let attr = |ty, p: *const u8, n: usize| CK_ATTRIBUTE { type_: ty, pValue: p as *mut _, ulValueLen: n as CK_ULONG };
    let mut t = [
        attr(CKA_CLASS, &class as *const _ as *const u8, std::mem::size_of::<CK_OBJECT_CLASS>()),
        attr(CKA_KEY_TYPE, &key_type as *const _ as *const u8, std::mem::size_of::<CK_KEY_TYPE>()),
        attr(CKA_TOKEN, &token_flag, 1),
        attr(CKA_SENSITIVE, &yes, 1),
        attr(CKA_ENCRYPT, &yes, 1),
        attr(CKA_DECRYPT, &yes, 1),
        attr(CKA_SIGN, &yes, 1),
        attr(CKA_VERIFY, &yes, 1),
        attr(CKA_VALUE, value.as_ptr(), value.len()),
    ];
    let mut obj = 0;
    // SAFETY: a template of valid pointers into this frame, for the call.
    let rv = unsafe { raw().lib().C_CreateObject(h, t.as_mut_ptr(), t.len() as CK_ULONG, &mut obj) };
    for b in value.iter_mut() {
        // SAFETY: a plain byte of this frame; volatile so the wipe is not optimised away.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    assert_eq!(rv, CKR_OK, "C_CreateObject");
    obj
}

#[test]
fn key_values_are_gone_from_memory_after_use_and_finalize() {
    scenario!(|s| {
        if s.role() != "probe" {
            // Made in a process of its own, so that nothing else ran in it before.
            let p = initialized();
            let slot0 = init_token(&p, LABEL);
            init_user_pin(&p, slot0, USER_PIN);
            p.finalize().unwrap();
            s.peer("probe");
            return;
        }
        let r = raw();
        let (aes_session, aes_token, hmac) = (Masked::random(), Masked::random(), Masked::random());
        // SAFETY: C_Initialize with no arguments, then the calls of the PKCS#11 contract.
        assert_eq!(unsafe { r.lib().C_Initialize(std::ptr::null_mut()) }, CKR_OK);
        let h = r.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
        r.login(h, CKU_USER, USER_PIN).unwrap();
        let keys = [
            create_key(h, &aes_session, CKK_AES, false),
            create_key(h, &aes_token, CKK_AES, true),
            create_key(h, &hmac, CKK_GENERIC_SECRET, false),
        ];
        // Uses that make key schedules and contexts: GCM, CBC, CTR, HMAC, in parts too.
        for key in &keys[..2] {
            for m in [Mech::gcm(&[1; 12], b"aad", 128), Mech::bytes(CKM_AES_CBC_PAD, &[2; 16])] {
                r.init(Op::Encrypt, h, &m, *key).unwrap();
                r.crypt(true, h, &[7; 100], Some(256)).ok();
                r.init(Op::Encrypt, h, &m, *key).unwrap();
                r.crypt_update(true, h, &[7; 64], Some(256)).ok();
                r.crypt_final(true, h, Some(256)).ok();
            }
        }
        r.mac(h, &Mech::new(CKM_SHA256_HMAC), keys[2], b"data").unwrap();
        for key in keys {
            // SAFETY: a session and an object handle of this module.
            assert_eq!(unsafe { r.lib().C_DestroyObject(h, key) }, CKR_OK);
        }
        r.close_all_sessions(0).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { r.lib().C_Finalize(std::ptr::null_mut()) }, CKR_OK);
        // The search finds what is there: a value this test leaves in memory on purpose.
        let control = Masked::random();
        let mut planted = Box::new([0u8; 32]);
        control.reveal_into(&mut planted);
        let found = search_memory(&[&aes_session, &aes_token, &hmac, &control]);
        let (control_found, left): (Vec<_>, Vec<_>) = found.into_iter().partition(|f| f.starts_with("value 3 "));
        assert!(!control_found.is_empty(), "the search does not see a value planted in the heap");
        assert!(left.is_empty(), "key material left in memory:\n{}", left.join("\n"));
        std::hint::black_box(&planted);
    });
}
