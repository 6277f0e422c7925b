//! A session: its token, its R/O or R/W mode, and the operations in progress, with the
//! output conventions of the specification (a NULL buffer asks for the length; a short
//! buffer gets CKR_BUFFER_TOO_SMALL and keeps the operation; any other error ends it).

use crate::error::{Error, Result};
use crate::mech::{CipherOp, DigestOp, SignOp, VerifyOp};
use crate::token::Token;
use cryptoki_sys::*;
use std::sync::Arc;

/// A cipher operation and whether it has gone multi-part (C_Encrypt may not end it then).
pub struct Cipher {
    pub op: Box<dyn CipherOp>,
    pub multipart: bool,
}

pub struct Find {
    pub handles: Vec<u64>,
    pub pos: usize,
}

pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub slot_id: u64,
    pub token: Arc<Token>,
    pub rw: bool,
    pub encrypt: Option<Cipher>,
    pub decrypt: Option<Cipher>,
    pub digest: Option<Box<dyn DigestOp>>,
    pub sign: Option<Box<dyn SignOp>>,
    pub verify: Option<Box<dyn VerifyOp>>,
    pub find: Option<Find>,
}

impl Session {
    pub fn new(handle: CK_SESSION_HANDLE, token: Arc<Token>, rw: bool) -> Session {
        Session {
            handle,
            slot_id: token.slot_id,
            token,
            rw,
            encrypt: None,
            decrypt: None,
            digest: None,
            sign: None,
            verify: None,
            find: None,
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
    let c = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
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
/// the real thing, which ends the operation whatever its outcome.
pub fn fixed_len_step<T: ?Sized>(
    slot: &mut Option<Box<T>>,
    len: impl Fn(&T) -> usize,
    out: Option<&mut [u8]>,
    run: impl FnOnce(&mut T) -> Result<Vec<u8>>,
) -> Result<usize> {
    let op = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
    let need = len(op);
    let Some(out) = out else { return Ok(need) };
    if out.len() < need {
        return Err(Error::BufferTooSmall(need));
    }
    let r = run(op);
    *slot = None;
    let v = r?;
    Ok(copy_out(out, &v))
}

/// Feeds data to a multi-part operation; an error ends it.
pub fn update_step<T: ?Sized>(slot: &mut Option<Box<T>>, run: impl FnOnce(&mut T) -> Result<()>) -> Result<()> {
    let op = slot.as_mut().ok_or(Error::OperationNotInitialized)?;
    let r = run(op);
    if r.is_err() {
        *slot = None;
    }
    r
}
