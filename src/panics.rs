//! One clear line for a panicking handler.
//!
//! The SDK catches a handler's panic and reports it itself (the source, the
//! handler, the message and where it panicked), so the standard panic hook's
//! own report (`thread 'tokio-rt-worker' panicked at ...`, and a backtrace
//! with `RUST_BACKTRACE=1`) would only say the same again, looking like a
//! crash. [`install_hook`] (called by `setup_logging`, or by
//! [`crate::logging::report_handler_panics`] for a program with its own
//! subscriber) wraps the process's panic hook: a panic inside a handler the
//! SDK runs is only recorded for the SDK's report (its backtrace printed
//! only when `RUST_BACKTRACE` asks for one); every other panic goes to the
//! previous hook as before.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    /// Whether a handler the SDK guards is being polled on this thread.
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic happened, and its backtrace when
    /// `RUST_BACKTRACE` asks for one, for the SDK's report.
    static CAUGHT: RefCell<Option<Caught>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Wraps the process's panic hook (once; later calls do nothing).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_HANDLER.with(Cell::get) {
                return previous(info);
            }
            let backtrace = std::backtrace::Backtrace::capture();
            let caught = Caught {
                location: info.location().map(ToString::to_string),
                backtrace: (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
                    .then(|| backtrace.to_string()),
            };
            CAUGHT.with(|c| *c.borrow_mut() = Some(caught));
        }));
    });
}

/// What the hook kept of a panic in a guarded handler.
#[derive(Default)]
pub(crate) struct Caught {
    /// `file:line:column`.
    pub(crate) location: Option<String>,
    /// The backtrace, when `RUST_BACKTRACE` asked for one.
    pub(crate) backtrace: Option<String>,
}

/// What the hook kept of the panic just caught on this thread (nothing when
/// the hook is not installed).
pub(crate) fn take_caught() -> Caught {
    CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default()
}

/// A handler's future, marked as guarded while it is polled.
pub(crate) struct Guarded<F>(pub(crate) F);

impl<F: Future + Unpin> Future for Guarded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = IN_HANDLER.with(|f| f.replace(true));
        // Restored whether the poll returns or unwinds.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                IN_HANDLER.with(|f| f.set(self.0));
            }
        }
        let _restore = Restore(outer);
        Pin::new(&mut self.0).poll(cx)
    }
}
