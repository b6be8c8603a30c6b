//! The second, independent OpenID Provider of the tests (`e2e/idp-python`: idpyoidc from PyPI),
//! as a separate process, and a plain-HTTP driver for its login and logout pages.

use std::process::{Child, Command};

use reqwest::{StatusCode, header::LOCATION};
use serde_json::{Value, json};

use crate::{
    helpers::Browser,
    oidc_provider::{provider_browser, spawn_provider, start_sso},
};

/// A running idpyoidc provider; killed when dropped.
pub struct PythonOp {
    pub issuer: String,
    process: Child,
    /// The person's browser at the provider (its own cookies).
    pub browser: reqwest::Client,
}

impl Drop for PythonOp {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The value of the hidden form field `name` in `html`.
fn hidden_field(html: &str, name: &str) -> String {
    html.split(&format!("name={name} value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        .to_owned()
}

impl PythonOp {
    /// Starts the provider with this `IDP_CONFIG` (`clients` as `oidc_provider::client` makes
    /// them, `accounts`; see e2e/idp-python/README.md) on a free port.
    pub fn start(mut config: Value) -> PythonOp {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-idp-python/bin/python");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/idp-python/provider.py");
        assert!(
            std::path::Path::new(python).exists(),
            "the Python test OpenID Provider is not installed: run scripts/install-python-op"
        );
        config["port"] = json!(0);
        let mut command = Command::new(python);
        command.arg(script).env("IDP_CONFIG", config.to_string());
        let (process, issuer) = spawn_provider(command);
        PythonOp {
            issuer,
            process,
            browser: provider_browser(),
        }
    }

    /// Follows an authorization URL through the provider's login page (unless the person is
    /// signed in there already), as `login`; returns where the provider sends the browser back
    /// (the app's callback with `code`, `state` and `iss`).
    pub async fn sign_in_at(&self, authorize_url: &str, login: &str) -> String {
        let first = self.browser.get(authorize_url).send().await.unwrap();
        if first.status() == StatusCode::SEE_OTHER {
            // Signed in at the provider already: straight back to the app.
            return first.headers()[LOCATION].to_str().unwrap().to_owned();
        }
        assert_eq!(first.status(), StatusCode::OK, "the login page");
        let token = hidden_field(&first.text().await.unwrap(), "token");
        let answer = self
            .browser
            .post(format!("{}/verify/user", self.issuer))
            .form(&[
                ("token", token.as_str()),
                ("login", login),
                ("password", "any password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "the login form");
        answer.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    /// The whole SSO sign-in of `browser` into the app through org `org`, as `login`: returns
    /// the app's answer to the callback.
    pub async fn sign_in(&self, browser: &Browser, org: &str, login: &str) -> reqwest::Response {
        let started = start_sso(browser, org).await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER, "to the IdP");
        let authorize = started.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&self.issuer), "{authorize}");
        let callback = self.sign_in_at(&authorize, login).await;
        browser.client.get(callback).send().await.unwrap()
    }

    /// Signs out at the provider (its end-session endpoint, confirmed), which makes idpyoidc
    /// POST a logout token to every client's back-channel logout URI before answering.
    pub async fn sign_out(&self) -> String {
        self.end_session(&format!("{}/session", self.issuer)).await
    }

    /// Follows an RP-initiated logout URL at the provider and confirms it; returns where the
    /// provider then sends the browser.
    pub async fn end_session(&self, url: &str) -> String {
        let asked = self.browser.get(url).send().await.unwrap();
        assert_eq!(asked.status(), StatusCode::SEE_OTHER, "end_session");
        let confirm = asked.headers()[LOCATION].to_str().unwrap().to_owned();
        let page = self.browser.get(&confirm).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "the sign-out question");
        let sjwt = hidden_field(&page.text().await.unwrap(), "sjwt");
        let confirmed = self
            .browser
            .post(format!("{}/rp_logout", self.issuer))
            .form(&[("sjwt", sjwt.as_str()), ("logout", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            confirmed.status(),
            StatusCode::SEE_OTHER,
            "sign-out confirmed: {}",
            confirmed.text().await.unwrap_or_default()
        );
        confirmed.headers()[LOCATION].to_str().unwrap().to_owned()
    }
}
