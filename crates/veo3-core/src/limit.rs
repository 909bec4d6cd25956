//! A cap on the HTTP exchanges one client has in flight: a small semaphore shared by every API
//! call and every download of the client, so that a thousand concurrent waits share a few
//! connections instead of opening a thousand.
//!
//! Like the webhook [`Inbox`](crate::webhook::Inbox), it serves both worlds without an async
//! runtime in the core: async waiters park a `Waker`, blocking ones wait on a `Condvar`. A
//! released permit is handed to the longest waiter directly (first come, first served), so a
//! steady stream of new callers cannot starve an old one.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A client's cap on concurrent HTTP exchanges. Cheap to clone; clones share the permits.
///
/// ```
/// use veo3_core::RequestLimit;
///
/// let limit = RequestLimit::new(2);
/// let first = limit.acquire_blocking();
/// let _second = limit.acquire_blocking();
/// assert_eq!(limit.available(), 0);
/// drop(first);
/// assert_eq!(limit.available(), 1);
/// ```
#[derive(Clone)]
pub struct RequestLimit {
    shared: Arc<Shared>,
}

/// One exchange's right to run; the slot is given back when it is dropped.
#[must_use = "the exchange holds its slot only while the permit lives"]
pub struct RequestPermit {
    shared: Arc<Shared>,
}

/// The future of [`RequestLimit::acquire`]. Dropping it before it completes gives up its place
/// (or passes on a permit it had just been handed).
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    shared: Arc<Shared>,
    ticket: Option<u64>,
}

struct Shared {
    max: usize,
    state: Mutex<State>,
    handed: Condvar,
}

#[derive(Default)]
struct State {
    available: usize,
    next_ticket: u64,
    /// Waiters in arrival order: a ticket and, for an async waiter, its waker.
    queue: VecDeque<(u64, Option<Waker>)>,
    /// Tickets that were handed a permit and have not yet taken it.
    handed: HashSet<u64>,
}

impl RequestLimit {
    /// A cap of `max` concurrent exchanges (at least one).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            shared: Arc::new(Shared {
                max,
                state: Mutex::new(State {
                    available: max,
                    ..State::default()
                }),
                handed: Condvar::new(),
            }),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.shared.max
    }

    /// Permits free right now (for tests and diagnostics).
    pub fn available(&self) -> usize {
        self.shared.lock().available
    }

    /// Waits, asynchronously, for a free slot.
    pub fn acquire(&self) -> Acquire {
        Acquire {
            shared: self.shared.clone(),
            ticket: None,
        }
    }

    /// Waits, blocking the thread, for a free slot.
    pub fn acquire_blocking(&self) -> RequestPermit {
        let mut state = self.shared.lock();
        if state.available > 0 && state.queue.is_empty() {
            state.available -= 1;
            return self.shared.permit();
        }
        let ticket = state.take_ticket();
        state.queue.push_back((ticket, None));
        loop {
            state = self
                .shared
                .handed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            if state.handed.remove(&ticket) {
                return self.shared.permit();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock, so a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn permit(self: &Arc<Self>) -> RequestPermit {
        RequestPermit {
            shared: self.clone(),
        }
    }

    /// Gives a slot back: to the longest waiter if there is one, else to the pool.
    fn release(&self) {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some((ticket, waker)) => {
                state.handed.insert(ticket);
                drop(state);
                match waker {
                    Some(waker) => waker.wake(),
                    // Blocking waiters share the condvar; each checks its own ticket.
                    None => self.handed.notify_all(),
                }
            }
            None => state.available += 1,
        }
    }
}

impl State {
    fn take_ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        ticket
    }
}

impl Future for Acquire {
    type Output = RequestPermit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RequestPermit> {
        let this = self.get_mut();
        let mut state = this.shared.lock();
        match this.ticket {
            None => {
                if state.available > 0 && state.queue.is_empty() {
                    state.available -= 1;
                    drop(state);
                    return Poll::Ready(this.shared.permit());
                }
                let ticket = state.take_ticket();
                state.queue.push_back((ticket, Some(cx.waker().clone())));
                this.ticket = Some(ticket);
                Poll::Pending
            }
            Some(ticket) => {
                if state.handed.remove(&ticket) {
                    this.ticket = None;
                    drop(state);
                    return Poll::Ready(this.shared.permit());
                }
                if let Some((_, waker)) = state.queue.iter_mut().find(|(t, _)| *t == ticket) {
                    match waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        _ => *waker = Some(cx.waker().clone()),
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let mut state = self.shared.lock();
        if state.handed.remove(&ticket) {
            // A permit was handed to this waiter as it gave up: pass it on.
            drop(state);
            self.shared.release();
        } else {
            state.queue.retain(|(t, _)| *t != ticket);
        }
    }
}

impl Drop for RequestPermit {
    fn drop(&mut self) {
        self.shared.release();
    }
}

impl fmt::Debug for RequestLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLimit")
            .field("max", &self.shared.max)
            .field("available", &self.available())
            .finish()
    }
}

impl fmt::Debug for RequestPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestPermit")
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(future: &mut Acquire, waker: &Waker) -> Poll<RequestPermit> {
        Pin::new(future).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_released_permit_goes_to_the_longest_async_waiter_and_wakes_it() {
        let limit = RequestLimit::new(1);
        let held = limit.acquire_blocking();
        let (first_waker, second_waker) = (
            Arc::new(CountingWaker::default()),
            Arc::new(CountingWaker::default()),
        );
        let (w1, w2) = (
            Waker::from(first_waker.clone()),
            Waker::from(second_waker.clone()),
        );
        let mut first = limit.acquire();
        let mut second = limit.acquire();
        assert!(poll(&mut first, &w1).is_pending());
        assert!(poll(&mut second, &w2).is_pending());
        drop(held);
        assert_eq!(first_waker.0.load(Ordering::SeqCst), 1);
        assert_eq!(second_waker.0.load(Ordering::SeqCst), 0);
        assert!(poll(&mut second, &w2).is_pending(), "not its turn");
        let Poll::Ready(permit) = poll(&mut first, &w1) else {
            panic!("the first waiter was handed the permit");
        };
        drop(permit);
        assert!(poll(&mut second, &w2).is_ready());
    }

    #[test]
    fn a_waiter_dropped_after_being_handed_a_permit_passes_it_on() {
        let limit = RequestLimit::new(1);
        let held = limit.acquire_blocking();
        let mut first = limit.acquire();
        let mut second = limit.acquire();
        assert!(poll(&mut first, Waker::noop()).is_pending());
        assert!(poll(&mut second, Waker::noop()).is_pending());
        drop(held); // handed to `first`
        drop(first); // which gives it up
        assert!(poll(&mut second, Waker::noop()).is_ready());
        assert_eq!(limit.available(), 1, "the permit of `second` came back");
    }

    #[test]
    fn a_waiter_dropped_in_the_queue_leaves_no_trace() {
        let limit = RequestLimit::new(1);
        let held = limit.acquire_blocking();
        let mut waiting = limit.acquire();
        assert!(poll(&mut waiting, Waker::noop()).is_pending());
        drop(waiting);
        drop(held);
        assert_eq!(limit.available(), 1);
    }

    #[test]
    fn blocking_threads_never_exceed_the_cap() {
        let limit = RequestLimit::new(3);
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (limit, inside, most) = (limit.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _permit = limit.acquire_blocking();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(limit.available(), 3);
    }

    #[test]
    fn zero_is_read_as_one() {
        assert_eq!(RequestLimit::new(0).max(), 1);
    }
}
