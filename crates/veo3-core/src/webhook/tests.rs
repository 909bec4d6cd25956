//! The inbox: kept callbacks, async and blocking waiters, bounds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::*;

fn body_for(task_id: &str, code: i64, url: &str) -> Vec<u8> {
    format!(
        r#"{{"code":{code},"msg":"m","data":{{"taskId":"{task_id}","info":{{"resultUrls":["{url}"]}}}}}}"#
    )
    .into_bytes()
}

fn unsigned(task_id: &str, code: i64, url: &str) -> VerifiedCallback {
    let callback = Callback::from_slice(&body_for(task_id, code, url)).expect("valid body");
    VerifiedCallback::new(task_id, callback)
}

#[test]
fn a_new_callback_takes_the_given_task_id_and_signed_adds_the_signature() {
    let callback = Callback::from_slice(&body_for("in-body", 200, "u")).expect("valid body");
    let verified = VerifiedCallback::new("t1", callback);
    assert_eq!(verified.callback.task_id.as_deref(), Some("t1"));
    assert!(!verified.is_authenticated());
    let signed = verified.signed(1000, 1);
    assert_eq!((signed.signed_at, signed.key_index), (Some(1000), Some(1)));
    assert!(signed.is_authenticated());
}

/// Counts wake-ups, to observe the `Waker` protocol without a runtime.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn a_callback_that_arrives_first_is_kept_for_the_first_waiter() {
    let inbox = Inbox::new();
    assert_eq!(inbox.deliver(unsigned("t1", 200, "u")), 0);
    assert_eq!(inbox.kept_len(), 1);
    let mut wait = inbox.wait_for("t1");
    let Poll::Ready(arrived) = poll_once(&mut wait, Waker::noop()) else {
        panic!("kept callback not returned at once");
    };
    assert_eq!(arrived.task_id, "t1");
    drop(wait);
    // Consumed: the next wait for the same task does not see it again.
    assert_eq!(inbox.kept_len(), 0);
    assert!(inbox.try_take("t1").is_none());
}

#[test]
fn a_waiting_future_is_woken_by_delivery_for_its_task_only() {
    let inbox = Inbox::new();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut wait = inbox.wait_for("t1");
    assert!(poll_once(&mut wait, &waker).is_pending());
    assert_eq!(inbox.waiting(), 1);

    assert_eq!(inbox.deliver(unsigned("other", 200, "u")), 0);
    assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    assert!(poll_once(&mut wait, &waker).is_pending());

    assert_eq!(inbox.deliver(unsigned("t1", 200, "u")), 1);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    assert!(matches!(poll_once(&mut wait, &waker), Poll::Ready(c) if c.task_id == "t1"));
    drop(wait);
    assert_eq!(inbox.waiting(), 0);
    assert_eq!(
        inbox.kept_len(),
        1,
        "only the other task's callback is kept"
    );
}

#[test]
fn concurrent_waiters_of_one_task_all_complete() {
    let inbox = Inbox::new();
    let mut first = inbox.wait_for("t1");
    let mut second = inbox.wait_for("t1");
    assert_eq!(inbox.deliver(unsigned("t1", 200, "u")), 2);
    assert!(poll_once(&mut first, Waker::noop()).is_ready());
    assert!(poll_once(&mut second, Waker::noop()).is_ready());
}

#[test]
fn a_dropped_wait_returns_its_unclaimed_callback() {
    let inbox = Inbox::new();
    let wait = inbox.wait_for("t1");
    inbox.deliver(unsigned("t1", 200, "u"));
    drop(wait);
    assert_eq!(inbox.waiting(), 0);
    assert!(inbox.try_take("t1").is_some());
}

#[test]
fn wait_until_reports_which_side_won() {
    let inbox = Inbox::new();
    // The give-up side completes at once: no callback.
    let mut wait = inbox.wait_until("t1", std::future::ready(()));
    assert!(matches!(
        poll_once(&mut wait, Waker::noop()),
        Poll::Ready(None)
    ));
    drop(wait);
    // A kept callback wins even against a give-up future that is already complete.
    inbox.deliver(unsigned("t1", 200, "u"));
    let mut wait = inbox.wait_until("t1", std::future::ready(()));
    assert!(matches!(
        poll_once(&mut wait, Waker::noop()),
        Poll::Ready(Some(_))
    ));
    // A pending give-up side leaves the wait open until the delivery.
    let mut wait = inbox.wait_until("t2", std::future::pending::<()>());
    assert!(poll_once(&mut wait, Waker::noop()).is_pending());
    inbox.deliver(unsigned("t2", 501, ""));
    assert!(
        matches!(poll_once(&mut wait, Waker::noop()), Poll::Ready(Some(c)) if c.task_id == "t2")
    );
}

#[test]
fn blocking_wait_returns_kept_callbacks_and_times_out_without_one() {
    let inbox = Inbox::new();
    assert!(inbox.wait_timeout("t1", Duration::ZERO).is_none());
    assert_eq!(inbox.waiting(), 0);
    inbox.deliver(unsigned("t1", 200, "u"));
    assert!(inbox.wait_timeout("t1", Duration::ZERO).is_some());
}

#[test]
fn blocking_wait_wakes_on_delivery_from_another_thread() {
    let inbox = Inbox::new();
    let sender = inbox.clone();
    let delivering = std::thread::spawn(move || {
        // Deliver only once the waiter is registered, so the callback reaches it as a waiter
        // rather than through the kept map.
        while sender.waiting() == 0 {
            std::thread::yield_now();
        }
        sender.deliver(unsigned("t1", 200, "u"))
    });
    let arrived = inbox.wait_timeout("t1", Duration::from_secs(600));
    assert_eq!(arrived.map(|c| c.task_id).as_deref(), Some("t1"));
    assert_eq!(delivering.join().expect("no panic"), 1);
}

#[test]
fn kept_callbacks_are_bounded_latest_per_task() {
    let inbox = Inbox::with_capacity(2);
    inbox.deliver(unsigned("t1", 200, "first"));
    inbox.deliver(unsigned("t2", 200, "u"));
    inbox.deliver(unsigned("t1", 200, "second"));
    assert_eq!(inbox.kept_len(), 2);
    // t2 is now the oldest and goes first.
    inbox.deliver(unsigned("t3", 200, "u"));
    assert_eq!(inbox.kept_len(), 2);
    assert!(inbox.try_take("t2").is_none());
    let latest = inbox.try_take("t1").expect("kept");
    assert_eq!(latest.callback.result_urls(), ["second"]);
    assert!(inbox.try_take("t3").is_some());
    assert_eq!(inbox.kept_len(), 0);
}
