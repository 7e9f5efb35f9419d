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
use crate::error::ApiError;
use crate::store::StoreError;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/keys", Access::Admin, get_keys),
        Route::post("/api/keys", Access::Admin, post_key).layer(DefaultBodyLimit::max(8 * 1024)),
        Route::delete("/api/keys/{id}", Access::Admin, delete_key),
    ]
}

#[derive(Deserialize)]
struct KeyRequest {
    name: String,
    scope: String,
}

fn store_error(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "api key storage failed");
    ApiError::internal("the keys could not be read or written; see the server log")
}

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
