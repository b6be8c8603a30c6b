//! `GET /auth/oidc/initiate?iss=…[&login_hint=…][&target_link_uri=…]`: third-party-initiated
//! login (OpenID Connect Core §4), how an IdP's app dashboard signs a person in. It only starts
//! a sign-in, exactly as the sign-in page's button does: the state is bound to this browser by
//! a signed cookie and the callback needs it, so another site sending a browser here cannot sign
//! it into anyone's account but the one the person signs in as at their own IdP.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use super::{begin, idp_of, over_start_limit, redirect_to_idp, with_retry_after};
use crate::{
    auth::sso::{Sso, StartOptions},
    config::PublicUrl,
    db::{Pool, models::Org},
    error::AppError,
    rate_limit::Limits,
    routes::auth::login::{LoginPage, render},
    secret_box::SecretBox,
    signed_cookie::CookieSigner,
};

/// The longest `login_hint` passed on, and the longest landing path kept.
const MAX_HINT_CHARS: usize = 254;
const MAX_PATH_CHARS: usize = 2048;

#[derive(Deserialize)]
pub struct InitiateQuery {
    iss: Option<String>,
    login_hint: Option<String>,
    target_link_uri: Option<String>,
}

/// Starts SSO for the org whose issuer is `iss`.
#[allow(clippy::too_many_arguments)] // the extractors of one handler
pub async fn initiate(
    req: HttpRequest,
    query: web::Query<InitiateQuery>,
    pool: web::Data<Pool>,
    sso: web::Data<Sso>,
    secrets: web::Data<SecretBox>,
    public_url: web::Data<PublicUrl>,
    signer: web::Data<CookieSigner>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, AppError> {
    let fail = |status, message: &str| Ok(render(status, LoginPage::sso_failed("", message)));
    let Some(iss) =
        query.iss.as_deref().map(str::trim).filter(|i| {
            !i.is_empty() && i.len() <= MAX_PATH_CHARS && !i.chars().any(char::is_control)
        })
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "This sign-in link does not name a sign-in service (iss). Sign in from this page instead.",
        );
    };
    if let Some((message, wait)) = over_start_limit(&req, &limits) {
        return Ok(with_retry_after(
            fail(StatusCode::TOO_MANY_REQUESTS, &message)?,
            wait,
        ));
    }
    let mut conn = pool.get().await?;
    let orgs = Org::find_all_by_issuer(&mut conn, iss.trim_end_matches('/')).await?;
    let mut ready = orgs
        .iter()
        .filter_map(|org| idp_of(org, &secrets).transpose().map(|idp| (org, idp)));
    let (org, idp) = match (ready.next(), ready.next()) {
        (Some((org, idp)), None) => (org, idp?),
        (Some(_), Some(_)) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "Several organisations sign in with this sign-in service: enter your organisation's ID on this page instead.",
            );
        }
        (None, _) => {
            return fail(
                StatusCode::NOT_FOUND,
                "No organisation signs in with that sign-in service here. Sign in from this page instead.",
            );
        }
    };
    let options = StartOptions {
        login_hint: query
            .login_hint
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty() && h.chars().count() <= MAX_HINT_CHARS)
            .filter(|h| !h.chars().any(char::is_control))
            .map(str::to_owned),
        fresh: false,
    };
    let land_on = query
        .target_link_uri
        .as_deref()
        .and_then(|target| local_path(target, &public_url));
    match begin(
        &mut conn,
        &sso,
        (org, &idp),
        &public_url,
        &options,
        land_on.as_deref(),
        None,
    )
    .await?
    {
        Ok(begun) => Ok(redirect_to_idp(begun, &signer)),
        Err(message) => fail(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

/// `target` as a path of this app (with its query), if it is one: a URL at the public URL's
/// origin, or an absolute path. Anything else (another site, `//host`, `\`) is dropped, so the
/// link cannot send the person elsewhere after signing in.
pub fn local_path(target: &str, public_url: &PublicUrl) -> Option<String> {
    if target.len() > MAX_PATH_CHARS || target.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let url = if target.starts_with('/') && !target.starts_with("//") {
        public_url.0.join(target).ok()?
    } else {
        url::Url::parse(target).ok()?
    };
    if url.origin() != public_url.0.origin() {
        return None;
    }
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> PublicUrl {
        PublicUrl(url::Url::parse("https://todo.example").unwrap())
    }

    #[test]
    fn paths_and_urls_of_this_app_are_kept() {
        assert_eq!(
            local_path("/todos?x=1", &public()).as_deref(),
            Some("/todos?x=1")
        );
        assert_eq!(
            local_path("https://todo.example/admin", &public()).as_deref(),
            Some("/admin")
        );
    }

    #[test]
    fn other_sites_and_tricks_are_dropped() {
        for target in [
            "https://evil.example/todos",
            "//evil.example/todos",
            "/\\evil.example",
            "http://todo.example/todos",
            "javascript:alert(1)",
            "/todos\n",
        ] {
            assert_eq!(local_path(target, &public()), None, "{target}");
        }
    }
}
