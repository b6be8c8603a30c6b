//! The real OpenID Provider of the tests (`e2e/idp`, npm `oidc-provider`), as a separate
//! process, and a plain-HTTP driver for its login and logout pages.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::Arc,
};

use reqwest::{StatusCode, header::LOCATION};
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp};

/// Starts single sign-on in `browser` as the sign-in page's form does: a same-origin POST.
pub async fn start_sso(browser: &Browser, org: &str) -> reqwest::Response {
    browser.post_form("/auth/oidc/start", &[("org", org)]).await
}

/// A running provider; killed when dropped.
pub struct OidcProvider {
    pub issuer: String,
    process: Child,
    /// The person's browser at the provider (its own cookies).
    pub browser: reqwest::Client,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A client registered at the provider for `app`.
pub fn client(app: &TestApp, client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_secret": format!("{client_id}-secret"),
        "redirect_uris": [app.url("/auth/oidc/callback")],
        "post_logout_redirect_uris": [app.url("/login?reason=signed_out")],
        "backchannel_logout_uri": app.url("/backchannel-logout"),
    })
}

/// Starts a provider process (`IDP_CONFIG` set by the caller) and waits for its one ready line,
/// `{"issuer": …}`; its stderr is kept (and drained, so it never blocks) to explain a failed
/// start.
pub fn spawn_provider(mut command: Command) -> (Child, String) {
    let mut process = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the provider starts");
    let stderr = Arc::new(std::sync::Mutex::new(String::new()));
    let drain = {
        let stderr = stderr.clone();
        let pipe = BufReader::new(process.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                let mut kept = stderr.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        })
    };
    let mut line = String::new();
    BufReader::new(process.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        let _ = process.wait();
        let _ = drain.join();
        panic!("the provider did not start: {}", stderr.lock().unwrap())
    });
    (process, ready["issuer"].as_str().unwrap().to_owned())
}

/// The person's browser at a provider: its own cookies, redirects not followed.
pub fn provider_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .build()
        .unwrap()
}

impl OidcProvider {
    /// Starts the provider with these clients and accounts (`IDP_CONFIG`).
    pub fn start(clients: Vec<Value>, accounts: Value) -> OidcProvider {
        Self::start_patching(clients, accounts, Value::Null)
    }

    /// Starts the provider so that every ID token it issues carries `id_token_patch` (see
    /// e2e/idp/README.md; `null`: unchanged).
    pub fn start_patching(
        clients: Vec<Value>,
        accounts: Value,
        id_token_patch: Value,
    ) -> OidcProvider {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/idp/provider.mjs");
        let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/idp/node_modules");
        assert!(
            std::path::Path::new(modules).exists(),
            "the test OpenID Provider is not installed: run scripts/install-e2e"
        );
        let mut config = json!({ "port": 0, "clients": clients, "accounts": accounts });
        if !id_token_patch.is_null() {
            config["id_token_patch"] = id_token_patch;
        }
        let mut node = Command::new("node");
        node.arg(script).env("IDP_CONFIG", config.to_string());
        let (process, issuer) = spawn_provider(node);
        OidcProvider {
            issuer,
            process,
            browser: provider_browser(),
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.issuer)
        } else {
            location.to_owned()
        }
    }

    /// Follows an authorization URL through the provider's login page (unless the person is
    /// signed in there already), as `login`, and returns
    /// where the provider sends the browser back (the app's callback with `code` and `state`).
    pub async fn sign_in_at(&self, authorize_url: &str, login: &str) -> String {
        let first = self.browser.get(authorize_url).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::SEE_OTHER, "authorize");
        let next = first.headers()[LOCATION].to_str().unwrap().to_owned();
        if !next.contains("/interaction/") {
            return next; // already signed in at the provider: straight back to the app
        }
        let interaction = self.absolute(&next);
        let login_page = self
            .browser
            .post(&interaction)
            .form(&[
                ("prompt", "login"),
                ("login", login),
                ("password", "any password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(login_page.status(), StatusCode::SEE_OTHER, "login form");
        let resume = self.absolute(login_page.headers()[LOCATION].to_str().unwrap());
        let back = self.browser.get(&resume).send().await.unwrap();
        assert_eq!(back.status(), StatusCode::SEE_OTHER, "resume");
        back.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    /// The whole SSO sign-in of `browser` into the app through org `org`, as `login`: returns
    /// the app's answer to the callback.
    pub async fn sign_in(&self, browser: &Browser, org: &str, login: &str) -> reqwest::Response {
        let started = start_sso(browser, org).await;
        assert_eq!(
            started.status(),
            StatusCode::SEE_OTHER,
            "the app sends the browser to the IdP"
        );
        let authorize = started.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&self.issuer));
        let callback = self.sign_in_at(&authorize, login).await;
        browser.client.get(callback).send().await.unwrap()
    }

    /// Signs out at the provider (RP-initiated logout, confirmed), which makes it call every
    /// client's back-channel logout URI before answering.
    pub async fn sign_out(&self) {
        self.end_session(&format!("{}/session/end", self.issuer))
            .await;
    }

    /// Follows an RP-initiated logout URL at the provider and confirms it; returns where the
    /// provider then sends the browser.
    pub async fn end_session(&self, url: &str) -> String {
        let page = self.browser.get(url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "end_session page");
        let html = page.text().await.unwrap();
        let xsrf = html
            .split("name=\"xsrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let confirmed = self
            .browser
            .post(format!("{}/session/end/confirm", self.issuer))
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            confirmed.status(),
            StatusCode::SEE_OTHER,
            "end_session confirm"
        );
        confirmed.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    /// Whether an authorization request at the provider asks the person to sign in (rather than
    /// sending them straight back, signed in).
    pub async fn asks_to_sign_in(&self, authorize_url: &str) -> bool {
        let first = self.browser.get(authorize_url).send().await.unwrap();
        let next = first.headers()[LOCATION].to_str().unwrap();
        next.contains("/interaction/")
    }

    /// A JWT signed with the provider's own signing key.
    pub async fn sign(&self, header: Value, payload: Value) -> String {
        self.browser
            .post(format!("{}/test/sign", self.issuer))
            .json(&json!({ "header": header, "payload": payload }))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
