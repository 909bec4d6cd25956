//! Versioned schema migrations, the same mechanism for every backend.
//!
//! Each backend has its ordered list of [`Migration`]s (SQL files under `migrations/<backend>`),
//! and a table `veo3_migrations` records which versions were applied. Opening a journal
//! applies the missing ones, each in its own transaction, and refuses a journal whose version
//! is newer than the program's. A crate such as refinery does the same with a larger tree
//! (regex, toml, time...); the whole mechanism here is this file, and a second backend reuses
//! it with its own SQL.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::store::StoreError;

/// One schema step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Migration {
    /// Its version: 1, 2, 3... in order, never reused.
    pub(crate) version: i64,
    /// What it does.
    pub(crate) name: &'static str,
    /// The SQL, run as one batch.
    pub(crate) sql: &'static str,
}

/// Applies the migrations `connection` lacks.
#[cfg(feature = "sqlite")]
pub(crate) fn apply_sqlite(
    connection: &mut rusqlite::Connection,
    migrations: &[Migration],
    path: &str,
) -> Result<(), StoreError> {
    let fail = |e: rusqlite::Error| StoreError::Backend {
        path: path.to_owned(),
        message: format!("migrating the schema: {e}"),
    };
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS veo3_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
        )
        .map_err(fail)?;
    let current: i64 = connection
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM veo3_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(fail)?;
    let known = migrations.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: current,
            known,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        // IMMEDIATE, and the version read again under the write lock: several processes
        // opening a new journal at once migrate it once (the others find it done).
        let tx = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let applied: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM veo3_migrations",
                [],
                |row| row.get(0),
            )
            .map_err(fail)?;
        if applied >= migration.version {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO veo3_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![migration.version, migration.name, crate::now_ms()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

/// Applies the migrations the database lacks, in one transaction, under an advisory lock: the
/// first of several workers starting at once migrates, the others wait and find it done.
#[cfg(feature = "postgres")]
pub(crate) async fn apply_postgres(
    client: &mut tokio_postgres::Client,
    migrations: &[Migration],
    location: &str,
) -> Result<(), StoreError> {
    let fail = |e: tokio_postgres::Error| StoreError::Backend {
        path: location.to_owned(),
        message: format!(
            "migrating the schema: {}",
            e.as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string())
        ),
    };
    let tx = client.transaction().await.map_err(fail)?;
    // Keyed by the schema, so journals in other schemas migrate in parallel.
    tx.execute(
        "SELECT pg_advisory_xact_lock(1449423926, hashtext(current_schema()))",
        &[],
    )
    .await
    .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS veo3_migrations (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
    )
    .await
    .map_err(fail)?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM veo3_migrations", &[])
        .await
        .map_err(fail)?
        .get(0);
    let known = migrations.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::TooNew {
            path: location.to_owned(),
            found: current,
            known,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        tx.batch_execute(migration.sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO veo3_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &crate::now_ms()],
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}
