//! One module per scenario.

pub mod ual;
