//! Where a visit came from: the source name and its class (search, social, email, referral,
//! direct) from the referrer host or the UTM tags.

use url::Url;

use crate::store::{Acquisition, event::DIRECT};

/// Hosts (suffix match on whole labels) of well-known sources, checked in order: e-mail web
/// clients first, since some share a domain with a search engine (mail.google.com).
const KNOWN: &[(&str, &str, &str)] = &[
    ("mail.google.com", "Gmail", "email"),
    ("com.google.android.gm", "Gmail", "email"),
    ("outlook.live.com", "Outlook.com", "email"),
    ("outlook.office.com", "Outlook.com", "email"),
    ("outlook.office365.com", "Outlook.com", "email"),
    ("mail.yahoo.com", "Yahoo! Mail", "email"),
    ("mail.proton.me", "Proton Mail", "email"),
    ("mail.aol.com", "AOL Mail", "email"),
    ("duckduckgo.com", "DuckDuckGo", "search"),
    ("bing.com", "Bing", "search"),
    ("search.yahoo.com", "Yahoo!", "search"),
    ("baidu.com", "Baidu", "search"),
    ("ecosia.org", "Ecosia", "search"),
    ("search.brave.com", "Brave Search", "search"),
    ("startpage.com", "Startpage", "search"),
    ("qwant.com", "Qwant", "search"),
    ("kagi.com", "Kagi", "search"),
    ("naver.com", "Naver", "search"),
    ("seznam.cz", "Seznam", "search"),
    ("search.aol.com", "AOL", "search"),
    (
        "com.google.android.googlequicksearchbox",
        "Google",
        "search",
    ),
    ("news.ycombinator.com", "Hacker News", "social"),
    ("facebook.com", "Facebook", "social"),
    ("fb.com", "Facebook", "social"),
    ("instagram.com", "Instagram", "social"),
    ("t.co", "Twitter", "social"),
    ("twitter.com", "Twitter", "social"),
    ("x.com", "Twitter", "social"),
    ("linkedin.com", "LinkedIn", "social"),
    ("lnkd.in", "LinkedIn", "social"),
    ("reddit.com", "Reddit", "social"),
    ("youtube.com", "YouTube", "social"),
    ("youtu.be", "YouTube", "social"),
    ("tiktok.com", "TikTok", "social"),
    ("bsky.app", "Bluesky", "social"),
    ("threads.net", "Threads", "social"),
    ("mastodon.social", "Mastodon", "social"),
    ("vk.com", "VKontakte", "social"),
    ("tumblr.com", "Tumblr", "social"),
    ("quora.com", "Quora", "social"),
    ("discord.com", "Discord", "social"),
    ("t.me", "Telegram", "social"),
    ("weibo.com", "Weibo", "social"),
];

/// Engines present under many country domains (google.de, yandex.ru, pinterest.co.uk).
const KNOWN_LABELS: &[(&str, &str, &str)] = &[
    ("google", "Google", "search"),
    ("yandex", "Yandex", "search"),
    ("pinterest", "Pinterest", "social"),
];

/// Second-level labels of country public suffixes (`co.uk`, `com.br`, `ne.jp`).
const SECOND_LEVEL: &[&str] = &[
    "co", "com", "ac", "org", "net", "gov", "edu", "ne", "or", "gob",
];

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// The known source for a host, if any.
pub fn classify_host(host: &str) -> Option<(&'static str, &'static str)> {
    let host = strip_www(host);
    if let Some((_, name, class)) = KNOWN
        .iter()
        .find(|(known, _, _)| host == *known || host.ends_with(&format!(".{known}")))
    {
        return Some((name, class));
    }
    let labels: Vec<&str> = host.split('.').collect();
    KNOWN_LABELS.iter().find_map(|(label, name, class)| {
        // The label must be followed only by a public suffix: `google.co.uk`, not `google.example.com`.
        let position = labels.iter().position(|l| l == label)?;
        let suffix = &labels[position + 1..];
        let public = match suffix {
            [_tld] => true,
            [second, _tld] => SECOND_LEVEL.contains(second),
            _ => false,
        };
        public.then_some((*name, *class))
    })
}

fn class_from_medium(medium: &str) -> Option<&'static str> {
    match medium.to_ascii_lowercase().as_str() {
        "email" | "e-mail" | "newsletter" => Some("email"),
        "social" | "social-network" | "social-media" | "sm" => Some("social"),
        "organic" | "search" => Some("search"),
        _ => None,
    }
}

/// The acquisition attributes of a page view: referrer, source, class and UTM tags.
pub fn acquisition(page: &Url, referrer: Option<&Url>) -> Acquisition {
    let mut acq = Acquisition::default();
    let mut ref_param = None;
    for (key, value) in page.query_pairs() {
        let value = value.trim().to_string();
        if value.is_empty() {
            continue;
        }
        let slot = match key.as_ref() {
            "utm_source" => &mut acq.utm_source,
            "utm_medium" => &mut acq.utm_medium,
            "utm_campaign" => &mut acq.utm_campaign,
            "utm_term" => &mut acq.utm_term,
            "utm_content" => &mut acq.utm_content,
            "ref" | "source" => &mut ref_param,
            _ => continue,
        };
        slot.get_or_insert(value.chars().take(256).collect());
    }

    // A referrer from the page's own site is navigation, not acquisition.
    let page_host = page.host_str().map(strip_www);
    let external =
        referrer.filter(|r| r.host_str().map(strip_www) != page_host || page_host.is_none());
    let referrer_host = external.and_then(|r| r.host_str().map(str::to_ascii_lowercase));
    acq.referrer = external.map(|r| {
        let host = r.host_str().unwrap_or(r.scheme());
        let path = r.path().trim_end_matches('/');
        format!("{}{}", strip_www(host), path)
    });

    let tagged = acq.utm_source.clone().or(ref_param);
    (acq.source, acq.source_class) = match (tagged, referrer_host) {
        (Some(tag), _) => {
            let known = classify_host(&tag.to_ascii_lowercase());
            let class = acq
                .utm_medium
                .as_deref()
                .and_then(class_from_medium)
                .or(known.map(|k| k.1))
                .unwrap_or("referral");
            (known.map_or(tag, |k| k.0.to_string()), class.to_string())
        }
        (None, Some(host)) => match classify_host(&host) {
            Some((name, class)) => (name.to_string(), class.to_string()),
            None => (strip_www(&host).to_string(), "referral".to_string()),
        },
        (None, None) => (DIRECT.to_string(), "direct".to_string()),
    };
    acq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url")
    }

    #[test]
    fn search_social_email_and_referral_hosts() {
        assert_eq!(
            classify_host("www.google.co.uk"),
            Some(("Google", "search"))
        );
        assert_eq!(classify_host("google.de"), Some(("Google", "search")));
        assert_eq!(classify_host("mail.google.com"), Some(("Gmail", "email")));
        assert_eq!(
            classify_host("l.facebook.com"),
            Some(("Facebook", "social"))
        );
        assert_eq!(classify_host("t.co"), Some(("Twitter", "social")));
        assert_eq!(classify_host("google.example.com"), None);
        assert_eq!(classify_host("blog.example.org"), None);
    }

    #[test]
    fn self_referral_is_direct() {
        let acq = acquisition(
            &url("https://example.com/a"),
            Some(&url("https://www.example.com/b")),
        );
        assert_eq!(
            (acq.source.as_str(), acq.source_class.as_str()),
            (DIRECT, "direct")
        );
        assert_eq!(acq.referrer, None);
    }

    #[test]
    fn referrer_query_is_dropped_and_source_named() {
        let acq = acquisition(
            &url("https://example.com/"),
            Some(&url("https://www.google.com/search?q=secret")),
        );
        assert_eq!(acq.referrer.as_deref(), Some("google.com/search"));
        assert_eq!(
            (acq.source.as_str(), acq.source_class.as_str()),
            ("Google", "search")
        );
        let acq = acquisition(
            &url("https://example.com/"),
            Some(&url("https://blog.other.net/post/")),
        );
        assert_eq!(
            (acq.source.as_str(), acq.source_class.as_str()),
            ("blog.other.net", "referral")
        );
    }

    #[test]
    fn utm_tags_are_decoded_and_win_over_the_referrer() {
        let page = url(
            "https://example.com/?utm_source=news%20letter&utm_medium=email&utm_campaign=black+friday",
        );
        let acq = acquisition(&page, Some(&url("https://mail.example.net/")));
        assert_eq!(acq.utm_source.as_deref(), Some("news letter"));
        assert_eq!(acq.utm_campaign.as_deref(), Some("black friday"));
        assert_eq!(
            (acq.source.as_str(), acq.source_class.as_str()),
            ("news letter", "email")
        );
    }
}
