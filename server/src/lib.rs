//! Mallard Metrics: cookie-less web analytics. The library behind the `mallard-metrics` binary:
//! `app` builds the HTTP router over an [`AppState`]; `main.rs` only parses flags and serves it.

pub mod config;
pub mod error;
pub mod health;
pub mod ingest;
pub mod secret;
pub mod server;
pub mod stats;
pub mod store;
pub mod tracker;

use std::sync::Arc;

use axum::Router;

use config::Config;
use ingest::enrich::Enricher;
use store::Store;

/// What every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub enricher: Arc<Enricher>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Enrich(#[from] ingest::enrich::EnrichError),
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
}

impl AppState {
    /// Opens the store in `config.data_dir` and loads what enrichment needs.
    pub fn open(config: Config) -> Result<Self, StartError> {
        let store = Store::open(&config.data_dir)?;
        let secret = secret::load_or_create(config.secret.as_deref(), store.data_dir())?;
        let enricher = Enricher::new(&secret, config.geoip_db.as_deref(), config.filter_bots)?;
        Ok(Self {
            config: Arc::new(config),
            store,
            enricher: Arc::new(enricher),
        })
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(ingest::router())
        .merge(stats::router(&state))
        .merge(health::router())
        .merge(tracker::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
