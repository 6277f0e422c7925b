//! The audit trail: one record per key use, login and lifecycle change, in the shape of a
//! CloudTrail KMS event when read (`format::render`).
//!
//! Storage: a directory per token, `<keystore>/audit/token-<serial>/`, of segment files.
//! Each writer of a process (one per thread that is writing at the moment) appends to a
//! segment of its own, so no lock is shared between threads or processes; a record is one
//! write(2), made before the operation returns, so that a process killed the next instant
//! has lost nothing it acknowledged. A segment is never appended to by anyone else, so a
//! record torn by a full disk or a crash is only ever the last of a dead segment: the
//! reader sets it aside and nobody waits on it.
//!
//! Chain: every record carries a link, an HMAC under the audit key (derived from the
//! master key, known to the process from its first login on) over the link before it and
//! the record; before any login the link is a plain hash, which the next keyed record
//! covers. The database anchors each segment's position and head at every write under
//! the key (`heads`), and every record carries the database generation the writer last
//! saw, so that `check::verify` finds an edit, a removal, an insertion, a reorder, a
//! re-chain, a truncation, an old copy of a segment and a database put back.
//!
//! Durability against power loss: a record that changes something, logs in or reports a
//! failure is fsync'ed at once; key uses at most once a second per segment (a power cut
//! may lose the last second of uses, never a change).

pub mod check;
pub mod format;
pub mod legacy;

use crate::crypto::{Hash, Hmac};
use crate::error::{Error, Result};
use crate::kms::blob::Context;
use crate::kms::clock;
use format::{Header, Link};
use parking_lot::Mutex;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// What happened, in CloudTrail's terms. Never holds plaintext, keys or PINs.
#[derive(Default)]
pub struct Event<'a> {
    /// The API name (`Encrypt`, `ScheduleKeyDeletion`, `Login`, ...) or service event.
    pub name: &'a str,
    /// `so`, `user` or a named user; empty for the token itself (service events).
    pub principal: &'a str,
    pub key_id: Option<&'a str>,
    pub key_version: Option<u64>,
    pub mechanism: Option<u64>,
    /// The encryption context: only its keys are recorded.
    pub context: Option<&'a Context>,
    /// The AWS exception name of a failure, and its message.
    pub error: Option<(crate::error::AwsError, String)>,
    pub read_only: bool,
    /// A service event (purge, rotation) rather than a caller's request.
    pub service: bool,
    /// Management details (window days, new state, alias name...).
    pub details: Option<Value>,
}

/// Where a segment stands: what the database anchors.
pub use crate::store::TrailHead as Head;

/// Segment files end with this.
pub const SEGMENT_EXT: &str = "trail";

/// How many records a segment holds before its writer starts the next one.
const SEGMENT_RECORDS: u64 = 1 << 20;

/// Room kept beside the segments (`.reserve`): when a record cannot be written for want of
/// space, the reserve goes and the record is written. Writes to the keystore first make
/// sure the reserve is there (`AuditLog::ensure_room`), so that an operation whose change
/// was made always finds room for its record.
const RESERVE_LEN: usize = 1 << 20;

pub struct AuditLog {
    dir: PathBuf,
    serial: String,
    /// This process's id, read once: a forked child must initialise the library again,
    /// which makes a new log.
    pid: u32,
    /// The audit key, from the first login of this process on (the master key never
    /// changes for a token, so neither does this).
    key: OnceLock<Hmac>,
    /// Writers not in use; a thread takes one for a record and puts it back.
    free: Mutex<Vec<Writer>>,
    /// The database generation last seen: every record carries it.
    generation: AtomicU64,
    /// Set when a segment went `ANCHOR_EVERY` records without an anchor.
    anchor_due: AtomicBool,
}

/// How many records a segment takes between anchors at most (a write under the key anchors
/// every idle segment sooner).
const ANCHOR_EVERY: u64 = 4096;

/// One segment being written by this process.
struct Writer {
    file: File,
    name: String,
    records: u64,
    /// `records` when the database last anchored this segment.
    anchored: u64,
    bytes: u64,
    link: Link,
    buf: Vec<u8>,
    last_sync: Option<Instant>,
}

/// ENOSPC, or EFBIG (a file size limit), which a full disk and a quota both give.
fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(27))
}

fn io(e: std::io::Error) -> Error {
    if is_full(&e) {
        Error::DeviceMemory
    } else {
        Error::storage(format!("audit trail: {e}"))
    }
}

fn process_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| std::fs::read_to_string("/proc/self/comm").map(|s| s.trim().to_string()).unwrap_or_default())
}

/// The directory of a token's trail in a keystore.
pub fn trail_dir(keystore: &Path, serial: &str) -> PathBuf {
    keystore.join("audit").join(format!("token-{serial}"))
}

impl AuditLog {
    pub fn new(dir: PathBuf, serial: &str) -> AuditLog {
        AuditLog {
            dir,
            serial: serial.to_string(),
            pid: std::process::id(),
            key: OnceLock::new(),
            free: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            anchor_due: AtomicBool::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The audit key, derived from the master key by the token at login.
    pub fn set_key(&self, key: &[u8]) {
        let _ = self.key.set(Hmac::new(Hash::Sha256, key));
    }

    /// The database is at `generation` (or beyond): records from now on say so.
    pub fn saw_generation(&self, generation: u64) {
        self.generation.fetch_max(generation, Ordering::Relaxed);
    }

    /// Whether a segment went `ANCHOR_EVERY` records unanchored, so that the database should
    /// anchor the segments now: a long run of uses then loses little to a truncation.
    pub fn anchor_due(&self) -> bool {
        self.anchor_due.load(Ordering::Relaxed)
    }

    /// Where every idle segment of this process stands, for the database to anchor. A
    /// segment in use at this instant is anchored the next time.
    pub fn heads(&self) -> Vec<Head> {
        self.anchor_due.store(false, Ordering::Relaxed);
        let mut free = self.free.lock();
        free.iter_mut()
            .map(|w| {
                w.anchored = w.records;
                Head { segment: w.name.clone(), records: w.records, bytes: w.bytes, link: w.link }
            })
            .collect()
    }

    fn reserve_path(&self) -> PathBuf {
        self.dir.join(".reserve")
    }

    /// Makes sure the reserve is there before a change to the keystore: with no room for
    /// it, the change is refused (CKR_DEVICE_MEMORY) before anything is written.
    pub fn ensure_room(&self) -> Result<()> {
        let reserve = self.reserve_path();
        if std::fs::metadata(&reserve).is_ok_and(|m| m.len() == RESERVE_LEN as u64) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        if let Err(e) = std::fs::write(&reserve, vec![0u8; RESERVE_LEN]) {
            let _ = std::fs::remove_file(&reserve);
            return Err(io(e));
        }
        Ok(())
    }

    /// Appends one record; an error means the event could not be recorded.
    pub fn append(&self, e: &Event) -> Result<()> {
        let taken = self.free.lock().pop();
        let mut w = match taken {
            Some(w) => w,
            None => self.start_segment()?,
        };
        match w.append(self, e) {
            Ok(()) => {
                // One shared flag, touched once per ANCHOR_EVERY records, not a shared count.
                if w.records - w.anchored == ANCHOR_EVERY {
                    self.anchor_due.store(true, Ordering::Relaxed);
                }
                if w.records < SEGMENT_RECORDS {
                    self.free.lock().push(w);
                }
                Ok(())
            }
            Err(e) => {
                // A segment cut back to its last whole record goes on serving; one in an
                // unknown state is left, and the next record starts another.
                if w.file.metadata().is_ok_and(|m| m.len() == w.bytes) {
                    self.free.lock().push(w);
                }
                Err(e)
            }
        }
    }

    /// Creates a segment of this process, named by its creation time, the process and a
    /// random part, so that no two writers ever share one.
    fn start_segment(&self) -> Result<Writer> {
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut uid = [0u8; 16];
        crate::crypto::random(&mut uid)?;
        let created = clock::now();
        let header =
            Header { uid, pid: self.pid, created, serial: self.serial.clone(), process: process_name().into() };
        let name = format!(
            "{:016x}-{}-{:08x}.{SEGMENT_EXT}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
            self.pid,
            u32::from_be_bytes([uid[0], uid[1], uid[2], uid[3]])
        );
        let path = self.dir.join(&name);
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = OpenOptions::new().append(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
        let bytes = header.encode();
        if let Err(e) = file.write_all(&bytes) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(io(e));
        }
        Ok(Writer {
            file,
            name,
            records: 0,
            anchored: 0,
            bytes: bytes.len() as u64,
            link: header.first_link(),
            buf: Vec::with_capacity(256),
            last_sync: None,
        })
    }
}

impl Writer {
    fn append(&mut self, log: &AuditLog, e: &Event) -> Result<()> {
        let key = log.key.get();
        let seq = self.records + 1;
        self.buf.clear();
        format::encode(&mut self.buf, e, key.is_some(), seq, clock::now(), log.generation.load(Ordering::Relaxed));
        let link = format::link(key, &self.link, &self.buf);
        self.buf.extend_from_slice(&link);
        if let Err(err) = self.file.write_all(&self.buf) {
            // No partial record stays; with the disk full, the reserve makes room.
            self.file.set_len(self.bytes).map_err(io)?;
            if !is_full(&err) || std::fs::remove_file(log.reserve_path()).is_err() {
                return Err(io(err));
            }
            log::error!("audit trail {}: disk full; the reserve was used for this record", log.dir.display());
            if let Err(err) = self.file.write_all(&self.buf) {
                let _ = self.file.set_len(self.bytes);
                return Err(io(err));
            }
        }
        self.records = seq;
        self.bytes += self.buf.len() as u64;
        self.link = link;
        let urgent = e.error.is_some() || !e.read_only;
        if urgent || self.last_sync.is_none_or(|t| t.elapsed().as_secs() >= 1) {
            self.file.sync_data().map_err(io)?;
            self.last_sync = Some(Instant::now());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> Event<'_> {
        Event { name, principal: "user", key_id: Some("k1"), read_only: true, ..Default::default() }
    }

    #[test]
    fn threads_write_segments_of_their_own_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().to_path_buf(), "serial");
        log.append(&event("Login")).unwrap();
        log.set_key(&[7; 32]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        log.append(&event("Encrypt")).unwrap();
                    }
                });
            }
        });
        let key = Hmac::new(Hash::Sha256, &[7; 32]);
        let report = check::verify(dir.path(), &key, &[]);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.records, 201);
        assert_eq!(report.unsealed, 0, "the first record is covered by the keyed one after it");
        assert_eq!(check::read_all(dir.path()).unwrap().len(), 201);
    }
}
