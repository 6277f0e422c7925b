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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MechanismConfig {
    /// CKM_AES_ECB leaks patterns; it is served only when asked for.
    pub aes_ecb: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KmsConfig {
    /// "compat" (default) or "strict": what a template asking for two usages gets.
    pub key_usage: String,
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
        KmsConfig { key_usage: "compat".into(), deletion_window_days: 30, audit_required: true }
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
        if !matches!(self.kms.key_usage.as_str(), "compat" | "strict") {
            return Err(format!("key kms.key_usage: expected \"compat\" or \"strict\"; got {:?}", self.kms.key_usage));
        }
        if !(7..=30).contains(&self.kms.deletion_window_days) {
            return Err(format!(
                "key kms.deletion_window_days: expected 7 to 30; got {}",
                self.kms.deletion_window_days
            ));
        }
        Ok(())
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
        assert!(!c.mechanisms.aes_ecb);
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
    }

    #[test]
    fn softhsm_tokendir_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("softhsm2.conf");
        std::fs::write(&p, "# c\ndirectories.tokendir = /x/y\nlog.level = INFO\n").unwrap();
        assert_eq!(softhsm_tokendir(&p).unwrap(), Some(PathBuf::from("/x/y")));
    }
}
