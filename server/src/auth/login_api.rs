//! `/api/auth/*`: status, first-run setup, login and logout. All public (they are how one gets
//! credentials); a foreign `Origin` is refused on each.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::password::{self, PasswordError};
use super::{Access, Route, authenticate, check_origin};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::ingest::client_ip::{PeerInfo, client_ip};

/// Bodies here are one short JSON object.
const MAX_BODY_BYTES: usize = 8 * 1024;

pub fn routes() -> Vec<Route> {
    let limit = DefaultBodyLimit::max(MAX_BODY_BYTES);
    vec![
        Route::get("/api/auth/status", Access::Public, get_status),
        Route::post("/api/auth/setup", Access::Public, post_setup).layer(limit),
        Route::post("/api/auth/login", Access::Public, post_login).layer(limit),
        Route::post("/api/auth/logout", Access::Public, post_logout).layer(limit),
    ]
}

/// The body of setup and login.
#[derive(Deserialize, ToSchema)]
#[schema(as = PasswordRequest)]
pub struct PasswordBody {
    /// The admin password (setup: 12 to 1024 characters).
    password: String,
}

/// Whether the caller is signed in, and whether the first-run setup is still open.
#[derive(Serialize, ToSchema)]
#[schema(as = AuthStatus)]
pub struct Status {
    /// The request carries a valid session or API key.
    authenticated: bool,
    /// No admin password is configured anywhere yet.
    setup_required: bool,
}

pub(super) fn body_error(rejection: JsonRejection) -> ApiError {
    ApiError::new(rejection.status(), rejection.body_text()).with_field("body")
}

fn signed_in(state: &AppState, status: StatusCode) -> Response {
    let token = state.auth.sessions.create();
    let mut response = (
        status,
        Json(Status {
            authenticated: true,
            setup_required: false,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.auth.sessions.cookie(&token));
    response
}

/// Sign-in status
#[utoipa::path(
    get,
    path = "/api/auth/status",
    tag = "auth",
    responses((status = 200, description = "The status", body = Status)),
)]
async fn get_status(State(state): State<AppState>, headers: HeaderMap) -> Json<Status> {
    let setup_required = !state.auth.password.is_set();
    Json(Status {
        authenticated: authenticate(&state.auth, &headers).is_some(),
        setup_required,
    })
}

/// First-run setup
///
/// Accepted only while no admin password is configured anywhere: stores its Argon2id hash in
/// `<data>/.admin-password` and signs the caller in. A foreign `Origin` is refused.
#[utoipa::path(
    post,
    path = "/api/auth/setup",
    tag = "auth",
    request_body = PasswordBody,
    responses(
        (status = 201, description = "Set; signed in", body = Status,
            headers(("Set-Cookie" = String, description = "The `mallard_session` cookie"))),
        (status = 400, description = "Malformed body, or a password of fewer than 12 or more \
            than 1024 characters (`field`: `password`)", body = ErrorBody),
        (status = 403, description = "A foreign `Origin`", body = ErrorBody),
        (status = 409, description = "A password is already set", body = ErrorBody),
        (status = 413, description = "The body is over 8 KiB", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
        (status = 422, description = "No `password` string in the body", body = ErrorBody),
    ),
)]
async fn post_setup(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    check_origin(&headers, &uri, false)?;
    let Json(body) = body.map_err(body_error)?;
    if state.auth.password.is_set() {
        return Err(already_set());
    }
    password::check_new(&body.password).map_err(|reason| ApiError::invalid("password", reason))?;
    match state.auth.password.setup(body.password).await {
        Ok(()) => Ok(signed_in(&state, StatusCode::CREATED)),
        Err(PasswordError::AlreadySet) => Err(already_set()),
        Err(err) => {
            tracing::error!(error = %err, "admin password setup failed");
            Err(ApiError::internal(
                "the password could not be saved; see the server log",
            ))
        }
    }
}

fn already_set() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "an admin password is already set; log in instead",
    )
}

/// Log in
///
/// Checks the admin password and sets the session cookie. After `MALLARD_MAX_LOGIN_ATTEMPTS`
/// failures from one client address, that address is locked out for `MALLARD_LOGIN_LOCKOUT`
/// seconds (`429`), even with the right password. A foreign `Origin` is refused.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Signed in", body = Status,
            headers(("Set-Cookie" = String, description = "The `mallard_session` cookie"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong password (`field`: `password`), or none set yet",
            body = ErrorBody),
        (status = 403, description = "A foreign `Origin`", body = ErrorBody),
        (status = 413, description = "The body is over 8 KiB", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
        (status = 422, description = "No `password` string in the body", body = ErrorBody),
        (status = 429, description = "Too many failed logins from this address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the lockout ends"))),
    ),
)]
async fn post_login(
    State(state): State<AppState>,
    PeerInfo(peer): PeerInfo,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    check_origin(&headers, &uri, false)?;
    let Json(body) = body.map_err(body_error)?;
    if !state.auth.password.is_set() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no admin password is set yet: choose one first (POST /api/auth/setup)",
        ));
    }
    let ip = client_ip(peer, &headers, &state.config.trusted_proxies);
    state.auth.lockout.begin(ip).map_err(|seconds| ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins from this address; try again later",
        )
    })?;
    match state.auth.verify(body.password).await? {
        Some(true) => {
            state.auth.lockout.succeeded(ip);
            tracing::info!("admin signed in");
            Ok(signed_in(&state, StatusCode::OK))
        }
        _ => {
            state.auth.lockout.failed(ip);
            state.auth.login_failures.fetch_add(1, Ordering::Relaxed);
            // No address in the log: the raw IP is never written anywhere (DESIGN §2).
            tracing::warn!("failed admin login");
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong password").with_field("password"))
        }
    }
}

/// Log out
///
/// Ends the session the cookie names (if any) and clears the cookie. A foreign `Origin` is
/// refused.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "Signed out",
            headers(("Set-Cookie" = String, description = "Clears `mallard_session`"))),
        (status = 403, description = "A foreign `Origin`", body = ErrorBody),
    ),
)]
async fn post_logout(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_origin(&headers, &uri, false)?;
    if let Some(token) = super::session::token_from(&headers) {
        state.auth.sessions.remove(token);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.auth.sessions.cleared_cookie());
    Ok(response)
}
