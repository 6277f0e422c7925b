//! The library as a whole: C_Initialize / C_Finalize rules, C_GetInfo, the function
//! list and the PKCS#11 3.0 interfaces.

mod common;

use common::raw::{list_version, raw};
use common::*;
use cryptoki::context::{CInitializeFlags, Function};
use cryptoki::error::RvError;
use cryptoki_sys::*;
use std::ffi::{c_void, CStr};
use std::ptr::{null_mut, NonNull};

#[test]
fn initialize_twice_is_refused() {
    scenario!(|_| {
        let p = initialized();
        expect_rv(p.initialize(init_args()), RvError::CryptokiAlreadyInitialized, Function::Initialize);
        // The first initialisation is untouched.
        assert_eq!(slot_ids(&p), vec![0]);
    });
}

#[test]
fn calls_before_initialize_and_after_finalize_are_refused() {
    scenario!(|_| {
        let p = load();
        expect_rv(p.get_library_info(), RvError::CryptokiNotInitialized, Function::GetInfo);
        expect_rv(p.get_all_slots(), RvError::CryptokiNotInitialized, Function::GetSlotList);
        expect_rv(p.clone().finalize(), RvError::CryptokiNotInitialized, Function::Finalize);

        p.initialize(init_args()).unwrap();
        p.get_library_info().unwrap();
        p.clone().finalize().unwrap();
        expect_rv(p.get_library_info(), RvError::CryptokiNotInitialized, Function::GetInfo);
        expect_rv(p.clone().finalize(), RvError::CryptokiNotInitialized, Function::Finalize);

        p.initialize(init_args()).unwrap();
        assert_eq!(slot_ids(&p), vec![0]);
    });
}

#[test]
fn initialize_arguments_are_checked() {
    scenario!(|_| {
        let p = load();
        let mut reserved = 0u8;
        let ptr = NonNull::new(&mut reserved as *mut u8 as *mut c_void).unwrap();
        // SAFETY: the pointer is valid for the call; the module must refuse it unread.
        let args =
            unsafe { cryptoki::context::CInitializeArgs::new_with_reserved(CInitializeFlags::OS_LOCKING_OK, ptr) };
        expect_rv(p.initialize(args), RvError::ArgumentsBad, Function::Initialize);

        // Some but not all of the mutex functions.
        extern "C" fn create_mutex(_: *mut *mut c_void) -> CK_RV {
            CKR_OK
        }
        let mut partial = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create_mutex),
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: 0,
            pReserved: null_mut(),
        };
        let r = raw();
        let rv = unsafe { r.lib().C_Initialize(&mut partial as *mut CK_C_INITIALIZE_ARGS as *mut c_void) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);

        // Neither refusal initialised anything.
        expect_rv(p.get_library_info(), RvError::CryptokiNotInitialized, Function::GetInfo);
        p.initialize(init_args()).unwrap();
        // A NULL argument is fine too (raw, after a finalize).
        p.clone().finalize().unwrap();
        assert_eq!(unsafe { r.lib().C_Initialize(null_mut()) }, CKR_OK);
        assert_eq!(unsafe { r.lib().C_Finalize(&mut reserved as *mut u8 as *mut c_void) }, CKR_ARGUMENTS_BAD);
        assert_eq!(unsafe { r.lib().C_Finalize(null_mut()) }, CKR_OK);
    });
}

#[test]
fn library_info_reports_cryptoki_3_0() {
    scenario!(|_| {
        let p = initialized();
        let info = p.get_library_info().unwrap();
        let v = info.cryptoki_version();
        assert_eq!((v.major(), v.minor()), (3, 0));
        assert_eq!(info.manufacturer_id(), "kmstoken");
        // cryptoki took the 3.0 interface, so 3.0-only functions are there.
        assert!(p.is_fn_supported(Function::SessionCancel));
        assert!(p.is_fn_supported(Function::LoginUser));
    });
}

#[test]
fn function_list_is_2_40_and_works_before_initialize() {
    scenario!(|_| {
        let r = raw();
        let list = r.get_function_list().unwrap();
        let v = list_version(list as *const c_void);
        assert_eq!((v.major, v.minor), (2, 40));
        // SAFETY: the module returned a pointer to its static CK_FUNCTION_LIST.
        let list = unsafe { &*list };
        let entries = [
            list.C_Initialize.is_some(),
            list.C_Finalize.is_some(),
            list.C_GetInfo.is_some(),
            list.C_GetSlotList.is_some(),
            list.C_OpenSession.is_some(),
            list.C_Login.is_some(),
            list.C_CreateObject.is_some(),
            list.C_FindObjectsInit.is_some(),
            list.C_EncryptInit.is_some(),
            list.C_DecryptFinal.is_some(),
            list.C_DigestKey.is_some(),
            list.C_SignFinal.is_some(),
            list.C_VerifyFinal.is_some(),
            list.C_WrapKey.is_some(),
            list.C_UnwrapKey.is_some(),
            list.C_GenerateRandom.is_some(),
            list.C_WaitForSlotEvent.is_some(),
        ];
        assert!(entries.iter().all(|e| *e), "missing entries in the function list");

        // Calls through the list reach the module.
        let mut info = CK_INFO::default();
        assert_eq!(unsafe { (list.C_GetInfo.unwrap())(&mut info) }, CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(unsafe { (list.C_Initialize.unwrap())(null_mut()) }, CKR_OK);
        assert_eq!(unsafe { (list.C_GetInfo.unwrap())(&mut info) }, CKR_OK);
        assert_eq!((info.cryptokiVersion.major, info.cryptokiVersion.minor), (3, 0));
        assert_eq!(unsafe { (list.C_Finalize.unwrap())(null_mut()) }, CKR_OK);

        assert_eq!(unsafe { r.lib().C_GetFunctionList(null_mut()) }, CKR_ARGUMENTS_BAD);
    });
}

fn interface_name(i: &CK_INTERFACE) -> String {
    // SAFETY: the module's interface names are static NUL-terminated strings.
    unsafe { CStr::from_ptr(i.pInterfaceName as *const std::ffi::c_char) }.to_str().unwrap().to_string()
}

fn interface_version(i: &CK_INTERFACE) -> (u8, u8) {
    let v = list_version(i.pFunctionList);
    (v.major, v.minor)
}

#[test]
fn interfaces_offer_3_2_then_3_0_then_2_40() {
    scenario!(|_| {
        let r = raw();
        let (rv, n, _) = r.interface_list(None);
        rv.unwrap();
        assert_eq!(n, 3);
        let (rv, n, _) = r.interface_list(Some(2));
        expect_rv(rv, RvError::BufferTooSmall, Function::GetInterfaceList);
        assert_eq!(n, 3, "the needed count is reported");
        let (rv, _, all) = r.interface_list(Some(3));
        rv.unwrap();
        let seen: Vec<(String, (u8, u8))> = all.iter().map(|i| (interface_name(i), interface_version(i))).collect();
        let name = || "PKCS 11".to_string();
        assert_eq!(seen, vec![(name(), (3, 2)), (name(), (3, 0)), (name(), (2, 40))]);

        // The default interface is the newest; its list begins as the 3.0 list does and
        // adds the KEM functions (the rest of 3.2 answers CKR_FUNCTION_NOT_SUPPORTED).
        let i32 = r.interface(None, None).unwrap();
        assert_eq!(interface_version(&i32), (3, 2));
        // SAFETY: the 3.2 interface points at the module's CK_FUNCTION_LIST_3_2.
        let list32 = unsafe { &*(i32.pFunctionList as *const CK_FUNCTION_LIST_3_2) };
        assert!(list32.C_EncapsulateKey.is_some() && list32.C_DecapsulateKey.is_some());
        assert!(list32.C_LoginUser.is_some() && list32.C_MessageVerifyFinal.is_some());
        assert_eq!(
            unsafe { (list32.C_AsyncGetID.unwrap())(1, null_mut(), null_mut()) },
            CKR_CRYPTOKI_NOT_INITIALIZED,
            "a 3.2 function the token does not serve still checks the library's state"
        );
        let v32 = CK_VERSION { major: 3, minor: 2 };
        assert_eq!(interface_version(&r.interface(Some("PKCS 11"), Some(v32)).unwrap()), (3, 2));
        let v240 = CK_VERSION { major: 2, minor: 40 };
        assert_eq!(interface_version(&r.interface(Some("PKCS 11"), Some(v240)).unwrap()), (2, 40));
        let v30 = CK_VERSION { major: 3, minor: 0 };
        let i30 = r.interface(Some("PKCS 11"), Some(v30)).unwrap();
        assert_eq!(interface_version(&i30), (3, 0));
        expect_rv(r.interface(Some("Vendor X"), None), RvError::ArgumentsBad, Function::GetInterface);
        let v31 = CK_VERSION { major: 3, minor: 1 };
        expect_rv(r.interface(None, Some(v31)), RvError::ArgumentsBad, Function::GetInterface);

        // The 3.0 list works: initialise through it and call a 3.0 function.
        // SAFETY: the 3.0 interface points at the module's static CK_FUNCTION_LIST_3_0.
        let list = unsafe { &*(i30.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
        assert_eq!(unsafe { (list.C_Initialize.unwrap())(null_mut()) }, CKR_OK);
        let p = load();
        let s = init_token(&p, LABEL);
        let session = p.open_ro_session(s).unwrap();
        assert_eq!(unsafe { (list.C_SessionCancel.unwrap())(session.handle(), CKF_FIND_OBJECTS) }, CKR_OK);
        assert_eq!(unsafe { (list.C_SessionCancel.unwrap())(0xdead, 0) }, CKR_SESSION_HANDLE_INVALID);
    });
}

#[test]
fn module_can_be_unloaded_by_a_thread_that_used_it() {
    scenario!(|_| {
        // A thread loads the module, uses its cryptography, finalises and unloads it, then
        // ends: whatever per-thread state the module left must not outlive its code.
        std::thread::spawn(|| {
            let (p, _, session) = ready();
            session.generate_random_vec(32).unwrap();
            drop(session);
            p.finalize().unwrap();
        })
        .join()
        .unwrap();
    });
}
