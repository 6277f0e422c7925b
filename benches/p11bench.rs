//! p11bench: a benchmark of PKCS#11 modules, kmstoken beside SoftHSM2.
//!
//! ```sh
//! cargo bench --bench p11bench -- --softhsm /usr/lib/softhsm/libsofthsm2.so
//! cargo bench --bench p11bench -- --quick --only 'aes|find'
//! ```
//!
//! The parent process runs every module in child processes of its own (this binary again,
//! with `--child ROLE`), one module after the other, alternating, and reads their results
//! as JSON lines from their stdout. So the peak memory (VmHWM) is per module, and a crash or
//! a hang of one module costs only its own cells of the table. Every child has a wall-clock
//! cap and every measurement a time budget; nothing here asserts on timings.
//!
//! A child configures its module through the environment only (`KMSTOKEN_CONF`,
//! `SOFTHSM2_CONF`, `HOME`, `XDG_*`, all pointing into a temporary directory), initialises a
//! token on the first slot whose token is not initialised, and asks the module for its
//! mechanism list: a scenario whose mechanisms are not listed is reported as "n/a", so a
//! module picks up scenarios as soon as it lists their mechanisms. Any PKCS#11 module can
//! be measured: `--kmstoken PATH` and `--softhsm PATH` name the two columns.
//!
//! Measurement: per scenario and thread count, a warm-up round, then several timed rounds;
//! every thread has its own session and runs the operation in a loop until the round's
//! deadline. ops/s is the median over rounds of (operations / wall time of the round), p50
//! and p99 are latencies of single calls over all rounds (a log-linear histogram, ~1.5 %
//! resolution, so that recording costs no memory that would show in VmHWM). Calls go
//! through the `cryptoki` crate, which uses the two-call length convention for
//! C_Encrypt / C_Decrypt / C_Sign, as most clients do; both modules pay it alike.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const SO_PIN: &str = "bench-so-pin-1234";
const USER_PIN: &str = "bench-user-pin-1234";
const TOKEN_LABEL: &str = "p11bench";
const DEBIAN_SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// DER of the OID of prime256v1 (CKA_EC_PARAMS of a P-256 key).
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

// ------------------------------------------------------------------------------------------
// Options and timing

#[derive(Clone, Debug)]
struct Timing {
    /// Seconds of the untimed warm-up round.
    warmup: f64,
    /// Timed rounds per scenario and thread count.
    rounds: usize,
    /// Seconds of one timed round.
    round: f64,
    /// Seconds after which no further round starts (per scenario and thread count).
    budget: f64,
    /// Wall-clock cap of a scenario child (setup and both thread counts).
    child_cap: f64,
    /// Seconds a population child may spend creating keys for one size: the first module
    /// (the one under test) and the others (the reference, capped sooner: SoftHSM2 makes
    /// some 50-100 keys/s here, so 100 000 would take about half an hour).
    populate_budget_first: f64,
    populate_budget: f64,
    /// Wall-clock cap of a find child and of one cold-open child.
    find_cap: f64,
    cold_cap: f64,
    /// Cold-open processes per module and size.
    cold_rounds: usize,
    /// `openssl speed -seconds`.
    openssl_seconds: u32,
}

impl Timing {
    fn new(quick: bool) -> Timing {
        if quick {
            Timing {
                warmup: 0.1,
                rounds: 3,
                round: 0.25,
                budget: 5.0,
                child_cap: 90.0,
                populate_budget_first: 60.0,
                populate_budget: 60.0,
                find_cap: 60.0,
                cold_cap: 30.0,
                cold_rounds: 3,
                openssl_seconds: 1,
            }
        } else {
            Timing {
                warmup: 0.3,
                rounds: 5,
                round: 0.5,
                budget: 15.0,
                child_cap: 150.0,
                populate_budget_first: 480.0,
                populate_budget: 180.0,
                find_cap: 120.0,
                cold_cap: 60.0,
                cold_rounds: 5,
                openssl_seconds: 3,
            }
        }
    }
}

struct Opts {
    modules: Vec<Module>,
    quick: bool,
    only: Option<Regex>,
    json: Option<PathBuf>,
    keys: Vec<usize>,
    tmpdir: Option<PathBuf>,
    keep: bool,
    threads: usize,
    timing: Timing,
}

#[derive(Clone, Debug)]
struct Module {
    name: String,
    path: PathBuf,
    /// The copy the children load (see parent_main).
    copy: Option<PathBuf>,
}

const USAGE: &str = "\
usage: cargo bench --bench p11bench -- [options]
  --kmstoken PATH   the first module (default: target/release/libkmstoken.so of this crate)
  --softhsm PATH    the second module (default: /usr/lib/softhsm/libsofthsm2.so; 'none' to skip)
  --quick           small sizes (100 and 1 000 keys), fewer and shorter rounds
  --only REGEX      run only the scenarios whose name matches (e.g. 'aes-gcm|rsa')
  --keys N,M        key counts of the find and cold-open scenarios (default 10000,100000)
  --threads N       the multi-threaded column (default: number of cores)
  --json PATH       write the raw results as JSON to PATH
  --tmpdir DIR      where the temporary keystores go (default: the system temp dir)
  --keep            keep the temporary keystores
  --list            list the scenarios and exit";

fn die(msg: &str) -> ! {
    eprintln!("p11bench: {msg}\n{USAGE}");
    std::process::exit(2)
}

// ------------------------------------------------------------------------------------------
// Scenarios

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    AesGcmEnc(usize),
    AesGcmDec(usize),
    Hmac(usize),
    EcSign,
    EcVerify,
    RsaSign,
    RsaVerify,
    RsaOaepDec,
    GenAes,
    GenEcPair,
    Random(usize),
    /// Ed25519 (CKM_EDDSA, pure) sign or verify of 64 bytes.
    EdSign,
    EdVerify,
    /// ML-DSA-65 (CKM_ML_DSA, hedged) sign or verify of 64 bytes.
    MlDsaSign,
    MlDsaVerify,
    /// ML-KEM-768: C_EncapsulateKey or C_DecapsulateKey, the session key each makes
    /// destroyed in the same step.
    MlKemEncaps,
    MlKemDecaps,
    /// C_FindObjects among this many keys, by CKA_LABEL (false) or CKA_CLASS + CKA_LABEL.
    Find(usize, bool),
    Cold(usize),
    /// The same scenario with session keys (CKA_TOKEN false): no KMS life, no gate or
    /// audit, the baseline a token key's KMS path is measured against.
    Session(Box<Kind>),
}

#[derive(Clone, Debug)]
struct Scen {
    name: String,
    title: String,
    kind: Kind,
}

fn size_name(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn bytes_name(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
        n if n >= 1024 && n.is_multiple_of(1024) => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn scenarios(keys: &[usize]) -> Vec<Scen> {
    let mut v = Vec::new();
    let mut add = |name: String, title: String, kind: Kind| v.push(Scen { name, title, kind });
    for (n, tag) in [(64, "64"), (4096, "4k"), (1 << 20, "1m")] {
        add(format!("aes-gcm-enc-{tag}"), format!("AES-256-GCM encrypt {}", bytes_name(n)), Kind::AesGcmEnc(n));
    }
    for (n, tag) in [(64, "64"), (4096, "4k"), (1 << 20, "1m")] {
        add(format!("aes-gcm-dec-{tag}"), format!("AES-256-GCM decrypt {}", bytes_name(n)), Kind::AesGcmDec(n));
    }
    add("hmac-sha256-4k".into(), "HMAC-SHA256 4 KiB".into(), Kind::Hmac(4096));
    add("ecdsa-p256-sign".into(), "ECDSA P-256 sign".into(), Kind::EcSign);
    for (name, title, kind) in [
        ("aes-gcm-enc-64", "AES-256-GCM encrypt 64 B", Kind::AesGcmEnc(64)),
        ("aes-gcm-enc-4k", "AES-256-GCM encrypt 4 KiB", Kind::AesGcmEnc(4096)),
        ("hmac-sha256-4k", "HMAC-SHA256 4 KiB", Kind::Hmac(4096)),
        ("ecdsa-p256-sign", "ECDSA P-256 sign", Kind::EcSign),
    ] {
        add(format!("{name}-session"), format!("{title}, session key"), Kind::Session(Box::new(kind)));
    }
    add("ecdsa-p256-verify".into(), "ECDSA P-256 verify".into(), Kind::EcVerify);
    add("rsa2048-sign".into(), "RSA-2048 SHA256-RSA-PKCS sign".into(), Kind::RsaSign);
    add("rsa2048-verify".into(), "RSA-2048 SHA256-RSA-PKCS verify".into(), Kind::RsaVerify);
    add("rsa2048-oaep-dec".into(), "RSA-2048 OAEP decrypt".into(), Kind::RsaOaepDec);
    add("genkey-aes256-token".into(), "C_GenerateKey AES-256 token key".into(), Kind::GenAes);
    add("genkeypair-p256-token".into(), "C_GenerateKeyPair P-256 token pair".into(), Kind::GenEcPair);
    add("random-32".into(), "C_GenerateRandom 32 B".into(), Kind::Random(32));
    add("ed25519-sign".into(), "Ed25519 sign 64 B".into(), Kind::EdSign);
    add("ed25519-verify".into(), "Ed25519 verify 64 B".into(), Kind::EdVerify);
    add("mldsa65-sign".into(), "ML-DSA-65 sign 64 B".into(), Kind::MlDsaSign);
    add("mldsa65-verify".into(), "ML-DSA-65 verify 64 B".into(), Kind::MlDsaVerify);
    add("mlkem768-encaps".into(), "ML-KEM-768 C_EncapsulateKey (+ C_DestroyObject)".into(), Kind::MlKemEncaps);
    add("mlkem768-decaps".into(), "ML-KEM-768 C_DecapsulateKey (+ C_DestroyObject)".into(), Kind::MlKemDecaps);
    for &k in keys {
        add(
            format!("find-label-{}", size_name(k)),
            format!("C_FindObjects by label, {} keys", size_name(k)),
            Kind::Find(k, false),
        );
        add(
            format!("find-class-label-{}", size_name(k)),
            format!("C_FindObjects by class and label, {} keys", size_name(k)),
            Kind::Find(k, true),
        );
    }
    for &k in keys {
        add(
            format!("cold-open-{}", size_name(k)),
            format!("cold Initialize+Open+Login+Find, {} keys", size_name(k)),
            Kind::Cold(k),
        );
    }
    v
}

/// The mechanisms a scenario needs: every inner list must have one member listed.
fn needs(kind: &Kind) -> Vec<Vec<MechanismType>> {
    use MechanismType as M;
    match kind {
        Kind::AesGcmEnc(_) | Kind::AesGcmDec(_) => vec![vec![M::AES_KEY_GEN], vec![M::AES_GCM]],
        Kind::Hmac(_) => vec![vec![M::GENERIC_SECRET_KEY_GEN], vec![M::SHA256_HMAC]],
        Kind::EcSign | Kind::EcVerify => {
            vec![vec![M::ECC_KEY_PAIR_GEN], vec![M::ECDSA, M::ECDSA_SHA256]]
        }
        Kind::RsaSign | Kind::RsaVerify => {
            vec![vec![M::RSA_PKCS_KEY_PAIR_GEN], vec![M::SHA256_RSA_PKCS]]
        }
        Kind::RsaOaepDec => vec![vec![M::RSA_PKCS_KEY_PAIR_GEN], vec![M::RSA_PKCS_OAEP]],
        Kind::GenAes | Kind::Find(..) | Kind::Cold(_) => vec![vec![M::AES_KEY_GEN]],
        Kind::GenEcPair => vec![vec![M::ECC_KEY_PAIR_GEN]],
        Kind::Random(_) => vec![],
        Kind::EdSign | Kind::EdVerify => vec![vec![M::ECC_EDWARDS_KEY_PAIR_GEN], vec![M::EDDSA]],
        Kind::MlDsaSign | Kind::MlDsaVerify => vec![vec![M::ML_DSA_KEY_PAIR_GEN], vec![M::ML_DSA]],
        Kind::MlKemEncaps | Kind::MlKemDecaps => vec![vec![M::ML_KEM_KEY_PAIR_GEN], vec![M::ML_KEM]],
        Kind::Session(k) => needs(k),
    }
}

/// The names of the mechanisms missing from `listed`, or None when the scenario can run.
fn missing(kind: &Kind, listed: &[MechanismType]) -> Option<String> {
    let miss: Vec<String> = needs(kind)
        .iter()
        .filter(|alts| !alts.iter().any(|m| listed.contains(m)))
        .map(|alts| alts.iter().map(|m| format!("{m}")).collect::<Vec<_>>().join(" or "))
        .collect();
    (!miss.is_empty()).then(|| format!("not listed: {}", miss.join(", ")))
}

// ------------------------------------------------------------------------------------------
// Main

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let role = args.get(i + 1).cloned().unwrap_or_default();
        let code = child_main(&role, &args);
        std::process::exit(code);
    }
    let opts = parse_args(&args);
    parent_main(opts);
}

fn parse_args(args: &[String]) -> Opts {
    // The module cargo built with this bench binary (beside it in deps/: `cargo bench`
    // does not refresh target/release/), else target/release.
    let exe = std::env::current_exe().ok();
    let mut kmstoken = exe
        .iter()
        .flat_map(|e| e.ancestors().skip(1).take(2))
        .map(|d| d.join("libkmstoken.so"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/libkmstoken.so"));
    let mut softhsm = Some(PathBuf::from(DEBIAN_SOFTHSM));
    let mut quick = false;
    let mut only = None;
    let mut json = None;
    let mut keys = None;
    let mut tmpdir = None;
    let mut keep = false;
    let mut list = false;
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().unwrap_or_else(|| die(&format!("{name} needs a value")));
        match a.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--kmstoken" => kmstoken = PathBuf::from(val(a)),
            "--softhsm" => {
                let v = val(a);
                softhsm = (v != "none").then(|| PathBuf::from(v));
            }
            "--quick" => quick = true,
            "--only" => {
                let v = val(a);
                only = Some(Regex::new(&v).unwrap_or_else(|e| die(&format!("--only {v:?}: {e}"))));
            }
            "--json" => json = Some(PathBuf::from(val(a))),
            "--keys" => {
                let v = val(a);
                let k: Result<Vec<usize>, _> = v.split(',').map(|s| s.trim().parse()).collect();
                keys = Some(
                    k.ok()
                        .filter(|k| !k.is_empty() && k.iter().all(|&n| n > 0))
                        .unwrap_or_else(|| die(&format!("--keys {v:?}: expected N[,M...]"))),
                );
            }
            "--threads" => {
                let v = val(a);
                threads = v.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| die(&format!("--threads {v:?}")));
            }
            "--tmpdir" => tmpdir = Some(PathBuf::from(val(a))),
            "--keep" => keep = true,
            "--list" => list = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => die(&format!("unknown argument {other:?}")),
        }
    }
    let mut keys = keys.unwrap_or_else(|| if quick { vec![100, 1000] } else { vec![10_000, 100_000] });
    keys.sort_unstable();
    keys.dedup();
    if list {
        for s in scenarios(&keys).iter().filter(|s| only.as_ref().is_none_or(|r: &Regex| r.is_match(&s.name))) {
            println!("{:24} {}", s.name, s.title);
        }
        std::process::exit(0)
    }
    if !kmstoken.exists() {
        die(&format!(
            "kmstoken module {} not found: build it (cargo build --release) or pass --kmstoken PATH",
            kmstoken.display()
        ));
    }
    let mut modules = vec![Module { name: "kmstoken".into(), path: kmstoken, copy: None }];
    match softhsm {
        Some(p) if p.exists() => modules.push(Module { name: "SoftHSM2".into(), path: p, copy: None }),
        Some(p) => eprintln!(
            "p11bench: SoftHSM2 module {} not found; running kmstoken alone \
             (install softhsm2 or pass --softhsm PATH)",
            p.display()
        ),
        None => {}
    }
    Opts { modules, quick, only, json, keys, tmpdir, keep, threads, timing: Timing::new(quick) }
}

// ------------------------------------------------------------------------------------------
// Parent: orchestration

/// One cell of the table: one scenario, thread count and module.
#[derive(Clone, Debug, Default)]
struct Cell {
    /// ok, n/a, error, timeout, crash
    status: String,
    ops_per_s: Option<f64>,
    p50_ns: Option<u64>,
    p99_ns: Option<u64>,
    rounds: usize,
    ops: u64,
    note: String,
}

#[derive(Default)]
struct Results {
    cells: BTreeMap<(String, usize, String), Cell>,
    /// (module, process kind) -> max VmHWM in KiB
    memory: BTreeMap<(String, String), u64>,
    cold: BTreeMap<(String, String), Vec<Value>>,
    population: Vec<Value>,
    openssl: BTreeMap<String, f64>,
    /// Scenario -> ops/s of the same operation called on aws-lc-rs directly.
    library: BTreeMap<String, f64>,
    raw: Vec<Value>,
}

impl Results {
    fn mem(&mut self, module: &str, what: &str, kb: Option<u64>) {
        if let Some(kb) = kb {
            let e = self.memory.entry((module.to_string(), what.to_string())).or_insert(0);
            *e = (*e).max(kb);
        }
    }
}

struct ChildRun {
    lines: Vec<Value>,
    status: Option<ExitStatus>,
    timed_out: bool,
    vmhwm_kb: Option<u64>,
    stderr_tail: String,
    seconds: f64,
}

impl ChildRun {
    /// What went wrong, for the cells the child did not report; None when it finished.
    fn failure(&self, cap: f64) -> Option<(String, String)> {
        if self.timed_out {
            return Some(("timeout".into(), format!("killed at the {cap:.0} s cap")));
        }
        let done = self.lines.iter().any(|l| l["kind"] == "done");
        match self.status {
            Some(s) if s.success() && done => None,
            Some(s) => Some(("crash".into(), format!("child {s}: {}", last_line(&self.stderr_tail)))),
            None => Some(("crash".into(), "child did not start".into())),
        }
    }
}

fn last_line(s: &str) -> String {
    let l = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    l.chars().take(160).collect()
}

fn vmhwm_of(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The directory a module's child runs in: configuration files for both kinds of module,
/// a keystore / token directory and a home of its own.
fn module_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("home/data"))?;
    std::fs::create_dir_all(dir.join("home/config"))?;
    std::fs::create_dir_all(dir.join("store"))?;
    std::fs::create_dir_all(dir.join("tokens"))?;
    // kmstoken: default Argon2 parameters, so that C_Login costs what it costs in use.
    std::fs::write(
        dir.join("kmstoken.toml"),
        format!("keystore = {:?}\n[log]\nlevel = \"error\"\n", dir.join("store").display().to_string()),
    )?;
    std::fs::write(
        dir.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.join("tokens").display()
        ),
    )
}

fn run_child(
    module: &Module,
    dir: &Path,
    role: &str,
    extra: &[String],
    opts: &Opts,
    cap: f64,
    mut on_line: impl FnMut(&Value),
) -> ChildRun {
    let start = Instant::now();
    let exe = std::env::current_exe().expect("the bench binary");
    let home = dir.join("home");
    let mut cmd = Command::new(exe);
    cmd.arg("--child")
        .arg(role)
        .arg("--module")
        .arg(module.copy.as_ref().unwrap_or(&module.path))
        .arg("--threads")
        .arg(opts.threads.to_string())
        .args(extra)
        .env("KMSTOKEN_CONF", dir.join("kmstoken.toml"))
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if opts.quick {
        cmd.arg("--quick");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ChildRun {
                lines: vec![],
                status: None,
                timed_out: false,
                vmhwm_kb: None,
                stderr_tail: e.to_string(),
                seconds: 0.0,
            }
        }
    };
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
    let stderr = child.stderr.take().expect("stderr");
    let tail2 = tail.clone();
    let err_reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut t = tail2.lock().unwrap();
            t.push_back(l);
            if t.len() > 20 {
                t.pop_front();
            }
        }
    });
    let deadline = start + Duration::from_secs_f64(cap);
    let mut lines = Vec::new();
    let mut timed_out = false;
    let mut vmhwm = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            vmhwm = vmhwm_of(&pid);
            timed_out = true;
            let _ = child.kill();
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(500))) {
            Ok(l) => {
                if let Ok(v) = serde_json::from_str::<Value>(&l) {
                    if v.get("kind").is_some() {
                        on_line(&v);
                        lines.push(v);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().ok();
    let _ = reader.join();
    let _ = err_reader.join();
    if vmhwm.is_none() {
        vmhwm = lines.iter().rev().find(|l| l["kind"] == "mem").and_then(|l| l["vmhwm_kb"].as_u64());
    }
    let stderr_tail = tail.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n");
    ChildRun { lines, status, timed_out, vmhwm_kb: vmhwm, stderr_tail, seconds: start.elapsed().as_secs_f64() }
}

fn cell_from(v: &Value) -> Cell {
    Cell {
        status: v["status"].as_str().unwrap_or("ok").to_string(),
        ops_per_s: v["ops_per_s"].as_f64(),
        p50_ns: v["p50_ns"].as_u64(),
        p99_ns: v["p99_ns"].as_u64(),
        rounds: v["rounds"].as_u64().unwrap_or(0) as usize,
        ops: v["ops"].as_u64().unwrap_or(0),
        note: v["note"].as_str().unwrap_or("").to_string(),
    }
}

fn progress(module: &str, v: &Value) {
    match v["kind"].as_str() {
        Some("result") => {
            let c = cell_from(v);
            eprintln!(
                "  [{module}] {} x{}: {} {} p50 {} p99 {} {}",
                v["scenario"].as_str().unwrap_or("?"),
                v["threads"],
                c.status,
                c.ops_per_s.map(fmt_ops).unwrap_or_default(),
                c.p50_ns.map(fmt_ns).unwrap_or_default(),
                c.p99_ns.map(fmt_ns).unwrap_or_default(),
                c.note
            );
        }
        Some("progress") => {
            eprintln!("  [{module}] populated {} keys in {:.0} s", v["count"], v["seconds"].as_f64().unwrap_or(0.0))
        }
        Some("note") => eprintln!("  [{module}] {}", v["text"].as_str().unwrap_or("")),
        _ => {}
    }
}

fn parent_main(mut opts: Opts) {
    let started = Instant::now();
    let all = scenarios(&opts.keys);
    let selected: Vec<Scen> =
        all.iter().filter(|s| opts.only.as_ref().is_none_or(|r| r.is_match(&s.name))).cloned().collect();
    if selected.is_empty() {
        die("--only matches no scenario (see --list)");
    }
    let base = {
        let mut b = tempfile::Builder::new();
        b.prefix("p11bench-");
        match &opts.tmpdir {
            Some(d) => b.tempdir_in(d),
            None => b.tempdir(),
        }
        .unwrap_or_else(|e| die(&format!("temporary directory: {e}")))
    };
    eprintln!(
        "p11bench: modules {}; {} thread(s) for the parallel column; keystores in {}",
        opts.modules.iter().map(|m| format!("{} ({})", m.name, m.path.display())).collect::<Vec<_>>().join(", "),
        opts.threads,
        base.path().display()
    );
    // The children load copies taken now, so that a rebuild of a module during the run
    // (target/release is shared with whoever builds) cannot mix two builds in one table.
    for m in opts.modules.iter_mut() {
        let dir = base.path().join("modules").join(&m.name);
        let copy = dir.join(m.path.file_name().unwrap_or_default());
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::copy(&m.path, &copy)) {
            Ok(_) => m.copy = Some(copy),
            Err(e) => eprintln!("p11bench: cannot copy {}: {e}; loading it in place", m.path.display()),
        }
    }
    let mut res = Results::default();

    // openssl speed, single-threaded, as the reference for the crypto engine.
    if selected.iter().any(|s| matches!(s.kind, Kind::AesGcmEnc(4096) | Kind::EcSign | Kind::RsaSign)) {
        res.openssl = openssl_speed(opts.timing.openssl_seconds);
    }
    // The crypto library's own calls, for the algorithms openssl speed does not cover.
    for s in &selected {
        if let Some(ops) = raw_library(&s.kind, opts.timing.openssl_seconds) {
            res.library.insert(s.name.clone(), ops);
        }
    }

    // Scenarios run in a child per module and scenario, modules alternating (and which
    // goes first alternating too, so that neither always runs on a warmer machine).
    let crypto: Vec<&Scen> = selected.iter().filter(|s| !matches!(s.kind, Kind::Find(..) | Kind::Cold(_))).collect();
    for (i, s) in crypto.iter().enumerate() {
        eprintln!("p11bench: {} ({:.0} s so far)", s.name, started.elapsed().as_secs_f64());
        let mut order: Vec<&Module> = opts.modules.iter().collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for m in order {
            let dir = base.path().join(&m.name).join(&s.name);
            if let Err(e) = module_dir(&dir) {
                die(&format!("{}: {e}", dir.display()))
            }
            let cap = opts.timing.child_cap;
            let run = run_child(m, &dir, "scenario", &["--scenario".into(), s.name.clone()], &opts, cap, |v| {
                progress(&m.name, v)
            });
            absorb(&mut res, m, std::slice::from_ref(&s.name), &run, cap, &opts, "scenario processes");
            if !opts.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }

    // Keys for the find and cold-open scenarios: one keystore per module, grown size by
    // size through the PKCS#11 API, reused by the find and cold-open children.
    let mut populated: BTreeMap<String, usize> = BTreeMap::new();
    for &size in &opts.keys {
        let finds: Vec<&Scen> = selected.iter().filter(|s| matches!(s.kind, Kind::Find(n, _) if n == size)).collect();
        let cold = selected.iter().find(|s| s.kind == Kind::Cold(size));
        if finds.is_empty() && cold.is_none() {
            continue;
        }
        let names: Vec<String> = finds.iter().copied().chain(cold).map(|s| s.name.clone()).collect();
        let mut counts: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for m in &opts.modules {
            let dir = base.path().join(&m.name).join("keys");
            if let Err(e) = module_dir(&dir) {
                die(&format!("{}: {e}", dir.display()))
            }
            let from = populated.get(&m.name).copied().unwrap_or(0);
            let mut count = from;
            let mut note = String::new();
            if from < size {
                eprintln!(
                    "p11bench: populating {} to {} keys ({:.0} s so far)",
                    m.name,
                    size,
                    started.elapsed().as_secs_f64()
                );
                let budget = if m.name == opts.modules[0].name {
                    opts.timing.populate_budget_first
                } else {
                    opts.timing.populate_budget
                };
                let cap = budget + 60.0;
                let mut na = None;
                let run = run_child(
                    m,
                    &dir,
                    "populate",
                    &[
                        "--from".into(),
                        from.to_string(),
                        "--to".into(),
                        size.to_string(),
                        "--budget".into(),
                        budget.to_string(),
                        "--populate-threads".into(),
                        opts.threads.to_string(),
                    ],
                    &opts,
                    cap,
                    |v| {
                        progress(&m.name, v);
                        if let Some(c) = v["count"].as_u64() {
                            count = count.max(c as usize);
                        }
                        if v["kind"] == "na" {
                            na = v["note"].as_str().map(str::to_string);
                        }
                    },
                );
                res.mem(&m.name, "population process", run.vmhwm_kb);
                let fin = run.lines.iter().find(|l| l["kind"] == "populated").cloned();
                let capped = fin.as_ref().is_some_and(|f| f["capped"] == true);
                let seconds = fin.as_ref().and_then(|f| f["seconds"].as_f64()).unwrap_or(run.seconds);
                res.population.push(json!({
                    "module": m.name, "from": from, "to": size, "count": count,
                    "seconds": seconds, "capped": capped || run.timed_out,
                    "failure": run.lines.iter().find(|l| l["kind"] == "error")
                        .and_then(|l| l["note"].as_str()).map(str::to_string)
                        .or(run.failure(cap).map(|f| f.1)),
                }));
                if let Some(na) = na {
                    for n in &names {
                        for t in thread_counts(&opts, n) {
                            res.cells.insert(
                                (n.clone(), t, m.name.clone()),
                                Cell { status: "n/a".into(), note: na.clone(), ..Cell::default() },
                            );
                        }
                    }
                    counts.insert(m.name.clone(), (0, String::new()));
                    continue;
                }
                let error = run
                    .lines
                    .iter()
                    .find(|l| l["kind"] == "error")
                    .and_then(|l| l["note"].as_str())
                    .map(str::to_string);
                let failure = run.failure(cap);
                if let Some(why) = error.clone().or(failure.clone().map(|f| f.1)) {
                    note = format!("population stopped: {why}");
                }
                if count == 0 {
                    let st = failure.map_or("error".to_string(), |f| f.0);
                    for n in &names {
                        for t in thread_counts(&opts, n) {
                            res.cells.insert(
                                (n.clone(), t, m.name.clone()),
                                Cell { status: st.clone(), note: note.clone(), ..Cell::default() },
                            );
                        }
                    }
                    counts.insert(m.name.clone(), (0, String::new()));
                    continue;
                }
                if count < size {
                    let why = if error.is_none() && run.failure(cap).is_none() {
                        format!("population capped at {budget:.0} s")
                    } else {
                        note.clone()
                    };
                    note = format!("only {count} keys ({why})");
                }
            }
            populated.insert(m.name.clone(), count);
            counts.insert(m.name.clone(), (count, note));
        }
        // Finds, each in a warm process.
        for f in finds {
            for m in &opts.modules {
                let (count, note) = counts[&m.name].clone();
                if count == 0 {
                    continue;
                }
                let dir = base.path().join(&m.name).join("keys");
                let cap = opts.timing.find_cap;
                let run = run_child(
                    m,
                    &dir,
                    "find",
                    &["--scenario".into(), f.name.clone(), "--count".into(), count.to_string()],
                    &opts,
                    cap,
                    |v| progress(&m.name, v),
                );
                absorb(
                    &mut res,
                    m,
                    std::slice::from_ref(&f.name),
                    &run,
                    cap,
                    &opts,
                    &format!("find process, {} keys", size_name(size)),
                );
                if !note.is_empty() {
                    for t in thread_counts(&opts, &f.name) {
                        if let Some(c) = res.cells.get_mut(&(f.name.clone(), t, m.name.clone())) {
                            c.note = join_notes(&note, &c.note);
                        }
                    }
                }
            }
        }
        // Cold opens: a new process each, modules alternating.
        if let Some(c) = cold {
            let mut dead: BTreeMap<String, String> = BTreeMap::new();
            for r in 0..opts.timing.cold_rounds {
                for m in &opts.modules {
                    let (count, _) = counts[&m.name].clone();
                    if count == 0 || dead.contains_key(&m.name) {
                        continue;
                    }
                    let dir = base.path().join(&m.name).join("keys");
                    let cap = opts.timing.cold_cap;
                    let run = run_child(m, &dir, "cold", &["--count".into(), count.to_string()], &opts, cap, |_| {});
                    res.mem(&m.name, &format!("cold open, {} keys", size_name(size)), run.vmhwm_kb);
                    match run.lines.iter().find(|l| l["kind"] == "cold") {
                        Some(v) if run.failure(cap).is_none() => {
                            eprintln!(
                                "  [{}] {} #{}: {}",
                                m.name,
                                c.name,
                                r + 1,
                                fmt_ns(v["total_ns"].as_u64().unwrap_or(0))
                            );
                            res.cold.entry((c.name.clone(), m.name.clone())).or_default().push(v.clone());
                        }
                        _ => {
                            let (st, why) = run.failure(cap).unwrap_or(("error".into(), last_line(&run.stderr_tail)));
                            let why = run
                                .lines
                                .iter()
                                .find(|l| l["kind"] == "error")
                                .and_then(|l| l["note"].as_str())
                                .map(str::to_string)
                                .unwrap_or(why);
                            eprintln!("  [{}] {} #{}: {st}: {why}", m.name, c.name, r + 1);
                            dead.insert(m.name.clone(), format!("{st}: {why}"));
                        }
                    }
                }
            }
            for m in &opts.modules {
                let (count, note) = counts[&m.name].clone();
                if count == 0 {
                    continue;
                }
                let samples = res.cold.get(&(c.name.clone(), m.name.clone())).cloned().unwrap_or_default();
                let mut cell = cold_cell(&samples, &opts);
                if let Some(d) = dead.get(&m.name) {
                    if samples.is_empty() {
                        cell.status = if d.starts_with("timeout") { "timeout" } else { "error" }.into();
                    }
                    cell.note = join_notes(&cell.note, d);
                }
                cell.note = join_notes(&note, &cell.note);
                res.cells.insert((c.name.clone(), 1, m.name.clone()), cell);
            }
        }
    }

    let elapsed = started.elapsed().as_secs_f64();
    let table = render(&opts, &selected, &res, elapsed);
    println!("{table}");
    if let Some(p) = &opts.json {
        let doc = json_doc(&opts, &selected, &res, elapsed);
        match std::fs::write(p, serde_json::to_string_pretty(&doc).unwrap() + "\n") {
            Ok(()) => eprintln!("p11bench: raw results in {}", p.display()),
            Err(e) => eprintln!("p11bench: {}: {e}", p.display()),
        }
    }
    if opts.keep {
        let kept = base.keep();
        eprintln!("p11bench: keystores kept in {}", kept.display());
    }
}

fn thread_counts(opts: &Opts, scenario: &str) -> Vec<usize> {
    if scenario.starts_with("cold-open") || opts.threads == 1 {
        vec![1]
    } else {
        vec![1, opts.threads]
    }
}

fn join_notes(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

/// Takes a child's result lines into the table, and marks what it did not report.
fn absorb(res: &mut Results, m: &Module, names: &[String], run: &ChildRun, cap: f64, opts: &Opts, mem_kind: &str) {
    res.mem(&m.name, mem_kind, run.vmhwm_kb);
    for v in &run.lines {
        let mut v = v.clone();
        v["module"] = json!(m.name);
        match v["kind"].as_str() {
            Some("result") => {
                let key = (
                    v["scenario"].as_str().unwrap_or("").to_string(),
                    v["threads"].as_u64().unwrap_or(1) as usize,
                    m.name.clone(),
                );
                res.cells.insert(key, cell_from(&v));
            }
            Some("na") | Some("error") => {
                let st = if v["kind"] == "na" { "n/a" } else { "error" };
                for n in names {
                    for t in thread_counts(opts, n) {
                        res.cells.entry((n.clone(), t, m.name.clone())).or_insert_with(|| Cell {
                            status: st.into(),
                            note: v["note"].as_str().unwrap_or("").to_string(),
                            ..Cell::default()
                        });
                    }
                }
            }
            _ => {}
        }
        res.raw.push(v);
    }
    if let Some((st, why)) = run.failure(cap) {
        eprintln!("  [{}] {st}: {why}", m.name);
        for n in names {
            for t in thread_counts(opts, n) {
                res.cells.entry((n.clone(), t, m.name.clone())).or_insert_with(|| Cell {
                    status: st.clone(),
                    note: why.clone(),
                    ..Cell::default()
                });
            }
        }
    }
}

fn cold_cell(samples: &[Value], opts: &Opts) -> Cell {
    if samples.is_empty() {
        return Cell { status: "error".into(), ..Cell::default() };
    }
    let mut t: Vec<u64> = samples.iter().filter_map(|v| v["total_ns"].as_u64()).collect();
    t.sort_unstable();
    let med = median_u64(&t);
    let mut note = format!("{} processes, p99 = max", t.len());
    if t.len() < opts.timing.cold_rounds {
        note = format!("{} of {} processes, p99 = max", t.len(), opts.timing.cold_rounds);
    }
    Cell {
        status: "ok".into(),
        ops_per_s: Some(1e9 / med as f64),
        p50_ns: Some(med),
        p99_ns: t.last().copied(),
        rounds: t.len(),
        ops: t.len() as u64,
        note,
    }
}

fn median_u64(sorted: &[u64]) -> u64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ------------------------------------------------------------------------------------------
// openssl speed

fn openssl_speed(seconds: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let secs = seconds.to_string();
    let runs: [(&str, Vec<&str>); 3] = [
        ("aes-gcm-enc-4k", vec!["speed", "-mr", "-evp", "aes-256-gcm", "-bytes", "4096", "-seconds", &secs]),
        ("ecdsa-p256-sign", vec!["speed", "-mr", "-seconds", &secs, "ecdsap256"]),
        ("rsa2048-sign", vec!["speed", "-mr", "-seconds", &secs, "rsa2048"]),
    ];
    for (name, args) in runs {
        eprintln!("p11bench: openssl {}", args.join(" "));
        let o = match Command::new("openssl").args(&args).stdin(Stdio::null()).output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("p11bench: openssl: {e}; no openssl comparison");
                return out;
            }
        };
        let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        for l in text.lines() {
            let f: Vec<&str> = l.split(':').collect();
            let v = match f.first().copied() {
                // +F:n:AES-256-GCM:bytes per second (one value per block size)
                Some("+F") if f.len() >= 4 => f[3].parse::<f64>().ok().map(|b| b / 4096.0),
                // +F4:n:bits:sign/s:verify/s   +F2:n:bits:sign/s:verify/s
                Some("+F4") | Some("+F2") if f.len() >= 5 => f[3].parse::<f64>().ok(),
                _ => None,
            };
            if let Some(v) = v {
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Output

fn fmt_ops(v: f64) -> String {
    if v >= 100.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", f / 1e6)
    } else {
        format!("{:.2} s", f / 1e9)
    }
}

fn fmt_cell(c: Option<&Cell>) -> (String, String, String) {
    match c {
        None => ("—".into(), "".into(), "".into()),
        Some(c) if c.ops_per_s.is_some() => (
            fmt_ops(c.ops_per_s.unwrap()),
            c.p50_ns.map(fmt_ns).unwrap_or_default(),
            c.p99_ns.map(fmt_ns).unwrap_or_default(),
        ),
        Some(c) => (c.status.clone(), "—".into(), "—".into()),
    }
}

fn machine() -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    (cores, model)
}

fn render(opts: &Opts, selected: &[Scen], res: &Results, elapsed: f64) -> String {
    let mut o = String::new();
    let (cores, model) = machine();
    let names: Vec<&str> = opts.modules.iter().map(|m| m.name.as_str()).collect();
    let two = names.len() == 2;
    o += &format!(
        "Machine: {cores} cores, {model}. Run: {}, {:.0} s. ops/s = median of rounds; \
         p50/p99 = latency of one call; ×{} = one session per thread.\n\n",
        if opts.quick { "--quick" } else { "full" },
        elapsed,
        opts.threads
    );
    let mut head = String::from("| scenario | thr |");
    let mut rule = String::from("|---|--:|");
    for n in &names {
        head += &format!(" {n} ops/s | p50 | p99 |");
        rule += "--:|--:|--:|";
    }
    if two {
        head += &format!(" {} / {} |", names[0], names[1]);
        rule += "--:|";
    }
    head += " notes |";
    rule += "---|";
    o += &head;
    o.push('\n');
    o += &rule;
    o.push('\n');
    for s in selected {
        for t in thread_counts(opts, &s.name) {
            let mut row = format!("| {} | {} |", s.title, t);
            let mut ops = Vec::new();
            let mut notes = Vec::new();
            for n in &names {
                let c = res.cells.get(&(s.name.clone(), t, n.to_string()));
                let (a, b, d) = fmt_cell(c);
                row += &format!(" {a} | {b} | {d} |");
                ops.push(c.and_then(|c| c.ops_per_s));
                if let Some(c) = c {
                    if !c.note.is_empty() {
                        notes.push(format!("{n}: {}", c.note.replace('|', "/")));
                    }
                }
            }
            if two {
                row += &match (ops[0], ops[1]) {
                    (Some(a), Some(b)) if b > 0.0 => format!(" {:.2} |", a / b),
                    _ => " — |".into(),
                };
            }
            row += &format!(" {} |", notes.join("; "));
            o += &row;
            o.push('\n');
        }
    }
    // Cold-open breakdown.
    if !res.cold.is_empty() {
        o += "\nCold open, median per step (dlopen+C_GetFunctionList / C_Initialize / slot lookup+C_OpenSession / C_Login / first C_FindObjects):\n\n";
        o += "| scenario | module | load | C_Initialize | open | C_Login | find | total |\n|---|---|--:|--:|--:|--:|--:|--:|\n";
        for ((scen, module), samples) in &res.cold {
            let med = |k: &str| {
                let mut v: Vec<u64> = samples.iter().filter_map(|s| s[k].as_u64()).collect();
                v.sort_unstable();
                if v.is_empty() {
                    "—".to_string()
                } else {
                    fmt_ns(median_u64(&v))
                }
            };
            o += &format!(
                "| {scen} | {module} | {} | {} | {} | {} | {} | {} |\n",
                med("load_ns"),
                med("init_ns"),
                med("open_ns"),
                med("login_ns"),
                med("find_ns"),
                med("total_ns")
            );
        }
    }
    if !res.population.is_empty() {
        o +=
            "\nPopulation (C_GenerateKey of token AES-256 keys, one key per call, one session per thread, as many threads as the parallel column):\n\n";
        o += "| module | keys | seconds | keys/s | |\n|---|--:|--:|--:|---|\n";
        for p in &res.population {
            let n = p["count"].as_u64().unwrap_or(0) - p["from"].as_u64().unwrap_or(0);
            let s = p["seconds"].as_f64().unwrap_or(0.0);
            o += &format!(
                "| {} | {} → {} | {:.1} | {} | {} |\n",
                p["module"].as_str().unwrap_or(""),
                p["from"],
                p["count"],
                s,
                if s > 0.0 { fmt_ops(n as f64 / s) } else { "—".into() },
                match (p["failure"].as_str(), p["capped"] == true) {
                    (Some(f), _) => f.replace('|', "/"),
                    (None, true) => format!("capped (target {})", p["to"]),
                    (None, false) => String::new(),
                }
            );
        }
    }
    if !res.memory.is_empty() {
        o += "\nPeak memory (VmHWM of the module's process, the bench harness included; max over processes of a kind):\n\n";
        let mut head = String::from("| process |");
        let mut rule = String::from("|---|");
        for n in &names {
            head += &format!(" {n} |");
            rule += "--:|";
        }
        o += &format!("{head}\n{rule}\n");
        let mut kinds: Vec<&String> = res.memory.keys().map(|(_, k)| k).collect();
        kinds.sort();
        kinds.dedup();
        for k in kinds {
            o += &format!("| {k} |");
            for n in &names {
                o += &match res.memory.get(&(n.to_string(), k.clone())) {
                    Some(kb) => format!(" {:.1} MiB |", *kb as f64 / 1024.0),
                    None => " — |".into(),
                };
            }
            o.push('\n');
        }
    }
    if !res.openssl.is_empty() {
        let first = &names[0];
        o += &format!(
            "\n{first} (1 thread) against `openssl speed` (1 thread, same machine, same run; target ≥ 85 %):\n\n"
        );
        o += &format!("| operation | openssl speed ops/s | {first} ops/s | {first} / openssl |\n|---|--:|--:|--:|\n");
        for (scen, label) in [
            ("aes-gcm-enc-4k", "AES-256-GCM encrypt 4 KiB (openssl speed -evp aes-256-gcm -bytes 4096)"),
            ("ecdsa-p256-sign", "ECDSA P-256 sign (openssl speed ecdsap256)"),
            ("rsa2048-sign", "RSA-2048 sign (openssl speed rsa2048)"),
        ] {
            let Some(os) = res.openssl.get(scen) else {
                continue;
            };
            let c = res.cells.get(&(scen.to_string(), 1, first.to_string()));
            let (k, pct) = match c.and_then(|c| c.ops_per_s) {
                Some(k) => (fmt_ops(k), format!("{:.0} %", 100.0 * k / os)),
                None => (c.map_or("—".into(), |c| c.status.clone()), "—".into()),
            };
            o += &format!("| {label} | {} | {k} | {pct} |\n", fmt_ops(*os));
        }
    }
    if !res.library.is_empty() {
        let first = &names[0];
        o += &format!(
            "\n{first} (1 thread, token keys) against the same operation on aws-lc-rs called directly (1 thread, same run):\n\n"
        );
        o += &format!("| operation | aws-lc-rs ops/s | {first} ops/s | {first} / aws-lc-rs |\n|---|--:|--:|--:|\n");
        for s in selected {
            let Some(lib) = res.library.get(&s.name) else {
                continue;
            };
            let c = res.cells.get(&(s.name.clone(), 1, first.to_string()));
            let (k, pct) = match c.and_then(|c| c.ops_per_s) {
                Some(k) => (fmt_ops(k), format!("{:.0} %", 100.0 * k / lib)),
                None => (c.map_or("—".into(), |c| c.status.clone()), "—".into()),
            };
            o += &format!("| {} | {} | {k} | {pct} |\n", s.title, fmt_ops(*lib));
        }
    }
    o
}

/// Ops/s of a scenario's operation on aws-lc-rs itself, for `seconds` on this thread;
/// None for the scenarios that have no such reference here.
fn raw_library(kind: &Kind, seconds: u32) -> Option<f64> {
    use aws_lc_rs::kem::{DecapsulationKey, ML_KEM_768};
    use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, PqdsaKeyPair, UnparsedPublicKey};
    let msg = [0x61u8; 64];
    let mut op: Box<dyn FnMut()> = match kind {
        Kind::EdSign | Kind::EdVerify => {
            let pair = Ed25519KeyPair::generate().ok()?;
            let sig = pair.sign(&msg);
            let public = pair.public_key().as_ref().to_vec();
            if *kind == Kind::EdSign {
                Box::new(move || {
                    std::hint::black_box(pair.sign(&msg));
                })
            } else {
                let sig = sig.as_ref().to_vec();
                Box::new(move || UnparsedPublicKey::new(&signature::ED25519, &public).verify(&msg, &sig).unwrap())
            }
        }
        Kind::MlDsaSign | Kind::MlDsaVerify => {
            let pair = PqdsaKeyPair::generate(&signature::ML_DSA_65_SIGNING).ok()?;
            let mut sig = vec![0u8; signature::ML_DSA_65_SIGNING.signature_len()];
            pair.sign(&msg, &mut sig).ok()?;
            let public = pair.public_key().as_ref().to_vec();
            if *kind == Kind::MlDsaSign {
                let mut out = sig.clone();
                Box::new(move || {
                    pair.sign(&msg, &mut out).unwrap();
                })
            } else {
                Box::new(move || UnparsedPublicKey::new(&signature::ML_DSA_65, &public).verify(&msg, &sig).unwrap())
            }
        }
        Kind::MlKemEncaps | Kind::MlKemDecaps => {
            let dk = DecapsulationKey::generate(&ML_KEM_768).ok()?;
            let ek = dk.encapsulation_key().ok()?;
            let (ct, _) = ek.encapsulate().ok()?;
            let ct = ct.as_ref().to_vec();
            if *kind == Kind::MlKemEncaps {
                Box::new(move || drop(ek.encapsulate().unwrap()))
            } else {
                Box::new(move || drop(dk.decapsulate(ct.as_slice().into()).unwrap()))
            }
        }
        _ => return None,
    };
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds.into()) {
        op();
        n += 1;
    }
    Some(n as f64 / start.elapsed().as_secs_f64())
}

fn json_doc(opts: &Opts, selected: &[Scen], res: &Results, elapsed: f64) -> Value {
    let (cores, model) = machine();
    let mut cells = Vec::new();
    for s in selected {
        for t in thread_counts(opts, &s.name) {
            for m in &opts.modules {
                if let Some(c) = res.cells.get(&(s.name.clone(), t, m.name.clone())) {
                    cells.push(json!({
                        "scenario": s.name, "title": s.title, "threads": t, "module": m.name,
                        "status": c.status, "ops_per_s": c.ops_per_s, "p50_ns": c.p50_ns,
                        "p99_ns": c.p99_ns, "rounds": c.rounds, "ops": c.ops, "note": c.note,
                    }));
                }
            }
        }
    }
    let memory: Vec<Value> =
        res.memory.iter().map(|((m, k), kb)| json!({"module": m, "process": k, "vmhwm_kb": kb})).collect();
    let cold: Vec<Value> =
        res.cold.iter().map(|((s, m), v)| json!({"scenario": s, "module": m, "samples": v})).collect();
    json!({
        "machine": {"cores": cores, "cpu": model},
        "quick": opts.quick,
        "threads": opts.threads,
        "seconds": elapsed,
        "modules": opts.modules.iter().map(|m| json!({"name": m.name, "path": m.path})).collect::<Vec<_>>(),
        "timing": format!("{:?}", opts.timing),
        "results": cells,
        "cold_open": cold,
        "population": res.population,
        "memory": memory,
        "openssl_speed_ops_per_s": res.openssl,
        "aws_lc_rs_ops_per_s": res.library,
        "child_lines": res.raw,
    })
}

// ------------------------------------------------------------------------------------------
// Child processes

fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn vmhwm_self() -> Option<u64> {
    vmhwm_of("self")
}

/// The peak memory so far, for the raw JSON (where a module's memory goes).
fn mem_stage(stage: &str) {
    emit(json!({"kind": "mem_stage", "stage": stage, "vmhwm_kb": vmhwm_self()}));
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn child_main(role: &str, args: &[String]) -> i32 {
    let module = PathBuf::from(arg(args, "--module").unwrap_or_default());
    let quick = args.iter().any(|a| a == "--quick");
    let timing = Timing::new(quick);
    let threads: usize = arg(args, "--threads").and_then(|t| t.parse().ok()).unwrap_or(1);
    let r = match role {
        "scenario" | "find" => {
            let name = arg(args, "--scenario").unwrap_or_default();
            let count: usize = arg(args, "--count").and_then(|c| c.parse().ok()).unwrap_or(0);
            child_scenario(&module, &name, count, threads, &timing)
        }
        "populate" => {
            let from = arg(args, "--from").and_then(|c| c.parse().ok()).unwrap_or(0);
            let to = arg(args, "--to").and_then(|c| c.parse().ok()).unwrap_or(0);
            let budget = arg(args, "--budget").and_then(|c| c.parse().ok()).unwrap_or(60.0);
            let threads = arg(args, "--populate-threads").and_then(|c| c.parse().ok()).unwrap_or(1);
            child_populate(&module, from, to, budget, threads)
        }
        "cold" => {
            let count = arg(args, "--count").and_then(|c| c.parse().ok()).unwrap_or(1);
            child_cold(&module, count)
        }
        other => Err(format!("unknown child role {other:?}")),
    };
    if let Err(e) = r {
        emit(json!({"kind": "error", "note": e}));
    }
    emit(json!({"kind": "mem", "vmhwm_kb": vmhwm_self()}));
    emit(json!({"kind": "done"}));
    0
}

/// A cryptoki error in a line: `C_EncryptInit: CKR_ARGUMENTS_BAD`.
fn ck(e: &cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, f) => {
            let mut name = String::from("CKR");
            for c in format!("{rv:?}").chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            format!("C_{f:?}: {name}")
        }
        other => other.to_string(),
    }
}

/// Names the call when the error does not (a PKCS#11 error names its function).
fn e2s(what: &'static str) -> impl Fn(cryptoki::error::Error) -> String {
    move |e| match e {
        cryptoki::error::Error::Pkcs11(..) => ck(&e),
        _ => format!("{what}: {}", ck(&e)),
    }
}

fn load(module: &Path) -> Result<Pkcs11, String> {
    let p = Pkcs11::new(module).map_err(|e| format!("load {}: {}", module.display(), ck(&e)))?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(e2s("C_Initialize"))?;
    Ok(p)
}

fn user_pin() -> AuthPin {
    AuthPin::from(USER_PIN)
}

/// The slot of the bench token, if one is initialised.
fn bench_slot(p: &Pkcs11) -> Result<Option<Slot>, String> {
    for s in p.get_slots_with_token().map_err(e2s("C_GetSlotList"))? {
        if let Ok(ti) = p.get_token_info(s) {
            if ti.token_initialized() && ti.label().trim_end() == TOKEN_LABEL {
                return Ok(Some(s));
            }
        }
    }
    Ok(None)
}

/// Initialises a token on the first slot whose token is not initialised, sets the user
/// PIN, and returns the token's slot (looked up again: SoftHSM2 renumbers it) with a
/// session logged in as the user.
fn init_token(p: &Pkcs11) -> Result<(Slot, Session), String> {
    let slots = p.get_all_slots().map_err(e2s("C_GetSlotList"))?;
    let free = slots
        .iter()
        .copied()
        .find(|&s| p.get_token_info(s).is_ok_and(|t| !t.token_initialized()))
        .ok_or("no slot with an uninitialised token")?;
    p.init_token(free, &AuthPin::from(SO_PIN), TOKEN_LABEL).map_err(e2s("C_InitToken"))?;
    let slot = bench_slot(p)?.ok_or("the initialised token is not in the slot list")?;
    {
        let s = p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?;
        s.login(UserType::So, Some(&AuthPin::from(SO_PIN))).map_err(e2s("C_Login(SO)"))?;
        s.init_pin(&user_pin()).map_err(e2s("C_InitPIN"))?;
        s.logout().map_err(e2s("C_Logout"))?;
    }
    let s = p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?;
    s.login(UserType::User, Some(&user_pin())).map_err(e2s("C_Login(user)"))?;
    Ok((slot, s))
}

/// Per-thread state of an operation.
struct Local {
    tid: u64,
    n: u64,
    rng: u64,
}

impl Local {
    fn new(tid: usize) -> Local {
        let seed = (tid as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ std::process::id() as u64
            ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Local { tid: tid as u64, n: 0, rng: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

type Op = dyn Fn(&Session, &mut Local) -> Result<(), String> + Sync;

fn secret_key_template(label: &str, token: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32u64.into()),
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn ec_templates(label: &str, token: bool) -> (Vec<Attribute>, Vec<Attribute>) {
    (
        vec![
            Attribute::Token(token),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
        vec![
            Attribute::Token(token),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
}

fn rsa_pair(s: &Session, sign: bool, label: &str) -> Result<(ObjectHandle, ObjectHandle), String> {
    let (pu, pr) = if sign {
        (Attribute::Verify(true), Attribute::Sign(true))
    } else {
        (Attribute::Encrypt(true), Attribute::Decrypt(true))
    };
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::ModulusBits(2048u64.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            pu,
            Attribute::Label(label.as_bytes().to_vec()),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            pr,
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
    .map_err(e2s("C_GenerateKeyPair(RSA-2048)"))
}

fn gcm_iv(l: &mut Local) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..4].copy_from_slice(&(l.tid as u32).to_be_bytes());
    iv[4..].copy_from_slice(&l.n.to_be_bytes());
    l.n += 1;
    iv
}

fn key_label(i: usize) -> String {
    format!("bench-key-{i:07}")
}

/// Sets up a scenario's keys and data; returns its operation and a note.
fn setup(s: &Session, kind: &Kind, listed: &[MechanismType], count: usize) -> Result<(Box<Op>, String), String> {
    match kind {
        Kind::Session(k) => setup_with(s, k, listed, count, false),
        k => setup_with(s, k, listed, count, true),
    }
}

/// `setup` with token keys (`token`) or session keys.
fn setup_with(
    s: &Session,
    kind: &Kind,
    listed: &[MechanismType],
    count: usize,
    token: bool,
) -> Result<(Box<Op>, String), String> {
    let mut note = String::new();
    let op: Box<Op> = match kind.clone() {
        Kind::AesGcmEnc(n) | Kind::AesGcmDec(n) => {
            let key = s
                .generate_key(&Mechanism::AesKeyGen, &secret_key_template("bench-aes", token))
                .map_err(e2s("C_GenerateKey(AES)"))?;
            let data = vec![0x5au8; n];
            if matches!(kind, Kind::AesGcmEnc(_)) {
                Box::new(move |s: &Session, l: &mut Local| {
                    let mut iv = gcm_iv(l);
                    let p = GcmParams::new(&mut iv, &[], 128u64.into()).map_err(e2s("GcmParams"))?;
                    s.encrypt(&Mechanism::AesGcm(p), key, &data).map(drop).map_err(e2s("C_Encrypt"))
                })
            } else {
                let mut iv = [7u8; 12];
                let p = GcmParams::new(&mut iv, &[], 128u64.into()).map_err(e2s("GcmParams"))?;
                let ct = s.encrypt(&Mechanism::AesGcm(p), key, &data).map_err(e2s("C_Encrypt"))?;
                let mut iv = [7u8; 12];
                let p = GcmParams::new(&mut iv, &[], 128u64.into()).map_err(e2s("GcmParams"))?;
                let pt = s.decrypt(&Mechanism::AesGcm(p), key, &ct).map_err(e2s("C_Decrypt"))?;
                if pt != data {
                    return Err("AES-GCM decrypt does not return the plaintext".into());
                }
                Box::new(move |s: &Session, _l: &mut Local| {
                    let mut iv = [7u8; 12];
                    let p = GcmParams::new(&mut iv, &[], 128u64.into()).map_err(e2s("GcmParams"))?;
                    s.decrypt(&Mechanism::AesGcm(p), key, &ct).map(drop).map_err(e2s("C_Decrypt"))
                })
            }
        }
        Kind::Hmac(n) => {
            let key = s
                .generate_key(
                    &Mechanism::GenericSecretKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        Attribute::ValueLen(32u64.into()),
                        Attribute::Token(token),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Sign(true),
                        Attribute::Verify(true),
                        Attribute::Label(b"bench-hmac".to_vec()),
                    ],
                )
                .map_err(e2s("C_GenerateKey(generic secret)"))?;
            let data = vec![0x33u8; n];
            Box::new(move |s: &Session, _l: &mut Local| {
                s.sign(&Mechanism::Sha256Hmac, key, &data).map(drop).map_err(e2s("C_Sign"))
            })
        }
        Kind::EcSign | Kind::EcVerify => {
            let (pt, prt) = ec_templates("bench-ec", token);
            let (pubk, privk) =
                s.generate_key_pair(&Mechanism::EccKeyPairGen, &pt, &prt).map_err(e2s("C_GenerateKeyPair(P-256)"))?;
            let raw = listed.contains(&MechanismType::ECDSA);
            if !raw {
                note = "CKM_ECDSA_SHA256 (CKM_ECDSA not listed)".into();
            }
            let mech = move || {
                if raw {
                    Mechanism::Ecdsa
                } else {
                    Mechanism::EcdsaSha256
                }
            };
            // A SHA-256 digest's worth of bytes: what openssl speed signs, too.
            let digest = vec![0x42u8; 32];
            let sig = s.sign(&mech(), privk, &digest).map_err(e2s("C_Sign"))?;
            s.verify(&mech(), pubk, &digest, &sig).map_err(e2s("C_Verify of a fresh signature"))?;
            if *kind == Kind::EcSign {
                Box::new(move |s: &Session, _l: &mut Local| {
                    s.sign(&mech(), privk, &digest).map(drop).map_err(e2s("C_Sign"))
                })
            } else {
                Box::new(move |s: &Session, _l: &mut Local| {
                    s.verify(&mech(), pubk, &digest, &sig).map_err(e2s("C_Verify"))
                })
            }
        }
        Kind::EdSign | Kind::EdVerify | Kind::MlDsaSign | Kind::MlDsaVerify => {
            use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
            use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
            let ed = matches!(kind, Kind::EdSign | Kind::EdVerify);
            let (gen, set) = if ed {
                (Mechanism::EccEdwardsKeyPairGen, Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]))
            } else {
                let set = cryptoki::object::MlDsaParameterSetType::ML_DSA_65;
                (Mechanism::MlDsaKeyPairGen, Attribute::ParameterSet(set.into()))
            };
            let public = [Attribute::Token(token), Attribute::Verify(true), set];
            let private = [Attribute::Token(token), Attribute::Private(true), Attribute::Sign(true)];
            let (pubk, privk) = s.generate_key_pair(&gen, &public, &private).map_err(e2s("C_GenerateKeyPair"))?;
            let mech = move || {
                if ed {
                    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                } else {
                    Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None))
                }
            };
            let msg = vec![0x61u8; 64];
            let sig = s.sign(&mech(), privk, &msg).map_err(e2s("C_Sign"))?;
            s.verify(&mech(), pubk, &msg, &sig).map_err(e2s("C_Verify of a fresh signature"))?;
            if matches!(kind, Kind::EdSign | Kind::MlDsaSign) {
                Box::new(move |s: &Session, _l: &mut Local| {
                    s.sign(&mech(), privk, &msg).map(drop).map_err(e2s("C_Sign"))
                })
            } else {
                Box::new(move |s: &Session, _l: &mut Local| {
                    s.verify(&mech(), pubk, &msg, &sig).map_err(e2s("C_Verify"))
                })
            }
        }
        Kind::MlKemEncaps | Kind::MlKemDecaps => {
            let set = cryptoki::object::MlKemParameterSetType::ML_KEM_768;
            let public = [Attribute::Token(token), Attribute::ParameterSet(set.into())];
            let private = [Attribute::Token(token), Attribute::Private(true)];
            let (pubk, privk) = s
                .generate_key_pair(&Mechanism::MlKemKeyPairGen, &public, &private)
                .map_err(e2s("C_GenerateKeyPair(ML-KEM)"))?;
            let template = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32u64.into()),
                Attribute::Token(false),
            ];
            let (ct, k) = s.encapsulate_key(&Mechanism::MlKem, pubk, &template).map_err(e2s("C_EncapsulateKey"))?;
            s.destroy_object(k).map_err(e2s("C_DestroyObject"))?;
            if *kind == Kind::MlKemEncaps {
                Box::new(move |s: &Session, _l: &mut Local| {
                    let (_, k) =
                        s.encapsulate_key(&Mechanism::MlKem, pubk, &template).map_err(e2s("C_EncapsulateKey"))?;
                    s.destroy_object(k).map_err(e2s("C_DestroyObject"))
                })
            } else {
                Box::new(move |s: &Session, _l: &mut Local| {
                    let k =
                        s.decapsulate_key(&Mechanism::MlKem, privk, &template, &ct).map_err(e2s("C_DecapsulateKey"))?;
                    s.destroy_object(k).map_err(e2s("C_DestroyObject"))
                })
            }
        }
        Kind::RsaSign | Kind::RsaVerify => {
            let (pubk, privk) = rsa_pair(s, true, "bench-rsa-sign")?;
            let msg = vec![0x17u8; 32];
            let sig = s.sign(&Mechanism::Sha256RsaPkcs, privk, &msg).map_err(e2s("C_Sign"))?;
            s.verify(&Mechanism::Sha256RsaPkcs, pubk, &msg, &sig).map_err(e2s("C_Verify of a fresh signature"))?;
            if *kind == Kind::RsaSign {
                Box::new(move |s: &Session, _l: &mut Local| {
                    s.sign(&Mechanism::Sha256RsaPkcs, privk, &msg).map(drop).map_err(e2s("C_Sign"))
                })
            } else {
                Box::new(move |s: &Session, _l: &mut Local| {
                    s.verify(&Mechanism::Sha256RsaPkcs, pubk, &msg, &sig).map_err(e2s("C_Verify"))
                })
            }
        }
        Kind::RsaOaepDec => {
            let (pubk, privk) = rsa_pair(s, false, "bench-rsa-oaep")?;
            let msg = vec![0x29u8; 32];
            let sha256 =
                || PkcsOaepParams::new(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, PkcsOaepSource::empty());
            let sha1 = || PkcsOaepParams::new(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, PkcsOaepSource::empty());
            // OAEP with SHA-256 when the module takes it (SoftHSM2 2.6 takes SHA-1 only).
            let (use256, ct) = match s.encrypt(&Mechanism::RsaPkcsOaep(sha256()), pubk, &msg) {
                Ok(ct) => (true, ct),
                Err(e256) => {
                    let ct = s
                        .encrypt(&Mechanism::RsaPkcsOaep(sha1()), pubk, &msg)
                        .map_err(|e| format!("C_Encrypt OAEP: SHA-256: {}; SHA-1: {}", ck(&e256), ck(&e)))?;
                    note = format!("OAEP with SHA-1 (SHA-256 refused: {})", ck(&e256));
                    (false, ct)
                }
            };
            let params = move || if use256 { sha256() } else { sha1() };
            let pt = s.decrypt(&Mechanism::RsaPkcsOaep(params()), privk, &ct).map_err(e2s("C_Decrypt"))?;
            if pt != msg {
                return Err("OAEP decrypt does not return the plaintext".into());
            }
            Box::new(move |s: &Session, _l: &mut Local| {
                s.decrypt(&Mechanism::RsaPkcsOaep(params()), privk, &ct).map(drop).map_err(e2s("C_Decrypt"))
            })
        }
        Kind::GenAes => Box::new(|s: &Session, _l: &mut Local| {
            s.generate_key(&Mechanism::AesKeyGen, &secret_key_template("bench-gen", true))
                .map(drop)
                .map_err(e2s("C_GenerateKey"))
        }),
        Kind::GenEcPair => {
            let (pt, prt) = ec_templates("bench-gen-ec", true);
            Box::new(move |s: &Session, _l: &mut Local| {
                s.generate_key_pair(&Mechanism::EccKeyPairGen, &pt, &prt).map(drop).map_err(e2s("C_GenerateKeyPair"))
            })
        }
        Kind::Random(n) => Box::new(move |s: &Session, _l: &mut Local| {
            let mut buf = [0u8; 64];
            s.generate_random_slice(&mut buf[..n]).map_err(e2s("C_GenerateRandom"))
        }),
        Kind::Find(_, with_class) => {
            if count == 0 {
                return Err("no keys".into());
            }
            Box::new(move |s: &Session, l: &mut Local| {
                let i = (l.next() % count as u64) as usize;
                let mut template = vec![Attribute::Label(key_label(i).into_bytes())];
                if with_class {
                    template.insert(0, Attribute::Class(ObjectClass::SECRET_KEY));
                }
                let found = s.find_objects(&template).map_err(e2s("C_FindObjects"))?;
                if found.len() != 1 {
                    return Err(format!("find by label {i}: {} objects, expected 1", found.len()));
                }
                Ok(())
            })
        }
        Kind::Cold(_) => return Err("cold open runs in its own role".into()),
        Kind::Session(_) => return Err("a session scenario is set up by `setup`".into()),
    };
    Ok((op, note))
}

fn child_scenario(module: &Path, name: &str, count: usize, threads: usize, timing: &Timing) -> Result<(), String> {
    let keys = if count > 0 { vec![count] } else { vec![] };
    // The find child gets the scenario by name; its size is part of the name.
    let scen = scenarios(&keys)
        .into_iter()
        .chain(scenarios(&[]))
        .find(|s| s.name == name)
        .or_else(|| {
            let with_class = name.starts_with("find-class-label-");
            (with_class || name.starts_with("find-label-")).then(|| Scen {
                name: name.to_string(),
                title: name.to_string(),
                kind: Kind::Find(count, with_class),
            })
        })
        .ok_or_else(|| format!("unknown scenario {name:?}"))?;
    mem_stage("start");
    let p = load(module)?;
    mem_stage("after C_Initialize");
    let (slot, session) = if let Kind::Find(..) = scen.kind {
        let slot = bench_slot(&p)?.ok_or("no bench token in the keystore")?;
        let s = p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?;
        s.login(UserType::User, Some(&user_pin())).map_err(e2s("C_Login(user)"))?;
        (slot, s)
    } else {
        init_token(&p)?
    };
    mem_stage("after token init and C_Login");
    let listed = p.get_mechanism_list(slot).map_err(e2s("C_GetMechanismList"))?;
    if let Some(why) = missing(&scen.kind, &listed) {
        emit(json!({"kind": "na", "scenario": name, "note": why}));
        return Ok(());
    }
    let (op, note) = setup(&session, &scen.kind, &listed, count)?;
    mem_stage("after setup");
    let mut counts = vec![1];
    if threads > 1 {
        counts.push(threads);
    }
    for t in counts {
        let mut sessions = Vec::new();
        for _ in 0..t {
            sessions.push(p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?);
        }
        let mut v = match measure(&mut sessions, op.as_ref(), timing) {
            Ok(m) => json!({
                "status": "ok",
                "ops_per_s": m.ops_per_s, "p50_ns": m.p50_ns, "p99_ns": m.p99_ns,
                "rounds": m.rounds, "ops": m.ops,
                "note": join_notes(&note, &m.note),
            }),
            Err(e) => json!({"status": "error", "note": e}),
        };
        v["kind"] = json!("result");
        v["scenario"] = json!(name);
        v["threads"] = json!(t);
        emit(v);
        drop(sessions);
    }
    drop(session);
    Ok(())
}

/// Creates keys `from..to` (labels by number) with C_GenerateKey of token AES keys, one
/// key per call, from `threads` sessions at once, until done or the budget is spent. The
/// keys made are always `from..count` (a thread takes a number only before the budget ends).
fn child_populate(module: &Path, from: usize, to: usize, budget: f64, threads: usize) -> Result<(), String> {
    let p = load(module)?;
    let (slot, first) = match bench_slot(&p)? {
        Some(slot) => {
            let s = p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?;
            s.login(UserType::User, Some(&user_pin())).map_err(e2s("C_Login(user)"))?;
            (slot, s)
        }
        None => init_token(&p)?,
    };
    let listed = p.get_mechanism_list(slot).map_err(e2s("C_GetMechanismList"))?;
    if let Some(why) = missing(&Kind::Find(0, false), &listed) {
        emit(json!({"kind": "na", "note": why}));
        return Ok(());
    }
    let mut sessions = vec![first];
    for _ in 1..threads {
        sessions.push(p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?);
    }
    let start = Instant::now();
    let next = AtomicU64::new(from as u64);
    let done = AtomicU64::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let capped = std::sync::atomic::AtomicBool::new(false);
    let errors: Vec<String> = std::thread::scope(|sc| {
        let workers: Vec<_> = sessions
            .iter_mut()
            .map(|s| {
                let (next, done, failed, capped) = (&next, &done, &failed, &capped);
                sc.spawn(move || -> Result<(), String> {
                    let s: &Session = s;
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        if start.elapsed().as_secs_f64() > budget {
                            capped.store(true, Ordering::Relaxed);
                            return Ok(());
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= to {
                            return Ok(());
                        }
                        let r = s.generate_key(&Mechanism::AesKeyGen, &secret_key_template(&key_label(i), true));
                        if let Err(e) = r {
                            failed.store(true, Ordering::Relaxed);
                            return Err(format!("C_GenerateKey of key {i}: {}", ck(&e)));
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Progress for the parent, which keeps the last count if it has to kill this
        // process: a lower bound of the keys made without a gap.
        let mut last = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() > Duration::from_secs(10) {
                last = Instant::now();
                let n = done.load(Ordering::Relaxed) as usize;
                emit(json!({
                    "kind": "progress",
                    "count": from + n.saturating_sub(threads - 1),
                    "seconds": start.elapsed().as_secs_f64(),
                }));
            }
        }
        workers.into_iter().filter_map(|w| w.join().unwrap_or_else(|_| Err("a thread panicked".into())).err()).collect()
    });
    if let Some(e) = errors.first() {
        return Err(e.clone());
    }
    let count = (next.load(Ordering::Relaxed) as usize).min(to);
    emit(json!({
        "kind": "populated", "count": count, "capped": capped.load(Ordering::Relaxed),
        "seconds": start.elapsed().as_secs_f64(), "threads": threads,
    }));
    Ok(())
}

/// One cold start: load, C_Initialize, find the slot and open a session, C_Login, and the
/// first C_FindObjects by label.
fn child_cold(module: &Path, count: usize) -> Result<(), String> {
    let t0 = Instant::now();
    let p = Pkcs11::new(module).map_err(|e| format!("load {}: {}", module.display(), ck(&e)))?;
    let t1 = Instant::now();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(e2s("C_Initialize"))?;
    let t2 = Instant::now();
    let slot = bench_slot(&p)?.ok_or("no bench token in the keystore")?;
    let s = p.open_rw_session(slot).map_err(e2s("C_OpenSession"))?;
    let t3 = Instant::now();
    s.login(UserType::User, Some(&user_pin())).map_err(e2s("C_Login(user)"))?;
    let t4 = Instant::now();
    // Not timed: reading /proc.
    mem_stage("after C_Login");
    let t4b = Instant::now();
    let i = (Local::new(0).next() % count.max(1) as u64) as usize;
    let found = s.find_objects(&[Attribute::Label(key_label(i).into_bytes())]).map_err(e2s("C_FindObjects"))?;
    let t5 = Instant::now();
    if found.len() != 1 {
        return Err(format!("find by label {i}: {} objects, expected 1", found.len()));
    }
    let ns = |a: Instant, b: Instant| (b - a).as_nanos() as u64;
    emit(json!({
        "kind": "cold", "total_ns": ns(t0, t4) + ns(t4b, t5), "load_ns": ns(t0, t1),
        "init_ns": ns(t1, t2), "open_ns": ns(t2, t3), "login_ns": ns(t3, t4), "find_ns": ns(t4b, t5),
    }));
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Measurement

/// Latencies in a log-linear histogram: exact below 64 ns, then 64 buckets per octave.
struct Hist(Vec<u64>);

impl Hist {
    const SUB: u32 = 6;

    fn new() -> Hist {
        Hist(vec![0; ((64 - Self::SUB as usize) + 1) << Self::SUB])
    }

    fn index(v: u64) -> usize {
        if v < (1 << Self::SUB) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let top = v >> (e - Self::SUB);
        (((e - Self::SUB + 1) as usize) << Self::SUB) + (top as usize - (1 << Self::SUB))
    }

    fn value(i: usize) -> u64 {
        if i < (1 << Self::SUB) {
            return i as u64;
        }
        let e = (i >> Self::SUB) as u32 + Self::SUB - 1;
        let top = (i & ((1 << Self::SUB) - 1)) as u64 + (1 << Self::SUB);
        let shift = e - Self::SUB;
        (top << shift) + ((1u64 << shift) >> 1)
    }

    fn add(&mut self, ns: u64) {
        self.0[Self::index(ns)] += 1;
    }

    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a += b;
        }
    }

    fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    fn percentile(&self, p: f64) -> u64 {
        let n = self.count();
        let rank = ((p * n as f64).ceil() as u64).clamp(1, n.max(1));
        let mut acc = 0;
        for (i, c) in self.0.iter().enumerate() {
            acc += c;
            if acc >= rank {
                return Self::value(i);
            }
        }
        0
    }
}

struct Measured {
    ops_per_s: f64,
    p50_ns: u64,
    p99_ns: u64,
    rounds: usize,
    ops: u64,
    note: String,
}

/// One round: every thread runs `op` on its own session until `secs` have passed (and
/// at least once). Returns (ops, wall seconds, histogram).
fn round(sessions: &mut [Session], locals: &mut [Local], op: &Op, secs: f64) -> Result<(u64, f64, Hist), String> {
    let barrier = Barrier::new(sessions.len());
    let first_start = AtomicU64::new(u64::MAX);
    let base = Instant::now();
    let outs: Vec<Result<(u64, Hist, Instant), String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = sessions
            .iter_mut()
            .zip(locals.iter_mut())
            .map(|(s, l)| {
                let barrier = &barrier;
                let first_start = &first_start;
                sc.spawn(move || {
                    let s: &Session = s;
                    let mut h = Hist::new();
                    let mut n = 0u64;
                    barrier.wait();
                    let start = Instant::now();
                    first_start.fetch_min((start - base).as_nanos() as u64, Ordering::Relaxed);
                    let end = start + Duration::from_secs_f64(secs);
                    loop {
                        let a = Instant::now();
                        op(s, l)?;
                        let b = Instant::now();
                        h.add((b - a).as_nanos() as u64);
                        n += 1;
                        if b >= end {
                            return Ok((n, h, b));
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into()))).collect()
    });
    let start = base + Duration::from_nanos(first_start.load(Ordering::Relaxed));
    let mut hist = Hist::new();
    let mut ops = 0;
    let mut last = start;
    for o in outs {
        let (n, h, end) = o?;
        ops += n;
        hist.merge(&h);
        last = last.max(end);
    }
    Ok((ops, (last - start).as_secs_f64(), hist))
}

fn measure(sessions: &mut [Session], op: &Op, t: &Timing) -> Result<Measured, String> {
    let started = Instant::now();
    let mut locals: Vec<Local> = (0..sessions.len()).map(Local::new).collect();
    round(sessions, &mut locals, op, t.warmup)?;
    let mut rates = Vec::new();
    let mut hist = Hist::new();
    let mut ops = 0;
    let mut note = String::new();
    for r in 0..t.rounds {
        if r > 0 && started.elapsed().as_secs_f64() > t.budget {
            note = format!(
                "{r} of {} rounds (budget {:.0} s: ≥ {:.1} s per round)",
                t.rounds,
                t.budget,
                started.elapsed().as_secs_f64() / (r + 1) as f64
            );
            break;
        }
        let (n, secs, h) = round(sessions, &mut locals, op, t.round)?;
        rates.push(n as f64 / secs);
        hist.merge(&h);
        ops += n;
    }
    Ok(Measured {
        ops_per_s: median_f64(&mut rates),
        p50_ns: hist.percentile(0.50),
        p99_ns: hist.percentile(0.99),
        rounds: rates.len(),
        ops,
        note,
    })
}

// ------------------------------------------------------------------------------------------
// A small regular-expression matcher for --only (no dependency for it): literals, `.`,
// classes `[a-z]` `[^...]`, `\d \w \s` and escapes, groups, `|`, `* + ?`, `^ $`;
// unanchored search.

#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    Any,
    Class(bool, Vec<(char, char)>),
    Group(Vec<Vec<Item>>),
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Quant {
    One,
    Opt,
    Star,
    Plus,
}

#[derive(Debug, Clone)]
struct Item {
    atom: Atom,
    q: Quant,
}

#[derive(Debug)]
struct Regex(Vec<Vec<Item>>);

impl Regex {
    fn new(s: &str) -> Result<Regex, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut pos = 0;
        let alt = parse_alt(&chars, &mut pos)?;
        if pos != chars.len() {
            return Err(format!("unexpected {:?} at {pos}", chars[pos]));
        }
        Ok(Regex(alt))
    }

    fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        (0..=chars.len()).any(|i| m_alt(&self.0, &chars, i, &mut |_| true))
    }
}

fn class_escape(c: char) -> Option<(bool, Vec<(char, char)>)> {
    match c {
        'd' => Some((false, vec![('0', '9')])),
        'w' => Some((false, vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')])),
        's' => Some((false, vec![(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')])),
        _ => None,
    }
}

fn parse_alt(c: &[char], pos: &mut usize) -> Result<Vec<Vec<Item>>, String> {
    let mut alts = vec![Vec::new()];
    while *pos < c.len() {
        let ch = c[*pos];
        let atom = match ch {
            ')' => break,
            '|' => {
                *pos += 1;
                alts.push(Vec::new());
                continue;
            }
            '(' => {
                *pos += 1;
                // Non-capturing groups read the same.
                if c.get(*pos) == Some(&'?') && c.get(*pos + 1) == Some(&':') {
                    *pos += 2;
                }
                let inner = parse_alt(c, pos)?;
                if c.get(*pos) != Some(&')') {
                    return Err("unclosed (".into());
                }
                Atom::Group(inner)
            }
            '.' => Atom::Any,
            '^' => Atom::Start,
            '$' => Atom::End,
            '[' => {
                *pos += 1;
                let neg = c.get(*pos) == Some(&'^');
                if neg {
                    *pos += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(&x) = c.get(*pos) else {
                        return Err("unclosed [".into());
                    };
                    if x == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if x == '\\' {
                        *pos += 1;
                        let e = *c.get(*pos).ok_or("trailing \\")?;
                        if let Some((_, r)) = class_escape(e) {
                            ranges.extend(r);
                            *pos += 1;
                            continue;
                        }
                        e
                    } else {
                        x
                    };
                    if c.get(*pos + 1) == Some(&'-') && c.get(*pos + 2).is_some_and(|&h| h != ']') {
                        ranges.push((lo, c[*pos + 2]));
                        *pos += 3;
                    } else {
                        ranges.push((lo, lo));
                        *pos += 1;
                    }
                }
                Atom::Class(neg, ranges)
            }
            '\\' => {
                *pos += 1;
                let e = *c.get(*pos).ok_or("trailing \\")?;
                match class_escape(e) {
                    Some((neg, r)) => Atom::Class(neg, r),
                    None => Atom::Char(e),
                }
            }
            '*' | '+' | '?' => return Err(format!("nothing to repeat at {}", *pos)),
            other => Atom::Char(other),
        };
        *pos += 1;
        let q = match c.get(*pos) {
            Some('*') => Quant::Star,
            Some('+') => Quant::Plus,
            Some('?') => Quant::Opt,
            _ => Quant::One,
        };
        if q != Quant::One {
            *pos += 1;
        }
        alts.last_mut().unwrap().push(Item { atom, q });
    }
    Ok(alts)
}

fn m_alt(alts: &[Vec<Item>], s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    alts.iter().any(|seq| m_seq(seq, s, i, k))
}

fn m_atom(a: &Atom, s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    match a {
        Atom::Char(c) => i < s.len() && s[i] == *c && k(i + 1),
        Atom::Any => i < s.len() && k(i + 1),
        Atom::Class(neg, r) => i < s.len() && (r.iter().any(|&(lo, hi)| lo <= s[i] && s[i] <= hi) != *neg) && k(i + 1),
        Atom::Group(alts) => m_alt(alts, s, i, k),
        Atom::Start => i == 0 && k(i),
        Atom::End => i == s.len() && k(i),
    }
}

fn m_seq(items: &[Item], s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    let Some((it, rest)) = items.split_first() else {
        return k(i);
    };
    match it.q {
        Quant::One => m_atom(&it.atom, s, i, &mut |j| m_seq(rest, s, j, k)),
        Quant::Opt => {
            if m_atom(&it.atom, s, i, &mut |j| m_seq(rest, s, j, k)) {
                return true;
            }
            m_seq(rest, s, i, k)
        }
        Quant::Star => m_star(it, rest, s, i, k),
        Quant::Plus => m_atom(&it.atom, s, i, &mut |j| m_star(it, rest, s, j, k)),
    }
}

fn m_star(it: &Item, rest: &[Item], s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    if m_atom(&it.atom, s, i, &mut |j| j != i && m_star(it, rest, s, j, k)) {
        return true;
    }
    m_seq(rest, s, i, k)
}
