"""idpyoidc as the second test OpenID Provider: its configuration, and the few extension points
provider.py needs (a login page, ID tokens with a single-string `aud`, accounts from IDP_CONFIG,
and two workarounds of idpyoidc 5.0.0; see README.md)."""

import html

import idpyoidc.server.token.id_token as id_token_module
from cryptojwt.jwt import JWT
from idpyoidc.server import Server
from idpyoidc.server.configure import OPConfiguration
from idpyoidc.server.cookie_handler import CookieHandler
from idpyoidc.server.exception import FailedAuthentication
from idpyoidc.server.oauth2.add_on.pkce import CC_METHOD
from idpyoidc.server.oidc.session import Session
from idpyoidc.server.token.id_token import IDToken
from idpyoidc.server.user_authn.authn_context import INTERNETPROTOCOLPASSWORD
from idpyoidc.server.user_authn.user import UserAuthnMethod, create_signed_jwt
from idpyoidc.util import split_uri


class Accounts:
    """idpyoidc's user-info store, keyed by `sub` (the user id idpyoidc sessions carry).
    Configured logins have their claims; any other login signs in too, as e2e/idp's do."""

    def __init__(self, configured):
        self.configured = configured
        self.by_sub = {}
        for login in configured:
            self.remember(login)

    def for_login(self, login):
        if login in self.configured:
            return {"sub": login, **self.configured[login]}
        email = login if "@" in login else f"{login}@example.test"
        return {"sub": f"sub-{login}", "email": email, "email_verified": True}

    def remember(self, login):
        """The `sub` of `login`, whose claims userinfo and ID tokens then give."""
        account = self.for_login(login)
        self.by_sub.setdefault(account["sub"], account)
        return account["sub"]

    def __call__(self, user_id, client_id, user_info_claims=None, **kwargs):
        claims = dict(self.by_sub.get(user_id, {}))
        if user_info_claims is None:
            return claims
        return {k: claims[k] for k in user_info_claims if k in claims}


class LoginForm(UserAuthnMethod):
    """A login page for any login and any password; the login picks the account."""

    url_endpoint = "/verify/user"

    def __call__(self, **kwargs):
        context = self.upstream_get("context")
        keyjar = self.upstream_get("attribute", "keyjar")
        # What the form's answer needs (the authorization request) rides in a signed JWT.
        token = create_signed_jwt(context.issuer, keyjar, sign_alg="ES256", **kwargs)
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign-in</title>"
            "</head><body><h1>Sign-in</h1>"
            f'<form method=post action="{self.url_endpoint}">'
            f'<input type=hidden name=token value="{html.escape(token)}">'
            '<label>Login <input name=login autocomplete=username></label>'
            '<label>Password <input type=password name=password></label>'
            "<button type=submit>Sign-in</button></form></body></html>"
        )

    def verify(self, *args, **kwargs):
        login = kwargs.get("login")
        if not login:
            raise FailedAuthentication("login is required")
        # The accounts are idpyoidc's user-info store.
        return self.upstream_get("context").userinfo.remember(login)


class SingleAudienceJWT(JWT):
    """cryptojwt's JWT with a one-element audience written as a plain string."""

    @staticmethod
    def put_together_aud(recv, aud=None):
        together = JWT.put_together_aud(recv, aud)
        return together[0] if len(together) == 1 else together


class IPSIEIDToken(IDToken):
    """idpyoidc's ID token, signed with a single-string `aud` unless `aud_as_array`: idpyoidc
    writes an array, and IPSIE SL1 wants one string."""

    def sign_encrypt(self, *args, **kwargs):
        if self.kwargs.get("aud_as_array"):
            return super().sign_encrypt(*args, **kwargs)
        # sign_encrypt builds its JWT writer from its module's name; requests are served one
        # at a time (provider.py), so swapping it for this call is safe.
        original = id_token_module.JWT
        id_token_module.JWT = SingleAudienceJWT
        try:
            return super().sign_encrypt(*args, **kwargs)
        finally:
            id_token_module.JWT = original


class EndSession(Session):
    """idpyoidc's end-session endpoint without client authentication. RP-initiated logout is a
    browser redirect that authenticates no client; idpyoidc 5.0.0's parse_request fails on the
    result of its own "none" method (it reads a `token` that method never sets)."""

    def client_authentication(self, request, http_info=None, **kwargs):
        return {}


def public_subject(uid, *args, **kwargs):
    """The account's own `sub`, not a hash of it (idpyoidc's default)."""
    return uid


def endpoint(path, cls, **kwargs):
    return {"path": path, "class": cls, "kwargs": kwargs}


def server_config(issuer, accounts, aud_as_array=False):
    """idpyoidc's configuration: code flow with S256 PKCE, ES256, back-channel logout."""
    return {
        "issuer": issuer,
        "keys": {
            "key_defs": [{"type": "EC", "crv": "P-256", "use": ["sig"]}],
            "uri_path": "jwks",
        },
        "preference": {
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
        },
        "endpoint": {
            "provider_config": endpoint(
                ".well-known/openid-configuration",
                "idpyoidc.server.oidc.provider_config.ProviderConfiguration",
                client_authn_method=None,
            ),
            "authorization": endpoint(
                "authorization",
                "idpyoidc.server.oidc.authorization.Authorization",
                client_authn_method=None,
                response_types_supported=["code"],
                response_modes_supported=["query"],
            ),
            "token": endpoint(
                "token",
                "idpyoidc.server.oidc.token.Token",
                client_authn_method=["client_secret_basic", "client_secret_post"],
            ),
            "userinfo": endpoint("userinfo", "idpyoidc.server.oidc.userinfo.UserInfo"),
            "session": endpoint(
                "session",
                "op.EndSession",
                logout_verify_url=f"{issuer}/verify_logout",
                post_logout_uri_path="post_logout",
                signing_alg="ES256",
                backchannel_logout_supported=True,
                backchannel_logout_session_supported=True,
            ),
        },
        "add_on": {
            "pkce": {
                "function": "idpyoidc.server.oauth2.add_on.pkce.add_support",
                "kwargs": {
                    "essential": True,
                    "code_challenge_methods": {"S256": CC_METHOD["S256"]},
                },
            }
        },
        "authentication": {
            "user": {
                "acr": INTERNETPROTOCOLPASSWORD,
                "class": LoginForm,
                "kwargs": {},
            }
        },
        # A closure: idpyoidc deep-copies its configuration, and this store must stay one.
        "userinfo": {"class": lambda **_: accounts, "kwargs": {}},
        "token_handler_args": {
            "code": {"kwargs": {"lifetime": 600}},
            "token": {
                "class": "idpyoidc.server.token.jwt_token.JWTToken",
                "kwargs": {"lifetime": 3600},
            },
            "id_token": {
                # idpyoidc imports token classes by name.
                "class": "op.IPSIEIDToken",
                "kwargs": {
                    "lifetime": 3600,
                    "add_claims_by_scope": True,
                    "aud_as_array": aud_as_array,
                },
            },
        },
        "session_params": {"sub_func": {"public": {"function": public_subject}}},
        "httpc_params": {"verify": False, "timeout": 4},
    }


def registered(uris):
    """Client metadata URIs as idpyoidc keeps them: (base, query) pairs."""
    return [tuple(split_uri(uri)) for uri in uris]


def client_record(client):
    record = {
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "redirect_uris": registered(client.get("redirect_uris", [])),
        # idpyoidc checks a logout's redirect against the singular key.
        "post_logout_redirect_uri": registered(client.get("post_logout_redirect_uris", [])),
        "token_endpoint_auth_method": "client_secret_basic",
        "response_types": ["code"],
        "allowed_scopes": ["openid", "email", "profile"],
        "id_token_signed_response_alg": "ES256",
        "client_salt": "salt",
    }
    if client.get("backchannel_logout_uri"):
        record["backchannel_logout_uri"] = client["backchannel_logout_uri"]
        record["backchannel_logout_session_required"] = True
    return record


def build(issuer, config):
    """An idpyoidc server at `issuer` for IDP_CONFIG `config` (clients, accounts)."""
    accounts = Accounts(config.get("accounts") or {})
    cookies = CookieHandler(
        keys={"key_defs": [
            {"type": "OCT", "use": ["enc"], "kid": "enc"},
            {"type": "OCT", "use": ["sig"], "kid": "sig"},
        ]},
        flags={},  # plain http on loopback: no Secure flag
    )
    conf = server_config(issuer, accounts, bool(config.get("aud_as_array")))
    server = Server(OPConfiguration(conf), cookie_handler=cookies)
    server.context.cdb = {c["client_id"]: client_record(c) for c in config["clients"]}
    return server
