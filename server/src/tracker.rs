//! Serves the tracking script, at `/mallard.js` and at Plausible's `/js/script.js` path.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::LazyLock;

use crate::auth::{Access, Route};

/// The minified script, built from `server/tracker/src/mallard.js` by `cargo xtask tracker`.
pub const SCRIPT: &str = include_str!("../tracker/dist/mallard.min.js");

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/mallard.js", Access::Public, get_script),
        Route::get("/js/script.js", Access::Public, get_plausible_script),
    ]
}

/// The script gzipped once: most clients accept it, and it is what the size budget counts.
static GZIPPED: LazyLock<Option<Vec<u8>>> = LazyLock::new(|| {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(SCRIPT.as_bytes()).ok()?;
    encoder.finish().ok()
});

/// One strong ETag per encoding: `"<hash>"` and `"<hash>-gzip"`.
static ETAGS: LazyLock<(String, String)> = LazyLock::new(|| {
    let hash = hex::encode(&Sha256::digest(SCRIPT.as_bytes())[..8]);
    (format!("\"{hash}\""), format!("\"{hash}-gzip\""))
});

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

/// The tracking script
///
/// Minified, at most 1,024 bytes gzipped; gzip-encoded when the client accepts it. One-day
/// cache, with an ETag per encoding.
#[utoipa::path(
    get,
    path = "/mallard.js",
    tag = "tracker",
    params(
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a cached copy"),
    ),
    responses(
        (status = 200, description = "The script", body = String,
            content_type = "application/javascript",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The cached copy is current"),
    ),
)]
async fn get_script(headers: HeaderMap) -> Response {
    script(&headers)
}

/// The tracking script, at Plausible's path
///
/// The same script as `/mallard.js`, for pages that load Plausible's `/js/script.js`.
#[utoipa::path(
    get,
    path = "/js/script.js",
    tag = "tracker",
    params(
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a cached copy"),
    ),
    responses(
        (status = 200, description = "The script", body = String,
            content_type = "application/javascript",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The cached copy is current"),
    ),
)]
async fn get_plausible_script(headers: HeaderMap) -> Response {
    script(&headers)
}

fn script(headers: &HeaderMap) -> Response {
    let gzipped: Option<&'static [u8]> = GZIPPED.as_deref().filter(|_| accepts_gzip(headers));
    let etag = if gzipped.is_some() {
        &ETAGS.1
    } else {
        &ETAGS.0
    };
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
        axum::body::Body::from(gzipped.unwrap_or(SCRIPT.as_bytes())),
    )
        .into_response();
    if gzipped.is_some() {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
