//! PIN lockout: failed logins counted on disk, the token flags that report them, the
//! lock, and the SO's reset of the user PIN.

mod common;

use common::*;
use cryptoki::context::{Function, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

const THREE_TRIES: &str = "[pin]\nmax_failed_logins = 3";

/// What the token flags tell of a PIN.
#[derive(Debug, PartialEq, Eq)]
enum Tries {
    Clear,
    /// CKF_*_PIN_COUNT_LOW only.
    Low,
    /// CKF_*_PIN_COUNT_LOW and CKF_*_PIN_FINAL_TRY.
    Final,
    /// CKF_*_PIN_LOCKED (whatever the others say).
    Locked,
}

fn tries(low: bool, last: bool, locked: bool) -> Tries {
    match (low, last, locked) {
        (_, _, true) => Tries::Locked,
        (false, false, false) => Tries::Clear,
        (true, false, false) => Tries::Low,
        (true, true, false) => Tries::Final,
        other => panic!("inconsistent PIN flags (low, final, locked) = {other:?}"),
    }
}

fn user_tries(p: &Pkcs11, s: Slot) -> Tries {
    let i = p.get_token_info(s).unwrap();
    tries(i.user_pin_count_low(), i.user_pin_final_try(), i.user_pin_locked())
}

fn so_tries(p: &Pkcs11, s: Slot) -> Tries {
    let i = p.get_token_info(s).unwrap();
    tries(i.so_pin_count_low(), i.so_pin_final_try(), i.so_pin_locked())
}

fn wrong_login(session: &Session, user: UserType) {
    expect_rv(session.login(user, Some(&pin("wrong-pin-000"))), RvError::PinIncorrect, Function::Login);
}

#[test]
fn wrong_user_pins_lock_until_the_so_resets_the_pin() {
    scenario!(THREE_TRIES, |_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        init_user_pin(&p, s, USER_PIN);
        let rw = p.open_rw_session(s).unwrap();
        assert_eq!(user_tries(&p, s), Tries::Clear);
        wrong_login(&rw, UserType::User);
        assert_eq!(user_tries(&p, s), Tries::Low);
        wrong_login(&rw, UserType::User);
        assert_eq!(user_tries(&p, s), Tries::Final);
        wrong_login(&rw, UserType::User);
        assert_eq!(user_tries(&p, s), Tries::Locked);
        expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinLocked, Function::Login);
        expect_rv(rw.set_pin(&pin(USER_PIN), &pin("new-pin-1")), RvError::PinLocked, Function::SetPIN);
        assert_eq!(so_tries(&p, s), Tries::Clear, "the SO PIN is counted apart");

        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        rw.init_pin(&pin("reset-pin-1")).unwrap();
        rw.logout().unwrap();
        assert_eq!(user_tries(&p, s), Tries::Clear);
        rw.login(UserType::User, Some(&pin("reset-pin-1"))).unwrap();
    });
}

#[test]
fn the_failure_count_is_kept_on_disk_and_cleared_by_a_good_login() {
    scenario!(THREE_TRIES, |s| {
        if s.role() == "observer" {
            let p = initialized();
            assert_eq!(user_tries(&p, slot(0)), Tries::Final, "another process sees the count");
            return;
        }
        let p = initialized();
        let slot0 = init_token(&p, LABEL);
        init_user_pin(&p, slot0, USER_PIN);
        wrong_login(&p.open_rw_session(slot0).unwrap(), UserType::User);
        reinitialize(&p);
        assert_eq!(user_tries(&p, slot0), Tries::Low);
        wrong_login(&p.open_rw_session(slot0).unwrap(), UserType::User);
        s.peer("observer");
        reinitialize(&p);
        assert_eq!(user_tries(&p, slot0), Tries::Final);

        let rw = p.open_rw_session(slot0).unwrap();
        rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(user_tries(&p, slot0), Tries::Clear);
        rw.logout().unwrap();
        // A full set of tries again after the reset.
        wrong_login(&rw, UserType::User);
        wrong_login(&rw, UserType::User);
        assert_eq!(user_tries(&p, slot0), Tries::Final);
    });
}

#[test]
fn wrong_so_pins_lock_the_so() {
    scenario!(THREE_TRIES, |_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        let rw = p.open_rw_session(s).unwrap();
        for expected in [Tries::Low, Tries::Final, Tries::Locked] {
            wrong_login(&rw, UserType::So);
            assert_eq!(so_tries(&p, s), expected);
        }
        expect_rv(rw.login(UserType::So, Some(&pin(SO_PIN))), RvError::PinLocked, Function::Login);
        drop(rw);
        expect_rv(p.init_token(s, &pin(SO_PIN), "again"), RvError::PinLocked, Function::InitToken);
        assert_eq!(user_tries(&p, s), Tries::Clear);
    });
}

#[test]
fn the_default_limit_is_ten_tries() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        init_user_pin(&p, s, USER_PIN);
        let rw = p.open_rw_session(s).unwrap();
        for _ in 0..8 {
            wrong_login(&rw, UserType::User);
        }
        assert_eq!(user_tries(&p, s), Tries::Low);
        wrong_login(&rw, UserType::User);
        assert_eq!(user_tries(&p, s), Tries::Final);
        wrong_login(&rw, UserType::User);
        assert_eq!(user_tries(&p, s), Tries::Locked);
        expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinLocked, Function::Login);
    });
}
