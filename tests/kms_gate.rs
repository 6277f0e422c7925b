//! The gate, cell by cell: for every `kmstoken kms` command and every PKCS#11 function
//! that takes a key handle, in every key state, for each principal, the verdict and the
//! audit record. The tables below are the specification (kms-semantics §4.2 for the
//! states, the default key policy for the principals); the test fails when a command or
//! a C function exists without a row, so a new operation cannot bypass the table.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{c_template, login_user, raw, Mech};
use common::*;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki_sys::*;
use kms::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ptr::null_mut;

type P = cryptoki_sys::Pkcs11;

const ALICE_PIN: &str = "alice-pin-1234";
/// "hello", base64.
const HELLO: &str = "aGVsbG8=";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
}
const STATES: [State; 4] = [State::Enabled, State::Disabled, State::PendingDeletion, State::PendingImport];

/// The key a row works on. PendingImport exists for symmetric keys only (an EXTERNAL key
/// before its material): other kinds have no cell there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Aes,
    Hmac,
    Ecc,
    /// A P-256 KEY_AGREEMENT key.
    Agree,
}

/// The outcome of a cell: success, the AWS error (the kms face) or CK_RV (the C face),
/// or no such cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Ok,
    Err(&'static str),
    Na,
}
use Want::{Err as E, Na, Ok as OK};

const DISABLED: Want = E("DisabledException");
const INVALID_STATE: Want = E("KMSInvalidStateException");
const UNSUPPORTED: Want = E("UnsupportedOperationException");
/// The state column of a cryptographic use.
const USE: [Want; 4] = [OK, DISABLED, INVALID_STATE, INVALID_STATE];
/// A use that needs a ciphertext, signature or MAC the key made (none in PendingImport).
const USE_OF_OUTPUT: [Want; 4] = [OK, DISABLED, INVALID_STATE, Na];
const ANY: [Want; 4] = [OK, OK, OK, OK];
const NOT_PENDING_DELETION: [Want; 4] = [OK, OK, INVALID_STATE, OK];
const ROTATION: [Want; 4] = [OK, DISABLED, INVALID_STATE, UNSUPPORTED];

/// Who asks. The default key policy lets `user` do everything, the administrators (`so`)
/// administer, and named users (`alice`) use the key and describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Principal {
    User,
    So,
    Alice,
}
const PRINCIPALS: [Principal; 3] = [Principal::User, Principal::So, Principal::Alice];

impl Principal {
    fn audit_name(self) -> &'static str {
        match self {
            Principal::User => "user",
            Principal::So => "so",
            Principal::Alice => "user/alice",
        }
    }

    fn args(self) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        match self {
            Principal::User => vec![],
            Principal::So => v(&["--principal", "so", "--pin", SO_PIN]),
            Principal::Alice => v(&["--principal", "alice", "--pin", ALICE_PIN]),
        }
    }
}

/// What the cells of a key know: its id, and what it made while it was Enabled.
#[derive(Clone, Default)]
struct Key {
    id: String,
    blob: String,
    signature: String,
    mac: String,
    alias: String,
    policy: String,
    /// Its public key (SPKI, base64), read while it was Enabled.
    public: String,
}

/// A row of the kms face.
struct Row {
    command: &'static str,
    /// The audit record of the key under test (the operation's name unless said).
    event: Option<&'static str>,
    kind: Kind,
    /// The arguments after the command; `t` makes per-cell preparations.
    args: fn(&Table, &Key) -> Vec<String>,
    states: [Want; 4],
    /// Whether the default policy lets the SO, and a named user, ask for it.
    so: bool,
    alice: bool,
    /// The command changes the key when it works: a new key per cell.
    fresh: bool,
}

fn v(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn key_id(_: &Table, k: &Key) -> Vec<String> {
    v(&["--key-id", &k.id])
}

const fn row(command: &'static str, kind: Kind, states: [Want; 4], so: bool, alice: bool) -> Row {
    Row { command, event: None, kind, args: key_id, states, so, alice, fresh: false }
}

/// Every `kmstoken kms` command that takes a key, with its cells.
fn kms_rows() -> Vec<Row> {
    use Kind::*;
    let fresh = |r: Row| Row { fresh: true, ..r };
    let with = |r: Row, args: fn(&Table, &Key) -> Vec<String>| Row { args, ..r };
    vec![
        row("describe-key", Aes, ANY, true, true),
        fresh(row("enable-key", Aes, [OK, OK, INVALID_STATE, INVALID_STATE], true, false)),
        fresh(row("disable-key", Aes, [OK, OK, INVALID_STATE, INVALID_STATE], true, false)),
        fresh(row("schedule-key-deletion", Aes, NOT_PENDING_DELETION, true, false)),
        fresh(row("cancel-key-deletion", Aes, [INVALID_STATE, INVALID_STATE, OK, INVALID_STATE], true, false)),
        row("enable-key-rotation", Aes, ROTATION, true, false),
        row("disable-key-rotation", Aes, ROTATION, true, false),
        row("get-key-rotation-status", Aes, ANY, true, false),
        row("rotate-key-on-demand", Aes, ROTATION, true, false),
        row("list-key-rotations", Aes, ANY, true, false),
        with(row("create-alias", Aes, NOT_PENDING_DELETION, true, false), |t, k| {
            v(&["--alias-name", &t.unique("alias/new"), "--target-key-id", &k.id])
        }),
        with(row("update-alias", Aes, NOT_PENDING_DELETION, true, false), |t, k| {
            // An alias of another (Enabled) key, pointed at this one.
            let name = t.unique("alias/moved");
            t.cli.ok(&["kms", "create-alias", "--alias-name", &name, "--target-key-id", &t.other.id]);
            v(&["--alias-name", &name, "--target-key-id", &k.id])
        }),
        fresh(with(row("delete-alias", Aes, ANY, true, false), |_, k| v(&["--alias-name", &k.alias]))),
        with(row("tag-resource", Aes, NOT_PENDING_DELETION, true, false), |_, k| {
            v(&["--key-id", &k.id, "--tags", "TagKey=k,TagValue=v"])
        }),
        with(row("untag-resource", Aes, NOT_PENDING_DELETION, true, false), |_, k| {
            v(&["--key-id", &k.id, "--tag-keys", "k"])
        }),
        row("list-resource-tags", Aes, ANY, true, false),
        with(row("update-key-description", Aes, NOT_PENDING_DELETION, true, false), |_, k| {
            v(&["--key-id", &k.id, "--description", "d"])
        }),
        with(row("encrypt", Aes, USE, false, true), |_, k| v(&["--key-id", &k.id, "--plaintext", HELLO])),
        with(row("decrypt", Aes, USE_OF_OUTPUT, false, true), |_, k| v(&["--ciphertext-blob", &k.blob])),
        Row {
            event: Some("ReEncryptFrom"),
            ..with(row("re-encrypt", Aes, USE_OF_OUTPUT, false, true), |t, k| {
                v(&["--ciphertext-blob", &k.blob, "--destination-key-id", &t.other.id])
            })
        },
        with(row("generate-data-key", Aes, USE, false, true), |_, k| v(&["--key-id", &k.id, "--key-spec", "AES_256"])),
        with(row("generate-data-key-without-plaintext", Aes, USE, false, true), |_, k| {
            v(&["--key-id", &k.id, "--key-spec", "AES_256"])
        }),
        with(row("generate-data-key-pair", Aes, USE, false, true), |_, k| {
            v(&["--key-id", &k.id, "--key-pair-spec", "ECC_NIST_P256"])
        }),
        with(row("generate-data-key-pair-without-plaintext", Aes, USE, false, true), |_, k| {
            v(&["--key-id", &k.id, "--key-pair-spec", "ECC_NIST_P256"])
        }),
        with(
            row("get-parameters-for-import", Aes, [UNSUPPORTED, UNSUPPORTED, INVALID_STATE, OK], true, false),
            |_, k| {
                v(&["--key-id", &k.id, "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048"])
            },
        ),
        with(
            // With the import token of another key: past the gate, the import refuses it.
            row(
                "import-key-material",
                Aes,
                [UNSUPPORTED, UNSUPPORTED, INVALID_STATE, E("InvalidImportTokenException")],
                false,
                false,
            ),
            |t, k| {
                let (material, token) = (&t.material, &t.import_token);
                let model = "KEY_MATERIAL_DOES_NOT_EXPIRE";
                v(&[
                    "--key-id",
                    &k.id,
                    "--encrypted-key-material",
                    material,
                    "--import-token",
                    token,
                    "--expiration-model",
                    model,
                ])
            },
        ),
        row("delete-imported-key-material", Aes, [UNSUPPORTED, UNSUPPORTED, UNSUPPORTED, OK], true, false),
        with(row("sign", Ecc, USE, false, true), |_, k| {
            v(&["--key-id", &k.id, "--message", HELLO, "--signing-algorithm", "ECDSA_SHA_256"])
        }),
        with(row("verify", Ecc, USE_OF_OUTPUT, false, true), |_, k| {
            v(&[
                "--key-id",
                &k.id,
                "--message",
                HELLO,
                "--signature",
                &k.signature,
                "--signing-algorithm",
                "ECDSA_SHA_256",
            ])
        }),
        row("get-public-key", Ecc, USE, true, true),
        // ECDH with the key's own public key: any point of the curve will do.
        with(row("derive-shared-secret", Agree, USE, false, true), |_, k| {
            v(&["--key-id", &k.id, "--key-agreement-algorithm", "ECDH", "--public-key", &k.public])
        }),
        with(row("generate-mac", Hmac, USE, false, true), |_, k| {
            v(&["--key-id", &k.id, "--message", HELLO, "--mac-algorithm", "HMAC_SHA_256"])
        }),
        with(row("verify-mac", Hmac, USE_OF_OUTPUT, false, true), |_, k| {
            v(&["--key-id", &k.id, "--message", HELLO, "--mac", &k.mac, "--mac-algorithm", "HMAC_SHA_256"])
        }),
        row("get-key-policy", Aes, ANY, true, false),
        with(row("put-key-policy", Aes, ANY, true, false), |_, k| v(&["--key-id", &k.id, "--policy", &k.policy])),
        row("list-key-policies", Aes, ANY, true, false),
    ]
}

/// The commands that take no key: who may run them.
fn keyless_rows() -> Vec<(&'static str, Vec<String>, [Want; 3])> {
    vec![
        // Named users make keys of their own, as the user does; CreateKey is no key's.
        ("create-key", v(&[]), [OK, OK, OK]),
        ("list-keys", v(&[]), [OK, OK, OK]),
        ("list-aliases", v(&[]), [OK, OK, OK]),
        ("generate-random", v(&["--number-of-bytes", "16"]), [OK, OK, OK]),
    ]
}

/// The keys of the cells, and the means to make more.
struct Table {
    cli: Cli,
    /// An Enabled key of the user's, for the commands that name a second key.
    other: Key,
    /// An import token of another EXTERNAL key, and 256 bytes as wrapped material (base64).
    import_token: String,
    material: String,
    pool: std::cell::RefCell<std::collections::BTreeMap<(Kind, State), Key>>,
    counter: std::cell::Cell<u32>,
}

impl Table {
    fn unique(&self, prefix: &str) -> String {
        self.counter.set(self.counter.get() + 1);
        format!("{prefix}-{}", self.counter.get())
    }

    /// A new key of `kind` in `state`, with what it made while Enabled.
    fn make(&self, kind: Kind, state: State) -> Key {
        let cli = &self.cli;
        let spec: &[&str] = match (kind, state) {
            (Kind::Aes, State::PendingImport) => &["--origin", "EXTERNAL"],
            (Kind::Aes, _) => &[],
            (Kind::Hmac, _) => &["--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC"],
            (Kind::Ecc, _) => &["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"],
            (Kind::Agree, _) => &["--key-spec", "ECC_NIST_P256", "--key-usage", "KEY_AGREEMENT"],
        };
        let created = cli.ok(&[&["kms", "create-key"][..], spec].concat());
        let id = created["KeyMetadata"]["KeyId"].as_str().expect("KeyId").to_string();
        let mut k = Key { id: id.clone(), alias: self.unique("alias/of"), ..Default::default() };
        cli.ok(&["kms", "create-alias", "--alias-name", &k.alias, "--target-key-id", &id]);
        k.policy = cli.ok(&["kms", "get-key-policy", "--key-id", &id])["Policy"].as_str().unwrap().to_string();
        if state != State::PendingImport {
            match kind {
                Kind::Aes => {
                    let out = cli.ok(&["kms", "encrypt", "--key-id", &id, "--plaintext", HELLO]);
                    k.blob = out["CiphertextBlob"].as_str().unwrap().to_string();
                }
                Kind::Hmac => {
                    let args = ["--key-id", &id, "--message", HELLO, "--mac-algorithm", "HMAC_SHA_256"];
                    k.mac =
                        cli.ok(&[&["kms", "generate-mac"][..], &args].concat())["Mac"].as_str().unwrap().to_string();
                }
                Kind::Agree => {
                    let out = cli.ok(&["kms", "get-public-key", "--key-id", &id]);
                    k.public = out["PublicKey"].as_str().unwrap().to_string();
                }
                Kind::Ecc => {
                    let args = ["--key-id", &id, "--message", HELLO, "--signing-algorithm", "ECDSA_SHA_256"];
                    let out = cli.ok(&[&["kms", "sign"][..], &args].concat());
                    k.signature = out["Signature"].as_str().unwrap().to_string();
                }
            }
        }
        match state {
            State::Disabled => {
                cli.ok(&["kms", "disable-key", "--key-id", &id]);
            }
            State::PendingDeletion => {
                cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id]);
            }
            State::Enabled | State::PendingImport => {}
        }
        k
    }

    /// The shared key of `kind` in `state`, for a row that does not change it.
    fn pooled(&self, kind: Kind, state: State) -> Key {
        if let Some(k) = self.pool.borrow().get(&(kind, state)) {
            return k.clone();
        }
        let k = self.make(kind, state);
        self.pool.borrow_mut().insert((kind, state), k.clone());
        k
    }
}

/// `describe-key` → `DescribeKey`.
fn operation(command: &str) -> String {
    command.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// The commands `kmstoken kms --help` lists.
fn kms_commands() -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmstoken")).args(["kms", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let list = help.split_once("Commands:").expect("a command list").1.split_once("Options:").unwrap().0;
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_kms_command_in_every_state_for_every_principal() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        cli.ok(&["user", "add", "alice", "--pin", ALICE_PIN, "--so-pin", SO_PIN]);
        let rows = kms_rows();
        let keyless = keyless_rows();

        // Every command has its row.
        let covered: BTreeSet<String> =
            rows.iter().map(|r| r.command.to_string()).chain(keyless.iter().map(|k| k.0.to_string())).collect();
        assert_eq!(covered, kms_commands(), "a kms command without a row in the gate's table (or a row too many)");

        let t = Table {
            cli: cli.clone(),
            other: Key::default(),
            import_token: String::new(),
            material: format!("{}==", "A".repeat(342)),
            pool: Default::default(),
            counter: Default::default(),
        };
        let importer = t.make(Kind::Aes, State::PendingImport);
        let params = cli.ok(&[
            "kms",
            "get-parameters-for-import",
            "--key-id",
            &importer.id,
            "--wrapping-algorithm",
            "RSAES_OAEP_SHA_256",
            "--wrapping-key-spec",
            "RSA_2048",
        ]);
        let import_token = params["ImportToken"].as_str().expect("ImportToken").to_string();
        let t = Table { other: t.make(Kind::Aes, State::Enabled), import_token, ..t };
        let mut failures = Vec::new();
        let mut cells = 0;
        for row in &rows {
            let event = row.event.map(str::to_string).unwrap_or_else(|| operation(row.command));
            for (state, column) in STATES.into_iter().zip(row.states) {
                if column == Na || (state == State::PendingImport && row.kind != Kind::Aes) {
                    continue;
                }
                for who in PRINCIPALS {
                    let allowed = match who {
                        Principal::User => true,
                        Principal::So => row.so,
                        Principal::Alice => row.alice,
                    };
                    let want = if allowed { column } else { E("AccessDeniedException") };
                    let key = if row.fresh { t.make(row.kind, state) } else { t.pooled(row.kind, state) };
                    let before = records_of(&s.keystore(), &event, &key.id).len();
                    let args = [v(&["kms", row.command]), (row.args)(&t, &key), who.args()].concat();
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let got = match cli.run(&args) {
                        Ok(_) => OK,
                        Err(e) => {
                            assert_eq!(e.operation, operation(row.command), "{}", e.stderr);
                            E(Box::leak(e.code.into_boxed_str()))
                        }
                    };
                    cells += 1;
                    let cell = format!("{} {state:?} {who:?}", row.command);
                    if got != want {
                        failures.push(format!("{cell}: {got:?}, expected {want:?}"));
                        continue;
                    }
                    // One record of the key for the cell, with the principal and the outcome.
                    let records = records_of(&s.keystore(), &event, &key.id);
                    if records.len() != before + 1 {
                        failures.push(format!("{cell}: {} {event} records, expected 1", records.len() - before));
                        continue;
                    }
                    let r = records.last().unwrap();
                    let code = r.get("errorCode").and_then(Value::as_str);
                    if r["userIdentity"]["principalId"] != who.audit_name() || code != want_code(want) {
                        failures.push(format!("{cell}: record {r}"));
                    }
                }
            }
        }
        for (command, args, wants) in &keyless {
            for (who, want) in PRINCIPALS.into_iter().zip(wants) {
                let args = [v(&["kms", command]), args.clone(), who.args()].concat();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let got = match cli.run(&args) {
                    Ok(_) => OK,
                    Err(e) => E(Box::leak(e.code.into_boxed_str())),
                };
                cells += 1;
                if got != *want {
                    failures.push(format!("{command} {who:?}: {got:?}, expected {want:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "{} of {cells} cells differ:\n{}", failures.len(), failures.join("\n"));
        eprintln!("{cells} cells of the kms face checked");
    });
}

fn want_code(w: Want) -> Option<&'static str> {
    match w {
        E(code) => Some(code),
        _ => None,
    }
}

// ---- the PKCS#11 face

/// One cell of the C face: the session, the key under test and a helper key of the
/// session's (an extractable session AES key).
struct Cell {
    h: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    helper: CK_OBJECT_HANDLE,
}

/// A row of the C face: the function, the audit record it leaves on the key, and the
/// CK_RV per state for a principal the policy allows (`ok` when it returns CKR_OK).
struct CRow {
    function: &'static str,
    /// The record the gate writes of the key (None: the call never reaches the gate).
    event: Option<&'static str>,
    call: fn(&Cell) -> CK_RV,
    states: [CK_RV; 4],
    /// Whether the call's success is audited (uses and changes; metadata reads are not).
    audited: bool,
    /// Whether the default policy lets a named user ask for it.
    alice: bool,
    /// The call takes the key away or changes it: a new key per cell.
    fresh: bool,
}

const KFNP: CK_RV = CKR_KEY_FUNCTION_NOT_PERMITTED;
const AP: CK_RV = CKR_ACTION_PROHIBITED;
/// PKCS#11 hides a key pending deletion from every function (kmsp11's rule).
const KHI: CK_RV = CKR_KEY_HANDLE_INVALID;
const OHI: CK_RV = CKR_OBJECT_HANDLE_INVALID;
const NS: CK_RV = CKR_FUNCTION_NOT_SUPPORTED;
const SENSITIVE: CK_RV = CKR_ATTRIBUTE_SENSITIVE;
const KTI: CK_RV = CKR_KEY_TYPE_INCONSISTENT;
/// The answers of a handle that never reaches the gate.
const BEFORE_THE_GATE: [CK_RV; 5] = [KHI, OHI, NS, CKR_WRAPPING_KEY_HANDLE_INVALID, CKR_UNWRAPPING_KEY_HANDLE_INVALID];

/// An `*Init(session, mechanism, key)` function of the module.
type InitFn = unsafe fn(&cryptoki_sys::Pkcs11, CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE) -> CK_RV;

fn init(c: &Cell, m: Mech, f: InitFn) -> CK_RV {
    let r = raw();
    // SAFETY: the mechanism lives on the stack for the call; the handles are plain numbers.
    m.with(|m| unsafe { f(r.lib(), c.h, m, c.key) })
}

fn get_value(c: &Cell, ty: CK_ATTRIBUTE_TYPE) -> CK_RV {
    // With CKA_CLASS beside it: an attribute withheld must not cost the others.
    let (mut buf, mut class) = (vec![0u8; 64], [0u8; 8]);
    let mut t = [
        CK_ATTRIBUTE { type_: ty, pValue: buf.as_mut_ptr().cast(), ulValueLen: buf.len() as CK_ULONG },
        CK_ATTRIBUTE { type_: CKA_CLASS, pValue: class.as_mut_ptr().cast(), ulValueLen: 8 },
    ];
    // SAFETY: the template and its buffers outlive the call.
    let rv = unsafe { raw().lib().C_GetAttributeValue(c.h, c.key, t.as_mut_ptr(), 2) };
    if rv == CKR_ATTRIBUTE_SENSITIVE {
        assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION, "the withheld value has no length");
        assert_eq!(CK_ULONG::from_ne_bytes(class), CKO_SECRET_KEY, "the class is still read");
    }
    rv
}

fn wrap(c: &Cell, wrapping: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
    let mut out = vec![0u8; 128];
    let mut n = out.len() as CK_ULONG;
    // SAFETY: the mechanism and the output buffer outlive the call.
    Mech::new(CKM_AES_KEY_WRAP_KWP)
        .with(|m| unsafe { raw().lib().C_WrapKey(c.h, m, wrapping, key, out.as_mut_ptr(), &mut n) })
}

fn new_key_template() -> Vec<CK_ATTRIBUTE> {
    c_template(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::AES),
        Attribute::Token(false),
    ])
}

/// Every PKCS#11 function that takes a key handle, with its cells.
fn c_rows() -> Vec<CRow> {
    let use_ = [CKR_OK, KFNP, KHI, KFNP];
    let touch_use = [CKR_OK, AP, KHI, AP];
    let read = [CKR_OK, CKR_OK, OHI, CKR_OK];
    // A withheld value reads as sensitive; the other attributes of the call as usual.
    let read_value = [CKR_OK, SENSITIVE, OHI, SENSITIVE];
    let unsupported = [NS; 4];
    let r = |function, event, call: fn(&Cell) -> CK_RV, states, alice| CRow {
        function,
        event: Some(event),
        call,
        states,
        audited: true,
        alice,
        fresh: false,
    };
    let never = |function, call: fn(&Cell) -> CK_RV| CRow {
        function,
        event: None,
        call,
        states: unsupported,
        audited: false,
        alice: true,
        fresh: false,
    };
    vec![
        r(
            "C_EncryptInit",
            "Encrypt",
            |c| init(c, Mech::bytes(CKM_AES_CBC_PAD, &[1; 16]), P::C_EncryptInit),
            use_,
            true,
        ),
        r(
            "C_DecryptInit",
            "Decrypt",
            |c| init(c, Mech::bytes(CKM_AES_CBC_PAD, &[1; 16]), P::C_DecryptInit),
            use_,
            true,
        ),
        // A CMAC of an AES key is kms:GenerateMac, which the default policy keeps from
        // named users on an encryption key.
        r("C_SignInit", "GenerateMac", |c| init(c, Mech::new(CKM_AES_CMAC), P::C_SignInit), use_, false),
        r("C_VerifyInit", "VerifyMac", |c| init(c, Mech::new(CKM_AES_CMAC), P::C_VerifyInit), use_, false),
        // PKCS#11 3.2's verification with the signature first: the same use.
        r(
            "C_VerifySignatureInit",
            "VerifyMac",
            |c| {
                let sig = [0u8; 16];
                // SAFETY: the mechanism and the signature outlive the call.
                Mech::new(CKM_AES_CMAC)
                    .with(|m| unsafe { raw().lib().C_VerifySignatureInit(c.h, m, c.key, sig.as_ptr() as *mut u8, 16) })
            },
            use_,
            false,
        ),
        r("C_MessageEncryptInit", "Encrypt", |c| init(c, Mech::new(CKM_AES_GCM), P::C_MessageEncryptInit), use_, true),
        r("C_MessageDecryptInit", "Decrypt", |c| init(c, Mech::new(CKM_AES_GCM), P::C_MessageDecryptInit), use_, true),
        r(
            "C_DeriveKey",
            "DeriveSharedSecret",
            |c| {
                let mut t = new_key_template();
                let mut out = 0;
                let data = CK_KEY_DERIVATION_STRING_DATA { pData: [3u8; 16].as_ptr() as *mut u8, ulLen: 16 };
                let mut m = CK_MECHANISM {
                    mechanism: CKM_AES_ECB_ENCRYPT_DATA,
                    pParameter: &data as *const _ as *mut _,
                    ulParameterLen: std::mem::size_of::<CK_KEY_DERIVATION_STRING_DATA>() as CK_ULONG,
                };
                // SAFETY: the mechanism, its parameter and the template outlive the call.
                unsafe { raw().lib().C_DeriveKey(c.h, &mut m, c.key, t.as_mut_ptr(), t.len() as CK_ULONG, &mut out) }
            },
            use_,
            false,
        ),
        // The key under test wraps the helper (kms:Encrypt)...
        r(
            "C_WrapKey",
            "Encrypt",
            |c| wrap(c, c.key, c.helper),
            [CKR_OK, KFNP, CKR_WRAPPING_KEY_HANDLE_INVALID, KFNP],
            true,
        ),
        // ... or is wrapped by it: its value leaves the token (kms:ReplicateKey).
        r("C_WrapKey", "ReplicateKey", |c| wrap(c, c.helper, c.key), touch_use, false),
        r(
            "C_UnwrapKey",
            "Decrypt",
            |c| {
                let mut t = new_key_template();
                let wrapped = [9u8; 40];
                let mut out = 0;
                Mech::new(CKM_AES_KEY_WRAP_KWP).with(|m| {
                    // SAFETY: the mechanism, the wrapped bytes and the template outlive the call.
                    let rv = unsafe {
                        raw().lib().C_UnwrapKey(
                            c.h,
                            m,
                            c.key,
                            wrapped.as_ptr() as *mut u8,
                            40,
                            t.as_mut_ptr(),
                            t.len() as CK_ULONG,
                            &mut out,
                        )
                    };
                    // Past the gate, the bytes are no wrapped key.
                    if matches!(rv, CKR_WRAPPED_KEY_INVALID | CKR_ENCRYPTED_DATA_INVALID) {
                        CKR_OK
                    } else {
                        rv
                    }
                })
            },
            [CKR_OK, KFNP, CKR_UNWRAPPING_KEY_HANDLE_INVALID, KFNP],
            true,
        ),
        r(
            "C_DigestKey",
            "DigestKey",
            |c| {
                let r = raw();
                // SAFETY: the mechanism lives on the stack for the call.
                let rv = Mech::new(CKM_SHA256).with(|m| unsafe { r.lib().C_DigestInit(c.h, m) });
                assert_eq!(rv, CKR_OK, "C_DigestInit");
                // SAFETY: handles only.
                let rv = unsafe { r.lib().C_DigestKey(c.h, c.key) };
                // SAFETY: ends the digest (NULL output asks its length only).
                let mut n = 0;
                unsafe { r.lib().C_DigestFinal(c.h, null_mut(), &mut n) };
                let mut out = vec![0u8; n as usize];
                unsafe { r.lib().C_DigestFinal(c.h, out.as_mut_ptr(), &mut n) };
                rv
            },
            touch_use,
            false,
        ),
        // CKA_VALUE of an extractable key: its value leaves the token (kms:ReplicateKey).
        r("C_GetAttributeValue", "ReplicateKey", |c| get_value(c, CKA_VALUE), read_value, false),
        // Metadata of a private key: kms:DescribeKey, audited only when refused.
        CRow { audited: false, ..r("C_GetAttributeValue", "DescribeKey", |c| get_value(c, CKA_LABEL), read, true) },
        CRow {
            audited: false,
            ..r(
                "C_GetObjectSize",
                "DescribeKey",
                |c| {
                    let mut n = 0;
                    // SAFETY: handles and a stack output.
                    unsafe { raw().lib().C_GetObjectSize(c.h, c.key, &mut n) }
                },
                read,
                true,
            )
        },
        r(
            "C_SetAttributeValue",
            "UpdateKeyDescription",
            |c| {
                let label = b"relabelled";
                let mut t = [CK_ATTRIBUTE {
                    type_: CKA_LABEL,
                    pValue: label.as_ptr() as *mut _,
                    ulValueLen: label.len() as CK_ULONG,
                }];
                // SAFETY: the template and its value outlive the call.
                unsafe { raw().lib().C_SetAttributeValue(c.h, c.key, t.as_mut_ptr(), 1) }
            },
            read,
            false,
        ),
        // A KMS key is never copyable (one key id, one key): CKA_COPYABLE refuses the copy
        // before the gate is asked.
        CRow {
            event: None,
            states: [AP, AP, OHI, AP],
            ..r(
                "C_CopyObject",
                "ReplicateKey",
                |c| {
                    let mut t = c_template(&[Attribute::Token(false)]);
                    let mut out = 0;
                    // SAFETY: the template outlives the call.
                    unsafe { raw().lib().C_CopyObject(c.h, c.key, t.as_mut_ptr(), t.len() as CK_ULONG, &mut out) }
                },
                read,
                true,
            )
        },
        CRow {
            fresh: true,
            // SAFETY (the closure): handles only.
            ..r(
                "C_DestroyObject",
                "ScheduleKeyDeletion",
                |c| unsafe { raw().lib().C_DestroyObject(c.h, c.key) },
                read,
                false,
            )
        },
        never("C_SignRecoverInit", |c| init(c, Mech::new(CKM_RSA_PKCS), P::C_SignRecoverInit)),
        never("C_VerifyRecoverInit", |c| init(c, Mech::new(CKM_RSA_PKCS), P::C_VerifyRecoverInit)),
        never("C_MessageSignInit", |c| init(c, Mech::new(CKM_AES_CMAC), P::C_MessageSignInit)),
        never("C_MessageVerifyInit", |c| init(c, Mech::new(CKM_AES_CMAC), P::C_MessageVerifyInit)),
        // SAFETY (the closure): no state bytes, handles only.
        never("C_SetOperationState", |c| unsafe { raw().lib().C_SetOperationState(c.h, null_mut(), 0, c.key, 0) }),
        never("C_WrapKeyAuthenticated", |c| {
            let (mut out, mut n) = ([0u8; 64], 64);
            // SAFETY: the mechanism and the output outlive the call.
            Mech::new(CKM_AES_KEY_WRAP_KWP).with(|m| unsafe {
                raw().lib().C_WrapKeyAuthenticated(c.h, m, c.key, c.helper, null_mut(), 0, out.as_mut_ptr(), &mut n)
            })
        }),
        never("C_UnwrapKeyAuthenticated", |c| {
            let (wrapped, mut t, mut out) = ([9u8; 40], new_key_template(), 0);
            // SAFETY: the mechanism, the bytes and the template outlive the call.
            Mech::new(CKM_AES_KEY_WRAP_KWP).with(|m| unsafe {
                raw().lib().C_UnwrapKeyAuthenticated(
                    c.h,
                    m,
                    c.key,
                    wrapped.as_ptr() as *mut u8,
                    40,
                    t.as_mut_ptr(),
                    t.len() as CK_ULONG,
                    null_mut(),
                    0,
                    &mut out,
                )
            })
        }),
        // A KEM takes ML-KEM keys only: an AES key is refused before the gate is asked (a
        // key pending deletion is hidden before that).
        CRow {
            states: [KTI, KTI, KHI, KTI],
            ..never("C_EncapsulateKey", |c| {
                let (mut t, mut ct, mut n, mut out) = (new_key_template(), [0u8; 2048], 2048, 0);
                // SAFETY: the mechanism, the template and the outputs outlive the call.
                Mech::new(CKM_ML_KEM).with(|m| unsafe {
                    raw().lib().C_EncapsulateKey(
                        c.h,
                        m,
                        c.key,
                        t.as_mut_ptr(),
                        t.len() as CK_ULONG,
                        ct.as_mut_ptr(),
                        &mut n,
                        &mut out,
                    )
                })
            })
        },
        CRow {
            states: [KTI, KTI, KHI, KTI],
            ..never("C_DecapsulateKey", |c| {
                let (mut t, ct, mut out) = (new_key_template(), [0u8; 1088], 0);
                // SAFETY: the mechanism, the template and the ciphertext outlive the call.
                Mech::new(CKM_ML_KEM).with(|m| unsafe {
                    raw().lib().C_DecapsulateKey(
                        c.h,
                        m,
                        c.key,
                        t.as_mut_ptr(),
                        t.len() as CK_ULONG,
                        ct.as_ptr() as *mut u8,
                        1088,
                        &mut out,
                    )
                })
            })
        },
    ]
}

/// The C functions of the module that take a key or object handle as input, read from
/// the ABI shell's source (each `fn C_...(...)` with a `CK_OBJECT_HANDLE` parameter).
fn c_functions_with_a_handle() -> BTreeSet<String> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/abi/mod.rs")).expect("the ABI source");
    let mut found = BTreeSet::new();
    for part in src.split("fn C_").skip(1) {
        let name = format!("C_{}", part.split('(').next().unwrap());
        let params = part.split_once('(').unwrap().1.split_once(')').unwrap().0;
        if params.split(',').any(|p| p.trim().ends_with(": CK_OBJECT_HANDLE")) {
            found.insert(name);
        }
    }
    found
}

/// The C face for the principal this process logs in as: every row in every state.
fn c_face(s: &Scenario, alice: bool) {
    let p = initialized();
    let slot = p.get_slots_with_initialized_token().unwrap()[0];
    let session = p.open_rw_session(slot).unwrap();
    let principal = if alice {
        login_user(&session, "alice", ALICE_PIN).expect("C_LoginUser as alice");
        "user/alice"
    } else {
        session.login(cryptoki::session::UserType::User, Some(&pin(USER_PIN))).unwrap();
        "user"
    };
    let cli = Cli::new(&s.config_path(), USER_PIN);
    let make = |state: State| -> (ObjectHandle, String) {
        if state == State::PendingImport {
            let out = cli.ok(&["kms", "create-key", "--origin", "EXTERNAL"]);
            let id = out["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
            let found = session.find_objects(&[Attribute::Id(uuid_bytes(&id))]).unwrap();
            return (found[0], id);
        }
        let flags = [
            AttributeType::Encrypt,
            AttributeType::Decrypt,
            AttributeType::Sign,
            AttributeType::Verify,
            AttributeType::Wrap,
            AttributeType::Unwrap,
            AttributeType::Derive,
            AttributeType::Extractable,
        ];
        let mut t: Vec<Attribute> = flags.iter().map(|f| bool_attr(*f, true)).collect();
        t.push(Attribute::Sensitive(false));
        let key = generate_aes_with(&session, t);
        let id = key_id_of(&session, key);
        match state {
            State::Disabled => {
                cli.ok(&["kms", "disable-key", "--key-id", &id]);
            }
            State::PendingDeletion => {
                cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id]);
            }
            _ => {}
        }
        (key, id)
    };
    let helper = session
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Extractable(true),
            ],
        )
        .unwrap()
        .handle();
    let mut pool = std::collections::BTreeMap::new();
    let (mut failures, mut cells) = (Vec::new(), 0);
    for row in c_rows() {
        for (state, want) in STATES.into_iter().zip(row.states) {
            let (key, id) =
                if row.fresh { make(state) } else { pool.entry(state).or_insert_with(|| make(state)).clone() };
            // A policy refusal comes before the state: every state answers as a refused use
            // (through a mechanism) or action (a key pending deletion stays hidden).
            let refused = [KFNP, SENSITIVE].into_iter().find(|rv| row.states.contains(rv)).unwrap_or(AP);
            let want = if alice && !row.alice && !BEFORE_THE_GATE.contains(&want) { refused } else { want };
            let before = row.event.map_or(0, |e| records_of(&s.keystore(), e, &id).len());
            let h = raw().open_session(slot.id(), CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
            let got = (row.call)(&Cell { h, key: key.handle(), helper });
            raw().close_session(h).unwrap();
            cells += 1;
            let cell = format!("{} {:?} {state:?} {principal}", row.function, row.event);
            if got != want {
                failures.push(format!("{cell}: {got:#x}, expected {want:#x}"));
                continue;
            }
            // The gate's record: a refusal always, a success when the row is audited; none
            // when the handle was refused before the gate.
            let Some(event) = row.event else { continue };
            let reached = !BEFORE_THE_GATE.contains(&got);
            let expected = usize::from(reached && (got != CKR_OK || row.audited));
            let records = records_of(&s.keystore(), event, &id);
            if records.len() != before + expected {
                failures.push(format!("{cell}: {} records, expected {expected}", records.len() - before));
                continue;
            }
            if expected == 1 {
                let r = records.last().unwrap();
                let refused = r.get("errorCode").is_some();
                if r["userIdentity"]["principalId"] != principal || refused != (got != CKR_OK) {
                    failures.push(format!("{cell}: record {r}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cells} cells differ:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{cells} cells of the C face checked as {principal}");
}

fn bool_attr(ty: AttributeType, v: bool) -> Attribute {
    match ty {
        AttributeType::Encrypt => Attribute::Encrypt(v),
        AttributeType::Decrypt => Attribute::Decrypt(v),
        AttributeType::Sign => Attribute::Sign(v),
        AttributeType::Verify => Attribute::Verify(v),
        AttributeType::Wrap => Attribute::Wrap(v),
        AttributeType::Unwrap => Attribute::Unwrap(v),
        AttributeType::Derive => Attribute::Derive(v),
        AttributeType::Extractable => Attribute::Extractable(v),
        _ => unreachable!(),
    }
}

#[test]
fn every_c_function_that_takes_a_key_in_every_state_for_every_principal() {
    scenario!(|s| match s.role() {
        MAIN => {
            let rows: BTreeSet<String> = c_rows().iter().map(|r| r.function.to_string()).collect();
            assert_eq!(
                rows,
                c_functions_with_a_handle(),
                "a C function that takes a handle without a row in the gate's table (or a row too many)"
            );
            let (_p, _slot, _session) = ready();
            let cli = Cli::new(&s.config_path(), USER_PIN);
            cli.ok(&["user", "add", "alice", "--pin", ALICE_PIN, "--so-pin", SO_PIN]);
            drop((_session, _p));
            s.peer("user");
            s.peer("alice");
        }
        role => c_face(s, role == "alice"),
    });
}
