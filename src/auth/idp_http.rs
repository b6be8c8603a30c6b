//! The one way the app talks to identity providers, and the one place that decides where it may.
//!
//! An issuer is configured by an org admin, and any unauthenticated JWT naming it makes the app
//! fetch from it, so every request is checked: `https://` only (plain `http://` to a loopback
//! host only when `ALLOW_INSECURE_IDP` is set, for tests and local development), and never to a
//! private, loopback, link-local or otherwise internal address. IP-literal hosts are checked
//! before the request; names are checked after DNS by the client's own resolver, so a name that
//! resolves (or re-resolves) to an internal address is never connected to. With the flag set,
//! loopback is allowed but private and link-local ranges stay refused. Redirects are never
//! followed, proxies from the environment never used, and every body is capped.

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Largest response body read from an identity provider (discovery, keys, token).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a request to an identity provider failed: for the log only, never for the caller.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(String);

impl FetchError {
    pub fn new(why: String) -> Self {
        Self(why)
    }
}

/// Where the app may fetch from.
#[derive(Clone, Copy, Debug)]
pub struct FetchPolicy {
    /// `ALLOW_INSECURE_IDP`: plain http and loopback addresses, for tests and development.
    pub allow_insecure: bool,
}

impl FetchPolicy {
    /// Whether the app may connect to `ip`.
    pub fn allows_ip(self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_insecure && is_loopback(ip))
    }

    /// Why the app may not fetch from `url`, if it may not.
    pub fn check_url(self, url: &Url) -> Result<(), UrlRefused> {
        let host = url.host().ok_or(UrlRefused::NotHttps)?;
        let loopback_host = match &host {
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                name == "localhost" || name.ends_with(".localhost")
            }
            Host::Ipv4(ip) => is_loopback(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => is_loopback(IpAddr::V6(*ip)),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure && loopback_host => {}
            _ => return Err(UrlRefused::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefused::Credentials);
        }
        let literal = match host {
            Host::Domain(_) => None,
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        };
        match literal {
            Some(ip) if !self.allows_ip(ip) => Err(UrlRefused::InternalAddress),
            _ => Ok(()),
        }
    }
}

/// Why a URL may not be fetched from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("it must be an https:// URL with a host")]
    NotHttps,
    #[error("it must not carry a user name or password")]
    Credentials,
    #[error("its address is private, loopback or link-local")]
    InternalAddress,
}

/// Whether `ip` is an ordinary address on the internet: not private, loopback, link-local,
/// unspecified, multicast, broadcast, shared (CGNAT), unique-local, documentation or reserved,
/// including IPv4 addresses embedded in IPv6 ones (mapped, compatible, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_loopback() && !ip.is_unspecified() => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || embedded_v4(v6).is_some_and(|v4| v4.is_loopback()),
    }
}

/// DNS that answers only with addresses the policy allows, so no request can be steered to an
/// internal address by a name (DNS rebinding included: this runs at every connection).
struct PolicyResolver(FetchPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| policy.allows_ip(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no address the app may fetch from").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for identity providers, with its policy. Cheap to clone.
#[derive(Clone)]
pub struct IdpHttp {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl IdpHttp {
    /// A client whose requests time out after `timeout` (body included).
    pub fn new(timeout: Duration, policy: FetchPolicy) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(!policy.allow_insecure)
            .dns_resolver(Arc::new(PolicyResolver(policy)))
            .user_agent(concat!("ual-todo/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self { client, policy }
    }

    pub fn policy(&self) -> FetchPolicy {
        self.policy
    }

    /// Sends `request` if the policy allows its URL, and reads at most [`MAX_BODY_BYTES`] of
    /// the answer.
    pub async fn send(&self, request: reqwest::Request) -> Result<HttpResponse, FetchError> {
        let url = request.url().clone();
        let fail = |why: String| FetchError(format!("{url}: {why}"));
        self.policy
            .check_url(&url)
            .map_err(|why| fail(why.to_string()))?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        let too_large = || fail(format!("the body is larger than {MAX_BODY_BYTES} bytes"));
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = openidconnect::http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        answer.body(body).map_err(|e| fail(e.to_string()))
    }

    /// GETs `url` and reads its JSON body; any status but 2xx is an error.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, FetchError> {
        let url = Url::parse(url).map_err(|e| FetchError(format!("GET {url}: {e}")))?;
        let mut request = reqwest::Request::new(reqwest::Method::GET, url.clone());
        request.headers_mut().insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(FetchError(format!(
                "GET {url}: status {}",
                response.status()
            )));
        }
        serde_json::from_slice(response.body())
            .map_err(|e| FetchError(format!("GET {url}: not the expected JSON ({e})")))
    }
}

/// openidconnect's discovery and token requests go through [`IdpHttp::send`] too.
impl<'c> AsyncHttpClient<'c> for IdpHttp {
    type Error = FetchError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, FetchError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| FetchError(format!("cannot build the request: {e}")))?;
            self.send(request).await
        })
    }
}

/// An error and its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
