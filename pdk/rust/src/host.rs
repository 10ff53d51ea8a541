//! The host imports (`pirn.input`, `pirn.output`, `pirn.log`), logging, and
//! the runtime behind the wasm exports.
//!
//! The imports exist only on `wasm32`; natively, [`log`] records lines for
//! [`take_logs`] instead, so knots can be unit-tested with `cargo test`.

use std::cell::Cell;

use crate::knot::Module;

/// A log level of `pirn.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 0
    Debug = 0,
    /// 1
    Info = 1,
    /// 2
    Warn = 2,
    /// 3
    Error = 3,
}

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "pirn")]
    extern "C" {
        #[link_name = "input"]
        pub fn pirn_input(ptr: *mut u8);
        #[link_name = "output"]
        pub fn pirn_output(ptr: *const u8, len: usize);
        #[link_name = "log"]
        pub fn pirn_log(level: i32, ptr: *const u8, len: usize);
    }
}

/// Sends a log line to the host, which records it in its structured log
/// with the run and knot ids. (Natively, the line is kept for
/// [`take_logs`].)
pub fn log(level: Level, msg: &str) {
    #[cfg(target_arch = "wasm32")]
    unsafe {
        sys::pirn_log(level as i32, msg.as_ptr(), msg.len());
    }
    #[cfg(not(target_arch = "wasm32"))]
    LOGS.with(|l| l.borrow_mut().push((level, msg.to_string())));
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static LOGS: std::cell::RefCell<Vec<(Level, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Returns and clears the lines this thread logged (native builds only: on
/// wasm they go to the host).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

thread_local! {
    static CURRENT: Cell<&'static str> = const { Cell::new("") };
}

/// Records the knot being run, for the panic message.
pub(crate) fn set_current(name: &'static str) {
    CURRENT.with(|c| c.set(name));
}

/// The runtime of the exports [`knots!`](crate::knots) generates.
#[doc(hidden)]
pub mod rt {
    use super::*;

    pub fn abi_version() -> i32 {
        crate::abi::ABI_VERSION
    }

    pub fn manifest(m: &Module) -> i32 {
        install_panic_hook();
        output(&m.manifest().encode());
        0
    }

    pub fn invoke(m: &Module, n: i32) -> i32 {
        install_panic_hook();
        if n < 0 {
            return 1;
        }
        let mut req = vec![0u8; n as usize];
        input(&mut req);
        let resp = m.invoke(&req);
        drop(req);
        output(&resp);
        0
    }

    fn input(buf: &mut [u8]) {
        #[cfg(target_arch = "wasm32")]
        unsafe {
            sys::pirn_input(buf.as_mut_ptr());
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = buf;
    }

    fn output(b: &[u8]) {
        #[cfg(target_arch = "wasm32")]
        unsafe {
            sys::pirn_output(b.as_ptr(), b.len());
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = b;
    }

    /// Makes a panic log its message (with the knot's name) at level error
    /// before the module traps: with `panic = "abort"` a panic cannot be
    /// turned into an err response, so the host reports a `Trap`.
    fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let knot = CURRENT.with(|c| c.get());
                log(Level::Error, &format!("knot {:?}: {}", knot, info));
                prev(info); // on WASI: the message on stderr, which the Trap's trace shows
            }));
        });
    }
}
