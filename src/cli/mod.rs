//! What the faces of the command share: finding the keystore and the token, PINs, and
//! sessions run on the caller's behalf.

pub mod audit;
pub mod byok;
pub mod data_key_pair;
pub mod import;
pub mod input;
pub mod kms;
pub mod output;
pub mod policy;
pub mod sign;
pub mod user;

use cryptoki_sys::*;
use kmstoken::config::Config;
use kmstoken::error::Error;
use kmstoken::library::Library;
use kmstoken::token::Token;
use std::sync::Arc;

/// A failure, printed on stderr.
pub struct Failure(pub String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(describe(&e))
    }
}

/// What an error means to a person at a terminal.
pub fn describe(e: &Error) -> String {
    match e {
        Error::PinIncorrect => "the PIN is incorrect".into(),
        Error::PinLocked => "the PIN is locked after too many failed attempts".into(),
        Error::PinLenRange => "the PIN length is outside the configured bounds".into(),
        Error::UserPinNotInitialized => "the user PIN has not been set (kmstoken init-pin)".into(),
        Error::UserTypeInvalid => "no such principal: use user, so or a named user (kmstoken user list)".into(),
        Error::SessionExists => "the token is in use by open sessions".into(),
        Error::SlotIdInvalid => "no such slot".into(),
        Error::Storage(m) => format!("keystore: {m}"),
        other => format!("{other} ({:#x})", other.rv()),
    }
}

pub fn secret(flag: Option<String>, env: &str, prompt: &str) -> Result<String, Failure> {
    if let Some(v) = flag.or_else(|| std::env::var(env).ok()) {
        return Ok(v);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password(prompt).map_err(|e| Failure(format!("cannot read the PIN: {e}")));
    }
    let what = prompt.trim_end().trim_end_matches(':');
    Err(Failure(format!("no {what} given: use the flag or {env}")))
}

pub fn open() -> Result<Library, Failure> {
    let config = Config::load().map_err(|e| Failure(format!("configuration: {e}")))?;
    Ok(Library::new(config)?)
}

/// The token named by label or serial (or KMSTOKEN_TOKEN), else the only one there is.
pub fn pick(lib: &Library, label: Option<String>, serial: Option<String>) -> Result<Arc<Token>, Failure> {
    let label = label.or_else(|| std::env::var("KMSTOKEN_TOKEN").ok());
    let tokens = lib.tokens();
    let found: Vec<_> = tokens
        .iter()
        .filter(|t| label.as_ref().is_none_or(|l| &t.label == l) && serial.as_ref().is_none_or(|s| &t.serial == s))
        .cloned()
        .collect();
    match (found.len(), &label, &serial) {
        (1, _, _) => Ok(found[0].clone()),
        (0, None, None) => Err(Failure("there is no initialised token (kmstoken init-token)".into())),
        (0, _, _) => Err(Failure("no token has that label or serial".into())),
        (_, None, None) => Err(Failure("several tokens exist: choose one with --token LABEL".into())),
        _ => Err(Failure("several tokens have that label: choose one with --serial".into())),
    }
}

/// Runs `f` in a read/write session on `token` logged in as `user`.
pub fn as_user<T>(
    lib: &Library,
    token: &Token,
    user: CK_USER_TYPE,
    pin: &str,
    f: impl FnOnce(CK_SESSION_HANDLE) -> Result<T, Error>,
) -> Result<T, Failure> {
    let h = lib.open_session(token.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
    let r = lib.login(h, user, pin.as_bytes()).and_then(|_| f(h));
    let _ = lib.close_session(h);
    Ok(r?)
}
