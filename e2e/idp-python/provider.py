"""A second, independent test OpenID Provider for ual-todo's test suites (NOT for production).

idpyoidc (PyPI, IdentityPython) does the protocol: discovery, JWKS, authorization code with
PKCE, the token endpoint, RP-initiated logout and back-channel logout (its own logout tokens,
POSTed by its own code), configured in op.py. This file puts it on a socket with the standard
library's HTTP server, driving it as idpyoidc's own Flask example does. Configuration:
IDP_CONFIG (JSON), see README.md. Prints one ready line: {"issuer": "http://127.0.0.1:PORT"}
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

from idpyoidc.message.oauth2 import ResponseMessage
from idpyoidc.message.oidc import AccessTokenRequest, AuthorizationRequest

import op

# Largest request body read (forms and JSON here are small).
MAX_BODY = 64 * 1024


class BadRequest(Exception):
    """A request this server refuses with 400 before idpyoidc sees it."""


def fail(message):
    print(f"idp-python: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


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
                return self.send(200, json.dumps(self.server.op.keyjar.export_jwks()), "application/json")
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
            "url": f"{self.server.op.issuer}{self.path}",
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
        endpoint = self.server.op.get_endpoint(name)
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
        authn = self.server.op.context.authn_broker.get_method_by_id("user")
        form = self.form()
        try:
            user = authn.verify(**form)
            token = authn.unpack_token(form.get("token", ""))
        except Exception as err:
            return self.error(400, "invalid_request", f"login: {err}")
        request = AuthorizationRequest().from_urlencoded(token["query"])
        endpoint = self.server.op.get_endpoint("authorization")
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
        endpoint = self.server.op.get_endpoint("session")
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
    try:
        config = json.loads(os.environ.get("IDP_CONFIG", ""))
    except ValueError as err:
        fail(f"IDP_CONFIG must be set to a JSON document: {err}")
    clients = config.get("clients")
    if not isinstance(clients, list) or not clients:
        fail("IDP_CONFIG.clients must be a non-empty array")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if os.environ.get("IDP_LOG") else logging.WARNING,
        format="idp-python: %(name)s %(levelname)s %(message)s",
    )
    # Back-channel deliveries (and their failures) are logged at INFO: always show them.
    logging.getLogger("idpyoidc.server.oidc.session").setLevel(logging.INFO)
    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", int(config.get("port") or 0)), Handler)
    except OSError as err:
        fail(f"cannot listen: {err}")
    httpd.daemon_threads = True
    issuer = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        httpd.op = op.build(issuer, config)
    except Exception as err:
        fail(f"invalid IDP_CONFIG: {err!r}")
    print(json.dumps({"issuer": issuer}), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
