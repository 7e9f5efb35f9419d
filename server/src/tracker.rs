//! Serves the tracking script, at `/mallard.js` and at Plausible's `/js/script.js` path.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::LazyLock;

use crate::AppState;

/// The minified script, built from `server/tracker/src/mallard.js` by `cargo xtask tracker`.
pub const SCRIPT: &str = include_str!("../tracker/dist/mallard.min.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mallard.js", get(get_script))
        .route("/js/script.js", get(get_script))
}

/// The script gzipped once: most clients accept it, and it is what the size budget counts.
static GZIPPED: LazyLock<Option<Vec<u8>>> = LazyLock::new(|| {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(SCRIPT.as_bytes()).ok()?;
    encoder.finish().ok()
});

fn etag(variant: &str) -> String {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    format!("\"{}{variant}\"", hex::encode(&digest[..8]))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            coding
                .split(';')
                .next()
                .is_some_and(|name| name.trim() == "gzip")
        })
}

async fn get_script(headers: HeaderMap) -> Response {
    let gzipped = GZIPPED.as_deref().filter(|_| accepts_gzip(&headers));
    let etag = etag(if gzipped.is_some() { "-gzip" } else { "" });
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
            (header::VARY, "Accept-Encoding"),
        ],
        gzipped.map_or_else(|| SCRIPT.as_bytes().to_vec(), <[u8]>::to_vec),
    )
        .into_response();
    if gzipped.is_some() {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
