//! `/api/keys`: create, list and revoke API keys (a session or an admin key).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::keys::{KeyInfo, MAX_NAME_CHARS, NewKey, Scope};
use super::login_api::body_error;
use super::{Access, Route};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::store::StoreError;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/keys", Access::Admin, get_keys),
        Route::post("/api/keys", Access::Admin, post_key).layer(DefaultBodyLimit::max(8 * 1024)),
        Route::delete("/api/keys/{id}", Access::Admin, delete_key),
    ]
}

/// The body of `POST /api/keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewApiKeyRequest)]
pub struct KeyRequest {
    /// 1 to 100 printable characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(value_type = Scope)]
    scope: String,
}

fn store_error(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "api key storage failed");
    ApiError::internal("the keys could not be read or written; see the server log")
}

/// Create an API key
///
/// The key is shown only in this answer; the server keeps its SHA-256 and last four
/// characters.
#[utoipa::path(
    post,
    path = "/api/keys",
    tag = "keys",
    security(("session" = []), ("bearer" = [])),
    request_body = KeyRequest,
    responses(
        (status = 201, description = "Created", body = NewKey),
        (status = 400, description = "Malformed body, or a bad `name` or `scope` (`field`)",
            body = ErrorBody),
        (status = 401, description = "No valid session or API key", body = ErrorBody),
        (status = 403, description = "A `read` key, or a session without this server's \
            `Origin`", body = ErrorBody),
        (status = 413, description = "The body is over 8 KiB", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
        (status = 422, description = "`name` or `scope` missing or not strings", body = ErrorBody),
    ),
)]
async fn post_key(
    State(state): State<AppState>,
    body: Result<Json<KeyRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let Json(request) = body.map_err(body_error)?;
    let name = request.name.trim().to_string();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "name",
            format!("the name must have 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    let scope = Scope::parse(&request.scope)
        .ok_or_else(|| ApiError::invalid("scope", "the scope must be `read` or `admin`"))?;
    let created = state
        .auth
        .keys
        .create(&state.store, name, scope)
        .await
        .map_err(store_error)?;
    tracing::info!(id = %created.id, scope = ?created.scope, "api key created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// List the API keys
///
/// Oldest first; never the keys themselves.
#[utoipa::path(
    get,
    path = "/api/keys",
    tag = "keys",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = Vec<KeyInfo>),
        (status = 401, description = "No valid session or API key", body = ErrorBody),
        (status = 403, description = "A `read` key", body = ErrorBody),
    ),
)]
async fn get_keys(State(state): State<AppState>) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    Ok(Json(
        state
            .auth
            .keys
            .list(&state.store)
            .await
            .map_err(store_error)?,
    ))
}

/// Revoke an API key
///
/// At once: the key gets `401` from then on.
#[utoipa::path(
    delete,
    path = "/api/keys/{id}",
    tag = "keys",
    security(("session" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid session or API key", body = ErrorBody),
        (status = 403, description = "A `read` key, or a session without this server's \
            `Origin`", body = ErrorBody),
        (status = 404, description = "No key has this id", body = ErrorBody),
    ),
)]
async fn delete_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .auth
        .keys
        .revoke(&state.store, id.clone())
        .await
        .map_err(store_error)?
    {
        tracing::info!(id = %id, "api key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "no API key has this id").with_field("id"))
    }
}
