//! Turning a validated payload and its request context into stored events: page parts, source,
//! browser, OS, device, location and the daily visitor id. The IP and user agent stay here, in
//! memory; no field of `Event` can hold either.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use super::payload::Payload;
use super::referrer;
use crate::store::Event;

type HmacSha256 = Hmac<Sha256>;

static UAP_REGEXES: &str = include_str!("../../assets/uap/regexes.json");

/// What the request tells about its sender; dropped after enrichment.
pub struct Client<'a> {
    pub ip: Option<IpAddr>,
    pub user_agent: &'a str,
}

pub enum Outcome {
    /// A known bot: acknowledged, not stored.
    Bot,
    Events(Vec<Event>),
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("cannot load the user-agent database: {0}")]
    UserAgents(String),
    #[error("cannot open GeoIP database {path}: {message}")]
    GeoIp { path: String, message: String },
}

/// What a user agent string says, parsed once per distinct string.
#[derive(Debug, Default)]
struct Agent {
    bot: bool,
    browser: Option<String>,
    browser_version: Option<String>,
    os: Option<String>,
    os_version: Option<String>,
}

/// Distinct user agents remembered; real traffic repeats a few thousand strings.
const AGENT_CACHE_ENTRIES: usize = 20_000;

pub struct Enricher {
    user_agents: ua_parser::user_agent::Extractor<'static>,
    systems: ua_parser::os::Extractor<'static>,
    bots: isbot::Bots,
    agents: quick_cache::sync::Cache<String, Arc<Agent>>,
    /// The salt of the current UTC day, derived once per day.
    salt: Mutex<Option<(NaiveDate, [u8; 32])>>,
    geoip: Option<maxminddb::Reader<Vec<u8>>>,
    secret: Vec<u8>,
    filter_bots: bool,
}

impl Enricher {
    pub fn new(
        secret: &[u8],
        geoip_db: Option<&Path>,
        filter_bots: bool,
    ) -> Result<Self, EnrichError> {
        let regexes: ua_parser::Regexes<'static> = serde_json::from_str(UAP_REGEXES)
            .map_err(|e| EnrichError::UserAgents(e.to_string()))?;
        let user_agents = regexes
            .user_agent_parsers
            .into_iter()
            .try_fold(ua_parser::user_agent::Builder::new(), |b, p| b.push(p))
            .map_err(|e| EnrichError::UserAgents(e.to_string()))?
            .build()
            .map_err(|e| EnrichError::UserAgents(e.to_string()))?;
        let systems = regexes
            .os_parsers
            .into_iter()
            .try_fold(ua_parser::os::Builder::new(), |b, p| b.push(p))
            .map_err(|e| EnrichError::UserAgents(e.to_string()))?
            .build()
            .map_err(|e| EnrichError::UserAgents(e.to_string()))?;
        let geoip = geoip_db
            .map(|path| {
                maxminddb::Reader::open_readfile(path).map_err(|e| EnrichError::GeoIp {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Self {
            user_agents,
            systems,
            bots: isbot::Bots::default(),
            agents: quick_cache::sync::Cache::new(AGENT_CACHE_ENTRIES),
            salt: Mutex::new(None),
            geoip,
            secret: secret.to_vec(),
            filter_bots,
        })
    }

    pub fn geoip_loaded(&self) -> bool {
        self.geoip.is_some()
    }

    /// `HMAC-SHA256(daily_salt, site | ip | user agent)`, truncated to 64 bits; the salt is
    /// `HMAC-SHA256(secret, "salt" | UTC date)`, so ids are unrelated from one day to the next.
    pub fn visitor_id(&self, site: &str, client: &Client<'_>, at: DateTime<Utc>) -> u64 {
        let salt = self.daily_salt(at.date_naive());
        let mut id = HmacSha256::new_from_slice(&salt).expect("HMAC takes keys of any length");
        id.update(site.as_bytes());
        id.update(b"|");
        id.update(
            client
                .ip
                .map(|ip| ip.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
        id.update(b"|");
        id.update(client.user_agent.as_bytes());
        let digest = id.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }

    fn daily_salt(&self, day: NaiveDate) -> [u8; 32] {
        let mut cached = self.salt.lock();
        if let Some((cached_day, salt)) = *cached
            && cached_day == day
        {
            return salt;
        }
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(b"mallard-daily-salt|");
        mac.update(day.to_string().as_bytes());
        let salt: [u8; 32] = mac.finalize().into_bytes().into();
        *cached = Some((day, salt));
        salt
    }

    fn agent(&self, user_agent: &str) -> Arc<Agent> {
        if let Some(agent) = self.agents.get(user_agent) {
            return agent;
        }
        let ua = user_agent.trim();
        let browser = self.user_agents.extract(ua).filter(|b| b.family != "Other");
        let os = self.systems.extract(ua).filter(|o| o.os != "Other");
        let agent = Arc::new(Agent {
            bot: ua.is_empty() || self.bots.is_bot(ua),
            browser: browser.as_ref().map(|b| b.family.to_string()),
            browser_version: browser.as_ref().and_then(|b| version(b.major, b.minor)),
            os: os.as_ref().map(|o| o.os.to_string()),
            os_version: os
                .as_ref()
                .and_then(|o| version(o.major.as_deref(), o.minor.as_deref())),
        });
        self.agents.insert(user_agent.to_string(), agent.clone());
        agent
    }

    pub fn enrich(&self, payload: &Payload, client: &Client<'_>, at: DateTime<Utc>) -> Outcome {
        let agent = self.agent(client.user_agent);
        if self.filter_bots && agent.bot {
            return Outcome::Bot;
        }
        let acquisition = referrer::acquisition(&payload.url, payload.referrer.as_ref());
        let device = device(
            payload.viewport_width,
            agent.os.as_deref(),
            client.user_agent,
        );
        let location = client.ip.and_then(|ip| self.locate(ip)).unwrap_or_default();
        let base = Event {
            ts_micros: at.timestamp_micros(),
            site_id: String::new(),
            name: payload.name.clone(),
            visitor_id: 0,
            hostname: payload
                .url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches("www.")
                .to_string(),
            pathname: match payload.url.fragment() {
                Some(fragment) if payload.hash_mode => format!("{}#{fragment}", payload.url.path()),
                _ => payload.url.path().to_string(),
            },
            acquisition,
            browser: agent.browser.clone(),
            browser_version: agent.browser_version.clone(),
            os: agent.os.clone(),
            os_version: agent.os_version.clone(),
            device: Some(device.to_string()),
            country: location.country,
            region: location.region,
            city: location.city,
            props: payload.props.clone(),
            revenue_amount: payload.revenue.as_ref().map(|r| r.amount),
            revenue_currency: payload.revenue.as_ref().map(|r| r.currency.clone()),
        };
        Outcome::Events(
            payload
                .sites
                .iter()
                .map(|site| Event {
                    site_id: site.clone(),
                    visitor_id: self.visitor_id(site, client, at),
                    ..base.clone()
                })
                .collect(),
        )
    }

    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let reader = self.geoip.as_ref()?;
        let city: maxminddb::geoip2::City<'_> = reader.lookup(ip).ok()??;
        let country = city
            .country
            .as_ref()
            .and_then(|c| c.iso_code)
            .map(str::to_string);
        let region = city
            .subdivisions
            .as_ref()
            .and_then(|s| s.first())
            .and_then(|s| s.iso_code)
            .zip(country.as_deref())
            .map(|(sub, country)| format!("{country}-{sub}"));
        let city_name = city
            .city
            .as_ref()
            .and_then(|c| c.names.as_ref())
            .and_then(|names| names.get("en"))
            .map(|name| name.to_string());
        Some(Location {
            country,
            region,
            city: city_name,
        })
    }
}

#[derive(Default)]
struct Location {
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
}

fn version(major: Option<&str>, minor: Option<&str>) -> Option<String> {
    match (major, minor) {
        (Some(major), Some(minor)) => Some(format!("{major}.{minor}")),
        (Some(major), None) => Some(major.to_string()),
        _ => None,
    }
}

/// Mobile, Tablet or Desktop: from the viewport width when the tracker sent one (the same
/// breakpoints as common CSS frameworks), else from the user agent.
pub fn device(viewport_width: Option<u32>, os: Option<&str>, user_agent: &str) -> &'static str {
    if let Some(width) = viewport_width.filter(|w| *w > 0) {
        return match width {
            0..576 => "Mobile",
            576..992 => "Tablet",
            _ => "Desktop",
        };
    }
    let tablet = user_agent.contains("iPad") || user_agent.contains("Tablet");
    let mobile_os = matches!(
        os,
        Some("iOS" | "Android" | "Windows Phone" | "BlackBerry OS")
    );
    if tablet || (os == Some("Android") && !user_agent.contains("Mobile")) {
        "Tablet"
    } else if mobile_os || user_agent.contains("Mobi") {
        "Mobile"
    } else {
        "Desktop"
    }
}
