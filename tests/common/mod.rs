//! Harness of the tests that load the built module (libkmstoken.so) through the
//! `cryptoki` crate, as a PKCS#11 client would.
//!
//! The module keeps process-wide state (one C_Initialize per process) and reads its
//! configuration at C_Initialize, so every test runs its scenario in a process of its
//! own: the test re-runs this test binary with `--exact <its name>`, in a fresh temporary
//! directory that holds the configuration and the keystore. A scenario may start more
//! processes on the same directory ("peers", see [`Scenario::peer`]), each running the
//! same test function with another role.
//!
//! `raw` calls the module's C functions directly where cryptoki does not reach (exact
//! buffer handling, mechanisms it does not know); `oracle` holds the independent
//! implementations every cryptographic result is checked against.

#![allow(dead_code)]

pub mod oracle;
pub mod raw;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const SO_PIN: &str = "so-pin-1234";
pub const USER_PIN: &str = "user-pin-1234";
pub const LABEL: &str = "test token";

/// Environment of a scenario's process: its directory, its test and its role.
const DIR_VAR: &str = "KMSTOKEN_TEST_DIR";
const NAME_VAR: &str = "KMSTOKEN_TEST_NAME";
const ROLE_VAR: &str = "KMSTOKEN_TEST_ROLE";
/// The role of the process a test starts first.
pub const MAIN: &str = "main";

/// The module under test: `KMSTOKEN_MODULE`, else the one cargo built with this test
/// binary (beside it in `deps/`: `cargo test` does not refresh `target/<profile>/`), else
/// the release build, else the debug one.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KMSTOKEN_MODULE") {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("libkmstoken.so")));
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    beside
        .into_iter()
        .chain(["release", "debug"].iter().map(|profile| target.join(profile).join("libkmstoken.so")))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "libkmstoken.so not found beside the test binary nor under {}/{{release,debug}}: \
                 build it first (cargo build --release) or set KMSTOKEN_MODULE",
                target.display()
            )
        })
}

// ---- scenarios in processes of their own

/// Runs the body in a process of its own (see the module documentation). The optional
/// first argument is TOML added to the test configuration.
#[macro_export]
macro_rules! scenario {
    ($config:expr, $body:expr) => {{
        fn here() {}
        $crate::common::run_scenario(std::any::type_name_of_val(&here), $config, $body)
    }};
    ($body:expr) => {
        $crate::scenario!("", $body)
    };
}

/// The process of a scenario: its directory (configuration, keystore, notes exchanged
/// with peers) and its role.
pub struct Scenario {
    name: String,
    dir: PathBuf,
    role: String,
}

/// The test's name as libtest knows it, from the type name of a function inside it
/// (`crate::path::test::here`).
fn test_name(here: &str) -> String {
    let path = here.strip_suffix("::here").expect("scenario! names a function `here`");
    path.split_once("::").map_or(path, |(_, rest)| rest).to_string()
}

pub fn run_scenario(here: &str, config: &str, body: impl FnOnce(&Scenario)) {
    let name = test_name(here);
    let child = std::env::var(NAME_VAR).ok().filter(|n| *n == name);
    if let (Some(_), Some(dir)) = (child, std::env::var_os(DIR_VAR)) {
        let role = std::env::var(ROLE_VAR).unwrap_or_else(|_| MAIN.to_string());
        let s = Scenario { name, dir: dir.into(), role };
        body(&s);
        std::fs::write(s.done_marker(&s.role), "").expect("scenario marker");
        return;
    }
    let tmp = tempfile::Builder::new().prefix("kmstoken-test-").tempdir().expect("temp dir");
    let s = Scenario { name, dir: tmp.path().to_path_buf(), role: String::new() };
    s.write_config(config);
    std::fs::create_dir(s.dir.join("home")).expect("home dir");
    s.run_role(MAIN);
}

impl Scenario {
    pub fn role(&self) -> &str {
        &self.role
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn keystore(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("kmstoken.toml")
    }

    /// (Re)writes the configuration: a keystore in the scenario's directory, cheap
    /// Argon2, then `extra`.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "keystore = {:?}\n{extra}\n[argon2]\nmemory_kib = 64\niterations = 1\n",
            self.keystore().display().to_string()
        );
        std::fs::write(self.config_path(), text).expect("write configuration");
    }

    fn done_marker(&self, role: &str) -> PathBuf {
        self.dir.join(format!("done-{role}"))
    }

    /// The command that runs `role` (for a caller that runs it its own way).
    pub fn command_for(&self, role: &str) -> Command {
        self.command(role)
    }

    fn command(&self, role: &str) -> Command {
        let home = self.dir.join("home");
        let mut c = Command::new(std::env::current_exe().expect("test binary"));
        c.args(["--exact", &self.name, "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, &self.dir)
            .env(NAME_VAR, &self.name)
            .env(ROLE_VAR, role)
            .env("KMSTOKEN_CONF", self.config_path())
            // Never the user's real keystore or configuration, whatever happens.
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env_remove("KMSTOKEN_LOG")
            .env_remove("SOFTHSM2_CONF")
            .stdin(Stdio::null());
        c
    }

    /// Runs the test function in another process on the same directory with `role`,
    /// and waits for it. Panics unless it ran the body to the end.
    pub fn peer(&self, role: &str) -> Output {
        self.run_role(role)
    }

    fn run_role(&self, role: &str) -> Output {
        let _ = std::fs::remove_file(self.done_marker(role));
        let out = self.command(role).output().expect("start the test binary");
        let done = self.done_marker(role).exists();
        if !out.status.success() || !done {
            panic!(
                "{} (role {role}) failed in its process ({}{}):\n--- stdout\n{}\n--- stderr\n{}",
                self.name,
                out.status,
                if done { "" } else { ", body not finished" },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    /// Leaves a note for another process of the scenario.
    pub fn put(&self, key: &str, value: impl ToString) {
        std::fs::write(self.dir.join(format!("note-{key}")), value.to_string()).expect("write note");
    }

    pub fn get(&self, key: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("note-{key}"))).unwrap_or_else(|e| panic!("note {key}: {e}"))
    }

    pub fn get_u64(&self, key: &str) -> u64 {
        self.get(key).parse().expect("numeric note")
    }

    /// The token database files of the keystore (`token-*.sqlite`).
    pub fn token_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.keystore())
            .expect("keystore")
            .map(|e| e.expect("keystore entry").path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n.starts_with("token-") && n.ends_with(".sqlite")
            })
            .collect();
        v.sort();
        v
    }
}

// ---- the module through cryptoki

pub fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The module, loaded but not initialised.
pub fn load() -> Pkcs11 {
    Pkcs11::new(module_path()).expect("load the module")
}

/// The module, initialised.
pub fn initialized() -> Pkcs11 {
    let p = load();
    p.initialize(init_args()).expect("C_Initialize");
    p
}

/// C_Finalize then C_Initialize, keeping the library loaded.
pub fn reinitialize(p: &Pkcs11) {
    p.clone().finalize().expect("C_Finalize");
    p.initialize(init_args()).expect("C_Initialize again");
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

pub fn slot(id: u64) -> Slot {
    Slot::try_from(id).expect("slot id")
}

/// The ids of the slot list.
pub fn slot_ids(p: &Pkcs11) -> Vec<u64> {
    p.get_all_slots().expect("C_GetSlotList").iter().map(Slot::id).collect()
}

/// The one slot whose token is not initialised.
pub fn empty_slot(p: &Pkcs11) -> Slot {
    let empty: Vec<Slot> = p
        .get_all_slots()
        .expect("C_GetSlotList")
        .into_iter()
        .filter(|s| !p.get_token_info(*s).expect("C_GetTokenInfo").token_initialized())
        .collect();
    assert_eq!(empty.len(), 1, "exactly one empty slot expected");
    empty[0]
}

/// C_InitToken on the empty slot with SO_PIN.
pub fn init_token(p: &Pkcs11, label: &str) -> Slot {
    let s = empty_slot(p);
    p.init_token(s, &pin(SO_PIN), label).expect("C_InitToken");
    s
}

/// The SO sets the user PIN.
pub fn init_user_pin(p: &Pkcs11, s: Slot, user_pin: &str) {
    let session = p.open_rw_session(s).expect("C_OpenSession");
    session.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    session.init_pin(&pin(user_pin)).expect("C_InitPIN");
    session.logout().expect("C_Logout");
}

/// An R/W session logged in as the user.
pub fn user_session(p: &Pkcs11, s: Slot) -> Session {
    let session = p.open_rw_session(s).expect("C_OpenSession");
    session.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    session
}

/// A token with its user PIN set, and a user R/W session on it.
pub fn ready() -> (Pkcs11, Slot, Session) {
    let p = initialized();
    let s = init_token(&p, LABEL);
    init_user_pin(&p, s, USER_PIN);
    let session = user_session(&p, s);
    (p, s, session)
}

/// A user R/W session on the token another process of the scenario made (`ready`): what
/// a second process or a fresh start of the library uses.
pub fn rejoin() -> (Pkcs11, Slot, Session) {
    let p = initialized();
    let s = p.get_slots_with_initialized_token().expect("C_GetSlotList")[0];
    let session = user_session(&p, s);
    (p, s, session)
}

/// Asserts that a cryptoki call failed with exactly `rv` from `function`.
#[track_caller]
pub fn expect_rv<T: std::fmt::Debug>(r: cryptoki::error::Result<T>, rv: RvError, function: Function) {
    match r {
        Err(Error::Pkcs11(got, f)) if got == rv && format!("{f:?}") == format!("{function:?}") => {}
        other => panic!("expected {rv:?} from {function:?}, got {other:?}"),
    }
}

// ---- templates and attributes

/// A secret key object that stays inside (sensitive, unextractable): class, key type and
/// value (a session object unless the caller adds CKA_TOKEN).
pub fn secret_template(key_type: KeyType, value: &[u8]) -> Vec<Attribute> {
    let mut t = key_template(key_type, value);
    t.extend([Attribute::Sensitive(true), Attribute::Extractable(false)]);
    t
}

/// A secret key with `value` and nothing said of its secrecy (the token's defaults).
pub fn key_template(key_type: KeyType, value: &[u8]) -> Vec<Attribute> {
    vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(key_type), Attribute::Value(value.to_vec())]
}

/// An AES key whose value may be read back (not sensitive, extractable).
pub fn readable_template(key_type: KeyType, value: &[u8]) -> Vec<Attribute> {
    let mut t = key_template(key_type, value);
    t.extend([Attribute::Sensitive(false), Attribute::Extractable(true)]);
    t
}

pub fn create(session: &Session, template: &[Attribute]) -> ObjectHandle {
    session.create_object(template).expect("C_CreateObject")
}

/// A session AES key with `value`.
pub fn aes_key(session: &Session, value: &[u8]) -> ObjectHandle {
    create(session, &secret_template(KeyType::AES, value))
}

/// A session generic secret with `value`.
pub fn generic_key(session: &Session, value: &[u8]) -> ObjectHandle {
    create(session, &secret_template(KeyType::GENERIC_SECRET, value))
}

/// A data object (public unless the caller says otherwise).
pub fn data_template(label: &str, value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

/// One attribute read through cryptoki (None when the module does not return it).
pub fn attribute(session: &Session, obj: ObjectHandle, ty: AttributeType) -> Option<Attribute> {
    session.get_attributes(obj, &[ty]).expect("C_GetAttributeValue").into_iter().next()
}

pub fn label_of(session: &Session, obj: ObjectHandle) -> Vec<u8> {
    match attribute(session, obj, AttributeType::Label) {
        Some(Attribute::Label(l)) => l,
        other => panic!("CKA_LABEL: {other:?}"),
    }
}

/// Whether RustCrypto's ML-DSA of set `P` (an implementation independent of the token's)
/// accepts `sig` over `msg`, empty context, by the encoded public key `pk`.
pub fn ml_dsa_verifies<P: ml_dsa::MlDsaParams>(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let pk = ml_dsa::EncodedVerifyingKey::<P>::try_from(pk).expect("a public key of the set's length");
    let Ok(enc) = ml_dsa::EncodedSignature::<P>::try_from(sig) else { return false };
    let Some(sig) = ml_dsa::Signature::<P>::decode(&enc) else { return false };
    ml_dsa::VerifyingKey::<P>::decode(&pk).verify_with_context(msg, &[], &sig)
}

/// Random bytes from the test side (not the module's generator).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use aes_gcm::aead::rand_core::RngCore;
    let mut v = vec![0u8; n];
    aes_gcm::aead::OsRng.fill_bytes(&mut v);
    v
}

/// Handle numbers (for notes between processes).
pub fn handle_of(raw: u64) -> ObjectHandle {
    // SAFETY: the handle comes from the module (another process of the same scenario);
    // a wrong one is reported by the module, which is what the tests check.
    unsafe { ObjectHandle::new_from_raw(raw) }
}

/// Part sizes that fall across block boundaries in every way.
pub const ODD_PARTS: [usize; 7] = [1, 7, 15, 17, 3, 32, 5];

/// `data` cut in parts of `sizes` (repeated as needed); an empty input gives one empty part.
pub fn split<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    for n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*n).min(rest.len()));
        parts.push(head);
        rest = tail;
    }
    if parts.is_empty() {
        parts.push(rest);
    }
    parts
}

/// KMSTOKEN_CLOCK_OFFSET for a clock moved by `secs`. The module reads it only when built
/// with the `test-clock` feature (the README's test command turns it on): a test that moves
/// the clock fails here without it, rather than run on an unmoved clock.
pub fn clock_offset(secs: i64) -> String {
    assert!(
        secs == 0 || cfg!(feature = "test-clock"),
        "this test moves the KMS clock: run `cargo test --release --features test-clock`"
    );
    secs.to_string()
}
