//! What the interop tests with real clients share (`interop_pkcs11_tool_asym.rs`,
//! `interop_openssl.rs`, `interop_java.rs`): the module under test, a keystore of its own
//! per test, child processes with a time limit, and the DER that OpenSSL wants for EC
//! public keys and ECDSA signatures.
//!
//! Every child gets `KMSTOKEN_CONF` naming the test's own configuration, so the tests run
//! in parallel. A program that cannot be started is a failure that names the Debian
//! package to install (`scripts/deps.sh` installs them all), never a skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const SO_PIN: &str = "87654321";
pub const USER_PIN: &str = "123456";

/// Longest a child may run; every one of them takes well under a few seconds.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// The module under test: `KMSTOKEN_MODULE`, else the one cargo built with this test
/// binary (beside it in `deps/`, or in `target/<profile>/`), else target/release.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KMSTOKEN_MODULE") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "KMSTOKEN_MODULE={} is not a file", p.display());
        return p;
    }
    let exe = std::env::current_exe().ok();
    let dirs = exe.iter().flat_map(|e| e.ancestors().skip(1).take(2));
    if let Some(p) = dirs.map(|d| d.join("libkmstoken.so")).find(|p| p.is_file()) {
        return p;
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/libkmstoken.so");
    assert!(
        p.is_file(),
        "{} not found: build the module with `cargo build --release` or set KMSTOKEN_MODULE",
        p.display()
    );
    p
}

/// Panics with a clear message when `tool` cannot be started (`args` is a harmless call
/// such as `--version`; its exit status does not matter).
#[track_caller]
pub fn require_tool(tool: &str, args: &[&str], package: &str) {
    if let Err(e) = Command::new(tool).args(args).stdin(Stdio::null()).output() {
        panic!(
            "`{tool}` cannot be run ({e}): these interop tests need it; \
             install Debian's `{package}` package (scripts/deps.sh does)"
        );
    }
}

/// What a finished child did.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub what: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.stdout), String::from_utf8_lossy(&self.stderr))
    }

    /// A report for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "{}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// Panics unless the child succeeded; returns it for more checks.
    pub fn expect_ok(self) -> Run {
        assert!(self.ok(), "failed: {}", self.report());
        self
    }
}

/// A keystore of its own, with a configuration that hashes PINs cheaply.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub module: PathBuf,
    runs: std::cell::Cell<u32>,
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_profile("pkcs11")
    }

    /// A fixture whose configuration chooses `profile` (`pkcs11` or `kms-strict`).
    pub fn with_profile(profile: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = dir.path().join("kmstoken.toml");
        let store = dir.path().join("store");
        std::fs::write(
            &conf,
            format!(
                "keystore = \"{}\"\nprofile = \"{profile}\"\n[argon2]\nmemory_kib = 64\niterations = 1\n",
                store.display()
            ),
        )
        .expect("write configuration");
        Fixture { dir, conf, module: module_path(), runs: std::cell::Cell::new(0) }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path in the test directory as the &str that command lines want.
    pub fn p(&self, name: &str) -> String {
        self.path(name).to_str().expect("UTF-8 temporary path").to_string()
    }

    pub fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.path(name), data).expect("write test file");
        self.p(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        read(&self.path(name))
    }

    /// A command that works on this keystore.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("KMSTOKEN_CONF", &self.conf).env_remove("SOFTHSM2_CONF").env_remove("KMSTOKEN_LOG");
        c
    }

    /// Runs a child to its end or to the time limit (then kills it and panics). Its output
    /// goes to files, so that a chatty child can never block on a full pipe.
    pub fn run(&self, mut cmd: Command) -> Run {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let what = format!("{cmd:?}");
        let (out_path, err_path) = (self.path(&format!(".run{n}.out")), self.path(&format!(".run{n}.err")));
        let out = std::fs::File::create(&out_path).expect("create stdout file");
        let err = std::fs::File::create(&err_path).expect("create stderr file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for child") {
                break s;
            }
            if start.elapsed() > CHILD_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} ran longer than {CHILD_LIMIT:?} and was killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run { status, stdout: read(&out_path), stderr: read(&err_path), what }
    }

    // ---- pkcs11-tool

    pub fn p11_raw(&self, args: &[&str]) -> Run {
        let mut c = self.command("pkcs11-tool");
        c.arg("--module").arg(&self.module).args(args);
        self.run(c)
    }

    /// Runs pkcs11-tool and insists that it succeeds; returns stdout and stderr together.
    pub fn p11(&self, args: &[&str]) -> String {
        self.p11_raw(args).expect_ok().all()
    }

    /// pkcs11-tool on slot 0, logged in as the user.
    pub fn p11_user_raw(&self, args: &[&str]) -> Run {
        let mut all = vec!["--slot", "0", "--login", "--pin", USER_PIN];
        all.extend_from_slice(args);
        self.p11_raw(&all)
    }

    pub fn p11_user(&self, args: &[&str]) -> String {
        self.p11_user_raw(args).expect_ok().all()
    }

    /// Initialises the token on the empty slot 0 of the fresh keystore, and its user PIN.
    pub fn init_token(&self, label: &str) {
        let out = self.p11(&["--init-token", "--slot", "0", "--label", label, "--so-pin", SO_PIN]);
        assert!(out.contains("Token successfully initialized"), "{out}");
        let out = self.p11(&["--init-pin", "--slot", "0", "--so-pin", SO_PIN, "--pin", USER_PIN]);
        assert!(out.contains("User PIN successfully initialized"), "{out}");
    }

    /// The public key objects that `--list-objects` shows.
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        parse_public_keys(&self.p11_user(&["--list-objects", "--type", "pubkey"]))
    }

    /// The public key object with this CKA_ID (hex).
    pub fn public_key(&self, id: &str) -> PublicKeyInfo {
        let keys = self.public_keys();
        keys.iter().find(|k| k.id == id).cloned().unwrap_or_else(|| panic!("no public key with ID {id} among {keys:?}"))
    }

    /// The SubjectPublicKeyInfo (DER) of a token EC public key, built from its
    /// CKA_EC_PARAMS and CKA_EC_POINT as pkcs11-tool lists them, written to `name`.
    /// (`--read-object --type pubkey` would do it, but OpenSC 0.23 frees the curve
    /// parameters before it uses them there: see interop_pkcs11_tool_asym.rs.)
    pub fn ec_public_der(&self, id: &str, name: &str) -> String {
        let k = self.public_key(id);
        let params = k.ec_params.clone().unwrap_or_else(|| panic!("public key {id} has no EC_PARAMS: {k:?}"));
        let point = k.ec_point.unwrap_or_else(|| panic!("public key {id} has no EC_POINT"));
        let spki = ec_spki(&params, &point);
        // openssl must agree that this is a valid public key on that curve.
        let path = self.write(name, &spki);
        self.openssl(&["pkey", "-pubin", "-inform", "DER", "-in", &path, "-noout"]);
        path
    }

    /// The SubjectPublicKeyInfo (DER) of a token RSA public key, read by pkcs11-tool.
    pub fn rsa_public_der(&self, id: &str, name: &str) -> String {
        let path = self.p(name);
        self.p11_user(&["--read-object", "--type", "pubkey", "--id", id, "--output-file", &path]);
        path
    }

    // ---- openssl, without the token

    pub fn openssl_raw(&self, args: &[&str]) -> Run {
        let mut c = Command::new("openssl");
        c.args(args);
        self.run(c)
    }

    /// openssl as an independent oracle: insists that it succeeds, returns its stdout.
    pub fn openssl(&self, args: &[&str]) -> Vec<u8> {
        self.openssl_raw(args).expect_ok().stdout
    }

    /// Whether openssl accepts a signature (`dgst -verify` or `pkeyutl -verify`): true
    /// when it reports success, false when it reports a verification failure; any other
    /// outcome (a file it cannot read, a bad option) fails the test.
    pub fn openssl_verifies(&self, args: &[&str]) -> bool {
        let r = self.openssl_raw(args);
        let all = r.all().to_lowercase();
        if r.ok() {
            assert!(all.contains("verified ok") || all.contains("verified successfully"), "{}", r.report());
            true
        } else {
            assert!(all.contains("verification failure"), "{}", r.report());
            false
        }
    }
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Bytes that differ from one position to the next.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

/// A public key object as `pkcs11-tool --list-objects` prints it.
#[derive(Clone, Debug, Default)]
pub struct PublicKeyInfo {
    /// The first line, e.g. "Public Key Object; EC  EC_POINT 256 bits".
    pub kind: String,
    pub label: String,
    pub id: String,
    pub ec_point: Option<Vec<u8>>,
    pub ec_params: Option<Vec<u8>>,
}

fn parse_public_keys(listing: &str) -> Vec<PublicKeyInfo> {
    let mut keys: Vec<PublicKeyInfo> = Vec::new();
    for line in listing.lines() {
        if line.starts_with("Public Key Object") {
            keys.push(PublicKeyInfo { kind: line.trim().to_string(), ..Default::default() });
            continue;
        }
        let Some(k) = keys.last_mut() else { continue };
        let Some((name, value)) = line.trim().split_once(':') else { continue };
        let value = value.trim();
        match name {
            "label" => k.label = value.to_string(),
            "ID" => k.id = value.to_string(),
            "EC_POINT" => k.ec_point = Some(hex::decode(value).expect("EC_POINT in hex")),
            "EC_PARAMS" => k.ec_params = Some(hex::decode(value).expect("EC_PARAMS in hex")),
            _ => {}
        }
    }
    keys
}

// ---- DER

fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// The point inside a CKA_EC_POINT, which PKCS#11 defines as the DER OCTET STRING of the
/// X9.62 point (a raw point is refused: it would be a module bug).
pub fn ec_point_bytes(ec_point: &[u8]) -> Vec<u8> {
    match ec_point {
        [0x04, 0x81, n, rest @ ..] if *n as usize == rest.len() && *n >= 0x80 => rest.to_vec(),
        [0x04, n, rest @ ..] if *n < 0x80 && *n as usize == rest.len() => rest.to_vec(),
        _ => panic!("CKA_EC_POINT is not a DER OCTET STRING: {}", hex::encode(ec_point)),
    }
}

/// SubjectPublicKeyInfo of an EC key: id-ecPublicKey with the named curve of
/// CKA_EC_PARAMS, and the uncompressed point as the BIT STRING.
pub fn ec_spki(ec_params: &[u8], ec_point: &[u8]) -> Vec<u8> {
    const ID_EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let point = ec_point_bytes(ec_point);
    assert_eq!(point.first(), Some(&0x04), "an uncompressed point");
    let algorithm = der(0x30, &[&ID_EC_PUBLIC_KEY[..], ec_params].concat());
    let key = der(0x03, &[&[0u8][..], &point].concat());
    der(0x30, &[algorithm, key].concat())
}

fn der_integer(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// An ECDSA signature as PKCS#11 gives it (r || s, each the size of the order) in the
/// DER form of X9.62 that OpenSSL verifies: SEQUENCE { INTEGER r, INTEGER s }.
pub fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    assert!(!raw.is_empty() && raw.len().is_multiple_of(2), "r || s has an even length, not {}", raw.len());
    let (r, s) = raw.split_at(raw.len() / 2);
    der(0x30, &[der_integer(r), der_integer(s)].concat())
}
