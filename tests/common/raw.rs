//! The module's C functions called directly, for what cryptoki hides or lacks: the exact
//! two-call output convention (NULL buffer, short buffer), C_GetAttributeValue's
//! per-attribute lengths, the function and interface lists, and mechanisms cryptoki has
//! no type for (CTR, KWP, the *_GENERAL MACs).
//!
//! It opens the same shared library that cryptoki loaded, so both drive the one instance
//! of the module in this process (the dynamic loader shares it).

use super::module_path;
use cryptoki::context::Function;
use cryptoki::error::{Result, Rv};
use cryptoki::object::Attribute;
use cryptoki::session::Session;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::{null, null_mut};

pub struct Raw(cryptoki_sys::Pkcs11);

/// Opens the module's symbols.
pub fn raw() -> Raw {
    // SAFETY: loading the module runs no code of it beyond its (empty) constructors.
    Raw(unsafe { cryptoki_sys::Pkcs11::new(module_path()) }.expect("dlopen the module"))
}

pub fn check(rv: CK_RV, f: Function) -> Result<()> {
    Rv::from(rv).into_result(f)
}

/// A mechanism parameter, kept in Rust form; the C structure is built for each call.
#[derive(Clone, Debug)]
pub enum Param {
    None,
    Bytes(Vec<u8>),
    Ulong(CK_ULONG),
    Gcm { iv: Vec<u8>, aad: Vec<u8>, tag_bits: CK_ULONG },
    Ctr { counter_bits: CK_ULONG, cb: [u8; 16] },
}

#[derive(Clone, Debug)]
pub struct Mech {
    pub ty: CK_MECHANISM_TYPE,
    pub param: Param,
}

impl Mech {
    pub fn new(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech { ty, param: Param::None }
    }
    pub fn bytes(ty: CK_MECHANISM_TYPE, b: &[u8]) -> Mech {
        Mech { ty, param: Param::Bytes(b.to_vec()) }
    }
    pub fn ulong(ty: CK_MECHANISM_TYPE, n: CK_ULONG) -> Mech {
        Mech { ty, param: Param::Ulong(n) }
    }
    pub fn gcm(iv: &[u8], aad: &[u8], tag_bits: CK_ULONG) -> Mech {
        Mech { ty: CKM_AES_GCM, param: Param::Gcm { iv: iv.to_vec(), aad: aad.to_vec(), tag_bits } }
    }
    pub fn ctr(counter_bits: CK_ULONG, cb: [u8; 16]) -> Mech {
        Mech { ty: CKM_AES_CTR, param: Param::Ctr { counter_bits, cb } }
    }

    /// Calls `f` with the CK_MECHANISM (and its parameter structure) on the stack.
    pub fn with<R>(&self, f: impl FnOnce(*mut CK_MECHANISM) -> R) -> R {
        fn run<T, R>(ty: CK_MECHANISM_TYPE, p: Option<&T>, len: usize, f: impl FnOnce(*mut CK_MECHANISM) -> R) -> R {
            let mut m = CK_MECHANISM {
                mechanism: ty,
                pParameter: p.map_or(null_mut(), |p| p as *const T as *mut c_void),
                ulParameterLen: len as CK_ULONG,
            };
            f(&mut m)
        }
        match &self.param {
            Param::None => run::<u8, R>(self.ty, None, 0, f),
            Param::Bytes(b) => run(self.ty, b.first(), b.len(), f),
            Param::Ulong(n) => run(self.ty, Some(n), std::mem::size_of::<CK_ULONG>(), f),
            Param::Gcm { iv, aad, tag_bits } => {
                let g = CK_GCM_PARAMS {
                    pIv: iv.as_ptr() as *mut u8,
                    ulIvLen: iv.len() as CK_ULONG,
                    ulIvBits: (iv.len() * 8) as CK_ULONG,
                    pAAD: aad.as_ptr() as *mut u8,
                    ulAADLen: aad.len() as CK_ULONG,
                    ulTagBits: *tag_bits,
                };
                run(self.ty, Some(&g), std::mem::size_of::<CK_GCM_PARAMS>(), f)
            }
            Param::Ctr { counter_bits, cb } => {
                let c = CK_AES_CTR_PARAMS { ulCounterBits: *counter_bits, cb: *cb };
                run(self.ty, Some(&c), std::mem::size_of::<CK_AES_CTR_PARAMS>(), f)
            }
        }
    }
}

/// One call of a function that writes its output by the two-call convention.
#[derive(Debug)]
pub struct Out {
    pub rv: Result<()>,
    /// The length the module stored (written, or needed).
    pub len: usize,
    /// The bytes written (up to `len` on success).
    pub data: Vec<u8>,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Vec<u8> {
        self.rv.expect("call failed");
        self.data
    }
}

/// Calls `f` with a buffer of `cap` bytes, or NULL (a length query) when `cap` is None.
fn out_call(f: Function, cap: Option<usize>, call: impl FnOnce(*mut u8, *mut CK_ULONG) -> CK_RV) -> Out {
    let mut buf = vec![0u8; cap.unwrap_or(0)];
    let mut len = cap.unwrap_or(0) as CK_ULONG;
    let p = if cap.is_some() { buf.as_mut_ptr() } else { null_mut() };
    let rv = check(call(p, &mut len), f);
    if rv.is_ok() && cap.is_some() {
        buf.truncate(len as usize);
    }
    Out { rv, len: len as usize, data: buf }
}

/// Both calls of the convention: the length, then the output.
pub fn two_calls(call: impl Fn(Option<usize>) -> Out) -> Result<Vec<u8>> {
    let q = call(None);
    q.rv?;
    let out = call(Some(q.len));
    out.rv.map(|_| out.data)
}

/// The operations with an Init function and a key.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
}

/// An attribute for C_GetAttributeValue: its type and the buffer offered (None: NULL,
/// a length query).
pub struct AttrQuery {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub cap: Option<usize>,
}

/// What C_GetAttributeValue returned for one attribute.
#[derive(Debug)]
pub struct AttrResult {
    pub len: CK_ULONG,
    pub value: Vec<u8>,
}

pub fn c_template(template: &[Attribute]) -> Vec<CK_ATTRIBUTE> {
    template.iter().map(CK_ATTRIBUTE::from).collect()
}

impl Raw {
    pub fn lib(&self) -> &cryptoki_sys::Pkcs11 {
        &self.0
    }

    // ---- sessions

    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        let mut h = 0;
        check(unsafe { self.0.C_OpenSession(slot, flags, null_mut(), None, &mut h) }, Function::OpenSession)?;
        Ok(h)
    }

    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        let mut info = CK_SESSION_INFO::default();
        check(unsafe { self.0.C_GetSessionInfo(h, &mut info) }, Function::GetSessionInfo)?;
        Ok(info)
    }

    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        check(unsafe { self.0.C_CloseSession(h) }, Function::CloseSession)
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        check(unsafe { self.0.C_CloseAllSessions(slot) }, Function::CloseAllSessions)
    }

    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> Result<()> {
        let (p, n) = (pin.as_ptr() as *mut u8, pin.len() as CK_ULONG);
        check(unsafe { self.0.C_Login(h, user, p, n) }, Function::Login)
    }

    // ---- objects

    pub fn create_object(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE> {
        let mut t = c_template(template);
        let mut obj = 0;
        let rv = unsafe { self.0.C_CreateObject(h, t.as_mut_ptr(), t.len() as CK_ULONG, &mut obj) };
        check(rv, Function::CreateObject)?;
        Ok(obj)
    }

    /// C_GetAttributeValue with one buffer (or NULL) per attribute.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        q: &[AttrQuery],
    ) -> (Result<()>, Vec<AttrResult>) {
        let mut bufs: Vec<Vec<u8>> = q.iter().map(|a| vec![0u8; a.cap.unwrap_or(0)]).collect();
        let mut t: Vec<CK_ATTRIBUTE> = q
            .iter()
            .zip(bufs.iter_mut())
            .map(|(a, b)| CK_ATTRIBUTE {
                type_: a.ty,
                pValue: if a.cap.is_some() { b.as_mut_ptr() as *mut c_void } else { null_mut() },
                ulValueLen: a.cap.unwrap_or(0) as CK_ULONG,
            })
            .collect();
        let rv = unsafe { self.0.C_GetAttributeValue(h, obj, t.as_mut_ptr(), t.len() as CK_ULONG) };
        let results = t
            .iter()
            .zip(bufs)
            .map(|(a, mut b)| {
                if a.ulValueLen != CK_UNAVAILABLE_INFORMATION && (a.ulValueLen as usize) <= b.len() {
                    b.truncate(a.ulValueLen as usize);
                }
                AttrResult { len: a.ulValueLen, value: b }
            })
            .collect();
        (check(rv, Function::GetAttributeValue), results)
    }

    /// One attribute's value, by a length query then a read.
    pub fn attr(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<Vec<u8>> {
        let (rv, r) = self.get_attributes(h, obj, &[AttrQuery { ty, cap: None }]);
        rv?;
        let (rv, mut r) = self.get_attributes(h, obj, &[AttrQuery { ty, cap: Some(r[0].len as usize) }]);
        rv?;
        Ok(r.remove(0).value)
    }

    pub fn attr_ulong(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
        let v = self.attr(h, obj, ty).expect("read a CK_ULONG attribute");
        CK_ULONG::from_ne_bytes(v.as_slice().try_into().expect("CK_ULONG size"))
    }

    pub fn attr_bool(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
        match self.attr(h, obj, ty).expect("read a CK_BBOOL attribute").as_slice() {
            [0] => false,
            [1] => true,
            other => panic!("CK_BBOOL attribute {ty:#x} = {other:?}"),
        }
    }

    pub fn object_size(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<CK_ULONG> {
        let mut n = 0;
        check(unsafe { self.0.C_GetObjectSize(h, obj, &mut n) }, Function::GetObjectSize)?;
        Ok(n)
    }

    pub fn find_init(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
        let mut t = c_template(template);
        check(unsafe { self.0.C_FindObjectsInit(h, t.as_mut_ptr(), t.len() as CK_ULONG) }, Function::FindObjectsInit)
    }

    pub fn find(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut out = vec![0; max];
        let mut n = 0;
        let rv = unsafe { self.0.C_FindObjects(h, out.as_mut_ptr(), max as CK_ULONG, &mut n) };
        check(rv, Function::FindObjects)?;
        out.truncate(n as usize);
        Ok(out)
    }

    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        check(unsafe { self.0.C_FindObjectsFinal(h) }, Function::FindObjectsFinal)
    }

    // ---- cryptographic operations

    pub fn init(&self, op: Op, h: CK_SESSION_HANDLE, m: &Mech, key: CK_OBJECT_HANDLE) -> Result<()> {
        let (rv, f) = m.with(|m| unsafe {
            match op {
                Op::Encrypt => (self.0.C_EncryptInit(h, m, key), Function::EncryptInit),
                Op::Decrypt => (self.0.C_DecryptInit(h, m, key), Function::DecryptInit),
                Op::Sign => (self.0.C_SignInit(h, m, key), Function::SignInit),
                Op::Verify => (self.0.C_VerifyInit(h, m, key), Function::VerifyInit),
            }
        });
        check(rv, f)
    }

    pub fn digest_init(&self, h: CK_SESSION_HANDLE, m: &Mech) -> Result<()> {
        check(m.with(|m| unsafe { self.0.C_DigestInit(h, m) }), Function::DigestInit)
    }

    /// C_Encrypt (`encrypt`) or C_Decrypt.
    pub fn crypt(&self, encrypt: bool, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Out {
        let (d, n) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
        if encrypt {
            out_call(Function::Encrypt, cap, |o, l| unsafe { self.0.C_Encrypt(h, d, n, o, l) })
        } else {
            out_call(Function::Decrypt, cap, |o, l| unsafe { self.0.C_Decrypt(h, d, n, o, l) })
        }
    }

    /// C_EncryptUpdate or C_DecryptUpdate.
    pub fn crypt_update(&self, encrypt: bool, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Out {
        let (d, n) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
        if encrypt {
            out_call(Function::EncryptUpdate, cap, |o, l| unsafe { self.0.C_EncryptUpdate(h, d, n, o, l) })
        } else {
            out_call(Function::DecryptUpdate, cap, |o, l| unsafe { self.0.C_DecryptUpdate(h, d, n, o, l) })
        }
    }

    /// C_EncryptFinal or C_DecryptFinal.
    pub fn crypt_final(&self, encrypt: bool, h: CK_SESSION_HANDLE, cap: Option<usize>) -> Out {
        if encrypt {
            out_call(Function::EncryptFinal, cap, |o, l| unsafe { self.0.C_EncryptFinal(h, o, l) })
        } else {
            out_call(Function::DecryptFinal, cap, |o, l| unsafe { self.0.C_DecryptFinal(h, o, l) })
        }
    }

    /// A whole single-part operation: init, length query, call.
    pub fn one_shot(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        m: &Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        self.init(if encrypt { Op::Encrypt } else { Op::Decrypt }, h, m, key)?;
        two_calls(|cap| self.crypt(encrypt, h, data, cap))
    }

    /// A whole multi-part operation: init, then each part and the final by both calls.
    pub fn in_parts(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        m: &Mech,
        key: CK_OBJECT_HANDLE,
        parts: &[&[u8]],
    ) -> Result<Vec<u8>> {
        self.init(if encrypt { Op::Encrypt } else { Op::Decrypt }, h, m, key)?;
        let mut out = Vec::new();
        for part in parts {
            out.extend(two_calls(|cap| self.crypt_update(encrypt, h, part, cap))?);
        }
        out.extend(two_calls(|cap| self.crypt_final(encrypt, h, cap))?);
        Ok(out)
    }

    pub fn sign(&self, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Out {
        let (d, n) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
        out_call(Function::Sign, cap, |o, l| unsafe { self.0.C_Sign(h, d, n, o, l) })
    }

    pub fn sign_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let (d, n) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
        check(unsafe { self.0.C_SignUpdate(h, d, n) }, Function::SignUpdate)
    }

    pub fn sign_final(&self, h: CK_SESSION_HANDLE, cap: Option<usize>) -> Out {
        out_call(Function::SignFinal, cap, |o, l| unsafe { self.0.C_SignFinal(h, o, l) })
    }

    /// SignInit then both calls of C_Sign.
    pub fn mac(&self, h: CK_SESSION_HANDLE, m: &Mech, key: CK_OBJECT_HANDLE, data: &[u8]) -> Result<Vec<u8>> {
        self.init(Op::Sign, h, m, key)?;
        two_calls(|cap| self.sign(h, data, cap))
    }

    pub fn verify(&self, h: CK_SESSION_HANDLE, data: &[u8], sig: &[u8]) -> Result<()> {
        let (d, n) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
        let (s, sn) = (sig.as_ptr() as *mut u8, sig.len() as CK_ULONG);
        let rv = unsafe { self.0.C_Verify(h, d, n, s, sn) };
        check(rv, Function::Verify)
    }

    /// VerifyInit then C_Verify.
    pub fn check_mac(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
        sig: &[u8],
    ) -> Result<()> {
        self.init(Op::Verify, h, m, key)?;
        self.verify(h, data, sig)
    }

    pub fn digest(&self, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Out {
        let (d, n) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
        out_call(Function::Digest, cap, |o, l| unsafe { self.0.C_Digest(h, d, n, o, l) })
    }

    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mech,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        cap: Option<usize>,
    ) -> Out {
        m.with(|m| out_call(Function::WrapKey, cap, |o, l| unsafe { self.0.C_WrapKey(h, m, wrapping, key, o, l) }))
    }

    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mech,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let (w, wn) = (wrapped.as_ptr() as *mut u8, wrapped.len() as CK_ULONG);
        let mut t = c_template(template);
        let mut obj = 0;
        let rv = m.with(|m| unsafe {
            self.0.C_UnwrapKey(h, m, unwrapping, w, wn, t.as_mut_ptr(), t.len() as CK_ULONG, &mut obj)
        });
        check(rv, Function::UnwrapKey)?;
        Ok(obj)
    }

    // ---- slots, mechanisms, function lists

    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        let mut n = 0;
        check(unsafe { self.0.C_GetMechanismList(slot, null_mut(), &mut n) }, Function::GetMechanismList)?;
        let mut v = vec![0; n as usize];
        check(unsafe { self.0.C_GetMechanismList(slot, v.as_mut_ptr(), &mut n) }, Function::GetMechanismList)?;
        v.truncate(n as usize);
        Ok(v)
    }

    pub fn mechanism_info(&self, slot: CK_SLOT_ID, ty: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
        let mut info = CK_MECHANISM_INFO::default();
        check(unsafe { self.0.C_GetMechanismInfo(slot, ty, &mut info) }, Function::GetMechanismInfo)?;
        Ok(info)
    }

    pub fn get_function_list(&self) -> Result<*mut CK_FUNCTION_LIST> {
        let mut list = null_mut();
        check(unsafe { self.0.C_GetFunctionList(&mut list) }, Function::GetFunctionList)?;
        Ok(list)
    }

    /// C_GetInterfaceList with room for `cap` interfaces (None: length query).
    pub fn interface_list(&self, cap: Option<usize>) -> (Result<()>, CK_ULONG, Vec<CK_INTERFACE>) {
        let empty = CK_INTERFACE { pInterfaceName: null_mut(), pFunctionList: null_mut(), flags: 0 };
        let mut v = vec![empty; cap.unwrap_or(0)];
        let mut n = cap.unwrap_or(0) as CK_ULONG;
        let p = if cap.is_some() { v.as_mut_ptr() } else { null_mut() };
        let rv = check(unsafe { self.0.C_GetInterfaceList(p, &mut n) }, Function::GetInterfaceList);
        if rv.is_ok() {
            v.truncate(n as usize);
        }
        (rv, n, v)
    }

    /// C_GetInterface by name (None: NULL) and version (None: NULL).
    pub fn interface(&self, name: Option<&str>, version: Option<CK_VERSION>) -> Result<CK_INTERFACE> {
        let name = name.map(|n| std::ffi::CString::new(n).expect("interface name"));
        let mut version = version;
        let mut out: *mut CK_INTERFACE = null_mut();
        let rv = unsafe {
            self.0.C_GetInterface(
                name.as_ref().map_or(null(), |n| n.as_ptr()) as *mut u8,
                version.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION),
                &mut out,
                0,
            )
        };
        check(rv, Function::GetInterface)?;
        assert!(!out.is_null(), "C_GetInterface gave CKR_OK and no interface");
        // SAFETY: the module returned a pointer to one of its static interfaces.
        Ok(unsafe { *out })
    }
}

/// The raw handle of a cryptoki session.
pub fn sh(session: &Session) -> CK_SESSION_HANDLE {
    session.handle()
}

/// The version stored at the start of a function list (every list begins with it).
pub fn list_version(list: *const c_void) -> CK_VERSION {
    assert!(!list.is_null(), "NULL function list");
    // SAFETY: every CK_FUNCTION_LIST* structure begins with its CK_VERSION.
    unsafe { *(list as *const CK_VERSION) }
}

/// C_LoginUser(CKU_USER, pin, name) through the module's C function (cryptoki 0.12 has no
/// call for it).
pub fn login_user(session: &Session, name: &str, pin: &str) -> Result<()> {
    let r = raw();
    // SAFETY: the PIN and name buffers outlive the call, which only reads their lengths.
    let rv = unsafe {
        r.lib().C_LoginUser(
            session.handle(),
            CKU_USER,
            pin.as_ptr() as *mut u8,
            pin.len() as CK_ULONG,
            name.as_ptr() as *mut u8,
            name.len() as CK_ULONG,
        )
    };
    check(rv, Function::LoginUser)
}
