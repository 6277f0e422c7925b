//! Helpers of the KMS tests (`kms_*.rs`), which include this file as their module `kms`
//! (`#[path = "kms_common.rs"] mod kms;`); built alone it holds no tests.
//!
//! - the vendor attributes of include/kmstoken.h, read and written through cryptoki;
//! - token keys made the ways a PKCS#11 client makes them;
//! - the `kmstoken` command, with its aws-style errors and the clock offset the tests
//!   travel in time with;
//! - the audit log of a keystore, read as JSON records.

#![allow(dead_code)]

use cryptoki::context::{Function, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---- vendor attributes (the values of include/kmstoken.h, written out so that a change
// of the header is a change the tests see)

pub const KEY_ID: u64 = 0xCB4D_0001;
pub const KEY_STATE: u64 = 0xCB4D_0002;
pub const KEY_VERSION: u64 = 0xCB4D_0003;
pub const KEY_SPEC: u64 = 0xCB4D_0004;
pub const KEY_USAGE: u64 = 0xCB4D_0005;
pub const ORIGIN: u64 = 0xCB4D_0006;
pub const CREATION_DATE: u64 = 0xCB4D_0007;
pub const DESCRIPTION: u64 = 0xCB4D_0008;
pub const DELETION_DATE: u64 = 0xCB4D_0009;
pub const PENDING_WINDOW_DAYS: u64 = 0xCB4D_000A;
pub const ROTATION_ENABLED: u64 = 0xCB4D_000B;
pub const ROTATION_PERIOD_DAYS: u64 = 0xCB4D_000C;
pub const NEXT_ROTATION_DATE: u64 = 0xCB4D_000D;
pub const ON_DEMAND_ROTATIONS: u64 = 0xCB4D_000E;
pub const ARN: u64 = 0xCB4D_000F;
pub const CURRENT: u64 = 0xCB4D_0010;

pub const ENABLED: u64 = 1;
pub const DISABLED: u64 = 2;
pub const PENDING_DELETION: u64 = 3;

/// A vendor attribute with its value, for templates.
pub fn vendor(ty: u64, value: Vec<u8>) -> Attribute {
    Attribute::VendorDefined((AttributeType::VendorDefined(ty), value))
}

pub fn vendor_ulong(ty: u64, v: u64) -> Attribute {
    vendor(ty, v.to_ne_bytes().to_vec())
}

/// A vendor attribute of `obj` (None when the module does not return it).
pub fn read(session: &Session, obj: ObjectHandle, ty: u64) -> Option<Vec<u8>> {
    let got = session.get_attributes(obj, &[AttributeType::VendorDefined(ty)]).expect("C_GetAttributeValue");
    match got.into_iter().next() {
        Some(Attribute::VendorDefined((_, v))) => Some(v),
        None => None,
        other => panic!("attribute {ty:#x} came back as {other:?}"),
    }
}

pub fn read_text(session: &Session, obj: ObjectHandle, ty: u64) -> String {
    let v = read(session, obj, ty).unwrap_or_else(|| panic!("attribute {ty:#x} missing"));
    String::from_utf8(v).expect("UTF-8 attribute")
}

pub fn read_ulong(session: &Session, obj: ObjectHandle, ty: u64) -> u64 {
    let v = read(session, obj, ty).unwrap_or_else(|| panic!("attribute {ty:#x} missing"));
    u64::from_ne_bytes(v.as_slice().try_into().expect("CK_ULONG size"))
}

pub fn read_bool(session: &Session, obj: ObjectHandle, ty: u64) -> bool {
    match read(session, obj, ty).as_deref() {
        Some([0]) => false,
        Some([1]) => true,
        other => panic!("CK_BBOOL attribute {ty:#x} = {other:?}"),
    }
}

pub fn key_id_of(session: &Session, obj: ObjectHandle) -> String {
    read_text(session, obj, KEY_ID)
}

pub fn state_of(session: &Session, obj: ObjectHandle) -> u64 {
    read_ulong(session, obj, KEY_STATE)
}

pub fn version_of(session: &Session, obj: ObjectHandle) -> u64 {
    read_ulong(session, obj, KEY_VERSION)
}

/// A standard attribute of `obj`, as cryptoki returns it.
pub fn standard(session: &Session, obj: ObjectHandle, ty: AttributeType) -> Attribute {
    session
        .get_attributes(obj, &[ty])
        .expect("C_GetAttributeValue")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{ty:?} missing"))
}

pub fn id_of(session: &Session, obj: ObjectHandle) -> Vec<u8> {
    match standard(session, obj, AttributeType::Id) {
        Attribute::Id(v) => v,
        other => panic!("CKA_ID: {other:?}"),
    }
}

pub fn value_of(session: &Session, obj: ObjectHandle) -> Vec<u8> {
    match standard(session, obj, AttributeType::Value) {
        Attribute::Value(v) => v,
        other => panic!("CKA_VALUE: {other:?}"),
    }
}

pub fn flag_of(session: &Session, obj: ObjectHandle, ty: AttributeType) -> bool {
    match standard(session, obj, ty) {
        Attribute::Encrypt(b)
        | Attribute::Decrypt(b)
        | Attribute::Sign(b)
        | Attribute::Verify(b)
        | Attribute::Wrap(b)
        | Attribute::Unwrap(b) => b,
        other => panic!("{ty:?}: {other:?}"),
    }
}

/// The UUID text of a key id as its 16 bytes; panics unless it is a UUID.
pub fn uuid_bytes(id: &str) -> Vec<u8> {
    let groups: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lens, [8, 4, 4, 4, 12], "{id:?} is not a UUID");
    assert!(
        id.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id:?} is not a lowercase UUID"
    );
    hex::decode(groups.concat()).expect("hex")
}

// ---- token keys

/// A template for a token key: on the token, private, `extra` added.
fn on_token(mut extra: Vec<Attribute>) -> Vec<Attribute> {
    extra.extend([Attribute::Token(true), Attribute::Private(true)]);
    extra
}

/// C_GenerateKey of a 256-bit AES token key for encryption, `extra` added.
pub fn generate_aes_with(session: &Session, extra: Vec<Attribute>) -> ObjectHandle {
    session.generate_key(&Mechanism::AesKeyGen, &aes_template(extra)).expect("C_GenerateKey (AES)")
}

/// The template of `generate_aes_with`.
pub fn aes_template(mut extra: Vec<Attribute>) -> Vec<Attribute> {
    extra.extend([Attribute::ValueLen(32.into()), Attribute::Encrypt(true), Attribute::Decrypt(true)]);
    on_token(extra)
}

pub fn generate_aes(session: &Session) -> ObjectHandle {
    generate_aes_with(session, Vec::new())
}

/// C_GenerateKey of a 256-bit generic secret token key for HMAC.
pub fn generate_hmac(session: &Session) -> ObjectHandle {
    generate_hmac_of(session, 32)
}

/// C_GenerateKey of a generic secret token key of `len` bytes for HMAC.
pub fn generate_hmac_of(session: &Session, len: u64) -> ObjectHandle {
    let t = on_token(vec![
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(len.into()),
        Attribute::Sign(true),
        Attribute::Verify(true),
    ]);
    session.generate_key(&Mechanism::GenericSecretKeyGen, &t).expect("C_GenerateKey (HMAC)")
}

/// C_CreateObject of a token key whose value the test knows and can read back.
pub fn known_key(session: &Session, key_type: KeyType, value: &[u8]) -> ObjectHandle {
    let usage = if key_type == KeyType::AES {
        [Attribute::Encrypt(true), Attribute::Decrypt(true)]
    } else {
        [Attribute::Sign(true), Attribute::Verify(true)]
    };
    let mut t = on_token(vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Value(value.to_vec()),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]);
    t.extend(usage);
    session.create_object(&t).expect("C_CreateObject")
}

/// The serial number of the token in `slot` (its ARNs name it).
pub fn serial(p: &Pkcs11, slot: Slot) -> String {
    p.get_token_info(slot).expect("C_GetTokenInfo").serial_number().trim().to_string()
}

/// Raw handles found by `template`, sorted.
pub fn find(session: &Session, template: &[Attribute]) -> Vec<u64> {
    let mut v: Vec<u64> =
        session.find_objects(template).expect("C_FindObjects").iter().map(ObjectHandle::handle).collect();
    v.sort_unstable();
    v
}

// ---- key use

const IV: [u8; 16] = [0x1c; 16];

/// A cryptographic use of a key, by the name of its audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Encrypt,
    Decrypt,
    GenerateMac,
    VerifyMac,
}

impl Use {
    pub const ALL: [Use; 4] = [Use::Encrypt, Use::Decrypt, Use::GenerateMac, Use::VerifyMac];

    pub fn event(self) -> &'static str {
        match self {
            Use::Encrypt => "Encrypt",
            Use::Decrypt => "Decrypt",
            Use::GenerateMac => "GenerateMac",
            Use::VerifyMac => "VerifyMac",
        }
    }

    pub fn function(self) -> Function {
        match self {
            Use::Encrypt => Function::EncryptInit,
            Use::Decrypt => Function::DecryptInit,
            Use::GenerateMac => Function::SignInit,
            Use::VerifyMac => Function::VerifyInit,
        }
    }

    /// Whether AES keys serve this use (CBC-PAD); generic secrets serve the others (HMAC).
    pub fn for_aes(self) -> bool {
        matches!(self, Use::Encrypt | Use::Decrypt)
    }

    /// The *Init call of this use: AES-CBC-PAD or HMAC-SHA256.
    pub fn start(self, session: &Session, key: ObjectHandle) -> cryptoki::error::Result<()> {
        let cbc = Mechanism::AesCbcPad(IV);
        match self {
            Use::Encrypt => session.encrypt_init(&cbc, key),
            Use::Decrypt => session.decrypt_init(&cbc, key),
            Use::GenerateMac => session.sign_init(&Mechanism::Sha256Hmac, key),
            Use::VerifyMac => session.verify_init(&Mechanism::Sha256Hmac, key),
        }
    }
}

/// Encrypts and decrypts with an AES key (CBC-PAD); panics unless both work.
pub fn aes_round_trip(session: &Session, key: ObjectHandle) {
    let pt = b"a message for the round trip";
    let ct = session.encrypt(&Mechanism::AesCbcPad(IV), key, pt).expect("C_Encrypt");
    let back = session.decrypt(&Mechanism::AesCbcPad(IV), key, &ct).expect("C_Decrypt");
    assert_eq!(back, pt);
}

/// Makes and checks an HMAC-SHA256 with a generic secret key; panics unless both work.
pub fn mac_round_trip(session: &Session, key: ObjectHandle) {
    let data = b"a message for the MAC";
    let mac = session.sign(&Mechanism::Sha256Hmac, key, data).expect("C_Sign");
    session.verify(&Mechanism::Sha256Hmac, key, data, &mac).expect("C_Verify");
}

// ---- time

pub const DAY: i64 = 86_400;

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 {
        text.get(r).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{text:?} is not YYYY-MM-DDTHH:MM:SSZ"))
    };
    assert!(text.len() == 20 && text.ends_with('Z') && &text[10..11] == "T", "{text:?} is not YYYY-MM-DDTHH:MM:SSZ");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * DAY + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Asserts that the time `text` lies `secs` after `from`, give or take a minute.
#[track_caller]
pub fn assert_about(text: &str, from: i64, secs: i64) {
    let got = parse_time(text) - from;
    assert!((got - secs).abs() <= 60, "{text} is {got} s after the reference, not about {secs} s");
}

// ---- the kmstoken command

/// A failed `kmstoken` command in aws terms.
#[derive(Debug)]
pub struct AwsError {
    pub code: String,
    pub operation: String,
    pub stderr: String,
}

/// The `kmstoken` command for one scenario's configuration, logged in as the user.
#[derive(Clone)]
pub struct Cli {
    conf: PathBuf,
    pin: String,
    offset: i64,
}

/// `describe-key` → `DescribeKey`.
fn operation_name(command: &str) -> String {
    command
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// `An error occurred (<Code>) when calling the <Op> operation: ...` → (code, op).
fn parse_aws_error(stderr: &str) -> Option<(String, String)> {
    let rest = stderr.split_once("An error occurred (")?.1;
    let (code, rest) = rest.split_once(") when calling the ")?;
    let (op, _) = rest.split_once(" operation: ")?;
    Some((code.to_string(), op.to_string()))
}

impl Cli {
    pub fn new(conf: &Path, pin: &str) -> Cli {
        Cli { conf: conf.to_path_buf(), pin: pin.to_string(), offset: 0 }
    }

    /// The same command with the KMS clock moved by `secs`.
    pub fn later(&self, secs: i64) -> Cli {
        Cli { offset: secs, ..self.clone() }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kmstoken"));
        c.arg("--output")
            .arg("json")
            .args(args)
            .env("KMSTOKEN_CONF", &self.conf)
            .env("KMSTOKEN_PIN", &self.pin)
            .env("KMSTOKEN_CLOCK_OFFSET", clock_offset(self.offset))
            .env_remove("KMSTOKEN_TOKEN")
            .env_remove("KMSTOKEN_LOG");
        c
    }

    /// Runs a command: its JSON output (Null when it prints none), or its aws error.
    pub fn run(&self, args: &[&str]) -> Result<Value, AwsError> {
        let out = self.command(args).output().expect("run kmstoken");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(if stdout.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&stdout)
                    .unwrap_or_else(|e| panic!("kmstoken {args:?}: output not JSON ({e}):\n{stdout}"))
            });
        }
        assert_eq!(out.status.code(), Some(254), "kmstoken {args:?}: a failure exits 254\n{stderr}");
        let (code, operation) = parse_aws_error(&stderr)
            .unwrap_or_else(|| panic!("kmstoken {args:?}: no aws-style error on stderr:\n{stderr}"));
        Err(AwsError { code, operation, stderr })
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Value {
        self.run(args).unwrap_or_else(|e| panic!("kmstoken {args:?} failed: {}", e.stderr))
    }

    /// `kmstoken kms <command> ...` fails with `code`, naming its operation.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: &str) -> AwsError {
        let e = match self.run(args) {
            Err(e) => e,
            Ok(v) => panic!("kmstoken {args:?} succeeded ({v}) where {code} was expected"),
        };
        assert_eq!(e.code, code, "kmstoken {args:?}: {}", e.stderr);
        if args.first() == Some(&"kms") {
            assert_eq!(e.operation, operation_name(args[1]), "{}", e.stderr);
        }
        e
    }

    /// `kms describe-key`: the KeyMetadata.
    #[track_caller]
    pub fn describe(&self, key: &str) -> Value {
        self.ok(&["kms", "describe-key", "--key-id", key])["KeyMetadata"].clone()
    }

    #[track_caller]
    pub fn key_state(&self, key: &str) -> String {
        self.describe(key)["KeyState"].as_str().expect("KeyState").to_string()
    }
}

// ---- the audit log

/// The audit trail directory of the (only) token of a keystore.
pub fn trail_dir(keystore: &Path) -> PathBuf {
    let dir = keystore.join("audit");
    let mut trails: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("audit entry").path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("token-")))
        .collect();
    assert_eq!(trails.len(), 1, "one audit trail expected: {trails:?}");
    trails.remove(0)
}

/// The segment files of the trail of a keystore's only token, oldest first.
pub fn trail_segments(keystore: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(trail_dir(keystore))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "trail"))
        .collect();
    v.sort();
    v
}

/// `kmstoken audit verify`: its report, or what it printed on failure (exit status 254).
pub fn audit_verify(cli: &Cli) -> Result<Value, String> {
    let out = cli.command(&["audit", "verify"]).output().expect("run kmstoken");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        return Err(stderr);
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["Intact"], true, "{v:#}");
    Ok(v)
}

/// Every record of the audit trail, as `kmstoken audit export --trail` renders them.
pub fn audit_records(keystore: &Path) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmstoken"))
        .args(["audit", "export", "--trail"])
        .arg(trail_dir(keystore))
        .output()
        .expect("run kmstoken audit export");
    assert!(out.status.success(), "audit export: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("audit export prints JSON");
    v["Records"].as_array().expect("Records").clone()
}

/// The records named `event` about key `key_id`.
pub fn records_of(keystore: &Path, event: &str, key_id: &str) -> Vec<Value> {
    audit_records(keystore)
        .into_iter()
        .filter(|r| r["eventName"] == event && r["requestParameters"]["keyId"] == key_id)
        .collect()
}

/// The service event (purge, rotation) `event` about key `key_id`; panics unless there is
/// exactly one.
#[track_caller]
pub fn service_event(keystore: &Path, event: &str, key_id: &str) -> Value {
    let found = records_of(keystore, event, key_id);
    assert_eq!(found.len(), 1, "one {event} record of {key_id}: {found:#?}");
    assert_eq!(found[0]["eventType"], "AwsServiceEvent", "{:#}", found[0]);
    found[0].clone()
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
