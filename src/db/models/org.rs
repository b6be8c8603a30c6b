use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::{
    auth::idp_http::{FetchPolicy, UrlRefused},
    db::{ids::OrgId, schema::orgs},
};

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
    /// The OIDC client secret, sealed by [`SecretBox`](crate::secret_box::SecretBox).
    pub idp_client_secret: Option<Vec<u8>>,
    /// Whether a user unknown to the app is created at their first SSO sign-in.
    pub sso_create_users: bool,
    /// Emails at this domain sign in through this org's IdP.
    pub email_domain: Option<String>,
    /// The IdP group (by display name) whose members are the org's admins; SCIM keeps it.
    pub admin_group: Option<String>,
    /// At most this many seconds since the person authenticated at the IdP (`max_age`).
    pub sso_max_age: Option<i32>,
    /// Whether an SSO sign-in may link to an existing account by IdP-verified email.
    pub sso_link_by_email: bool,
    /// The ID token signature algorithms accepted.
    pub sso_algs: Vec<String>,
}

/// ID token signature algorithms an org may accept (IPSIE: PS256, ES256, EdDSA; RS256 for
/// today's IdPs).
pub const SSO_ALGS: &[&str] = &[
    "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512",
];

/// How an org's SSO sign-ins are checked; `None` fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct SsoPolicy {
    /// `Some(None)` clears it.
    pub max_age: Option<Option<i32>>,
    pub link_by_email: Option<bool>,
    pub algs: Option<Vec<String>>,
}

/// An org's identity-provider settings, as an admin or an operator gives them.
#[derive(Clone, Copy, Debug)]
pub struct IdpSettings<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// `None` keeps the stored secret, unless the issuer or client id changes: the secret then
    /// goes (it belongs to the old registration, and must never be sent to a new issuer).
    pub client_secret: Option<&'a str>,
    /// `None` leaves the org's email domain as it is (org admins never change it); `Some` sets
    /// or clears it (the operator, who alone assigns domains).
    pub email_domain: Option<Option<&'a str>>,
    pub create_users: bool,
}

/// Mail domains shared by the public, which no org may claim: their users are not one org's.
const PUBLIC_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "mail.ru",
    "yandex.ru",
    "yandex.com",
    "qq.com",
    "163.com",
    "126.com",
    "zoho.com",
    "fastmail.com",
    "tutanota.com",
];

impl IdpSettings<'_> {
    /// What is wrong with the settings, in words for the person who gave them; the issuer must
    /// be one `policy` lets the app fetch from.
    pub fn check(&self, policy: FetchPolicy) -> Result<(), String> {
        let issuer = url::Url::parse(self.issuer).map_err(|_| ISSUER_HELP.to_owned())?;
        match policy.check_url(&issuer) {
            Ok(()) => {}
            Err(UrlRefused::NotHttps) => return Err(ISSUER_HELP.into()),
            Err(why) => return Err(format!("The issuer is refused: {why}.")),
        }
        if self.client_id.is_empty() || self.client_id.len() > 255 {
            return Err("The client id must have 1 to 255 characters.".into());
        }
        if self
            .client_secret
            .is_some_and(|s| s.is_empty() || s.len() > 1024)
        {
            return Err("The client secret must have 1 to 1024 characters.".into());
        }
        let domain_ok = |d: &str| {
            d.contains('.')
                && !d.starts_with('.')
                && d.len() <= 253
                && d.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        };
        match self.email_domain.flatten() {
            Some(d) if !domain_ok(d) => {
                Err("The email domain must look like acme.com (lowercase, no @).".into())
            }
            Some(d) if PUBLIC_MAIL_DOMAINS.contains(&d) => Err(format!(
                "{d} is a public mail domain: its users belong to no one organisation."
            )),
            _ => Ok(()),
        }
    }
}

const ISSUER_HELP: &str = "The issuer must be an https:// URL, such as https://acme.okta.com.";

/// What [`Org::configure_idp`] did.
#[derive(Debug)]
pub struct Configured {
    pub org: Org,
    /// Whether the stored client secret was dropped because the issuer or client id changed.
    pub secret_dropped: bool,
}

/// A tenant to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = orgs)]
pub struct NewOrg<'a> {
    pub name: &'a str,
    pub slug: &'a str,
}

impl Org {
    /// Whether single sign-on is set up (issuer, client id and secret): then only break-glass
    /// users may sign in with a password.
    pub fn has_sso(&self) -> bool {
        self.idp_issuer.is_some()
            && self.idp_client_id.is_some()
            && self.idp_client_secret.is_some()
    }

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

    /// The orgs (at most two: one is the answer, two are ambiguous) whose IdP is `issuer`.
    pub async fn find_all_by_issuer(
        conn: &mut AsyncPgConnection,
        issuer: &str,
    ) -> QueryResult<Vec<Org>> {
        orgs::table
            .filter(orgs::idp_issuer.eq(issuer))
            .order(orgs::slug)
            .limit(2)
            .select(Org::as_select())
            .load(conn)
            .await
    }

    /// Sets the org's IdP, or with `None` clears it (and its client secret).
    pub async fn set_idp(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        idp: Option<(&str, &str)>,
    ) -> QueryResult<Org> {
        let target = orgs::table.find(id);
        if idp.is_none() {
            diesel::update(target)
                .set(orgs::idp_client_secret.eq(None::<Vec<u8>>))
                .execute(conn)
                .await?;
        }
        diesel::update(target)
            .set((
                orgs::idp_issuer.eq(idp.map(|(issuer, _)| issuer)),
                orgs::idp_client_id.eq(idp.map(|(_, client)| client)),
            ))
            .returning(Org::as_returning())
            .get_result(conn)
            .await
    }

    /// Sets the org's IdP and single sign-on in one go (one transaction); the secret is sealed
    /// by `secrets`. A changed issuer or client id without a new secret drops the stored one.
    pub async fn configure_idp(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        settings: &IdpSettings<'_>,
        secrets: &crate::secret_box::SecretBox,
    ) -> QueryResult<Configured> {
        use diesel_async::AsyncConnection as _;
        conn.transaction(async |conn| {
            let (issuer, client_id) = orgs::table
                .find(id)
                .select((orgs::idp_issuer, orgs::idp_client_id))
                .for_update()
                .first::<(Option<String>, Option<String>)>(conn)
                .await?;
            let moved = issuer.as_deref() != Some(settings.issuer)
                || client_id.as_deref() != Some(settings.client_id);
            let target = orgs::table.find(id);
            let secret_dropped = match settings.client_secret {
                Some(secret) => {
                    let sealed = secrets.seal(secret, id.0.as_bytes());
                    Org::set_client_secret(conn, id, &sealed).await?;
                    false
                }
                None if moved => {
                    diesel::update(target)
                        .set(orgs::idp_client_secret.eq(None::<Vec<u8>>))
                        .execute(conn)
                        .await?;
                    true
                }
                None => false,
            };
            if let Some(domain) = settings.email_domain {
                diesel::update(target)
                    .set(orgs::email_domain.eq(domain))
                    .execute(conn)
                    .await?;
            }
            diesel::update(target)
                .set(orgs::sso_create_users.eq(settings.create_users))
                .execute(conn)
                .await?;
            let org = Org::set_idp(conn, id, Some((settings.issuer, settings.client_id))).await?;
            Ok(Configured {
                org,
                secret_dropped,
            })
        })
        .await
    }

    /// Sets how the org's SSO sign-ins are checked.
    pub async fn set_sso_policy(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        policy: &SsoPolicy,
    ) -> QueryResult<Org> {
        let target = orgs::table.find(id);
        if let Some(max_age) = policy.max_age {
            diesel::update(target)
                .set(orgs::sso_max_age.eq(max_age))
                .execute(conn)
                .await?;
        }
        if let Some(link) = policy.link_by_email {
            diesel::update(target)
                .set(orgs::sso_link_by_email.eq(link))
                .execute(conn)
                .await?;
        }
        if let Some(algs) = &policy.algs {
            diesel::update(target)
                .set(orgs::sso_algs.eq(algs))
                .execute(conn)
                .await?;
        }
        target.select(Org::as_select()).first(conn).await
    }

    /// Stores the org's OIDC client secret, already sealed.
    async fn set_client_secret(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        sealed: &[u8],
    ) -> QueryResult<()> {
        diesel::update(orgs::table.find(id))
            .set(orgs::idp_client_secret.eq(sealed))
            .execute(conn)
            .await
            .map(drop)
    }

    /// The org whose users sign in with emails at `domain`.
    pub async fn find_by_email_domain(
        conn: &mut AsyncPgConnection,
        domain: &str,
    ) -> QueryResult<Option<Org>> {
        orgs::table
            .filter(orgs::email_domain.eq(domain.to_lowercase()))
            .select(Org::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The orgs whose IdP is `issuer` and whose client id is one of `client_ids` (a logout
    /// token's `aud`).
    pub async fn find_by_issuer_and_audience(
        conn: &mut AsyncPgConnection,
        issuer: &str,
        client_ids: &[String],
    ) -> QueryResult<Option<Org>> {
        orgs::table
            .filter(orgs::idp_issuer.eq(issuer))
            .filter(orgs::idp_client_id.eq_any(client_ids))
            .select(Org::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Names the IdP group whose members are the org's admins (`None`: none).
    pub async fn set_admin_group(
        conn: &mut AsyncPgConnection,
        id: OrgId,
        name: Option<&str>,
    ) -> QueryResult<()> {
        diesel::update(orgs::table.find(id))
            .set(orgs::admin_group.eq(name))
            .execute(conn)
            .await
            .map(drop)
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
