//! The SQLite keystore: one database per token, WAL mode, synchronous=FULL so a commit is
//! durable when it returns, a busy timeout so that processes sharing a token wait for each
//! other instead of failing, and short transactions. Beside each database, a small anchor
//! file holds the highest generation the database has reached, so that a database put
//! back from an older copy shows (see `Store::anchor`).

use super::tree::{self, Nodes};
use super::{
    codec, Alias, Attempt, Change, IndexEntry, LoadedRow, NamedUser, Role, Scan, Store, StoredObject, Tag, TokenRecord,
    TokenState, Trail, TrailHead,
};
use crate::error::{Error, Result};
use crate::seal::{Integrity, Sum256};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Migrations, in order; the schema_version table records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE token(
        id INTEGER PRIMARY KEY CHECK (id = 1),
        serial TEXT NOT NULL, label TEXT NOT NULL, slot_id INTEGER NOT NULL,
        so_wrap BLOB NOT NULL, user_wrap BLOB,
        so_failed INTEGER NOT NULL DEFAULT 0, user_failed INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE objects(
        id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE,
        class INTEGER NOT NULL, private INTEGER NOT NULL, attrs BLOB NOT NULL);
     CREATE TABLE idx(
        attr INTEGER NOT NULL, h BLOB NOT NULL,
        obj INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
        PRIMARY KEY (attr, h, obj)) WITHOUT ROWID;
     CREATE INDEX idx_by_obj ON idx(obj);
     CREATE TABLE changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, obj INTEGER NOT NULL);",
    // 2: KMS aliases and tags, which belong to a key id rather than to one object.
    "CREATE TABLE aliases(
        name TEXT PRIMARY KEY, key_id TEXT NOT NULL,
        created INTEGER NOT NULL, updated INTEGER NOT NULL);
     CREATE INDEX aliases_by_key ON aliases(key_id);
     CREATE TABLE tags(
        key_id TEXT NOT NULL, tag_key TEXT NOT NULL, tag_value TEXT NOT NULL,
        PRIMARY KEY (key_id, tag_key)) WITHOUT ROWID;",
    // 3: named users (principals user/NAME), each with its own PIN wrap and counter.
    "CREATE TABLE named_users(
        name TEXT PRIMARY KEY, wrap BLOB NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);",
    // 4: every row authenticated (a MAC per row, the generation of each object's last
    // write) and the token's authenticated state; change records name the generation
    // that made them, and the token remembers up to which generation they were pruned.
    // The rows get their MACs at the first login after this migration (`Store::seal`).
    // The index of object MACs lets the login's scan read them without the objects.
    "ALTER TABLE objects ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE objects ADD COLUMN mac BLOB;
     ALTER TABLE aliases ADD COLUMN mac BLOB;
     ALTER TABLE tags ADD COLUMN mac BLOB;
     ALTER TABLE named_users ADD COLUMN mac BLOB;
     ALTER TABLE token ADD COLUMN state BLOB;
     ALTER TABLE token ADD COLUMN changes_floor INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE changes ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
     UPDATE changes SET gen = seq;
     UPDATE token SET changes_floor = COALESCE((SELECT MIN(gen) - 1 FROM changes), generation);
     CREATE INDEX objects_macs ON objects(mac);",
    // 5: the audit trail's anchors: where each segment stood at the last write under the
    // key, MAC'd like every row and counted in the state's sum.
    "CREATE TABLE trail_anchors(
        segment TEXT PRIMARY KEY, records INTEGER NOT NULL, bytes INTEGER NOT NULL,
        link BLOB NOT NULL, mac BLOB NOT NULL);",
    // 6: the objects' MAC tree (`tree`), whose root the state authenticates. It is built at
    // the first write under the key after this migration.
    "CREATE TABLE mac_tree(
        level INTEGER NOT NULL, idx INTEGER NOT NULL, node BLOB NOT NULL,
        PRIMARY KEY (level, idx)) WITHOUT ROWID;",
];

/// The tables whose rows carry a MAC counted in the token state's sum.
const MACED_TABLES: [&str; 5] = ["objects", "aliases", "tags", "named_users", "trail_anchors"];

/// How many change records are kept; a process further behind reloads what it caches.
const CHANGES_KEPT: i64 = 4096;

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// SQLite's data_version and the generation read with it: while another connection
    /// has committed nothing, data_version stays put and the generation need not be read.
    seen: Mutex<Option<(i64, u64)>>,
    /// The audit trail anchored by writes under the key.
    trail: Mutex<Option<Arc<dyn Trail>>>,
    /// The change counter beside the database (`<db>.changes`): the generation, written by
    /// every write inside its transaction. A reader whose generation it equals has missed
    /// nothing, and learns it with one read of eight bytes instead of a round through
    /// SQLite and its file locks. None when the file cannot be used: then SQLite is asked.
    counter: Option<std::fs::File>,
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", [])?;
    let have: Option<i64> = tx.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).optional()?;
    let have = have.unwrap_or(0) as usize;
    if have > MIGRATIONS.len() {
        return Err(Error::storage(format!(
            "schema version {have} is newer than this kmstoken knows ({})",
            MIGRATIONS.len()
        )));
    }
    if have == MIGRATIONS.len() {
        return Ok(());
    }
    for m in &MIGRATIONS[have..] {
        tx.execute_batch(m)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute("INSERT INTO schema_version(version) VALUES (?1)", [MIGRATIONS.len() as i64])?;
    tx.commit()?;
    Ok(())
}

/// Creates `path` with mode 0600 so that SQLite (and its -wal/-shm files, which copy the
/// mode of the database) never makes it readable to others.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
    Ok(())
}

const RECORD_COLUMNS: &str =
    "serial, label, slot_id, so_wrap, user_wrap, so_failed, user_failed, created, generation, state";

fn row_to_record(r: &rusqlite::Row) -> rusqlite::Result<(TokenRecord, Option<Vec<u8>>)> {
    Ok((
        TokenRecord {
            serial: r.get(0)?,
            label: r.get(1)?,
            slot_id: r.get::<_, i64>(2)? as u64,
            so_wrap: r.get(3)?,
            user_wrap: r.get(4)?,
            so_failed: r.get::<_, i64>(5)? as u32,
            user_failed: r.get::<_, i64>(6)? as u32,
            created: r.get(7)?,
            generation: r.get::<_, i64>(8)? as u64,
            state: None,
        },
        r.get(9)?,
    ))
}

fn read_record(conn: &Connection) -> Result<TokenRecord> {
    let (mut rec, state) = conn
        .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM token WHERE id = 1"))?
        .query_row([], row_to_record)
        .optional()?
        .ok_or_else(|| Error::storage("no token record"))?;
    rec.state = state.map(|b| codec::decode_state(&b)).transpose()?;
    Ok(rec)
}

fn named_failed(conn: &Connection) -> Result<u32> {
    let n: i64 =
        conn.prepare_cached("SELECT COALESCE(SUM(failed), 0) FROM named_users")?.query_row([], |r| r.get(0))?;
    Ok(n.clamp(0, u32::MAX as i64) as u32)
}

fn row_to_named_user(r: &rusqlite::Row) -> rusqlite::Result<NamedUser> {
    Ok(NamedUser {
        name: r.get(0)?,
        wrap: r.get(1)?,
        failed: r.get::<_, i64>(2)? as u32,
        created: r.get(3)?,
        mac: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
    })
}

fn row_to_alias(r: &rusqlite::Row) -> rusqlite::Result<Alias> {
    Ok(Alias {
        name: r.get(0)?,
        key_id: r.get(1)?,
        created: r.get(2)?,
        updated: r.get(3)?,
        mac: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
    })
}

fn alias_named(tx: &Transaction, name: &str) -> Result<Option<Alias>> {
    Ok(tx
        .prepare_cached("SELECT name, key_id, created, updated, mac FROM aliases WHERE name = ?1")?
        .query_row([name], row_to_alias)
        .optional()?)
}

fn role_column(role: Role) -> &'static str {
    match role {
        Role::So => "so_failed",
        Role::User => "user_failed",
    }
}

/// A write under the key in progress: the generation it makes, the token's serial, and
/// the sum of row MACs as it changes.
struct Keyed<'a> {
    auth: &'a Integrity,
    serial: String,
    gen: u64,
    digest: Sum256,
    /// The objects' MACs as they change.
    tree: tree::Edit,
    changed: Vec<u64>,
}

impl<'a> Keyed<'a> {
    fn new(auth: &'a Integrity, serial: String, gen: u64, digest: Sum256) -> Self {
        Keyed { auth, serial, gen, digest, tree: tree::Edit::default(), changed: Vec::new() }
    }

    /// One row's MAC replaced by another (None: no row).
    fn swap(&mut self, old: Option<&[u8]>, new: Option<&[u8]>) {
        if let Some(m) = old {
            self.digest.sub(m);
        }
        if let Some(m) = new {
            self.digest.add(m);
        }
    }

    fn insert_object(&mut self, tx: &Transaction, obj: &StoredObject, index: &[IndexEntry]) -> Result<u64> {
        let attrs = codec::encode(&obj.attrs);
        tx.prepare_cached("INSERT INTO objects(uid, class, private, attrs, gen) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![obj.uid, obj.class as i64, obj.private, attrs, self.gen as i64])?;
        let id = tx.last_insert_rowid() as u64;
        let mac =
            self.auth.mac(&codec::object_row(&self.serial, id, &obj.uid, obj.class, obj.private, self.gen, &attrs));
        tx.prepare_cached("UPDATE objects SET mac = ?2 WHERE id = ?1")?.execute(params![id as i64, mac.as_slice()])?;
        self.swap(None, Some(&mac));
        self.tree.set(tx, id, Some(&mac))?;
        put_index(tx, id, index)?;
        self.changed.push(id);
        Ok(id)
    }

    fn update_object(&mut self, tx: &Transaction, obj: &StoredObject, index: &[IndexEntry]) -> Result<()> {
        // The row's own uid and class are what the MAC binds: they never change.
        let (uid, class, old): (String, i64, Option<Vec<u8>>) = tx
            .prepare_cached("SELECT uid, class, mac FROM objects WHERE id = ?1")?
            .query_row([obj.id as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .ok_or(Error::ObjectHandleInvalid)?;
        let attrs = codec::encode(&obj.attrs);
        let mac =
            self.auth.mac(&codec::object_row(&self.serial, obj.id, &uid, class as u64, obj.private, self.gen, &attrs));
        tx.prepare_cached("UPDATE objects SET private = ?2, attrs = ?3, gen = ?4, mac = ?5 WHERE id = ?1")?
            .execute(params![obj.id as i64, obj.private, attrs, self.gen as i64, mac.as_slice()])?;
        self.swap(old.as_deref(), Some(&mac));
        self.tree.set(tx, obj.id, Some(&mac))?;
        tx.execute("DELETE FROM idx WHERE obj = ?1", [obj.id as i64])?;
        put_index(tx, obj.id, index)?;
        self.changed.push(obj.id);
        Ok(())
    }

    fn delete_object(&mut self, tx: &Transaction, id: u64) -> Result<()> {
        let old: Option<Vec<u8>> = tx
            .prepare_cached("SELECT mac FROM objects WHERE id = ?1")?
            .query_row([id as i64], |r| r.get(0))
            .optional()?
            .ok_or(Error::ObjectHandleInvalid)?;
        tx.execute("DELETE FROM objects WHERE id = ?1", [id as i64])?;
        self.swap(old.as_deref(), None);
        self.tree.set(tx, id, None)?;
        self.changed.push(id);
        Ok(())
    }

    fn alias_mac(&self, a: &Alias) -> [u8; 32] {
        self.auth.mac(&codec::alias_row(&self.serial, a))
    }

    fn tag_mac(&self, t: &Tag) -> [u8; 32] {
        self.auth.mac(&codec::tag_row(&self.serial, t))
    }

    /// Anchors a segment of the audit trail where it stands now.
    fn put_anchor(&mut self, tx: &Transaction, h: &TrailHead) -> Result<()> {
        let old: Option<Vec<u8>> = tx
            .prepare_cached("SELECT mac FROM trail_anchors WHERE segment = ?1")?
            .query_row([&h.segment], |r| r.get(0))
            .optional()?;
        let mac = self.auth.mac(&codec::anchor_row(&self.serial, h));
        tx.prepare_cached(
            "INSERT OR REPLACE INTO trail_anchors(segment, records, bytes, link, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![h.segment, h.records as i64, h.bytes as i64, h.link.as_slice(), mac.as_slice()])?;
        self.swap(old.as_deref(), Some(&mac));
        Ok(())
    }

    fn user_mac(&self, name: &str, wrap: &[u8], created: i64) -> [u8; 32] {
        self.auth.mac(&codec::user_row(&self.serial, name, wrap, created))
    }
}

fn put_index(tx: &Transaction, id: u64, index: &[IndexEntry]) -> Result<()> {
    let mut st = tx.prepare_cached("INSERT OR IGNORE INTO idx(attr, h, obj) VALUES (?1, ?2, ?3)")?;
    for (attr, h) in index {
        st.execute(params![*attr as i64, h, id as i64])?;
    }
    Ok(())
}

/// The state after a write under the key, authenticated.
fn authenticate_state(
    auth: &Integrity,
    rec: &TokenRecord,
    gen: u64,
    named: u32,
    digest: Sum256,
    tree: [u8; 32],
) -> TokenState {
    let mut st = TokenState {
        generation: gen,
        so_failed: rec.so_failed,
        user_failed: rec.user_failed,
        named_failed: named,
        digest: digest.to_bytes(),
        tree: Some(tree),
        mac: Vec::new(),
    };
    st.mac = auth.mac(&codec::state_row(rec, &st)).to_vec();
    st
}

/// The state of a new token: no rows, no failures, generation 0.
pub fn initial_state(auth: &Integrity, rec: &TokenRecord) -> TokenState {
    authenticate_state(auth, rec, 0, 0, Sum256::default(), [0; 32])
}

impl Nodes for Transaction<'_> {
    fn get(&self, key: tree::Key) -> Result<Option<Vec<u8>>> {
        Ok(self
            .prepare_cached("SELECT node FROM mac_tree WHERE level = ?1 AND idx = ?2")?
            .query_row(params![key.0, key.1 as i64], |r| r.get(0))
            .optional()?)
    }

    fn put(&self, key: tree::Key, node: Option<&[u8]>) -> Result<()> {
        match node {
            Some(n) => self
                .prepare_cached("INSERT OR REPLACE INTO mac_tree(level, idx, node) VALUES (?1, ?2, ?3)")?
                .execute(params![key.0, key.1 as i64, n])?,
            None => self
                .prepare_cached("DELETE FROM mac_tree WHERE level = ?1 AND idx = ?2")?
                .execute(params![key.0, key.1 as i64])?,
        };
        Ok(())
    }
}

fn load_row(conn: &Connection, id: u64) -> Result<Option<LoadedRow>> {
    let row = conn
        .prepare_cached("SELECT uid, class, private, attrs, gen, mac FROM objects WHERE id = ?1")?
        .query_row([id as i64], |r| {
            Ok(LoadedRow {
                id,
                uid: r.get(0)?,
                class: r.get::<_, i64>(1)? as u64,
                private: r.get(2)?,
                attrs: r.get(3)?,
                gen: r.get::<_, i64>(4)? as u64,
                mac: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
            })
        })
        .optional()?;
    Ok(row)
}

/// Every object row's id and MAC (rows without one are left out).
fn object_macs(tx: &Transaction) -> Result<Vec<(u64, Vec<u8>)>> {
    let rows: Vec<(i64, Option<Vec<u8>>)> = tx
        .prepare("SELECT id, mac FROM objects")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.into_iter().filter_map(|(id, m)| Some((id as u64, m?))).collect())
}

/// The MAC tree made again from the object rows as they are; returns its root.
fn rebuild_tree(tx: &Transaction) -> Result<[u8; 32]> {
    tx.execute("DELETE FROM mac_tree", [])?;
    let mut edit = tree::Edit::default();
    for (id, mac) in object_macs(tx)? {
        edit.set(tx, id, Some(&mac))?;
    }
    edit.finish(tx)
}

impl SqliteStore {
    /// Creates a new token database at `path` (which must not exist).
    pub fn create(path: &Path, rec: &TokenRecord) -> Result<SqliteStore> {
        create_private_file(path)?;
        let made = (|| {
            let mut conn = Connection::open(path)?;
            configure(&conn)?;
            migrate(&mut conn)?;
            conn.execute(
                "INSERT INTO token(id, serial, label, slot_id, so_wrap, user_wrap, created, generation, state)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rec.serial,
                    rec.label,
                    rec.slot_id as i64,
                    rec.so_wrap,
                    rec.user_wrap,
                    rec.created,
                    rec.generation as i64,
                    rec.state.as_ref().map(codec::encode_state)
                ],
            )?;
            let store = SqliteStore::with(path, conn);
            store.raise_anchor(rec.generation)?;
            store.set_counter(rec.generation);
            Ok(store)
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(anchor_path(path));
            let _ = std::fs::remove_file(counter_path(path));
        }
        made
    }

    /// Opens an existing token database, running pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
        configure(&conn).map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
        migrate(&mut conn).map_err(|e| Error::storage(format!("{}: {e}", path.display())))?;
        let store = SqliteStore::with(path, conn);
        store.record()?;
        Ok(store)
    }

    fn with(path: &Path, conn: Connection) -> SqliteStore {
        use std::os::unix::fs::OpenOptionsExt;
        let counter = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(counter_path(path))
            .map_err(|e| log::warn!("{}: no change counter ({e}); every call asks SQLite", path.display()))
            .ok();
        SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            seen: Mutex::new(None),
            trail: Mutex::new(None),
            counter,
        }
    }

    fn set_counter(&self, generation: u64) {
        use std::os::unix::fs::FileExt;
        if let Some(f) = &self.counter {
            if let Err(e) = f.write_all_at(&generation.to_le_bytes(), 0) {
                log::warn!("{}: change counter not written: {e}", self.path.display());
            }
        }
    }

    /// The change counter, when it can be read.
    fn counter(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        self.counter.as_ref()?.read_exact_at(&mut b, 0).ok()?;
        Some(u64::from_le_bytes(b))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock taken up front, so two writers
    /// queue on the busy timeout rather than deadlock on an upgrade), moves the generation
    /// by one, records the objects `f` changed, commits durably, and raises the anchor.
    fn write<T>(&self, f: impl FnOnce(&Transaction, u64) -> Result<(T, Vec<u64>)>) -> Result<T> {
        // Our own commits do not move data_version: forget what was seen.
        *self.seen.lock() = None;
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gen: i64 = tx.prepare_cached("SELECT generation FROM token WHERE id = 1")?.query_row([], |r| r.get(0))?;
        let gen = gen as u64 + 1;
        let (out, changed) = f(&tx, gen)?;
        tx.execute("UPDATE token SET generation = ?1 WHERE id = 1", [gen as i64])?;
        Self::note_changes(&tx, gen, &changed)?;
        // Under the write lock, before the commit: a reader that sees the new value before
        // the commit shows finds the database behind it and asks again next time; one
        // that still sees the old value runs before this write returns.
        self.set_counter(gen);
        tx.commit()?;
        drop(conn);
        if let Some(t) = self.trail.lock().as_ref() {
            t.committed(gen);
        }
        // The database is durable at `gen`; a lost anchor update only weakens the check.
        if let Err(e) = self.raise_anchor(gen) {
            log::warn!("{}: anchor not updated: {e}", self.path.display());
        }
        Ok(out)
    }

    /// A write under the key: the state checked, `f`'s changes made, the state renewed.
    fn keyed<T>(&self, auth: &Integrity, f: impl FnOnce(&Transaction, &mut Keyed) -> Result<T>) -> Result<T> {
        self.write(|tx, gen| {
            let rec = read_record(tx)?;
            let st = rec.state.as_ref().ok_or_else(|| Error::storage("the token state is missing"))?;
            if !auth.verify(&codec::state_row(&rec, st), &st.mac) {
                return Err(Error::storage("the token state fails its integrity check"));
            }
            let digest = Sum256::from_bytes(&st.digest).ok_or_else(|| Error::storage("token state"))?;
            // Counters lowered in the file are put back where they must stand before the
            // new state vouches for them.
            let c = rec.counters(named_failed(tx)?);
            if !c.consistent {
                tx.execute(
                    "UPDATE token SET so_failed = ?1, user_failed = ?2 WHERE id = 1",
                    params![c.so as i64, c.user as i64],
                )?;
                tx.execute("UPDATE named_users SET failed = failed + ?1", [c.named_extra as i64])?;
            }
            // A state from before the MAC tree gets one, over the rows it vouches for.
            if st.tree.is_none() {
                rebuild_tree(tx)?;
            }
            let mut k = Keyed::new(auth, rec.serial.clone(), gen, digest);
            let out = f(tx, &mut k)?;
            let trail = self.trail.lock().clone();
            for h in trail.map(|t| t.heads()).unwrap_or_default() {
                k.put_anchor(tx, &h)?;
            }
            // What `f` changed of the token record (a PIN wrap, a counter) is in the state.
            let mut rec = read_record(tx)?;
            rec.generation = gen;
            let root = std::mem::take(&mut k.tree).finish(tx)?;
            let st = authenticate_state(auth, &rec, gen, named_failed(tx)?, k.digest, root);
            tx.execute("UPDATE token SET state = ?1 WHERE id = 1", [codec::encode_state(&st)])?;
            Ok((out, k.changed))
        })
    }

    fn note_changes(tx: &Transaction, gen: u64, objects: &[u64]) -> Result<()> {
        let mut st = tx.prepare_cached("INSERT INTO changes(obj, gen) VALUES (?1, ?2)")?;
        for obj in objects {
            st.execute(params![*obj as i64, gen as i64])?;
        }
        let seq = tx.last_insert_rowid();
        if !objects.is_empty() && seq % 256 == 0 {
            let cut = seq - CHANGES_KEPT;
            tx.execute(
                "UPDATE token SET changes_floor = MAX(changes_floor,
                    COALESCE((SELECT MAX(gen) FROM changes WHERE seq <= ?1), 0)) WHERE id = 1",
                [cut],
            )?;
            tx.execute("DELETE FROM changes WHERE seq <= ?1", [cut])?;
        }
        Ok(())
    }

    /// Raises the anchor file to `gen` (never lowers it: processes that commit in one
    /// order may get here in the other).
    fn raise_anchor(&self, gen: u64) -> Result<()> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let path = anchor_path(&self.path);
        let io = |e: std::io::Error| Error::storage(format!("{}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        f.lock().map_err(io)?;
        let mut text = String::new();
        f.read_to_string(&mut text).map_err(io)?;
        if parse_anchor(&text).is_none_or(|have| have < gen) {
            f.set_len(0).map_err(io)?;
            f.rewind().map_err(io)?;
            f.write_all(format!("{gen}\n").as_bytes()).map_err(io)?;
        }
        let _ = f.unlock();
        Ok(())
    }
}

fn anchor_path(db: &Path) -> PathBuf {
    db.with_extension("anchor")
}

fn counter_path(db: &Path) -> PathBuf {
    db.with_extension("changes")
}

fn parse_anchor(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

impl Store for SqliteStore {
    fn record(&self) -> Result<TokenRecord> {
        read_record(&self.conn.lock()).map_err(|e| Error::storage(format!("{}: {e}", self.path.display())))
    }

    fn set_slot_id(&self, slot_id: u64) -> Result<()> {
        self.write(|tx, _| {
            tx.execute("UPDATE token SET slot_id = ?1 WHERE id = 1", [slot_id as i64])?;
            Ok(((), Vec::new()))
        })
    }

    fn set_user_wrap(&self, wrap: &[u8], auth: &Integrity) -> Result<()> {
        self.keyed(auth, |tx, _| {
            tx.execute("UPDATE token SET user_wrap = ?1, user_failed = 0 WHERE id = 1", [wrap])?;
            Ok(())
        })
    }

    fn set_so_wrap(&self, wrap: &[u8], auth: &Integrity) -> Result<()> {
        self.keyed(auth, |tx, _| {
            tx.execute("UPDATE token SET so_wrap = ?1, so_failed = 0 WHERE id = 1", [wrap])?;
            Ok(())
        })
    }

    fn login_lock(&self) -> Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path.with_extension("login");
        let io = |e: std::io::Error| Error::storage(format!("{}: {e}", path.display()));
        let f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&path).map_err(io)?;
        f.lock().map_err(io)?;
        Ok(f)
    }

    fn login_failed(&self, role: Role, max: u32) -> Result<Attempt> {
        let col = role_column(role);
        self.write(|tx, _| {
            let c = read_record(tx)?.counters(named_failed(tx)?);
            let have = match role {
                Role::So => c.so,
                Role::User => c.user,
            };
            if have >= max {
                return Err(Error::PinLocked);
            }
            tx.execute(&format!("UPDATE token SET {col} = {col} + 1 WHERE id = 1"), [])?;
            Ok((Attempt::Counted(have + 1), Vec::new()))
        })
        .or_else(|e| if e == Error::PinLocked { Ok(Attempt::Locked) } else { Err(e) })
    }

    fn login_succeeded(&self, role: Role, auth: &Integrity) -> Result<()> {
        let col = role_column(role);
        self.keyed(auth, |tx, _| {
            tx.execute(&format!("UPDATE token SET {col} = 0 WHERE id = 1"), [])?;
            Ok(())
        })
    }

    fn named_users(&self) -> Result<Vec<NamedUser>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT name, wrap, failed, created, mac FROM named_users ORDER BY name")?;
        let rows = st.query_map([], row_to_named_user)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn named_user(&self, name: &str) -> Result<Option<NamedUser>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT name, wrap, failed, created, mac FROM named_users WHERE name = ?1")?;
        Ok(st.query_row([name], row_to_named_user).optional()?)
    }

    fn add_named_user(&self, user: &NamedUser, auth: &Integrity) -> Result<bool> {
        self.keyed(auth, |tx, k| {
            let mac = k.user_mac(&user.name, &user.wrap, user.created);
            let n = tx.execute(
                "INSERT OR IGNORE INTO named_users(name, wrap, failed, created, mac) VALUES (?1, ?2, 0, ?3, ?4)",
                params![user.name, user.wrap, user.created, mac.as_slice()],
            )?;
            if n == 1 {
                k.swap(None, Some(&mac));
            }
            Ok(n == 1)
        })
    }

    fn set_named_wrap(&self, name: &str, wrap: &[u8], auth: &Integrity) -> Result<bool> {
        self.keyed(auth, |tx, k| {
            let Some((created, old)) = tx
                .query_row("SELECT created, mac FROM named_users WHERE name = ?1", [name], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
                })
                .optional()?
            else {
                return Ok(false);
            };
            let mac = k.user_mac(name, wrap, created);
            tx.execute(
                "UPDATE named_users SET wrap = ?2, failed = 0, mac = ?3 WHERE name = ?1",
                params![name, wrap, mac.as_slice()],
            )?;
            k.swap(old.as_deref(), Some(&mac));
            Ok(true)
        })
    }

    fn delete_named_user(&self, name: &str, auth: &Integrity) -> Result<bool> {
        self.keyed(auth, |tx, k| {
            let old: Option<Option<Vec<u8>>> =
                tx.query_row("SELECT mac FROM named_users WHERE name = ?1", [name], |r| r.get(0)).optional()?;
            let Some(old) = old else {
                return Ok(false);
            };
            tx.execute("DELETE FROM named_users WHERE name = ?1", [name])?;
            k.swap(old.as_deref(), None);
            Ok(true)
        })
    }

    fn named_login_failed(&self, name: &str, max: u32) -> Result<Option<Attempt>> {
        self.write(|tx, _| {
            let extra = read_record(tx)?.counters(named_failed(tx)?).named_extra;
            let Some(failed) = tx
                .query_row("SELECT failed FROM named_users WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
                .optional()?
            else {
                return Err(Error::UserTypeInvalid);
            };
            let have = (failed.clamp(0, u32::MAX as i64) as u32).saturating_add(extra);
            if have >= max {
                return Err(Error::PinLocked);
            }
            tx.execute("UPDATE named_users SET failed = failed + 1 WHERE name = ?1", [name])?;
            Ok((Some(Attempt::Counted(have + 1)), Vec::new()))
        })
        .or_else(|e| match e {
            Error::PinLocked => Ok(Some(Attempt::Locked)),
            Error::UserTypeInvalid => Ok(None),
            e => Err(e),
        })
    }

    fn named_login_succeeded(&self, name: &str, auth: &Integrity) -> Result<()> {
        self.keyed(auth, |tx, _| {
            tx.execute("UPDATE named_users SET failed = 0 WHERE name = ?1", [name])?;
            Ok(())
        })
    }

    fn commit(&self, changes: Vec<Change>, auth: &Integrity) -> Result<Vec<u64>> {
        self.keyed(auth, |tx, k| {
            let mut ids = Vec::new();
            for c in changes {
                match c {
                    Change::Insert(obj, index) => ids.push(k.insert_object(tx, &obj, &index)?),
                    Change::Update(obj, index) => k.update_object(tx, &obj, &index)?,
                    Change::Delete(id) => k.delete_object(tx, id)?,
                }
            }
            Ok(ids)
        })
    }

    fn load(&self, id: u64) -> Result<Option<LoadedRow>> {
        load_row(&self.conn.lock(), id)
    }

    fn load_vouched(&self, id: u64) -> Result<Option<(LoadedRow, super::Vouch)>> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let Some(row) = load_row(&tx, id)? else {
            return Ok(None);
        };
        let record = read_record(&tx)?;
        let path = tree::path_of(id).into_iter().map(|k| tx.get(k)).collect::<Result<_>>()?;
        Ok(Some((row, super::Vouch { record, path })))
    }

    fn find(&self, conditions: &[(u64, Vec<Vec<u8>>)], private: bool, exclude: &[IndexEntry]) -> Result<Vec<u64>> {
        let conn = self.conn.lock();
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(private)];
        // Each argument's placeholder, and a condition's hashes as a list of them.
        fn arg(args: &mut Vec<Box<dyn rusqlite::ToSql>>, v: Box<dyn rusqlite::ToSql>) -> String {
            args.push(v);
            format!("?{}", args.len())
        }
        fn list(args: &mut Vec<Box<dyn rusqlite::ToSql>>, hs: &[Vec<u8>]) -> String {
            hs.iter().map(|h| arg(args, Box::new(h.clone()))).collect::<Vec<_>>().join(",")
        }
        // The first condition drives the search (the caller puts the most selective first);
        // each other one is a lookup in idx's primary key per row found, so a search by
        // class and label costs what the label alone costs.
        let (mut sql, obj) = match conditions.first() {
            Some((attr, hs)) => {
                let a = arg(&mut args, Box::new(*attr as i64));
                let h = list(&mut args, hs);
                (
                    format!(
                        "SELECT DISTINCT d.obj FROM idx d JOIN objects o ON o.id = d.obj
                         WHERE d.attr = {a} AND d.h IN ({h}) AND (o.private = 0 OR ?1)"
                    ),
                    "d.obj",
                )
            }
            None => ("SELECT o.id FROM objects o WHERE (o.private = 0 OR ?1)".to_string(), "o.id"),
        };
        for (attr, hs) in conditions.iter().skip(1) {
            let a = arg(&mut args, Box::new(*attr as i64));
            let h = list(&mut args, hs);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM idx c WHERE c.attr = {a} AND c.h IN ({h}) AND c.obj = {obj})"
            ));
        }
        for (attr, h) in exclude {
            let a = arg(&mut args, Box::new(*attr as i64));
            let h = arg(&mut args, Box::new(h.clone()));
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM idx x WHERE x.attr = {a} AND x.h = {h} AND x.obj = {obj})"
            ));
        }
        sql.push_str(&format!(" ORDER BY {obj}"));
        let mut st = conn.prepare_cached(&sql)?;
        let ids = st
            .query_map(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())), |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    fn changes_since(&self, since: u64) -> Result<(u64, Option<Vec<u64>>)> {
        if self.counter() == Some(since) {
            return Ok((since, Some(Vec::new())));
        }
        let conn = self.conn.lock();
        let dv: i64 = conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if let Some((seen_dv, seen_gen)) = *self.seen.lock() {
            if seen_dv == dv && seen_gen == since {
                return Ok((since, Some(Vec::new())));
            }
        }
        let (gen, floor): (i64, i64) = conn
            .prepare_cached("SELECT generation, changes_floor FROM token WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let gen = gen as u64;
        *self.seen.lock() = Some((dv, gen));
        if gen == since {
            return Ok((gen, Some(Vec::new())));
        }
        // Change records name the generation that made them; those at or below the floor
        // are gone, so a process that far behind cannot tell what changed.
        if since > gen || since < floor as u64 {
            return Ok((gen, None));
        }
        let ids = conn
            .prepare_cached("SELECT DISTINCT obj FROM changes WHERE gen > ?1")?
            .query_map([since as i64], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((gen, Some(ids)))
    }

    fn aliases(&self) -> Result<Vec<Alias>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT name, key_id, created, updated, mac FROM aliases ORDER BY name")?;
        let rows = st.query_map([], row_to_alias)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn put_alias(&self, name: &str, key_id: &str, replace: bool, now: i64, auth: &Integrity) -> Result<bool> {
        self.keyed(auth, |tx, k| {
            let old = alias_named(tx, name)?;
            let new = match (&old, replace) {
                (Some(_), false) | (None, true) => return Ok(false),
                (Some(o), true) => Alias { key_id: key_id.to_string(), updated: now, ..o.clone() },
                (None, false) => Alias {
                    name: name.to_string(),
                    key_id: key_id.to_string(),
                    created: now,
                    updated: now,
                    mac: Vec::new(),
                },
            };
            let mac = k.alias_mac(&new);
            tx.execute(
                "INSERT OR REPLACE INTO aliases(name, key_id, created, updated, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![new.name, new.key_id, new.created, new.updated, mac.as_slice()],
            )?;
            k.swap(old.as_ref().map(|o| o.mac.as_slice()), Some(&mac));
            Ok(true)
        })
    }

    fn delete_alias(&self, name: &str, auth: &Integrity) -> Result<bool> {
        self.keyed(auth, |tx, k| {
            let old = alias_named(tx, name)?;
            let Some(old) = old else {
                return Ok(false);
            };
            tx.execute("DELETE FROM aliases WHERE name = ?1", [name])?;
            k.swap(Some(&old.mac), None);
            Ok(true)
        })
    }

    fn purge_key(&self, ids: &[u64], key_id: &str, auth: &Integrity) -> Result<usize> {
        self.keyed(auth, |tx, k| {
            let mut n = 0;
            for id in ids {
                match k.delete_object(tx, *id) {
                    Ok(()) => n += 1,
                    Err(Error::ObjectHandleInvalid) => {}
                    Err(e) => return Err(e),
                }
            }
            let macs: Vec<Option<Vec<u8>>> = tx
                .prepare("SELECT mac FROM aliases WHERE key_id = ?1 UNION ALL SELECT mac FROM tags WHERE key_id = ?1")?
                .query_map([key_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for m in &macs {
                k.swap(m.as_deref(), None);
            }
            tx.execute("DELETE FROM aliases WHERE key_id = ?1", [key_id])?;
            tx.execute("DELETE FROM tags WHERE key_id = ?1", [key_id])?;
            Ok(n)
        })
    }

    fn tags(&self, key_id: &str) -> Result<Vec<Tag>> {
        let conn = self.conn.lock();
        let mut st =
            conn.prepare_cached("SELECT tag_key, tag_value, mac FROM tags WHERE key_id = ?1 ORDER BY tag_key")?;
        let rows = st
            .query_map([key_id], |r| {
                Ok(Tag {
                    key_id: key_id.to_string(),
                    key: r.get(0)?,
                    value: r.get(1)?,
                    mac: r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn change_tags(
        &self,
        key_id: &str,
        set: &[(String, String)],
        remove: &[String],
        max: usize,
        auth: &Integrity,
    ) -> Result<bool> {
        self.keyed(auth, |tx, k| {
            // Count what the key would end with before changing anything.
            let have: std::collections::BTreeMap<String, Option<Vec<u8>>> = tx
                .prepare_cached("SELECT tag_key, mac FROM tags WHERE key_id = ?1")?
                .query_map([key_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut keys: std::collections::BTreeSet<&String> = have.keys().collect();
            remove.iter().for_each(|r| {
                keys.remove(r);
            });
            keys.extend(set.iter().map(|(k, _)| k));
            if keys.len() > max {
                return Ok(false);
            }
            for r in remove {
                if let Some(old) = have.get(r) {
                    tx.execute("DELETE FROM tags WHERE key_id = ?1 AND tag_key = ?2", params![key_id, r])?;
                    k.swap(old.as_deref(), None);
                }
            }
            for (tk, tv) in set {
                let tag = Tag { key_id: key_id.to_string(), key: tk.clone(), value: tv.clone(), mac: Vec::new() };
                let mac = k.tag_mac(&tag);
                let old: Option<Option<Vec<u8>>> = tx
                    .query_row("SELECT mac FROM tags WHERE key_id = ?1 AND tag_key = ?2", params![key_id, tk], |r| {
                        r.get(0)
                    })
                    .optional()?;
                tx.execute(
                    "INSERT OR REPLACE INTO tags(key_id, tag_key, tag_value, mac) VALUES (?1, ?2, ?3, ?4)",
                    params![key_id, tk, tv, mac.as_slice()],
                )?;
                k.swap(old.flatten().as_deref(), Some(&mac));
            }
            Ok(true)
        })
    }

    fn scan(&self) -> Result<Scan> {
        // A connection of its own: the scan runs beside the PIN check at login and must not
        // hold the lock that other users of this store wait on.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // One read transaction: the record and every row as of one commit.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let record = read_record(&tx)?;
        let mut digest = Sum256::default();
        let mut others = Sum256::default();
        let mut unsealed = 0;
        for table in MACED_TABLES {
            let mut st = tx.prepare(&format!("SELECT mac FROM {table}"))?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                match r.get_ref(0)?.as_blob_or_null().map_err(|e| Error::storage(e.to_string()))? {
                    Some(m) => {
                        digest.add(m);
                        if table != "objects" {
                            others.add(m);
                        }
                    }
                    None => unsealed += 1,
                }
            }
        }
        // Rows added, removed or put back: the MAC tree says which objects, in this snapshot.
        let findings = match &record.state {
            Some(TokenState { digest: want, tree: Some(root), .. }) if *want != digest.to_bytes() => {
                let nodes: HashMap<tree::Key, Vec<u8>> = tx
                    .prepare("SELECT level, idx, node FROM mac_tree")?
                    .query_map([], |r| Ok(((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64), r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                Some(tree::check(root, &nodes, &object_macs(&tx)?))
            }
            _ => None,
        };
        let named_failed = named_failed(&tx)?;
        Ok(Scan { record, digest: digest.to_bytes(), others: others.to_bytes(), findings, unsealed, named_failed })
    }

    fn seal(&self, auth: &Integrity) -> Result<()> {
        self.write(|tx, gen| {
            let rec = read_record(tx)?;
            if rec.state.is_some() {
                return Ok(((), Vec::new()));
            }
            let mut k = Keyed::new(auth, rec.serial.clone(), gen, Sum256::default());
            let objects: Vec<(i64, String, i64, bool, Vec<u8>)> = tx
                .prepare("SELECT id, uid, class, private, attrs FROM objects")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, uid, class, private, attrs) in objects {
                let mac = auth.mac(&codec::object_row(&k.serial, id as u64, &uid, class as u64, private, gen, &attrs));
                tx.execute(
                    "UPDATE objects SET gen = ?2, mac = ?3 WHERE id = ?1",
                    params![id, gen as i64, mac.as_slice()],
                )?;
                k.swap(None, Some(&mac));
            }
            let aliases: Vec<Alias> = tx
                .prepare("SELECT name, key_id, created, updated, mac FROM aliases")?
                .query_map([], row_to_alias)?
                .collect::<rusqlite::Result<_>>()?;
            for a in aliases {
                let mac = k.alias_mac(&a);
                tx.execute("UPDATE aliases SET mac = ?2 WHERE name = ?1", params![a.name, mac.as_slice()])?;
                k.swap(None, Some(&mac));
            }
            let tags: Vec<Tag> = tx
                .prepare("SELECT key_id, tag_key, tag_value FROM tags")?
                .query_map([], |r| Ok(Tag { key_id: r.get(0)?, key: r.get(1)?, value: r.get(2)?, mac: Vec::new() }))?
                .collect::<rusqlite::Result<_>>()?;
            for t in tags {
                let mac = k.tag_mac(&t);
                tx.execute(
                    "UPDATE tags SET mac = ?3 WHERE key_id = ?1 AND tag_key = ?2",
                    params![t.key_id, t.key, mac.as_slice()],
                )?;
                k.swap(None, Some(&mac));
            }
            let users: Vec<NamedUser> = tx
                .prepare("SELECT name, wrap, failed, created, mac FROM named_users")?
                .query_map([], row_to_named_user)?
                .collect::<rusqlite::Result<_>>()?;
            for u in users {
                let mac = k.user_mac(&u.name, &u.wrap, u.created);
                tx.execute("UPDATE named_users SET mac = ?2 WHERE name = ?1", params![u.name, mac.as_slice()])?;
                k.swap(None, Some(&mac));
            }
            let mut rec = rec;
            rec.generation = gen;
            let root = rebuild_tree(tx)?;
            let st = authenticate_state(auth, &rec, gen, named_failed(tx)?, k.digest, root);
            tx.execute("UPDATE token SET state = ?1 WHERE id = 1", [codec::encode_state(&st)])?;
            Ok(((), Vec::new()))
        })
    }

    fn accept(&self, auth: &Integrity) -> Result<()> {
        self.write(|tx, gen| {
            let mut digest = Sum256::default();
            for table in MACED_TABLES {
                let macs: Vec<Option<Vec<u8>>> = tx
                    .prepare(&format!("SELECT mac FROM {table}"))?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                macs.iter().flatten().for_each(|m| digest.add(m));
            }
            let mut rec = read_record(tx)?;
            rec.generation = gen;
            let root = rebuild_tree(tx)?;
            let st = authenticate_state(auth, &rec, gen, named_failed(tx)?, digest, root);
            tx.execute("UPDATE token SET state = ?1 WHERE id = 1", [codec::encode_state(&st)])?;
            Ok(((), Vec::new()))
        })
    }

    fn set_trail(&self, trail: Arc<dyn Trail>) {
        *self.trail.lock() = Some(trail);
    }

    fn anchor_trail(&self, auth: &Integrity) -> Result<()> {
        self.keyed(auth, |_, _| Ok(()))
    }

    fn trail_anchors(&self, auth: Option<&Integrity>) -> Result<Vec<(TrailHead, bool)>> {
        let conn = self.conn.lock();
        let serial = read_record(&conn)?.serial;
        let mut st = conn.prepare_cached("SELECT segment, records, bytes, link, mac FROM trail_anchors")?;
        let rows = st
            .query_map([], |r| {
                let link: Vec<u8> = r.get(3)?;
                let mac: Vec<u8> = r.get(4)?;
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, link, mac))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .map(|(segment, records, bytes, link, mac)| {
                let mut l = [0u8; 16];
                let whole = link.len() == l.len();
                if whole {
                    l.copy_from_slice(&link);
                }
                let h = TrailHead { segment, records: records as u64, bytes: bytes as u64, link: l };
                let ok = whole && auth.is_some_and(|a| a.verify(&codec::anchor_row(&serial, &h), &mac));
                (h, ok)
            })
            .collect())
    }

    fn anchor(&self) -> Result<Option<u64>> {
        let path = anchor_path(&self.path);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(parse_anchor(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::storage(format!("{}: {e}", path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::MasterKey;
    use crate::store::StoredAttr;

    fn rec(auth: &Integrity) -> TokenRecord {
        let mut r = TokenRecord {
            serial: "00112233".into(),
            label: "t".into(),
            slot_id: 0,
            so_wrap: vec![1, 2, 3],
            user_wrap: None,
            so_failed: 0,
            user_failed: 0,
            created: 0,
            generation: 0,
            state: None,
        };
        r.state = Some(initial_state(auth, &r));
        r
    }

    fn obj(uid: &str) -> StoredObject {
        StoredObject {
            id: 0,
            uid: uid.into(),
            class: 4,
            private: false,
            attrs: vec![StoredAttr { ty: 3, sealed: false, value: b"label".to_vec() }],
            gen: 0,
            mac: Vec::new(),
        }
    }

    fn insert(s: &SqliteStore, o: &StoredObject, index: &[IndexEntry], auth: &Integrity) -> u64 {
        s.commit(vec![Change::Insert(o.clone(), index.to_vec())], auth).unwrap()[0]
    }

    fn made(dir: &Path) -> (SqliteStore, Integrity, PathBuf) {
        let auth = MasterKey::generate().unwrap().integrity();
        let p = dir.join("t.sqlite");
        (SqliteStore::create(&p, &rec(&auth)).unwrap(), auth, p)
    }

    /// The state verifies and the rows add up to its digest.
    fn sound(s: &SqliteStore, auth: &Integrity) -> bool {
        let scan = s.scan().unwrap();
        let st = scan.record.state.clone().unwrap();
        // The tree as written row by row is the one made from the rows as they are.
        let rebuilt = {
            let mut conn = s.conn.lock();
            let tx = conn.transaction().unwrap();
            rebuild_tree(&tx).unwrap()
        };
        auth.verify(&codec::state_row(&scan.record, &st), &st.mac)
            && st.digest == scan.digest
            && scan.unsealed == 0
            && st.tree == Some(rebuilt)
            && scan.findings.is_none()
    }

    #[test]
    fn objects_index_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let (g0, _) = s.changes_since(0).unwrap();
        let a = insert(&s, &obj("a"), &[(3, vec![1])], &auth);
        let b = insert(&s, &obj("b"), &[(3, vec![2])], &auth);
        assert_eq!(s.find(&[(3, vec![vec![1]])], false, &[]).unwrap(), vec![a]);
        assert_eq!(s.find(&[], false, &[(3, vec![1])]).unwrap(), vec![b]);
        assert_eq!(s.find(&[(3, vec![vec![1], vec![2]])], false, &[]).unwrap(), vec![a, b]);
        assert_eq!(s.find(&[(3, vec![vec![1], vec![2]]), (3, vec![vec![2]])], false, &[]).unwrap(), vec![b]);
        assert_eq!(s.find(&[], false, &[]).unwrap(), vec![a, b]);
        let (g1, ch) = s.changes_since(g0).unwrap();
        assert_eq!(ch.unwrap(), vec![a, b]);
        // A second connection (another process) sees the change and makes its own.
        let s2 = SqliteStore::open(&p).unwrap();
        s2.commit(vec![Change::Delete(a)], &auth).unwrap();
        assert_eq!(s2.commit(vec![Change::Delete(a)], &auth), Err(Error::ObjectHandleInvalid));
        let (_, ch) = s.changes_since(g1).unwrap();
        assert_eq!(ch.unwrap(), vec![a]);
        assert!(s.load(a).unwrap().is_none());
        assert_eq!(codec::decode(&s.load(b).unwrap().unwrap().attrs).unwrap(), obj("b").attrs);
        // Ids are never reused, so a stale handle never names a new object.
        let c = insert(&s, &obj("c"), &[], &auth);
        assert!(c > b);
        assert!(sound(&s, &auth));
        assert_eq!(s.anchor().unwrap(), Some(s.record().unwrap().generation));
    }

    #[test]
    fn failures_are_counted_without_the_key_and_reset_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        let s2 = SqliteStore::open(&p).unwrap();
        assert_eq!(s.login_failed(Role::User, 3).unwrap(), Attempt::Counted(1));
        assert_eq!(s2.login_failed(Role::User, 3).unwrap(), Attempt::Counted(2));
        assert_eq!(s.login_failed(Role::User, 3).unwrap(), Attempt::Counted(3));
        assert_eq!(s.login_failed(Role::User, 3).unwrap(), Attempt::Locked);
        assert_eq!(s.record().unwrap().user_failed, 3);
        // The SO's counter is its own.
        assert_eq!(s.login_failed(Role::So, 3).unwrap(), Attempt::Counted(1));
        assert!(sound(&s, &auth), "keyless counting keeps the state sound");
        s.login_succeeded(Role::User, &auth).unwrap();
        assert_eq!(s2.record().unwrap().user_failed, 0);
        assert!(sound(&s, &auth));
    }

    #[test]
    fn a_lowered_counter_gains_no_guesses() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        for _ in 0..3 {
            s.login_failed(Role::User, 3).unwrap();
        }
        let raw = Connection::open(&p).unwrap();
        raw.execute("UPDATE token SET user_failed = 0", []).unwrap();
        let r = s.record().unwrap();
        assert!(!r.counters(0).consistent);
        assert_eq!(r.counters(0).user, 3);
        assert_eq!(s.login_failed(Role::User, 3).unwrap(), Attempt::Locked);
        // A write under the key puts the counter back before vouching for it.
        s.commit(vec![Change::Insert(obj("x"), vec![])], &auth).unwrap();
        assert_eq!(s.record().unwrap().user_failed, 3);
        assert!(sound(&s, &auth));
    }

    #[test]
    fn writes_under_the_key_refuse_an_edited_state() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        let raw = Connection::open(&p).unwrap();
        raw.execute("UPDATE token SET label = 'other'", []).unwrap();
        assert!(matches!(s.commit(vec![Change::Insert(obj("x"), vec![])], &auth), Err(Error::Storage(_))));
        assert!(s.find(&[], false, &[]).unwrap().is_empty(), "nothing was written");
        let other = MasterKey::generate().unwrap().integrity();
        raw.execute("UPDATE token SET label = 't'", []).unwrap();
        assert!(matches!(s.commit(vec![Change::Insert(obj("x"), vec![])], &other), Err(Error::Storage(_))));
        assert!(s.commit(vec![Change::Insert(obj("x"), vec![])], &auth).is_ok());
    }

    #[test]
    fn rows_of_every_kind_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        let alice = NamedUser { name: "alice".into(), wrap: vec![7; 4], failed: 0, created: 5, mac: vec![] };
        assert!(s.add_named_user(&alice, &auth).unwrap());
        assert!(!s.add_named_user(&alice, &auth).unwrap());
        assert!(s.put_alias("alias/a", "k1", false, 1, &auth).unwrap());
        assert!(!s.put_alias("alias/a", "k1", false, 1, &auth).unwrap());
        assert!(s.put_alias("alias/a", "k2", true, 2, &auth).unwrap());
        assert!(s.change_tags("k2", &[("a".into(), "1".into()), ("b".into(), "2".into())], &[], 50, &auth).unwrap());
        assert!(s.change_tags("k2", &[("a".into(), "3".into())], &["b".into()], 50, &auth).unwrap());
        assert!(!s.change_tags("k2", &[("c".into(), "3".into())], &[], 1, &auth).unwrap());
        assert!(s.set_named_wrap("alice", &[8; 4], &auth).unwrap());
        assert_eq!(s.named_login_failed("alice", 2).unwrap(), Some(Attempt::Counted(1)));
        assert_eq!(s.named_login_failed("bob", 2).unwrap(), None);
        assert!(sound(&s, &auth));
        let k = insert(&s, &obj("k"), &[], &auth);
        assert_eq!(s.purge_key(&[k], "k2", &auth).unwrap(), 1);
        assert!(s.aliases().unwrap().is_empty() && s.tags("k2").unwrap().is_empty());
        assert!(s.delete_named_user("alice", &auth).unwrap());
        assert!(!s.delete_named_user("alice", &auth).unwrap());
        assert!(sound(&s, &auth));
        // A row put back from before (an alias pointing at its old key) breaks the sum.
        assert!(s.put_alias("alias/b", "k1", false, 3, &auth).unwrap());
        let old = s.aliases().unwrap().remove(0);
        assert!(s.put_alias("alias/b", "k3", true, 4, &auth).unwrap());
        let raw = Connection::open(&p).unwrap();
        raw.execute(
            "UPDATE aliases SET key_id = ?1, updated = ?2, mac = ?3 WHERE name = 'alias/b'",
            params![old.key_id, old.updated, old.mac],
        )
        .unwrap();
        assert!(!sound(&s, &auth));
    }

    #[test]
    fn an_unsealed_keystore_is_sealed_once() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        insert(&s, &obj("a"), &[], &auth);
        assert!(s.put_alias("alias/a", "k1", false, 1, &auth).unwrap());
        // As a keystore from before: no MACs, no state.
        let raw = Connection::open(&p).unwrap();
        raw.execute_batch(
            "UPDATE objects SET mac = NULL; UPDATE aliases SET mac = NULL; UPDATE token SET state = NULL;",
        )
        .unwrap();
        assert_eq!(s.scan().unwrap().unsealed, 2);
        s.seal(&auth).unwrap();
        assert!(sound(&s, &auth));
        let before = s.record().unwrap().state;
        s.seal(&auth).unwrap();
        assert_eq!(s.record().unwrap().state, before, "sealing a sealed token changes nothing");
    }

    #[test]
    fn the_anchor_tells_a_database_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let (s, auth, p) = made(dir.path());
        insert(&s, &obj("a"), &[], &auth);
        drop(s);
        let copy = dir.path().join("copy.sqlite");
        std::fs::copy(&p, &copy).unwrap();
        let s = SqliteStore::open(&p).unwrap();
        insert(&s, &obj("b"), &[], &auth);
        let gen = s.record().unwrap().generation;
        drop(s);
        std::fs::copy(&copy, &p).unwrap();
        let _ = std::fs::remove_file(p.with_extension("sqlite-wal"));
        let s = SqliteStore::open(&p).unwrap();
        assert_eq!(s.anchor().unwrap(), Some(gen));
        assert!(s.record().unwrap().generation < gen);
    }

    #[test]
    fn garbage_file_is_a_clean_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.sqlite");
        std::fs::write(&p, vec![0x5a; 8192]).unwrap();
        match SqliteStore::open(&p) {
            Err(Error::Storage(m)) => assert!(m.contains("t.sqlite"), "{m}"),
            Err(e) => panic!("unexpected {e:?}"),
            Ok(_) => panic!("garbage opened"),
        }
    }
}
