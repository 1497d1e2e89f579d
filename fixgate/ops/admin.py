"""The admin HTTP API: health, readiness, status, metrics, the status page, and operator commands.

It runs on its own thread, reads snapshots and posts commands to the state thread; it never touches
the order path. Commands need ``Authorization: Bearer <token>`` with an operator's token; a missing or
wrong token is answered 401, a read-only token 403, both written to the audit trail. The audit trail
names the actor by the token's name (an ``actor`` in the body is kept beside it as ``via``).
"""

from __future__ import annotations

import hmac
import http.server
import threading
from importlib import resources
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from fixgate.core.safety import Command

log = structlog.get_logger("fixgate.admin")

MAX_BODY = 64 * 1024
COMMANDS = {
    "/kill": ("kill", {"reason", "session", "account", "actor", "firm"}),
    "/resume": ("resume", {"session", "account", "actor", "firm"}),
    "/reset-breaker": ("reset-breaker", {"actor"}),
    "/cancel-all": ("cancel-all", {"session", "actor"}),
    "/drain": ("drain", {"mode", "reason", "timeout", "actor"}),
    "/restrict": ("restrict", {"symbol", "session", "restricted", "reason", "actor"}),
}
NUMBERS = {"timeout"}
BOOLEANS = {"restricted", "firm"}


@dataclass(frozen=True)
class Token:
    name: str
    secret: str
    role: str                       # "operator" or "read-only"


class BadRequest(Exception):
    """A request the API cannot take; the message says what was expected."""


def _parse_body(raw: bytes, allowed: set[str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body must be a JSON object: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
    for key, value in body.items():
        if key in NUMBERS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 86400:
                raise BadRequest(f"{key} must be a number of seconds from 0 to 86400, got {value!r}")
        elif key in BOOLEANS:
            if not isinstance(value, bool):
                raise BadRequest(f"{key} must be true or false, got {value!r}")
        elif not isinstance(value, str):
            raise BadRequest(f"{key} must be a string, got {type(value).__name__}")
    return body


class AdminServer:
    """Serve the admin API for `gateway` on host:port.

    Parameters
    ----------
    gateway : fixgate.gateway.Gateway
        What it reports on and commands.
    host, port : str, int
        Where to listen.
    tokens : list[Token]
        The bearer tokens, each with the name the audit trail gives it and its role.
    read_requires_token : bool
        Whether GET /status and /metrics need a token as well.
    """

    def __init__(self, gateway, host: str, port: int, tokens: list[Token], *, read_requires_token: bool = False) -> None:
        self.gateway = gateway
        self.tokens = tokens
        self.read_requires_token = read_requires_token
        self.read_refusals = 0
        self.page = resources.files("fixgate.ops").joinpath("status.html").read_bytes()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "fixgate-admin"

            def do_GET(self):  # noqa: N802 - http.server's name
                server._get(self)

            def do_POST(self):  # noqa: N802 - http.server's name
                server._post(self)

            def log_message(self, format, *args):  # noqa: A002 - http.server's name
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fixgate-admin", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("admin_api_started", port=self.port)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- RESPONSES --------------------------------------------------------------------------------

    @staticmethod
    def _send(handler, status: int, body: bytes, content_type: str = "application/json") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(body)

    def _json(self, handler, status: int, document: Any) -> None:
        self._send(handler, status, orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS))

    # -- GET --------------------------------------------------------------------------------------

    def _get(self, handler) -> None:
        path = handler.path.split("?", 1)[0]
        if self.read_requires_token and path in ("/status", "/metrics") and self._token(handler) is None:
            # Counted, not audited: a status page left open without a token asks once a second.
            self.read_refusals += 1
            self._json(handler, 401, {"error": "a valid bearer token is required"})
            return
        try:
            if path == "/":
                self._send(handler, 200, self.page, "text/html; charset=utf-8")
            elif path == "/health":
                health = self.gateway.health()
                self._json(handler, 200 if health["status"] == "ok" else 503, health)
            elif path == "/ready":
                ready = self.gateway.readiness()
                self._json(handler, 200 if ready["ready"] else 503, ready)
            elif path == "/status":
                self._json(handler, 200, self.gateway.status())
            elif path == "/metrics":
                body, content_type = self.gateway.metrics_exposition(handler.headers.get("Accept", ""))
                self._send(handler, 200, body, content_type)
            elif path in COMMANDS:
                self._json(handler, 405, {"error": f"{path} takes POST"})
            else:
                self._json(handler, 404, {"error": f"no such path {path}"})
        except Exception as error:
            log.exception("admin_request_failed", path=path)
            self._json(handler, 500, {"error": f"internal error: {error}"})

    # -- POST -------------------------------------------------------------------------------------

    def _token(self, handler) -> Token | None:
        """The token the request presents, when it is one of ours."""
        header = handler.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        found = None
        for token in self.tokens:              # compare with every token, in constant time each
            if hmac.compare_digest(presented.strip().encode(), token.secret.encode()):
                found = token
        return found

    def _refuse(self, handler, path: str, status: int, error: str, token: Token | None = None) -> None:
        peer = handler.client_address[0]
        event = "admin_unauthorized" if status == 401 else "admin_forbidden"
        record = {"event": event, "path": path, "peer": peer}
        if token is not None:
            record["actor"] = token.name
        self.gateway.audit.write(record)
        log.warning(event, path=path, peer=peer, actor=token.name if token else None)
        self._json(handler, status, {"error": error})

    def _post(self, handler) -> None:
        path = handler.path.split("?", 1)[0]
        if path not in COMMANDS:
            self._json(handler, 404 if path not in ("/", "/health", "/ready", "/status", "/metrics") else 405,
                       {"error": f"no command at {path}"})
            return
        peer = handler.client_address[0]
        token = self._token(handler)
        if token is None:
            self._refuse(handler, path, 401, "a valid bearer token is required")
            return
        if token.role != "operator":
            self._refuse(handler, path, 403, f"the token {token.name!r} is {token.role}: it may not command", token)
            return
        name, allowed = COMMANDS[path]
        try:
            length = int(handler.headers.get("Content-Length", "0") or 0)
            if length > MAX_BODY:
                raise BadRequest(f"the body is {length} bytes; at most {MAX_BODY}")
            body = _parse_body(handler.rfile.read(length) if length else b"", allowed)
            session = body.get("session")
            if session is not None and session not in self.gateway.session_names:
                raise BadRequest(f"no client session named {session!r}; sessions: "
                                 f"{', '.join(self.gateway.session_names)}")
            if name == "restrict" and not body.get("symbol"):
                raise BadRequest("symbol is required: the instrument to put on or take off the restricted list")
        except (BadRequest, ValueError) as error:
            self._json(handler, 400, {"error": str(error)})
            return
        actor = token.name
        if body.get("firm") and (session is not None or "account" in body):
            self._json(handler, 400, {"error": "firm: the firm-wide kill switch takes no session or account"})
            return
        self.gateway.audit.write({"event": "admin_command", "command": name, "actor": actor, "via": body.get("actor"),
                                  **({"firm": True} if body.get("firm") else {}),
                                  "peer": peer, "reason": body.get("reason"), "session": body.get("session"),
                                  **({"account": body["account"]} if "account" in body else {}),
                                  **({"symbol": body.get("symbol"), "restricted": body.get("restricted", True)}
                                     if name == "restrict" else {})})
        log.warning("admin_command", command=name, actor=actor, via=body.get("actor"), peer=peer,
                    reason=body.get("reason"), firm=bool(body.get("firm")))
        if body.get("firm"):
            status, result = self.gateway.firm_kill_switch(name == "kill", f"{self.gateway.config.gateway.name}:{actor}",
                                                           body.get("reason", ""))
            self._json(handler, status, result)
            return
        result = self.gateway.risk_agent.submit(Command(name, actor, reason=body.get("reason", ""),
                                                        session=body.get("session"), mode=body.get("mode", ""),
                                                        symbol=body.get("symbol", ""), account=body.get("account"),
                                                        restricted=body.get("restricted", True),
                                                        timeout_s=float(body.get("timeout", 0))))
        self._json(handler, 200 if result.get("ok") else 409, result)
