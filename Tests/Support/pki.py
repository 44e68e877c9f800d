#!/usr/bin/env python3
"""Test PKI for the identity tests: certificates made with the `openssl` command, JWT-SVIDs signed with
`cryptography`.

    pki.py make DIR                 writes the files listed below into DIR (idempotent: skips when DIR/done exists)
    pki.py mint-svid DIR --sub ID --aud AUD [--exp SECONDS] [--kid KID] [--key jwt|other] [--alg none]
                                    prints a JWT-SVID signed by DIR/jwt.key (ES256)

Files (PEM): ca.pem/ca.key (root "mcpg test CA"), inter.pem (intermediate CA), server.pem/server.key
(localhost, 127.0.0.1), alice.pem/key (O=acme, OU=eng, OU=ops, CN=alice, SAN email alice@example.com and DNS
alice.example.com), bob.pem/key (CN=bob, issued by the intermediate) and bob-chain.pem (bob + intermediate),
expired.pem/key (2020), future.pem/key (2099), revoked.pem/key (CN=mallory, revoked) and crl.pem, other-ca.pem and
stranger.pem/key (CN=stranger, issued by another CA); SPIFFE: spiffe-ca.pem (bundle of example.org),
svid-web.pem/key (spiffe://example.org/ns/prod/sa/web), svid-db.pem/key (spiffe://example.org/ns/prod/sa/db),
svid-two-uris.pem/key (two URI SANs), svid-other-td.pem/key (spiffe://other.org/sa/x, issued by the
example.org CA), svid-expired.pem/key; jwt.key and jwks.json (example.org's JWT bundle, kid "svid-1"),
other-jwt.key (a key not in the bundle).
"""
import base64
import json
import os
import subprocess
import sys
import time

CNF = """
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/{name}.index
new_certs_dir = $dir/newcerts
certificate = $dir/{name}.pem
private_key = $dir/{name}.key
serial = $dir/{name}.serial
crlnumber = $dir/{name}.crlnumber
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = copy
[ policy_any ]
commonName = optional
organizationName = optional
organizationalUnitName = optional
[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
"""


def run(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"openssl {' '.join(args)} failed:\n{r.stderr}")


def root_ca(d, name, subject):
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.pem", "-days", "365", "-subj", subject,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    setup_ca(d, name)


def setup_ca(d, name):
    os.makedirs(os.path.join(d, "newcerts"), exist_ok=True)
    open(os.path.join(d, f"{name}.index"), "w").close()
    with open(os.path.join(d, f"{name}.serial"), "w") as f:
        f.write(os.urandom(8).hex().upper() + "\n")
    with open(os.path.join(d, f"{name}.crlnumber"), "w") as f:
        f.write("01\n")
    with open(os.path.join(d, f"{name}.cnf"), "w") as f:
        f.write(CNF.format(dir=d, name=name))


def issue(d, ca, name, subject, ext="client_ext", san=None, start=None, end=None):
    req = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
           "-out", f"{name}.csr", "-subj", subject]
    if san:
        req += ["-addext", "subjectAltName=" + san]
    run(*req, cwd=d)
    args = ["ca", "-batch", "-config", f"{ca}.cnf", "-in", f"{name}.csr", "-out", f"{name}.pem", "-extensions", ext,
            "-notext"]
    if start:
        args += ["-startdate", start, "-enddate", end]
    run(*args, cwd=d)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make(d):
    d = os.path.abspath(d)
    if os.path.exists(os.path.join(d, "done")):
        return
    os.makedirs(d, exist_ok=True)
    root_ca(d, "ca", "/CN=mcpg test CA")
    issue(d, "ca", "inter", "/CN=mcpg test intermediate", ext="ca_ext")
    setup_ca(d, "inter")
    issue(d, "ca", "server", "/CN=localhost", ext="server_ext", san="DNS:localhost,IP:127.0.0.1")
    issue(d, "ca", "alice", "/O=acme/OU=eng/OU=ops/CN=alice", san="email:alice@example.com,DNS:alice.example.com")
    issue(d, "inter", "bob", "/CN=bob")
    with open(os.path.join(d, "bob-chain.pem"), "w") as f:
        f.write(open(os.path.join(d, "bob.pem")).read() + open(os.path.join(d, "inter.pem")).read())
    issue(d, "ca", "expired", "/CN=old", start="20200101000000Z", end="20200201000000Z")
    issue(d, "ca", "future", "/CN=future", start="20990101000000Z", end="20991231000000Z")
    issue(d, "ca", "revoked", "/CN=mallory")
    run("ca", "-batch", "-config", "ca.cnf", "-revoke", "revoked.pem", cwd=d)
    run("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem", cwd=d)
    root_ca(d, "other-ca", "/CN=another CA")
    issue(d, "other-ca", "stranger", "/CN=stranger")
    # SPIFFE: the example.org trust domain's CA and its SVIDs.
    root_ca(d, "spiffe-ca", "/O=SPIFFE/CN=example.org")
    issue(d, "spiffe-ca", "svid-web", "/O=SPIFFE", san="URI:spiffe://example.org/ns/prod/sa/web")
    issue(d, "spiffe-ca", "svid-db", "/O=SPIFFE", san="URI:spiffe://example.org/ns/prod/sa/db")
    issue(d, "spiffe-ca", "svid-two-uris", "/O=SPIFFE",
          san="URI:spiffe://example.org/ns/prod/sa/web,URI:spiffe://example.org/ns/prod/sa/db")
    issue(d, "spiffe-ca", "svid-other-td", "/O=SPIFFE", san="URI:spiffe://other.org/sa/x")
    issue(d, "spiffe-ca", "svid-expired", "/O=SPIFFE", san="URI:spiffe://example.org/ns/prod/sa/web",
          start="20200101000000Z", end="20200201000000Z")
    # JWT-SVID signing keys (ES256): jwt.key is in example.org's bundle, other-jwt.key is not.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    keys = {}
    for name in ("jwt", "other-jwt"):
        key = ec.generate_private_key(ec.SECP256R1())
        with open(os.path.join(d, f"{name}.key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        keys[name] = key
    n = keys["jwt"].public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "svid-1", "alg": "ES256", "use": "sig",
           "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}
    with open(os.path.join(d, "jwks.json"), "w") as f:
        json.dump({"keys": [jwk]}, f)
    open(os.path.join(d, "done"), "w").close()


def mint(d, sub, aud, exp, kid, key, alg):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    now = int(time.time())
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    claims = {"sub": sub, "aud": aud, "exp": now + exp, "iat": now}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return signing_input + "."
    with open(os.path.join(d, f"{key}.key"), "rb") as f:
        private = serialization.load_pem_private_key(f.read(), None)
    der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2])
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "mint-svid":
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("dir")
        p.add_argument("--sub", required=True)
        p.add_argument("--aud", required=True)
        p.add_argument("--exp", type=int, default=300)
        p.add_argument("--kid", default="svid-1")
        p.add_argument("--key", default="jwt")
        p.add_argument("--alg", default="ES256")
        a = p.parse_args(sys.argv[2:])
        print(mint(a.dir, a.sub, a.aud, a.exp, a.kid, a.key, a.alg))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
