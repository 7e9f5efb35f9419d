//! `tls.*`: every certificate in Caddy's storage is valid and is being renewed in time.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::facts::CADDY_CERTIFICATES;
use super::{Check, Host, HostError, run_ok};

struct Certificate {
    issuer: String,
    name: String,
    path: PathBuf,
}

pub fn checks(host: &dyn Host) -> Vec<Check> {
    let certificates = match find_certificates(host) {
        Ok(found) if found.is_empty() => {
            return vec![Check::fail(
                "tls.certificates",
                format!("no certificate in {CADDY_CERTIFICATES}"),
            )];
        }
        Ok(found) => found,
        Err(HostError::NotFound(_)) => {
            return vec![Check::fail(
                "tls.certificates",
                format!("no certificate: {CADDY_CERTIFICATES} does not exist"),
            )];
        }
        Err(err) => return vec![Check::fail("tls.certificates", err.to_string())],
    };
    let now = DateTime::<Utc>::from(host.now());
    certificates
        .iter()
        .map(|cert| check_certificate(host, cert, now))
        .collect()
}

/// `<issuer>/<name>/<name>.crt`, the layout of Caddy's file storage.
fn find_certificates(host: &dyn Host) -> Result<Vec<Certificate>, HostError> {
    let root = Path::new(CADDY_CERTIFICATES);
    let mut found = Vec::new();
    for issuer in host.list_dir(root)? {
        let Ok(names) = host.list_dir(&root.join(&issuer)) else {
            continue;
        };
        for name in names {
            let path = root.join(&issuer).join(&name).join(format!("{name}.crt"));
            if host.metadata(&path).is_ok_and(|meta| meta.is_file) {
                found.push(Certificate {
                    issuer: issuer.clone(),
                    name,
                    path,
                });
            }
        }
    }
    Ok(found)
}

fn check_certificate(host: &dyn Host, cert: &Certificate, now: DateTime<Utc>) -> Check {
    let id = format!("tls.{}", cert.name);
    let path = cert.path.to_string_lossy();
    let args = [
        "x509",
        "-noout",
        "-startdate",
        "-enddate",
        "-in",
        path.as_ref(),
    ];
    let output = match run_ok(host, "openssl", &args) {
        Ok(output) => output,
        Err(reason) => return Check::fail(id, reason),
    };
    let field = |name: &str| {
        output
            .stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .and_then(parse_openssl_time)
    };
    let (Some(not_before), Some(not_after)) = (field("notBefore="), field("notAfter=")) else {
        return Check::fail(
            id,
            format!("cannot read the validity of {path} from `openssl x509`"),
        );
    };
    let (status, detail) = judge(not_before, not_after, now);
    Check::new(id, status, format!("{detail} ({}, {})", cert.issuer, path))
}

/// Caddy renews when a third of the validity is left, so below a quarter means renewal has
/// been failing for a while. Relative to the lifetime, the rule fits 90-day ACME certificates
/// and 12-hour internal ones alike.
fn judge(
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (super::Status, String) {
    use super::Status::{Fail, Pass};
    let until = not_after.format("%Y-%m-%d %H:%M UTC");
    if now >= not_after {
        return (
            Fail,
            format!("expired {} ago, on {until}", span(now - not_after)),
        );
    }
    if now < not_before {
        let from = not_before.format("%Y-%m-%d %H:%M UTC");
        return (Fail, format!("not valid before {from}"));
    }
    let left = not_after - now;
    let total = not_after - not_before;
    if left * 4 < total {
        return (
            Fail,
            format!(
                "{} left of {}, under a quarter: renewal is failing (until {until})",
                span(left),
                span(total)
            ),
        );
    }
    (Pass, format!("{} left (until {until})", span(left)))
}

/// "N days", or hours below a day.
fn span(delta: TimeDelta) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if delta.num_days() >= 1 {
        plural(delta.num_days(), "day")
    } else {
        plural(delta.num_hours(), "hour")
    }
}

/// `Nov 25 18:00:00 2026 GMT` (`openssl x509 -startdate`; days below 10 are space-padded).
fn parse_openssl_time(text: &str) -> Option<DateTime<Utc>> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let words: Vec<&str> = text.split_whitespace().collect();
    let [month, day, time, year, zone] = words.as_slice() else {
        return None;
    };
    if *zone != "GMT" {
        return None;
    }
    let month = MONTHS.iter().position(|name| name == month)?;
    let date = NaiveDate::from_ymd_opt(
        year.parse().ok()?,
        u32::try_from(month + 1).ok()?,
        day.parse().ok()?,
    )?;
    let mut hms = time.split(':').map(str::parse::<u32>);
    let (Some(Ok(h)), Some(Ok(m)), Some(Ok(s)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    Some(date.and_hms_opt(h, m, s)?.and_utc())
}
