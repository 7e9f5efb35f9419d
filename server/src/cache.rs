//! The stats query cache: a successful stats answer is reused for `MALLARD_CACHE_TTL` seconds,
//! keyed by the request's path and its normalized query (never by who asked).
//!
//! Invariant: an answer is at most the TTL older than the data; erasure and retention clear
//! the cache, so removed events never come back from it.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, Uri};
use prometheus_client::metrics::counter::Counter;

/// Upper bound of the cached bytes (answers plus keys).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One cached answer: always a `200`, with its content type.
#[derive(Clone)]
pub struct Cached {
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

pub struct QueryCache {
    /// `None` when the TTL is zero: nothing is cached.
    answers: Option<moka::sync::Cache<String, Cached>>,
    pub hits: Counter,
    pub misses: Counter,
}

impl QueryCache {
    pub fn new(ttl: Duration) -> Self {
        let answers = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .time_to_live(ttl)
                .weigher(|key: &String, value: &Cached| {
                    u32::try_from(key.len() + value.body.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(MAX_BYTES)
                .build()
        });
        Self {
            answers,
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.answers.is_some()
    }

    /// The cache key of a request: its path, then its query parameters sorted by name. A name
    /// given twice keeps its last value, as the handlers' `Query<HashMap<…>>` does.
    pub fn key(uri: &Uri) -> String {
        let params: BTreeMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        format!("{}?{query}", uri.path())
    }

    /// The cached answer for `key`, counting a hit or a miss (nothing when disabled).
    pub fn get(&self, key: &str) -> Option<Cached> {
        let answers = self.answers.as_ref()?;
        let found = answers.get(key);
        match found {
            Some(_) => self.hits.inc(),
            None => self.misses.inc(),
        };
        found
    }

    pub fn insert(&self, key: String, answer: Cached) {
        if let Some(answers) = &self.answers {
            answers.insert(key, answer);
        }
    }

    /// Forgets every answer: after data was removed (erasure, retention).
    pub fn invalidate_all(&self) {
        if let Some(answers) = &self.answers {
            answers.invalidate_all();
            answers.run_pending_tasks();
        }
    }

    /// Answers cached now (expired ones are evicted first).
    pub fn entry_count(&self) -> u64 {
        self.answers.as_ref().map_or(0, |answers| {
            answers.run_pending_tasks();
            answers.entry_count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_parameter_order_and_keep_the_last_repeat() {
        let key = |uri: &str| QueryCache::key(&uri.parse().expect("uri"));
        assert_eq!(
            key("/api/stats/main?site_id=a.com&period=7d"),
            key("/api/stats/main?period=7d&site_id=a.com")
        );
        assert_eq!(
            key("/api/stats/main?period=7d&site_id=a.com&period=30d"),
            key("/api/stats/main?site_id=a.com&period=30d")
        );
        assert_ne!(
            key("/api/stats/main?site_id=a.com"),
            key("/api/stats/timeseries?site_id=a.com")
        );
        assert_eq!(
            key("/api/stats/main?filters=page%3D%3D%2Fa&site_id=a.com"),
            key("/api/stats/main?site_id=a.com&filters=page==/a")
        );
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = QueryCache::new(Duration::ZERO);
        cache.insert(
            "k".into(),
            Cached {
                content_type: None,
                body: Bytes::from_static(b"{}"),
            },
        );
        assert!(cache.get("k").is_none());
        assert_eq!(cache.misses.get(), 0, "a disabled cache counts nothing");
        assert_eq!(cache.entry_count(), 0);
    }
}
