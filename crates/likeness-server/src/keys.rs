//! API keys: one admin key, and keys scoped to one gallery and a set of operations.
//!
//! A key reads `lk_<id>_<secret>`: the id (8 hex digits) names it in listings and revocation,
//! the secret (128 random bits from the OS) is what proves it. Only SHA-256 of the whole key is
//! stored, so the key file leaks no usable key; a presented key is found by its id and its hash
//! compared in constant time (every byte is examined whatever the first difference), so the
//! time of a refusal tells nothing about how close a guess was. SHA-256 without salt or
//! stretching is enough here: the secrets are random 128-bit values, not passwords.
//!
//! The key file (`keys.json` in the service's data folder) is rewritten atomically with mode
//! 0600 after every change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `POST detection/detect`.
    Detect,
    /// `POST verification/verify`.
    Verify,
    /// `POST recognition/recognize` and `recognition/embeddings/recognize`.
    Recognize,
    /// Subjects and faces: read and change the gallery.
    Manage,
    /// Style-transfer jobs.
    Style,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Detect,
        Scope::Verify,
        Scope::Recognize,
        Scope::Manage,
        Scope::Style,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Detect => "detect",
            Scope::Verify => "verify",
            Scope::Recognize => "recognize",
            Scope::Manage => "manage",
            Scope::Style => "style",
        }
    }
}

/// A gallery key as stored (no secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Public part of the key (`lk_<id>_…`).
    pub id: String,
    pub gallery: String,
    pub scopes: BTreeSet<Scope>,
    /// Free text for people ("front door camera").
    #[serde(default)]
    pub label: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    info: KeyInfo,
    /// SHA-256 of the whole key, hex.
    hash: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    /// SHA-256 of the admin key, when it was generated here (not when given by environment).
    admin_hash: Option<String>,
    galleries: Vec<String>,
    keys: Vec<StoredKey>,
}

const KEY_FILE_VERSION: u32 = 1;

/// Who a request is.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    Admin,
    Key(KeyInfo),
}

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} is not a key file this service reads ({message}); it was left untouched")]
    Corrupt { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// The keys and galleries the service knows.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    admin_hash: [u8; 32],
    file: Mutex<KeyFile>,
}

/// What start-up did about the admin key.
#[derive(Debug, PartialEq)]
pub enum AdminKey {
    /// Given by `LIKENESS_ADMIN_KEY`.
    FromEnvironment,
    /// Created now: the key, to print once.
    Created(String),
    /// Created on an earlier start (only its hash is kept).
    Existing,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equality that examines every byte whatever the first difference.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // black_box keeps the compiler from turning the fold back into an early-exit comparison
    std::hint::black_box(diff) == 0
}

fn random_hex(bytes: usize) -> Result<String, KeyError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A gallery name: 1-64 of `a-z 0-9 _ -`, so it is also a safe file name.
pub fn valid_gallery_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "`{name}` is not a gallery name: use 1 to 64 of a-z, 0-9, `_` and `-`"
        )))
    }
}

impl KeyStore {
    /// Opens (or creates) `dir/keys.json`. The admin key is `admin_key` when given, else the
    /// one created on an earlier start, else a new one (returned once, to print).
    pub fn open(dir: &Path, admin_key: Option<&str>) -> Result<(KeyStore, AdminKey), KeyError> {
        let path = dir.join("keys.json");
        let mut file = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: KeyFile =
                    serde_json::from_slice(&bytes).map_err(|e| KeyError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                if file.version > KEY_FILE_VERSION {
                    return Err(KeyError::Corrupt {
                        path,
                        message: format!(
                            "version {} is newer than {KEY_FILE_VERSION}",
                            file.version
                        ),
                    });
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeyFile {
                version: KEY_FILE_VERSION,
                ..KeyFile::default()
            },
            Err(e) => return Err(KeyError::Io { path, cause: e }),
        };
        let (admin_hash, admin) = match admin_key {
            Some(k) if k.trim().len() < 16 => {
                return Err(KeyError::Invalid(
                    "LIKENESS_ADMIN_KEY is shorter than 16 characters: choose a longer one".into(),
                ));
            }
            Some(k) => (hash(k.trim()), AdminKey::FromEnvironment),
            None => match file.admin_hash.as_deref().and_then(unhex) {
                Some(h) => (h, AdminKey::Existing),
                None => {
                    let key = format!("lk_admin_{}", random_hex(16)?);
                    let h = hash(&key);
                    file.admin_hash = Some(hex(&h));
                    (h, AdminKey::Created(key))
                }
            },
        };
        let store = KeyStore {
            path,
            admin_hash,
            file: Mutex::new(file),
        };
        if matches!(admin, AdminKey::Created(_)) {
            let file = store.file.lock().map_err(|_| poisoned())?;
            store.save(&file)?;
        }
        Ok((store, admin))
    }

    fn save(&self, file: &KeyFile) -> Result<(), KeyError> {
        let io = |cause| KeyError::Io {
            path: self.path.clone(),
            cause,
        };
        let mut bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| KeyError::Invalid(format!("cannot serialise the keys: {e}")))?;
        bytes.push(b'\n');
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".keys.json.{}.tmp", std::process::id()));
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }

    /// Who presents `key`, if anyone.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        let presented = hash(key);
        if constant_time_eq(&presented, &self.admin_hash) {
            return Some(Caller::Admin);
        }
        let id = key.strip_prefix("lk_")?.split('_').next()?;
        let file = self.file.lock().ok()?;
        let stored = file.keys.iter().find(|k| k.info.id == id)?;
        let expected = unhex(&stored.hash)?;
        (constant_time_eq(&presented, &expected) && !stored.info.revoked)
            .then(|| Caller::Key(stored.info.clone()))
    }

    pub fn galleries(&self) -> Vec<String> {
        self.file
            .lock()
            .map(|f| f.galleries.clone())
            .unwrap_or_default()
    }

    pub fn has_gallery(&self, name: &str) -> bool {
        self.galleries().iter().any(|g| g == name)
    }

    /// Adds a gallery name (its store is created on first use).
    pub fn create_gallery(&self, name: &str) -> Result<(), KeyError> {
        valid_gallery_name(name)?;
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        if file.galleries.iter().any(|g| g == name) {
            return Err(KeyError::Conflict(format!(
                "gallery `{name}` already exists"
            )));
        }
        file.galleries.push(name.to_string());
        if let Err(e) = self.save(&file) {
            file.galleries.pop();
            return Err(e);
        }
        Ok(())
    }

    /// A new key for `gallery` with `scopes`: the key itself (shown once) and its record.
    pub fn create_key(
        &self,
        gallery: &str,
        scopes: BTreeSet<Scope>,
        label: &str,
    ) -> Result<(String, KeyInfo), KeyError> {
        if scopes.is_empty() {
            return Err(KeyError::Invalid(
                "a key needs at least one scope (detect, verify, recognize, manage, style)".into(),
            ));
        }
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        if !file.galleries.iter().any(|g| g == gallery) {
            return Err(KeyError::NotFound(format!(
                "no gallery `{gallery}`: create it first (POST /api/v1/admin/galleries)"
            )));
        }
        let id = loop {
            let id = random_hex(4)?;
            if !file.keys.iter().any(|k| k.info.id == id) {
                break id;
            }
        };
        let key = format!("lk_{id}_{}", random_hex(16)?);
        let info = KeyInfo {
            id,
            gallery: gallery.to_string(),
            scopes,
            label: label.to_string(),
            created: now(),
            revoked: false,
        };
        file.keys.push(StoredKey {
            info: info.clone(),
            hash: hex(&hash(&key)),
        });
        if let Err(e) = self.save(&file) {
            file.keys.pop();
            return Err(e);
        }
        Ok((key, info))
    }

    /// Every gallery key (revoked ones too), without secrets.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.file
            .lock()
            .map(|f| f.keys.iter().map(|k| k.info.clone()).collect())
            .unwrap_or_default()
    }

    /// Revokes a key by id; it stops working at once.
    pub fn revoke(&self, id: &str) -> Result<KeyInfo, KeyError> {
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        let key = file
            .keys
            .iter_mut()
            .find(|k| k.info.id == id)
            .ok_or_else(|| KeyError::NotFound(format!("no key with id `{id}`")))?;
        let was = key.info.revoked;
        key.info.revoked = true;
        let info = key.info.clone();
        if let Err(e) = self.save(&file) {
            if let Some(k) = file.keys.iter_mut().find(|k| k.info.id == id) {
                k.info.revoked = was;
            }
            return Err(e);
        }
        Ok(info)
    }
}

fn poisoned() -> KeyError {
    KeyError::Invalid(
        "the key store is unusable after an earlier panic; restart the service".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_scoped_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let (store, admin) = KeyStore::open(dir.path(), None).unwrap();
        let AdminKey::Created(admin_key) = admin else {
            panic!("a first start creates the admin key")
        };
        assert_eq!(store.authenticate(&admin_key), Some(Caller::Admin));
        store.create_gallery("office").unwrap();
        let scopes: BTreeSet<_> = [Scope::Recognize].into();
        let (key, info) = store.create_key("office", scopes.clone(), "door").unwrap();
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!text.contains(&key) && !text.contains(&admin_key), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        match store.authenticate(&key) {
            Some(Caller::Key(k)) => {
                assert_eq!(k.gallery, "office");
                assert_eq!(k.scopes, scopes);
            }
            other => panic!("{other:?}"),
        }
        // one changed character of the secret, or only the id, is nobody
        let mut wrong = key.clone().into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(store.authenticate(&String::from_utf8(wrong).unwrap()), None);
        assert_eq!(store.authenticate(&format!("lk_{}_", info.id)), None);
        // a restart keeps the admin key and the gallery key
        drop(store);
        let (store, admin) = KeyStore::open(dir.path(), None).unwrap();
        assert_eq!(admin, AdminKey::Existing);
        assert_eq!(store.authenticate(&admin_key), Some(Caller::Admin));
        assert!(store.authenticate(&key).is_some());
        store.revoke(&info.id).unwrap();
        assert_eq!(store.authenticate(&key), None);
        let (store, _) = KeyStore::open(dir.path(), None).unwrap();
        assert_eq!(
            store.authenticate(&key),
            None,
            "revocation survives a restart"
        );
    }

    #[test]
    fn an_admin_key_from_the_environment_replaces_the_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_, admin) = KeyStore::open(dir.path(), None).unwrap();
        let AdminKey::Created(stored) = admin else {
            panic!()
        };
        let (store, admin) = KeyStore::open(dir.path(), Some("a-long-enough-admin-key")).unwrap();
        assert_eq!(admin, AdminKey::FromEnvironment);
        assert_eq!(
            store.authenticate("a-long-enough-admin-key"),
            Some(Caller::Admin)
        );
        assert_eq!(store.authenticate(&stored), None);
        assert!(matches!(
            KeyStore::open(dir.path(), Some("short")),
            Err(KeyError::Invalid(_))
        ));
    }

    #[test]
    fn gallery_names_are_safe_file_names() {
        for bad in ["", "../x", "A", "a b", "a/b", &"x".repeat(65)] {
            assert!(valid_gallery_name(bad).is_err(), "{bad}");
        }
        valid_gallery_name("front-door_2").unwrap();
    }

    #[test]
    fn a_corrupt_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.json"), b"{not json").unwrap();
        assert!(matches!(
            KeyStore::open(dir.path(), None),
            Err(KeyError::Corrupt { .. })
        ));
        assert_eq!(
            std::fs::read(dir.path().join("keys.json")).unwrap(),
            b"{not json"
        );
    }
}
