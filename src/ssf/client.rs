//! Talking to a transmitter (SSF 1.0 §7–8): its configuration, read from the well-known
//! document, and calls to its endpoints with the org's bearer, through [`IdpHttp`] (https,
//! public addresses, capped bodies, a timeout).

use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use url::Url;

use crate::auth::idp_http::{FetchError, IdpHttp};

/// Why the stream could not be set up or changed: words for the operator or admin.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Transmitter(String),
    /// The transmitter answered an endpoint with this error status.
    #[error("{method} {url}: the transmitter answered {status}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
    },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl From<FetchError> for ManageError {
    fn from(e: FetchError) -> Self {
        Self::Transmitter(e.to_string())
    }
}

pub(crate) fn refused(why: impl Into<String>) -> ManageError {
    ManageError::Transmitter(why.into())
}

/// A transmitter's configuration (the members the app uses).
#[derive(Clone, Debug)]
pub struct Configuration {
    pub issuer: String,
    pub jwks_uri: String,
    pub configuration_endpoint: Option<String>,
    pub verification_endpoint: Option<String>,
    pub status_endpoint: Option<String>,
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
        status_endpoint: text("status_endpoint"),
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
pub async fn call(
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
        return Err(ManageError::Status {
            method,
            url: url.to_owned(),
            status,
        });
    }
    if response.body().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(response.body())
        .map_err(|e| refused(format!("{method} {url}: not JSON ({e})")))
}
