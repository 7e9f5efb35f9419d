//! Serves the tracking script, at `/mallard.js` and at Plausible's `/js/script.js` path.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::AppState;

/// The minified script, built from `server/tracker/src/mallard.js` by `cargo xtask tracker`.
pub const SCRIPT: &str = include_str!("../tracker/dist/mallard.min.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mallard.js", get(get_script))
        .route("/js/script.js", get(get_script))
}

fn etag() -> String {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..8]))
}

async fn get_script(headers: HeaderMap) -> Response {
    let etag = etag();
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SCRIPT,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
