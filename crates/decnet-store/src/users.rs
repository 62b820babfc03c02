//! Dashboard users and the key/value `state` table.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::enums::text_enum;
use crate::limits::{self, MAX_LABEL_LEN, MAX_TEXT_LEN};
use crate::{Result, Timestamp};

text_enum! {
    /// What a dashboard user may do.
    pub enum Role {
        /// Everything.
        Admin = "admin",
        /// Read-only.
        Viewer = "viewer",
    }
}

/// A dashboard user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub uuid: String,
    /// Unique login name.
    pub username: String,
    /// Password hash (the store never sees a password).
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Must change the password at next login.
    pub must_change_password: bool,
    /// Tokens issued before this instant are invalid.
    pub tokens_valid_from: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Stable id.
    pub uuid: String,
    /// Unique login name.
    pub username: String,
    /// Password hash.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Must change the password at next login.
    pub must_change_password: bool,
}

impl NewUser {
    pub(crate) fn check(&self) -> Result<()> {
        limits::label("user uuid", &self.uuid, MAX_LABEL_LEN)?;
        limits::label("username", &self.username, MAX_LABEL_LEN)?;
        limits::label("password hash", &self.password_hash, MAX_TEXT_LEN)
    }
}

/// Dashboard users.
///
/// Guarantees: usernames and uuids are unique; updates report whether the user exists.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Creates a user (stamping `created_at`).
    ///
    /// # Errors
    /// [`crate::Error::Conflict`] when the username or uuid is taken;
    /// [`crate::Error::Invalid`]; [`crate::Error::Database`].
    async fn create_user(&self, user: &NewUser) -> Result<User>;

    /// By login name.
    ///
    /// # Errors
    /// [`crate::Error::Database`], [`crate::Error::Corrupt`].
    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>>;

    /// By id.
    ///
    /// # Errors
    /// [`crate::Error::Database`], [`crate::Error::Corrupt`].
    async fn get_user_by_uuid(&self, uuid: &str) -> Result<Option<User>>;

    /// Every user, by username.
    ///
    /// # Errors
    /// [`crate::Error::Database`], [`crate::Error::Corrupt`].
    async fn list_users(&self) -> Result<Vec<User>>;

    /// Replaces the password hash and the must-change flag; returns whether the user
    /// exists.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`]; [`crate::Error::Database`].
    async fn update_user_password(
        &self,
        uuid: &str,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<bool>;

    /// Changes the role; returns whether the user exists.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    async fn update_user_role(&self, uuid: &str, role: Role) -> Result<bool>;

    /// Deletes the user; returns whether it existed.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    async fn delete_user(&self, uuid: &str) -> Result<bool>;
}

/// A small key/value table of JSON values (ingest cursors and similar).
#[async_trait]
pub trait StateRepo: Send + Sync {
    /// The value under `key`.
    ///
    /// # Errors
    /// [`crate::Error::Database`], [`crate::Error::Corrupt`].
    async fn get_state(&self, key: &str) -> Result<Option<Value>>;

    /// Stores `value` under `key` (replacing any previous value).
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a key over [`limits::MAX_STATE_KEY_LEN`] or a
    /// value over [`limits::MAX_STATE_VALUE_BYTES`]; [`crate::Error::Database`].
    async fn set_state(&self, key: &str, value: &Value) -> Result<()>;
}

/// Checks a state key; returns the encoded value.
pub(crate) fn encode_state(key: &str, value: &Value) -> Result<String> {
    limits::label("state key", key, limits::MAX_STATE_KEY_LEN)?;
    limits::json("state value", value, limits::MAX_STATE_VALUE_BYTES)
}
