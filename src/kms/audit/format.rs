//! The trail's bytes: a segment's header, its records, the link that chains each record to
//! the one before (keyed when the writer has the audit key), and the rendering of a record
//! as a CloudTrail KMS event. Records are binary so that the hot path only copies fields
//! into a buffer; JSON is made when someone reads the trail.
//!
//! A segment: `MAGIC`, u16 header length, header; then records, each
//! `u32 body length | body | LINK_LEN bytes of link`. All integers little-endian.

use super::Event;
use crate::crypto::{Digest, Hash, Hmac};
use serde_json::{json, Map, Value};

pub const MAGIC: &[u8; 8] = b"KMSTRL01";
pub const LINK_LEN: usize = 16;
/// No record is longer: a length beyond it is damage, not a record.
pub const MAX_BODY: usize = 1 << 20;
pub type Link = [u8; LINK_LEN];

const KEYED: u8 = 1;
const SERVICE: u8 = 2;
const READ_ONLY: u8 = 4;
const NONE: u64 = u64::MAX;

/// Who wrote a segment: it names every record of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub uid: [u8; 16],
    pub pid: u32,
    pub created: i64,
    pub serial: String,
    pub process: String,
}

impl Header {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&self.uid);
        body.extend_from_slice(&self.pid.to_le_bytes());
        body.extend_from_slice(&self.created.to_le_bytes());
        put_str(&mut body, &self.serial);
        put_str(&mut body, &self.process);
        let mut out = Vec::with_capacity(body.len() + 10);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The header at the start of `bytes` and its length, or None when it is not one.
    pub fn decode(bytes: &[u8]) -> Option<(Header, usize)> {
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let mut r = Reader(rest.get(2..2 + len)?);
        let h = Header {
            uid: r.take(16)?.try_into().ok()?,
            pid: u32::from_le_bytes(r.take(4)?.try_into().ok()?),
            created: r.i64()?,
            serial: r.str()?.to_string(),
            process: r.str()?.to_string(),
        };
        Some((h, MAGIC.len() + 2 + len))
    }

    /// The link before the first record: the header's own hash, so that a record cannot be
    /// moved into another segment.
    pub fn first_link(&self) -> Link {
        let mut d = Digest::new(Hash::Sha256);
        d.update(b"kmstoken audit v1\0");
        d.update(&self.encode());
        truncate(&d.finish())
    }
}

fn truncate(b: &[u8]) -> Link {
    let mut l = [0u8; LINK_LEN];
    l.copy_from_slice(&b[..LINK_LEN]);
    l
}

/// The link of a record: an HMAC under the audit key when `key` is given, else a plain
/// hash (a record written before anyone logged in, protected once a keyed record follows).
pub fn link(key: Option<&Hmac>, prev: &Link, framed: &[u8]) -> Link {
    match key {
        Some(k) => {
            let mut m = k.clone();
            m.update(prev);
            m.update(framed);
            truncate(&m.finish())
        }
        None => {
            let mut d = Digest::new(Hash::Sha256);
            d.update(b"unkeyed\0");
            d.update(prev);
            d.update(framed);
            truncate(&d.finish())
        }
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s);
}

/// Appends the framed record (length and body, without its link) to `b`, which is empty.
pub fn encode(b: &mut Vec<u8>, e: &Event, keyed: bool, seq: u64, time: i64, generation: u64) {
    b.extend_from_slice(&[0; 4]);
    let flags =
        if keyed { KEYED } else { 0 } | if e.service { SERVICE } else { 0 } | if e.read_only { READ_ONLY } else { 0 };
    b.push(flags);
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&time.to_le_bytes());
    b.extend_from_slice(&generation.to_le_bytes());
    put_str(b, e.name);
    put_str(b, e.principal);
    put_str(b, e.key_id.unwrap_or(""));
    b.extend_from_slice(&e.key_version.unwrap_or(NONE).to_le_bytes());
    b.extend_from_slice(&e.mechanism.unwrap_or(NONE).to_le_bytes());
    let keys = e.context.map_or(0, |c| c.len().min(u16::MAX as usize));
    b.extend_from_slice(&(keys as u16).to_le_bytes());
    for k in e.context.into_iter().flat_map(|c| c.keys()).take(keys) {
        put_str(b, k);
    }
    match &e.error {
        Some((code, msg)) => {
            put_str(b, code.name());
            put_str(b, msg);
        }
        None => {
            put_str(b, "");
            put_str(b, "");
        }
    }
    let details = e.details.as_ref().map(|d| d.to_string()).unwrap_or_default();
    b.extend_from_slice(&(details.len() as u32).to_le_bytes());
    b.extend_from_slice(details.as_bytes());
    let len = (b.len() - 4) as u32;
    b[..4].copy_from_slice(&len.to_le_bytes());
}

/// A record as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub keyed: bool,
    pub service: bool,
    pub read_only: bool,
    pub seq: u64,
    pub time: i64,
    pub generation: u64,
    pub name: String,
    pub principal: String,
    pub key_id: Option<String>,
    pub key_version: Option<u64>,
    pub mechanism: Option<u64>,
    pub context_keys: Vec<String>,
    pub error: Option<(String, String)>,
    pub details: Option<Value>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

fn some(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

/// Decodes a record's body; None when it is not one.
pub fn decode(body: &[u8]) -> Option<Record> {
    let mut r = Reader(body);
    let flags = r.take(1)?[0];
    let seq = r.u64()?;
    let time = r.i64()?;
    let generation = r.u64()?;
    let name = r.str()?.to_string();
    let principal = r.str()?.to_string();
    let key_id = Some(r.str()?.to_string()).filter(|k| !k.is_empty());
    let key_version = some(r.u64()?);
    let mechanism = some(r.u64()?);
    let n = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    let context_keys = (0..n).map(|_| r.str().map(str::to_string)).collect::<Option<Vec<_>>>()?;
    let code = r.str()?.to_string();
    let msg = r.str()?.to_string();
    let dlen = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
    let details = r.take(dlen)?;
    if !r.0.is_empty() {
        return None;
    }
    let details = if details.is_empty() { None } else { Some(serde_json::from_slice(details).ok()?) };
    Some(Record {
        keyed: flags & KEYED != 0,
        service: flags & SERVICE != 0,
        read_only: flags & READ_ONLY != 0,
        seq,
        time,
        generation,
        name,
        principal,
        key_id,
        key_version,
        mechanism,
        context_keys,
        error: (!code.is_empty()).then_some((code, msg)),
        details,
    })
}

/// A UUID made from the segment and the record's place in it: request and event ids
/// without a random draw per record, the same every time the trail is read.
fn uuid(h: &Header, seq: u64, what: &[u8]) -> String {
    let mut d = Digest::new(Hash::Sha256);
    d.update(what);
    d.update(&h.uid);
    d.update(&seq.to_le_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.finish()[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// The record as a CloudTrail KMS event, with where it sits in the trail.
pub fn render(h: &Header, segment: &str, r: &Record) -> Value {
    let mut ident = Map::new();
    if r.service {
        ident.insert("invokedBy".into(), json!("kmstoken"));
        ident.insert("tokenSerial".into(), json!(h.serial));
    } else {
        ident.insert("type".into(), json!("TokenUser"));
        ident.insert("principalId".into(), json!(r.principal));
        ident.insert("arn".into(), json!(crate::kms::policy::principal_arn(&h.serial, &r.principal)));
        ident.insert("tokenSerial".into(), json!(h.serial));
        ident.insert("processId".into(), json!(h.pid));
        ident.insert("processName".into(), json!(h.process));
    }
    let mut params = Map::new();
    if let Some(k) = &r.key_id {
        params.insert("keyId".into(), json!(k));
    }
    if let Some(v) = r.key_version {
        params.insert("keyVersion".into(), json!(v));
    }
    if let Some(m) = r.mechanism {
        params.insert("mechanism".into(), json!(format!("{m:#x}")));
    }
    if !r.context_keys.is_empty() {
        params.insert("encryptionContextKeys".into(), json!(r.context_keys));
    }
    if let Some(d) = &r.details {
        params.insert("details".into(), d.clone());
    }
    let mut v = Map::new();
    v.insert("eventVersion".into(), json!("1.08"));
    v.insert("eventTime".into(), json!(crate::kms::clock::iso8601(r.time)));
    v.insert("eventSource".into(), json!("kmstoken"));
    v.insert("eventName".into(), json!(r.name));
    v.insert("eventType".into(), json!(if r.service { "AwsServiceEvent" } else { "AwsApiCall" }));
    v.insert("userIdentity".into(), Value::Object(ident));
    v.insert("requestParameters".into(), Value::Object(params));
    if let Some((code, msg)) = &r.error {
        v.insert("errorCode".into(), json!(code));
        v.insert("errorMessage".into(), json!(msg));
    }
    if let Some(k) = &r.key_id {
        let arn = format!("arn:kmstoken:kms:local:{}:key/{k}", h.serial);
        v.insert("resources".into(), json!([{ "type": "AWS::KMS::Key", "ARN": arn }]));
    }
    v.insert("readOnly".into(), json!(r.read_only));
    v.insert("requestID".into(), json!(uuid(h, r.seq, b"request")));
    v.insert("eventID".into(), json!(uuid(h, r.seq, b"event")));
    v.insert("segment".into(), json!(segment));
    v.insert("seq".into(), json!(r.seq));
    v.insert("keyed".into(), json!(r.keyed));
    v.insert("generation".into(), json!(r.generation));
    Value::Object(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsError;
    use crate::kms::blob::Context;

    #[test]
    fn a_record_reads_back_as_written() {
        let mut ctx = Context::new();
        ctx.insert("purpose".into(), "test".into());
        let e = Event {
            name: "Encrypt",
            principal: "user/a\"b",
            key_id: Some("k1"),
            key_version: Some(3),
            mechanism: Some(0x1087),
            context: Some(&ctx),
            error: Some((AwsError::Disabled, "line\n\"quoted\"".into())),
            details: Some(json!({"window": 7})),
            read_only: true,
            ..Default::default()
        };
        let mut b = Vec::new();
        encode(&mut b, &e, true, 9, 1_795_478_400, 42);
        let len = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, b.len());
        let r = decode(&b[4..]).unwrap();
        assert!(r.keyed && r.read_only && !r.service);
        assert_eq!((r.seq, r.time, r.generation), (9, 1_795_478_400, 42));
        assert_eq!((r.name.as_str(), r.principal.as_str()), ("Encrypt", "user/a\"b"));
        assert_eq!(r.context_keys, ["purpose"]);
        assert_eq!(r.error.as_ref().map(|(c, _)| c.as_str()), Some(AwsError::Disabled.name()));
        let h = Header { uid: [1; 16], pid: 7, created: 0, serial: "s".into(), process: "p".into() };
        let v = render(&h, "seg", &r);
        assert_eq!(v["resources"][0]["ARN"], "arn:kmstoken:kms:local:s:key/k1");
        assert_eq!(v["requestParameters"]["mechanism"], "0x1087");
        assert_eq!(v["requestParameters"]["details"]["window"], 7);
        assert_eq!(v["userIdentity"]["processId"], 7);
        assert_ne!(v["requestID"], v["eventID"]);
        assert_eq!(Header::decode(&h.encode()).unwrap(), (h.clone(), h.encode().len()));
        // Any cut of the body is refused, not misread.
        for cut in 0..b.len() - 4 {
            assert!(decode(&b[4..4 + cut]).is_none(), "cut at {cut}");
        }
    }
}
