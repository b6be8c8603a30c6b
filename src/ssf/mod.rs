//! The Shared Signals receiver (SSF 1.0, CAEP 1.0, RISC 1.0): Security Event Tokens from an
//! org's transmitter end sessions, change account states and emails, through the one
//! revocation path. [`set`] verifies a SET, [`event`] reads what it asks for and whom it names,
//! [`effect`] makes it happen, [`receive`] does all three for one SET however it came ([`counts`] counts it);
//! [`client`] reads a transmitter's configuration and calls its endpoints, [`manage`] sets the
//! stream up there and reads its status, and [`poller`] fetches polled streams' SETs.

pub mod client;
pub mod counts;
pub mod effect;
pub mod event;
pub mod manage;
pub mod poller;
pub mod receive;
pub mod set;
