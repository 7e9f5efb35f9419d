//! The versioned schema: migrations applied in order, and the event column list.

use duckdb::Connection;

/// Columns every event has, in hot rows and in Parquet files alike (the hot table adds `id`).
/// The session columns (`session_id`, `is_entry`, `bounce_delta`, `duration_ms`, `entry_page`,
/// and the acquisition columns) are filled by the sessionizer at ingest: see `session.rs`.
pub const EVENT_COLUMNS: &str = "ts, site_id, name, visitor_id, session_id, is_entry, \
    bounce_delta, duration_ms, hostname, pathname, entry_page, referrer, source, source_class, \
    utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, \
    os_version, device, country, region, city, props, revenue_amount, revenue_currency";

/// Each entry is applied once, in order, inside one transaction with its version row.
const MIGRATIONS: &[&str] = &[
    // 1: hot events, the Parquet manifest.
    "CREATE TABLE events_hot (
        id BIGINT NOT NULL,
        ts TIMESTAMP NOT NULL,
        site_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        visitor_id UBIGINT NOT NULL,
        session_id UBIGINT NOT NULL,
        is_entry BOOLEAN NOT NULL,
        bounce_delta TINYINT NOT NULL,
        duration_ms BIGINT NOT NULL,
        hostname VARCHAR NOT NULL,
        pathname VARCHAR NOT NULL,
        entry_page VARCHAR NOT NULL,
        referrer VARCHAR,
        source VARCHAR NOT NULL,
        source_class VARCHAR NOT NULL,
        utm_source VARCHAR,
        utm_medium VARCHAR,
        utm_campaign VARCHAR,
        utm_term VARCHAR,
        utm_content VARCHAR,
        browser VARCHAR,
        browser_version VARCHAR,
        os VARCHAR,
        os_version VARCHAR,
        device VARCHAR,
        country VARCHAR,
        region VARCHAR,
        city VARCHAR,
        props VARCHAR,
        revenue_amount DOUBLE,
        revenue_currency VARCHAR
    );
    CREATE TABLE parquet_files (
        path VARCHAR PRIMARY KEY,
        day DATE NOT NULL,
        row_count BIGINT NOT NULL,
        max_id BIGINT NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );",
    // 2: per-(site, day) totals of days that are over, kept by compaction (DESIGN.md §3).
    "CREATE TABLE daily_rollups (
        site_id VARCHAR NOT NULL,
        day DATE NOT NULL,
        visitors BIGINT NOT NULL,
        visits BIGINT NOT NULL,
        pageviews BIGINT NOT NULL,
        bounces BIGINT NOT NULL,
        duration_ms BIGINT NOT NULL,
        PRIMARY KEY (site_id, day)
    );
    CREATE TABLE rolled_days (
        day DATE PRIMARY KEY,
        rolled_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );",
    // 3: API keys, stored as SHA-256 digests (see auth/keys.rs); `created_at` is UTC.
    "CREATE TABLE api_keys (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        scope VARCHAR NOT NULL CHECK (scope IN ('read', 'admin')),
        key_hash VARCHAR NOT NULL UNIQUE,
        last4 VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    );",
];

pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to the latest schema; returns the version it was at.
pub fn migrate(conn: &Connection) -> duckdb::Result<i64> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        conn.execute_batch("BEGIN TRANSACTION")?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| {
                conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES (?)",
                    [version],
                )
            })
            .and_then(|_| conn.execute_batch("COMMIT"));
        if let Err(err) = applied {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err);
        }
    }
    Ok(current)
}
