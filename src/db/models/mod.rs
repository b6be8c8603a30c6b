//! One module per table: the row struct, the insert struct and the queries on it.

pub mod access_token;
pub mod group;
pub mod instance_secret;
pub mod known_device;
pub mod oidc_login;
pub mod org;
pub mod org_api_key;
pub mod org_logout;
pub mod revocation;
pub mod scim_token;
pub mod scim_user;
pub mod seen_jti;
pub mod session;
pub mod session_page;
pub mod ssf_stream;
pub mod todo;
pub mod user;

pub use access_token::AccessToken;
pub use group::{Group, GroupCriterion, Member, MemberDetails};
pub use instance_secret::InstanceSecret;
pub use oidc_login::OidcLogin;
pub use org::{NewOrg, Org};
pub use org_api_key::OrgApiKey;
pub use org_logout::OrgLogout;
pub use revocation::{Action, NewRevocation, Revocation, RevocationSource};
pub use scim_token::ScimToken;
pub use scim_user::{UserAttributes, UserCriterion};
pub use seen_jti::SeenJti;
pub use session::SessionRecord;
pub use ssf_stream::{Delivery, NewSsfStream, SsfStream, StreamStatus};
pub use todo::Todo;
pub use user::{NewUser, User};
