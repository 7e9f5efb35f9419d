//! The OpenAPI 3.1 document of the HTTP API, generated from the code by `utoipa`: each handler
//! carries its `#[utoipa::path]` (method, path, parameters, bodies, responses, security) and
//! each JSON body type derives `ToSchema`; [`document`] assembles them and
//! `GET /api/openapi.json` serves it.
//!
//! Invariant: the document lists exactly the route table's (method, path) pairs, every `Read`
//! and `Admin` route with the `session` and `bearer` schemes, every `Public` one with none (but
//! `/metrics`, with its own token). `tests/openapi.rs` walks the table and checks all three, so
//! adding a route without its description fails the tests.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use crate::auth::session::COOKIE_NAME;
use crate::auth::{Access, Route};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mallard Metrics",
        description = "Self-hosted, cookie-less web analytics. Every error answers \
            `{\"error\": \"…\", \"field\": \"…\"}` (the `Error` schema); `429` and `503` answers \
            of the API carry `Retry-After`.",
    ),
    paths(
        crate::ingest::post_event,
        crate::ingest::get_event,
        crate::tracker::get_script,
        crate::tracker::get_plausible_script,
        crate::health::get_health,
        crate::health::get_ready,
        crate::health::get_detailed,
        crate::metrics::get_metrics,
        crate::dashboard::get_index,
        crate::dashboard::get_script,
        crate::dashboard::get_style,
        crate::auth::login_api::get_status,
        crate::auth::login_api::post_setup,
        crate::auth::login_api::post_login,
        crate::auth::login_api::post_logout,
        crate::auth::keys_api::get_keys,
        crate::auth::keys_api::post_key,
        crate::auth::keys_api::delete_key,
        crate::stats::get_main,
        crate::stats::get_timeseries,
        crate::stats::get_breakdown,
        crate::stats::get_export,
        crate::gdpr::delete_erase,
        get_openapi,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ingestion", description = "Recording events"),
        (name = "tracker", description = "The tracking script"),
        (name = "stats", description = "Reading stats: a session or an API key of any scope"),
        (name = "data", description = "Data lifecycle: a session or an admin key"),
        (name = "auth", description = "Signing in (public)"),
        (name = "keys", description = "API keys: a session or an admin key"),
        (name = "monitoring", description = "Health and metrics"),
        (name = "dashboard", description = "The web page"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// The `securitySchemes` the operations name: `session` (the login cookie), `bearer` (an API
/// key) and `metrics_token` (`MALLARD_METRICS_TOKEN`, for `/metrics` only).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "The session cookie set by `POST /api/auth/login` (or the first-run setup). A \
                 session counts as admin; its writes need this server's `Origin`.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("mm_…")
                    .description(Some(
                        "An API key from `POST /api/keys`: scope `read` (stats, status) or \
                         `admin` (everything a session may do).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`MALLARD_METRICS_TOKEN`: opens `/metrics` and nothing else.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route in [`crate::routes`].
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The document as served: built once.
static JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"the document could not be encoded: {e}\"}}"))
});

pub fn routes() -> Vec<Route> {
    vec![Route::get("/api/openapi.json", Access::Public, get_openapi)]
}

/// This document
///
/// The OpenAPI 3.1 description of every endpoint, generated from the code.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object,
        content_type = "application/json")),
)]
async fn get_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}

/// A string schema that allows only `values`, for parameters whose values the code lists.
pub fn string_enum<'a>(
    values: impl IntoIterator<Item = &'a str>,
    description: Option<String>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(description)
        .into()
}
