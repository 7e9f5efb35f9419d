//! Parsing and validating an event payload: short (`d`, `n`, `u`, …) and Plausible's long field
//! names, with explicit limits. Nothing here touches the request's origin.

use serde_json::{Map, Value};
use url::Url;

use crate::error::ApiError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_SITE_CHARS: usize = 256;
pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_PROPS: usize = 30;
pub const MAX_PROPS_BYTES: usize = 4 * 1024;
pub const MAX_VIEWPORT: i64 = 100_000;

/// A payload that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// One or more site ids (Plausible allows `data-domain="a.com,b.com"`).
    pub sites: Vec<String>,
    pub name: String,
    pub url: Url,
    pub referrer: Option<Url>,
    pub viewport_width: Option<u32>,
    /// Hash-based routing (`data-hash`): the URL fragment is part of the page path.
    pub hash_mode: bool,
    /// A JSON object text of scalar properties.
    pub props: Option<String>,
    pub revenue: Option<Revenue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Revenue {
    pub amount: f64,
    pub currency: String,
}

// The body of `POST /api/event` as the OpenAPI document describes it. Only a description:
// `parse_body` reads the raw JSON, so that either name of a field is accepted and an error names
// the one the client sent; `tests/openapi.rs` checks that every property here is one the parser
// reads. The doc comments below are the document's text.
/// An event. Most fields have a short and a long (Plausible) name; the short one wins when
/// both are sent. `null` is the same as leaving a field out.
#[derive(utoipa::ToSchema)]
#[schema(as = EventPayload)]
#[allow(dead_code)]
pub struct EventBody {
    /// Site id (the `data-domain`), at most 256 characters; `a.com,b.com` records the event
    /// for both. Required (as `d` or `domain`).
    #[schema(max_length = 256)]
    d: Option<String>,
    /// Long name of `d`.
    #[schema(max_length = 256)]
    domain: Option<String>,
    /// Event name, at most 256 characters; `pageview` for page views. Required (as `n` or
    /// `name`).
    #[schema(max_length = 256)]
    n: Option<String>,
    /// Long name of `n`.
    #[schema(max_length = 256)]
    name: Option<String>,
    /// Absolute http(s) URL of the page, at most 2048 characters; its query and fragment are
    /// not stored (UTM tags are extracted). Required (as `u` or `url`).
    #[schema(max_length = 2048, format = "uri")]
    u: Option<String>,
    /// Long name of `u`.
    #[schema(max_length = 2048, format = "uri")]
    url: Option<String>,
    /// Absolute URL of the referrer, at most 2048 characters; its query is not stored.
    #[schema(max_length = 2048)]
    r: Option<String>,
    /// Long name of `r`.
    #[schema(max_length = 2048)]
    referrer: Option<String>,
    /// Viewport width in pixels (the device class).
    #[schema(minimum = 0, maximum = 100_000)]
    w: Option<u32>,
    /// Long name of `w`.
    #[schema(minimum = 0, maximum = 100_000)]
    screen_width: Option<u32>,
    // `schema_with` replaces the doc comment: the text is in `props_schema` and the others.
    #[schema(schema_with = props_schema)]
    p: Option<String>,
    #[schema(schema_with = props_schema)]
    props: Option<String>,
    #[schema(schema_with = props_schema)]
    m: Option<String>,
    #[schema(schema_with = props_schema)]
    meta: Option<String>,
    /// Revenue of this event.
    revenue: Option<RevenueBody>,
    #[schema(schema_with = amount_schema)]
    ra: Option<String>,
    /// Short form of `revenue.currency` (with `ra`: both or neither).
    rc: Option<String>,
    #[schema(schema_with = flag_schema)]
    h: Option<bool>,
    #[schema(schema_with = flag_schema)]
    hash_mode: Option<bool>,
}

/// The revenue of an event (short form: `ra` and `rc`).
#[derive(utoipa::ToSchema)]
#[schema(as = Revenue)]
#[allow(dead_code)]
pub struct RevenueBody {
    #[schema(schema_with = amount_schema)]
    amount: String,
    /// An ISO 4217 currency code such as `USD` (any case).
    currency: String,
}

fn props_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![
            Type::Object,
            Type::String,
            Type::Null,
        ]))
        .description(Some(
            "Custom properties (`p`, `props`, `m` and `meta` are one field): an object of at \
             most 30 string, number or boolean values, or a JSON string of one (at most 4 KiB)",
        ))
        .build()
}

fn amount_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![
            Type::Number,
            Type::String,
            Type::Null,
        ]))
        .description(Some(
            "A finite amount, as a number or a numeric string (`ra` comes with `rc`: both or \
             neither)",
        ))
        .build()
}

fn flag_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![
            Type::Boolean,
            Type::Integer,
            Type::Null,
        ]))
        .enum_values(Some([
            serde_json::Value::Bool(true),
            serde_json::Value::Bool(false),
            serde_json::Value::from(1),
            serde_json::Value::from(0),
            serde_json::Value::Null,
        ]))
        .description(Some(
            "Hash routing (`h` or `hash_mode`): `true` or `1` makes the URL fragment part of the \
             page path",
        ))
        .build()
}

/// The query of the pixel variant `GET /api/event` in the OpenAPI document: the fields of
/// [`EventBody`] by their short names (the long names are accepted too). The field doc comments
/// are the document's text.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PixelQuery {
    /// Site id (the `data-domain`), at most 256 characters.
    d: String,
    /// Event name; `pageview` when absent.
    n: Option<String>,
    /// Absolute http(s) URL of the page.
    u: String,
    /// Absolute URL of the referrer.
    r: Option<String>,
    /// Viewport width in pixels.
    #[param(minimum = 0, maximum = 100_000)]
    w: Option<u32>,
    /// `1`: the URL fragment is part of the page path.
    #[param(minimum = 0, maximum = 1)]
    h: Option<u8>,
    /// Custom properties as a JSON object text.
    p: Option<String>,
    /// Revenue amount (with `rc`).
    ra: Option<String>,
    /// Revenue currency, ISO 4217 (with `ra`).
    rc: Option<String>,
}

/// Looks a field up by its short name, then by its long name.
fn field<'a>(map: &'a Map<String, Value>, short: &str, long: &str) -> Option<&'a Value> {
    map.get(short)
        .or_else(|| map.get(long))
        .filter(|v| !v.is_null())
}

/// The name to blame for a field: the long name only when the client used it.
fn field_name(map: &Map<String, Value>, short: &'static str, long: &'static str) -> &'static str {
    if map.contains_key(long) && !map.contains_key(short) {
        long
    } else {
        short
    }
}

fn text<'a>(value: Option<&'a Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("`{field}` must be a string"),
        )),
    }
}

fn required<'a>(value: Option<&'a Value>, field: &str, what: &str) -> Result<&'a str, ApiError> {
    match text(value, field)?.map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid(
            field,
            format!("`{field}` ({what}) is required"),
        )),
    }
}

fn limit(value: &str, field: &str, max: usize) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` is {chars} characters long; the limit is {max}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` contains control characters"),
        ));
    }
    Ok(())
}

fn parse_url(value: &str, field: &str) -> Result<Url, ApiError> {
    limit(value, field, MAX_URL_CHARS)?;
    Url::parse(value)
        .map_err(|e| ApiError::invalid(field, format!("`{field}` is not an absolute URL: {e}")))
}

/// Validates a JSON body (`application/json` or `text/plain`).
pub fn parse_body(body: &[u8]) -> Result<Payload, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    };
    parse_map(&map)
}

/// Validates the query of the pixel variant (`GET /api/event?d=…&n=…&u=…`).
pub fn parse_query(pairs: impl Iterator<Item = (String, String)>) -> Result<Payload, ApiError> {
    let mut map = Map::new();
    for (key, value) in pairs {
        let value = match key.as_str() {
            "w" | "h" => value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(value)),
            _ => Value::String(value),
        };
        map.insert(key, value);
    }
    map.entry("n")
        .or_insert_with(|| Value::String("pageview".into()));
    parse_map(&map)
}

fn parse_map(map: &Map<String, Value>) -> Result<Payload, ApiError> {
    let site_field = field_name(map, "d", "domain");
    let sites_text = required(field(map, "d", "domain"), site_field, "the site domain")?;
    let sites: Vec<String> = sites_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for site in &sites {
        limit(site, site_field, MAX_SITE_CHARS)?;
        if site.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid(
                site_field,
                format!("`{site_field}` must not contain spaces"),
            ));
        }
    }
    if sites.is_empty() {
        return Err(ApiError::invalid(
            site_field,
            format!("`{site_field}` (the site domain) is required"),
        ));
    }

    let name_field = field_name(map, "n", "name");
    let name = required(field(map, "n", "name"), name_field, "the event name")?;
    limit(name, name_field, MAX_NAME_CHARS)?;

    let url_field = field_name(map, "u", "url");
    let url = parse_url(
        required(field(map, "u", "url"), url_field, "the page URL")?,
        url_field,
    )?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::invalid(
            url_field,
            format!("`{url_field}` must be an http(s) URL with a host"),
        ));
    }

    let referrer_field = field_name(map, "r", "referrer");
    let referrer = match text(field(map, "r", "referrer"), referrer_field)?.map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(parse_url(r, referrer_field)?),
    };

    let viewport_width = match field(map, "w", "screen_width") {
        None => None,
        Some(value) => match value.as_i64() {
            Some(w) if (0..=MAX_VIEWPORT).contains(&w) => Some(w as u32),
            _ => {
                return Err(ApiError::invalid(
                    "w",
                    format!("`w` must be a whole number of pixels from 0 to {MAX_VIEWPORT}"),
                ));
            }
        },
    };

    let hash_mode = match map.get("h").or_else(|| map.get("hash_mode")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            n.as_i64() == Some(1)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "h",
                "`h` (hash mode) must be true, false, 1 or 0",
            ));
        }
    };
    let props = parse_props(map)?;
    let revenue = parse_revenue(map)?;

    Ok(Payload {
        sites,
        name: name.to_string(),
        url,
        referrer,
        viewport_width,
        hash_mode,
        props,
        revenue,
    })
}

fn parse_props(map: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let field_name = ["p", "props", "m", "meta"]
        .into_iter()
        .find(|k| map.get(*k).is_some_and(|v| !v.is_null()));
    let Some(field_name) = field_name else {
        return Ok(None);
    };
    let raw = &map[field_name];
    let parsed;
    let object = match raw {
        Value::Object(object) => object,
        Value::String(s) => {
            if s.len() > MAX_PROPS_BYTES {
                return Err(ApiError::invalid(
                    field_name,
                    format!("`{field_name}` is larger than {MAX_PROPS_BYTES} bytes"),
                ));
            }
            parsed = serde_json::from_str::<Value>(s).map_err(|_| {
                ApiError::invalid(
                    field_name,
                    format!("`{field_name}` is a string but not a JSON object"),
                )
            })?;
            match &parsed {
                Value::Object(object) => object,
                _ => {
                    return Err(ApiError::invalid(
                        field_name,
                        format!("`{field_name}` must be a JSON object"),
                    ));
                }
            }
        }
        _ => {
            return Err(ApiError::invalid(
                field_name,
                format!("`{field_name}` must be an object"),
            ));
        }
    };
    if object.len() > MAX_PROPS {
        return Err(ApiError::invalid(
            field_name,
            format!(
                "`{field_name}` has {} properties; the limit is {MAX_PROPS}",
                object.len()
            ),
        ));
    }
    let mut clean = Map::new();
    for (key, value) in object {
        if key.is_empty() {
            return Err(ApiError::invalid(
                field_name,
                format!("`{field_name}` has an empty property name"),
            ));
        }
        let value = match value {
            Value::Null => continue,
            Value::String(_) | Value::Bool(_) | Value::Number(_) => value.clone(),
            _ => {
                return Err(ApiError::invalid(
                    field_name,
                    format!("property `{key}` must be a string, number or boolean"),
                ));
            }
        };
        clean.insert(key.clone(), value);
    }
    if clean.is_empty() {
        return Ok(None);
    }
    let text = Value::Object(clean).to_string();
    if text.len() > MAX_PROPS_BYTES {
        return Err(ApiError::invalid(
            field_name,
            format!("`{field_name}` is larger than {MAX_PROPS_BYTES} bytes"),
        ));
    }
    Ok(Some(text))
}

fn parse_amount(value: &Value, field: &str) -> Result<f64, ApiError> {
    let amount = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match amount {
        Some(a) if a.is_finite() => Ok(a),
        _ => Err(ApiError::invalid(
            field,
            format!("`{field}` must be a finite number"),
        )),
    }
}

fn parse_currency(value: &Value, field: &str) -> Result<String, ApiError> {
    let code = value
        .as_str()
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_default();
    if iso_currency::Currency::from_code(&code).is_none() {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must be an ISO 4217 currency code such as USD or EUR"),
        ));
    }
    Ok(code)
}

fn parse_revenue(map: &Map<String, Value>) -> Result<Option<Revenue>, ApiError> {
    if let Some(revenue) = map.get("revenue").filter(|v| !v.is_null()) {
        let Value::Object(object) = revenue else {
            return Err(ApiError::invalid(
                "revenue",
                "`revenue` must be an object {amount, currency}",
            ));
        };
        let amount = object
            .get("amount")
            .ok_or_else(|| ApiError::invalid("revenue.amount", "`revenue.amount` is required"))?;
        let currency = object.get("currency").ok_or_else(|| {
            ApiError::invalid("revenue.currency", "`revenue.currency` is required")
        })?;
        return Ok(Some(Revenue {
            amount: parse_amount(amount, "revenue.amount")?,
            currency: parse_currency(currency, "revenue.currency")?,
        }));
    }
    match (
        map.get("ra").filter(|v| !v.is_null()),
        map.get("rc").filter(|v| !v.is_null()),
    ) {
        (None, None) => Ok(None),
        (Some(amount), Some(currency)) => Ok(Some(Revenue {
            amount: parse_amount(amount, "ra")?,
            currency: parse_currency(currency, "rc")?,
        })),
        (None, Some(_)) => Err(ApiError::invalid(
            "ra",
            "`ra` (revenue amount) is required with `rc`",
        )),
        (Some(_), None) => Err(ApiError::invalid(
            "rc",
            "`rc` (revenue currency) is required with `ra`",
        )),
    }
}
