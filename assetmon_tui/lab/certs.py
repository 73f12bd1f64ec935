"""TLS certificates for the lab, generated with `cryptography` and cached in memory.

Two kinds: a leaf signed by a throw-away "<Org> Lab Root CA" for the shared
listeners (SANs: apex and wildcards, so it reveals nothing), and a self-signed
certificate for the legacy listener whose SANs list names no wordlist guesses.
EC P-256 keys keep generation to a few milliseconds.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import tempfile
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )


@cache
def _ca(org: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{org} Lab Root CA", f"{org} Lab")
    cert = (
        _builder(name, name, key, 3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@cache
def certificate_pem(names: tuple[str, ...], org: str, self_signed: bool) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM) for `names`; names[0] is the CN."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(names[0], org)
    if self_signed:
        issuer_key, issuer_name, chain = key, subject, []
    else:
        issuer_key, ca = _ca(org)
        issuer_name, chain = ca.subject, [ca]
    cert = (
        _builder(subject, issuer_name, key, 397)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key_pem


def server_context(names: tuple[str, ...], org: str, self_signed: bool = False) -> ssl.SSLContext:
    pem, key_pem = certificate_pem(names, org, self_signed)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_alpn_protocols(["http/1.1"])
    # load_cert_chain only reads files; the directory lives for the call only.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_file, "wb") as f:
            f.write(pem)
        with open(key_file, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx
