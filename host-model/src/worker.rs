//! A device's worker thread: waits in `io_uring_enter` for the guest's
//! queue notifications and the host's completions together, serves them
//! under the device's lock, and goes back to waiting, which also submits
//! whatever the round queued (new I/O, the interrupt).
//!
//! After a round that found work it polls for [`POLL_WINDOW`] instead of
//! waiting, as Domain-0 does: its queues ask the guest for no
//! notifications (the backends' polled mode), and each turn reaps the CQ,
//! reads the available rings and submits without waiting. The two
//! placements then follow the same policy, and `xl bench` compares their
//! paths rather than their polling.

use protocol::domain::DomId;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shared::{Shared, State};
use crate::uring::Completion;
use protocol::trace::{Step, BATCH};

/// How long a stopping device waits for host I/O still in flight before
/// giving up on it (and leaking the ring, so the kernel never writes into
/// freed memory).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the worker polls after the last round that found work: the
/// window of Domain-0's main loop (`service-vm`'s `ADAPTIVE_POLL_NS`).
const POLL_WINDOW: Duration = Duration::from_micros(100);

/// The body of the worker thread. Long because it is one loop whose
/// rounds (reap, serve, poll or wait) share their state: split up, the
/// polling decision would be spread over functions.
pub(crate) fn run(shared: &Arc<Shared>, domid: DomId, vdev: &str) {
    let mut done = Vec::new();
    let mut stop_at = None;
    let mut last_work: Option<Instant> = None;
    let mut polling = false;
    loop {
        let (submit, tracer) = {
            let mut state = shared.lock();
            let State {
                model,
                platform,
                tap,
                ..
            } = &mut *state;
            platform.io.complete(&shared.ring, &mut done);
            let mut work = false;
            for completion in done.drain(..) {
                match (completion, tap.as_mut()) {
                    (Completion::Notify, _) => model.notify_all(platform),
                    (Completion::Request(tag, result), _) => model.complete(platform, tag, result),
                    (Completion::Stop, _) => {
                        stop_at.get_or_insert_with(Instant::now);
                    }
                    (Completion::TapReadable(result, flags), Some(tap)) => {
                        tap.poll_done(result, flags)
                    }
                    (Completion::TapWritten(slot, result), Some(tap)) => {
                        tap.write_done(slot, result)
                    }
                    (Completion::Timer, Some(tap)) => tap.timer_done(),
                    _ => continue,
                }
                work = true;
            }
            if polling {
                work |= model.poll(platform);
            }
            if let Some(tap) = tap.as_mut().filter(|_| stop_at.is_none()) {
                work |= tap.pump(model, platform);
            }
            let now = Instant::now();
            if work {
                last_work = Some(now);
            }
            let poll_on = stop_at.is_none() && last_work.is_some_and(|t| now - t < POLL_WINDOW);
            if poll_on != polling {
                polling = poll_on;
                // Leaving serves what was queued unannounced meanwhile;
                // if there was some, poll on.
                if model.set_polling(platform, polling) {
                    last_work = Some(now);
                    model.set_polling(platform, true);
                    polling = true;
                }
            }
            state.check_health(domid, vdev);
            let State { platform, tap, .. } = &mut *state;
            if stop_at.is_some() {
                let tap_done = tap
                    .as_mut()
                    .is_none_or(|tap| tap.wind_down(|entry| platform.io.queue(entry)));
                if platform.io.wind_down() && tap_done {
                    return;
                }
            }
            let submit = platform.io.push(&shared.ring);
            if submit || !polling {
                platform.io.count_enter();
            }
            (submit, platform.tracer)
        };
        if stop_at.is_some_and(|at| at.elapsed() > STOP_TIMEOUT) {
            tracing::error!("host model: host I/O still in flight at stop; leaking its ring");
            std::mem::forget(Arc::clone(shared));
            return;
        }
        if polling && !submit {
            std::hint::spin_loop();
            continue;
        }
        tracer.emit(Step::EnterStart, BATCH, u32::from(submit));
        let entered = if polling {
            shared.ring.submit()
        } else {
            shared.ring.submit_and_wait(1)
        };
        let returned = entered
            .as_ref()
            .map_or_else(|e| -e.raw_os_error().unwrap_or(0), |n| *n as i32);
        tracer.emit(Step::EnterEnd, BATCH, returned as u32);
        match entered {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                tracing::error!("host model: io_uring_enter: {e}; device stopped, ring leaked");
                std::mem::forget(Arc::clone(shared));
                return;
            }
        }
        if !polling {
            shared.wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }
}
