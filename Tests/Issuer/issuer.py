#!/usr/bin/env python3
"""A real OpenID Connect issuer for tests: discovery, a JWKS with real keys, and a control API to mint tokens.

    issuer.py [--host 127.0.0.1] [--port 0] [--tls-self-signed DIR]

Serves, on one port:

- `GET /.well-known/openid-configuration`: `{"issuer": <base URL>, "jwks_uri": <base URL>/jwks, ...}`.
- `GET /jwks`: the public keys, made with `cryptography` at start and on each rotation: `rsa-<gen>` (RSA 2048,
  JWK `alg` RS256), `pss-<gen>` (RSA 2048, `alg` PS256), `ec256-<gen>` (P-256), `ec384-<gen>` (P-384) and
  `ed-<gen>` (Ed25519), plus `weak-<gen>` (RSA 1024) when enabled by `/control`. Every fetch is counted.

and, for tests:

- `POST /mint` with `{"key": "rsa", "alg": "RS256", "claims": {...}, "kid": "...", "headers": {...}}` answers
  `{"token": "..."}`. `key` names the signing key by its prefix (`rsa`, `pss`, `ec256`, `ec384`, `ed`,
  `weak`); `alg` defaults to the key's algorithm; `kid` overrides the header's kid (`null` leaves it out);
  `headers` adds header members. `claims` are merged over defaults (`iss` the base URL, `aud`
  `https://mcp.example.test`, `sub` `alice`, `iat` now, `exp` now + 300); a claim set to `null` is removed.
  `alg` `none` makes an unsigned token; `alg` `HS256` with `"hmac_secret": "rsa-public-pem"` signs with the RSA
  key's public PEM as the HMAC secret (the classic algorithm-confusion attack).
- `POST /rotate`: new keys under a new generation; the old ones are gone from the JWKS. Answers `{"kids": [...]}`.
- `POST /control` with any of `{"issuer": str|null, "cache_control": str|null, "jwks_status": int|null,
  "weak": bool, "jwks_delay_ms": int}`: the issuer named by discovery (null: the base URL), the JWKS response's
  Cache-Control header, an error status for JWKS fetches, whether to publish the weak key, a delay before
  answering a JWKS fetch.
- `GET /stats`: `{"jwks": N, "discovery": N}` requests served so far (failed ones too).

Once listening it prints the bound port on stdout (one line) and flushes. Requests are served concurrently.
`--tls-self-signed DIR` serves HTTPS with a fresh self-signed certificate for 127.0.0.1 (`DIR/cert.pem`).
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

AUDIENCE = "https://mcp.example.test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def uint(n: int, size: int = 0) -> str:
    length = max(size, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(length, "big"))


class KeySet:
    """One generation of signing keys: name -> (kid, private key, default alg, public JWK)."""

    def __init__(self, generation: int):
        self.generation = generation
        self.keys = {}
        self._add("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
        self._add("pss", rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256")
        self._add("ec256", ec.generate_private_key(ec.SECP256R1()), "ES256")
        self._add("ec384", ec.generate_private_key(ec.SECP384R1()), "ES384")
        self._add("ed", ed25519.Ed25519PrivateKey.generate(), "EdDSA")
        self._add("weak", rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS256")

    def _add(self, name, key, alg):
        kid = f"{name}-{self.generation}"
        pub = key.public_key()
        if isinstance(pub, rsa.RSAPublicKey):
            n = pub.public_numbers()
            jwk = {"kty": "RSA", "n": uint(n.n), "e": uint(n.e)}
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            n = pub.public_numbers()
            crv, size = ("P-256", 32) if pub.curve.name == "secp256r1" else ("P-384", 48)
            jwk = {"kty": "EC", "crv": crv, "x": uint(n.x, size), "y": uint(n.y, size)}
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        jwk.update({"kid": kid, "use": "sig", "alg": alg})
        self.keys[name] = (kid, key, alg, jwk)

    def jwks(self, weak: bool) -> dict:
        return {"keys": [v[3] for k, v in self.keys.items() if weak or k != "weak"]}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = KeySet(1)
        self.issuer = None
        self.cache_control = None
        self.jwks_status = None
        self.jwks_delay_ms = 0
        self.weak = False
        self.stats = {"jwks": 0, "discovery": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    @property
    def state(self) -> State:
        return self.server.state

    @property
    def base(self) -> str:
        return self.server.base_url

    def reply(self, status: int, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        s = self.state
        if self.path == "/.well-known/openid-configuration":
            with s.lock:
                s.stats["discovery"] += 1
                issuer = s.issuer if s.issuer is not None else self.base
            self.reply(200, {
                "issuer": issuer, "jwks_uri": self.base + "/jwks",
                "authorization_endpoint": self.base + "/authorize", "token_endpoint": self.base + "/token",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "ES384", "EdDSA"],
            })
        elif self.path == "/jwks":
            with s.lock:
                s.stats["jwks"] += 1
                status, delay, cache = s.jwks_status, s.jwks_delay_ms, s.cache_control
                doc = s.keys.jwks(s.weak)
            if delay:
                time.sleep(delay / 1000)
            if status:
                self.reply(status, {"error": "unavailable"})
            else:
                self.reply(200, doc, {"Cache-Control": cache} if cache else None)
        elif self.path == "/stats":
            with s.lock:
                self.reply(200, dict(s.stats))
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        s = self.state
        try:
            body = self.body()
        except ValueError:
            self.reply(400, {"error": "invalid JSON"})
            return
        if self.path == "/mint":
            try:
                self.reply(200, {"token": self.mint(body)})
            except Exception as e:  # the test sees what it asked wrongly
                self.reply(400, {"error": f"{type(e).__name__}: {e}"})
        elif self.path == "/rotate":
            with s.lock:
                s.keys = KeySet(s.keys.generation + 1)
                kids = [v[0] for v in s.keys.keys.values()]
            self.reply(200, {"kids": kids})
        elif self.path == "/control":
            with s.lock:
                for name in ("issuer", "cache_control", "jwks_status"):
                    if name in body:
                        setattr(s, name, body[name])
                if "weak" in body:
                    s.weak = bool(body["weak"])
                if "jwks_delay_ms" in body:
                    s.jwks_delay_ms = int(body["jwks_delay_ms"])
            self.reply(200, {})
        else:
            self.reply(404, {"error": "not found"})

    def mint(self, body: dict) -> str:
        with self.state.lock:
            keys = self.state.keys
        kid, key, default_alg, _ = keys.keys[body.get("key", "rsa")]
        alg = body.get("alg", default_alg)
        now = int(time.time())
        claims = {"iss": self.base, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
        for name, value in body.get("claims", {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        header = {"alg": alg, "typ": "JWT"}
        if "kid" in body:
            if body["kid"] is not None:
                header["kid"] = body["kid"]
        else:
            header["kid"] = kid
        header.update(body.get("headers", {}))
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        if alg == "none":
            return signing_input + "."
        if alg.startswith("HS"):
            # PyJWT (rightly) refuses a PEM as an HMAC secret, so these are signed with hmac directly.
            if body.get("hmac_secret") == "rsa-public-pem":
                secret = keys.keys["rsa"][1].public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            else:
                secret = body.get("hmac_secret", "secret").encode()
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
            return signing_input + "." + b64url(hmac.new(secret, signing_input.encode(), digest).digest())
        # PyJWT's algorithm objects sign the exact header we built (ECDSA as raw r||s, as JWS wants).
        signature = jwt.get_algorithm_by_name(alg).sign(signing_input.encode(), key)
        return signing_input + "." + b64url(signature)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # a client that hangs up
        pass


def self_signed(directory: str) -> tuple:
    """Writes cert.pem/key.pem for 127.0.0.1 and localhost into `directory`; returns their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    os.makedirs(directory, exist_ok=True)
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--tls-self-signed", metavar="DIR", help="serve HTTPS with a new self-signed cert in DIR")
    args = p.parse_args()
    # A parent may spawn us with signals blocked (the mask is inherited); SIGTERM must still stop the server.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])

    server = Server((args.host, args.port), Handler)
    server.state = State()
    scheme = "http"
    if args.tls_self_signed:
        cert, key = self_signed(args.tls_self_signed)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    server.base_url = f"{scheme}://{args.host}:{server.server_address[1]}"
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
