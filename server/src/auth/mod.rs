//! Authentication: the admin password, login sessions, API keys, the login lockout, CSRF and
//! the guard every non-public route passes through.
//!
//! Invariant: a route is reachable without credentials only if the route table
//! ([`route::Route`]) marks it `Public`; paths under [`route::PROTECTED_PREFIXES`] never are,
//! and answer 401 without credentials even where no route exists.

pub mod headers;
pub mod keys;
pub(crate) mod keys_api;
pub mod lockout;
pub(crate) mod login_api;
pub mod password;
pub mod route;
pub mod session;

use std::sync::atomic::AtomicU64;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::config::Config;
use crate::error::ApiError;
use crate::store::{Store, StoreError};
pub use route::{Access, Route};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("cannot load the API keys: {0}")]
    Keys(#[from] StoreError),
}

/// Everything authentication keeps between requests.
pub struct Auth {
    pub password: password::AdminPassword,
    pub sessions: session::Sessions,
    pub keys: keys::ApiKeys,
    pub lockout: lockout::Lockout,
    /// Failed logins since start-up (wrong password), for monitoring.
    pub login_failures: AtomicU64,
    /// Bounds the Argon2 verifications running at once (each takes ~19 MiB and a core).
    verifying: tokio::sync::Semaphore,
}

impl Auth {
    pub fn open(config: &Config, store: &Store) -> Result<Self, AuthError> {
        Ok(Self {
            password: password::AdminPassword::load(
                config.admin_password_hash.as_deref(),
                store.data_dir(),
            )?,
            sessions: session::Sessions::new(config.session_ttl, config.secure_cookies),
            keys: keys::ApiKeys::load(store)?,
            lockout: lockout::Lockout::new(config.max_login_attempts, config.login_lockout),
            login_failures: AtomicU64::new(0),
            verifying: tokio::sync::Semaphore::new(2),
        })
    }

    /// Whether `password` is the admin password (`None`: no password is set yet).
    pub async fn verify(&self, password: String) -> Result<Option<bool>, ApiError> {
        let Some(hash) = self.password.current() else {
            return Ok(None);
        };
        let _permit = self
            .verifying
            .acquire()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || password::verify_blocking(&hash, &password))
            .await
            .map(Some)
            .map_err(|e| ApiError::internal(format!("password check failed: {e}")))
    }
}

/// Who made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in browser (the `mallard_session` cookie): counts as admin.
    Session,
    /// An API key.
    Key(keys::Scope),
}

impl Principal {
    fn may(self, access: Access) -> bool {
        match (access, self) {
            (Access::Public | Access::Read, _) => true,
            (Access::Admin, Principal::Session | Principal::Key(keys::Scope::Admin)) => true,
            (Access::Admin, Principal::Key(keys::Scope::Read)) => false,
        }
    }
}

/// The request's credentials, if valid. A request with an `Authorization` header is judged by
/// it alone; otherwise by its session cookie.
pub fn authenticate(auth: &Auth, headers: &HeaderMap) -> Option<Principal> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let (scheme, key) = value.to_str().ok()?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let key = key.trim();
        return auth.keys.holder(key).map(|h| Principal::Key(h.scope));
    }
    let token = session::token_from(headers)?;
    auth.sessions.is_valid(token).then_some(Principal::Session)
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the `Origin` URL names the same host and port the request was sent to (a `Host`
/// without a port means the default port of the origin's scheme).
fn origin_matches(origin: &str, host: &str) -> bool {
    let (Ok(origin), Ok(host)) = (
        url::Url::parse(origin),
        host.parse::<axum::http::uri::Authority>(),
    ) else {
        return false;
    };
    let scheme_port = match origin.scheme() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    origin
        .host_str()
        .is_some_and(|name| name.eq_ignore_ascii_case(host.host()))
        && origin.port_or_known_default() == host.port_u16().or(scheme_port)
}

/// CSRF defence for cookie-authenticated writes: the `Origin` must be this server. With
/// `required == false` (the public login routes) a missing `Origin` passes, a foreign one not.
pub fn check_origin(
    request_headers: &HeaderMap,
    uri: &axum::http::Uri,
    required: bool,
) -> Result<(), ApiError> {
    let host = request_headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    match request_headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None if !required => Ok(()),
        Some(Ok(origin)) if host.is_some_and(|host| origin_matches(origin, host)) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the Origin header must name this server",
        )
        .with_field("Origin")),
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication required: log in, or send an API key as `Authorization: Bearer <key>`",
    )
}

/// The guard in front of every `Read` and `Admin` route (installed by `crate::app`).
pub async fn require(
    access: Access,
    state: AppState,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(principal) = authenticate(&state.auth, request.headers()) else {
        return unauthorized().into_response();
    };
    if !principal.may(access) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "this API key has the read scope; this needs a session or an admin key",
        )
        .into_response();
    }
    if principal == Principal::Session
        && is_state_changing(request.method())
        && let Err(err) = check_origin(request.headers(), request.uri(), true)
    {
        return err.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Requests no route matched: 401 under a protected prefix without credentials (so no path
/// there is ever answered without them), else 404.
pub async fn fallback(State(state): State<AppState>, request: Request) -> ApiError {
    if route::is_protected_path(request.uri().path())
        && authenticate(&state.auth, request.headers()).is_none()
    {
        return unauthorized();
    }
    ApiError::new(StatusCode::NOT_FOUND, "no such page or endpoint")
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    let mut routes = login_api::routes();
    routes.extend(keys_api::routes());
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_match_the_host_and_port() {
        assert!(origin_matches("https://stats.example", "stats.example"));
        assert!(origin_matches("https://Stats.Example", "stats.example:443"));
        assert!(origin_matches("http://127.0.0.1:8000", "127.0.0.1:8000"));
        assert!(!origin_matches("http://127.0.0.1:8001", "127.0.0.1:8000"));
        assert!(!origin_matches(
            "http://stats.example:8080",
            "stats.example"
        ));
        assert!(!origin_matches("https://evil.example", "stats.example"));
        assert!(!origin_matches(
            "https://stats.example.evil",
            "stats.example"
        ));
        assert!(!origin_matches("null", "stats.example"));
    }

    #[test]
    fn read_keys_cannot_administer() {
        assert!(Principal::Key(keys::Scope::Read).may(Access::Read));
        assert!(!Principal::Key(keys::Scope::Read).may(Access::Admin));
        assert!(Principal::Key(keys::Scope::Admin).may(Access::Admin));
        assert!(Principal::Session.may(Access::Admin));
    }
}
