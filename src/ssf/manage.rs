//! The stream at the org's transmitter (SSF 1.0 §7–8): read the transmitter's configuration,
//! create the stream (push to `PUBLIC_URL/ssf/events` with a header the app generates, or
//! poll), delete the old one when the org moves, ask for verification. Every call carries the
//! org's bearer and goes through [`IdpHttp`] (https, public addresses, capped bodies).

use diesel_async::AsyncPgConnection;
use reqwest::{Method, header};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use url::Url;

use crate::{
    auth::idp_http::{FetchError, IdpHttp},
    config::PublicUrl,
    db::models::{Delivery, NewSsfStream, Org, SsfStream},
    routes::ssf::PATH,
    secret_box::SecretBox,
    secret_token,
};

/// The events the app asks for.
pub const EVENTS_REQUESTED: &[&str] = &[
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    "https://schemas.openid.net/secevent/caep/event-type/credential-change",
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
    "https://schemas.openid.net/secevent/risc/event-type/account-purged",
    "https://schemas.openid.net/secevent/risc/event-type/identifier-changed",
    "https://schemas.openid.net/secevent/ssf/event-type/verification",
];

/// Why the stream could not be set up or changed: words for the operator or admin.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Transmitter(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl From<FetchError> for ManageError {
    fn from(e: FetchError) -> Self {
        Self::Transmitter(e.to_string())
    }
}

fn refused(why: impl Into<String>) -> ManageError {
    ManageError::Transmitter(why.into())
}

/// A transmitter's configuration (the members the app uses).
#[derive(Clone, Debug)]
pub struct Configuration {
    pub issuer: String,
    pub jwks_uri: String,
    pub configuration_endpoint: Option<String>,
    pub verification_endpoint: Option<String>,
    pub delivery_methods: Vec<String>,
}

/// Where a transmitter's configuration is: the well-known path inserted between the host and
/// the issuer's path (SSF §7.2.1), or RISC's older name.
fn well_known(issuer: &Url, name: &str) -> String {
    let path = issuer.path().trim_end_matches('/');
    let mut url = issuer.clone();
    url.set_path(&format!("/.well-known/{name}{path}"));
    url.set_query(None);
    url.to_string()
}

/// Reads the configuration of `transmitter`, whose `issuer` must be the URL used.
pub async fn discover(http: &IdpHttp, transmitter: &str) -> Result<Configuration, ManageError> {
    let url = Url::parse(transmitter).map_err(|e| refused(format!("{transmitter}: {e}")))?;
    http.policy()
        .check_url(&url)
        .map_err(|why| refused(format!("the transmitter URL is refused: {why}")))?;
    let document: Value = match http.get_json(&well_known(&url, "ssf-configuration")).await {
        Ok(document) => document,
        Err(first) => http
            .get_json(&well_known(&url, "risc-configuration"))
            .await
            .map_err(|_| ManageError::from(first))?,
    };
    let text = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let issuer = text("issuer").ok_or_else(|| refused("the configuration has no issuer"))?;
    if issuer.trim_end_matches('/') != transmitter.trim_end_matches('/') {
        return Err(refused(format!(
            "the configuration names another issuer ({issuer}) than {transmitter}"
        )));
    }
    let jwks_uri = text("jwks_uri").ok_or_else(|| refused("the configuration has no jwks_uri"))?;
    Ok(Configuration {
        issuer,
        jwks_uri,
        configuration_endpoint: text("configuration_endpoint"),
        verification_endpoint: text("verification_endpoint"),
        delivery_methods: document
            .get("delivery_methods_supported")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Calls a transmitter endpoint with the org's bearer; the JSON answer (or `Null` for none).
pub(crate) async fn call(
    http: &IdpHttp,
    method: Method,
    url: &str,
    bearer: Option<&SecretString>,
    body: Option<&Value>,
) -> Result<Value, ManageError> {
    let parsed = Url::parse(url).map_err(|e| refused(format!("{url}: {e}")))?;
    let mut request = reqwest::Request::new(method.clone(), parsed);
    let headers = request.headers_mut();
    headers.insert(
        header::ACCEPT,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(bearer) = bearer {
        let value = header::HeaderValue::from_str(&format!("Bearer {}", bearer.expose_secret()))
            .map_err(|_| refused("the bearer cannot be sent in a header"))?;
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Some(body) = body {
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        *request.body_mut() = Some(body.to_string().into());
    }
    let response = http.send(request).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(refused(format!(
            "{method} {url}: the transmitter answered {status}"
        )));
    }
    if response.body().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(response.body())
        .map_err(|e| refused(format!("{method} {url}: not JSON ({e})")))
}

/// What to set up for an org.
pub struct Setup<'a> {
    pub org: &'a Org,
    pub transmitter: &'a str,
    pub delivery: Delivery,
    pub bearer: Option<SecretString>,
}

/// Creates the org's stream at its transmitter and stores it, replacing (and deleting at its
/// transmitter) the one it had.
pub async fn configure(
    conn: &mut AsyncPgConnection,
    http: &IdpHttp,
    secrets: &SecretBox,
    public_url: &PublicUrl,
    setup: Setup<'_>,
) -> Result<SsfStream, ManageError> {
    let found = discover(http, setup.transmitter).await?;
    let endpoint = found
        .configuration_endpoint
        .clone()
        .ok_or_else(|| refused("the transmitter has no configuration_endpoint"))?;
    if !found.delivery_methods.is_empty()
        && !found
            .delivery_methods
            .iter()
            .any(|m| m == setup.delivery.urn())
    {
        return Err(refused(format!(
            "the transmitter does not offer {} delivery",
            setup.delivery
        )));
    }
    let issued = (setup.delivery == Delivery::Push).then(SsfStream::issue_push_header);
    let delivery = match &issued {
        Some(issued) => json!({
            "method": Delivery::Push.urn(),
            "endpoint_url": public_url.join(PATH),
            "authorization_header": format!("Bearer {}", secret_token::reveal(issued)),
        }),
        None => json!({ "method": Delivery::Poll.urn() }),
    };
    let request = json!({
        "delivery": delivery,
        "events_requested": EVENTS_REQUESTED,
        "description": format!("ual-todo, organisation {}", setup.org.slug),
    });
    let created = call(
        http,
        Method::POST,
        &endpoint,
        setup.bearer.as_ref(),
        Some(&request),
    )
    .await?;
    let text =
        |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let stream_id = text(&created, "stream_id")
        .ok_or_else(|| refused("the created stream has no stream_id"))?;
    let audience = match created.get("aud") {
        Some(Value::String(aud)) => aud.clone(),
        Some(Value::Array(list)) => list
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    if audience.is_empty() {
        return Err(refused("the created stream has no aud"));
    }
    let issuer = text(&created, "iss").unwrap_or_else(|| found.issuer.clone());
    let poll_endpoint = match setup.delivery {
        Delivery::Poll => Some(
            created
                .get("delivery")
                .and_then(|d| text(d, "endpoint_url"))
                .ok_or_else(|| refused("the created poll stream has no endpoint_url"))?,
        ),
        Delivery::Push => None,
    };
    let sealed = setup
        .bearer
        .as_ref()
        .map(|b| secrets.seal(b.expose_secret(), setup.org.id.0.as_bytes()));
    let old = SsfStream::for_org(conn, setup.org.id).await?;
    let stored = SsfStream::replace(
        conn,
        &NewSsfStream {
            org_id: setup.org.id,
            transmitter: setup.transmitter,
            issuer: &issuer,
            jwks_uri: &found.jwks_uri,
            configuration_endpoint: Some(&endpoint),
            verification_endpoint: found.verification_endpoint.as_deref(),
            stream_id: Some(&stream_id),
            audience: &audience,
            delivery: setup.delivery,
            poll_endpoint: poll_endpoint.as_deref(),
            bearer_sealed: sealed.as_deref(),
        },
        issued.as_ref(),
    )
    .await?;
    if let Some(old) = old
        && let Err(e) = delete_at_transmitter(http, secrets, &old).await
    {
        tracing::warn!(org = %setup.org.slug, error = %e, "cannot delete the old stream at its transmitter");
    }
    Ok(stored)
}

/// The bearer the app presents to `stream`'s transmitter.
pub fn bearer(
    secrets: &SecretBox,
    stream: &SsfStream,
) -> Result<Option<SecretString>, ManageError> {
    stream
        .bearer_sealed
        .as_deref()
        .map(|sealed| secrets.open(sealed, stream.org_id.0.as_bytes()))
        .transpose()
        .map_err(|e| refused(e.to_string()))
}

/// Deletes `stream` at its transmitter (SSF §8.1.1.5).
pub async fn delete_at_transmitter(
    http: &IdpHttp,
    secrets: &SecretBox,
    stream: &SsfStream,
) -> Result<(), ManageError> {
    let (Some(endpoint), Some(id)) = (&stream.configuration_endpoint, &stream.stream_id) else {
        return Ok(());
    };
    let mut url = Url::parse(endpoint).map_err(|e| refused(e.to_string()))?;
    url.query_pairs_mut().append_pair("stream_id", id);
    call(
        http,
        Method::DELETE,
        url.as_str(),
        bearer(secrets, stream)?.as_ref(),
        None,
    )
    .await?;
    Ok(())
}

/// Removes the org's stream: deleted at its transmitter (a failure there is reported, the
/// stream forgotten all the same, so its header stops working).
pub async fn remove(
    conn: &mut AsyncPgConnection,
    http: &IdpHttp,
    secrets: &SecretBox,
    org: &Org,
) -> Result<Option<ManageError>, ManageError> {
    let Some(stream) = SsfStream::for_org(conn, org.id).await? else {
        return Ok(None);
    };
    SsfStream::delete_for_org(conn, org.id).await?;
    Ok(delete_at_transmitter(http, secrets, &stream).await.err())
}

/// Asks the transmitter for a verification event (SSF §8.1.4.2) carrying a fresh `state`,
/// recorded so that the event can be matched when it arrives.
pub async fn request_verification(
    conn: &mut AsyncPgConnection,
    http: &IdpHttp,
    secrets: &SecretBox,
    stream: &SsfStream,
) -> Result<String, ManageError> {
    let endpoint = stream
        .verification_endpoint
        .as_deref()
        .ok_or_else(|| refused("the transmitter has no verification_endpoint"))?;
    let state = uuid::Uuid::new_v4().simple().to_string();
    SsfStream::record_verification_requested(conn, stream.id, &state).await?;
    let body = json!({ "stream_id": stream.stream_id, "state": state });
    call(
        http,
        Method::POST,
        endpoint,
        bearer(secrets, stream)?.as_ref(),
        Some(&body),
    )
    .await?;
    Ok(state)
}
