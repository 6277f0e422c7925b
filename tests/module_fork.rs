//! fork(): a child process must call C_Initialize again before it may use the module,
//! and then it works there, while the parent goes on untouched.

mod common;

use common::*;
use cryptoki::context::{Function, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType};
use cryptoki::slot::Slot;

const IV: [u8; 16] = [3; 16];

/// What the forked child does; any panic is its failure.
fn child(p: &Pkcs11, s: Slot, value: &[u8]) {
    expect_rv(p.get_library_info(), RvError::CryptokiNotInitialized, Function::GetInfo);
    expect_rv(p.get_token_info(s), RvError::CryptokiNotInitialized, Function::GetTokenInfo);
    expect_rv(p.open_rw_session(s), RvError::CryptokiNotInitialized, Function::OpenSession);
    p.initialize(init_args()).unwrap();
    let session = user_session(p, s);
    let key = session.find_objects(&[Attribute::Label(b"forked".to_vec())]).unwrap();
    assert_eq!(key.len(), 1);
    let ct = session.encrypt(&Mechanism::AesCbcPad(IV), key[0], b"child").unwrap();
    assert_eq!(ct, oracle::cbc_encrypt(value, &IV, b"child", true));
    drop(session);
    p.clone().finalize().unwrap();
}

#[test]
fn a_forked_child_initializes_again() {
    scenario!(|_| {
        let (p, s, session) = ready();
        let value = random_bytes(32);
        let mut t = secret_template(KeyType::AES, &value);
        t.extend([Attribute::Token(true), Attribute::Label(b"forked".to_vec())]);
        let key = create(&session, &t);

        // SAFETY: the child only runs `child` and leaves with _exit.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(&p, s, &value))).is_ok();
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waits for the child just started.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "the child failed (status {status:#x})"
                );
            }
        }

        // The parent's library, login and session are as they were.
        let ct = session.encrypt(&Mechanism::AesCbcPad(IV), key, b"parent").unwrap();
        assert_eq!(ct, oracle::cbc_encrypt(&value, &IV, b"parent", true));
        drop(session);
        p.finalize().unwrap();
    });
}
