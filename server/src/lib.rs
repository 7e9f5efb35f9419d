//! Mallard Metrics: cookie-less web analytics. The library behind the `mallard-metrics` binary:
//! `app` builds the HTTP router over an [`AppState`]; `main.rs` only parses flags and serves it.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod gdpr;
pub mod health;
pub mod ingest;
pub mod limits;
pub mod local_admin;
pub mod metrics;
pub mod openapi;
pub mod secret;
pub mod server;
pub mod stats;
pub mod store;
pub mod tracker;

use std::sync::Arc;

use axum::Router;
use axum::middleware;

use auth::{Access, Auth, Route};
use cache::QueryCache;
use config::Config;
use ingest::enrich::Enricher;
use limits::Limits;
use metrics::Metrics;
use store::Store;

/// What every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub enricher: Arc<Enricher>,
    pub auth: Arc<Auth>,
    /// Stats answers; clear it (`invalidate_all`) whenever events are removed.
    pub cache: Arc<QueryCache>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Enrich(#[from] ingest::enrich::EnrichError),
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
}

impl AppState {
    /// Opens the store in `config.data_dir` and loads what enrichment needs.
    pub fn open(config: Config) -> Result<Self, StartError> {
        let store = Store::open(&config.data_dir)?;
        let secret = secret::load_or_create(config.secret.as_deref(), store.data_dir())?;
        let enricher = Enricher::new(&secret, config.geoip_db.as_deref(), config.filter_bots)?;
        let auth = Arc::new(Auth::open(&config, &store)?);
        let cache = QueryCache::new(config.cache_ttl);
        let limits = Limits::new(&config);
        let metrics = Metrics::new(&store, auth.clone(), &cache, &limits);
        Ok(Self {
            config: Arc::new(config),
            store,
            enricher: Arc::new(enricher),
            auth,
            cache: Arc::new(cache),
            limits: Arc::new(limits),
            metrics: Arc::new(metrics),
        })
    }
}

/// The route table: every route of the public listener with the access it needs.
pub fn routes() -> Vec<Route> {
    [
        ingest::routes(),
        tracker::routes(),
        health::routes(),
        metrics::routes(),
        dashboard::routes(),
        auth::routes(),
        stats::routes(),
        gdpr::routes(),
        openapi::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The whole HTTP surface, built from [`routes`]: each non-public route behind the auth guard
/// (its wrong-method answers too, so nothing there is told to a client without credentials);
/// every request, matched or not, through [`metrics::observe`] (request id, histogram, log).
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        let handler = match route.access {
            Access::Public => route.handler,
            access => route.handler.layer(middleware::from_fn_with_state(
                state.clone(),
                move |axum::extract::State(state): axum::extract::State<AppState>,
                      request,
                      next| { auth::require(access, state, request, next) },
            )),
        };
        router = router.route(route.path, handler);
    }
    router
        .fallback(auth::fallback)
        .layer(middleware::from_fn(auth::headers::security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}
