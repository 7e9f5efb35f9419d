//! The OpenAPI document against the code: it lists exactly the route table's (method, path)
//! pairs, declares the security each route's access needs, is what `GET /api/openapi.json`
//! serves, is well-formed OpenAPI 3.1 (every `$ref` resolves, every path parameter is
//! declared), and documents only ingest fields the parser reads.

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use mallard_metrics::auth::Access;
use mallard_metrics::ingest::payload::{self, EventBody, PixelQuery};
use mallard_metrics::openapi;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;

use common::TestApp;
use common::requests::request;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::to_value(openapi::document()).expect("the document serializes")
}

fn operation<'a>(doc: &'a Value, method: &Method, path: &str) -> &'a Value {
    let operation = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {path} is in the route table but not in the OpenAPI document"
    );
    operation
}

#[test]
fn the_document_lists_exactly_the_route_table() {
    let doc = document();
    let table: BTreeSet<(String, String)> = mallard_metrics::routes()
        .iter()
        .map(|route| {
            (
                route.method.as_str().to_ascii_lowercase(),
                route.path.to_string(),
            )
        })
        .collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_string(), path.clone()))
        })
        .collect();
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "routes without an OpenAPI operation (add #[utoipa::path] and list the handler in \
         openapi.rs): {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "OpenAPI operations without a route: {unrouted:?}"
    );
    assert_eq!(
        table.len(),
        mallard_metrics::routes().len(),
        "a (method, path) pair is in the route table twice"
    );
}

#[test]
fn each_operation_declares_the_security_its_access_needs() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "mallard_session");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["metrics_token"]["scheme"], "bearer");
    assert!(
        doc.get("security").is_none(),
        "no document-wide security: each operation declares its own"
    );
    for route in mallard_metrics::routes() {
        let security = operation(&doc, &route.method, route.path).get("security");
        let what = format!("{} {} ({:?})", route.method, route.path, route.access);
        match route.access {
            Access::Read | Access::Admin => assert_eq!(
                security,
                Some(&json!([{"session": []}, {"bearer": []}])),
                "{what}: a session or an API key"
            ),
            Access::Public if route.path == "/metrics" => assert_eq!(
                security,
                Some(&json!([{"metrics_token": []}])),
                "{what}: its own token only"
            ),
            Access::Public => assert!(
                security.is_none_or(|s| s == &json!([]) || s == &json!([{}])),
                "{what} is public but declares {security:?}"
            ),
        }
        for requirement in security.and_then(Value::as_array).into_iter().flatten() {
            for name in requirement.as_object().expect("requirement").keys() {
                assert!(schemes.contains_key(name), "{what}: unknown scheme {name}");
            }
        }
    }
}

#[test]
fn the_document_is_openapi_3_1_and_names_the_known_schemas() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Mallard Metrics");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Error",
        "EventPayload",
        "Revenue",
        "Main",
        "MainMetrics",
        "PreviousPeriod",
        "Bucket",
        "BreakdownRow",
        "ExportRow",
        "EraseReport",
        "HealthDetailed",
        "ApiKey",
        "NewApiKey",
        "NewApiKeyRequest",
        "Scope",
        "AuthStatus",
        "PasswordRequest",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert_eq!(
        schemas["Error"]["required"],
        json!(["error"]),
        "{}",
        schemas["Error"]
    );
    assert!(schemas["Error"]["properties"]["field"].is_object());
    assert_eq!(schemas["Scope"]["enum"], json!(["read", "admin"]));
    for field in ["visitors", "visits", "pageviews", "views_per_visit"] {
        assert!(
            schemas["MainMetrics"]["properties"][field].is_object(),
            "MainMetrics.{field}"
        );
    }
    // Request bodies and answers point at those schemas.
    let body = |method: &str, path: &str, media: &str| {
        doc["paths"][path][method]["requestBody"]["content"][media]["schema"]["$ref"].clone()
    };
    assert_eq!(
        body("post", "/api/event", "text/plain"),
        "#/components/schemas/EventPayload"
    );
    assert_eq!(
        body("post", "/api/auth/login", "application/json"),
        "#/components/schemas/PasswordRequest"
    );
    assert_eq!(
        body("post", "/api/keys", "application/json"),
        "#/components/schemas/NewApiKeyRequest"
    );
    let answer = |method: &str, path: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
            .clone()
    };
    assert_eq!(
        answer("get", "/api/stats/main", "200")["$ref"],
        "#/components/schemas/Main"
    );
    assert_eq!(
        answer("get", "/api/stats/main", "400")["$ref"],
        "#/components/schemas/Error"
    );
    assert_eq!(
        answer("post", "/api/keys", "201")["$ref"],
        "#/components/schemas/NewApiKey"
    );
    let dimension = &doc["paths"]["/api/stats/breakdown/{dimension}"]["get"]["parameters"][0];
    assert_eq!(dimension["name"], "dimension");
    assert_eq!(dimension["in"], "path");
    let names = dimension["schema"]["enum"].as_array().expect("enum");
    assert_eq!(
        names.len(),
        mallard_metrics::stats::queries::BREAKDOWNS.len()
    );
    // Statuses the brief cares about are documented where they happen.
    for (method, path, status) in [
        ("post", "/api/event", "202"),
        ("post", "/api/event", "413"),
        ("post", "/api/event", "429"),
        ("post", "/api/event", "503"),
        ("post", "/api/auth/setup", "409"),
        ("post", "/api/auth/login", "429"),
        ("get", "/api/keys", "403"),
        ("delete", "/api/keys/{id}", "404"),
        ("get", "/api/stats/main", "401"),
        ("get", "/metrics", "404"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"][status].is_object(),
            "{method} {path}: {status} undocumented"
        );
    }
    assert!(
        doc["paths"]["/api/event"]["post"]["responses"]["429"]["headers"]["Retry-After"]
            .is_object()
    );
}

/// Every `$ref` names a schema of the document.
fn check_refs(value: &Value, schemas: &serde_json::Map<String, Value>, at: &str) {
    match value {
        Value::Object(object) => {
            if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("{at}: unexpected $ref {reference}"));
                assert!(
                    schemas.contains_key(name),
                    "{at}: $ref to missing schema {name}"
                );
            }
            for (key, inner) in object {
                check_refs(inner, schemas, &format!("{at}/{key}"));
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                check_refs(inner, schemas, &format!("{at}/{index}"));
            }
        }
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_every_path_parameter_is_declared() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    check_refs(&doc, schemas, "#");
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "path")
                .map(|parameter| {
                    assert_eq!(parameter["required"], true, "{method} {path}");
                    parameter["name"].as_str().expect("name")
                })
                .collect();
            assert_eq!(declared, templated, "{method} {path}: path parameters");
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
            assert!(
                operation["summary"].is_string(),
                "{method} {path}: no summary (the handler's doc comment)"
            );
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(
                operation_ids.insert(id.to_string()),
                "operationId {id} twice"
            );
        }
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::new();
    let answer = app
        .send(request(Method::GET, "/api/openapi.json", &[], None))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(answer.json(), document());
    // It parses back as an OpenAPI document too.
    let parsed: utoipa::openapi::OpenApi =
        serde_json::from_slice(&answer.body).expect("an OpenAPI document");
    assert_eq!(serde_json::to_value(parsed).expect("serialize"), document());
}

/// The ingest schemas may only name fields the parser reads: a documented field set to a
/// value no field accepts must make the payload invalid (the base uses the long names, which
/// any short name overrides).
#[test]
fn every_documented_ingest_field_is_one_the_parser_reads() {
    let base = json!({"domain": "a.com", "name": "pageview", "url": "https://a.com/"});
    let as_map = |value: &Value| value.as_object().expect("object").clone();
    payload::parse_body(base.to_string().as_bytes()).expect("the base payload is valid");

    let schema = match <EventBody as utoipa::PartialSchema>::schema() {
        utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(object)) => object,
        _ => panic!("EventPayload is not an object schema"),
    };
    assert_eq!(schema.properties.len(), 19);
    for field in schema.properties.keys() {
        let mut body = as_map(&base);
        body.insert(field.clone(), json!([]));
        assert!(
            payload::parse_body(Value::Object(body).to_string().as_bytes()).is_err(),
            "EventPayload documents `{field}`, which the parser ignores"
        );
    }

    let query = |pairs: &serde_json::Map<String, Value>| {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    };
    payload::parse_query(query(&as_map(&base))).expect("the base query is valid");
    let params = PixelQuery::into_params(|| Some(ParameterIn::Query));
    assert!(params.len() >= 9);
    for parameter in params {
        let mut pairs = as_map(&base);
        pairs.insert(parameter.name.clone(), json!("\u{1}"));
        assert!(
            payload::parse_query(query(&pairs)).is_err(),
            "the pixel documents `{}`, which the parser ignores",
            parameter.name
        );
    }
}
