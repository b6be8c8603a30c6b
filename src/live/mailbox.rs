//! A stream's mailbox: the hub posts events, the stream takes them; dropping the hub's end
//! ends the stream once it has read what was posted. An idle stream's mailbox is one 80-byte
//! allocation. (A tokio channel, used before, reserves a block for 32 events and pads each of
//! its halves to a cache line: about 0.8 KiB per open stream.)

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use actix_web_lab::sse::Event;

/// Events a mailbox holds before it drops more: a stream this far behind is not reading (its
/// client is gone), and a logout needs one.
const CAPACITY: usize = 8;

#[derive(Default)]
struct Slot {
    events: VecDeque<Event>,
    /// The stream waiting for an event.
    waker: Option<Waker>,
    /// The hub's end was dropped: no more events will come.
    closed: bool,
}

type Shared = Arc<Mutex<Slot>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Slot> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The hub's end.
pub(super) struct Sender(Shared);

/// The stream's end.
pub(super) struct Receiver(Shared);

/// A new, empty mailbox.
pub(super) fn mailbox() -> (Sender, Receiver) {
    let shared = Shared::default();
    (Sender(shared.clone()), Receiver(shared))
}

impl Sender {
    /// Posts a copy of `event`. A full mailbox, or one whose stream is gone, drops it.
    pub(super) fn post(&self, event: &Event) {
        let mut slot = lock(&self.0);
        if slot.events.len() >= CAPACITY || Arc::strong_count(&self.0) < 2 {
            return;
        }
        slot.events.push_back(event.clone());
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut slot = lock(&self.0);
        slot.closed = true;
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Receiver {
    /// The next event; `None` once the hub's end is dropped and every event was read.
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut slot = lock(&self.0);
        if let Some(event) = slot.events.pop_front() {
            if slot.events.is_empty() {
                // Idle streams keep no buffer.
                slot.events = VecDeque::new();
            }
            return Poll::Ready(Some(event));
        }
        if slot.closed {
            return Poll::Ready(None);
        }
        match &mut slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use actix_web_lab::sse::Data;

    use super::*;

    fn named(name: &str) -> Event {
        Event::Data(Data::new("{}").event(name.to_owned()))
    }

    fn name(event: Option<Event>) -> Option<String> {
        match event? {
            Event::Data(data) => Some(format!("{data:?}")),
            Event::Comment(text) => Some(text.to_string()),
        }
    }

    #[tokio::test]
    async fn events_posted_before_the_hub_lets_go_are_all_read_then_the_stream_ends() {
        let (tx, mut rx) = mailbox();
        tx.post(&named("signin"));
        tx.post(&named("logout"));
        drop(tx);

        let first = name(poll_fn(|cx| rx.poll_recv(cx)).await).unwrap();
        let second = name(poll_fn(|cx| rx.poll_recv(cx)).await).unwrap();
        let end = poll_fn(|cx| rx.poll_recv(cx)).await;

        assert!(first.contains("signin"), "{first}");
        assert!(second.contains("logout"), "{second}");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_waiting_stream_wakes_when_an_event_is_posted() {
        let (tx, mut rx) = mailbox();
        let reader = tokio::spawn(async move { name(poll_fn(|cx| rx.poll_recv(cx)).await) });
        tokio::task::yield_now().await;

        tx.post(&named("logout"));

        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("the reader woke")
            .unwrap();
        assert!(got.unwrap().contains("logout"));
    }

    #[tokio::test]
    async fn a_full_mailbox_drops_what_comes_after_its_capacity() {
        let (tx, mut rx) = mailbox();
        for _ in 0..CAPACITY + 5 {
            tx.post(&named("signin"));
        }
        drop(tx);

        let mut read = 0;
        while poll_fn(|cx| rx.poll_recv(cx)).await.is_some() {
            read += 1;
        }
        assert_eq!(read, CAPACITY);
    }

    #[test]
    fn posting_to_a_gone_stream_keeps_nothing() {
        let (tx, rx) = mailbox();
        drop(rx);
        tx.post(&named("logout"));
        assert!(lock(&tx.0).events.is_empty());
    }
}
