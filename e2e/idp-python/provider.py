"""A second, independent test OpenID Provider for ual-todo's test suites (NOT for production).

idpyoidc (PyPI, IdentityPython) does the protocol: discovery, JWKS, authorization code with
PKCE, the token endpoint, RP-initiated logout and back-channel logout (its own logout tokens,
POSTed by its own code). This file only puts it on a socket (standard library HTTP server)
and adds a login page that accepts any password. Configuration: IDP_CONFIG (JSON), see
README.md. Prints one ready line: {"issuer":"http://127.0.0.1:PORT"}
"""

import html
import json
import logging
import os
import sys
import threading
import traceback
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from cryptojwt.jwt import JWT
from idpyoidc.message.oauth2 import ResponseMessage
from idpyoidc.message.oidc import AccessTokenRequest, AuthorizationRequest
from idpyoidc.server import Server
from idpyoidc.server.oauth2.add_on.pkce import CC_METHOD
from idpyoidc.server.configure import OPConfiguration
from idpyoidc.server.cookie_handler import CookieHandler
from idpyoidc.server.exception import FailedAuthentication
from idpyoidc.server.oidc.session import Session
from idpyoidc.server.token.id_token import IDToken
from idpyoidc.server.user_authn.authn_context import INTERNETPROTOCOLPASSWORD
from idpyoidc.server.user_authn.user import UserAuthnMethod, create_signed_jwt
from idpyoidc.util import split_uri

# Largest request body read (forms and JSON here are small).
MAX_BODY = 64 * 1024


class BadRequest(Exception):
    """A request this server refuses with 400 before idpyoidc sees it."""


def fail(message):
    print(f"idp-python: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


# --- configuration ------------------------------------------------------------
try:
    CONFIG = json.loads(os.environ.get("IDP_CONFIG", ""))
except ValueError as err:
    fail(f"IDP_CONFIG must be set to a JSON document: {err}")
CLIENTS = CONFIG.get("clients") or []
ACCOUNTS = CONFIG.get("accounts") or {}
# idpyoidc writes `aud` as an array; IPSIE SL1 wants one string, so by default the ID token
# class below writes the client id alone. `"aud_as_array": true` keeps idpyoidc's own form.
AUD_AS_ARRAY = bool(CONFIG.get("aud_as_array"))
if not isinstance(CLIENTS, list) or not CLIENTS:
    fail("IDP_CONFIG.clients must be a non-empty array")


def account_for_login(login):
    """The claims of `login`: configured, or made up (any login signs in), like e2e/idp."""
    configured = ACCOUNTS.get(login)
    if configured:
        return {"sub": login, **configured}
    email = login if "@" in login else f"{login}@example.test"
    return {"sub": f"sub-{login}", "email": email, "email_verified": True}


class Accounts:
    """idpyoidc's user-info store, keyed by `sub` (the user id idpyoidc sessions carry)."""

    def __init__(self):
        self.by_sub = {}
        for login in ACCOUNTS:
            account = account_for_login(login)
            self.by_sub[account["sub"]] = account

    def remember(self, login):
        account = account_for_login(login)
        self.by_sub.setdefault(account["sub"], account)
        return account["sub"]

    def __call__(self, user_id, client_id, user_info_claims=None, **kwargs):
        claims = dict(self.by_sub.get(user_id, {}))
        if user_info_claims is None:
            return claims
        return {k: claims[k] for k in user_info_claims if k in claims}


ACCOUNT_STORE = Accounts()


# --- idpyoidc extension points -----------------------------------------------------
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
        return ACCOUNT_STORE.remember(login)


class SingleAudienceJWT(JWT):
    """cryptojwt's JWT with a one-element audience written as a plain string."""

    @staticmethod
    def put_together_aud(recv, aud=None):
        together = JWT.put_together_aud(recv, aud)
        return together[0] if len(together) == 1 else together


class IPSIEIDToken(IDToken):
    """idpyoidc's ID token, signed with a single-string `aud` (see AUD_AS_ARRAY)."""

    def sign_encrypt(self, *args, **kwargs):
        import idpyoidc.server.token.id_token as module

        if AUD_AS_ARRAY:
            return super().sign_encrypt(*args, **kwargs)
        original = module.JWT
        module.JWT = SingleAudienceJWT
        try:
            return super().sign_encrypt(*args, **kwargs)
        finally:
            module.JWT = original


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


def server_config(issuer):
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
                f"{__name__}.EndSession",
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
        "userinfo": {"class": lambda **_: ACCOUNT_STORE, "kwargs": {}},
        "token_handler_args": {
            "code": {"kwargs": {"lifetime": 600}},
            "token": {
                "class": "idpyoidc.server.token.jwt_token.JWTToken",
                "kwargs": {"lifetime": 3600},
            },
            "id_token": {
                # idpyoidc imports token classes by name: this very module's.
                "class": f"{__name__}.IPSIEIDToken",
                "kwargs": {"lifetime": 3600, "add_claims_by_scope": True},
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


# --- HTTP -------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    server_version = "idp-python"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        if os.environ.get("IDP_LOG"):
            super().log_message(format, *args)

    # One request at a time through idpyoidc's in-memory state. Discovery and keys are read
    # without the lock: the app fetches them while a back-channel logout (under the lock)
    # waits for its answer.
    lock = threading.Lock()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            if path == "/jwks":
                return self.send(200, json.dumps(OP.keyjar.export_jwks()), "application/json")
            if path == "/.well-known/openid-configuration":
                return self.endpoint("provider_config", url)
            with self.lock:
                route = ROUTES.get((self.command, path))
                if route is None:
                    return self.send(404, json.dumps({"error": "not found"}), "application/json")
                return route(self, url)
        except BadRequest as err:
            self.error(400, "invalid_request", str(err))
        except Exception as err:  # never a silent 500
            traceback.print_exc(file=sys.stderr)
            self.send(500, json.dumps({"error": "server_error", "error_description": str(err)}))

    # -- helpers
    def body(self):
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            raise BadRequest("bad content-length")
        if not 0 <= length <= MAX_BODY:
            raise BadRequest(f"the body must be at most {MAX_BODY} bytes")
        return self.rfile.read(length).decode(errors="replace") if length else ""

    def form(self):
        return dict(parse_qsl(self.body(), keep_blank_values=True))

    def cookies(self):
        jar = SimpleCookie(self.headers.get("cookie") or "")
        return [{"name": name, "value": morsel.value} for name, morsel in jar.items()]

    def http_info(self):
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "cookie"}
        return {
            "headers": headers,
            "method": self.command,
            "url": f"{OP.issuer}{self.path}",
            "cookie": self.cookies(),
        }

    def send(self, status, text, content_type="application/json", headers=(), cookies=()):
        data = text.encode() if isinstance(text, str) else text
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-store")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            if name.lower() not in ("content-type", "cache-control", "pragma"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", set_cookie(cookie))
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location, cookies=()):
        self.send(303, "", "text/plain", [("location", location)], cookies)

    def error(self, status, error, description):
        body = ResponseMessage(error=error, error_description=description).to_json()
        self.send(status, body)

    # -- idpyoidc endpoints, as idpyoidc's own Flask example drives them
    def endpoint(self, name, url):
        endpoint = OP.get_endpoint(name)
        info = self.http_info()
        try:
            if self.command == "GET":
                request = dict(parse_qsl(url.query, keep_blank_values=True))
            else:
                request = self.body()
            request = endpoint.parse_request(request, http_info=info)
        except Exception as err:
            return self.error(400, "invalid_request", str(err))
        if isinstance(request, ResponseMessage) and "error" in request:
            status = 401 if request["error"] == "invalid_client" else 400
            return self.send(status, request.to_json())
        try:
            if name == "token":
                request = AccessTokenRequest(**request)
            args = endpoint.process_request(request, http_info=info)
        except Exception as err:
            return self.error(400, "invalid_request", str(err))
        if "redirect_location" in args:
            return self.redirect(args["redirect_location"])
        if "http_response" in args:
            return self.send(200, args["http_response"], "text/html; charset=utf-8")
        return self.respond(endpoint, request, **args)

    def respond(self, endpoint, request, error="", **args):
        info = endpoint.do_response(request=request, error=error, **args)
        placement = info.get("response_placement", endpoint.response_placement)
        cookies = info.get("cookie") or []
        if placement == "url":
            return self.redirect(info["response"], cookies)
        status = info.get("response_code", 400 if error else 200)
        content_type = dict(info["http_headers"]).get("Content-type", "application/json")
        return self.send(status, info["response"], content_type, info["http_headers"], cookies)

    def verify_user(self, url):
        """The login form's answer: the account, then idpyoidc finishes the authorization."""
        authn = OP.context.authn_broker.get_method_by_id("user")
        form = self.form()
        try:
            user = authn.verify(**form)
            token = authn.unpack_token(form.get("token", ""))
        except Exception as err:
            return self.error(400, "invalid_request", f"login: {err}")
        request = AuthorizationRequest().from_urlencoded(token["query"])
        endpoint = OP.get_endpoint("authorization")
        session_id = endpoint.create_session(
            request, user, token["authn_class_ref"], token["iat"], authn
        )
        args = endpoint.authz_part2(request=request, session_id=session_id)
        if isinstance(args, ResponseMessage) and "error" in args:
            return self.send(400, args.to_json())
        return self.respond(endpoint, request, **args)

    def verify_logout(self, url):
        """The provider's "sign out?" page (RP-initiated logout asks the person)."""
        sjwt = dict(parse_qsl(url.query)).get("sjwt", "")
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Logout Request</title>"
            "</head><body><h1>Do you want to sign out?</h1>"
            '<form method=post action="/rp_logout">'
            f'<input type=hidden name=sjwt value="{html.escape(sjwt)}">'
            '<button type=submit name=logout value=yes>Yes, sign me out</button>'
            "<button type=submit>No, stay signed in</button></form></body></html>"
        )
        return self.send(200, page, "text/html; charset=utf-8")

    def rp_logout(self, url):
        """Confirmed: idpyoidc POSTs a logout token to every client's back-channel URI."""
        endpoint = OP.get_endpoint("session")
        form = self.form()
        try:
            info = endpoint.unpack_signed_jwt(form.get("sjwt", ""))
        except Exception as err:
            return self.error(400, "invalid_request", f"sjwt: {err}")
        try:
            endpoint.do_verified_logout(alla="logout" in form, **info)
        except Exception as err:  # idpyoidc gives up at the first unreachable client
            print(f"idp-python: back-channel logout failed: {err}", file=sys.stderr, flush=True)
            return self.error(502, "server_error", f"back-channel logout failed: {err}")
        return self.redirect(info["redirect_uri"], endpoint.kill_cookies())

    def post_logout(self, url):
        page = "<!doctype html><title>Signed out</title><h1>Sign-out Success</h1>"
        return self.send(200, page, "text/html; charset=utf-8")


ROUTES = {
    ("GET", "/authorization"): lambda h, url: h.endpoint("authorization", url),
    ("POST", "/token"): lambda h, url: h.endpoint("token", url),
    ("GET", "/userinfo"): lambda h, url: h.endpoint("userinfo", url),
    ("GET", "/session"): lambda h, url: h.endpoint("session", url),
    ("POST", "/verify/user"): Handler.verify_user,
    ("GET", "/verify_logout"): Handler.verify_logout,
    ("POST", "/rp_logout"): Handler.rp_logout,
    ("GET", "/post_logout"): Handler.post_logout,
}


def set_cookie(cookie):
    """A Set-Cookie value for idpyoidc's cookie description, for plain http on loopback."""
    parts = [f"{cookie['name']}={cookie['value']}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if "expires" in cookie:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    return "; ".join(parts)


def main():
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if os.environ.get("IDP_LOG") else logging.WARNING,
        format="idp-python: %(name)s %(levelname)s %(message)s",
    )
    # Back-channel deliveries (and their failures) are logged at INFO: always show them.
    logging.getLogger("idpyoidc.server.oidc.session").setLevel(logging.INFO)
    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", int(CONFIG.get("port") or 0)), Handler)
    except OSError as err:
        fail(f"cannot listen: {err}")
    httpd.daemon_threads = True
    issuer = f"http://127.0.0.1:{httpd.server_address[1]}"
    global OP
    cookie_handler = CookieHandler(
        keys={"key_defs": [
            {"type": "OCT", "use": ["enc"], "kid": "enc"},
            {"type": "OCT", "use": ["sig"], "kid": "sig"},
        ]},
        flags={},
    )
    OP = Server(OPConfiguration(server_config(issuer)), cookie_handler=cookie_handler)
    OP.context.cdb = {c["client_id"]: client_record(c) for c in CLIENTS}
    print(json.dumps({"issuer": issuer}), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
