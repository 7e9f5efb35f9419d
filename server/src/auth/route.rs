//! The route table: every HTTP route with the access it needs. `crate::app` builds the router
//! from it, so a route cannot exist without a declared access level.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use crate::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials: ingestion, the tracker, health, the login page and its API.
    Public,
    /// A session, or an API key of any scope: reading stats.
    Read,
    /// A session, or an API key of the `admin` scope: managing keys, erasing data.
    Admin,
}

/// Path prefixes that are never public, whatever a route declares (see [`Route::new`]), and
/// that answer 401 without credentials even where no route exists yet.
pub const PROTECTED_PREFIXES: [&str; 4] = ["/api/stats/", "/api/v2/", "/api/keys", "/api/gdpr/"];

pub fn is_protected_path(path: &str) -> bool {
    PROTECTED_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// One method on one path, its access level, and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<AppState>,
}

impl Route {
    /// # Panics
    /// When a `Public` route lies under a protected prefix: a programming error, caught by
    /// every test that builds the app.
    fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        assert!(
            access != Access::Public || !is_protected_path(path),
            "{method} {path} cannot be public: it is under a protected prefix"
        );
        Self {
            method,
            path,
            access,
            handler,
        }
    }

    pub fn get<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::GET, path, access, get(handler))
    }

    pub fn post<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::POST, path, access, post(handler))
    }

    pub fn delete<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::DELETE, path, access, delete(handler))
    }

    /// Wraps this route's handler (and its method fallback, e.g. CORS preflights) in a layer.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<
                axum::extract::Request,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.handler = self.handler.layer(layer);
        self
    }
}
