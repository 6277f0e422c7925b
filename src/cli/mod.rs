//! What the faces of the command share: finding the keystore and the token, PINs, and
//! sessions run on the caller's behalf.

pub mod audit;
pub mod import;
pub mod input;
pub mod kms;
pub mod output;
pub mod user;

use cryptoki_sys::*;
use kmstoken::config::Config;
use kmstoken::error::Error;
use kmstoken::kms::KmsError;
use kmstoken::library::{Library, TokenInfo};

/// Why a command failed, as it is printed on stderr.
pub enum Failure {
    /// An operation of the AWS API answered with its error: printed as the aws CLI does.
    Aws { operation: &'static str, error: KmsError },
    /// Anything else, said to a person at a terminal.
    Local(String),
}

impl Failure {
    pub fn aws(operation: &'static str, error: KmsError) -> Failure {
        Failure::Aws { operation, error }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The aws CLI's shape, which scripts written for it look for.
            Failure::Aws { operation, error } => write!(
                f,
                "An error occurred ({}) when calling the {operation} operation: {}",
                error.code.name(),
                error.message
            ),
            Failure::Local(m) => f.write_str(m),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Local(describe(&e))
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
        return rpassword::prompt_password(prompt).map_err(|e| Failure::Local(format!("cannot read the PIN: {e}")));
    }
    let what = prompt.trim_end().trim_end_matches(':');
    Err(Failure::Local(format!("no {what} given: use the flag or {env}")))
}

pub fn open() -> Result<Library, Failure> {
    let config = Config::load().map_err(|e| Failure::Local(format!("configuration: {e}")))?;
    Ok(Library::new(config)?)
}

/// The token named by label or serial (or KMSTOKEN_TOKEN), else the only one there is.
pub fn pick(lib: &Library, label: Option<String>, serial: Option<String>) -> Result<TokenInfo, Failure> {
    let label = label.or_else(|| std::env::var("KMSTOKEN_TOKEN").ok());
    lib.choose_token(label.as_deref(), serial.as_deref()).map_err(|e| Failure::Local(e.to_string()))
}

/// Runs `f` in a read/write session on `token` logged in as `user`.
pub fn as_user<T>(
    lib: &Library,
    token: &TokenInfo,
    user: CK_USER_TYPE,
    pin: &str,
    f: impl FnOnce(CK_SESSION_HANDLE) -> Result<T, Error>,
) -> Result<T, Failure> {
    let h = lib.open_session(token.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
    let r = lib.login(h, user, pin.as_bytes()).and_then(|_| f(h));
    let _ = lib.close_session(h);
    Ok(r?)
}
