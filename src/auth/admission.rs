//! Who may come in once they have proved who they are. A suspended user is refused at every
//! door (password, SSO, personal access tokens, the admin pages); in an org with single sign-on,
//! only break-glass users may use a password (IPSIE: non-federated sign-in is off by default).
//! The refusal is told only to someone who proved the identity, so it reveals nothing to others.

use crate::db::{
    ids::AccountState,
    models::{Org, User},
};

/// Why a user who proved who they are may not come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The account is suspended (or deleted while signing in).
    Suspended,
    /// The org signs in through its IdP and the user is not break-glass.
    SsoRequired,
}

impl Refusal {
    /// What the sign-in page tells the person.
    pub fn message(self) -> &'static str {
        match self {
            Self::Suspended => {
                "Your account is suspended by your organisation. Ask your organisation's administrator."
            }
            Self::SsoRequired => {
                "Your organisation signs in with single sign-on: use \u{201c}Sign in with SSO\u{201d}."
            }
        }
    }
}

/// Whether `user` may be let in at all (any door).
pub fn active(user: &User) -> Result<(), Refusal> {
    match user.state {
        AccountState::Active => Ok(()),
        AccountState::Suspended | AccountState::Deleted => Err(Refusal::Suspended),
    }
}

/// Whether `user` of `org` may sign in with a password.
pub fn password_sign_in(user: &User, org: &Org) -> Result<(), Refusal> {
    active(user)?;
    if org.has_sso() && !user.break_glass {
        return Err(Refusal::SsoRequired);
    }
    Ok(())
}
