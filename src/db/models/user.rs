use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{AccountState, ManagedBy, OrgId, UserId},
    schema::{orgs, users},
};

diesel::define_sql_function!(
    /// SQL `lower(text)`, to compare emails whatever their case.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

/// Someone who signs in; belongs to exactly one org.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub email: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: OffsetDateTime,
    /// The user's identity at the org's IdP, once known.
    pub oidc_issuer: Option<String>,
    pub oidc_subject: Option<String>,
    pub state: AccountState,
    pub state_changed_at: Option<OffsetDateTime>,
    /// Who changed the state last, as the audit log names them.
    pub state_changed_by: Option<String>,
    pub deleted_at: Option<OffsetDateTime>,
    pub managed_by: ManagedBy,
    /// May sign in with a password although the org has SSO.
    pub break_glass: bool,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Bumped by every change: the SCIM resource's version.
    pub version: i64,
    pub updated_at: OffsetDateTime,
    /// SCIM `name.formatted` as the IdP set it.
    pub name_formatted: Option<String>,
    /// SCIM `emails` as the IdP set them (`None`: never set).
    pub emails: Option<serde_json::Value>,
    /// The IdP removed `active`: it is not shown (the state is unchanged).
    pub active_unassigned: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("is_admin", &self.is_admin)
            .field("state", &self.state)
            .field("managed_by", &self.managed_by)
            .finish()
    }
}

/// A user to insert.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub org_id: OrgId,
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub managed_by: ManagedBy,
}

impl User {
    /// Inserts a user; an email already used in the org (any case) is a unique violation.
    pub async fn create(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(new)
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .filter(NotDeleted)
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The user with this email inside one org, whatever the email's case.
    pub async fn find_by_email(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        email: &str,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .filter(lower(users::email).eq(email.to_lowercase()))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Every account with this email, across orgs (at sign-in, before the org is known), with
    /// the slug of its org.
    pub async fn find_all_by_email(
        conn: &mut AsyncPgConnection,
        email: &str,
    ) -> QueryResult<Vec<(User, String)>> {
        users::table
            .inner_join(orgs::table)
            .filter(NotDeleted)
            .filter(lower(users::email).eq(email.to_lowercase()))
            .order(orgs::slug)
            .limit(20)
            .select((User::as_select(), orgs::slug))
            .load(conn)
            .await
    }

    /// The user of `org` known to `issuer` as `subject`.
    pub async fn find_by_oidc(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        issuer: &str,
        subject: &str,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .filter(users::oidc_issuer.eq(issuer))
            .filter(users::oidc_subject.eq(subject))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The user of `org` with this id (another org's user is "not found").
    pub async fn find_in_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        id: UserId,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .filter(users::id.eq(id))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The user of `org` with this id, locked (`FOR UPDATE`) until the transaction ends: state
    /// changes of one user then happen one after the other, and a sign-in that is creating a
    /// session waits for them (see [`crate::db::models::SessionRecord::insert`]).
    pub async fn lock_in_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        id: UserId,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .filter(users::id.eq(id))
            .select(User::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// Makes a suspended user active again, says who did it and bumps the version. Only
    /// [`crate::revocation::set_state`] calls it, which audits; suspending and deleting are part
    /// of the revocation statement itself.
    pub async fn reactivate(
        conn: &mut AsyncPgConnection,
        id: UserId,
        by: &str,
    ) -> QueryResult<User> {
        let now = OffsetDateTime::now_utc();
        diesel::update(users::table.find(id))
            .set((
                users::state.eq(AccountState::Active),
                users::state_changed_at.eq(now),
                users::state_changed_by.eq(by),
                users::deleted_at.eq(None::<OffsetDateTime>),
                users::version.eq(users::version + 1),
                users::updated_at.eq(now),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    /// Sets the break-glass flag (password sign-in although the org has SSO).
    pub async fn set_break_glass(
        conn: &mut AsyncPgConnection,
        id: UserId,
        on: bool,
    ) -> QueryResult<User> {
        diesel::update(users::table.find(id))
            .set((
                users::break_glass.eq(on),
                users::version.eq(users::version + 1),
                users::updated_at.eq(OffsetDateTime::now_utc()),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    /// Purges users deleted before `cutoff`, with their todos, tokens and memberships (the
    /// audit log keeps its rows, without the user); returns how many.
    pub async fn purge_deleted(
        conn: &mut AsyncPgConnection,
        cutoff: OffsetDateTime,
    ) -> QueryResult<usize> {
        diesel::delete(
            users::table
                .filter(users::state.eq(AccountState::Deleted))
                .filter(users::deleted_at.lt(cutoff)),
        )
        .execute(conn)
        .await
    }

    /// Links the user to their identity at the org's IdP.
    pub async fn set_oidc_identity(
        conn: &mut AsyncPgConnection,
        id: UserId,
        issuer: &str,
        subject: &str,
    ) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::oidc_issuer.eq(issuer),
                users::oidc_subject.eq(subject),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn set_password_hash(
        conn: &mut AsyncPgConnection,
        id: UserId,
        hash: &str,
    ) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::password_hash.eq(hash))
            .execute(conn)
            .await
            .map(drop)
    }

    /// The org's users, by email.
    pub async fn list_for_org(conn: &mut AsyncPgConnection, org: OrgId) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .order(users::email)
            .select(User::as_select())
            .load(conn)
            .await
    }

    /// One page of the org's users by email, those whose email contains `search` and who are
    /// in `state` (each if given), and how many match in all.
    pub async fn page_for_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        search: Option<&str>,
        state: Option<AccountState>,
        offset: i64,
        limit: i64,
    ) -> QueryResult<(Vec<User>, i64)> {
        let matching = || {
            let mut query = users::table
                .filter(users::org_id.eq(org))
                .filter(NotDeleted)
                .into_boxed();
            if let Some(search) = search {
                let pattern = format!("%{}%", escape_like(search));
                query = query.filter(users::email.ilike(pattern).escape('\\'));
            }
            if let Some(state) = state {
                query = query.filter(users::state.eq(state));
            }
            query
        };
        let total = matching().count().get_result(conn).await?;
        let page = matching()
            .order(users::email)
            .offset(offset)
            .limit(limit)
            .select(User::as_select())
            .load(conn)
            .await?;
        Ok((page, total))
    }

    /// Locks the org's admins (`FOR UPDATE`) until the transaction ends and returns them: two
    /// role changes at once then cannot each count the other as the admin who remains.
    pub async fn lock_admins(conn: &mut AsyncPgConnection, org: OrgId) -> QueryResult<Vec<UserId>> {
        users::table
            .filter(users::org_id.eq(org))
            .filter(NotDeleted)
            .filter(users::is_admin)
            .select(users::id)
            .for_update()
            .load(conn)
            .await
    }

    /// Sets the admin role; only [`crate::revocation::set_admin`] calls it, which announces it.
    pub async fn set_admin(
        conn: &mut AsyncPgConnection,
        id: UserId,
        admin: bool,
    ) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::is_admin.eq(admin))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Those of `ids` who are admins.
    pub async fn admins_among(
        conn: &mut AsyncPgConnection,
        ids: &[UserId],
    ) -> QueryResult<Vec<UserId>> {
        users::table
            .filter(users::id.eq_any(ids))
            .filter(NotDeleted)
            .filter(users::is_admin)
            .select(users::id)
            .load(conn)
            .await
    }

    pub async fn count(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
        users::table
            .filter(NotDeleted)
            .count()
            .get_result(conn)
            .await
    }
}

/// `text` with the `LIKE` wildcards `%` and `_` (and the escape character) taken literally.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Users that exist for everyone but the sweeper: `users.state <> 'deleted'`, the constant written into the SQL text. The unique indexes on a
/// user's email, IdP identity and SCIM `externalId` are partial, `WHERE state <> 'deleted'`,
/// and a plan may use them only where the query says the same: a bound `$n` does not, once the
/// plan is generic. The revocation lane plans generically (see [`crate::priority`]), so with a
/// bound state a lookup by email read every user of the table.
#[derive(Clone, Copy, Debug, diesel::query_builder::QueryId, diesel::expression::ValidGrouping)]
pub struct NotDeleted;

impl diesel::Expression for NotDeleted {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> diesel::AppearsOnTable<QS> for NotDeleted where users::state: diesel::AppearsOnTable<QS> {}

impl<QS> diesel::SelectableExpression<QS> for NotDeleted where
    users::state: diesel::SelectableExpression<QS>
{
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for NotDeleted {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        users::state.walk_ast(out.reborrow())?;
        out.push_sql(" <> '");
        out.push_sql(AccountState::Deleted.as_str());
        out.push_sql("'");
        Ok(())
    }
}
