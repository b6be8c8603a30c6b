//! The queries SCIM makes on `users`: search by filter, create and update a provisioned user.
//! State changes go through [`crate::revocation::set_state`], never here.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use super::user::{NotDeleted, User, lower};
use crate::db::{
    ids::{ManagedBy, OrgId, UserId},
    schema::users,
};

/// A condition on users; a search matches those meeting all of its conditions.
#[derive(Clone, Debug)]
pub enum UserCriterion {
    /// `None`: an id that is no UUID, which matches nobody.
    Id(Option<UserId>),
    /// The email, whatever its case.
    Email(String),
    ExternalId(String),
    DisplayName(String),
}

/// The attributes a SCIM client sets on a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAttributes {
    pub email: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `name.formatted` as set (`None`: derived).
    pub name_formatted: Option<String>,
    /// `emails` as set, a JSON array (`None`: never set, derived from the `userName`).
    pub emails: Option<serde_json::Value>,
    /// The IdP removed `active`: not shown, the state unchanged.
    pub active_unassigned: bool,
}

impl UserAttributes {
    /// The attributes `user` has now.
    pub fn of(user: &User) -> UserAttributes {
        UserAttributes {
            email: user.email.clone(),
            external_id: user.external_id.clone(),
            display_name: user.display_name.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            name_formatted: user.name_formatted.clone(),
            emails: user.emails.clone(),
            active_unassigned: user.active_unassigned,
        }
    }
}

type Boxed<'a> = users::BoxedQuery<'a, diesel::pg::Pg>;

impl User {
    /// Inserts a user provisioned by the org's IdP (no password: they sign in with SSO); an
    /// email already used in the org (any case) is a unique violation.
    pub async fn create_provisioned(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        attributes: &UserAttributes,
    ) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values((
                users::org_id.eq(org),
                users::email.eq(&attributes.email),
                users::is_admin.eq(false),
                users::managed_by.eq(ManagedBy::Scim),
                users::external_id.eq(&attributes.external_id),
                users::display_name.eq(&attributes.display_name),
                users::given_name.eq(&attributes.given_name),
                users::family_name.eq(&attributes.family_name),
                users::name_formatted.eq(&attributes.name_formatted),
                users::emails.eq(&attributes.emails),
                users::active_unassigned.eq(attributes.active_unassigned),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    /// Sets a user's SCIM attributes, makes the IdP its manager and bumps its version.
    pub async fn set_attributes(
        conn: &mut AsyncPgConnection,
        id: UserId,
        attributes: &UserAttributes,
    ) -> QueryResult<User> {
        diesel::update(users::table.find(id))
            .set((
                users::email.eq(&attributes.email),
                users::external_id.eq(&attributes.external_id),
                users::display_name.eq(&attributes.display_name),
                users::given_name.eq(&attributes.given_name),
                users::family_name.eq(&attributes.family_name),
                users::name_formatted.eq(&attributes.name_formatted),
                users::emails.eq(&attributes.emails),
                users::active_unassigned.eq(attributes.active_unassigned),
                users::managed_by.eq(ManagedBy::Scim),
                users::version.eq(users::version + 1),
                users::updated_at.eq(OffsetDateTime::now_utc()),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    /// Bumps the version of `ids` (users of `org`), whose SCIM resource changed without a
    /// change of their own row: a user lists their `groups`, so joining, leaving or a rename
    /// of a group is a new version of each member.
    pub async fn bump_versions(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        ids: &[UserId],
    ) -> QueryResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        diesel::update(
            users::table
                .filter(users::org_id.eq(org))
                .filter(users::id.eq_any(ids)),
        )
        .set((
            users::version.eq(users::version + 1),
            users::updated_at.eq(OffsetDateTime::now_utc()),
        ))
        .execute(conn)
        .await
        .map(drop)
    }

    /// One page (by creation, then id) of the org's users meeting every criterion, and how
    /// many do in all.
    pub async fn search(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        criteria: &[UserCriterion],
        offset: i64,
        limit: i64,
    ) -> QueryResult<(Vec<User>, i64)> {
        let matching = || {
            criteria.iter().fold(
                users::table
                    .filter(users::org_id.eq(org))
                    .filter(NotDeleted)
                    .into_boxed(),
                |query: Boxed<'_>, criterion| match criterion {
                    UserCriterion::Id(Some(id)) => query.filter(users::id.eq(*id)),
                    UserCriterion::Id(None) => {
                        query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>("false"))
                    }
                    UserCriterion::Email(email) => {
                        query.filter(lower(users::email).eq(email.to_lowercase()))
                    }
                    UserCriterion::ExternalId(id) => {
                        query.filter(users::external_id.eq(id.clone()))
                    }
                    UserCriterion::DisplayName(name) => {
                        query.filter(users::display_name.eq(name.clone()))
                    }
                },
            )
        };
        let total = matching().count().get_result(conn).await?;
        if limit == 0 {
            return Ok((Vec::new(), total));
        }
        let page = matching()
            .order((users::created_at, users::id))
            .offset(offset)
            .limit(limit)
            .select(User::as_select())
            .load(conn)
            .await?;
        Ok((page, total))
    }

    /// Those of `ids` who are users of `org` (not deleted).
    pub async fn existing_in_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        ids: &[UserId],
    ) -> QueryResult<Vec<UserId>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .filter(users::id.eq_any(ids))
            .select(users::id)
            .load(conn)
            .await
    }
}
