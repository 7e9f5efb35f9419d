//! Who sent a request: the socket peer, or a forwarded address when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected, MockConnectInfo};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::serve::IncomingStream;
use ipnet::IpNet;

/// The other end of a connection; set by the listener for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    /// A Unix-socket client: a local reverse proxy.
    Unix,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer::Tcp(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer::Unix
    }
}

/// The request's [`Peer`], if the listener recorded one (tests may mock it).
#[derive(Debug, Clone, Copy)]
pub struct PeerInfo(pub Option<Peer>);

impl<S: Send + Sync> FromRequestParts<S> for PeerInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let real = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|info| info.0);
        let mocked = || {
            parts
                .extensions
                .get::<MockConnectInfo<Peer>>()
                .map(|info| info.0)
        };
        Ok(PeerInfo(real.or_else(mocked)))
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client address. Forwarding headers count only when the peer is a trusted proxy, and in
/// `X-Forwarded-For` the right-most address that is not itself a trusted proxy wins: entries
/// further left were written by the client and can be forged.
pub fn client_ip(peer: Option<Peer>, headers: &HeaderMap, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer_ip = match peer? {
        Peer::Tcp(addr) => Some(addr.ip()),
        Peer::Unix => None,
    };
    if peer_ip.is_some_and(|ip| !trusted(ip, proxies)) {
        return peer_ip;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect();
    if let Some(ip) = forwarded
        .iter()
        .rev()
        .find(|ip| !trusted(**ip, proxies))
        .or(forwarded.first())
    {
        return Some(*ip);
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(peer_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            let name = axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            map.append(name, v.parse().expect("header value"));
        }
        map
    }

    fn proxies() -> Vec<IpNet> {
        vec!["127.0.0.0/8".parse().expect("net")]
    }

    fn tcp(ip: &str) -> Option<Peer> {
        Some(Peer::Tcp(SocketAddr::new(ip.parse().expect("ip"), 5555)))
    }

    #[test]
    fn untrusted_peers_cannot_forge_their_address() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "5.6.7.8")]);
        assert_eq!(
            client_ip(tcp("203.0.113.9"), &h, &proxies()),
            "203.0.113.9".parse().ok()
        );
    }

    #[test]
    fn trusted_proxy_forwarded_address_is_used_right_most_untrusted_first() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 127.0.0.1")]);
        assert_eq!(
            client_ip(tcp("127.0.0.1"), &h, &proxies()),
            "198.51.100.7".parse().ok()
        );
        assert_eq!(
            client_ip(Some(Peer::Unix), &h, &proxies()),
            "198.51.100.7".parse().ok()
        );
        let h = headers(&[("x-real-ip", "198.51.100.8")]);
        assert_eq!(
            client_ip(Some(Peer::Unix), &h, &proxies()),
            "198.51.100.8".parse().ok()
        );
    }

    #[test]
    fn unix_peer_without_headers_has_no_address() {
        assert_eq!(
            client_ip(Some(Peer::Unix), &HeaderMap::new(), &proxies()),
            None
        );
    }
}
