//! How the process allocates: set once, first thing in `main`, before any thread or database.
//!
//! The binary's allocator is mimalloc, not glibc's malloc: under the platform's many threads
//! (HTTP workers, tokio, one thread per SQLite connection) glibc's allocator took about a
//! quarter of all CPU in `perf` profiles of `veritrace bench`, in arena locks and chunk
//! consolidation. SQLite is C and would still use glibc's malloc, so it is given mimalloc too.

use std::ffi::{c_int, c_void};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Everything below, in order.
pub fn configure() {
    without_transparent_huge_pages();
    sqlite_on_mimalloc();
}

/// No transparent huge pages for this process. mimalloc maps its memory in 2 MiB-aligned
/// regions and asks the kernel for huge pages (`madvise`); the kernel then zeroes a whole 2 MiB
/// page at the first touch of each region, and mimalloc hands regions back soon after they
/// empty, so that repeats. In `perf` profiles of `veritrace bench` at one event per request,
/// zeroing those pages took 16 % of all CPU, and the process peaked at 470 MB of RSS against
/// 130 MB without them.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and touches no memory of ours. If
    // it fails (a kernel without it), huge pages stay as they were, which is only slower.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

// mimalloc's C functions, linked in by the `mimalloc` crate.
unsafe extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_usable_size(p: *const c_void) -> usize;
    fn mi_good_size(size: usize) -> usize;
}

unsafe extern "C" fn sqlite_malloc(n: c_int) -> *mut c_void {
    // SAFETY: SQLite asks for a positive size and frees the block through `sqlite_free`.
    unsafe { mi_malloc(usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn sqlite_free(p: *mut c_void) {
    // SAFETY: `p` came from `sqlite_malloc` or `sqlite_realloc` (or is null).
    unsafe { mi_free(p) }
}

unsafe extern "C" fn sqlite_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as `sqlite_free`.
    unsafe { mi_realloc(p, usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    // SAFETY: as `sqlite_free`.
    c_int::try_from(unsafe { mi_usable_size(p) }).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn sqlite_roundup(n: c_int) -> c_int {
    // SAFETY: a pure function of its argument.
    let rounded = unsafe { mi_good_size(usize::try_from(n).unwrap_or(0)) };
    c_int::try_from(rounded).unwrap_or(n)
}

unsafe extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    libsqlite3_sys::SQLITE_OK
}

unsafe extern "C" fn sqlite_shutdown(_: *mut c_void) {}

/// SQLite allocates through mimalloc, and keeps no allocation statistics. In `perf` profiles of
/// `veritrace bench` its allocations through glibc waited on glibc's arena locks (a row's
/// values are copied on a connection's thread and freed on another), and the statistics take
/// one process-wide mutex around every allocation, which the connections' threads contend for.
fn sqlite_on_mimalloc() {
    let methods = libsqlite3_sys::sqlite3_mem_methods {
        xMalloc: Some(sqlite_malloc),
        xFree: Some(sqlite_free),
        xRealloc: Some(sqlite_realloc),
        xSize: Some(sqlite_size),
        xRoundup: Some(sqlite_roundup),
        xInit: Some(sqlite_init),
        xShutdown: Some(sqlite_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: called before SQLite is initialised (no connection is open yet), from one
    // thread; SQLite copies `methods`. If SQLite refuses (already initialised), it keeps its
    // defaults, which are only slower.
    unsafe {
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_MALLOC,
            &methods as *const libsqlite3_sys::sqlite3_mem_methods,
        );
    }
}
