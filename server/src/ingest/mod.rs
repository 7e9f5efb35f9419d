//! `POST /api/event` and its pixel variant `GET /api/event`: validate, enrich, store, then answer.
//!
//! Invariant: a 202 (or the pixel's 200) is sent only after the store committed the event.
//! A site over `MALLARD_RATE_LIMIT` gets 429 before any work is done for its event.

pub mod client_ip;
pub mod enrich;
pub mod payload;
mod referrer;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{Any, CorsLayer};

use crate::AppState;
use crate::auth::{Access, Route};
use crate::error::{ApiError, ErrorBody};
use crate::store::StoreError;
use client_ip::{Peer, PeerInfo};
use enrich::{Client, Outcome};
use payload::Payload;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub fn routes() -> Vec<Route> {
    // Trackers post from every customer site, so this endpoint alone is open to any origin.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    vec![
        Route::post("/api/event", Access::Public, post_event)
            .layer(DefaultBodyLimit::max(payload::MAX_BODY_BYTES))
            .layer(cors.clone()),
        Route::get("/api/event", Access::Public, get_event).layer(cors),
    ]
}

/// Record an event
///
/// The body is a JSON object of at most 64 KiB, sent as `application/json` or `text/plain`
/// (trackers use `text/plain`: no CORS preflight); CORS is open to every origin here. The 202
/// comes only once the event is durably stored (also for bots, which are dropped).
#[utoipa::path(
    post,
    path = "/api/event",
    tag = "ingestion",
    request_body(
        description = "The event; short and Plausible field names",
        content(
            (payload::EventBody = "text/plain"),
            (payload::EventBody = "application/json"),
        ),
    ),
    responses(
        (status = 202, description = "Stored", body = String, content_type = "text/plain",
            example = "ok"),
        (status = 400, description = "Invalid payload; `field` names the input", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 429, description = "The site is over `MALLARD_RATE_LIMIT` events per second",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 503, description = "Not stored (write queue full, disk refusing writes or \
            shutting down): retry", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
async fn post_event(
    State(state): State<AppState>,
    PeerInfo(peer): PeerInfo,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", payload::MAX_BODY_BYTES),
            )
            .with_field("body")
        } else {
            ApiError::invalid("body", rejection.body_text())
        }
    })?;
    let payload = payload::parse_body(&body)?;
    ingest(&state, &payload, peer, &headers).await?;
    Ok((StatusCode::ACCEPTED, "ok").into_response())
}

/// Record an event (pixel)
///
/// For `<img>` and `<noscript>`: the fields of `POST /api/event` as query parameters. Answers a
/// 1×1 GIF once the event is stored.
#[utoipa::path(
    get,
    path = "/api/event",
    tag = "ingestion",
    params(payload::PixelQuery),
    responses(
        (status = 200, description = "Stored: a transparent 1×1 GIF", body = Vec<u8>,
            content_type = "image/gif"),
        (status = 400, description = "Invalid field; `field` names it", body = ErrorBody),
        (status = 429, description = "The site is over `MALLARD_RATE_LIMIT` events per second",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 503, description = "Not stored: retry", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
async fn get_event(
    State(state): State<AppState>,
    PeerInfo(peer): PeerInfo,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let payload = payload::parse_query(url::form_urlencoded::parse(query.as_bytes()).into_owned())?;
    ingest(&state, &payload, peer, &headers).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PIXEL,
    )
        .into_response())
}

async fn ingest(
    state: &AppState,
    payload: &Payload,
    peer: Option<Peer>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    state.limits.admit_event(&payload.sites)?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let client = Client {
        ip: client_ip::client_ip(peer, headers, &state.config.trusted_proxies),
        user_agent,
    };
    let events = match state.enricher.enrich(payload, &client, chrono::Utc::now()) {
        Outcome::Bot => return Ok(()),
        Outcome::Events(events) => events,
    };
    state.store.submit(events).await.map_err(|err| match err {
        StoreError::Overloaded => ApiError::unavailable("the server is busy; retry shortly", 1),
        StoreError::WriteFailed(_) => {
            ApiError::unavailable("events cannot be stored right now; retry shortly", 5)
        }
        StoreError::Closed => ApiError::unavailable("the server is shutting down", 5),
        other => ApiError::internal(other.to_string()),
    })
}
