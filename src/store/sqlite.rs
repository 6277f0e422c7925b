//! The SQLite keystore: one database per token, WAL mode, synchronous=FULL so a commit is
//! durable when it returns, a busy timeout so that processes sharing a token wait for each
//! other instead of failing, and short transactions.

use super::{codec, Alias, Change, IndexEntry, NamedUser, Role, Store, StoredObject, TokenRecord};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
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
];

/// How many change records are kept; a process further behind reloads what it caches.
const CHANGES_KEPT: i64 = 4096;

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// SQLite's data_version and the generation read with it: while another connection
    /// has committed nothing, data_version stays put and the generation need not be read.
    seen: Mutex<Option<(i64, u64)>>,
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

impl SqliteStore {
    /// Creates a new token database at `path` (which must not exist).
    pub fn create(path: &Path, rec: &TokenRecord) -> Result<SqliteStore> {
        create_private_file(path)?;
        let made = (|| {
            let mut conn = Connection::open(path)?;
            configure(&conn)?;
            migrate(&mut conn)?;
            conn.execute(
                "INSERT INTO token(id, serial, label, slot_id, so_wrap, user_wrap, created)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                params![rec.serial, rec.label, rec.slot_id as i64, rec.so_wrap, rec.user_wrap, rec.created],
            )?;
            Ok(SqliteStore { path: path.to_path_buf(), conn: Mutex::new(conn), seen: Mutex::new(None) })
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(path);
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
        let store = SqliteStore { path: path.to_path_buf(), conn: Mutex::new(conn), seen: Mutex::new(None) };
        store.record()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock taken up front, so two writers
    /// queue on the busy timeout rather than deadlock on an upgrade) and commits durably.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
        // Our own commits do not move data_version: forget what was seen.
        *self.seen.lock() = None;
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn note_change(tx: &rusqlite::Transaction, obj: u64) -> Result<()> {
        tx.execute("UPDATE token SET generation = generation + 1 WHERE id = 1", [])?;
        tx.execute("INSERT INTO changes(obj) VALUES (?1)", [obj as i64])?;
        let seq = tx.last_insert_rowid();
        if seq % 256 == 0 {
            tx.execute("DELETE FROM changes WHERE seq <= ?1", [seq - CHANGES_KEPT])?;
        }
        Ok(())
    }

    fn put_index(tx: &rusqlite::Transaction, id: u64, index: &[IndexEntry]) -> Result<()> {
        let mut st = tx.prepare_cached("INSERT OR IGNORE INTO idx(attr, h, obj) VALUES (?1, ?2, ?3)")?;
        for (attr, h) in index {
            st.execute(params![*attr as i64, h, id as i64])?;
        }
        Ok(())
    }
}

fn row_to_record(r: &rusqlite::Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        serial: r.get(0)?,
        label: r.get(1)?,
        slot_id: r.get::<_, i64>(2)? as u64,
        so_wrap: r.get(3)?,
        user_wrap: r.get(4)?,
        so_failed: r.get::<_, i64>(5)? as u32,
        user_failed: r.get::<_, i64>(6)? as u32,
        created: r.get(7)?,
    })
}

fn row_to_named_user(r: &rusqlite::Row) -> rusqlite::Result<NamedUser> {
    Ok(NamedUser { name: r.get(0)?, wrap: r.get(1)?, failed: r.get::<_, i64>(2)? as u32, created: r.get(3)? })
}

impl Store for SqliteStore {
    fn record(&self) -> Result<TokenRecord> {
        let conn = self.conn.lock();
        conn.query_row(
            "SELECT serial, label, slot_id, so_wrap, user_wrap, so_failed, user_failed, created
             FROM token WHERE id = 1",
            [],
            row_to_record,
        )
        .optional()?
        .ok_or_else(|| Error::storage(format!("{}: no token record", self.path.display())))
    }

    fn set_slot_id(&self, slot_id: u64) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE token SET slot_id = ?1 WHERE id = 1", [slot_id as i64])?;
            Ok(())
        })
    }

    fn set_user_wrap(&self, wrap: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE token SET user_wrap = ?1, user_failed = 0 WHERE id = 1", [wrap])?;
            Ok(())
        })
    }

    fn set_so_wrap(&self, wrap: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE token SET so_wrap = ?1, so_failed = 0 WHERE id = 1", [wrap])?;
            Ok(())
        })
    }

    fn login_failed(&self, role: Role) -> Result<u32> {
        let col = match role {
            Role::So => "so_failed",
            Role::User => "user_failed",
        };
        self.write(|tx| {
            tx.execute(&format!("UPDATE token SET {col} = {col} + 1 WHERE id = 1"), [])?;
            let n: i64 = tx.query_row(&format!("SELECT {col} FROM token WHERE id = 1"), [], |r| r.get(0))?;
            Ok(n as u32)
        })
    }

    fn login_succeeded(&self, role: Role) -> Result<()> {
        let col = match role {
            Role::So => "so_failed",
            Role::User => "user_failed",
        };
        self.write(|tx| {
            tx.execute(&format!("UPDATE token SET {col} = 0 WHERE id = 1 AND {col} != 0"), [])?;
            Ok(())
        })
    }

    fn named_users(&self) -> Result<Vec<NamedUser>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT name, wrap, failed, created FROM named_users ORDER BY name")?;
        let rows = st.query_map([], row_to_named_user)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn named_user(&self, name: &str) -> Result<Option<NamedUser>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT name, wrap, failed, created FROM named_users WHERE name = ?1")?;
        Ok(st.query_row([name], row_to_named_user).optional()?)
    }

    fn add_named_user(&self, user: &NamedUser) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO named_users(name, wrap, failed, created) VALUES (?1, ?2, 0, ?3)",
                params![user.name, user.wrap, user.created],
            )?;
            Ok(n == 1)
        })
    }

    fn set_named_wrap(&self, name: &str, wrap: &[u8]) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute("UPDATE named_users SET wrap = ?2, failed = 0 WHERE name = ?1", params![name, wrap])? == 1)
        })
    }

    fn delete_named_user(&self, name: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM named_users WHERE name = ?1", [name])? == 1))
    }

    fn named_login_failed(&self, name: &str) -> Result<u32> {
        self.write(|tx| {
            tx.execute("UPDATE named_users SET failed = failed + 1 WHERE name = ?1", [name])?;
            let n: i64 = tx.query_row("SELECT failed FROM named_users WHERE name = ?1", [name], |r| r.get(0))?;
            Ok(n as u32)
        })
    }

    fn named_login_succeeded(&self, name: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE named_users SET failed = 0 WHERE name = ?1 AND failed != 0", [name])?;
            Ok(())
        })
    }

    fn commit(&self, changes: Vec<Change>) -> Result<Vec<u64>> {
        self.write(|tx| {
            let mut ids = Vec::new();
            for c in changes {
                match c {
                    Change::Insert(obj, index) => {
                        tx.prepare_cached("INSERT INTO objects(uid, class, private, attrs) VALUES (?1, ?2, ?3, ?4)")?
                            .execute(params![obj.uid, obj.class as i64, obj.private, codec::encode(&obj.attrs)])?;
                        let id = tx.last_insert_rowid() as u64;
                        Self::put_index(tx, id, &index)?;
                        Self::note_change(tx, id)?;
                        ids.push(id);
                    }
                    Change::Update(obj, index) => {
                        let n = tx
                            .prepare_cached("UPDATE objects SET private = ?2, attrs = ?3 WHERE id = ?1")?
                            .execute(params![obj.id as i64, obj.private, codec::encode(&obj.attrs)])?;
                        if n == 0 {
                            return Err(Error::ObjectHandleInvalid);
                        }
                        tx.execute("DELETE FROM idx WHERE obj = ?1", [obj.id as i64])?;
                        Self::put_index(tx, obj.id, &index)?;
                        Self::note_change(tx, obj.id)?;
                    }
                    Change::Delete(id) => {
                        if tx.execute("DELETE FROM objects WHERE id = ?1", [id as i64])? == 0 {
                            return Err(Error::ObjectHandleInvalid);
                        }
                        Self::note_change(tx, id)?;
                    }
                }
            }
            Ok(ids)
        })
    }

    fn load(&self, id: u64) -> Result<Option<StoredObject>> {
        let conn = self.conn.lock();
        let row = conn
            .prepare_cached("SELECT uid, class, private, attrs FROM objects WHERE id = ?1")?
            .query_row([id as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, bool>(2)?, r.get::<_, Vec<u8>>(3)?))
            })
            .optional()?;
        drop(conn);
        let Some((uid, class, private, blob)) = row else {
            return Ok(None);
        };
        Ok(Some(StoredObject { id, uid, class: class as u64, private, attrs: codec::decode(&blob)? }))
    }

    fn find(&self, conditions: &[(u64, Vec<Vec<u8>>)], private: bool, exclude: &[IndexEntry]) -> Result<Vec<u64>> {
        let conn = self.conn.lock();
        let mut sql = String::from("SELECT id FROM objects WHERE (private = 0 OR ?1)");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(private)];
        for (attr, hashes) in conditions {
            let marks: Vec<String> = hashes
                .iter()
                .map(|h| {
                    args.push(Box::new(h.clone()));
                    format!("?{}", args.len())
                })
                .collect();
            args.push(Box::new(*attr as i64));
            sql.push_str(&format!(
                " AND id IN (SELECT obj FROM idx WHERE attr = ?{} AND h IN ({}))",
                args.len(),
                marks.join(",")
            ));
        }
        for (attr, h) in exclude {
            args.push(Box::new(*attr as i64));
            args.push(Box::new(h.clone()));
            sql.push_str(&format!(
                " AND id NOT IN (SELECT obj FROM idx WHERE attr = ?{} AND h = ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        sql.push_str(" ORDER BY id");
        let mut st = conn.prepare_cached(&sql)?;
        let ids = st
            .query_map(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())), |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    fn changes_since(&self, since: u64) -> Result<(u64, Option<Vec<u64>>)> {
        let conn = self.conn.lock();
        let dv: i64 = conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if let Some((seen_dv, seen_gen)) = *self.seen.lock() {
            if seen_dv == dv && seen_gen == since {
                return Ok((since, Some(Vec::new())));
            }
        }
        let gen: i64 = conn.prepare_cached("SELECT generation FROM token WHERE id = 1")?.query_row([], |r| r.get(0))?;
        let gen = gen as u64;
        *self.seen.lock() = Some((dv, gen));
        if gen == since {
            return Ok((gen, Some(Vec::new())));
        }
        // The generation and the change rows advance together (one row per increment,
        // seq == generation), so rows seq > since are what happened since.
        let oldest: Option<i64> = conn.query_row("SELECT MIN(seq) FROM changes", [], |r| r.get(0))?;
        if since > gen || oldest.is_none_or(|o| o as u64 > since + 1) {
            return Ok((gen, None));
        }
        let ids = conn
            .prepare_cached("SELECT DISTINCT obj FROM changes WHERE seq > ?1")?
            .query_map([since as i64], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((gen, Some(ids)))
    }

    fn aliases(&self) -> Result<Vec<Alias>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT name, key_id, created, updated FROM aliases ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                Ok(Alias { name: r.get(0)?, key_id: r.get(1)?, created: r.get(2)?, updated: r.get(3)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn put_alias(&self, name: &str, key_id: &str, replace: bool, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = if replace {
                tx.execute("UPDATE aliases SET key_id = ?2, updated = ?3 WHERE name = ?1", params![name, key_id, now])?
            } else {
                tx.execute(
                    "INSERT OR IGNORE INTO aliases(name, key_id, created, updated) VALUES (?1, ?2, ?3, ?3)",
                    params![name, key_id, now],
                )?
            };
            Ok(n == 1)
        })
    }

    fn delete_alias(&self, name: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM aliases WHERE name = ?1", [name])? == 1))
    }

    fn delete_aliases_of(&self, key_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM aliases WHERE key_id = ?1", [key_id])?;
            tx.execute("DELETE FROM tags WHERE key_id = ?1", [key_id])?;
            Ok(())
        })
    }

    fn tags(&self, key_id: &str) -> Result<Vec<(String, String)>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT tag_key, tag_value FROM tags WHERE key_id = ?1 ORDER BY tag_key")?;
        let rows = st.query_map([key_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn change_tags(&self, key_id: &str, set: &[(String, String)], remove: &[String], max: usize) -> Result<bool> {
        self.write(|tx| {
            // Count what the key would end with before changing anything.
            let mut keys: std::collections::BTreeSet<String> = tx
                .prepare_cached("SELECT tag_key FROM tags WHERE key_id = ?1")?
                .query_map([key_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            remove.iter().for_each(|k| {
                keys.remove(k);
            });
            keys.extend(set.iter().map(|(k, _)| k.clone()));
            if keys.len() > max {
                return Ok(false);
            }
            for k in remove {
                tx.execute("DELETE FROM tags WHERE key_id = ?1 AND tag_key = ?2", params![key_id, k])?;
            }
            for (k, v) in set {
                tx.execute(
                    "INSERT OR REPLACE INTO tags(key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
                    params![key_id, k, v],
                )?;
            }
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredAttr;

    fn rec() -> TokenRecord {
        TokenRecord {
            serial: "00112233".into(),
            label: "t".into(),
            slot_id: 0,
            so_wrap: vec![1, 2, 3],
            user_wrap: None,
            so_failed: 0,
            user_failed: 0,
            created: 0,
        }
    }

    fn obj(uid: &str) -> StoredObject {
        StoredObject {
            id: 0,
            uid: uid.into(),
            class: 4,
            private: false,
            attrs: vec![StoredAttr { ty: 3, sealed: false, value: b"label".to_vec() }],
        }
    }

    #[test]
    fn objects_index_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.sqlite");
        let s = SqliteStore::create(&p, &rec()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let (g0, _) = s.changes_since(0).unwrap();
        let a = s.insert(&obj("a"), &[(3, vec![1])]).unwrap();
        let b = s.insert(&obj("b"), &[(3, vec![2])]).unwrap();
        assert_eq!(s.find(&[(3, vec![vec![1]])], false, &[]).unwrap(), vec![a]);
        assert_eq!(s.find(&[], false, &[(3, vec![1])]).unwrap(), vec![b]);
        assert_eq!(s.find(&[(3, vec![vec![1], vec![2]])], false, &[]).unwrap(), vec![a, b]);
        assert_eq!(s.find(&[], false, &[]).unwrap(), vec![a, b]);
        let (g1, ch) = s.changes_since(g0).unwrap();
        assert_eq!(ch.unwrap(), vec![a, b]);
        // A second connection (another process) sees the change and makes its own.
        let s2 = SqliteStore::open(&p).unwrap();
        assert!(s2.delete(a).unwrap());
        assert!(!s2.delete(a).unwrap());
        let (_, ch) = s.changes_since(g1).unwrap();
        assert_eq!(ch.unwrap(), vec![a]);
        assert!(s.load(a).unwrap().is_none());
        assert_eq!(s.load(b).unwrap().unwrap().attrs, obj("b").attrs);
        // Ids are never reused, so a stale handle never names a new object.
        let c = s.insert(&obj("c"), &[]).unwrap();
        assert!(c > b);
        assert_eq!(s.login_failed(Role::User).unwrap(), 1);
        assert_eq!(s2.login_failed(Role::User).unwrap(), 2);
        s.login_succeeded(Role::User).unwrap();
        assert_eq!(s2.record().unwrap().user_failed, 0);
    }

    #[test]
    fn named_users_and_their_counters() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::create(&dir.path().join("t.sqlite"), &rec()).unwrap();
        let alice = NamedUser { name: "alice".into(), wrap: vec![7; 4], failed: 0, created: 5 };
        assert!(s.add_named_user(&alice).unwrap());
        assert!(!s.add_named_user(&alice).unwrap());
        assert_eq!(s.named_user("alice").unwrap(), Some(alice.clone()));
        assert_eq!(s.named_user("bob").unwrap(), None);
        assert_eq!(s.named_login_failed("alice").unwrap(), 1);
        assert_eq!(s.named_login_failed("alice").unwrap(), 2);
        s.named_login_succeeded("alice").unwrap();
        assert_eq!(s.named_users().unwrap(), vec![alice]);
        assert!(s.delete_named_user("alice").unwrap());
        assert!(!s.delete_named_user("alice").unwrap());
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
