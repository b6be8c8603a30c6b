//! Groups provisioned by an org's IdP over SCIM, and their members (users of the same org).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use super::user::{NotDeleted, lower};
use crate::db::{
    ids::{GroupId, OrgId, UserId},
    schema::{group_members, groups, users},
};

/// A group of an org's users, named by its IdP.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = groups, check_for_backend(diesel::pg::Pg))]
pub struct Group {
    pub id: GroupId,
    pub org_id: OrgId,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Bumped by every change: the SCIM resource's version.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A member of a group, as a group lists it (and a user lists its groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub group_id: GroupId,
    pub group_name: String,
    pub user_id: UserId,
    pub email: String,
    /// `members.type` and `members.display` as the IdP set them.
    pub member_type: Option<String>,
    pub display: Option<String>,
}

/// What a SCIM client said of one member besides its id: `type` and `display`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberDetails {
    pub member_type: Option<String>,
    pub display: Option<String>,
}

/// A condition on groups; a search matches those meeting all of its conditions.
#[derive(Clone, Debug)]
pub enum GroupCriterion {
    /// `None`: an id that is no UUID, which matches nothing.
    Id(Option<GroupId>),
    /// The display name, whatever its case.
    DisplayName(String),
    ExternalId(String),
    /// Groups with this member (`None`: no UUID, so none).
    Member(Option<UserId>),
}

/// Whose memberships to read.
enum Of<'a> {
    Groups(&'a [GroupId]),
    Users(&'a [UserId]),
}

type Boxed<'a> = groups::BoxedQuery<'a, diesel::pg::Pg>;

impl Group {
    /// Inserts a group; a display name already used in the org (any case) is a unique
    /// violation.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        display_name: &str,
        external_id: Option<&str>,
    ) -> QueryResult<Group> {
        diesel::insert_into(groups::table)
            .values((
                groups::org_id.eq(org),
                groups::display_name.eq(display_name),
                groups::external_id.eq(external_id),
            ))
            .returning(Group::as_returning())
            .get_result(conn)
            .await
    }

    /// The group of `org` with this id, locked (`FOR UPDATE`) until the transaction ends, so
    /// changes to one group happen one after the other.
    pub async fn lock_in_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        id: GroupId,
    ) -> QueryResult<Option<Group>> {
        groups::table
            .filter(groups::org_id.eq(org))
            .filter(groups::id.eq(id))
            .select(Group::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// The group of `org` with this id.
    pub async fn find_in_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        id: GroupId,
    ) -> QueryResult<Option<Group>> {
        groups::table
            .filter(groups::org_id.eq(org))
            .filter(groups::id.eq(id))
            .select(Group::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Renames the group, sets its external id and bumps its version.
    pub async fn set_attributes(
        conn: &mut AsyncPgConnection,
        id: GroupId,
        display_name: &str,
        external_id: Option<&str>,
    ) -> QueryResult<Group> {
        diesel::update(groups::table.find(id))
            .set((
                groups::display_name.eq(display_name),
                groups::external_id.eq(external_id),
                groups::version.eq(groups::version + 1),
                groups::updated_at.eq(OffsetDateTime::now_utc()),
            ))
            .returning(Group::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: GroupId) -> QueryResult<()> {
        diesel::delete(groups::table.find(id))
            .execute(conn)
            .await
            .map(drop)
    }

    /// The ids of the group's members (deleted users are no members).
    pub async fn member_ids(conn: &mut AsyncPgConnection, id: GroupId) -> QueryResult<Vec<UserId>> {
        group_members::table
            .inner_join(users::table)
            .filter(group_members::group_id.eq(id))
            .filter(NotDeleted)
            .select(group_members::user_id)
            .load(conn)
            .await
    }

    /// Adds `added` (users of the group's org, checked by the caller) to the group's members,
    /// removes `removed`, and sets the details of the members in `details`.
    pub async fn change_members(
        conn: &mut AsyncPgConnection,
        id: GroupId,
        added: &[UserId],
        removed: &[UserId],
        details: &HashMap<UserId, MemberDetails>,
    ) -> QueryResult<()> {
        if !removed.is_empty() {
            diesel::delete(
                group_members::table
                    .filter(group_members::group_id.eq(id))
                    .filter(group_members::user_id.eq_any(removed)),
            )
            .execute(conn)
            .await?;
        }
        let none = MemberDetails::default();
        if !added.is_empty() {
            let rows: Vec<_> = added
                .iter()
                .map(|user| {
                    let d = details.get(user).unwrap_or(&none);
                    (
                        group_members::group_id.eq(id),
                        group_members::user_id.eq(*user),
                        group_members::member_type.eq(d.member_type.clone()),
                        group_members::display.eq(d.display.clone()),
                    )
                })
                .collect();
            diesel::insert_into(group_members::table)
                .values(rows)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        // Members named again: one update for all of them.
        let new: HashSet<&UserId> = added.iter().collect();
        let (again, (types, displays)): (Vec<uuid::Uuid>, (Vec<_>, Vec<_>)) = details
            .iter()
            .filter(|(user, _)| !new.contains(user))
            .map(|(user, d)| (user.0, (d.member_type.clone(), d.display.clone())))
            .unzip();
        if !again.is_empty() {
            use diesel::sql_types::{Array, Nullable, Text, Uuid};
            diesel::sql_query(
                "UPDATE group_members m SET member_type = d.member_type, display = d.display \
                 FROM unnest($2, $3, $4) AS d(user_id, member_type, display) \
                 WHERE m.group_id = $1 AND m.user_id = d.user_id",
            )
            .bind::<Uuid, _>(id)
            .bind::<Array<Uuid>, _>(again)
            .bind::<Array<Nullable<Text>>, _>(types)
            .bind::<Array<Nullable<Text>>, _>(displays)
            .execute(conn)
            .await?;
        }
        Ok(())
    }

    /// The members of `groups`, with each group's name (for groups and for users alike).
    pub async fn members_of(
        conn: &mut AsyncPgConnection,
        groups: &[GroupId],
    ) -> QueryResult<Vec<Member>> {
        Self::memberships(conn, Of::Groups(groups)).await
    }

    /// The groups `users` are members of.
    pub async fn groups_of(
        conn: &mut AsyncPgConnection,
        users: &[UserId],
    ) -> QueryResult<Vec<Member>> {
        Self::memberships(conn, Of::Users(users)).await
    }

    async fn memberships(conn: &mut AsyncPgConnection, of: Of<'_>) -> QueryResult<Vec<Member>> {
        let query = group_members::table
            .inner_join(groups::table)
            .inner_join(users::table)
            .filter(NotDeleted)
            .into_boxed();
        let query = match of {
            Of::Groups(ids) => query.filter(group_members::group_id.eq_any(ids)),
            Of::Users(ids) => query.filter(group_members::user_id.eq_any(ids)),
        };
        type Row = (
            GroupId,
            String,
            UserId,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = query
            .order((groups::display_name, users::email))
            .select((
                group_members::group_id,
                groups::display_name,
                group_members::user_id,
                users::email,
                group_members::member_type,
                group_members::display,
            ))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(group_id, group_name, user_id, email, member_type, display)| Member {
                    group_id,
                    group_name,
                    user_id,
                    email,
                    member_type,
                    display,
                },
            )
            .collect())
    }

    /// One page (by creation, then id) of the org's groups meeting every criterion, and how
    /// many do in all.
    pub async fn search(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        criteria: &[GroupCriterion],
        offset: i64,
        limit: i64,
    ) -> QueryResult<(Vec<Group>, i64)> {
        let matching = || {
            criteria.iter().fold(
                groups::table.filter(groups::org_id.eq(org)).into_boxed(),
                |query: Boxed<'_>, criterion| match criterion {
                    GroupCriterion::Id(Some(id)) => query.filter(groups::id.eq(*id)),
                    GroupCriterion::DisplayName(name) => {
                        query.filter(lower(groups::display_name).eq(name.to_lowercase()))
                    }
                    GroupCriterion::ExternalId(id) => {
                        query.filter(groups::external_id.eq(id.clone()))
                    }
                    GroupCriterion::Member(Some(user)) => query.filter(
                        groups::id.eq_any(
                            group_members::table
                                .filter(group_members::user_id.eq(*user))
                                .select(group_members::group_id),
                        ),
                    ),
                    GroupCriterion::Id(None) | GroupCriterion::Member(None) => {
                        query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>("false"))
                    }
                },
            )
        };
        let total = matching().count().get_result(conn).await?;
        if limit == 0 {
            return Ok((Vec::new(), total));
        }
        let page = matching()
            .order((groups::created_at, groups::id))
            .offset(offset)
            .limit(limit)
            .select(Group::as_select())
            .load(conn)
            .await?;
        Ok((page, total))
    }
}
