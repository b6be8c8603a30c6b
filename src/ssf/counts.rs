//! How many SETs each stream received and when the last came, counted in memory and written
//! once a second: a write per SET on the stream's one row would make every push wait for a
//! second commit and serialise concurrent pushes on that row's lock.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use time::OffsetDateTime;

use crate::db::{Pool, models::SsfStream};

/// How often the counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// SETs received per stream since the last write. Bounded by the number of streams (ids come
/// from authenticated streams only).
#[derive(Default)]
pub struct EventCounts {
    pending: Mutex<HashMap<uuid::Uuid, (i64, OffsetDateTime)>>,
}

impl EventCounts {
    /// Counts one SET received on `stream`.
    pub fn add(&self, stream: uuid::Uuid) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending
            .entry(stream)
            .or_insert((0, OffsetDateTime::now_utc()));
        entry.0 += 1;
        entry.1 = OffsetDateTime::now_utc();
    }

    fn take(&self) -> HashMap<uuid::Uuid, (i64, OffsetDateTime)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes the counts for ever, every [`FLUSH_EVERY`]; counts that cannot be written are
    /// kept for the next try.
    pub async fn run(counts: Arc<EventCounts>, pool: Pool) {
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let taken = counts.take();
            if taken.is_empty() {
                continue;
            }
            let Ok(mut conn) = pool.get().await else {
                counts.restore(taken);
                continue;
            };
            for (stream, (n, at)) in taken {
                if let Err(e) = SsfStream::record_events(&mut conn, stream, n, at).await {
                    tracing::warn!(error = %e, "cannot count Shared Signals events");
                    counts.restore(HashMap::from([(stream, (n, at))]));
                }
            }
        }
    }

    fn restore(&self, taken: HashMap<uuid::Uuid, (i64, OffsetDateTime)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (stream, (n, at)) in taken {
            let entry = pending.entry(stream).or_insert((0, at));
            entry.0 += n;
            entry.1 = entry.1.max(at);
        }
    }
}
