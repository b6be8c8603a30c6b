//! Bounds on what a SCIM client controls.

/// The media type of SCIM bodies (`application/json` is accepted too).
pub const CONTENT_TYPE: &str = "application/scim+json";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most resources in one list page (`count` is cut to it).
pub const MAX_COUNT: i64 = 200;
/// Resources in a list page when the client names no `count`.
pub const DEFAULT_COUNT: i64 = 100;
/// Most operations in one PATCH request.
pub const MAX_OPERATIONS: usize = 200;
/// Most members named in one request.
pub const MAX_MEMBERS: usize = 1000;
/// Longest text attribute, in characters (the columns' limit).
pub const MAX_TEXT: usize = 256;
/// Longest filter expression, in bytes.
pub const MAX_FILTER: usize = 1024;
/// Most `emails` of one user.
pub const MAX_EMAILS: usize = 20;
