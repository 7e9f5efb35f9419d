//! An enriched event as the store receives it, and its row form.

use duckdb::types::{TimeUnit, Value};

/// The name of the event a page load sends.
pub const PAGEVIEW: &str = "pageview";

/// What the source column holds when a visit has no referrer and no UTM source.
pub const DIRECT: &str = "Direct / None";

/// Acquisition attributes: fixed by a visit's first event and repeated on each of its events,
/// so that filtering on them keeps whole visits together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acquisition {
    pub referrer: Option<String>,
    pub source: String,
    pub source_class: String,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
}

/// A validated, enriched event. It holds no IP address and no user agent string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Microseconds since the Unix epoch, UTC; taken when the request arrived.
    pub ts_micros: i64,
    pub site_id: String,
    pub name: String,
    pub visitor_id: u64,
    pub hostname: String,
    pub pathname: String,
    pub acquisition: Acquisition,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub device: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    /// Custom properties as a JSON object text.
    pub props: Option<String>,
    pub revenue_amount: Option<f64>,
    pub revenue_currency: Option<String>,
}

impl Event {
    pub fn is_pageview(&self) -> bool {
        self.name == PAGEVIEW
    }
}

/// What the sessionizer decided for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub session_id: u64,
    pub is_entry: bool,
    pub bounce_delta: i8,
    pub duration_ms: i64,
    pub entry_page: String,
    pub acquisition: Acquisition,
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::Text)
}

/// The `events_hot` row, in the table's column order.
pub fn row(id: i64, event: &Event, session: &SessionFacts) -> Vec<Value> {
    let acq = &session.acquisition;
    vec![
        Value::BigInt(id),
        Value::Timestamp(TimeUnit::Microsecond, event.ts_micros),
        Value::Text(event.site_id.clone()),
        Value::Text(event.name.clone()),
        Value::UBigInt(event.visitor_id),
        Value::UBigInt(session.session_id),
        Value::Boolean(session.is_entry),
        Value::TinyInt(session.bounce_delta),
        Value::BigInt(session.duration_ms),
        Value::Text(event.hostname.clone()),
        Value::Text(event.pathname.clone()),
        Value::Text(session.entry_page.clone()),
        text(&acq.referrer),
        Value::Text(acq.source.clone()),
        Value::Text(acq.source_class.clone()),
        text(&acq.utm_source),
        text(&acq.utm_medium),
        text(&acq.utm_campaign),
        text(&acq.utm_term),
        text(&acq.utm_content),
        text(&event.browser),
        text(&event.browser_version),
        text(&event.os),
        text(&event.os_version),
        text(&event.device),
        text(&event.country),
        text(&event.region),
        text(&event.city),
        text(&event.props),
        event.revenue_amount.map_or(Value::Null, Value::Double),
        text(&event.revenue_currency),
    ]
}
