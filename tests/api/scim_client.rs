//! A SCIM client for the tests: an org with a SCIM token, and requests as an IdP sends them.

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use ual_todo::db::{
    ids::OrgId,
    models::{AccessToken, Org, ScimToken},
};

use crate::helpers::{TestApp, TestUser, spawn_app};

/// An app, the org `acme` and a SCIM token of it.
pub struct Scim {
    pub app: TestApp,
    pub org: Org,
    pub token: String,
}

/// A SCIM answer: status, headers, and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("a {name} header in {self:?}"))
            .to_str()
            .unwrap()
    }

    /// Asserts this is a SCIM error with `status` and `scim_type`.
    pub fn assert_error(&self, status: StatusCode, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(
            self.header("content-type"),
            "application/scim+json",
            "{:?}",
            self.body
        );
        assert_eq!(
            self.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(self.body["status"], status.as_str(), "status is a string");
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{:?}", self.body);
        assert!(self.body["detail"].is_string());
    }
}

pub async fn scim() -> Scim {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let token = scim_token(&app, org.id).await;
    Scim { app, org, token }
}

/// A new SCIM token of `org`.
pub async fn scim_token(app: &TestApp, org: OrgId) -> String {
    let (_, issued) = ScimToken::create(&mut *app.conn().await, org)
        .await
        .unwrap();
    ual_todo::secret_token::reveal(&issued).to_owned()
}

/// A personal access token of `user`.
pub async fn personal_token(app: &TestApp, user: &TestUser) -> String {
    let (_, issued) = AccessToken::create(&mut *app.conn().await, user.user.id, "script")
        .await
        .unwrap();
    ual_todo::secret_token::reveal(&issued).to_owned()
}

/// Whether a personal access token still reads the API.
pub async fn token_works(app: &TestApp, token: &str) -> bool {
    reqwest::Client::new()
        .get(app.url("/api/todos"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK
}

/// Sends `method path` under `/scim/v2` with `token` and `body` as `application/scim+json`.
pub async fn send_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, app.url(&format!("/scim/v2{path}")))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON, not {text:?}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

impl Scim {
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        send_as(&self.app, &self.token, method, path, body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    /// Provisions a user with this email; its resource.
    pub async fn create_user(&self, email: &str) -> Value {
        let created = self
            .post(
                "/Users",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": email,
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "emails": [{"value": email, "primary": true, "type": "work"}],
                    "active": true,
                }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        created.body
    }

    /// A local user (with a password, so it can sign in) of the org.
    pub async fn local_user(&self, email: &str) -> TestUser {
        self.app.create_user(self.org.id, email, false).await
    }
}

/// The PATCH body of `operations`.
pub fn patch_op(operations: Value) -> Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations,
    })
}
