//! Bounds how long a plugin can wait inside one host call.
//!
//! Epoch interruption stops a plugin that computes too long, but it is only
//! checked while wasm code runs: a plugin blocked in a host call (the only
//! such calls a plugin can make are WASI clock waits, e.g. Rust's
//! `thread::sleep`) would hold its endpoint's thread for as long as it asked.
//! These shadow WASI's `subscribe-duration` and `subscribe-instant` so that a
//! wait longer than what is left of the current call's deadline traps at
//! once: a call, waits included, ends within its deadline plus one epoch
//! tick. Shorter waits behave as usual.

use super::host::HostState;
use std::time::Duration;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;

/// The WASI clock interface whose waits are bounded; components importing
/// any 0.2.x version link against it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces the two clock waits in `linker` with bounded ones.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store: StoreContextMut<'_, HostState>, (nanos,): (u64,)| {
        check(store.data(), Duration::from_nanos(nanos))?;
        let pollable: Resource<DynPollable> = store.data_mut().clocks().subscribe_duration(nanos)?;
        Ok((pollable,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store: StoreContextMut<'_, HostState>, (when,): (u64,)| {
        let now = store.data_mut().clocks().now()?;
        check(store.data(), Duration::from_nanos(when.saturating_sub(now)))?;
        let pollable: Resource<DynPollable> = store.data_mut().clocks().subscribe_instant(when)?;
        Ok((pollable,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

fn check(state: &HostState, wait: Duration) -> wasmtime::Result<()> {
    let left = state.call_time_left();
    if wait > left {
        let limit = state.call_deadline();
        wasmtime::bail!(
            "the plugin asked to wait {wait:?} with {left:?} left of its call; a call, waits included, may take at most {limit:?} (limits.call-deadline-ms)"
        );
    }
    Ok(())
}
