//! `demo`: the org `acme` with an admin and two users, ready to try Universal Logout on.

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{CliError, create_user, hash_password};
use crate::{
    auth::password,
    config::Settings,
    db::models::{NewOrg, Org, OrgApiKey, User},
    secret_token,
};

/// The demo accounts: (email, admin).
const DEMO_USERS: [(&str, bool); 3] = [
    ("admin@acme.test", true),
    ("alice@acme.test", false),
    ("bob@acme.test", false),
];

/// Creates the demo org (or finds it), gives every demo account a new password, issues an API
/// key, and prints how to use them.
pub(super) async fn run(
    conn: &mut AsyncPgConnection,
    settings: &Settings,
    json: bool,
) -> Result<(), CliError> {
    let org = match Org::find_by_slug(conn, "acme")
        .await
        .context("cannot look up the demo org")?
    {
        Some(org) => org,
        None => Org::create(
            conn,
            &NewOrg {
                name: "Acme",
                slug: "acme",
            },
        )
        .await
        .context("cannot create the demo org")?,
    };
    let mut accounts = Vec::new();
    for (email, admin) in DEMO_USERS {
        let password = password::generate();
        let hash = hash_password(&password).await?;
        match User::find_by_email(conn, org.id, email)
            .await
            .context("cannot look up a demo user")?
        {
            Some(user) => User::set_password_hash(conn, user.id, &hash).await,
            None => create_user(conn, org.id, email, &hash, admin)
                .await
                .map(drop),
        }
        .context("cannot save a demo user")?;
        accounts.push((email, admin, password));
    }
    let (_, issued) = OrgApiKey::create(conn, org.id)
        .await
        .context("cannot issue the demo API key")?;
    let api_key = secret_token::reveal(&issued).to_owned();
    let base = settings.public_url.as_ref().map_or_else(
        || format!("http://{}", settings.bind),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    );
    if json {
        let users: Vec<_> = accounts
            .iter()
            .map(|(email, admin, password)| json!({ "email": email, "admin": admin, "password": password }))
            .collect();
        println!(
            "{}",
            json!({ "org": { "id": org.id, "name": org.name, "slug": org.slug }, "users": users,
                    "login_url": format!("{base}/login"), "api_key": api_key })
        );
    } else {
        println!(
            "Demo org {} (slug `{}`) is ready. Sign in at {base}/login with:",
            org.name, org.slug
        );
        for (email, admin, password) in &accounts {
            println!(
                "  {email:<18} {password}{}",
                if *admin { "   (admin)" } else { "" }
            );
        }
        println!("Running `demo` again gives every demo account a new password.");
        println!();
        println!("Sign alice out everywhere, as her IdP would (Universal Logout):");
        println!(
            "  curl -i -X POST {base}/global-token-revocation -H 'Authorization: Bearer {api_key}' \\\n    -H 'Content-Type: application/json' -d '{{\"sub_id\":{{\"format\":\"email\",\"email\":\"alice@acme.test\"}}}}'"
        );
    }
    Ok(())
}
