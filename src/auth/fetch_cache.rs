//! What was fetched from identity providers, per issuer, failures included.
//!
//! Anyone can make the app look up an issuer's keys (an unauthenticated JWT names it), so the
//! cache bounds the fetches: at most one per issuer per `min_interval`, whether the last one
//! succeeded or failed (a failure is remembered, so a down or hostile IdP is not re-fetched on
//! every request), and callers who need an issuer while its fetch is under way share that one
//! fetch. No lock is ever held across a network call: the map's mutex guards only bookkeeping,
//! and waiting callers await the shared fetch itself.

use std::{
    collections::HashMap,
    fmt::Display,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};

/// Most issuers remembered; past it the idle entries are forgotten. Issuers come from the orgs'
/// settings, never straight from a request, so this is a backstop.
const MAX_ENTRIES: usize = 10_000;

/// Per-issuer fetched values, shared by all workers of an instance.
pub struct FetchCache<T> {
    min_interval: Duration,
    entries: Arc<Mutex<HashMap<String, Entry<T>>>>,
}

struct Entry<T> {
    /// The last value fetched, and when.
    value: Option<(Arc<T>, Instant)>,
    /// When the last fetch ended, and whether it failed.
    last: Option<(Instant, bool)>,
    /// The fetch under way, if any.
    inflight: Option<Shared<BoxFuture<'static, ()>>>,
}

impl<T> Default for Entry<T> {
    fn default() -> Self {
        Self {
            value: None,
            last: None,
            inflight: None,
        }
    }
}

/// No usable value: whether that is because the last fetch failed.
#[derive(Clone, Copy, Debug)]
pub struct Miss {
    pub failed: bool,
}

impl<T: Send + Sync + 'static> FetchCache<T> {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            entries: Arc::default(),
        }
    }

    /// The least time between two fetches of one issuer.
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// What `pick` finds in the value cached for `issuer` (given its age); when it finds
    /// nothing, one `fetch` (unless one ended less than `min_interval` ago) and `pick` again.
    pub async fn get<R, E, F>(
        &self,
        issuer: &str,
        pick: impl Fn(&T, Duration) -> Option<R>,
        fetch: impl FnOnce() -> F,
    ) -> Result<R, Miss>
    where
        E: Display,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut fetch = Some(fetch);
        let mut waited = false;
        loop {
            let pending = {
                let mut entries = self.entries.lock().expect("the cache is never poisoned");
                if !entries.contains_key(issuer) && entries.len() >= MAX_ENTRIES {
                    entries.retain(|_, e| e.inflight.is_some());
                }
                let entry = entries.entry(issuer.to_owned()).or_default();
                if let Some((value, at)) = &entry.value
                    && let Some(found) = pick(value, at.elapsed())
                {
                    return Ok(found);
                }
                let recent = entry
                    .last
                    .is_some_and(|(at, _)| at.elapsed() < self.min_interval);
                match &entry.inflight {
                    Some(fetching) if !waited => fetching.clone(),
                    _ if waited || recent => {
                        return Err(Miss {
                            failed: entry.last.is_some_and(|(_, failed)| failed),
                        });
                    }
                    _ => {
                        let fetch = fetch.take().expect("a caller starts one fetch at most");
                        let fetching = self.record(issuer, fetch()).boxed().shared();
                        entry.inflight = Some(fetching.clone());
                        fetching
                    }
                }
            };
            pending.await;
            waited = true;
        }
    }

    /// `fetch`, then its outcome stored under `issuer` (errors go to the log only).
    fn record<E: Display>(
        &self,
        issuer: &str,
        fetch: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let entries = self.entries.clone();
        let issuer = issuer.to_owned();
        async move {
            let outcome = fetch.await;
            let now = Instant::now();
            let mut entries = entries.lock().expect("the cache is never poisoned");
            let entry = entries.entry(issuer.clone()).or_default();
            entry.inflight = None;
            match outcome {
                Ok(value) => {
                    entry.value = Some((Arc::new(value), now));
                    entry.last = Some((now, false));
                }
                Err(e) => {
                    tracing::warn!(issuer, error = %e, "cannot fetch from the identity provider");
                    entry.last = Some((now, true));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_failure_is_remembered_and_concurrent_misses_share_one_fetch() {
        let cache = FetchCache::<u32>::new(Duration::from_secs(60));
        let fetches = Arc::new(AtomicUsize::new(0));
        let fetch = || {
            let fetches = fetches.clone();
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err::<u32, _>("down")
            }
        };
        let pick = |v: &u32, _: Duration| Some(*v);

        let misses =
            futures_util::future::join_all((0..10).map(|_| cache.get("i", pick, fetch))).await;
        let later = cache.get("i", pick, fetch).await;

        assert!(misses.iter().all(|m| m.is_err_and(|m| m.failed)));
        assert!(later.is_err_and(|m| m.failed));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_value_is_fetched_again_once_the_interval_has_passed() {
        let cache = FetchCache::<u32>::new(Duration::from_millis(1));
        let wanted = |want: u32| move |v: &u32, _: Duration| (*v == want).then_some(*v);

        assert_eq!(
            cache
                .get("i", wanted(1), || async { Ok::<_, &str>(1) })
                .await
                .ok(),
            Some(1)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;

        assert_eq!(
            cache
                .get("i", wanted(2), || async { Ok::<_, &str>(2) })
                .await
                .ok(),
            Some(2)
        );
    }
}
