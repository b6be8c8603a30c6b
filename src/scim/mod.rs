//! SCIM 2.0 (RFC 7643, RFC 7644), the protocol parts: errors, filters, list pages, PATCH
//! operations, resource rendering and the discovery documents. The routes under `/scim/v2`
//! (`routes::scim`) put them to work on the database.

pub mod emails;
pub mod error;
pub mod etag;
pub mod filter;
pub mod group_draft;
pub mod limits;
pub mod list;
pub mod patch;
pub mod resource;
pub mod schemas;
pub mod search;
pub mod user_draft;
