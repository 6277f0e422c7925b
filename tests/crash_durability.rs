//! The durability promise, tested with real processes: a token key whose C_GenerateKey
//! returned CKR_OK survives the death of its process at any instant (SIGKILL, no chance to
//! clean up), no half-written object is ever left behind, and processes that share a token
//! wait for each other instead of failing.
//!
//! The module is never loaded into this test process: every PKCS#11 call runs in a child
//! (this test binary re-invoked on the same test, with `KMSTOKEN_TEST_CHILD` naming its
//! role), so each test has its own keystore through the child's `KMSTOKEN_CONF` and the
//! tests run in parallel. A generating child writes `ACK:<label>` to stdout, flushed, after
//! every CKR_OK; the parent counts only complete lines.

mod interop_common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use interop_common::module_path;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SO_PIN: &str = "87654321";
const USER_PIN: &str = "123456";

/// Environment of a child: its role, and what it needs beyond `KMSTOKEN_CONF`.
const ROLE: &str = "KMSTOKEN_TEST_CHILD";
const MODULE: &str = "KMSTOKEN_TEST_MODULE_PATH";
const PREFIX: &str = "KMSTOKEN_TEST_PREFIX";
const START: &str = "KMSTOKEN_TEST_START";
/// How many keys a generating child makes; 0 for no end (until it is killed).
const COUNT: &str = "KMSTOKEN_TEST_COUNT";
/// When set, a generating child prints READY after login and waits for this file to exist.
const GO: &str = "KMSTOKEN_TEST_GO";

/// How long any child may take before the test gives up on it.
const CHILD_LIMIT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------
// The children.

/// In a child, runs its role and ends the process; in the test itself, does nothing.
fn child_dispatch() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let code = match role.as_str() {
        "init" => child_init(),
        "gen" => child_gen(),
        "verify" => child_verify(),
        other => panic!("unknown child role {other:?}"),
    };
    std::process::exit(code);
}

fn open_module() -> Pkcs11 {
    let path = std::env::var_os(MODULE).expect("module path in the environment");
    let p = Pkcs11::new(&path).unwrap_or_else(|e| panic!("load {}: {e}", Path::new(&path).display()));
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("C_Initialize");
    p
}

/// A R/W session on the first initialised token, logged in as the user.
fn user_session(p: &Pkcs11) -> Session {
    let slot = *p.get_slots_with_initialized_token().expect("C_GetSlotList").first().expect("an initialised token");
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::User, Some(&AuthPin::from(USER_PIN))).expect("C_Login");
    s
}

/// Initialises the token on the empty slot and its user PIN.
fn child_init() -> i32 {
    let p = open_module();
    let slots = p.get_all_slots().expect("C_GetSlotList");
    let slot = *slots.first().expect("the empty slot");
    p.init_token(slot, &AuthPin::from(SO_PIN), "durable").expect("C_InitToken");
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::So, Some(&AuthPin::from(SO_PIN))).expect("SO C_Login");
    s.init_pin(&AuthPin::from(USER_PIN)).expect("C_InitPIN");
    println!("INITIALISED");
    0
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Generates token AES keys labelled `<prefix><n>` for n from START, acknowledging each.
fn child_gen() -> i32 {
    let prefix = std::env::var(PREFIX).unwrap_or_else(|_| "k".into());
    let start = env_u64(START);
    let count = env_u64(COUNT);
    let p = open_module();
    let s = user_session(&p);
    let mut out = std::io::stdout().lock();
    if let Some(go) = std::env::var_os(GO) {
        out.write_all(b"READY\n").expect("write READY");
        out.flush().expect("flush READY");
        let deadline = Instant::now() + CHILD_LIMIT;
        while !Path::new(&go).exists() {
            assert!(Instant::now() < deadline, "no go signal");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut n = start;
    while count == 0 || n < start + count {
        let label = format!("{prefix}{n}");
        let template = [
            Attribute::Token(true),
            Attribute::ValueLen(32u64.into()),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            // The oracle needs the value to check the key.
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        match s.generate_key(&Mechanism::AesKeyGen, &template) {
            Ok(_) => {
                // One write of one whole line, so the parent never sees half an ACK.
                out.write_all(format!("ACK:{label}\n").as_bytes()).expect("write ACK");
                out.flush().expect("flush ACK");
            }
            Err(e) => {
                let _ = out.write_all(format!("ERR:{label}:{e}\n").as_bytes());
                let _ = out.flush();
                return 3;
            }
        }
        n += 1;
    }
    0
}

/// Lists every object the user sees: `OBJ\t<label>\t<value_len>\t<check>`, where the check
/// is "ok" when an AES-GCM encryption by the module decrypts under the key's value with
/// the aes-gcm crate.
fn child_verify() -> i32 {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let p = open_module();
    let s = user_session(&p);
    let mut out = std::io::stdout().lock();
    let objects = s.find_objects(&[]).expect("C_FindObjects");
    for (i, h) in objects.into_iter().enumerate() {
        let attrs = s
            .get_attributes(
                h,
                &[AttributeType::Class, AttributeType::Label, AttributeType::ValueLen, AttributeType::Value],
            )
            .expect("C_GetAttributeValue");
        let (mut class, mut label, mut value_len, mut value) = (None, None, None, None);
        for a in attrs {
            match a {
                Attribute::Class(c) => class = Some(c),
                Attribute::Label(l) => label = Some(String::from_utf8_lossy(&l).into_owned()),
                Attribute::ValueLen(v) => value_len = Some(*v),
                Attribute::Value(v) => value = Some(v),
                _ => {}
            }
        }
        let check = (|| -> Result<(), String> {
            if class != Some(ObjectClass::SECRET_KEY) {
                return Err(format!("class {class:?}"));
            }
            let key = value.as_ref().ok_or("no CKA_VALUE")?;
            let label = label.as_deref().unwrap_or_default();
            let mut iv = [0u8; 12];
            iv[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let aad = format!("aad of {label}").into_bytes();
            let msg = format!("a message for {label}, longer than one block").into_bytes();
            let params = GcmParams::new(&mut iv, &aad, 128u64.into()).map_err(|e| e.to_string())?;
            let ct = s.encrypt(&Mechanism::AesGcm(params), h, &msg).map_err(|e| format!("C_Encrypt: {e}"))?;
            let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| format!("key of {} bytes", key.len()))?;
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let plain = cipher
                .decrypt(aes_gcm::Nonce::from_slice(&nonce), Payload { msg: &ct, aad: &aad })
                .map_err(|_| "the oracle rejects the module's AES-GCM ciphertext".to_string())?;
            if plain != msg {
                return Err("the oracle decrypts to something else".into());
            }
            Ok(())
        })();
        let line = format!(
            "OBJ\t{}\t{}\t{}\n",
            label.as_deref().unwrap_or("<none>"),
            value_len.map(|v| v.to_string()).unwrap_or_else(|| "<none>".into()),
            match check {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("bad: {e}"),
            }
        );
        out.write_all(line.as_bytes()).expect("write");
    }
    out.write_all(b"END\n").expect("write");
    out.flush().expect("flush");
    0
}

// ---------------------------------------------------------------------------------------
// The parent side.

struct Fixture {
    dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
    /// The test function the children re-enter.
    test: &'static str,
}

/// One object as a verifying child saw it.
#[derive(Debug)]
struct Seen {
    value_len: String,
    check: String,
}

impl Fixture {
    fn new(test: &'static str) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = dir.path().join("kmstoken.toml");
        let store = dir.path().join("store");
        std::fs::write(
            &conf,
            format!("keystore = \"{}\"\n[argon2]\nmemory_kib = 64\niterations = 1\n", store.display()),
        )
        .expect("write configuration");
        Fixture { dir, conf, module: module_path(), test }
    }

    /// Starts this test binary again as a child in `role`; its stderr goes to a file.
    fn spawn(&self, role: &str, name: &str, env: &[(&str, String)]) -> (Child, PathBuf) {
        let err_path = self.dir.path().join(format!("{name}.stderr"));
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.args([self.test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE, role)
            .env(MODULE, &self.module)
            .env("KMSTOKEN_CONF", &self.conf)
            .env_remove("SOFTHSM2_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        (cmd.spawn().expect("start the child"), err_path)
    }

    /// Runs a child to its end; panics unless it succeeds. Returns its stdout.
    fn run(&self, role: &str, name: &str, env: &[(&str, String)]) -> String {
        let (mut child, err_path) = self.spawn(role, name, env);
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
            s
        });
        let status = wait_limited(&mut child, name);
        let out = reader.join().expect("reader");
        assert!(
            status.success(),
            "child {name} ({role}) failed: {status}\n--- stdout ---\n{out}\n--- stderr ---\n{}",
            slurp(&err_path)
        );
        out
    }

    fn init(&self) {
        // A child that ran no test (a wrong test name) would succeed without a word.
        let out = self.run("init", "init", &[]);
        assert!(out.contains("INITIALISED"), "the initialising child did not run:\n{out}");
    }

    /// Every object the user sees, by label (a label seen twice is an error).
    fn objects(&self, name: &str) -> BTreeMap<String, Seen> {
        let out = self.run("verify", name, &[]);
        assert!(out.lines().any(|l| l == "END"), "the verifying child did not finish:\n{out}");
        let mut seen = BTreeMap::new();
        for l in out.lines().filter_map(|l| l.strip_prefix("OBJ\t")) {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "odd line {l:?}");
            let prev = seen.insert(f[0].to_string(), Seen { value_len: f[1].to_string(), check: f[2].to_string() });
            assert!(prev.is_none(), "two objects labelled {:?}", f[0]);
        }
        seen
    }
}

fn slurp(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn wait_limited(child: &mut Child, name: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + CHILD_LIMIT;
    loop {
        if let Some(st) = child.try_wait().expect("wait for the child") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {name} did not finish within {CHILD_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a generating child said, as the parent reads it.
#[derive(Debug)]
enum Said {
    Ready,
    Ack(String, Instant),
    Err(String),
}

/// Reads a child's stdout line by line and passes on each ACK (only whole lines, ending
/// in a newline) with the time it arrived; READY and ERR lines are passed on too.
fn ack_reader(child: &mut Child) -> (mpsc::Receiver<Said>, std::thread::JoinHandle<()>) {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if !line.ends_with('\n') {
                break; // cut off by the kill: not an acknowledgement
            }
            // libtest may print on the same line before the child's first write.
            let said = if let Some(i) = line.find("ACK:") {
                Said::Ack(line[i + 4..].trim_end().to_string(), Instant::now())
            } else if let Some(i) = line.find("ERR:") {
                Said::Err(line[i + 4..].trim_end().to_string())
            } else if line.contains("READY") {
                Said::Ready
            } else {
                continue;
            };
            let _ = tx.send(said);
        }
    });
    (rx, t)
}

/// Checks that every object is a complete key: a label, CKA_VALUE_LEN 32 and a working
/// AES-GCM encryption.
fn assert_complete(objects: &BTreeMap<String, Seen>) {
    for (label, o) in objects {
        assert!(!label.is_empty() && label != "<none>", "an object without a label: {o:?}");
        assert_eq!(o.value_len, "32", "key {label}: CKA_VALUE_LEN");
        assert_eq!(o.check, "ok", "key {label}: AES-GCM check");
    }
}

#[test]
fn sigkill_mid_generation_loses_no_acknowledged_key() {
    child_dispatch();
    let f = Fixture::new("sigkill_mid_generation_loses_no_acknowledged_key");
    f.init();

    let mut acked: BTreeSet<String> = BTreeSet::new();
    // The one key per round that may have been committed but not yet acknowledged.
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    // Kill after this many acknowledgements (or 1.5 s), then this much later.
    let rounds = [(5usize, Duration::ZERO), (23, Duration::from_micros(700)), (50, Duration::from_micros(2300))];
    for (round, (target, delay)) in rounds.iter().enumerate() {
        let start = (round as u64 + 1) * 100_000;
        let name = format!("gen{round}");
        let (mut child, err_path) = f.spawn("gen", &name, &[(START, start.to_string()), (PREFIX, "k".into())]);
        let (rx, reader) = ack_reader(&mut child);

        let mut this_round = Vec::new();
        let mut first_ack: Option<Instant> = None;
        let begun = Instant::now();
        while this_round.len() < *target {
            if first_ack.is_some_and(|t| t.elapsed() > Duration::from_millis(1500)) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Said::Ack(label, at)) => {
                    first_ack.get_or_insert(at);
                    this_round.push(label);
                }
                Ok(Said::Ready) => {}
                Ok(Said::Err(e)) => panic!("round {round}: the generating child failed: {e}\n{}", slurp(&err_path)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(st) = child.try_wait().expect("try_wait") {
                        panic!("round {round}: the generating child ended early ({st}):\n{}", slurp(&err_path));
                    }
                    assert!(begun.elapsed() < CHILD_LIMIT, "round {round}: no key acknowledged in {CHILD_LIMIT:?}");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("round {round}: the child's stdout closed early:\n{}", slurp(&err_path))
                }
            }
        }
        if !delay.is_zero() {
            std::thread::sleep(*delay);
        }
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        assert!(!status.success(), "round {round}: the child was not killed ({status})");
        reader.join().expect("reader");
        // Lines the child acknowledged before the kill landed count as well.
        for msg in rx.try_iter() {
            match msg {
                Said::Ack(label, _) => this_round.push(label),
                Said::Ready => {}
                Said::Err(e) => panic!("round {round}: the generating child failed: {e}\n{}", slurp(&err_path)),
            }
        }
        assert!(!this_round.is_empty(), "round {round}: nothing acknowledged");
        let last: u64 = this_round.last().unwrap()[1..].parse().expect("label number");
        in_flight.insert(format!("k{}", last + 1));
        eprintln!("round {round}: SIGKILL after {} acknowledged keys", this_round.len());
        acked.extend(this_round);

        // A fresh process finds every acknowledged key, complete, and nothing else.
        let objects = f.objects(&format!("verify{round}"));
        let missing: Vec<&String> = acked.iter().filter(|l| !objects.contains_key(*l)).collect();
        assert!(missing.is_empty(), "round {round}: acknowledged keys lost after SIGKILL: {missing:?}");
        let unexpected: Vec<&String> =
            objects.keys().filter(|l| !acked.contains(*l) && !in_flight.contains(*l)).collect();
        assert!(unexpected.is_empty(), "round {round}: objects nobody made: {unexpected:?}");
        assert_complete(&objects);
        eprintln!("round {round}: {} keys on the token, {} acknowledged in all", objects.len(), acked.len());
    }
    assert!(acked.len() >= 3, "too few keys acknowledged to mean anything: {}", acked.len());
}

#[test]
fn concurrent_processes_generate_without_errors() {
    child_dispatch();
    let f = Fixture::new("concurrent_processes_generate_without_errors");
    f.init();
    const PER_CHILD: usize = 300;
    let go = f.dir.path().join("go");
    // Both open the module at once (C_Initialize and login contend too), then wait at a
    // barrier so that their writes overlap.
    let mut kids: Vec<_> = ["a", "b"]
        .iter()
        .map(|prefix| {
            let env = [
                (PREFIX, prefix.to_string()),
                (START, "0".into()),
                (COUNT, PER_CHILD.to_string()),
                (GO, go.display().to_string()),
            ];
            let (mut child, err) = f.spawn("gen", &format!("gen-{prefix}"), &env);
            let (rx, reader) = ack_reader(&mut child);
            (*prefix, child, err, rx, reader)
        })
        .collect();
    for (prefix, child, err, rx, _) in kids.iter_mut() {
        match rx.recv_timeout(CHILD_LIMIT) {
            Ok(Said::Ready) => {}
            other => {
                let _ = child.kill();
                panic!("child {prefix} did not get ready: {other:?}\n{}", slurp(err));
            }
        }
    }
    std::fs::write(&go, b"").expect("go signal");

    let mut all = BTreeSet::new();
    let mut spans = Vec::new();
    for (prefix, mut child, err, rx, reader) in kids {
        let status = wait_limited(&mut child, prefix);
        reader.join().expect("reader");
        let mut acked = Vec::new();
        let mut times = Vec::new();
        for msg in rx.try_iter() {
            match msg {
                Said::Ack(label, at) => {
                    acked.push(label);
                    times.push(at);
                }
                Said::Ready => {}
                Said::Err(e) => panic!("child {prefix} got an error while the other wrote too: {e}\n{}", slurp(&err)),
            }
        }
        assert!(status.success(), "child {prefix} failed ({status}):\n{}", slurp(&err));
        assert_eq!(acked.len(), PER_CHILD, "child {prefix} acknowledged {} keys", acked.len());
        let log = slurp(&err);
        assert!(!log.contains("locked") && !log.contains("ERROR"), "child {prefix} logged errors:\n{log}");
        spans.push((times[0], times[times.len() - 1]));
        all.extend(acked);
    }
    assert_eq!(all.len(), 2 * PER_CHILD);
    // Whether the two runs of acknowledgements overlap is up to SQLite's busy handler
    // (a waiting writer backs off, so a short run of one may end before the other gets
    // in); what matters is that the waiting one waited instead of failing.
    let ((a0, a1), (b0, b1)) = (spans[0], spans[1]);
    eprintln!("acknowledgements overlapped: {}", a0 < b1 && b0 < a1);

    let objects = f.objects("verify");
    let found: BTreeSet<String> = objects.keys().cloned().collect();
    assert_eq!(found, all, "the keys on the token are not those both processes made");
    assert_complete(&objects);
}
