//! Ctrl-C during generation: the first SIGINT asks `generate` to stop before the next
//! token, so what was printed stays printed and the run ends with its usual summary; a
//! second SIGINT ends the process at once, as users expect when something hangs.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for since the last `reset`.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Ask for a stop (what the signal handler does; also for embedding programs).
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

pub fn reset() {
    REQUESTED.store(false, Ordering::Relaxed);
}

#[cfg(unix)]
extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and _exit on the second signal.
    if REQUESTED.swap(true, Ordering::Relaxed) {
        // SAFETY: _exit is async-signal-safe and ends the process without unwinding.
        unsafe { libc::_exit(130) }
    }
}

/// Route SIGINT to `request` (Unix; elsewhere Ctrl-C keeps its default effect).
pub fn install_handler() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic and calls _exit, both signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}
