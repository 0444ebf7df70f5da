//! How grocery's allocator (mimalloc, the global allocator of the `grocery`
//! binary and of the benches that run its components) is tuned.

/// mimalloc's `purge_delay` option (its index in `mi_option_t`, v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay before going back to the OS.
pub const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Freed pages go back to the OS [`PURGE_DELAY_MS`] after they are freed,
/// not mimalloc's 10 ms. The gateway's per-request trees come and go in
/// bursts. Giving pages back at once kept RSS ~5 MB lower on the federation
/// bench, but once the gateway served from a thread per core, every
/// give-back meant a TLB-shootdown IPI and fresh page faults: ~15 % of its
/// CPU. At 100 ms: 1.3-1.6 ms of gateway CPU per request instead of
/// 2.1-2.3, at 61-71 MB peak instead of 57-61. Call it first thing in `main`.
pub fn give_pages_back_late() {
    // SAFETY: setting an option is thread-safe and takes plain integers.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
    };
}
