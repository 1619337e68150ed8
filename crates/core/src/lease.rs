//! Leases: at most one holder of a named duty (a service's relays and schedulers) at a time
//! among the processes sharing a store, with a fencing token that grows with every new term.
//!
//! A holder renews its lease well within `ttl`; a holder that stops renewing (killed, paused,
//! cut off) loses it once `ttl` passes, and the next taker's term has a higher token. Writes made
//! for the duty carry the [`Fence`] and the store refuses them ([`StoreError::Fenced`]) once the
//! token is no longer the lease's, so a deposed holder that wakes up late changes nothing.
//!
//! [`StoreError::Fenced`]: crate::store::StoreError::Fenced

use std::time::Duration;

/// A term of a held lease: what a write made for the lease's duty carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The lease's name.
    pub lease: String,
    /// Who holds it (one name per process).
    pub holder: String,
    /// The fencing token of this term: higher than every earlier term's.
    pub token: u64,
}

/// A lease as the store records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseState {
    pub holder: String,
    pub token: u64,
    /// How long until it expires unless renewed (zero once expired).
    pub expires_in: Duration,
}

impl LeaseState {
    pub fn expired(&self) -> bool {
        self.expires_in.is_zero()
    }
}

/// Most a lease may be taken for: a holder that vanishes keeps its duty this long at most.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3_600);

/// Checks a lease request's shape before it reaches a backend.
pub fn check_lease(name: &str, holder: &str, ttl: Duration) -> crate::store::Result<()> {
    use crate::store::StoreError;
    if name.is_empty() || name.len() > 200 {
        return Err(StoreError::InvalidAppend(
            "a lease name must be 1 to 200 bytes".into(),
        ));
    }
    if holder.is_empty() || holder.len() > 200 {
        return Err(StoreError::InvalidAppend(
            "a lease holder must be 1 to 200 bytes".into(),
        ));
    }
    if ttl < Duration::from_millis(100) || ttl > MAX_LEASE_TTL {
        return Err(StoreError::InvalidAppend(format!(
            "a lease is taken for 100 ms to {} s, not {} ms",
            MAX_LEASE_TTL.as_secs(),
            ttl.as_millis()
        )));
    }
    Ok(())
}
