//! Login sessions: random 256-bit tokens in the `mallard_session` cookie, kept in memory as
//! SHA-256 digests with their expiry.
//!
//! Invariant: the token itself is never stored; a restart forgets every session (everyone
//! logs in again), which is also how all sessions are revoked at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

pub const COOKIE_NAME: &str = "mallard_session";

type Digest256 = [u8; 32];

pub fn digest(token: &str) -> Digest256 {
    Sha256::digest(token.as_bytes()).into()
}

/// `now + wait`, capped at a year (config allows no more; this only avoids an overflow panic).
pub fn after(now: Instant, wait: Duration) -> Instant {
    now + wait.min(Duration::from_secs(366 * 86_400))
}

/// 32 random bytes from the operating system's generator, base64url without padding.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

pub struct Sessions {
    ttl: Duration,
    secure: bool,
    live: Mutex<HashMap<Digest256, Instant>>,
}

impl Sessions {
    pub fn new(ttl: Duration, secure: bool) -> Self {
        Self {
            ttl,
            secure,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// A new session; returns its token (for the cookie, nowhere else).
    pub fn create(&self) -> String {
        let token = random_token();
        let now = Instant::now();
        let mut live = self.live.lock();
        live.retain(|_, expires| *expires > now);
        live.insert(digest(&token), after(now, self.ttl));
        token
    }

    pub fn is_valid(&self, token: &str) -> bool {
        let key = digest(token);
        let mut live = self.live.lock();
        match live.get(&key) {
            Some(expires) if *expires > Instant::now() => true,
            Some(_) => {
                live.remove(&key);
                false
            }
            None => false,
        }
    }

    pub fn remove(&self, token: &str) {
        self.live.lock().remove(&digest(token));
    }

    /// `Set-Cookie` for a new session.
    pub fn cookie(&self, token: &str) -> HeaderValue {
        self.set_cookie(token, self.ttl.as_secs())
    }

    /// `Set-Cookie` that makes the browser forget the session.
    pub fn cleared_cookie(&self) -> HeaderValue {
        self.set_cookie("", 0)
    }

    fn set_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
        );
        // Tokens are base64url, so the value is always a valid header.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The session token a request carries in its `Cookie` header(s), if any.
pub fn token_from(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_only_digests_are_kept() {
        let sessions = Sessions::new(Duration::from_secs(60), false);
        let token = sessions.create();
        assert_eq!(token.len(), 43);
        assert!(sessions.is_valid(&token));
        assert!(!sessions.is_valid("forged"));
        assert!(sessions.live.lock().contains_key(&digest(&token)));
        sessions.remove(&token);
        assert!(!sessions.is_valid(&token));
    }

    #[test]
    fn expired_sessions_are_refused() {
        let sessions = Sessions::new(Duration::ZERO, false);
        let token = sessions.create();
        assert!(!sessions.is_valid(&token));
    }

    #[test]
    fn cookie_attributes() {
        let plain = Sessions::new(Duration::from_secs(86400), false);
        assert_eq!(
            plain.cookie("abc").to_str().ok(),
            Some("mallard_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=86400")
        );
        let secure = Sessions::new(Duration::from_secs(60), true);
        assert!(
            secure
                .cleared_cookie()
                .to_str()
                .is_ok_and(|c| c.ends_with("Max-Age=0; Secure"))
        );
    }

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mallard_session=tok; b=2"),
        );
        assert_eq!(token_from(&headers), Some("tok"));
        assert_eq!(token_from(&HeaderMap::new()), None);
    }
}
