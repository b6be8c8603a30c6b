//! Who goes first when the server is busy. Revocations (Universal Logout, back-channel logout,
//! SCIM writes, Shared Signals) must not wait behind page views:
//! - they take their database connections from a reserved pool ([`RevocationPool`]), whose
//!   connections are driven by a thread of their own (the revocation lane), and Universal
//!   Logout runs its whole database work there ([`RevocationPool::run`]), so its round trips are
//!   not queued behind page tasks on the busy workers;
//! - page requests are admitted a bounded number at a time ([`admit_pages`]), so the workers'
//!   run queues stay short. Pages wait for a slot in a queue that costs nothing while waiting;
//!   revocations never queue for one.

use std::{future::Future, sync::Arc};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use tokio::{runtime, sync::Semaphore};

use crate::{config::DatabaseUrl, db::Pool, error::AppError, time_slice};

/// The connections reserved for revocations, and the lane that drives them. Handlers that
/// revoke ask for this type by name.
#[derive(Clone)]
pub struct RevocationPool {
    pool: Pool,
    lane: Lane,
}

impl RevocationPool {
    /// A pool of `pool`'s connections, made and driven on a thread of their own, which runs
    /// with a CPU time slice of `time_slice_us` ([`crate::time_slice`]).
    pub fn new(pool: Pool, time_slice_us: u64) -> anyhow::Result<Self> {
        Ok(RevocationPool {
            pool,
            lane: Lane::start(time_slice_us)?,
        })
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
    let slots = req.app_data::<web::Data<PageSlots>>().map(|s| s.0.clone());
    let _slot = match slots {
        // The semaphore is never closed, so acquiring only fails if it were.
        Some(slots) => slots.acquire_owned().await.ok(),
        None => None,
    };
    next.call(req).await
}
