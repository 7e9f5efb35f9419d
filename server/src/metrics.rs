//! Prometheus metrics at `GET /metrics` (only with `Authorization: Bearer
//! $MALLARD_METRICS_TOKEN`), and the middleware every request passes: a request id (also sent
//! back as `X-Request-Id`), the duration histogram by route template, one structured log line.
//!
//! Invariant: the request log and the labels name the matched route template, never the raw
//! path or query; no IP address, user agent, cookie or credential is logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::AppState;
use crate::auth::{Access, Auth, Route};
use crate::cache::QueryCache;
use crate::error::{ApiError, ErrorBody};
use crate::limits::Limits;
use crate::store::Store;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The request-log target: `MALLARD_LOG=info,mallard_metrics::request=warn` mutes it.
pub const REQUEST_LOG: &str = "mallard_metrics::request";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

type HttpHistograms = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// The registry and the metrics recorded outside the store, limits and cache.
pub struct Metrics {
    registry: Registry,
    http: HttpHistograms,
    /// Events removed by the retention job.
    pub retention_deleted_events: Counter,
    started: Instant,
}

impl Metrics {
    pub fn new(store: &Store, auth: Arc<Auth>, cache: &QueryCache, limits: &Limits) -> Self {
        let http: HttpHistograms = Family::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let retention_deleted_events = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "mallard_rate_limit_rejections",
            "Events refused with 429 because their site was over MALLARD_RATE_LIMIT",
            limits.rate_limit_rejections.clone(),
        );
        registry.register(
            "mallard_cache_hits",
            "Stats answers served from the query cache",
            cache.hits.clone(),
        );
        registry.register(
            "mallard_cache_misses",
            "Stats requests the query cache could not answer",
            cache.misses.clone(),
        );
        registry.register(
            "mallard_retention_deleted_events",
            "Events deleted by the retention job (MALLARD_RETENTION_DAYS)",
            retention_deleted_events.clone(),
        );
        registry.register(
            "mallard_http_request_duration_seconds",
            "HTTP request duration by route template, method and status",
            http.clone(),
        );
        registry.register(
            "mallard_commit_batch_size",
            "Events per group commit of the writer",
            store.stats().batch_sizes.clone(),
        );
        registry.register(
            "mallard_commit_duration_seconds",
            "Duration of the writer's group commits",
            store.stats().commit_seconds.clone(),
        );
        registry.register_collector(Box::new(Scraped {
            store: store.clone(),
            auth,
        }));
        Self {
            registry,
            http,
            retention_deleted_events,
            started: Instant::now(),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Values read at scrape time from where they are kept.
struct Scraped {
    store: Store,
    auth: Arc<Auth>,
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scraped")
    }
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.store.stats();
        let counters = [
            (
                "mallard_events_ingested",
                "Events committed to the store",
                stats.committed_events.load(Relaxed),
            ),
            (
                "mallard_flush_failures",
                "Group commits that failed (their events were refused, not acknowledged)",
                stats.flush_failures.load(Relaxed),
            ),
            (
                "mallard_login_failures",
                "Failed admin logins (wrong password)",
                self.auth.login_failures.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let gauges = [
            (
                "mallard_buffered_events",
                "Events waiting for the writer's next commit",
                stats.buffered_events.load(Relaxed).max(0),
            ),
            (
                "mallard_behavioral_extension",
                "Always 0: no DuckDB extension is loaded; funnels, retention and flows are built-in SQL",
                0,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

pub fn routes() -> Vec<Route> {
    // Public in the route table: no session or API key opens it; its own token does (below).
    vec![Route::get("/metrics", Access::Public, get_metrics)]
}

/// Prometheus metrics
///
/// The OpenMetrics text format. Opened only by `MALLARD_METRICS_TOKEN` (compared in constant
/// time), never by a session or an API key; without a configured token the endpoint does not
/// exist (`404`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "monitoring",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "application/openmetrics-text"),
        (status = 401, description = "Not exactly the metrics token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No `MALLARD_METRICS_TOKEN` is set", body = ErrorBody),
    ),
)]
async fn get_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.config.metrics_token.as_deref() else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such page or endpoint").into_response();
    };
    if !bearer_matches(&headers, token) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "send the metrics token as `Authorization: Bearer <MALLARD_METRICS_TOKEN>`",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => ApiError::internal("the metrics could not be encoded").into_response(),
    }
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time
/// (digests of equal length, so neither content nor length leaks through timing).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, given)| given.trim());
    let Some(given) = given else {
        return false;
    };
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    given.ct_eq(&expected).into()
}

/// The method as a label: the standard ones by name, anything else as `other` (a client must
/// not be able to create label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The outermost middleware: request id, duration histogram, request log.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = format!("{:032x}", rand::random::<u128>());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = method_label(request.method());
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .http
        .get_or_create(&HttpLabels {
            route: route.clone(),
            method: method.to_string(),
            status,
        })
        .observe(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    tracing::info!(target: REQUEST_LOG, request_id = %request_id, method, route = %route, status, latency_ms, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let token = "0123456789abcdef-token";
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("ascii"),
            );
            headers
        };
        assert!(bearer_matches(&with(&format!("Bearer {token}")), token));
        assert!(bearer_matches(&with(&format!("bearer  {token} ")), token));
        assert!(!bearer_matches(&with(&format!("Basic {token}")), token));
        assert!(!bearer_matches(&with(&format!("Bearer {token}x")), token));
        assert!(!bearer_matches(&with("Bearer 0123456789abcdef"), token));
        assert!(!bearer_matches(&HeaderMap::new(), token));
    }
}
