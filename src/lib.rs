//! ual-todo: a todo app that answers Universal Logout. When an identity provider says a user must
//! be signed out everywhere, every session and token of theirs ends at once.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod drain;
pub mod error;
pub mod flash;
pub mod live;
pub mod metrics;
pub mod page;
pub mod prefetch;
pub mod priority;
pub mod rate_limit;
pub mod revocation;
pub mod routes;
pub mod scim;
pub mod secret_box;
pub mod secret_token;
pub mod session_expiry;
pub mod session_store;
pub mod signed_cookie;
pub mod ssf;
pub mod startup;
pub mod sweeper;
pub mod telemetry;
pub mod time_slice;
pub mod user_agent;
