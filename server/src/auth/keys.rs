//! API keys: `mm_` + 256 random bits (base64url), sent as `Authorization: Bearer <key>`.
//!
//! Invariant: a key is shown once, when created; the `api_keys` table and the in-memory index
//! hold only its SHA-256 digest (a plain hash suffices for 256-bit random keys: there is
//! nothing to guess) and its last four characters. The index is loaded at start-up and updated
//! after every committed change, so a revoked key stops working before the 204 is sent.

use std::collections::HashMap;

use parking_lot::RwLock;
use serde::Serialize;

use super::session::{digest, random_token};
use crate::store::{Store, StoreError};

pub const KEY_PREFIX: &str = "mm_";
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reads stats.
    Read,
    /// Reads stats and manages keys (and erases data).
    Admin,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// When it was created (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub created: String,
    /// Its last four characters, to recognise it.
    pub last4: String,
}

/// A key just created: the only time `key` is known.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = NewApiKey)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// The key (`mm_` + 43 characters), shown only here: send it as `Authorization: Bearer`.
    pub key: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Holder {
    pub scope: Scope,
}

/// Digest → (id, scope) of every live key.
pub struct ApiKeys {
    index: RwLock<HashMap<[u8; 32], (String, Scope)>>,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

impl ApiKeys {
    /// Loads the index of stored keys.
    pub fn load(store: &Store) -> Result<Self, StoreError> {
        let rows = store.with_connection_blocking(|conn| {
            let mut stmt = conn.prepare("SELECT key_hash, id, scope FROM api_keys")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })?
                .collect::<Result<Vec<(String, String, String)>, _>>()?;
            Ok(rows)
        })?;
        let mut index = HashMap::new();
        for (hash, id, scope) in rows {
            let digest: [u8; 32] = hex::decode(&hash)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| corrupt(format!("api key {id}: bad digest")))?;
            let scope = Scope::parse(&scope)
                .ok_or_else(|| corrupt(format!("api key {id}: bad scope {scope:?}")))?;
            index.insert(digest, (id, scope));
        }
        Ok(Self {
            index: RwLock::new(index),
        })
    }

    /// Who holds `key`, if it is a live key.
    pub fn holder(&self, key: &str) -> Option<Holder> {
        if !key.starts_with(KEY_PREFIX) {
            return None;
        }
        self.index
            .read()
            .get(&digest(key))
            .map(|(_, scope)| Holder { scope: *scope })
    }

    pub async fn create(
        &self,
        store: &Store,
        name: String,
        scope: Scope,
    ) -> Result<NewKey, StoreError> {
        let key = format!("{KEY_PREFIX}{}", random_token());
        let id = hex::encode(rand::random::<[u8; 8]>());
        let hash = digest(&key);
        let last4 = key[key.len() - 4..].to_string();
        let created = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let (row_id, row_name) = (id.clone(), name.clone());
        store
            .with_connection(move |conn| {
                conn.execute(
                    "INSERT INTO api_keys (id, name, scope, key_hash, last4, created_at)
                     VALUES (?, ?, ?, ?, ?, CAST(? AS TIMESTAMP))",
                    [
                        &row_id,
                        &row_name,
                        scope.as_str(),
                        &hex::encode(hash),
                        &last4,
                        &created,
                    ],
                )?;
                Ok(())
            })
            .await?;
        self.index.write().insert(hash, (id.clone(), scope));
        Ok(NewKey {
            id,
            name,
            scope,
            key,
        })
    }

    pub async fn list(&self, store: &Store) -> Result<Vec<KeyInfo>, StoreError> {
        store
            .with_connection(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, name, scope, strftime(created_at, '%Y-%m-%dT%H:%M:%SZ'), last4
                     FROM api_keys ORDER BY created_at, id",
                )?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get::<_, String>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    })?
                    .collect::<Result<Vec<(String, String, String, String, String)>, _>>()?;
                rows.into_iter()
                    .map(|(id, name, scope, created, last4)| {
                        let scope = Scope::parse(&scope)
                            .ok_or_else(|| corrupt(format!("api key {id}: bad scope")))?;
                        Ok(KeyInfo {
                            id,
                            name,
                            scope,
                            created,
                            last4,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// Deletes the key; `false` when no key has this id.
    pub async fn revoke(&self, store: &Store, id: String) -> Result<bool, StoreError> {
        let row_id = id.clone();
        let deleted = store
            .with_connection(move |conn| {
                Ok(conn.execute("DELETE FROM api_keys WHERE id = ?", [&row_id])?)
            })
            .await?;
        self.index.write().retain(|_, (key_id, _)| *key_id != id);
        Ok(deleted > 0)
    }
}
