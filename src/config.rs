//! Configuration: TOML from `KMSTOKEN_CONF`, else `$XDG_CONFIG_HOME/kmstoken/kmstoken.toml`,
//! else `/etc/kmstoken/kmstoken.toml`, else built-in defaults. A SoftHSM2 configuration
//! (`SOFTHSM2_CONF`) is read for its token directory when no kmstoken file exists.
//! Every error names the file, the key and what was expected.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the keystore (one SQLite database per token).
    pub keystore: Option<PathBuf>,
    /// How strictly the AWS KMS rules bind the PKCS#11 face (see `Profile`).
    pub profile: Profile,
    pub log: LogConfig,
    pub pin: PinConfig,
    pub argon2: Argon2Config,
    pub mechanisms: MechanismConfig,
    pub kms: KmsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// error, warn, info, debug or trace.
    pub level: String,
    /// A file to append to; stderr when absent.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinConfig {
    pub min_len: usize,
    pub max_len: usize,
    /// Failed logins after which the PIN is locked.
    pub max_failed_logins: u32,
}

/// Argon2id parameters for new tokens (stored per token, so changing them later does not
/// lock anyone out of an existing token).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// The two profiles (DESIGN section 4). Measured client suites create RSA and EC keys with
/// CKA_SIGN and CKA_DECRYPT (or CKA_DERIVE) together, so the default serves every
/// capability a key's template gives; `kms-strict` keeps AWS's one usage per key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Profile {
    /// Every TRUE capability attribute permits its use; the KMS usage (the first the key
    /// has) binds only the `kms` faces. RSA from 1024 bits, AES-ECB served.
    #[default]
    #[serde(rename = "pkcs11")]
    Pkcs11,
    /// One usage per key (a template asking for two is CKR_TEMPLATE_INCONSISTENT), RSA
    /// 2048 to 4096 bits, no AES-ECB.
    #[serde(rename = "kms-strict")]
    KmsStrict,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Pkcs11 => "pkcs11",
            Profile::KmsStrict => "kms-strict",
        }
    }

    /// Whether a key's one KMS usage binds its PKCS#11 uses too.
    pub fn one_usage(self) -> bool {
        self == Profile::KmsStrict
    }

    /// The RSA modulus sizes, in bits, between which a key of `kind` may be.
    pub fn rsa_bits(self, kind: RsaKeyKind) -> std::ops::RangeInclusive<usize> {
        match (self, kind) {
            (Profile::KmsStrict, _) => 2048..=4096,
            (Profile::Pkcs11, RsaKeyKind::Generated) => 1024..=4096,
            // Old signatures are verified with keys of 512 bits, and keys up to 16384 exist.
            (Profile::Pkcs11, RsaKeyKind::Public) => 512..=16384,
            (Profile::Pkcs11, RsaKeyKind::Private) => 1024..=16384,
        }
    }

    /// Whether an RSA key of `bits` and `kind` may be made or imported: `kms-strict` takes
    /// only the sizes of AWS's key specs (RSA_2048, RSA_3072, RSA_4096).
    pub fn rsa_bits_allowed(self, kind: RsaKeyKind, bits: usize) -> bool {
        self.rsa_bits(kind).contains(&bits) && (self == Profile::Pkcs11 || bits.is_multiple_of(1024))
    }
}

/// What an RSA key size is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeyKind {
    /// Made by key-pair generation.
    Generated,
    /// A public key brought in.
    Public,
    /// A private key brought in.
    Private,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MechanismConfig {
    /// CKM_AES_ECB leaks patterns: served by default under the `pkcs11` profile (clients'
    /// key-wrapping and test code use it), never by default under `kms-strict`.
    pub aes_ecb: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KmsConfig {
    /// Replaced by the top-level `profile`; kept only to name the new key in the error.
    key_usage: Option<String>,
    /// Days between C_DestroyObject of a token key and its purge (7..=30).
    pub deletion_window_days: u32,
    /// Whether a key use fails when its audit record cannot be written.
    pub audit_required: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "warn".into(), file: None }
    }
}

impl Default for PinConfig {
    fn default() -> Self {
        PinConfig { min_len: 4, max_len: 255, max_failed_logins: 10 }
    }
}

impl Default for Argon2Config {
    /// About 20-40 ms a guess on one core of a current x86 machine.
    fn default() -> Self {
        Argon2Config { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig { key_usage: None, deletion_window_days: 30, audit_required: true }
    }
}

impl Config {
    /// Finds and reads the configuration. The error text names the file and the key.
    pub fn load() -> Result<Config, String> {
        if let Some(p) = std::env::var_os("KMSTOKEN_CONF") {
            return Self::from_file(Path::new(&p));
        }
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(dir) = xdg {
            let p = dir.join("kmstoken/kmstoken.toml");
            if p.exists() {
                return Self::from_file(&p);
            }
        }
        let etc = Path::new("/etc/kmstoken/kmstoken.toml");
        if etc.exists() {
            return Self::from_file(etc);
        }
        let mut c = Config::default();
        if let Some(p) = std::env::var_os("SOFTHSM2_CONF") {
            c.keystore = softhsm_tokendir(Path::new(&p))?;
        }
        Ok(c)
    }

    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let c: Config = toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), one_line(&e)))?;
        c.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        if !matches!(self.log.level.as_str(), "error" | "warn" | "info" | "debug" | "trace" | "off") {
            return Err(format!(
                "key log.level: expected one of error, warn, info, debug, trace, off; got {:?}",
                self.log.level
            ));
        }
        if self.pin.min_len == 0 || self.pin.min_len > self.pin.max_len || self.pin.max_len > 255 {
            return Err("keys pin.min_len / pin.max_len: expected 1 <= min_len <= max_len <= 255".into());
        }
        if self.pin.max_failed_logins == 0 {
            return Err("key pin.max_failed_logins: expected a number above 0".into());
        }
        if self.argon2.memory_kib < 8 * self.argon2.parallelism.max(1)
            || self.argon2.iterations == 0
            || self.argon2.parallelism == 0
        {
            return Err(
                "keys argon2.*: expected iterations >= 1, parallelism >= 1, memory_kib >= 8 * parallelism".into()
            );
        }
        if let Some(old) = &self.kms.key_usage {
            return Err(format!(
                "key kms.key_usage ({old:?}) is replaced by the top-level key profile: expected profile = \"pkcs11\" \
                 (every capability a key has) or profile = \"kms-strict\" (one usage per key)"
            ));
        }
        if !(7..=30).contains(&self.kms.deletion_window_days) {
            return Err(format!(
                "key kms.deletion_window_days: expected 7 to 30; got {}",
                self.kms.deletion_window_days
            ));
        }
        Ok(())
    }

    /// Whether CKM_AES_ECB is served: as configured, else as the profile has it.
    pub fn aes_ecb(&self) -> bool {
        self.mechanisms.aes_ecb.unwrap_or(self.profile == Profile::Pkcs11)
    }

    /// The keystore directory: configured, else `$XDG_DATA_HOME/kmstoken`
    /// (`~/.local/share/kmstoken`), or `/var/lib/kmstoken` for root without a home.
    pub fn keystore_dir(&self) -> PathBuf {
        if let Some(p) = &self.keystore {
            return p.clone();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("kmstoken");
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/share/kmstoken"),
            None => PathBuf::from("/var/lib/kmstoken"),
        }
    }
}

/// toml's messages span several lines with a caret diagram (which quotes the key); a log
/// line wants them on one.
fn one_line(e: &toml::de::Error) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `directories.tokendir = PATH` of a SoftHSM2 configuration file.
fn softhsm_tokendir(path: &Path) -> Result<Option<PathBuf>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{} (SOFTHSM2_CONF): cannot read: {e}", path.display()))?;
    Ok(text.lines().find_map(|l| {
        let l = l.trim();
        let (k, v) = l.split_once('=')?;
        (k.trim() == "directories.tokendir").then(|| PathBuf::from(v.trim()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.toml");
        std::fs::write(&p, s).unwrap();
        Config::from_file(&p)
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        let c = parse("").unwrap();
        assert_eq!(c.pin.max_failed_logins, 10);
        assert_eq!(c.profile, Profile::Pkcs11);
        assert!(c.aes_ecb());
        let strict = parse("profile = \"kms-strict\"\n").unwrap();
        assert_eq!(strict.profile, Profile::KmsStrict);
        assert!(!strict.aes_ecb());
        assert!(parse("profile = \"kms-strict\"\n[mechanisms]\naes_ecb = true\n").unwrap().aes_ecb());
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse("[pin]\nmax_failed_logins = \"ten\"\n").unwrap_err();
        assert!(e.contains("k.toml") && e.contains("max_failed_logins"), "{e}");
        let e = parse("[kms]\ndeletion_window_days = 31\n").unwrap_err();
        assert!(e.contains("kms.deletion_window_days") && e.contains("7 to 30"), "{e}");
        let e = parse("bogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = parse("[log]\nlevel = \"loud\"\n").unwrap_err();
        assert!(e.contains("log.level"), "{e}");
        let e = parse("profile = \"aws\"\n").unwrap_err();
        assert!(e.contains("profile") && e.contains("kms-strict"), "{e}");
        let e = parse("[kms]\nkey_usage = \"strict\"\n").unwrap_err();
        assert!(e.contains("kms.key_usage") && e.contains("profile"), "{e}");
    }

    #[test]
    fn rsa_sizes_per_profile() {
        use RsaKeyKind::*;
        let (p, s) = (Profile::Pkcs11, Profile::KmsStrict);
        assert!(p.rsa_bits_allowed(Public, 512) && !p.rsa_bits_allowed(Public, 511));
        assert!(p.rsa_bits_allowed(Public, 16384) && !p.rsa_bits_allowed(Public, 16385));
        assert!(p.rsa_bits_allowed(Private, 1024) && !p.rsa_bits_allowed(Private, 512));
        assert!(p.rsa_bits_allowed(Generated, 1024) && !p.rsa_bits_allowed(Generated, 8192));
        for kind in [Generated, Public, Private] {
            for bits in [2048, 3072, 4096] {
                assert!(s.rsa_bits_allowed(kind, bits));
            }
            for bits in [1024, 2176, 8192] {
                assert!(!s.rsa_bits_allowed(kind, bits), "{kind:?} {bits}");
            }
        }
    }

    #[test]
    fn softhsm_tokendir_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("softhsm2.conf");
        std::fs::write(&p, "# c\ndirectories.tokendir = /x/y\nlog.level = INFO\n").unwrap();
        assert_eq!(softhsm_tokendir(&p).unwrap(), Some(PathBuf::from("/x/y")));
    }
}
