//! Arbitrary bytes and strings against the ingest parser, the stats parameters and the filter
//! grammar, directly and through the router: never a panic, never a 5xx, and every refusal
//! names the field it is about.

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use common::{CHROME, TestApp};
use mallard_metrics::error::ApiError;
use mallard_metrics::ingest::payload::{parse_body, parse_query};
use mallard_metrics::stats::filters::parse_filters;
use mallard_metrics::stats::params;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn client_error(err: &ApiError) -> bool {
    err.status.is_client_error()
}

/// Strings that look like what the parsers expect, broken in interesting ways.
fn nearly_valid() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z_]{1,12}(==|!=|~|!~)[^;]{0,20}(;[a-z_]{1,12}(==|!=)[^;]{0,10})?",
        "(today|day|7d|30d|custom|all|month|6mo|12mo|[0-9]{1,3}d)?",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(,[0-9]{4}-[0-9]{2}-[0-9]{2})?",
        "https?://[a-z.]{1,20}(/[^ ]{0,30})?",
    ]
}

fn payload_json() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        nearly_valid().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|n| serde_json::json!(n)),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        proptest::collection::hash_map("[a-z]{1,6}", nearly_valid(), 0..4)
            .prop_map(|m| serde_json::json!(m)),
    ];
    let key = prop_oneof![
        Just("n"),
        Just("name"),
        Just("u"),
        Just("url"),
        Just("d"),
        Just("domain"),
        Just("r"),
        Just("referrer"),
        Just("w"),
        Just("p"),
        Just("props"),
        Just("$"),
        Just("revenue"),
        Just("h"),
        Just("interactive"),
    ];
    proptest::collection::vec((key, value), 0..8).prop_map(|pairs| {
        let object: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::Value::Object(object).to_string()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ingest_body_parser_refuses_garbage_as_a_client_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(err) = parse_body(&bytes) {
            prop_assert!(client_error(&err), "{err:?}");
        }
    }

    #[test]
    fn ingest_body_parser_handles_odd_payloads(body in payload_json()) {
        if let Err(err) = parse_body(body.as_bytes()) {
            prop_assert!(client_error(&err), "{err:?}");
            prop_assert!(err.field.is_some() || err.status == 413 || err.status == 400, "{err:?}");
        }
    }

    #[test]
    fn ingest_query_parser_handles_any_pairs(pairs in proptest::collection::vec(("[a-z$]{1,8}", nearly_valid()), 0..8)) {
        if let Err(err) = parse_query(pairs.into_iter()) {
            prop_assert!(client_error(&err), "{err:?}");
        }
    }

    #[test]
    fn stats_parameters_never_panic(pairs in proptest::collection::hash_map(
        prop_oneof![Just("site_id".to_string()), Just("period".to_string()), Just("date".to_string()),
            Just("start_date".to_string()), Just("end_date".to_string()), Just("filters".to_string()),
            Just("compare".to_string()), Just("limit".to_string()), Just("page".to_string()),
            Just("interval".to_string()), "[a-z]{1,8}"],
        nearly_valid(), 0..8)) {
        let map: HashMap<String, String> = pairs;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        match params::parse(&map, today, None) {
            Ok(query) => {
                let _ = params::parse_interval(&map, &query);
            }
            Err(err) => {
                prop_assert!(client_error(&err), "{err:?}");
                prop_assert!(err.field.is_some(), "a refusal names its field: {err:?}");
            }
        }
        if let Err(err) = params::parse_paging(&map) {
            prop_assert!(client_error(&err) && err.field.is_some(), "{err:?}");
        }
    }

    #[test]
    fn filter_grammar_never_panics(text in nearly_valid()) {
        if let Err(err) = parse_filters(&text) {
            prop_assert!(client_error(&err), "{err:?}");
        }
    }
}

/// The same through the real router and a real store: fewer cases, each a full request.
#[tokio::test]
async fn arbitrary_requests_never_get_a_server_error() {
    let app = TestApp::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(96));
    let bodies = prop_oneof![
        payload_json(),
        proptest::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let queries = proptest::collection::vec(
        (
            prop_oneof![
                Just("period"),
                Just("date"),
                Just("start_date"),
                Just("end_date"),
                Just("filters"),
                Just("limit"),
                Just("page"),
                Just("interval"),
                Just("compare"),
            ],
            nearly_valid(),
        ),
        0..5,
    );
    for _ in 0..96 {
        let body = bodies.new_tree(&mut runner).expect("body").current();
        let answer = app
            .send(
                Request::post("/api/event")
                    .header("content-type", "text/plain")
                    .header("user-agent", CHROME)
                    .body(Body::from(body.clone()))
                    .expect("request"),
            )
            .await;
        assert!(answer.status.as_u16() < 500, "{body:?} → {}", answer.status);

        let pairs = queries.new_tree(&mut runner).expect("query").current();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("site_id", "example.com");
        for (key, value) in &pairs {
            query.append_pair(key, value);
        }
        let query = query.finish();
        for endpoint in ["main", "timeseries", "breakdown/pages", "export"] {
            let answer = app.get(&format!("/api/stats/{endpoint}?{query}")).await;
            assert!(
                answer.status.as_u16() < 500,
                "{endpoint}?{query} → {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
    }
}
