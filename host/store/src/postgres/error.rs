//! How PostgreSQL's failures become [`StoreError`]s, and which of them a
//! transaction retries.

use crate::StoreError;
use tokio_postgres::error::SqlState;

/// What a step inside a transaction can fail with: a refusal the contract
/// names, or the database's own error (kept whole so the runner can tell a
/// deadlock, which it retries, from the rest).
#[derive(Debug)]
pub(crate) enum Fail {
    Store(StoreError),
    Pg(tokio_postgres::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Fail::Store(pool_error(e))
    }
}

impl Fail {
    /// A deadlock or serialisation failure: nothing was written, running
    /// the whole transaction again is the documented remedy.
    pub fn retryable(&self) -> bool {
        match self {
            Fail::Pg(e) => {
                matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
            }
            Fail::Store(_) => false,
        }
    }

    pub fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Pg(e) => pg_error(e),
        }
    }
}

/// A database error as the contract classifies it. Everything is
/// temporary for a client (4xx) except what the contract names; a full
/// disk keeps its errno so SMTP answers 452 (RFC 3463 4.3.1).
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke, timed out or was refused.
        return StoreError::Unavailable(format!("PostgreSQL: {e}"));
    };
    if *code == SqlState::DISK_FULL {
        return StoreError::io(std::io::Error::from_raw_os_error(28 /* ENOSPC */));
    }
    let detail = match e.as_db_error() {
        Some(db) => format!("PostgreSQL {}: {}", code.code(), db.message()),
        None => format!("PostgreSQL {}: {e}", code.code()),
    };
    if code.code().starts_with("58") {
        // System errors (I/O) on the database's host.
        return StoreError::io(std::io::Error::other(detail));
    }
    StoreError::Unavailable(detail)
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        deadpool_postgres::PoolError::Closed => StoreError::Unavailable("the store is closed".into()),
        other => StoreError::Unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pool_is_unavailable() {
        let e = pool_error(deadpool_postgres::PoolError::Closed);
        assert!(matches!(e, StoreError::Unavailable(_)) && e.is_temporary());
    }
}
