//! Mapping of sqlx / PostgreSQL errors to mc-core's typed [`StoreError`].

use mc_core::StoreError;

/// SQLSTATE of a serialization failure (another transaction won a conflict).
pub(crate) const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a detected deadlock.
pub(crate) const DEADLOCK_DETECTED: &str = "40P01";

/// The SQLSTATE of a database error, if `e` is one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Whether running the whole transaction again may succeed (it lost a conflict).
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(
        sqlstate(e).as_deref(),
        Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
    )
}

/// Maps any sqlx error to the [`StoreError`] variant a caller can act on:
/// a server that cannot be reached (or is shutting down, or killed our session) is
/// [`StoreError::Unavailable`]; data that fails to decode is [`StoreError::Corrupt`];
/// a lost serialization race is `Unavailable` too (the caller may simply retry).
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Configuration(_) => StoreError::InvalidInput {
            field: "url",
            reason: e.to_string(),
        },
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        sqlx::Error::Database(db) => map_db(
            &db.code().map(|c| c.into_owned()).unwrap_or_default(),
            db.message(),
            db.constraint(),
        ),
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Maps a database error by its SQLSTATE (`code`), message and constraint name — the
/// parts a server error carries, whether it reached us as a [`sqlx::Error`] or was
/// caught by `mc_commit_batch` and returned as a row.
pub(crate) fn map_db(code: &str, msg: &str, constraint: Option<&str>) -> StoreError {
    match code {
        // Connection exceptions, admin shutdown / terminated backend, the server
        // starting up, too many connections, out of resources.
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
            StoreError::Unavailable(format!("{msg} (SQLSTATE {code})"))
        }
        // The database named in the URL does not exist (yet).
        "3D000" => StoreError::Unavailable(format!("{msg} (SQLSTATE {code})")),
        SERIALIZATION_FAILURE | DEADLOCK_DETECTED => StoreError::Unavailable(format!(
            "transaction kept losing a concurrency conflict, retry later: {msg}"
        )),
        _ => StoreError::Backend(format!(
            "{msg} (SQLSTATE {code}{})",
            constraint
                .map(|c| format!(", constraint {c}"))
                .unwrap_or_default()
        )),
    }
}

/// A stored value that does not parse back into its mc-core type.
pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// The error of one attempt at a transaction: either final, or "lost a concurrency
/// race, run the whole transaction again".
#[derive(Debug)]
pub(crate) enum TxError {
    /// Give this to the caller.
    Store(StoreError),
    /// Run the transaction again (serialization failure, deadlock, or a read that saw
    /// a row change between two statements).
    Retry(String),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

/// Maps a sqlx error inside a transaction, keeping retryable ones apart.
pub(crate) fn tx_err(e: sqlx::Error) -> TxError {
    if is_retryable(&e) {
        TxError::Retry(e.to_string())
    } else {
        TxError::Store(map_sqlx(e))
    }
}
