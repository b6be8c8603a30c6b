//! `org create`, `org set-idp`, `org set-admin-group`, `org disable` and `org enable`;
//! `org logout-all` is in [`super::org_logout`], the Shared Signals commands in [`super::ssf`].

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use secrecy::ExposeSecret as _;
use serde_json::json;

use super::common::{CliError, find_org, read_secret, write_error};
use crate::{
    auth::idp_http::FetchPolicy,
    config::Settings,
    db::models::{
        NewOrg, Org, OrgApiKey,
        org::{Configured, IdpSettings, SSO_ALGS, SsoPolicy, is_valid_slug, slugify},
    },
    secret_box::SecretBox,
    secret_token,
};

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org.
    Create {
        /// The org's display name, e.g. "Acme Corp".
        name: String,
        /// Short ID used in URLs and at sign-in (default: derived from the name).
        #[arg(long)]
        slug: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the org's identity provider: its issuer's signed JWTs may then call Universal Logout.
    SetIdp {
        /// The org's slug.
        slug: String,
        /// The IdP's issuer URL (as in its OpenID discovery document).
        #[arg(long)]
        issuer: url::Url,
        /// This app's client id at the IdP (the `sub` of its Universal Logout JWTs).
        #[arg(long)]
        client_id: String,
        /// Read the OIDC client secret (for SSO sign-in) from standard input; without it the
        /// stored secret is kept, unless the issuer or client id changes (it is then removed).
        #[arg(long)]
        client_secret_stdin: bool,
        /// Emails at this domain sign in with SSO through this org (only the operator assigns
        /// domains; public mail domains such as gmail.com are refused). Without it, none.
        #[arg(long)]
        email_domain: Option<String>,
        /// Do not create unknown users at their first SSO sign-in.
        #[arg(long)]
        no_create_users: bool,
        /// Ask the IdP for an authentication at most this many seconds old (`max_age`); 0
        /// clears it. Without it, unchanged.
        #[arg(long)]
        max_age: Option<u32>,
        /// Link an SSO sign-in to an existing account with the same IdP-verified email (off
        /// unless given: users are matched by issuer and subject only, as IPSIE requires).
        #[arg(long)]
        link_by_email: bool,
        /// ID token signature algorithms to accept, comma-separated (default PS256, ES256,
        /// EdDSA, RS256). Without it, unchanged.
        #[arg(long, value_delimiter = ',')]
        id_token_algs: Option<Vec<String>>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Name the IdP group (its SCIM displayName, any case) whose members are the org's admins:
    /// SCIM changes to its membership grant and remove the admin role.
    SetAdminGroup {
        /// The org's slug.
        slug: String,
        /// The group's display name, e.g. "App Admins".
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        name: Option<String>,
        /// No group makes admins any more (roles already given stay).
        #[arg(long)]
        clear: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Disable an org: its IdP and API keys may no longer call Universal Logout (403).
    Disable {
        /// The org's slug.
        slug: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled org again.
    Enable {
        /// The org's slug.
        slug: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign out everyone in the org: end every session and personal access token of every
    /// user, admins included, each user audited (source `operator`) and every open tab told.
    LogoutAll {
        /// The org's slug.
        slug: String,
        /// Print one JSON object: `{"users": …, "sessions_ended": …, "tokens_revoked": …}`.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Ssf(super::ssf::SsfCommand),
}

impl OrgCommand {
    /// Checks the arguments, before anything touches the database.
    pub(super) fn check(&self, settings: &Settings) -> Result<(), CliError> {
        match self {
            OrgCommand::Create { name, slug, .. } => org_slug(name, slug.as_deref()).map(drop),
            OrgCommand::SetIdp {
                issuer,
                client_id,
                email_domain,
                max_age,
                id_token_algs,
                ..
            } => {
                sso_policy(*max_age, false, id_token_algs.clone())?;
                IdpSettings {
                    issuer: issuer.as_str(),
                    client_id: client_id.trim(),
                    client_secret: None,
                    email_domain: Some(email_domain.as_deref()),
                    create_users: true,
                }
                .check(idp_policy(settings))
                .map_err(CliError::Usage)
            }
            OrgCommand::SetAdminGroup { name, .. } => admin_group_name(name.as_deref()).map(drop),
            OrgCommand::Disable { .. }
            | OrgCommand::Enable { .. }
            | OrgCommand::LogoutAll { .. }
            | OrgCommand::Ssf(_) => Ok(()),
        }
    }
}

/// Runs an `org` command.
pub(super) async fn run(
    conn: &mut AsyncPgConnection,
    settings: &Settings,
    command: OrgCommand,
) -> Result<(), CliError> {
    match command {
        OrgCommand::Create { name, slug, json } => create(conn, &name, slug.as_deref(), json).await,
        OrgCommand::SetIdp {
            slug,
            issuer,
            client_id,
            client_secret_stdin,
            email_domain,
            no_create_users,
            max_age,
            link_by_email,
            id_token_algs,
            json,
        } => {
            let policy = sso_policy(max_age, link_by_email, id_token_algs)?;
            let secret = client_secret_stdin.then(read_secret).transpose()?;
            let idp = IdpSettings {
                issuer: issuer.as_str().trim_end_matches('/'),
                client_id: client_id.trim(),
                client_secret: secret.as_ref().map(|s| s.expose_secret()),
                email_domain: Some(email_domain.as_deref()),
                create_users: !no_create_users,
            };
            idp.check(idp_policy(settings)).map_err(CliError::Usage)?;
            set_idp(conn, settings, &slug, (&idp, &policy), json).await
        }
        OrgCommand::SetAdminGroup {
            slug, name, json, ..
        } => {
            let name = admin_group_name(name.as_deref())?;
            set_admin_group(conn, &slug, name, json).await
        }
        OrgCommand::Disable { slug, json } => set_disabled(conn, &slug, true, json).await,
        OrgCommand::Enable { slug, json } => set_disabled(conn, &slug, false, json).await,
        OrgCommand::LogoutAll { slug, json } => {
            super::org_logout::logout_all(conn, &slug, json).await
        }
        OrgCommand::Ssf(command) => super::ssf::run(conn, settings, command).await,
    }
}

/// The slug to use for a new org, checked.
fn org_slug(name: &str, slug: Option<&str>) -> Result<String, CliError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CliError::Usage(
            "the org name must have 1 to 200 characters".into(),
        ));
    }
    let slug = slug.map_or_else(|| slugify(name), str::to_owned);
    if !is_valid_slug(&slug) {
        return Err(CliError::Usage(format!(
            "`{slug}` is not a valid slug: use 1 to 63 lowercase letters, digits and inner hyphens (--slug)"
        )));
    }
    Ok(slug)
}

/// Where the app may fetch from: what `org set-idp` accepts as an issuer.
fn idp_policy(settings: &Settings) -> FetchPolicy {
    FetchPolicy {
        allow_insecure: settings.allow_insecure_idp,
    }
}

async fn create(
    conn: &mut AsyncPgConnection,
    name: &str,
    slug: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let slug = org_slug(name, slug)?;
    // The org and its first key are written together or not at all.
    let created = conn
        .transaction(async |conn| {
            let org = Org::create(
                conn,
                &NewOrg {
                    name: name.trim(),
                    slug: &slug,
                },
            )
            .await?;
            let (key, issued) = OrgApiKey::create(conn, org.id).await?;
            Ok::<_, diesel::result::Error>((org, key, issued))
        })
        .await;
    let (org, key, issued) = created.map_err(|e| {
        let taken =
            format!("an org with the slug `{slug}` already exists (choose another with --slug)");
        write_error(e, taken, "cannot create the org")
    })?;
    let secret = secret_token::reveal(&issued);
    if json {
        println!(
            "{}",
            json!({ "id": org.id, "name": org.name, "slug": org.slug,
                    "api_key": { "prefix": key.prefix, "key": secret } })
        );
    } else {
        println!(
            "Created org {} (slug `{}`, id {}).",
            org.name, org.slug, org.id
        );
        println!("Universal Logout API key (shown once): {secret}");
    }
    Ok(())
}

/// The SSO checks the flags ask for, checked.
fn sso_policy(
    max_age: Option<u32>,
    link_by_email: bool,
    algs: Option<Vec<String>>,
) -> Result<SsoPolicy, CliError> {
    let max_age = match max_age {
        None => None,
        Some(0) => Some(None),
        Some(seconds) => Some(Some(i32::try_from(seconds).map_err(|_| {
            CliError::Usage("--max-age must be at most 2147483647 seconds".into())
        })?)),
    };
    if let Some(algs) = &algs {
        let unknown: Vec<&String> = algs
            .iter()
            .filter(|a| !SSO_ALGS.contains(&a.as_str()))
            .collect();
        if algs.is_empty() || algs.len() > 8 || !unknown.is_empty() {
            return Err(CliError::Usage(format!(
                "--id-token-algs takes 1 to 8 of {}",
                SSO_ALGS.join(", ")
            )));
        }
    }
    Ok(SsoPolicy {
        max_age,
        link_by_email: Some(link_by_email),
        algs,
    })
}

async fn set_idp(
    conn: &mut AsyncPgConnection,
    settings: &Settings,
    slug: &str,
    (idp, policy): (&IdpSettings<'_>, &SsoPolicy),
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let (secrets, _) = SecretBox::load(conn, settings).await?;
    let configured = conn
        .transaction(async |conn| {
            let configured = Org::configure_idp(conn, org.id, idp, &secrets).await?;
            let org = Org::set_sso_policy(conn, org.id, policy).await?;
            Ok::<_, diesel::result::Error>(Configured { org, ..configured })
        })
        .await;
    let Configured {
        org,
        secret_dropped,
    } = configured.map_err(|e| {
        let taken = "another org already uses this issuer and client id, or this email domain";
        write_error(e, taken.into(), "cannot set the IdP")
    })?;
    let sso_ready = org.idp_client_secret.is_some();
    if json {
        println!(
            "{}",
            json!({ "slug": org.slug, "issuer": org.idp_issuer, "client_id": org.idp_client_id,
                    "client_secret_set": sso_ready, "client_secret_removed": secret_dropped,
                    "email_domain": org.email_domain, "create_users": org.sso_create_users,
                    "max_age": org.sso_max_age, "link_by_email": org.sso_link_by_email,
                    "id_token_algs": org.sso_algs })
        );
    } else {
        println!(
            "`{}` now trusts Universal Logout JWTs from {} for client {}.",
            org.slug, idp.issuer, idp.client_id
        );
        if secret_dropped {
            println!("The issuer or client id changed, so the stored client secret was removed.");
        }
        if sso_ready {
            println!(
                "Single sign-on is ready: users choose \"Sign in with SSO\" on the sign-in page."
            );
        } else {
            println!("For single sign-on, give the client secret too (--client-secret-stdin).");
        }
    }
    Ok(())
}

/// The admin group's name, checked (`None`: clear it).
fn admin_group_name(name: Option<&str>) -> Result<Option<&str>, CliError> {
    match name.map(str::trim) {
        Some(name) if name.is_empty() || name.chars().count() > 256 => Err(CliError::Usage(
            "the group name must have 1 to 256 characters".into(),
        )),
        name => Ok(name),
    }
}

/// `org set-admin-group`: memberships given before are not re-read; the next SCIM change to
/// the group sets the roles of the users it concerns.
async fn set_admin_group(
    conn: &mut AsyncPgConnection,
    slug: &str,
    name: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    Org::set_admin_group(conn, org.id, name)
        .await
        .context("cannot set the admin group")?;
    if json {
        println!("{}", json!({ "slug": org.slug, "admin_group": name }));
    } else {
        match name {
            Some(name) => println!(
                "Members of the IdP group \"{name}\" are now `{}`'s admins.",
                org.slug
            ),
            None => println!("No IdP group makes `{}`'s admins any more.", org.slug),
        }
    }
    Ok(())
}

/// `org disable` and `org enable`. The README documents Universal Logout's 403 for a disabled
/// org; this is how an operator gets there (and back). An org already in the asked state is
/// left as it is, so the time it was disabled stays true.
async fn set_disabled(
    conn: &mut AsyncPgConnection,
    slug: &str,
    disabled: bool,
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let changed = org.disabled_at.is_some() != disabled;
    if changed {
        Org::set_disabled(conn, org.id, disabled)
            .await
            .context("cannot change the org")?;
    }
    if json {
        println!(
            "{}",
            json!({ "id": org.id, "slug": org.slug, "disabled": disabled, "changed": changed })
        );
    } else {
        let state = if changed { "now" } else { "already" };
        let effect = if disabled {
            "disabled: its IdP and API keys may not call Universal Logout"
        } else {
            "enabled: its IdP and API keys may call Universal Logout"
        };
        println!("`{}` is {state} {effect}.", org.slug);
    }
    Ok(())
}
