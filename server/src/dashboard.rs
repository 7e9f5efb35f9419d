//! The page at `/`: first-run setup and login for now (the dashboard proper comes later).
//! Static files compiled into the binary; no inline script or style, so the strict CSP holds.

use axum::http::header;
use axum::response::IntoResponse;

use crate::auth::{Access, Route};

const INDEX: &str = include_str!("../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../assets/dashboard/app.js");
const STYLE: &str = include_str!("../assets/dashboard/style.css");

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/", Access::Public, get_index),
        Route::get("/dashboard/app.js", Access::Public, get_script),
        Route::get("/dashboard/style.css", Access::Public, get_style),
    ]
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidated on every load, so a new binary's page is never mixed with old files.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The dashboard page
///
/// First-run setup, login and logout for now. Static HTML under a strict CSP.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")),
)]
async fn get_index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script
#[utoipa::path(
    get,
    path = "/dashboard/app.js",
    operation_id = "get_dashboard_script",
    tag = "dashboard",
    responses((status = 200, description = "The script", body = String,
        content_type = "text/javascript")),
)]
async fn get_script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The dashboard's style sheet
#[utoipa::path(
    get,
    path = "/dashboard/style.css",
    operation_id = "get_dashboard_style",
    tag = "dashboard",
    responses((status = 200, description = "The style sheet", body = String,
        content_type = "text/css")),
)]
async fn get_style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}
