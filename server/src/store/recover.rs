//! Start-up recovery: the visits still open when the server stopped, read back from stored rows.

use chrono::{Duration, Utc};
use duckdb::Connection;

use super::StoreError;
use super::event::Acquisition;
use super::layout::relation_sql;
use super::session::{IDLE_MICROS, OpenSession, Sessionizer};

/// Rebuilds the open-visit map from events of the last 30 minutes. Visits never span two UTC
/// days (visitor ids rotate at midnight), so reading the day(s) those minutes touch gives every
/// event of each open visit, hence its bounce state.
pub fn open_sessions(
    conn: &Connection,
    data_dir: &std::path::Path,
) -> Result<Sessionizer, StoreError> {
    let now = Utc::now();
    let since = now - Duration::microseconds(IDLE_MICROS);
    let first_day = since.date_naive();
    let mut stmt = conn.prepare("SELECT path FROM parquet_files WHERE day >= CAST(? AS DATE)")?;
    let files: Vec<String> = stmt
        .query_map([first_day.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let relation = relation_sql(data_dir, &files);
    let sql = format!(
        "WITH recent AS ({relation}),
         visits AS (
           SELECT site_id, visitor_id, session_id, epoch_us(max(ts)) AS last_ts,
                  sum(bounce_delta)::BIGINT AS bounces, any_value(entry_page) AS entry_page,
                  any_value(referrer) AS referrer, any_value(source) AS source,
                  any_value(source_class) AS source_class, any_value(utm_source) AS utm_source,
                  any_value(utm_medium) AS utm_medium, any_value(utm_campaign) AS utm_campaign,
                  any_value(utm_term) AS utm_term, any_value(utm_content) AS utm_content
           FROM recent WHERE ts >= CAST(? AS DATE)
           GROUP BY site_id, visitor_id, session_id
           HAVING max(ts) >= make_timestamp(?::BIGINT))
         SELECT * FROM visits QUALIFY row_number() OVER (PARTITION BY site_id, visitor_id ORDER BY last_ts DESC) = 1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(
        duckdb::params![first_day.to_string(), since.timestamp_micros()],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u64>(1)?,
                OpenSession {
                    session_id: r.get(2)?,
                    last_ts_micros: r.get(3)?,
                    bounce_open: r.get::<_, i64>(4)? == 1,
                    entry_page: r.get(5)?,
                    acquisition: Acquisition {
                        referrer: r.get(6)?,
                        source: r.get(7)?,
                        source_class: r.get(8)?,
                        utm_source: r.get(9)?,
                        utm_medium: r.get(10)?,
                        utm_campaign: r.get(11)?,
                        utm_term: r.get(12)?,
                        utm_content: r.get(13)?,
                    },
                },
            ))
        },
    )?;
    let open: Vec<_> = rows.collect::<Result<_, _>>()?;
    Ok(Sessionizer::from_open(open))
}
