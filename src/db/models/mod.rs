//! One module per table: the row struct, the insert struct and the queries on it.

pub mod org;
pub mod revocation;
pub mod session;
pub mod setting;
pub mod todo;
pub mod user;

pub use org::{NewOrg, Org};
pub use revocation::{NewRevocation, Revocation, RevocationSource};
pub use session::SessionRecord;
pub use setting::Setting;
pub use todo::Todo;
pub use user::{NewUser, User};
