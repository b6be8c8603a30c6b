use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{ids::OrgId, schema::orgs};

/// A tenant.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = orgs, check_for_backend(diesel::pg::Pg))]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub created_at: OffsetDateTime,
    /// The issuer whose signed JWTs may call Universal Logout for this org.
    pub idp_issuer: Option<String>,
    /// The app's client id at that issuer (the `sub` of its Universal Logout JWTs).
    pub idp_client_id: Option<String>,
    pub disabled_at: Option<OffsetDateTime>,
}

/// A tenant to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = orgs)]
pub struct NewOrg<'a> {
    pub name: &'a str,
    pub slug: &'a str,
}

impl Org {
    /// Inserts an org; a taken slug is a unique violation.
    pub async fn create(conn: &mut AsyncPgConnection, new: &NewOrg<'_>) -> QueryResult<Org> {
        diesel::insert_into(orgs::table)
            .values(new)
            .returning(Org::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: OrgId) -> QueryResult<Option<Org>> {
        orgs::table
            .find(id)
            .select(Org::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The org whose IdP is `issuer` with the app registered as `client_id`.
    pub async fn find_by_idp(
        conn: &mut AsyncPgConnection,
        issuer: &str,
        client_id: &str,
    ) -> QueryResult<Option<Org>> {
        orgs::table
            .filter(orgs::idp_issuer.eq(issuer))
            .filter(orgs::idp_client_id.eq(client_id))
            .select(Org::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Sets (or, with `None`, clears) the org's IdP.
    pub async fn set_idp(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        idp: Option<(&str, &str)>,
    ) -> QueryResult<Org> {
        diesel::update(orgs::table.find(id))
            .set((
                orgs::idp_issuer.eq(idp.map(|(issuer, _)| issuer)),
                orgs::idp_client_id.eq(idp.map(|(_, client)| client)),
            ))
            .returning(Org::as_returning())
            .get_result(conn)
            .await
    }

    /// Disables or re-enables the org: a disabled org's credentials may do nothing.
    pub async fn set_disabled(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        disabled: bool,
    ) -> QueryResult<()> {
        let at = disabled.then(OffsetDateTime::now_utc);
        diesel::update(orgs::table.find(id))
            .set(orgs::disabled_at.eq(at))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn find_by_slug(
        conn: &mut AsyncPgConnection,
        slug: &str,
    ) -> QueryResult<Option<Org>> {
        orgs::table
            .filter(orgs::slug.eq(slug))
            .select(Org::as_select())
            .first(conn)
            .await
            .optional()
    }
}

/// Derives a URL-safe slug from an org's name: `Acme Corp.` → `acme-corp`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(63);
    slug.trim_end_matches('-').to_owned()
}

/// Whether `slug` is one the `orgs` table accepts.
pub fn is_valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_derived_from_names() {
        assert_eq!(slugify("Acme"), "acme");
        assert_eq!(slugify("  Acme Corp. (EU) "), "acme-corp-eu");
        assert!(is_valid_slug(&slugify("Ünïcode Straße")));
        assert!(is_valid_slug(&slugify("Acme Corp.")));
    }

    #[test]
    fn slugs_are_checked() {
        assert!(is_valid_slug("acme-2"));
        assert!(!is_valid_slug(""));
        assert!(!is_valid_slug("-acme"));
        assert!(!is_valid_slug("Acme"));
        assert!(!is_valid_slug("acme corp"));
        assert!(!is_valid_slug(&"a".repeat(64)));
    }
}
