//! zygote's pool sizing as pure code: how many warm zygotes a profile
//! should hold, and a simulator that proves it against the alternatives.
//!
//! No I/O, no async, no clock: every call takes the time (seconds, from any
//! origin) as a value, so the daemon drives it with its monotonic clock and
//! the simulator with a simulated one. The pieces:
//!
//! * [`models`]: online forecasts of claims per bin (EWMA, Holt,
//!   Holt-Winters with a daily season);
//! * [`histogram`]: the idle-time histogram of Azure's hybrid-histogram
//!   policy, for sparse traffic;
//! * [`forecast`]: a profile's claim history, its models, and the choice
//!   of model by rolling forecast error;
//! * [`policy`]: the design's forecast rule, the daemon's first
//!   recent-claims rule, and the fixed and keep-alive baselines;
//! * [`trace`]: claim arrival traces (built-in generators and a file
//!   format); [`sim`]: the trace-replay simulator.
//!
//! Why hand-written models rather than an ML runtime: see docs/pool-sizing.md.

pub mod forecast;
pub mod histogram;
pub mod models;
pub mod policy;
mod rng;
pub mod sim;
pub mod trace;

pub use forecast::{Forecast, ForecastParams, Forecaster, ModelKind};
pub use policy::{Bounds, Decision, Fixed, ForecastPolicy, ForecastRule, KeepAlive, Policy, Reason, RecentClaims};
