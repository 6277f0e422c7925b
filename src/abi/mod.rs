//! The C ABI shell: every PKCS#11 entry point, generated with both function lists from one
//! table. Each body checks and converts its arguments (abi::conv), calls the library core,
//! and turns the result into a CK_RV; it runs behind catch_unwind, so a panic becomes
//! CKR_GENERAL_ERROR and a log line, never an abort of the host process.

mod conv;
mod logger;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::library::{Library, Slot};
use crate::message::GcmMessageParams;
use crate::session::{Operation, Step};
use conv::*;
use cryptoki_sys::*;
use parking_lot::RwLock;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

/// The library of this process, with the fork generation that initialised it: a child
/// after fork() sees another generation and must call C_Initialize again.
static LIBRARY: RwLock<Option<(u64, Arc<Library>)>> = RwLock::new(None);

/// Counts the fork()s this process descends from, bumped in each child by a pthread_atfork
/// handler: every entry point checks it, and an atomic load costs what a getpid() system
/// call would cost many times over.
static FORKS: AtomicU64 = AtomicU64::new(0);
static WATCH_FORKS: Once = Once::new();

extern "C" fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

fn generation() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

fn lib() -> Result<Arc<Library>> {
    match &*LIBRARY.read() {
        Some((gen, l)) if *gen == generation() => Ok(l.clone()),
        _ => Err(Error::CryptokiNotInitialized),
    }
}

/// Runs an entry point's body: panics and errors become CK_RV.
fn guard(name: &str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            match &e {
                Error::Storage(_) | Error::General(_) | Error::DeviceMemory => {
                    log::error!("{name}: {e}")
                }
                _ => log::debug!("{name}: {e}"),
            }
            e.rv()
        }
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("{name}: internal panic caught at the C boundary: {what}");
            CKR_GENERAL_ERROR
        }
    }
}

const CRYPTOKI_VERSION: CK_VERSION = CK_VERSION { major: 3, minor: 0 };
const LIB_VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };
const MANUFACTURER: &str = "kmstoken";

fn initialize(args: *mut c_void) -> Result<()> {
    if !args.is_null() {
        let a: &CK_C_INITIALIZE_ARGS = out_ref(args as *mut CK_C_INITIALIZE_ARGS)?;
        if !a.pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let given = [a.CreateMutex.is_some(), a.DestroyMutex.is_some(), a.LockMutex.is_some(), a.UnlockMutex.is_some()];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            return Err(Error::ArgumentsBad);
        }
        // Whether or not the application passes its own mutex functions, the library is
        // safe with its own OS locks, which the specification allows with OS_LOCKING_OK
        // and which work just as well beside the application's primitives.
    }
    WATCH_FORKS.call_once(|| {
        // SAFETY: `forked` only adds to an atomic, which is safe in a child after fork(),
        // and it stays mapped for the life of the process: the module is linked with
        // `-z nodelete`, so dlclose() never unloads it.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        if rc != 0 {
            log::error!("pthread_atfork failed ({rc}): a forked child could use its parent's state");
        }
    });
    let mut state = LIBRARY.write();
    match state.take() {
        Some((gen, l)) if gen == generation() => {
            *state = Some((gen, l));
            return Err(Error::CryptokiAlreadyInitialized);
        }
        // Inherited across fork(): the parent's connections and locks are not ours to
        // close, so the old state is left alone, never dropped.
        Some(inherited) => std::mem::forget(inherited),
        None => {}
    }
    let config = Config::load().map_err(|e| {
        logger::init(&Config::default());
        log::error!("configuration: {e}");
        Error::General(e)
    })?;
    logger::init(&config);
    let l = Library::new(config)?;
    *state = Some((generation(), Arc::new(l)));
    Ok(())
}

fn token_info(slot: CK_SLOT_ID, out: &mut CK_TOKEN_INFO) -> Result<()> {
    let lib = lib()?;
    let (label, serial, flags, counts) = match lib.slot(slot)? {
        Slot::Empty => (String::new(), String::new(), CKF_RNG | CKF_LOGIN_REQUIRED, (0, 0)),
        Slot::Token(t) => {
            let st = t.status()?;
            let mut f = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED;
            if st.user_pin_initialized {
                f |= CKF_USER_PIN_INITIALIZED;
            }
            f |= pin_flags(
                st.user_failed,
                st.max_failed,
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            );
            f |= pin_flags(st.so_failed, st.max_failed, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
            (t.label.clone(), t.serial.clone(), f, lib.session_counts(slot))
        }
    };
    *out = CK_TOKEN_INFO {
        label: padded(&label),
        manufacturerID: padded(MANUFACTURER),
        model: padded("kmstoken"),
        serialNumber: padded(&serial),
        flags,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: counts.0 as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: counts.1 as CK_ULONG,
        ulMaxPinLen: lib.config.pin.max_len as CK_ULONG,
        ulMinPinLen: lib.config.pin.min_len as CK_ULONG,
        ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
        hardwareVersion: LIB_VERSION,
        firmwareVersion: LIB_VERSION,
        utcTime: [b' '; 16],
    };
    Ok(())
}

fn pin_flags(failed: u32, max: u32, low: CK_FLAGS, last: CK_FLAGS, locked: CK_FLAGS) -> CK_FLAGS {
    if failed >= max {
        locked
    } else if failed.saturating_add(1) == max {
        last | low
    } else if failed > 0 {
        low
    } else {
        0
    }
}

fn get_attributes(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, p: *mut CK_ATTRIBUTE, n: CK_ULONG) -> Result<()> {
    let lib = lib()?;
    let template = template_out(p, n)?;
    let types: Vec<CK_ATTRIBUTE_TYPE> = template.iter().map(|a| a.type_).collect();
    let object = lib.object(h, obj, &types)?;
    // Every attribute is processed; the call reports one of the failures.
    let mut rv = Ok(());
    for a in template.iter_mut() {
        if let Err(e) = fill_attribute(a, object.read(a.type_)) {
            let e = if let Error::BufferTooSmall(_) = e { Error::BufferTooSmall(0) } else { e };
            if rv.is_ok() || e != Error::BufferTooSmall(0) {
                rv = Err(e);
            }
        }
    }
    rv
}

/// Runs one step of the operation `op` in progress on session `h`. Any error ends the
/// operation (the base specification, sections 5.8 to 5.13), an error in the caller's
/// arguments included, but CKR_BUFFER_TOO_SMALL (the caller retries with a bigger buffer)
/// and CKR_OPERATION_ACTIVE (a single-part call refused while the operation is
/// multi-part, which goes on).
fn step(h: CK_SESSION_HANDLE, op: Operation, body: impl FnOnce(&Library) -> Result<()>) -> Result<()> {
    let lib = lib()?;
    let r = body(&lib);
    if let Err(e) = &r {
        if !matches!(e, Error::BufferTooSmall(_) | Error::OperationActive) {
            lib.end_operation(h, op);
        }
    }
    r
}

fn cipher(
    h: CK_SESSION_HANDLE,
    enc: bool,
    kind: Step,
    inp: *const u8,
    inlen: CK_ULONG,
    out: *mut u8,
    outlen: *mut CK_ULONG,
) -> Result<()> {
    step(h, if enc { Operation::Encrypt } else { Operation::Decrypt }, |lib| {
        let data = input_beside(inp, inlen, out, outlen)?;
        let buf = output(out, outlen)?;
        emit(outlen, lib.cipher(h, enc, kind, &data, buf))
    })
}

/// C_EncryptMessage / C_DecryptMessage: a whole message; the token's IV and tag go back
/// into the caller's parameter.
#[allow(clippy::too_many_arguments)]
fn message(
    h: CK_SESSION_HANDLE,
    encrypt: bool,
    p: *mut c_void,
    pl: CK_ULONG,
    aad: *const u8,
    aad_len: CK_ULONG,
    data: *const u8,
    data_len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    let lib = lib()?;
    let mut params = gcm_message_params(p, pl, !encrypt)?;
    let aad = input(aad, aad_len)?;
    let data = input_beside(data, data_len, out, out_len)?;
    let query = out.is_null();
    emit(out_len, lib.message(h, encrypt, &mut params, aad, &data, output(out, out_len)?))?;
    if !query {
        write_gcm_message_params(p, pl, &params)?;
    }
    Ok(())
}

fn message_begin(
    h: CK_SESSION_HANDLE,
    encrypt: bool,
    p: *mut c_void,
    pl: CK_ULONG,
    aad: *const u8,
    al: CK_ULONG,
) -> Result<()> {
    let lib = lib()?;
    let mut params = gcm_message_params(p, pl, !encrypt)?;
    lib.message_begin(h, encrypt, &mut params, input(aad, al)?)?;
    write_gcm_message_params(p, pl, &GcmMessageParams { tag: Vec::new(), ..params })
}

/// C_EncryptMessageNext / C_DecryptMessageNext; CKF_END_OF_MESSAGE ends the message.
#[allow(clippy::too_many_arguments)]
fn message_next(
    h: CK_SESSION_HANDLE,
    encrypt: bool,
    p: *mut c_void,
    pl: CK_ULONG,
    data: *const u8,
    data_len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> Result<()> {
    let lib = lib()?;
    let mut params = gcm_message_params(p, pl, false)?;
    let data = input_beside(data, data_len, out, out_len)?;
    let end = flags & CKF_END_OF_MESSAGE != 0;
    let query = out.is_null();
    emit(out_len, lib.message_next(h, encrypt, &mut params, &data, output(out, out_len)?, end))?;
    if encrypt && end && !query {
        write_gcm_message_params(p, pl, &GcmMessageParams { generator: CKG_NO_GENERATE, ..params })?;
    }
    Ok(())
}

/// What the library hands out: copies of the function lists and the interfaces in
/// writable memory made once per process. Some hosts write into them (OpenSC's
/// pkcs11-spy does), which must not crash them as a read-only static would.
struct Tables {
    list: *mut CK_FUNCTION_LIST,
    list_3_0: *mut CK_FUNCTION_LIST_3_0,
    list_3_2: *mut CK_FUNCTION_LIST_3_2,
    name: *mut u8,
    /// PKCS#11 3.2 first (the default), then 3.0 and 2.40.
    interfaces: *mut [CK_INTERFACE; 3],
}
// SAFETY: the tables are made once, never freed, and the library itself only reads them;
// sharing the pointers between threads is sound.
unsafe impl Sync for Tables {}
// SAFETY: as above; the pointers are to leaked, process-lifetime allocations.
unsafe impl Send for Tables {}

static INTERFACE_NAME: &[u8] = b"PKCS 11\0";
static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();

fn tables() -> &'static Tables {
    TABLES.get_or_init(|| {
        let list = Box::leak(Box::new(FUNCTION_LIST)) as *mut CK_FUNCTION_LIST;
        let list_3_0 = Box::leak(Box::new(FUNCTION_LIST_3_0)) as *mut CK_FUNCTION_LIST_3_0;
        let list_3_2 = Box::leak(Box::new(FUNCTION_LIST_3_2)) as *mut CK_FUNCTION_LIST_3_2;
        let name = Box::leak(INTERFACE_NAME.to_vec().into_boxed_slice()).as_mut_ptr();
        let interfaces = Box::leak(Box::new([
            CK_INTERFACE { pInterfaceName: name, pFunctionList: list_3_2 as *mut c_void, flags: 0 },
            CK_INTERFACE { pInterfaceName: name, pFunctionList: list_3_0 as *mut c_void, flags: 0 },
            CK_INTERFACE { pInterfaceName: name, pFunctionList: list as *mut c_void, flags: 0 },
        ])) as *mut [CK_INTERFACE; 3];
        Tables { list, list_3_0, list_3_2, name, interfaces }
    })
}

/// The interfaces offered: their version, their value (made afresh, never read back from
/// memory a host may have written to) and where the library keeps them. The 3.2 list
/// begins as the 3.0 list does, so a client that takes the default as a 3.0 list works;
/// one that asks for 3.0 or 2.40 by version gets that list.
fn interfaces() -> [(CK_VERSION, CK_INTERFACE, *mut CK_INTERFACE); 3] {
    let t = tables();
    let base = t.interfaces as *mut CK_INTERFACE;
    let iface = |list: *mut c_void| CK_INTERFACE { pInterfaceName: t.name, pFunctionList: list, flags: 0 };
    [
        (FUNCTION_LIST_3_2.version, iface(t.list_3_2 as *mut c_void), base),
        (FUNCTION_LIST_3_0.version, iface(t.list_3_0 as *mut c_void), base.wrapping_add(1)),
        (FUNCTION_LIST.version, iface(t.list as *mut c_void), base.wrapping_add(2)),
    ]
}

/// Generates the entry points and the function lists from one table: `v2` holds the
/// functions of the 2.40 list, `v3` those that PKCS#11 3.0 adds, `v32` those of 3.2.
macro_rules! pkcs11_functions {
    (
        v2 { $( fn $n2:ident ( $( $a2:ident : $t2:ty ),* ) $b2:block )* }
        v3 { $( fn $n3:ident ( $( $a3:ident : $t3:ty ),* ) $b3:block )* }
        v32 { $( fn $n32:ident ( $( $a32:ident : $t32:ty ),* ) $b32:block )* }
    ) => {
        $(
            #[no_mangle]
            #[allow(non_snake_case, unused_variables)]
            /// # Safety
            /// Pointers must follow the PKCS#11 calling contract.
            pub unsafe extern "C" fn $n2( $( $a2 : $t2 ),* ) -> CK_RV {
                guard(stringify!($n2), || $b2)
            }
        )*
        $(
            #[no_mangle]
            #[allow(non_snake_case, unused_variables)]
            /// # Safety
            /// Pointers must follow the PKCS#11 calling contract.
            pub unsafe extern "C" fn $n3( $( $a3 : $t3 ),* ) -> CK_RV {
                guard(stringify!($n3), || $b3)
            }
        )*
        $(
            #[no_mangle]
            #[allow(non_snake_case, unused_variables)]
            /// # Safety
            /// Pointers must follow the PKCS#11 calling contract.
            pub unsafe extern "C" fn $n32( $( $a32 : $t32 ),* ) -> CK_RV {
                guard(stringify!($n32), || $b32)
            }
        )*
        pub static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
            version: CK_VERSION { major: 2, minor: 40 },
            $( $n2: Some($n2), )*
        };
        pub static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = CK_FUNCTION_LIST_3_0 {
            version: CRYPTOKI_VERSION,
            $( $n2: Some($n2), )*
            $( $n3: Some($n3), )*
        };
        pub static FUNCTION_LIST_3_2: CK_FUNCTION_LIST_3_2 = CK_FUNCTION_LIST_3_2 {
            version: CK_VERSION { major: 3, minor: 2 },
            $( $n2: Some($n2), )*
            $( $n3: Some($n3), )*
            $( $n32: Some($n32), )*
        };
    };
}

type H = CK_SESSION_HANDLE;
type Ptr = *mut c_void;
type Bytes = *mut CK_BYTE;
type Len = *mut CK_ULONG;
type Mech = *mut CK_MECHANISM;
type Attrs = *mut CK_ATTRIBUTE;
const NOT_SUPPORTED: Result<()> = Err(Error::FunctionNotSupported);

pkcs11_functions! {
v2 {
    fn C_Initialize(args: Ptr) { initialize(args) }
    fn C_Finalize(reserved: Ptr) {
        if !reserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let mut state = LIBRARY.write();
        match state.take() {
            Some((gen, _)) if gen == generation() => Ok(()),
            Some(inherited) => {
                std::mem::forget(inherited);
                Err(Error::CryptokiNotInitialized)
            }
            None => Err(Error::CryptokiNotInitialized),
        }
    }
    fn C_GetInfo(info: *mut CK_INFO) {
        lib()?;
        *out_ref(info)? = CK_INFO {
            cryptokiVersion: CRYPTOKI_VERSION,
            manufacturerID: padded(MANUFACTURER),
            flags: 0,
            libraryDescription: padded("kmstoken: KMS keys over PKCS#11"),
            libraryVersion: LIB_VERSION,
        };
        Ok(())
    }
    fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) {
        *out_ref(list)? = tables().list;
        Ok(())
    }
    fn C_GetSlotList(present: CK_BBOOL, list: *mut CK_SLOT_ID, count: Len) {
        let lib = lib()?;
        // Every slot holds a token (the empty slot an uninitialised one), so `present`
        // changes nothing.
        let ids = lib.slot_list()?;
        let n = out_ref(count)?;
        if list.is_null() {
            *n = ids.len() as CK_ULONG;
            return Ok(());
        }
        if (*n as usize) < ids.len() {
            *n = ids.len() as CK_ULONG;
            return Err(Error::BufferTooSmall(ids.len()));
        }
        for (i, id) in ids.iter().enumerate() {
            *out_ref(list.wrapping_add(i))? = *id;
        }
        *n = ids.len() as CK_ULONG;
        Ok(())
    }
    fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) {
        let lib = lib()?;
        let desc = match lib.slot(slot)? {
            Slot::Token(t) => format!("kmstoken slot {slot} ({})", t.label),
            Slot::Empty => format!("kmstoken slot {slot} (empty)"),
        };
        *out_ref(info)? = CK_SLOT_INFO {
            slotDescription: padded(&desc),
            manufacturerID: padded(MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: LIB_VERSION,
            firmwareVersion: LIB_VERSION,
        };
        Ok(())
    }
    fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) {
        let out = out_ref(info)?;
        token_info(slot, out)
    }
    fn C_GetMechanismList(slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: Len) {
        let lib = lib()?;
        lib.slot(slot)?;
        let mechs = lib.mechanisms();
        let n = out_ref(count)?;
        if list.is_null() {
            *n = mechs.len() as CK_ULONG;
            return Ok(());
        }
        if (*n as usize) < mechs.len() {
            *n = mechs.len() as CK_ULONG;
            return Err(Error::BufferTooSmall(mechs.len()));
        }
        for (i, m) in mechs.iter().enumerate() {
            *out_ref(list.wrapping_add(i))? = *m;
        }
        *n = mechs.len() as CK_ULONG;
        Ok(())
    }
    fn C_GetMechanismInfo(slot: CK_SLOT_ID, ty: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO) {
        let lib = lib()?;
        lib.slot(slot)?;
        let i = lib.mechanism_info(ty)?;
        *out_ref(info)? = CK_MECHANISM_INFO { ulMinKeySize: i.min_key, ulMaxKeySize: i.max_key, flags: i.flags };
        Ok(())
    }
    fn C_InitToken(slot: CK_SLOT_ID, pin: Bytes, pin_len: CK_ULONG, label_p: Bytes) {
        let lib = lib()?;
        let pin = conv::pin(pin, pin_len)?;
        let label = label(label_p)?;
        lib.init_token(slot, pin, &label).map(|_| ())
    }
    fn C_InitPIN(h: H, pin: Bytes, pin_len: CK_ULONG) {
        lib()?.init_pin(h, conv::pin(pin, pin_len)?)
    }
    fn C_SetPIN(h: H, old: Bytes, old_len: CK_ULONG, new: Bytes, new_len: CK_ULONG) {
        lib()?.set_pin(h, conv::pin(old, old_len)?, conv::pin(new, new_len)?)
    }
    fn C_OpenSession(slot: CK_SLOT_ID, flags: CK_FLAGS, app: Ptr, notify: CK_NOTIFY, out: *mut CK_SESSION_HANDLE) {
        let lib = lib()?;
        let out = out_ref(out)?;
        *out = lib.open_session(slot, flags)?;
        Ok(())
    }
    fn C_CloseSession(h: H) { lib()?.close_session(h) }
    fn C_CloseAllSessions(slot: CK_SLOT_ID) { lib()?.close_all_sessions(slot) }
    fn C_GetSessionInfo(h: H, info: *mut CK_SESSION_INFO) {
        let v = lib()?.session_info(h)?;
        *out_ref(info)? = CK_SESSION_INFO {
            slotID: v.slot_id,
            state: v.state,
            flags: CKF_SERIAL_SESSION | if v.rw { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        Ok(())
    }
    fn C_GetOperationState(h: H, state: Bytes, len: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_SetOperationState(h: H, state: Bytes, len: CK_ULONG, enc: CK_OBJECT_HANDLE, auth: CK_OBJECT_HANDLE) {
        lib()?.session(h)?;
        NOT_SUPPORTED
    }
    fn C_Login(h: H, user: CK_USER_TYPE, pin: Bytes, pin_len: CK_ULONG) {
        lib()?.login(h, user, conv::pin(pin, pin_len)?)
    }
    fn C_Logout(h: H) { lib()?.logout(h) }
    fn C_CreateObject(h: H, t: Attrs, n: CK_ULONG, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let template = template(t, n)?;
        let out = out_ref(out)?;
        *out = lib.create_object(h, &template)?;
        Ok(())
    }
    fn C_CopyObject(h: H, obj: CK_OBJECT_HANDLE, t: Attrs, n: CK_ULONG, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let template = template(t, n)?;
        let out = out_ref(out)?;
        *out = lib.copy_object(h, obj, &template)?;
        Ok(())
    }
    fn C_DestroyObject(h: H, obj: CK_OBJECT_HANDLE) { lib()?.destroy_object(h, obj) }
    fn C_GetObjectSize(h: H, obj: CK_OBJECT_HANDLE, size: Len) {
        let lib = lib()?;
        let out = out_ref(size)?;
        *out = lib.object_size(h, obj)? as CK_ULONG;
        Ok(())
    }
    fn C_GetAttributeValue(h: H, obj: CK_OBJECT_HANDLE, t: Attrs, n: CK_ULONG) { get_attributes(h, obj, t, n) }
    fn C_SetAttributeValue(h: H, obj: CK_OBJECT_HANDLE, t: Attrs, n: CK_ULONG) {
        let lib = lib()?;
        lib.set_attributes(h, obj, &template(t, n)?)
    }
    fn C_FindObjectsInit(h: H, t: Attrs, n: CK_ULONG) {
        let lib = lib()?;
        lib.find_init(h, &template(t, n)?)
    }
    fn C_FindObjects(h: H, out: *mut CK_OBJECT_HANDLE, max: CK_ULONG, count: Len) {
        let lib = lib()?;
        let count = out_ref(count)?;
        if out.is_null() && max > 0 {
            return Err(Error::ArgumentsBad);
        }
        let found = lib.find_next(h, max as usize)?;
        for (i, f) in found.iter().enumerate() {
            *out_ref(out.wrapping_add(i))? = *f;
        }
        *count = found.len() as CK_ULONG;
        Ok(())
    }
    fn C_FindObjectsFinal(h: H) { lib()?.find_final(h) }
    fn C_EncryptInit(h: H, m: Mech, key: CK_OBJECT_HANDLE) {
        let lib = lib()?;
        lib.cipher_init(h, &mechanism(m)?, key, true)
    }
    fn C_Encrypt(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { cipher(h, true, Step::Single, d, dl, o, ol) }
    fn C_EncryptUpdate(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { cipher(h, true, Step::Update, d, dl, o, ol) }
    fn C_EncryptFinal(h: H, o: Bytes, ol: Len) { cipher(h, true, Step::Final, std::ptr::null(), 0, o, ol) }
    fn C_DecryptInit(h: H, m: Mech, key: CK_OBJECT_HANDLE) {
        let lib = lib()?;
        lib.cipher_init(h, &mechanism(m)?, key, false)
    }
    fn C_Decrypt(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { cipher(h, false, Step::Single, d, dl, o, ol) }
    fn C_DecryptUpdate(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { cipher(h, false, Step::Update, d, dl, o, ol) }
    fn C_DecryptFinal(h: H, o: Bytes, ol: Len) { cipher(h, false, Step::Final, std::ptr::null(), 0, o, ol) }
    fn C_DigestInit(h: H, m: Mech) {
        let lib = lib()?;
        lib.digest_init(h, &mechanism(m)?)
    }
    fn C_Digest(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) {
        step(h, Operation::Digest, |lib| emit(ol, lib.digest(h, Some(input(d, dl)?), output(o, ol)?)))
    }
    fn C_DigestUpdate(h: H, d: Bytes, dl: CK_ULONG) {
        step(h, Operation::Digest, |lib| lib.digest_update(h, input(d, dl)?))
    }
    fn C_DigestKey(h: H, key: CK_OBJECT_HANDLE) { step(h, Operation::Digest, |lib| lib.digest_key(h, key)) }
    fn C_DigestFinal(h: H, o: Bytes, ol: Len) {
        step(h, Operation::Digest, |lib| emit(ol, lib.digest(h, None, output(o, ol)?)))
    }
    fn C_SignInit(h: H, m: Mech, key: CK_OBJECT_HANDLE) {
        let lib = lib()?;
        lib.sign_init(h, &mechanism(m)?, key)
    }
    fn C_Sign(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) {
        step(h, Operation::Sign, |lib| emit(ol, lib.sign(h, Some(input(d, dl)?), output(o, ol)?)))
    }
    fn C_SignUpdate(h: H, d: Bytes, dl: CK_ULONG) { step(h, Operation::Sign, |lib| lib.sign_update(h, input(d, dl)?)) }
    fn C_SignFinal(h: H, o: Bytes, ol: Len) {
        step(h, Operation::Sign, |lib| emit(ol, lib.sign(h, None, output(o, ol)?)))
    }
    fn C_SignRecoverInit(h: H, m: Mech, key: CK_OBJECT_HANDLE) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_SignRecover(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_VerifyInit(h: H, m: Mech, key: CK_OBJECT_HANDLE) {
        let lib = lib()?;
        lib.verify_init(h, &mechanism(m)?, key)
    }
    fn C_Verify(h: H, d: Bytes, dl: CK_ULONG, s: Bytes, sl: CK_ULONG) {
        step(h, Operation::Verify, |lib| lib.verify(h, Some(input(d, dl)?), input(s, sl)?))
    }
    fn C_VerifyUpdate(h: H, d: Bytes, dl: CK_ULONG) {
        step(h, Operation::Verify, |lib| lib.verify_update(h, input(d, dl)?))
    }
    fn C_VerifyFinal(h: H, s: Bytes, sl: CK_ULONG) {
        step(h, Operation::Verify, |lib| lib.verify(h, None, input(s, sl)?))
    }
    fn C_VerifyRecoverInit(h: H, m: Mech, key: CK_OBJECT_HANDLE) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_VerifyRecover(h: H, s: Bytes, sl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_DigestEncryptUpdate(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_DecryptDigestUpdate(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_SignEncryptUpdate(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_DecryptVerifyUpdate(h: H, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_GenerateKey(h: H, m: Mech, t: Attrs, n: CK_ULONG, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        let template = template(t, n)?;
        let out = out_ref(out)?;
        *out = lib.generate_key(h, &mech, &template)?;
        Ok(())
    }
    fn C_GenerateKeyPair(h: H, m: Mech, pt: Attrs, pn: CK_ULONG, st: Attrs, sn: CK_ULONG, pubk: *mut CK_OBJECT_HANDLE, privk: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        let public = template(pt, pn)?;
        let private = template(st, sn)?;
        let pubk = out_ref(pubk)?;
        let privk = out_ref(privk)?;
        (*pubk, *privk) = lib.generate_key_pair(h, &mech, &public, &private)?;
        Ok(())
    }
    fn C_WrapKey(h: H, m: Mech, wk: CK_OBJECT_HANDLE, k: CK_OBJECT_HANDLE, o: Bytes, ol: Len) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        emit(ol, lib.wrap_key(h, &mech, wk, k, output(o, ol)?))
    }
    fn C_UnwrapKey(h: H, m: Mech, uk: CK_OBJECT_HANDLE, w: Bytes, wl: CK_ULONG, t: Attrs, n: CK_ULONG, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        let template = template(t, n)?;
        let wrapped = input(w, wl)?;
        let out = out_ref(out)?;
        *out = lib.unwrap_key(h, &mech, uk, wrapped, &template)?;
        Ok(())
    }
    fn C_DeriveKey(h: H, m: Mech, base: CK_OBJECT_HANDLE, t: Attrs, n: CK_ULONG, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        let template = template(t, n)?;
        let out = out_ref(out)?;
        let additional = conv::additional_key_outputs(m)?;
        let keys = lib.derive_keys(h, &mech, base, &template)?;
        *out = keys[0];
        for (p, key) in additional.into_iter().zip(&keys[1..]) {
            // SAFETY: `additional_key_outputs` took each phKey from the caller's
            // CK_DERIVED_KEY and refused a NULL one: a writable CK_OBJECT_HANDLE.
            unsafe { std::ptr::write_unaligned(p, *key) };
        }
        Ok(())
    }
    fn C_SeedRandom(h: H, seed: Bytes, len: CK_ULONG) {
        // Accepted and ignored: the OS generator needs no help.
        lib()?.session(h)?;
        input(seed, len).map(|_| ())
    }
    fn C_GenerateRandom(h: H, out: Bytes, len: CK_ULONG) {
        let lib = lib()?;
        if len == 0 {
            return lib.session(h).map(|_| ());
        }
        if out.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let mut n = len;
        let buf = output(out, &mut n)?.ok_or(Error::ArgumentsBad)?;
        lib.generate_random(h, buf)
    }
    fn C_GetFunctionStatus(h: H) { lib()?.session(h)?; Err(Error::FunctionNotParallel) }
    fn C_CancelFunction(h: H) { lib()?.session(h)?; Err(Error::FunctionNotParallel) }
    fn C_WaitForSlotEvent(flags: CK_FLAGS, slot: *mut CK_SLOT_ID, reserved: Ptr) {
        lib()?;
        if flags & CKF_DONT_BLOCK != 0 {
            return Err(Error::NoEvent);
        }
        NOT_SUPPORTED
    }
}
v3 {
    fn C_GetInterfaceList(list: *mut CK_INTERFACE, count: Len) {
        let n = out_ref(count)?;
        let all = interfaces();
        if list.is_null() {
            *n = all.len() as CK_ULONG;
            return Ok(());
        }
        if (*n as usize) < all.len() {
            *n = all.len() as CK_ULONG;
            return Err(Error::BufferTooSmall(all.len()));
        }
        for (i, (_, iface, _)) in all.iter().enumerate() {
            *out_ref(list.wrapping_add(i))? = *iface;
        }
        *n = all.len() as CK_ULONG;
        Ok(())
    }
    fn C_GetInterface(name: *mut CK_UTF8CHAR, version: *mut CK_VERSION, out: *mut *mut CK_INTERFACE, flags: CK_FLAGS) {
        let out = out_ref(out)?;
        if !name.is_null() {
            // SAFETY: a non-NULL name is a NUL-terminated string by the calling contract.
            let n = unsafe { std::ffi::CStr::from_ptr(name as *const std::ffi::c_char) };
            if n.to_bytes_with_nul() != INTERFACE_NAME {
                return Err(Error::ArgumentsBad);
            }
        }
        let want = if version.is_null() { None } else { Some(*out_ref(version)?) };
        let found = interfaces().into_iter().find(|(v, i, _)| {
            i.flags & flags == flags && want.is_none_or(|w| w.major == v.major && w.minor == v.minor)
        });
        match found {
            Some((_, iface, at)) => {
                // Restore what a host may have changed before handing it out again.
                *out_ref(at)? = iface;
                *out = at;
                Ok(())
            }
            None => Err(Error::ArgumentsBad),
        }
    }
    fn C_LoginUser(h: H, user: CK_USER_TYPE, pin: Bytes, pin_len: CK_ULONG, name: Bytes, name_len: CK_ULONG) {
        lib()?.login_user(h, user, conv::pin(pin, pin_len)?, input(name, name_len)?)
    }
    fn C_SessionCancel(h: H, flags: CK_FLAGS) {
        let lib = lib()?;
        let s = lib.session(h)?;
        let mut s = s.lock();
        for (flag, op) in [
            (CKF_ENCRYPT, Operation::Encrypt),
            (CKF_DECRYPT, Operation::Decrypt),
            (CKF_DIGEST, Operation::Digest),
            (CKF_SIGN, Operation::Sign),
            (CKF_VERIFY, Operation::Verify),
            (CKF_FIND_OBJECTS, Operation::Find),
            (CKF_MESSAGE_ENCRYPT, Operation::MessageEncrypt),
            (CKF_MESSAGE_DECRYPT, Operation::MessageDecrypt),
        ] {
            if flags & flag != 0 {
                s.end(op);
            }
        }
        Ok(())
    }
    fn C_MessageEncryptInit(h: H, m: Mech, k: CK_OBJECT_HANDLE) {
        lib()?.message_init(h, &mechanism_type(m)?, k, true)
    }
    fn C_EncryptMessage(h: H, p: Ptr, pl: CK_ULONG, a: Bytes, al: CK_ULONG, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) {
        message(h, true, p, pl, a, al, d, dl, o, ol)
    }
    fn C_EncryptMessageBegin(h: H, p: Ptr, pl: CK_ULONG, a: Bytes, al: CK_ULONG) { message_begin(h, true, p, pl, a, al) }
    fn C_EncryptMessageNext(h: H, p: Ptr, pl: CK_ULONG, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len, f: CK_FLAGS) {
        message_next(h, true, p, pl, d, dl, o, ol, f)
    }
    fn C_MessageEncryptFinal(h: H) { lib()?.message_final(h, true) }
    fn C_MessageDecryptInit(h: H, m: Mech, k: CK_OBJECT_HANDLE) {
        lib()?.message_init(h, &mechanism_type(m)?, k, false)
    }
    fn C_DecryptMessage(h: H, p: Ptr, pl: CK_ULONG, a: Bytes, al: CK_ULONG, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) {
        message(h, false, p, pl, a, al, d, dl, o, ol)
    }
    fn C_DecryptMessageBegin(h: H, p: Ptr, pl: CK_ULONG, a: Bytes, al: CK_ULONG) { message_begin(h, false, p, pl, a, al) }
    fn C_DecryptMessageNext(h: H, p: Ptr, pl: CK_ULONG, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len, f: CK_FLAGS) {
        message_next(h, false, p, pl, d, dl, o, ol, f)
    }
    fn C_MessageDecryptFinal(h: H) { lib()?.message_final(h, false) }
    fn C_MessageSignInit(h: H, m: Mech, k: CK_OBJECT_HANDLE) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_SignMessage(h: H, p: Ptr, pl: CK_ULONG, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_SignMessageBegin(h: H, p: Ptr, pl: CK_ULONG) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_SignMessageNext(h: H, p: Ptr, pl: CK_ULONG, d: Bytes, dl: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_MessageSignFinal(h: H) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_MessageVerifyInit(h: H, m: Mech, k: CK_OBJECT_HANDLE) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_VerifyMessage(h: H, p: Ptr, pl: CK_ULONG, d: Bytes, dl: CK_ULONG, s: Bytes, sl: CK_ULONG) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_VerifyMessageBegin(h: H, p: Ptr, pl: CK_ULONG) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_VerifyMessageNext(h: H, p: Ptr, pl: CK_ULONG, d: Bytes, dl: CK_ULONG, s: Bytes, sl: CK_ULONG) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_MessageVerifyFinal(h: H) { lib()?.session(h)?; NOT_SUPPORTED }
}
v32 {
    fn C_EncapsulateKey(h: H, m: Mech, public: CK_OBJECT_HANDLE, t: Attrs, n: CK_ULONG, ct: Bytes, ct_len: Len, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        let template = template(t, n)?;
        let len = out_ref(ct_len)?;
        let buf = output(ct, len)?;
        let query = buf.is_none();
        let key = if query { None } else { Some(out_ref(out)?) };
        match lib.encapsulate_key(h, &mech, public, &template, buf) {
            Ok((n, handle)) => {
                *len = n as CK_ULONG;
                if let (Some(out), Some(handle)) = (key, handle) {
                    *out = handle;
                }
                Ok(())
            }
            Err(Error::BufferTooSmall(n)) => {
                *len = n as CK_ULONG;
                Err(Error::BufferTooSmall(n))
            }
            Err(e) => Err(e),
        }
    }
    fn C_DecapsulateKey(h: H, m: Mech, private: CK_OBJECT_HANDLE, t: Attrs, n: CK_ULONG, ct: Bytes, ct_len: CK_ULONG, out: *mut CK_OBJECT_HANDLE) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        let template = template(t, n)?;
        let ciphertext = input(ct, ct_len)?;
        let out = out_ref(out)?;
        *out = lib.decapsulate_key(h, &mech, private, &template, ciphertext)?;
        Ok(())
    }
    fn C_VerifySignatureInit(h: H, m: Mech, k: CK_OBJECT_HANDLE, s: Bytes, sl: CK_ULONG) {
        let lib = lib()?;
        let mech = mechanism(m)?;
        lib.verify_signature_init(h, &mech, k, input(s, sl)?)
    }
    fn C_VerifySignature(h: H, d: Bytes, dl: CK_ULONG) { lib()?.verify_signature(h, Some(input(d, dl)?)) }
    fn C_VerifySignatureUpdate(h: H, d: Bytes, dl: CK_ULONG) { lib()?.verify_signature_update(h, input(d, dl)?) }
    fn C_VerifySignatureFinal(h: H) { lib()?.verify_signature(h, None) }
    // The rest of 3.2 is not served: session validation flags, asynchronous calls and
    // authenticated wrapping.
    fn C_GetSessionValidationFlags(h: H, ty: CK_SESSION_VALIDATION_FLAGS_TYPE, flags: *mut CK_FLAGS) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_AsyncComplete(h: H, name: *mut CK_UTF8CHAR, data: *mut CK_ASYNC_DATA) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_AsyncGetID(h: H, name: *mut CK_UTF8CHAR, id: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_AsyncJoin(h: H, name: *mut CK_UTF8CHAR, id: CK_ULONG, d: Bytes, dl: CK_ULONG) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_WrapKeyAuthenticated(h: H, m: Mech, wk: CK_OBJECT_HANDLE, k: CK_OBJECT_HANDLE, a: Bytes, al: CK_ULONG, o: Bytes, ol: Len) { lib()?.session(h)?; NOT_SUPPORTED }
    fn C_UnwrapKeyAuthenticated(h: H, m: Mech, uk: CK_OBJECT_HANDLE, w: Bytes, wl: CK_ULONG, t: Attrs, n: CK_ULONG, a: Bytes, al: CK_ULONG, out: *mut CK_OBJECT_HANDLE) { lib()?.session(h)?; NOT_SUPPORTED }
}
}
