//! Who goes first when the server is busy. Revocations (Universal Logout, back-channel logout,
//! SCIM writes, Shared Signals) must not wait behind page views:
//! - they take their database connections from a reserved pool ([`RevocationPool`]), whose
//!   connections are driven by a thread of their own (the revocation lane), and Universal
//!   Logout runs its whole database work there ([`RevocationPool::run`]), so its round trips are
//!   not queued behind page tasks on the busy workers;
//! - page requests are admitted a bounded number at a time ([`admit_pages`]), so the workers'
//!   run queues stay short. Pages wait for a slot in a queue that costs nothing while waiting;
//!   revocations never queue for one;
//! - while an authenticated revocation is being written, new page requests and page reads on
//!   the instance wait (each at most `PAGE_HOLD_MS`, 5 ms: [`PageHold`]), so that the CPU and the
//!   database go to the revocation first.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use tokio::{
    runtime,
    sync::{Notify, Semaphore},
};

use crate::{config::DatabaseUrl, db::Pool, error::AppError, time_slice};

/// The connections reserved for revocations, and the lane that drives them. Handlers that
/// revoke ask for this type by name.
#[derive(Clone)]
pub struct RevocationPool {
    pool: Pool,
    lane: Lane,
    pages: PageHold,
}

impl RevocationPool {
    /// A pool of `pool`'s connections, made and driven on a thread of their own, which runs
    /// with a CPU time slice of `time_slice_us` ([`crate::time_slice`]). Each page waits at
    /// most `page_hold` for the revocations written through it.
    pub fn new(pool: Pool, time_slice_us: u64, page_hold: Duration) -> anyhow::Result<Self> {
        Ok(RevocationPool {
            pool,
            lane: Lane::start(time_slice_us)?,
            pages: PageHold::new(page_hold),
        })
    }

    /// What page requests and reads of this instance wait on.
    pub fn page_hold(&self) -> PageHold {
        self.pages.clone()
    }

    /// Holds this instance's pages back until the guard drops. Only for a caller already
    /// authenticated: an unauthenticated request must not be able to slow pages down.
    pub fn hold_pages(&self) -> PagesHeld {
        self.pages.hold()
    }

    /// The URL its connections are made with: the server keeps one generic plan per prepared
    /// statement instead of planning each call anew with its values. The revocation statement
    /// is written to suit a generic plan (each unset arm is an empty index probe), and planning
    /// it cost more CPU than running it (0.4 ms against 0.3 ms): CPU a busy server is short of.
    pub fn database_url(url: &DatabaseUrl) -> DatabaseUrl {
        url.with_server_setting("plan_cache_mode", "force_generic_plan")
    }

    /// A reserved connection. It is made on the lane, so its socket is driven there however
    /// busy the worker that asks is.
    pub async fn get(&self) -> Result<crate::db::PooledConnection, AppError> {
        let pool = self.pool.clone();
        self.run(async move { pool.get().await.map_err(AppError::from) })
            .await?
    }

    /// Runs `work` on the lane and waits for it: its awaits are woken on the lane, not behind
    /// the page requests of this worker.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, AppError> {
        self.lane
            .handle
            .spawn(work)
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("the revocation lane stopped: {e}")))
    }
}

/// A single-threaded runtime on its own thread; it stops when the last clone is dropped.
#[derive(Clone)]
struct Lane {
    handle: runtime::Handle,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl Lane {
    fn start(time_slice_us: u64) -> anyhow::Result<Self> {
        let rt = runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("revocation-lane".into())
            .spawn(move || {
                time_slice::shorten_for_this_thread(time_slice_us);
                // Ends when every `Lane` is gone (the sender dropped); the runtime is dropped
                // here, on its own thread.
                let _ = rt.block_on(stopped);
            })?;
        Ok(Lane {
            handle,
            _stop: Arc::new(stop),
        })
    }
}

/// How many page requests are handled at once per instance; the rest wait their turn.
#[derive(Clone)]
pub struct PageSlots(Arc<Semaphore>);

impl PageSlots {
    pub fn new(slots: usize) -> Self {
        PageSlots(Arc::new(Semaphore::new(slots.max(1))))
    }

    /// Slots free right now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// Admits a page request once a slot is free, and frees it when the response is ready (a live
/// stream's slot is freed as soon as the stream starts, not when it ends).
pub async fn admit_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(revocations) = req.app_data::<web::Data<RevocationPool>>() {
        revocations.pages.wait().await;
    }
    let slots = req.app_data::<web::Data<PageSlots>>().map(|s| s.0.clone());
    let _slot = match slots {
        // The semaphore is never closed, so acquiring only fails if it were.
        Some(slots) => slots.acquire_owned().await.ok(),
        None => None,
    };
    next.call(req).await
}

/// Pages give way to revocations. A revocation being written costs a few milliseconds of CPU,
/// mostly its database backend's; on a machine whose cores are busy with page views, that
/// backend waits for a core behind them at every step. Measured with `ual-bench ual-under-load`
/// (2 cores, README): holding new page work back while a revocation is written took the loaded
/// p99 from 10.9–17.5 ms to 6.5–10.4 ms, for a few percent of the pages' throughput.
/// Each wait is bounded: a slow revocation (one waiting on a lock) or a steady stream of them
/// slows pages down, never stops them.
#[derive(Clone)]
pub struct PageHold(Arc<HoldState>);

struct HoldState {
    revocations: AtomicUsize,
    released: Notify,
    /// The longest one page request or read waits.
    limit: Duration,
}

/// Pages wait while this lives.
pub struct PagesHeld(PageHold);

impl Drop for PagesHeld {
    fn drop(&mut self) {
        let state = &(self.0).0;
        if state.revocations.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.released.notify_waiters();
        }
    }
}

impl PageHold {
    /// Pages wait at most `limit` each (zero: they never wait).
    pub fn new(limit: Duration) -> Self {
        PageHold(Arc::new(HoldState {
            revocations: AtomicUsize::new(0),
            released: Notify::new(),
            limit,
        }))
    }

    fn hold(&self) -> PagesHeld {
        self.0.revocations.fetch_add(1, Ordering::AcqRel);
        PagesHeld(self.clone())
    }

    /// Whether a revocation holds pages now.
    fn is_held(&self) -> bool {
        self.0.revocations.load(Ordering::Acquire) > 0
    }

    /// Returns once no revocation holds pages, or after the limit.
    pub async fn wait(&self) {
        if self.0.limit.is_zero() || !self.is_held() {
            return;
        }
        // Registered before the second look, so a release in between is not missed.
        let released = self.0.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if self.is_held() {
            let _ = tokio::time::timeout(self.0.limit, released).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_page_does_not_wait_when_no_revocation_is_in_flight() {
        let hold = PageHold::new(Duration::from_secs(10));
        let started = Instant::now();
        hold.wait().await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_page_waits_until_the_last_revocation_in_flight_ends() {
        let hold = PageHold::new(Duration::from_secs(10));
        let (first, second) = (hold.hold(), hold.hold());
        let waiting = tokio::spawn({
            let hold = hold.clone();
            async move { hold.wait().await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one revocation is still in flight");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the page goes on once no revocation holds it")
            .unwrap();
        assert!(!hold.is_held());
    }

    #[tokio::test]
    async fn a_page_waits_no_longer_than_its_limit_for_a_revocation_that_does_not_end() {
        let hold = PageHold::new(Duration::from_millis(30));
        let _held = hold.hold();
        let started = Instant::now();
        hold.wait().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "waited {waited:?}");
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    }

    #[tokio::test]
    async fn with_no_hold_set_a_page_never_waits() {
        let hold = PageHold::new(Duration::ZERO);
        let _held = hold.hold();
        let started = Instant::now();
        hold.wait().await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
