//! Abuse limits: failed sign-ins per (org, account) and per address, failed Universal Logout
//! authentications per address. An attempt is *reserved* before its credential is checked, under
//! the same lock as the check, so concurrent attempts can never exceed a limit; the reservation
//! is released when the credential turns out valid, so only failures count. Fixed windows, in
//! memory: each instance counts on its own (N instances allow N times the attempts, still far too
//! few to guess a password, and nothing for a 262-bit key).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::HttpRequest;

/// Keys kept before expired windows are swept from memory.
const SWEEP_ABOVE: usize = 10_000;
/// Keys kept at most (a few MiB): beyond, attempts under new keys wait, so a flood of
/// made-up emails or addresses cannot grow the map without bound.
const MAX_KEYS: usize = 100_000;

/// SCIM requests an org's clients may make per minute, per instance.
pub const SCIM_REQUESTS_PER_MINUTE: u32 = 600;

/// A window: when it started and the attempts it has counted.
type Window = (Instant, u32);

/// Failures allowed per key and window.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            windows: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `key` must wait, if it has used up its attempts.
    pub fn retry_after(&self, key: &str) -> Option<Duration> {
        let windows = self.lock();
        let (started, attempts) = windows.get(key)?;
        let left = self.window.checked_sub(started.elapsed())?;
        (*attempts >= self.limit).then_some(left.max(Duration::from_secs(1)))
    }

    /// Counts an attempt of `key` before it is evaluated, or says how long to wait if `key` has
    /// none left. The attempt stays counted as a failure unless the reservation is released.
    pub fn reserve(&self, key: &str) -> Result<Reservation<'_>, Duration> {
        let mut windows = self.lock();
        if windows.len() > SWEEP_ABOVE {
            let window = self.window;
            windows.retain(|_, (started, _)| started.elapsed() < window);
        }
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            tracing::warn!("rate limiter full: refusing attempts under new keys");
            return Err(Duration::from_secs(60));
        }
        let entry = windows.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        if entry.1 >= self.limit {
            let left = self.window.saturating_sub(entry.0.elapsed());
            return Err(left.max(Duration::from_secs(1)));
        }
        entry.1 += 1;
        Ok(Reservation {
            limiter: self,
            key: key.to_owned(),
            started: entry.0,
        })
    }
}

impl RateLimiter {
    /// Counts one failure of `key`, for a limit that admits by finished failures only (see
    /// [`Limits::ual_per_ip`]).
    pub fn failed(&self, key: &str) {
        // Over the limit already, or the map is full: nothing more to count.
        let _counted = self.reserve(key);
    }
}

/// An attempt counted in advance: dropped, it stays a failure.
#[must_use = "a reservation counts as a failure unless released"]
pub struct Reservation<'a> {
    limiter: &'a RateLimiter,
    key: String,
    started: Instant,
}

impl Reservation<'_> {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The attempt did not fail (its credential was valid, or it was never evaluated).
    pub fn release(self) {
        let mut windows = self.limiter.lock();
        if let Some(window) = windows.get_mut(&self.key)
            && window.0 == self.started
        {
            window.1 = window.1.saturating_sub(1);
        }
    }

    /// The attempt signed in: the key's failures are forgotten.
    pub fn succeeded(self) {
        self.limiter.lock().remove(&self.key);
    }
}

/// Reserves an attempt under every `(limiter, key)`, or under none (how long to wait).
pub fn reserve_all<'a>(
    keys: impl IntoIterator<Item = (&'a RateLimiter, String)>,
) -> Result<Vec<Reservation<'a>>, Duration> {
    let mut reserved = Vec::new();
    for (limiter, key) in keys {
        match limiter.reserve(&key) {
            Ok(reservation) => reserved.push(reservation),
            Err(wait) => {
                reserved.into_iter().for_each(Reservation::release);
                return Err(wait);
            }
        }
    }
    Ok(reserved)
}

/// The limits of an instance.
pub struct Limits {
    /// Failed sign-ins per (org, account): see `routes::auth::login`.
    pub login_per_account: RateLimiter,
    /// Failed sign-ins per client IP.
    pub login_per_ip: RateLimiter,
    /// Failed Universal Logout authentications per client IP. Checked before any credential
    /// work, counted once a credential is refused: unlike sign-ins (where each attempt costs an
    /// argon2 hash and is reserved in advance), calls in flight do not count, so an identity
    /// provider's burst of valid calls is never refused. Concurrent bad calls may overshoot the
    /// limit by those in flight; a key has 256 random bits and key fetches are cached.
    pub ual_per_ip: RateLimiter,
    /// Refused OAuth token requests per client IP (`POST /oauth/token`), counted like
    /// [`Limits::ual_per_ip`]: checked before any work, counted once refused.
    pub oauth_per_ip: RateLimiter,
    /// Refused Shared Signals push credentials per client IP (`POST /ssf/events`), counted like
    /// [`Limits::ual_per_ip`].
    pub ssf_per_ip: RateLimiter,
    /// SSO sign-ins started per client IP (each stores a row until it expires).
    pub sso_start_per_ip: RateLimiter,
    /// SCIM requests per org (authenticated, so one key per org): generous, to keep one
    /// runaway client from starving the instance. Every request counts.
    pub scim_per_org: RateLimiter,
    /// Whether to take the client's IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Limits {
    pub fn new(trust_forwarded_for: bool) -> Limits {
        Limits {
            login_per_account: RateLimiter::new(10, Duration::from_secs(15 * 60)),
            login_per_ip: RateLimiter::new(50, Duration::from_secs(15 * 60)),
            ual_per_ip: RateLimiter::new(20, Duration::from_secs(60)),
            oauth_per_ip: RateLimiter::new(20, Duration::from_secs(60)),
            ssf_per_ip: RateLimiter::new(20, Duration::from_secs(60)),
            sso_start_per_ip: RateLimiter::new(30, Duration::from_secs(10 * 60)),
            scim_per_org: RateLimiter::new(SCIM_REQUESTS_PER_MINUTE, Duration::from_secs(60)),
            trust_forwarded_for,
        }
    }

    /// The client's address: the peer, or (behind a trusted proxy) the first `X-Forwarded-For`
    /// hop. The one definition, for the limits and for the session list alike.
    pub fn client_addr(&self, req: &HttpRequest) -> Option<IpAddr> {
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
        forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))
    }

    /// [`Limits::client_addr`] as a limiter key.
    pub fn client_ip(&self, req: &HttpRequest) -> String {
        self.client_addr(req)
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
    fn reservations_beyond_the_limit_must_wait_and_success_forgets_them() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let held: Vec<_> = (0..3).map(|_| limiter.reserve("alice").unwrap()).collect();
        let wait = limiter
            .reserve("alice")
            .err()
            .expect("limited while three are in flight");
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(59));
        assert!(limiter.retry_after("alice").is_some());
        assert!(limiter.reserve("bob").is_ok(), "per key");
        drop(held); // three failures
        assert!(limiter.reserve("alice").is_err());
        limiter.lock().get_mut("alice").unwrap().1 = 2;
        limiter.reserve("alice").unwrap().succeeded();
        assert!(limiter.retry_after("alice").is_none());
        assert_eq!(limiter.lock().get("alice"), None);
    }

    #[test]
    fn a_released_reservation_does_not_count() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        for _ in 0..5 {
            limiter.reserve("x").unwrap().release();
        }
        let all = reserve_all([(&limiter, "x".into()), (&limiter, "y".into())]).unwrap();
        assert!(
            reserve_all([(&limiter, "z".into()), (&limiter, "y".into())]).is_err(),
            "y is used up"
        );
        assert!(
            limiter.reserve("z").is_ok(),
            "z was released when y refused"
        );
        assert_eq!(all[0].key(), "x");
    }

    #[test]
    fn new_keys_wait_once_the_map_is_full() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        limiter
            .lock()
            .extend((0..MAX_KEYS).map(|i| (i.to_string(), (Instant::now(), 0))));
        assert!(limiter.reserve("new").is_err());
        assert!(limiter.reserve("7").is_ok(), "known keys still count");
    }

    #[test]
    fn a_window_expires() {
        let limiter = RateLimiter::new(1, Duration::from_millis(30));
        let _ = limiter.reserve("x");
        assert!(limiter.retry_after("x").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.retry_after("x").is_none());
        let _ = limiter.reserve("x");
        assert!(limiter.retry_after("x").is_some(), "a new window starts");
    }
}
