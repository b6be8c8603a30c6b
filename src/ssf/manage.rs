//! The org's stream at its transmitter (SSF 1.0 §8): created (push to `PUBLIC_URL/ssf/events`
//! with a header the app generates, or poll); updated in place when the org's settings change
//! but the transmitter stays (§8.1.1.3 PATCH, or §8.1.1.4 PUT where PATCH is not supported);
//! deleted at the old transmitter when the org moves; its status read (§8.1.2.1); a
//! verification asked for (§8.1.4.2). Every call carries the org's bearer.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use url::Url;

pub use super::client::ManageError;
use super::client::{Configuration, call, discover, refused};
use crate::{
    auth::idp_http::IdpHttp,
    config::PublicUrl,
    db::models::{Delivery, NewSsfStream, Org, SsfStream, StreamStatus},
    routes::ssf::PATH,
    secret_box::SecretBox,
    secret_token::{self, Issued},
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

/// How long a page or command waits for the transmitter's status before showing the stored one.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// What to set up for an org.
pub struct Setup<'a> {
    pub org: &'a Org,
    pub transmitter: &'a str,
    pub delivery: Delivery,
    /// The bearer for the transmitter; `None` keeps the stored one when the transmitter stays.
    pub bearer: Option<SecretString>,
}

fn same_transmitter(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Sets the org's stream up at `setup.transmitter` and stores it. The same transmitter as
/// before: the stream there is updated in place (same stream id; a new push header). Another
/// one: a stream is created there and the old one deleted at its transmitter (its header stops
/// working at once).
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
    let old = SsfStream::for_org(conn, setup.org.id).await?;
    let in_place = old
        .as_ref()
        .filter(|old| same_transmitter(&old.transmitter, setup.transmitter))
        .and_then(|old| old.stream_id.clone().map(|id| (old, id)));
    // Never another transmitter's bearer: the stored one only for the same transmitter.
    let bearer = match (&setup.bearer, &in_place) {
        (Some(bearer), _) => Some(bearer.clone()),
        (None, Some((old, _))) => bearer(secrets, old)?,
        (None, None) => None,
    };
    let issued = (setup.delivery == Delivery::Push).then(SsfStream::issue_push_header);
    let request = stream_request(public_url, setup.org, setup.delivery, issued.as_ref());
    let updated = match &in_place {
        Some((_, id)) => match update(http, &endpoint, id, &request, bearer.as_ref()).await {
            Ok(answer) => Some(answer),
            // Gone at the transmitter (deleted there, or expired): created anew below.
            Err(ManageError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let kept_id = updated.is_some();
    let answer = match updated {
        Some(answer) => answer,
        None => {
            call(
                http,
                Method::POST,
                &endpoint,
                bearer.as_ref(),
                Some(&request),
            )
            .await?
        }
    };
    let stream = read_stream(&found, &answer, setup.delivery)?;
    if let (true, Some((_, id))) = (kept_id, &in_place)
        && &stream.stream_id != id
    {
        return Err(refused(format!(
            "the transmitter answered the update of stream {id} with stream {}",
            stream.stream_id
        )));
    }
    let sealed = bearer
        .as_ref()
        .map(|b| secrets.seal(b.expose_secret(), setup.org.id.0.as_bytes()));
    let stored = SsfStream::replace(
        conn,
        &NewSsfStream {
            org_id: setup.org.id,
            transmitter: setup.transmitter,
            issuer: &stream.issuer,
            jwks_uri: &found.jwks_uri,
            configuration_endpoint: Some(&endpoint),
            verification_endpoint: found.verification_endpoint.as_deref(),
            status_endpoint: found.status_endpoint.as_deref(),
            stream_id: Some(&stream.stream_id),
            audience: &stream.audience,
            delivery: setup.delivery,
            poll_endpoint: stream.poll_endpoint.as_deref(),
            bearer_sealed: sealed.as_deref(),
        },
        issued.as_ref(),
    )
    .await?;
    if !kept_id
        && let Some(old) = old
        && let Err(e) = delete_at_transmitter(http, secrets, &old).await
    {
        tracing::warn!(org = %setup.org.slug, error = %e, "cannot delete the old stream at its transmitter");
    }
    Ok(stored)
}

/// The Receiver-Supplied members of the org's stream configuration (SSF §8.1.1).
fn stream_request(
    public_url: &PublicUrl,
    org: &Org,
    delivery: Delivery,
    issued: Option<&Issued>,
) -> Value {
    let delivery = match issued {
        Some(issued) => json!({
            "method": Delivery::Push.urn(),
            "endpoint_url": public_url.join(PATH),
            "authorization_header": format!("Bearer {}", secret_token::reveal(issued)),
        }),
        None => json!({ "method": delivery.urn() }),
    };
    json!({
        "delivery": delivery,
        "events_requested": EVENTS_REQUESTED,
        "description": format!("ual-todo, organisation {}", org.slug),
    })
}

/// Updates stream `id` (SSF §8.1.1.3 PATCH); a transmitter that does not support PATCH gets
/// the whole configuration replaced (§8.1.1.4 PUT: the same members, all Receiver-Supplied).
async fn update(
    http: &IdpHttp,
    endpoint: &str,
    id: &str,
    request: &Value,
    bearer: Option<&SecretString>,
) -> Result<Value, ManageError> {
    let mut body = request.clone();
    body["stream_id"] = json!(id);
    match call(http, Method::PATCH, endpoint, bearer, Some(&body)).await {
        Err(ManageError::Status {
            status: StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED,
            ..
        }) => call(http, Method::PUT, endpoint, bearer, Some(&body)).await,
        answer => answer,
    }
}

/// What the app keeps of a stream configuration the transmitter answered with.
struct Answered {
    stream_id: String,
    issuer: String,
    audience: String,
    poll_endpoint: Option<String>,
}

fn read_stream(
    found: &Configuration,
    answer: &Value,
    delivery: Delivery,
) -> Result<Answered, ManageError> {
    let text =
        |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let stream_id =
        text(answer, "stream_id").ok_or_else(|| refused("the stream has no stream_id"))?;
    let audience = match answer.get("aud") {
        Some(Value::String(aud)) => aud.clone(),
        Some(Value::Array(list)) => list
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    if audience.is_empty() {
        return Err(refused("the stream has no aud"));
    }
    // §8.1.1: the Receiver MUST check that `iss` is the Issuer it read the configuration of.
    let issuer = text(answer, "iss").unwrap_or_else(|| found.issuer.clone());
    if !same_transmitter(&issuer, &found.issuer) {
        return Err(refused(format!(
            "the stream names another issuer ({issuer}) than {}",
            found.issuer
        )));
    }
    let poll_endpoint = match delivery {
        Delivery::Poll => Some(
            answer
                .get("delivery")
                .and_then(|d| text(d, "endpoint_url"))
                .ok_or_else(|| refused("the poll stream has no endpoint_url"))?,
        ),
        Delivery::Push => None,
    };
    Ok(Answered {
        stream_id,
        issuer,
        audience,
        poll_endpoint,
    })
}

/// A stream's status as its transmitter tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteStatus {
    pub status: StreamStatus,
    /// Why, in the transmitter's words (one line, at most 200 characters).
    pub reason: Option<String>,
}

/// Reads `stream`'s status from its transmitter (SSF §8.1.2.1, `GET ?stream_id=`), waiting
/// [`STATUS_TIMEOUT`] at most. Holds no database connection: the caller stores a change.
pub async fn read_status(
    http: &IdpHttp,
    secrets: &SecretBox,
    stream: &SsfStream,
) -> Result<RemoteStatus, ManageError> {
    let endpoint = stream
        .status_endpoint
        .as_deref()
        .ok_or_else(|| refused("the transmitter has no status_endpoint"))?;
    let id = stream
        .stream_id
        .as_deref()
        .ok_or_else(|| refused("the stream has no stream_id"))?;
    let mut url = Url::parse(endpoint).map_err(|e| refused(e.to_string()))?;
    url.query_pairs_mut().append_pair("stream_id", id);
    let bearer = bearer(secrets, stream)?;
    let answer = tokio::time::timeout(
        STATUS_TIMEOUT,
        call(http, Method::GET, url.as_str(), bearer.as_ref(), None),
    )
    .await
    .map_err(|_| refused("the transmitter did not tell the status in time"))??;
    if answer
        .get("stream_id")
        .and_then(Value::as_str)
        .is_some_and(|named| named != id)
    {
        return Err(refused("the transmitter told the status of another stream"));
    }
    let status = answer
        .get("status")
        .and_then(Value::as_str)
        .and_then(StreamStatus::parse)
        .ok_or_else(|| refused("the transmitter's answer has no known status"))?;
    let reason = answer
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| r.chars().filter(|c| !c.is_control()).take(200).collect());
    Ok(RemoteStatus { status, reason })
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
