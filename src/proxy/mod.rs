//! How well cheap signals rank architectures.
//!
//! - [`fidelity`] (`seki proxy check`): a short training against a longer
//!   one (or the table's 12-epoch validation against its 200-epoch test).
//! - [`zero_cost`] (`seki proxy zc`): untrained-network proxies (synflow,
//!   NASWOT, ...) against the table's accuracies or trained scores.

pub mod fidelity;
pub mod zero_cost;

pub use fidelity::*;
