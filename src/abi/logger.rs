//! The module's log: one line per event to stderr or to the configured file. Key
//! material and PINs are never passed to it.

use crate::config::Config;
use parking_lot::Mutex;
use std::io::Write;

struct Logger {
    file: Mutex<Option<std::fs::File>>,
}

static LOGGER: Logger = Logger { file: Mutex::new(None) };

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!("kmstoken[{}]: {}: {}\n", std::process::id(), r.level(), r.args());
        let mut f = self.file.lock();
        match f.as_mut() {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Sets the level and destination from the configuration (again on each C_Initialize).
pub fn init(config: &Config) {
    let _ = log::set_logger(&LOGGER);
    let level = std::env::var("KMSTOKEN_LOG").ok().unwrap_or_else(|| config.log.level.clone());
    log::set_max_level(level.parse().unwrap_or(log::LevelFilter::Warn));
    let file =
        config.log.file.as_ref().and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    *LOGGER.file.lock() = file;
}
