//! Requests for the auth tests: a host, headers, a JSON body, a socket peer; logging in and
//! reading the session cookie back.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use mallard_metrics::ingest::client_ip::Peer;
use serde_json::{Value, json};

use super::{Answer, TestApp};

pub const STATS: &str = "/api/stats/main?site_id=example.com&period=today";
pub const ORIGIN: &str = "http://mallard.test";

/// A request to the app as `mallard.test`, with optional headers and JSON body.
pub fn request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "mallard.test");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("request")
}

pub fn from_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = format!("{peer}:50000").parse().expect("peer address");
    request
        .extensions_mut()
        .insert(ConnectInfo(Peer::Tcp(addr)));
    request
}

pub async fn login(app: &TestApp, password: &str, headers: &[(&str, &str)]) -> Answer {
    let body = json!({ "password": password });
    app.send(request(
        Method::POST,
        "/api/auth/login",
        headers,
        Some(body),
    ))
    .await
}

pub fn set_cookie(answer: &Answer) -> String {
    answer
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header")
        .to_string()
}

/// `mallard_session=<token>` from a Set-Cookie header.
pub fn cookie_pair(answer: &Answer) -> String {
    set_cookie(answer)
        .split(';')
        .next()
        .expect("name=value")
        .to_string()
}
