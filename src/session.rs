//! A session: its token, its R/O or R/W mode, and the operations in progress, with the
//! output conventions of the specification (a NULL buffer asks for the length; a short
//! buffer gets CKR_BUFFER_TOO_SMALL and keeps the operation; any other error ends it).

use crate::error::{Error, Result};
use crate::kms::Face;
use crate::mech::{CipherOp, DigestOp, SignOp, VerifyOp};
use crate::message::MessageCipher;
use crate::token::Token;
use cryptoki_sys::*;
use std::sync::Arc;

/// An operation in progress, whether it has gone multi-part (then the single-part call,
/// C_Encrypt, C_Sign, C_Digest..., may not end it), and whether its key still waits for
/// the context-specific login that CKA_ALWAYS_AUTHENTICATE asks before each use.
pub struct Active<T: ?Sized> {
    pub op: Box<T>,
    pub multipart: bool,
    pub needs_login: bool,
}

impl<T: ?Sized> Active<T> {
    pub fn new(op: Box<T>) -> Self {
        Active { op, multipart: false, needs_login: false }
    }

    /// An operation whose key asks for the PIN before each use.
    pub fn with_login(op: Box<T>, needs_login: bool) -> Self {
        Active { op, multipart: false, needs_login }
    }

    /// The operation, once any context-specific login it waits for has been given.
    fn ready(&mut self) -> Result<&mut Self> {
        if self.needs_login {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(self)
    }
}

pub type Cipher = Active<dyn CipherOp>;

/// The kinds of operation a session may have in progress, one of each at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Encrypt,
    Decrypt,
    Digest,
    Sign,
    Verify,
    Find,
    MessageEncrypt,
    MessageDecrypt,
}

pub struct Find {
    pub handles: Vec<u64>,
    pub pos: usize,
}

pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    /// The face that opened it: the `kms` command line holds keys to their one usage.
    pub face: Face,
    pub slot_id: u64,
    pub token: Arc<Token>,
    pub rw: bool,
    pub encrypt: Option<Cipher>,
    pub decrypt: Option<Cipher>,
    pub digest: Option<Active<dyn DigestOp>>,
    pub sign: Option<Active<dyn SignOp>>,
    pub verify: Option<Active<dyn VerifyOp>>,
    /// The signature of a verification begun by C_VerifySignatureInit (PKCS#11 3.2).
    pub verify_signature: Option<Vec<u8>>,
    pub find: Option<Find>,
    pub message_encrypt: Option<MessageCipher>,
    pub message_decrypt: Option<MessageCipher>,
}

impl Session {
    pub fn new(handle: CK_SESSION_HANDLE, token: Arc<Token>, rw: bool, face: Face) -> Session {
        Session {
            handle,
            face,
            slot_id: token.slot_id,
            token,
            rw,
            encrypt: None,
            decrypt: None,
            digest: None,
            sign: None,
            verify: None,
            verify_signature: None,
            find: None,
            message_encrypt: None,
            message_decrypt: None,
        }
    }

    /// Ends the operation of kind `op`, if one is in progress.
    pub fn end(&mut self, op: Operation) {
        match op {
            Operation::Encrypt => self.encrypt = None,
            Operation::Decrypt => self.decrypt = None,
            Operation::Digest => self.digest = None,
            Operation::Sign => self.sign = None,
            Operation::Verify => self.verify = None,
            Operation::Find => self.find = None,
            Operation::MessageEncrypt => self.message_encrypt = None,
            Operation::MessageDecrypt => self.message_decrypt = None,
        }
    }
}

/// Which step of a cipher operation the caller asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// C_Encrypt / C_Decrypt: all input at once, then the end.
    Single,
    Update,
    Final,
}

fn copy_out(out: &mut [u8], data: &[u8]) -> usize {
    out[..data.len()].copy_from_slice(data);
    data.len()
}

/// Runs one step of the cipher operation in `slot`, writing into `out` (None: the caller
/// only asks for the length). Returns the length written or needed.
pub fn cipher_step(slot: &mut Option<Cipher>, step: Step, input: &[u8], out: Option<&mut [u8]>) -> Result<usize> {
    let c = slot.as_mut().ok_or(Error::OperationNotInitialized)?.ready()?;
    if step == Step::Single && c.multipart {
        return Err(Error::OperationActive);
    }
    let bound = match step {
        Step::Single => c.op.one_shot_len(input.len()),
        Step::Update => c.op.update_len(input.len()),
        Step::Final => c.op.finish_len(),
    };
    let run = |op: &mut dyn CipherOp| match step {
        Step::Single => op.one_shot(input),
        Step::Update => op.update(input),
        Step::Final => op.finish(),
    };
    let ends = step != Step::Update;
    let Some(out) = out else { return Ok(bound) };
    if out.len() >= bound {
        return match run(c.op.as_mut()) {
            Ok(v) => {
                let n = copy_out(out, &v);
                if ends {
                    *slot = None;
                } else {
                    c.multipart = true;
                }
                Ok(n)
            }
            Err(e) => {
                *slot = None;
                Err(e)
            }
        };
    }
    // The bound exceeds the buffer, but the exact output may fit: find out on a copy so
    // that a too-small buffer leaves the operation as it was.
    let mut copy = c.op.boxed_clone();
    match run(copy.as_mut()) {
        Ok(v) if v.len() <= out.len() => {
            let n = copy_out(out, &v);
            if ends {
                *slot = None;
            } else {
                c.op = copy;
                c.multipart = true;
            }
            Ok(n)
        }
        Ok(v) => Err(Error::BufferTooSmall(v.len())),
        Err(e) => {
            *slot = None;
            Err(e)
        }
    }
}

/// Runs a fixed-length finishing step (a MAC, a digest): length query, short buffer, or
/// the real thing, which ends the operation whatever its outcome. `single`: the one-call
/// form (C_Sign, C_Digest), refused once the operation has gone multi-part.
pub fn fixed_len_step<T: ?Sized>(
    slot: &mut Option<Active<T>>,
    single: bool,
    len: impl Fn(&T) -> usize,
    out: Option<&mut [u8]>,
    run: impl FnOnce(&mut T) -> Result<Vec<u8>>,
) -> Result<usize> {
    let a = slot.as_mut().ok_or(Error::OperationNotInitialized)?.ready()?;
    if single && a.multipart {
        return Err(Error::OperationActive);
    }
    let need = len(&a.op);
    let Some(out) = out else { return Ok(need) };
    if out.len() < need {
        return Err(Error::BufferTooSmall(need));
    }
    let r = run(&mut a.op);
    *slot = None;
    let v = r?;
    Ok(copy_out(out, &v))
}

/// Feeds data to a multi-part operation; an error ends it.
pub fn update_step<T: ?Sized>(slot: &mut Option<Active<T>>, run: impl FnOnce(&mut T) -> Result<()>) -> Result<()> {
    let a = slot.as_mut().ok_or(Error::OperationNotInitialized)?.ready()?;
    a.multipart = true;
    let r = run(&mut a.op);
    if r.is_err() {
        *slot = None;
    }
    r
}
