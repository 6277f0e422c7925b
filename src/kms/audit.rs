//! The audit trail: one JSON line per event in the shape of a CloudTrail KMS record, each
//! carrying its sequence number, the hash of the previous record and its own hash, so that
//! `verify` finds a record that was altered, removed or moved. Appends from several
//! processes are serialised by an exclusive lock on the file, so lines never interleave
//! and the chain never forks.
//!
//! Durability: every record is written with one write(2) before the operation goes on
//! (a crash of the process loses nothing); the file is fsync'ed at most once a second for
//! key use and at once for lifecycle events, logins and failures.

use crate::crypto::{Digest, Hash};
use crate::error::{Error, Result};
use crate::kms::clock;
use parking_lot::Mutex;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Hash of the record before the first.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_SUFFIX_LEN: usize = r#","hash":""}"#.len() + 64;

/// What happened, in CloudTrail's terms. Never holds plaintext, keys or PINs.
#[derive(Default)]
pub struct Event<'a> {
    /// The API name (`Encrypt`, `ScheduleKeyDeletion`, `Login`, ...) or service event.
    pub name: &'a str,
    /// `so`, `user` or a named user; empty for the token itself (service events).
    pub principal: &'a str,
    pub key_id: Option<&'a str>,
    pub key_arn: Option<String>,
    pub key_version: Option<u64>,
    pub mechanism: Option<u64>,
    pub encryption_context_keys: Vec<String>,
    /// The AWS exception name of a failure, and its message.
    pub error: Option<(crate::error::AwsError, String)>,
    pub read_only: bool,
    /// A service event (purge, rotation) rather than a caller's request.
    pub service: bool,
    /// Management details (window days, new state, alias name...).
    pub details: Option<Value>,
}

pub struct AuditLog {
    path: PathBuf,
    open: Mutex<Option<Open>>,
    /// This process's id, read once: a forked child must initialise the library again,
    /// which makes a new log.
    pid: u32,
}

/// The log file as this process last saw it: its handle, its length then and the last
/// record's sequence number and hash, so that an append reads nothing back unless another
/// process wrote in between (the length tells).
struct Open {
    file: File,
    /// Device and inode of the file behind `file`, to notice the path being replaced.
    id: (u64, u64),
    len: u64,
    seq: u64,
    hash: String,
    last_sync: Option<Instant>,
}

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        out.push(DIGITS[(x >> 4) as usize] as char);
        out.push(DIGITS[(x & 15) as usize] as char);
    }
    out
}

fn sha256_hex(prev: &str, body: &[u8]) -> String {
    let mut d = Digest::new(Hash::Sha256);
    d.update(prev.as_bytes());
    d.update(body);
    hex(&d.finish())
}

/// A record written member by member into one buffer. Key use writes one record per
/// operation, so this avoids the maps and small allocations a `serde_json::Value` costs;
/// serde_json still escapes every string.
struct Record(Vec<u8>);

impl Record {
    fn new() -> Record {
        let mut b = Vec::with_capacity(768);
        b.push(b'{');
        Record(b)
    }

    fn key(&mut self, k: &str) {
        if !matches!(self.0.last(), Some(b'{') | Some(b'[')) {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(k.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, v);
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.extend_from_slice(v.as_bytes());
    }

    fn value(&mut self, k: &str, v: &impl serde::Serialize) {
        self.key(k);
        let _ = serde_json::to_writer(&mut self.0, v);
    }

    fn open(&mut self, k: &str) {
        self.key(k);
        self.0.push(b'{');
    }

    /// An object as a list element.
    fn open_anonymous(&mut self) {
        self.0.push(b'{');
    }

    fn close(&mut self) {
        self.0.push(b'}');
    }
}

/// A random UUID for requestID / eventID, from the crypto library's generator (no system
/// call per record).
fn uuid() -> String {
    let mut b = [0u8; 16];
    if crate::crypto::random(&mut b).is_err() {
        return uuid::Uuid::new_v4().to_string();
    }
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn process_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| std::fs::read_to_string("/proc/self/comm").map(|s| s.trim().to_string()).unwrap_or_default())
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// The sequence number and hash of the last complete record of `f`. A torn last record
/// (a write cut short by a full disk or a crash) is moved aside to `<log>.torn` and cut
/// off, so that it never blocks a later append; so is a last line that is not a record.
fn last_record(f: &mut File, path: &Path) -> Result<(u64, String)> {
    let len = f.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok((0, GENESIS.to_string()));
    }
    // A record is far shorter than this; read back far enough to hold the last one.
    let back = len.min(64 * 1024);
    f.seek(SeekFrom::Start(len - back)).map_err(io)?;
    let mut tail = Vec::with_capacity(back as usize);
    f.take(back).read_to_end(&mut tail).map_err(io)?;
    // Where the last whole line ends; whatever follows it is torn.
    let mut end = tail.len();
    if tail.last() != Some(&b'\n') {
        end = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        set_aside(f, path, len - back + end as u64, &tail[end..])?;
    }
    let whole = &tail[..end];
    let body = whole.strip_suffix(b"\n").unwrap_or(whole);
    if body.is_empty() && len - back + end as u64 == 0 {
        return Ok((0, GENESIS.to_string()));
    }
    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let parsed = serde_json::from_slice::<Value>(&body[start..])
        .ok()
        .and_then(|v| Some((v["seq"].as_u64()?, v["hash"].as_str()?.to_string())));
    match parsed {
        Some(p) => Ok(p),
        None => {
            // A whole line that is no record: set aside too, and the one before is the last.
            set_aside(f, path, len - back + start as u64, &whole[start..])?;
            last_record(f, path)
        }
    }
}

/// Moves `bytes`, which start at `at` in the log, to `<log>.torn` and cuts the log there.
fn set_aside(f: &mut File, path: &Path, at: u64, bytes: &[u8]) -> Result<()> {
    let torn = path.with_extension("torn");
    use std::os::unix::fs::OpenOptionsExt;
    let mut t = OpenOptions::new().append(true).create(true).mode(0o600).open(&torn).map_err(io)?;
    // Best effort: the cut matters more than the copy, which a full disk may refuse.
    if let Err(e) = t.write_all(bytes).and_then(|_| t.write_all(b"\n")) {
        log::error!("audit log {}: torn record not copied to {}: {e}", path.display(), torn.display());
    }
    f.set_len(at).map_err(io)?;
    log::error!(
        "audit log {}: a torn or unreadable last record ({} bytes) was set aside in {}",
        path.display(),
        bytes.len(),
        torn.display()
    );
    Ok(())
}

/// Room kept beside the logs (`.reserve` in their directory): when a record cannot be
/// written for want of space, the reserve goes and the record is written. Writes to the
/// keystore first make sure the reserve is there (`AuditLog::ensure_room`), so that an
/// operation whose change was made always finds room for its record.
const RESERVE_LEN: usize = 1 << 20;

fn io(e: std::io::Error) -> Error {
    if is_full(&e) {
        Error::DeviceMemory
    } else {
        Error::storage(format!("audit log: {e}"))
    }
}

/// ENOSPC, or EFBIG (a file size limit), which a full disk and a quota both give.
fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(27))
}

impl AuditLog {
    fn reserve_path(&self) -> PathBuf {
        self.path.with_file_name(".reserve")
    }

    /// Makes sure the reserve is there before a change to the keystore: with no room for
    /// it, the change is refused (CKR_DEVICE_MEMORY) before anything is written.
    pub fn ensure_room(&self) -> Result<()> {
        let reserve = self.reserve_path();
        if std::fs::metadata(&reserve).is_ok_and(|m| m.len() == RESERVE_LEN as u64) {
            return Ok(());
        }
        if let Some(dir) = reserve.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let made = std::fs::write(&reserve, vec![0u8; RESERVE_LEN]);
        if let Err(e) = made {
            let _ = std::fs::remove_file(&reserve);
            return Err(io(e));
        }
        Ok(())
    }

    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog { path, open: Mutex::new(None), pid: std::process::id() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record; an error means the event could not be recorded.
    pub fn append(&self, token_serial: &str, e: &Event) -> Result<()> {
        // Members in a fixed order; the chain members (seq, prevHash, hash) are added under
        // the file lock, last.
        let mut r = Record::new();
        r.str("eventVersion", "1.08");
        r.str("eventTime", &clock::iso8601(clock::now()));
        r.str("eventSource", "kmstoken");
        r.str("eventName", e.name);
        r.str("eventType", if e.service { "AwsServiceEvent" } else { "AwsApiCall" });
        r.open("userIdentity");
        if e.service {
            r.str("invokedBy", "kmstoken");
            r.str("tokenSerial", token_serial);
        } else {
            r.str("type", "TokenUser");
            r.str("principalId", e.principal);
            r.str("arn", &crate::kms::policy::principal_arn(token_serial, e.principal));
            r.str("tokenSerial", token_serial);
            r.raw("processId", &self.pid.to_string());
            r.str("processName", process_name());
        }
        r.close();
        r.open("requestParameters");
        if let Some(k) = e.key_id {
            r.str("keyId", k);
        }
        if let Some(v) = e.key_version {
            r.raw("keyVersion", &v.to_string());
        }
        if let Some(m) = e.mechanism {
            r.str("mechanism", &format!("{m:#x}"));
        }
        if !e.encryption_context_keys.is_empty() {
            r.value("encryptionContextKeys", &e.encryption_context_keys);
        }
        if let Some(d) = &e.details {
            r.value("details", d);
        }
        r.close();
        if let Some((code, msg)) = &e.error {
            r.str("errorCode", code.name());
            r.str("errorMessage", msg);
        }
        if let Some(arn) = &e.key_arn {
            r.key("resources");
            r.0.push(b'[');
            r.open_anonymous();
            r.str("type", "AWS::KMS::Key");
            r.str("ARN", arn);
            r.close();
            r.0.push(b']');
        }
        r.raw("readOnly", if e.read_only { "true" } else { "false" });
        r.str("requestID", &uuid());
        r.str("eventID", &uuid());
        let urgent = e.error.is_some() || !e.read_only;
        self.write(r, urgent)
    }

    /// The log, opened and locked. The path is looked up once, under the lock: it tells
    /// whether the path still names the file this process holds open (else the file was
    /// replaced, and the new one is opened) and how long the file is, which says whether
    /// another process appended since.
    fn locked<'a>(&self, slot: &'a mut Option<Open>) -> Result<(&'a mut Open, u64)> {
        for _ in 0..3 {
            if slot.is_none() {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                use std::os::unix::fs::OpenOptionsExt;
                let file =
                    OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&self.path).map_err(io)?;
                let id = file_id(&file.metadata().map_err(io)?);
                // len = u64::MAX: unknown, so the first append reads the last record back.
                *slot = Some(Open { file, id, len: u64::MAX, seq: 0, hash: GENESIS.to_string(), last_sync: None });
            }
            let o = slot.as_mut().ok_or_else(|| Error::general("audit log not open"))?;
            o.file.lock().map_err(io)?;
            match std::fs::metadata(&self.path) {
                Ok(m) if file_id(&m) == o.id => {
                    let len = m.len();
                    return Ok((slot.as_mut().ok_or_else(|| Error::general("audit log not open"))?, len));
                }
                _ => {
                    let _ = o.file.unlock();
                    *slot = None;
                }
            }
        }
        Err(Error::storage(format!("audit log: {} keeps being replaced", self.path.display())))
    }

    fn write(&self, mut record: Record, urgent: bool) -> Result<()> {
        let mut slot = self.open.lock();
        let (o, len) = self.locked(&mut slot)?;
        let r = (|| {
            // Has anyone else appended since this process last did?
            let len = if len != o.len {
                (o.seq, o.hash) = last_record(&mut o.file, &self.path)?;
                o.file.metadata().map_err(io)?.len()
            } else {
                len
            };
            record.raw("seq", &(o.seq + 1).to_string());
            record.str("prevHash", &o.hash);
            record.close();
            let hash = sha256_hex(&o.hash, &record.0);
            // The hash goes last so that the hashed bytes are exactly the line before it.
            let mut line = record.0;
            line.pop();
            line.extend_from_slice(b",\"hash\":\"");
            line.extend_from_slice(hash.as_bytes());
            line.extend_from_slice(b"\"}\n");
            if let Err(e) = o.file.write_all(&line) {
                // No partial record stays; with the disk full, the reserve makes room.
                o.file.set_len(len).map_err(io)?;
                if !is_full(&e) || std::fs::remove_file(self.reserve_path()).is_err() {
                    return Err(io(e));
                }
                log::error!("audit log {}: disk full; the reserve was used for this record", self.path.display());
                o.file.write_all(&line).map_err(|e| {
                    let _ = o.file.set_len(len);
                    io(e)
                })?;
            }
            o.len = len + line.len() as u64;
            o.seq += 1;
            o.hash = hash;
            if urgent || o.last_sync.is_none_or(|t| t.elapsed().as_secs() >= 1) {
                o.file.sync_data().map_err(io)?;
                o.last_sync = Some(Instant::now());
            }
            Ok(())
        })();
        let _ = o.file.unlock();
        if r.is_err() {
            // Whatever state the file is in, read it afresh next time.
            *slot = None;
        }
        r
    }
}

/// The outcome of checking a log: how many records are sound, or the first problem.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact { records: u64 },
    Broken { line: u64, reason: String },
}

/// Checks every record's hash and the links between them.
pub fn verify(path: &Path) -> Result<Verdict> {
    let f = File::open(path).map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(io)?;
        let broken = |reason: String| Ok(Verdict::Broken { line: line_no, reason });
        let Ok(text) = std::str::from_utf8(&line) else {
            return broken("not UTF-8".into());
        };
        if text.len() < HASH_SUFFIX_LEN + 2 {
            return broken("truncated record".into());
        }
        let (head, tail) = text.split_at(text.len() - HASH_SUFFIX_LEN);
        let Some(claimed) = tail.strip_prefix(",\"hash\":\"").and_then(|t| t.strip_suffix("\"}")) else {
            return broken("record does not end with its hash".into());
        };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return broken("not JSON".into());
        };
        if v["prevHash"].as_str() != Some(prev.as_str()) {
            return broken("prevHash does not match the record before: a record was removed, added or moved".into());
        }
        if v["seq"].as_u64() != Some(n + 1) {
            return broken(format!("sequence number {} where {} was expected", v["seq"], n + 1));
        }
        if sha256_hex(&prev, format!("{head}}}").as_bytes()) != claimed {
            return broken("the record's content does not match its hash: it was altered".into());
        }
        prev = claimed.to_string();
        n += 1;
    }
    Ok(Verdict::Intact { records: n })
}

/// The last `count` records, optionally only those of one key.
pub fn tail(path: &Path, count: usize, key_id: Option<&str>) -> Result<Vec<Value>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut out: std::collections::VecDeque<Value> = std::collections::VecDeque::new();
    for line in BufReader::new(f).lines() {
        let Ok(v) = serde_json::from_str::<Value>(&line.map_err(io)?) else {
            continue;
        };
        if key_id.is_some_and(|k| v["requestParameters"]["keyId"].as_str() != Some(k)) {
            continue;
        }
        out.push_back(v);
        if out.len() > count {
            out.pop_front();
        }
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> Event<'_> {
        Event { name, principal: "user", key_id: Some("k1"), read_only: true, ..Default::default() }
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let log = AuditLog::new(p.clone());
        for name in ["Encrypt", "Decrypt", "Sign", "DisableKey"] {
            log.append("serial", &event(name)).unwrap();
        }
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { records: 4 });
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        // One byte changed in the second record.
        let altered = text.replacen("\"Decrypt\"", "\"Decrypu\"", 1);
        std::fs::write(&p, &altered).unwrap();
        assert!(matches!(verify(&p).unwrap(), Verdict::Broken { line: 2, .. }));

        // The third record removed.
        let removed = [lines[0], lines[1], lines[3]].join("\n") + "\n";
        std::fs::write(&p, removed).unwrap();
        assert!(matches!(verify(&p).unwrap(), Verdict::Broken { line: 3, .. }));

        // Two records swapped.
        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n") + "\n";
        std::fs::write(&p, swapped).unwrap();
        assert!(matches!(verify(&p).unwrap(), Verdict::Broken { line: 2, .. }));
    }

    #[test]
    fn concurrent_appenders_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = p.clone();
                s.spawn(move || {
                    // Separate AuditLog values, as separate processes would have.
                    let log = AuditLog::new(p);
                    for _ in 0..50 {
                        log.append("serial", &event("Encrypt")).unwrap();
                    }
                });
            }
        });
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { records: 200 });
        assert_eq!(tail(&p, 3, Some("k1")).unwrap().len(), 3);
        assert_eq!(tail(&p, 3, Some("other")).unwrap().len(), 0);
    }

    #[test]
    fn records_hold_no_secret_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let log = AuditLog::new(p.clone());
        let mut e = event("Encrypt");
        e.encryption_context_keys = vec!["purpose".into()];
        log.append("serial", &e).unwrap();
        let v = &tail(&p, 1, None).unwrap()[0];
        assert_eq!(v["requestParameters"]["encryptionContextKeys"][0], "purpose");
        assert!(v.get("plaintext").is_none() && v["requestParameters"].get("plaintext").is_none());
    }

    #[test]
    fn every_member_is_written_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let log = AuditLog::new(p.clone());
        let e = Event {
            name: "Encrypt",
            principal: "user/a\"b",
            key_id: Some("k1"),
            key_arn: Some("arn:kmstoken:kms:local:s:key/k1".into()),
            key_version: Some(3),
            mechanism: Some(0x1087),
            encryption_context_keys: vec!["a\nb".into()],
            error: Some((crate::error::AwsError::Disabled, "line\n\"quoted\"\u{1}".into())),
            details: Some(serde_json::json!({"window": 7})),
            ..Default::default()
        };
        log.append("serial", &e).unwrap();
        log.append("serial", &Event { name: "PurgeKey", service: true, ..Default::default() }).unwrap();
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { records: 2 });
        let text = std::fs::read_to_string(&p).unwrap();
        let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["userIdentity"]["principalId"], "user/a\"b");
        assert_eq!(v["userIdentity"]["processId"], std::process::id());
        assert_eq!(v["requestParameters"]["keyVersion"], 3);
        assert_eq!(v["requestParameters"]["mechanism"], "0x1087");
        assert_eq!(v["requestParameters"]["encryptionContextKeys"][0], "a\nb");
        assert_eq!(v["requestParameters"]["details"]["window"], 7);
        assert_eq!(v["errorMessage"], "line\n\"quoted\"\u{1}");
        assert_eq!(v["resources"][0]["ARN"], "arn:kmstoken:kms:local:s:key/k1");
        assert_eq!(v["readOnly"], false);
        assert_eq!(v["seq"], 1);
        assert_eq!(v["requestID"].as_str().unwrap().len(), 36);
        assert_ne!(v["requestID"], v["eventID"]);
        let w: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(w["eventType"], "AwsServiceEvent");
        assert_eq!(w["prevHash"], v["hash"]);
    }
}
