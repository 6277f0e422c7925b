//! Sessions and login: session states, the login rules between SO and user, closing
//! sessions, and the PIN functions.

mod common;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::session::{SessionState, UserType};
use cryptoki_sys::*;

#[test]
fn session_states_follow_the_login() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        init_user_pin(&p, s, USER_PIN);
        let ro = p.open_ro_session(s).unwrap();
        let rw = p.open_rw_session(s).unwrap();
        let states =
            || (ro.get_session_info().unwrap().session_state(), rw.get_session_info().unwrap().session_state());
        assert_eq!(states(), (SessionState::RoPublic, SessionState::RwPublic));
        assert!(!ro.get_session_info().unwrap().read_write());
        assert!(rw.get_session_info().unwrap().read_write());
        assert_eq!(ro.get_session_info().unwrap().slot_id(), s);

        // A login belongs to the application: every session sees it.
        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(states(), (SessionState::RoUser, SessionState::RwUser));
        let info = p.get_token_info(s).unwrap();
        assert_eq!((info.session_count(), info.rw_session_count()), (Some(2), Some(1)));
        rw.logout().unwrap();
        assert_eq!(states(), (SessionState::RoPublic, SessionState::RwPublic));
    });
}

#[test]
fn so_and_user_logins_exclude_each_other() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        init_user_pin(&p, s, USER_PIN);
        let rw = p.open_rw_session(s).unwrap();
        let ro = p.open_ro_session(s).unwrap();
        expect_rv(rw.login(UserType::So, Some(&pin(SO_PIN))), RvError::SessionReadOnlyExists, Function::Login);
        drop(ro);

        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(rw.get_session_info().unwrap().session_state(), SessionState::RwSecurityOfficer);
        expect_rv(p.open_ro_session(s), RvError::SessionReadWriteSoExists, Function::OpenSession);
        let rw2 = p.open_rw_session(s).unwrap();
        assert_eq!(rw2.get_session_info().unwrap().session_state(), SessionState::RwSecurityOfficer);
        expect_rv(
            rw2.login(UserType::User, Some(&pin(USER_PIN))),
            RvError::UserAnotherAlreadyLoggedIn,
            Function::Login,
        );
        expect_rv(rw2.login(UserType::So, Some(&pin(SO_PIN))), RvError::UserAlreadyLoggedIn, Function::Login);

        rw.logout().unwrap();
        rw2.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserAlreadyLoggedIn, Function::Login);
        expect_rv(rw.login(UserType::So, Some(&pin(SO_PIN))), RvError::UserAnotherAlreadyLoggedIn, Function::Login);
        // An R/O session may open beside a user login.
        assert_eq!(p.open_ro_session(s).unwrap().get_session_info().unwrap().session_state(), SessionState::RoUser);
    });
}

#[test]
fn login_and_logout_errors() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        let rw = p.open_rw_session(s).unwrap();
        expect_rv(rw.logout(), RvError::UserNotLoggedIn, Function::Logout);
        expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserPinNotInitialized, Function::Login);
        let r = raw();
        expect_rv(r.login(sh(&rw), 7, USER_PIN), RvError::UserTypeInvalid, Function::Login);
        expect_rv(rw.login(UserType::So, Some(&pin("not-the-so-pin"))), RvError::PinIncorrect, Function::Login);

        init_user_pin(&p, s, USER_PIN);
        expect_rv(rw.login(UserType::User, Some(&pin("not-the-pin"))), RvError::PinIncorrect, Function::Login);
        rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        rw.logout().unwrap();
        expect_rv(rw.logout(), RvError::UserNotLoggedIn, Function::Logout);
    });
}

#[test]
fn close_all_sessions_ends_them_and_the_login() {
    scenario!(|_| {
        let (p, s, user) = ready();
        let others = [p.open_rw_session(s).unwrap(), p.open_ro_session(s).unwrap()];
        let handles = [sh(&user), sh(&others[0]), sh(&others[1])];
        let r = raw();
        r.close_all_sessions(s.id()).unwrap();
        for h in handles {
            expect_rv(r.session_info(h), RvError::SessionHandleInvalid, Function::GetSessionInfo);
        }
        let info = p.get_token_info(s).unwrap();
        assert_eq!((info.session_count(), info.rw_session_count()), (Some(0), Some(0)));
        // The login ended with the last session.
        let fresh = p.open_rw_session(s).unwrap();
        assert_eq!(fresh.get_session_info().unwrap().session_state(), SessionState::RwPublic);
        // Handles are not reused.
        assert!(!handles.contains(&sh(&fresh)));
        // Closing all sessions of the empty slot is fine; of no slot, not.
        r.close_all_sessions(1).unwrap();
        expect_rv(r.close_all_sessions(9), RvError::SlotIdInvalid, Function::CloseAllSessions);
    });
}

#[test]
fn invalid_session_handles_are_refused() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        let r = raw();
        for h in [0, 0xdead_beef] {
            expect_rv(r.session_info(h), RvError::SessionHandleInvalid, Function::GetSessionInfo);
            expect_rv(r.close_session(h), RvError::SessionHandleInvalid, Function::CloseSession);
        }
        let session = p.open_rw_session(s).unwrap();
        let h = sh(&session);
        session.close().unwrap();
        expect_rv(r.session_info(h), RvError::SessionHandleInvalid, Function::GetSessionInfo);
        expect_rv(r.find_init(h, &[]), RvError::SessionHandleInvalid, Function::FindObjectsInit);
        // Only serial sessions exist.
        expect_rv(r.open_session(s.id(), CKF_RW_SESSION), RvError::SessionParallelNotSupported, Function::OpenSession);
        let h = r.open_session(s.id(), CKF_SERIAL_SESSION).unwrap();
        assert_eq!(r.session_info(h).unwrap().state, CKS_RO_PUBLIC_SESSION);
        r.close_session(h).unwrap();
    });
}

#[test]
fn set_pin_changes_the_user_pin() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        init_user_pin(&p, s, USER_PIN);
        let ro = p.open_ro_session(s).unwrap();
        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(ro.set_pin(&pin(USER_PIN), &pin("new-pin-5678")), RvError::SessionReadOnly, Function::SetPIN);

        let rw = p.open_rw_session(s).unwrap();
        expect_rv(rw.set_pin(&pin("wrong-old-pin"), &pin("new-pin-5678")), RvError::PinIncorrect, Function::SetPIN);
        expect_rv(rw.set_pin(&pin(USER_PIN), &pin("abc")), RvError::PinLenRange, Function::SetPIN);
        rw.set_pin(&pin(USER_PIN), &pin("new-pin-5678")).unwrap();
        rw.logout().unwrap();
        expect_rv(rw.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinIncorrect, Function::Login);
        rw.login(UserType::User, Some(&pin("new-pin-5678"))).unwrap();
        rw.logout().unwrap();

        // Not logged in, the user PIN can still be changed by whoever knows it.
        rw.set_pin(&pin("new-pin-5678"), &pin(USER_PIN)).unwrap();
        rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    });
}

#[test]
fn so_changes_the_so_pin() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        let rw = p.open_rw_session(s).unwrap();
        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        rw.set_pin(&pin(SO_PIN), &pin("new-so-pin")).unwrap();
        rw.logout().unwrap();
        expect_rv(rw.login(UserType::So, Some(&pin(SO_PIN))), RvError::PinIncorrect, Function::Login);
        rw.login(UserType::So, Some(&pin("new-so-pin"))).unwrap();
    });
}

#[test]
fn init_pin_needs_the_so_and_a_pin_of_allowed_length() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        let rw = p.open_rw_session(s).unwrap();
        expect_rv(rw.init_pin(&pin(USER_PIN)), RvError::UserNotLoggedIn, Function::InitPIN);
        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        expect_rv(rw.init_pin(&pin("abc")), RvError::PinLenRange, Function::InitPIN);
        expect_rv(rw.init_pin(&pin(&"x".repeat(256))), RvError::PinLenRange, Function::InitPIN);
        rw.init_pin(&pin("abcd")).unwrap();
        rw.logout().unwrap();
        assert!(p.get_token_info(s).unwrap().user_pin_initialized());
        rw.login(UserType::User, Some(&pin("abcd"))).unwrap();
    });
}
