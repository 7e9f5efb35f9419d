//! Load limits: events per second per site id (`MALLARD_RATE_LIMIT`, GCRA through `governor`)
//! and stats queries running at once (`MALLARD_MAX_CONCURRENT_QUERIES`, a semaphore).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::error::ApiError;

/// How long a stats query waits for a free slot before the client gets 503.
pub const QUERY_WAIT: Duration = Duration::from_secs(2);

pub struct Limits {
    /// `None`: unlimited.
    events: Option<DefaultKeyedRateLimiter<String>>,
    queries: Arc<Semaphore>,
    /// Events refused with 429.
    pub rate_limit_rejections: Counter,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        let events = NonZeroU32::new(config.rate_limit)
            .map(|per_second| DefaultKeyedRateLimiter::keyed(Quota::per_second(per_second)));
        let slots = usize::try_from(config.max_concurrent_queries)
            .unwrap_or(1)
            .max(1);
        Self {
            events,
            queries: Arc::new(Semaphore::new(slots)),
            rate_limit_rejections: Counter::default(),
        }
    }

    /// One event for each of `sites`: `429` + `Retry-After` when a site is over its rate.
    pub fn admit_event(&self, sites: &[String]) -> Result<(), ApiError> {
        let Some(limiter) = &self.events else {
            return Ok(());
        };
        for site in sites {
            if let Err(not_until) = limiter.check_key(site) {
                self.rate_limit_rejections.inc();
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(ApiError {
                    retry_after: Some(seconds.max(1)),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("too many events for site {site:?}; retry shortly"),
                    )
                });
            }
        }
        Ok(())
    }

    /// Drops the state of sites that are back at their full burst (their state equals a new
    /// one's). Site ids come from clients: run every few seconds, this bounds their memory to
    /// the ids seen in that time.
    pub fn forget_idle_sites(&self) {
        if let Some(limiter) = &self.events {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// A slot for one stats query: waits up to [`QUERY_WAIT`], then `503` + `Retry-After: 1`.
    /// Owned, so a query keeps its slot until it finishes even if its client went away.
    pub async fn query_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(QUERY_WAIT, self.queries.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(ApiError::unavailable(
                "too many queries are running; retry in a second",
                1,
            )),
        }
    }
}
