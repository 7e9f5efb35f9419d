//! The assertions, made from outside the guest (HTTPS through Caddy, SSH, raw TCP) and, where
//! only the guest can tell, through SSH as the default user with sudo.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::guest::{self, Answer, Guest};

/// A browser's user agent: the server drops events from bots (curl's own agent among them).
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// One named check's outcome.
pub struct Outcome {
    pub name: String,
    pub result: Result<String, String>,
}

#[derive(Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Runs one check, prints its line at once, and keeps going whatever it found.
    pub fn check(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<String>) -> bool {
        let result = f().map_err(|e| format!("{e:#}"));
        match &result {
            Ok(detail) => eprintln!("   PASS  {name}: {detail}"),
            Err(error) => eprintln!("   FAIL  {name}: {error}"),
        }
        let ok = result.is_ok();
        self.outcomes.push(Outcome {
            name: name.to_owned(),
            result,
        });
        ok
    }

    pub fn failures(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_err()).count()
    }
}

fn expect(answer: &Answer, status: u16, what: &str) -> anyhow::Result<()> {
    ensure!(
        answer.status == status,
        "{what}: HTTP {} (expected {status}): {}",
        answer.status,
        answer.body.chars().take(300).collect::<String>()
    );
    Ok(())
}

pub fn wait_healthy(guest: &Guest, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match guest.https("/health/ready", &[]) {
            Ok(a) if a.status == 200 && a.body.trim() == "ready" => return Ok(()),
            result if Instant::now() > deadline => {
                let detail = match result {
                    Ok(a) => format!("HTTP {} {}", a.status, a.body.trim()),
                    Err(e) => format!("{e:#}"),
                };
                bail!(
                    "/health/ready not 200 ready after {}s: {detail}",
                    timeout.as_secs()
                )
            }
            _ => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// Logs in with the admin password; returns the `Cookie` header value.
pub fn login(guest: &Guest, password: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "password": password }).to_string();
    let answer = guest.https(
        "/api/auth/login",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ],
    )?;
    expect(&answer, 200, "POST /api/auth/login")?;
    let cookie = answer
        .headers
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, value)| value.trim().strip_prefix("mallard_session="))
        .context("the login answer sets no mallard_session cookie")?;
    let value = cookie.split(';').next().unwrap_or_default();
    Ok(format!("mallard_session={value}"))
}

/// Pageviews of the test site over the last 7 days, today included (not `period=day`: a run
/// that crosses midnight UTC between ingesting and counting would see a new, empty day).
pub fn pageviews(guest: &Guest, cookie: &str) -> anyhow::Result<u64> {
    let answer = guest.https(
        &format!("/api/stats/main?site_id={}&period=7d", guest::DOMAIN),
        &["-H", &format!("Cookie: {cookie}")],
    )?;
    expect(&answer, 200, "GET /api/stats/main")?;
    let json: serde_json::Value =
        serde_json::from_str(&answer.body).context("stats/main is not JSON")?;
    json["pageviews"]
        .as_u64()
        .with_context(|| format!("no pageviews in {}", answer.body))
}

pub fn pages(guest: &Guest, cookie: &str) -> anyhow::Result<String> {
    let answer = guest.https(
        &format!(
            "/api/stats/breakdown/pages?site_id={}&period=7d&limit=100",
            guest::DOMAIN
        ),
        &["-H", &format!("Cookie: {cookie}")],
    )?;
    expect(&answer, 200, "GET /api/stats/breakdown/pages")?;
    Ok(answer.body)
}

/// The web checks: health, login page, script, auth, ingest → stats. Returns the session cookie.
pub fn web(report: &mut Report, guest: &Guest, password: &str, token: &str) -> Option<String> {
    report.check(
        "https /health/ready through Caddy (CA from the guest)",
        || {
            let a = guest.https("/health/ready", &[])?;
            expect(&a, 200, "/health/ready")?;
            ensure!(a.body.trim() == "ready", "body {:?}", a.body);
            let hsts = a.header("strict-transport-security").unwrap_or("none");
            Ok(format!("200 ready, HSTS {hsts}"))
        },
    );
    report.check("login page at /", || {
        let a = guest.https("/", &[])?;
        expect(&a, 200, "/")?;
        ensure!(a.body.contains("id=\"login\""), "no login form in the page");
        let status = guest.https("/api/auth/status", &[])?;
        ensure!(
            status.body.contains("\"setup_required\":false"),
            "/api/auth/status: {} (the admin hash from the user-data is not configured)",
            status.body
        );
        Ok("200, login form; the admin password hash is configured".into())
    });
    report.check("tracking script /mallard.js", || {
        let a = guest.https("/mallard.js", &["--compressed"])?;
        expect(&a, 200, "/mallard.js")?;
        let kind = a.header("content-type").unwrap_or_default().to_owned();
        ensure!(kind.contains("javascript"), "content-type {kind:?}");
        Ok(format!("200 {kind}, {} bytes", a.body.len()))
    });
    report.check("stats refused without a session", || {
        let a = guest.https(
            &format!("/api/stats/main?site_id={}&period=7d", guest::DOMAIN),
            &[],
        )?;
        expect(&a, 401, "unauthenticated /api/stats/main")?;
        let wrong = guest.https(
            "/api/auth/login",
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{\"password\":\"wrong-password-123\"}",
            ],
        )?;
        expect(&wrong, 401, "login with a wrong password")?;
        Ok("401 without a session, 401 for a wrong password".into())
    });
    let mut cookie = None;
    report.check("event through Caddy appears in /api/stats/main", || {
        let url = format!("https://{}/vm-test/{token}", guest::DOMAIN);
        let event = serde_json::json!({"d": guest::DOMAIN, "n": "pageview", "u": url, "w": 1280});
        let a = guest.https(
            "/api/event",
            &[
                "-A",
                BROWSER,
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                &event.to_string(),
            ],
        )?;
        expect(&a, 202, "POST /api/event")?;
        let pixel = format!(
            "/api/event?d={}&n=pageview&u=https%3A%2F%2F{}%2Fvm-test%2F{token}-pixel",
            guest::DOMAIN,
            guest::DOMAIN
        );
        expect(
            &guest.https(&pixel, &["-A", BROWSER])?,
            200,
            "GET /api/event (pixel)",
        )?;
        let session = login(guest, password)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let views = loop {
            let views = pageviews(guest, &session)?;
            if views >= 2 || Instant::now() > deadline {
                break views;
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        ensure!(
            views >= 2,
            "stats/main counts {views} pageviews, expected 2"
        );
        let pages = pages(guest, &session)?;
        ensure!(
            pages.contains(token),
            "the page is not in breakdown/pages: {pages}"
        );
        cookie = Some(session);
        Ok(format!(
            "2 events (JSON + pixel) → {views} pageviews, page listed, logged in"
        ))
    });
    cookie
}
