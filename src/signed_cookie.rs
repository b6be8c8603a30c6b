//! Small cookies the server must be able to trust when they come back (a flash message, the
//! state of an SSO sign-in): signed with the instance's cookie key, `HttpOnly`, `SameSite=Lax`.

use actix_web::{
    HttpRequest,
    cookie::{Cookie, CookieJar, Key, SameSite, time::Duration},
    web,
};

/// Signs and checks cookies with the cookie key; `secure` when the app is served over https.
pub struct CookieSigner {
    pub key: Key,
    pub secure: bool,
}

impl CookieSigner {
    /// A signed cookie `name=value` for `path`, living `max_age`.
    pub fn sign(
        &self,
        name: &str,
        value: String,
        path: &str,
        max_age: Duration,
    ) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(
            Cookie::build(name.to_owned(), value)
                .path(path.to_owned())
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Lax)
                .max_age(max_age)
                .finish(),
        );
        jar.delta().next().expect("just added").clone()
    }

    /// The value of the request's cookie `name`, if its signature is good.
    pub fn verified(req: &HttpRequest, name: &str) -> Option<String> {
        let signer = req.app_data::<web::Data<CookieSigner>>()?;
        let mut jar = CookieJar::new();
        jar.add_original(req.cookie(name)?);
        jar.signed(&signer.key)
            .get(name)
            .map(|c| c.value().to_owned())
    }
}

/// A cookie that removes `name` at `path`.
pub fn removal(name: &str, path: &str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name.to_owned(), "")
        .path(path.to_owned())
        .finish();
    cookie.make_removal();
    cookie
}
