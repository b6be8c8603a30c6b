//! Abuse limits: failed sign-ins per account and per IP, failed Universal Logout authentications
//! per IP. Only failures count, so a valid call is never delayed. Fixed windows, in memory: each
//! instance counts on its own (N instances allow N times the attempts, still far too few to
//! guess a password, and nothing for a 262-bit key).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::HttpRequest;

/// Keys kept before expired windows are swept from memory.
const SWEEP_ABOVE: usize = 10_000;

/// Failures allowed per key and window.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            windows: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `key` must wait, if it has used up its failures.
    pub fn retry_after(&self, key: &str) -> Option<Duration> {
        let windows = self.lock();
        let (started, failures) = windows.get(key)?;
        let left = self.window.checked_sub(started.elapsed())?;
        (*failures >= self.limit).then_some(left.max(Duration::from_secs(1)))
    }

    /// Counts a failure of `key`.
    pub fn failed(&self, key: &str) {
        let mut windows = self.lock();
        if windows.len() > SWEEP_ABOVE {
            let window = self.window;
            windows.retain(|_, (started, _)| started.elapsed() < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// Forgets the failures of `key` (after a success).
    pub fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// The limits of an instance.
pub struct Limits {
    /// Failed sign-ins per account (email, lowercased).
    pub login_per_account: RateLimiter,
    /// Failed sign-ins per client IP.
    pub login_per_ip: RateLimiter,
    /// Failed Universal Logout authentications per client IP.
    pub ual_per_ip: RateLimiter,
    /// SSO sign-ins started per client IP (each stores a row until it expires).
    pub sso_start_per_ip: RateLimiter,
    /// Whether to take the client's IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Limits {
    pub fn new(trust_forwarded_for: bool) -> Limits {
        Limits {
            login_per_account: RateLimiter::new(10, Duration::from_secs(15 * 60)),
            login_per_ip: RateLimiter::new(50, Duration::from_secs(15 * 60)),
            ual_per_ip: RateLimiter::new(20, Duration::from_secs(60)),
            sso_start_per_ip: RateLimiter::new(30, Duration::from_secs(10 * 60)),
            trust_forwarded_for,
        }
    }

    /// The client's IP: the peer, or (behind a trusted proxy) the first `X-Forwarded-For` hop.
    pub fn client_ip(&self, req: &HttpRequest) -> String {
        let forwarded = self
            .trust_forwarded_for
            .then(|| {
                req.headers()
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .split(',')
                    .next()?
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
            })
            .flatten();
        forwarded
            .or_else(|| req.peer_addr().map(|a| a.ip()))
            .map_or_else(|| "unknown".into(), |ip| ip.to_string())
    }
}

/// Seconds for a `Retry-After` header.
pub fn seconds(wait: Duration) -> String {
    wait.as_secs().max(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_limit_must_wait_and_success_forgets_them() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..2 {
            limiter.failed("alice");
        }
        assert!(limiter.retry_after("alice").is_none());
        limiter.failed("alice");
        let wait = limiter.retry_after("alice").expect("limited");
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(59));
        assert!(limiter.retry_after("bob").is_none(), "per key");
        limiter.succeeded("alice");
        assert!(limiter.retry_after("alice").is_none());
    }

    #[test]
    fn a_window_expires() {
        let limiter = RateLimiter::new(1, Duration::from_millis(30));
        limiter.failed("x");
        assert!(limiter.retry_after("x").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.retry_after("x").is_none());
        limiter.failed("x");
        assert!(limiter.retry_after("x").is_some(), "a new window starts");
    }
}
