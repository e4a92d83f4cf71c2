"""The local signing identity for content credentials (C2PA) on the embedded stack.

`reelforge up` makes, once, an EC P-256 CA and a signing certificate issued by it in
``REELFORGE_HOME/signing/`` (``ca.pem``, ``chain.pem`` = signing certificate + CA, ``key.pem``).
The CA's own key is not kept: nothing else is ever issued by it. Readers report a manifest
signed with it as valid but ``signingCredential.untrusted``: for public use, point
REELFORGE_C2PA_CERT_CHAIN / REELFORGE_C2PA_PRIVATE_KEY at a certificate from a CA on the
C2PA trust list.

The C2PA SDK insists on these extensions: the CA with BasicConstraints ca=True, KeyUsage
keyCertSign + cRLSign and a SubjectKeyIdentifier; the signing certificate with KeyUsage
digitalSignature, ExtendedKeyUsage emailProtection and both key identifiers (without them it
refuses with "the certificate is invalid").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reelforge.core.settings import Settings
from tasks.postprocess.credentials import SigningIdentity, load_signing_identity

LOCAL_CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ReelForge local stack"),
        x509.NameAttribute(NameOID.COMMON_NAME, "ReelForge local content credentials CA"),
    ]
)
SIGNER_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ReelForge local stack"),
        x509.NameAttribute(NameOID.COMMON_NAME, "ReelForge content credentials signer"),
    ]
)
CA_DAYS = 3650
SIGNER_DAYS = 730


def _key_usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
        crl_sign=not sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_local_identity(folder: Path) -> None:
    """Make a CA and a signing certificate issued by it; write ca.pem, chain.pem, key.pem."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(LOCAL_CA_NAME)
        .issuer_name(LOCAL_CA_NAME)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(SIGNER_NAME)
        .issuer_name(LOCAL_CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SIGNER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(_pem(ca))
    (folder / "chain.pem").write_bytes(_pem(signer) + _pem(ca))
    key_path = folder / "key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def ensure_local_identity(settings: Settings) -> bool:
    """Make the local signing identity if signing is on, no key or chain is configured and
    none was made yet. True if this call made it.

    Safe when several processes call it at once: each writes a complete identity into its own
    temporary folder and renames it into place; a rename that finds one there loses.
    """
    if not settings.c2pa_signing or settings.c2pa_cert_chain or settings.c2pa_private_key:
        return False
    folder = settings.c2pa_key_path.parent
    if folder.is_dir():
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".signing-", dir=folder.parent))
    try:
        write_local_identity(tmp)
        os.rename(tmp, folder)
    except OSError:
        if folder.is_dir():  # another process made it first
            return False
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return True


def describe_signing(settings: Settings) -> str:
    """doctor: the signing identity in one line, or the one-line error of what is wrong."""
    if not settings.c2pa_signing:
        return "off (REELFORGE_C2PA_SIGNING=false): renditions are published unsigned"
    identity: SigningIdentity = load_signing_identity(settings)
    root = identity.chain[-1]
    expires = identity.chain[0].not_valid_after_utc.date().isoformat()
    what = f"{identity.alg} signer {identity.subject}, expires {expires}"
    if root.subject == LOCAL_CA_NAME:
        return (
            f"{what}; WARNING: issued by the local CA, which readers report as untrusted "
            "(set REELFORGE_C2PA_CERT_CHAIN and REELFORGE_C2PA_PRIVATE_KEY to a certificate "
            "from a C2PA-trusted CA for public use)"
        )
    return what
