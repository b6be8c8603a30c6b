//! One module per scenario.

pub mod fanout;
pub mod fanout_nginx;
pub mod notify_cost;
pub mod org_logout;
pub mod pages;
pub mod scim_deactivate;
pub mod scim_filter;
pub mod sessions_table;
pub mod signin_soak;
pub mod ssf;
pub mod ual;
pub mod ual_big;
pub mod ual_under_load;
