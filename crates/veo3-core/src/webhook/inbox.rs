//! The rendezvous between a callback receiver and the waits that want to finish early.
//!
//! One `Mutex` guards everything, and both kinds of waiter hang off it: async waiters leave a
//! `Waker`, blocking waiters sleep on the `Condvar`. That keeps the core free of any async
//! runtime while serving the async client (tokio) and the blocking client (threads) alike.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use veo3_types::CallbackKind;

use super::VerifiedCallback;
use crate::error::WaitTarget;
use crate::time::BlockingSleeper;

/// Where a receiver drops verified callbacks and waiters pick up the ones for their task.
///
/// * [`Inbox::deliver`] hands a callback to every waiter currently waiting for its task and
///   its kind; if none is waiting, the inbox keeps it (the latest per task and kind, at most
///   `capacity` of them, the oldest forgotten first) for the first waiter to come.
/// * [`Inbox::wait_for`] / [`Inbox::wait_until`] wait asynchronously,
///   [`Inbox::wait_timeout`] blocks the thread, [`Inbox::try_take`] does not wait.
///
/// Kinds: a 4K callback carries the *source* task's id, the same as that task's generation
/// callback ([`Callback::kind`](veo3_types::Callback::kind) tells them apart). The plain
/// methods take any kind; their `*_target` twins take only what a wait of that
/// [`WaitTarget`] is about ([`WaitTarget::accepts`]), so the generation callback of a task
/// never wakes the wait for its 4K version, nor the other way round, and neither consumes the
/// other's.
///
/// A callback is consumed by the wait it completes: a stale one (say, the generation callback
/// of a task whose 4K upgrade is now awaited) wakes one wait once, costs one confirming read,
/// and is gone. Clones share the same inbox.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::types::Callback;
/// use veo3_core::webhook::{Inbox, VerifiedCallback};
///
/// let inbox = Inbox::new();
/// let receiver_side = inbox.clone();
/// let body = br#"{"code":200,"msg":"ok","data":{"taskId":"t7"}}"#;
/// let callback = VerifiedCallback::new("t7", Callback::from_slice(body)?);
///
/// let receiver = std::thread::spawn(move || receiver_side.deliver(callback));
/// // Blocks until the callback arrives (or 10 minutes pass).
/// let arrived = inbox.wait_timeout("t7", Duration::from_secs(600));
/// assert_eq!(arrived.map(|c| c.task_id).as_deref(), Some("t7"));
/// receiver.join().unwrap();
/// # Ok::<(), veo3_core::types::DecodeError>(())
/// ```
#[derive(Clone)]
pub struct Inbox {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on every delivery; blocking waiters re-check their slot.
    delivered: Condvar,
}

struct State {
    capacity: usize,
    /// Callbacks nobody was waiting for, the latest per task and kind.
    kept: HashMap<(String, CallbackKind), VerifiedCallback>,
    /// Keys of `kept`, oldest first, for eviction.
    kept_order: VecDeque<(String, CallbackKind)>,
    /// Registered waits, by id.
    waiters: HashMap<u64, Slot>,
    next_waiter: u64,
}

struct Slot {
    task_id: String,
    /// What the wait is about; `None`: any kind.
    target: Option<WaitTarget>,
    arrived: Option<VerifiedCallback>,
    waker: Option<Waker>,
}

impl Inbox {
    /// The default number of tasks whose unclaimed callbacks are kept.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// An empty inbox keeping unclaimed callbacks for up to [`Inbox::DEFAULT_CAPACITY`] tasks.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty inbox keeping unclaimed callbacks for up to `capacity` tasks and kinds (at
    /// least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    capacity: capacity.max(1),
                    kept: HashMap::new(),
                    kept_order: VecDeque::new(),
                    waiters: HashMap::new(),
                    next_waiter: 0,
                }),
                delivered: Condvar::new(),
            }),
        }
    }

    /// Hands `callback` to every wait currently waiting for its task and kind, or keeps it
    /// for the first one to come. Returns how many waits it completed (0 when it was kept).
    pub fn deliver(&self, callback: VerifiedCallback) -> usize {
        let mut completed = 0;
        let mut wakers = Vec::new();
        let kind = callback.callback.kind();
        let mut state = self.lock();
        for slot in state.waiters.values_mut() {
            if slot.task_id == callback.task_id && accepts(slot.target, kind) {
                slot.arrived = Some(callback.clone());
                wakers.extend(slot.waker.take());
                completed += 1;
            }
        }
        if completed == 0 {
            state.keep(callback);
        }
        drop(state);
        // Blocking waits re-check their slot; async waits are woken outside the lock so a
        // waker that polls inline cannot deadlock on it.
        self.shared.delivered.notify_all();
        for waker in wakers {
            waker.wake();
        }
        completed
    }

    /// Takes the kept callback for `task_id` (any kind), if one arrived while nobody was
    /// waiting.
    pub fn try_take(&self, task_id: &str) -> Option<VerifiedCallback> {
        self.lock().take_kept(task_id, None)
    }

    /// [`Inbox::try_take`] of a callback a wait of `target` is about.
    pub fn try_take_target(&self, task_id: &str, target: WaitTarget) -> Option<VerifiedCallback> {
        self.lock().take_kept(task_id, Some(target))
    }

    /// A future resolving with the next callback for `task_id` (at once if one is kept).
    ///
    /// The wait is registered when this is called, not when first polled, so a callback
    /// delivered in between is not missed. Dropping the future unregisters it; a callback it
    /// had received but not yet returned goes back to the inbox.
    pub fn wait_for(&self, task_id: &str) -> WaitFor {
        self.register(task_id, None)
    }

    /// [`Inbox::wait_for`] a callback a wait of `target` is about (see [`WaitTarget::accepts`]).
    pub fn wait_for_target(&self, task_id: &str, target: WaitTarget) -> WaitFor {
        self.register(task_id, Some(target))
    }

    fn register(&self, task_id: &str, target: Option<WaitTarget>) -> WaitFor {
        let mut state = self.lock();
        let arrived = state.take_kept(task_id, target);
        let id = state.next_waiter;
        state.next_waiter = state.next_waiter.wrapping_add(1);
        state.waiters.insert(
            id,
            Slot {
                task_id: task_id.to_owned(),
                target,
                arrived,
                waker: None,
            },
        );
        WaitFor {
            inbox: self.clone(),
            id,
        }
    }

    /// Waits for the next callback for `task_id` or for `give_up` to complete, whichever
    /// comes first: `Some(callback)` or `None`.
    ///
    /// This is the race a hybrid wait runs on every round, with `give_up` the safety-poll
    /// sleep from the caller's runtime (e.g. `sleeper.sleep(interval)`); a callback that is
    /// already kept wins without polling `give_up` at all.
    pub fn wait_until<F: Future>(&self, task_id: &str, give_up: F) -> WaitUntil<F> {
        WaitUntil {
            wait: self.wait_for(task_id),
            give_up: Box::pin(give_up),
        }
    }

    /// [`Inbox::wait_until`] for a callback a wait of `target` is about.
    pub fn wait_until_target<F: Future>(
        &self,
        task_id: &str,
        target: WaitTarget,
        give_up: F,
    ) -> WaitUntil<F> {
        WaitUntil {
            wait: self.wait_for_target(task_id, target),
            give_up: Box::pin(give_up),
        }
    }

    /// Blocks the thread until a callback for `task_id` arrives (at once if one is kept) or
    /// `timeout` passes (`None`). For blocking clients; do not call it on an async runtime's
    /// thread.
    pub fn wait_timeout(&self, task_id: &str, timeout: Duration) -> Option<VerifiedCallback> {
        self.block_until(self.wait_for(task_id), timeout)
    }

    fn block_until(&self, wait: WaitFor, timeout: Duration) -> Option<VerifiedCallback> {
        let state = self.lock();
        let (mut state, _) = self
            .shared
            .delivered
            .wait_timeout_while(state, timeout, |state| {
                state
                    .waiters
                    .get(&wait.id)
                    .is_some_and(|slot| slot.arrived.is_none())
            })
            .unwrap_or_else(PoisonError::into_inner);
        let arrived = state
            .waiters
            .get_mut(&wait.id)
            .and_then(|slot| slot.arrived.take());
        drop(state);
        // `wait` unregisters on drop (nothing left to return to the inbox).
        drop(wait);
        arrived
    }

    /// The round of a blocking hybrid wait: sleeps `duration` on `sleeper`, but returns early
    /// with the callback for `task_id` if one arrives first (at once if one is kept).
    ///
    /// A sleeper that passes real time is not called at all: the thread blocks on the inbox
    /// for `duration` instead ([`Inbox::wait_timeout`]). A simulated one
    /// ([`BlockingSleeper::is_simulated`]) advances its clock by `duration`, and a callback
    /// delivered meanwhile (by the code the wait calls) is returned as if it had arrived at
    /// the end of the sleep.
    pub fn sleep_or_take(
        &self,
        sleeper: &dyn BlockingSleeper,
        task_id: &str,
        duration: Duration,
    ) -> Option<VerifiedCallback> {
        self.sleep_or_take_for(sleeper, task_id, None, duration)
    }

    /// [`Inbox::sleep_or_take`] for a callback a wait of `target` is about: the round of a
    /// blocking hybrid wait.
    pub fn sleep_or_take_target(
        &self,
        sleeper: &dyn BlockingSleeper,
        task_id: &str,
        target: WaitTarget,
        duration: Duration,
    ) -> Option<VerifiedCallback> {
        self.sleep_or_take_for(sleeper, task_id, Some(target), duration)
    }

    fn sleep_or_take_for(
        &self,
        sleeper: &dyn BlockingSleeper,
        task_id: &str,
        target: Option<WaitTarget>,
        duration: Duration,
    ) -> Option<VerifiedCallback> {
        if !sleeper.is_simulated() {
            return self.block_until(self.register(task_id, target), duration);
        }
        if let Some(kept) = self.lock().take_kept(task_id, target) {
            return Some(kept);
        }
        sleeper.sleep(duration);
        self.lock().take_kept(task_id, target)
    }

    /// How many callbacks are kept (unclaimed), counting each task and kind once.
    pub fn kept_len(&self) -> usize {
        self.lock().kept.len()
    }

    /// How many waits are registered.
    pub fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters (every update is a single insert/remove), so poisoning is ignored.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Inbox")
            .field("capacity", &state.capacity)
            .field("kept", &state.kept.len())
            .field("waiting", &state.waiters.len())
            .finish()
    }
}

/// Whether a wait of `target` (`None`: any) is about a callback of `kind`.
fn accepts(target: Option<WaitTarget>, kind: CallbackKind) -> bool {
    target.is_none_or(|target| target.accepts(kind))
}

impl State {
    fn keep(&mut self, callback: VerifiedCallback) {
        let key = (callback.task_id.clone(), callback.callback.kind());
        if self.kept.insert(key.clone(), callback).is_some() {
            // Replaced: move it to the back of the eviction order.
            self.kept_order.retain(|kept| *kept != key);
        } else if self.kept.len() > self.capacity {
            if let Some(oldest) = self.kept_order.pop_front() {
                self.kept.remove(&oldest);
            }
        }
        self.kept_order.push_back(key);
    }

    /// Takes a kept callback for `task_id` that a wait of `target` is about.
    fn take_kept(&mut self, task_id: &str, target: Option<WaitTarget>) -> Option<VerifiedCallback> {
        let key = CallbackKind::ALL
            .into_iter()
            .filter(|kind| accepts(target, *kind))
            .map(|kind| (task_id.to_owned(), kind))
            .find(|key| self.kept.contains_key(key))?;
        let taken = self.kept.remove(&key)?;
        self.kept_order.retain(|kept| *kept != key);
        Some(taken)
    }
}

/// The future of [`Inbox::wait_for`]: resolves with the next callback for its task.
///
/// `Unpin`, `Send` and `'static`, so it can be stored, spawned, or raced with `select!`.
#[must_use = "a wait does nothing unless polled"]
pub struct WaitFor {
    inbox: Inbox,
    id: u64,
}

impl Future for WaitFor {
    type Output = VerifiedCallback;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.inbox.lock();
        let Some(slot) = state.waiters.get_mut(&self.id) else {
            // Unreachable: only `Drop` unregisters. Stay pending rather than panic.
            return Poll::Pending;
        };
        if let Some(arrived) = slot.arrived.take() {
            return Poll::Ready(arrived);
        }
        match &mut slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        let mut state = self.inbox.lock();
        if let Some(slot) = state.waiters.remove(&self.id) {
            if let Some(unclaimed) = slot.arrived {
                // Delivered but never returned (e.g. the sleep won the race in the same
                // instant): give it back rather than lose it. A newer kept one wins.
                let key = (unclaimed.task_id.clone(), unclaimed.callback.kind());
                if !state.kept.contains_key(&key) {
                    state.keep(unclaimed);
                }
            }
        }
    }
}

impl fmt::Debug for WaitFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFor").field("id", &self.id).finish()
    }
}

/// The future of [`Inbox::wait_until`]: `Some(callback)` if one arrives first, `None` if the
/// give-up future completes first.
#[must_use = "a wait does nothing unless polled"]
pub struct WaitUntil<F> {
    wait: WaitFor,
    give_up: Pin<Box<F>>,
}

impl<F: Future> Future for WaitUntil<F> {
    type Output = Option<VerifiedCallback>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The callback is polled first, so one that is already there wins a tie.
        if let Poll::Ready(arrived) = Pin::new(&mut self.wait).poll(cx) {
            return Poll::Ready(Some(arrived));
        }
        match self.give_up.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for WaitUntil<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitUntil")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}
