//! Integration tests against the real PostgreSQL: every test gets its own database, cloned from a
//! migrated template, and its own app on a free port. One binary keeps link times down.

mod account_states;
mod admin;
mod admin_roles;
mod admin_states;
mod auth;
mod backchannel;
mod cli;
mod fuzz;
mod helpers;
mod idp;
mod idp_fetch;
mod idp_settings;
mod limits;
mod live;
mod load;
mod logs;
mod metrics;
mod migrations;
mod oidc_provider;
mod outage;
mod pages;
mod proxy;
mod session_store;
mod shutdown;
mod signin_limits;
mod sso;
mod sso_sl1;
mod sso_start;
mod todos;
mod tokens;
mod ual;
