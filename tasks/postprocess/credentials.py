"""Content credentials (C2PA): sign a rendition with a manifest, read one back.

What a signed rendition says (read it with any C2PA reader, or `reelforge verify FILE`):

* claim generator ``ReelForge <version>``;
* ``c2pa.actions.v2``: ``c2pa.created`` with digital source type ``trainedAlgorithmicMedia``
  and the model id and version as software agent; then the post-processing edits:
  ``c2pa.placed`` for the raw clip and each brand asset (logo, music), ``c2pa.color_adjustments``
  for a LUT grade, ``c2pa.resized`` for the platform crop, and ``c2pa.edited`` with source type
  ``compositeWithTrainedAlgorithmicMedia`` by ReelForge's post-processing;
* ingredients (relationship ``componentOf``): the raw clip, the logo, the music, each with its
  lineage asset id and sha256 in the ingredient's metadata;
* ``com.reelforge.ai_disclosure``: whether a visible "AI-generated" label is drawn, its text
  and language;
* ``com.reelforge.generation``: model id and version, the post-processing pipeline version;
  the prompt only when the tenant's safety policy sets ``manifest_prompt: true``. No overlay
  text, audience or tenant: they can be personal data.

The signing key is a PEM file, or a callback (``REELFORGE_C2PA_SIGNER_CALLBACK``, e.g. a KMS
client) that signs the bytes it is given with the key of the chain's first certificate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from reelforge.core.errors import InvalidInput, ReelForgeError
from reelforge.core.settings import Settings
from reelforge.core.version import code_version

CLAIM_GENERATOR = "ReelForge"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE = IPTC + "trainedAlgorithmicMedia"
COMPOSITE_SOURCE = IPTC + "compositeWithTrainedAlgorithmicMedia"
DISCLOSURE_LABEL = "com.reelforge.ai_disclosure"
GENERATION_LABEL = "com.reelforge.generation"
# A certificate from a CA outside the reader's trust list: the signature and the hashes are
# still checked, so the file is intact and signed by the holder of this certificate.
ACCEPTED_STATUS = frozenset({"signingCredential.untrusted"})
_EC_ALGS = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
_FIX = (
    "run `reelforge up` (local CA), or set REELFORGE_C2PA_CERT_CHAIN and "
    "REELFORGE_C2PA_PRIVATE_KEY (or REELFORGE_C2PA_SIGNING=false)"
)


class CredentialsInvalid(ReelForgeError):
    """A file's content credentials fail validation: it changed after signing (exit 3)."""

    exit_code = 3


# --- the signing identity ----------------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    alg: str  # es256, es384, es512, ps256, ed25519
    chain: list[x509.Certificate]
    chain_pem: bytes
    key_pem: bytes | None  # None: `callback` signs
    callback: Callable[[bytes], bytes] | None
    tsa_url: str | None

    @property
    def subject(self) -> str:
        return self.chain[0].subject.rfc4514_string()

    def signer(self) -> c2pa.Signer:
        if self.callback is not None:
            alg = c2pa.C2paSigningAlg[self.alg.upper()]
            return c2pa.Signer.from_callback(
                self.callback, alg, self.chain_pem.decode(), self.tsa_url
            )
        info = c2pa.C2paSignerInfo(
            self.alg.encode(),
            self.chain_pem,
            self.key_pem,
            self.tsa_url.encode() if self.tsa_url else None,
        )
        return c2pa.Signer.from_info(info)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"C2PA {what} {path} does not exist; {_FIX}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read C2PA {what} {path} ({exc.strerror}); {_FIX}") from None


def _alg(public_key: Any, chain_path: Path) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _EC_ALGS:
        return _EC_ALGS[public_key.curve.name]
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return "ps256"
    raise InvalidInput(
        f"the signing certificate in {chain_path} has a key C2PA cannot sign with; "
        "use EC P-256/P-384/P-521, Ed25519 or RSA"
    )


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _callback(name: str) -> Callable[[bytes], bytes]:
    try:
        function = pkgutil.resolve_name(name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(
            f"REELFORGE_C2PA_SIGNER_CALLBACK {name!r} cannot be imported ({exc}); "
            "give it as package.module:function"
        ) from None
    if not callable(function):
        raise InvalidInput(f"REELFORGE_C2PA_SIGNER_CALLBACK {name!r} is not a function")
    return function


def load_signing_identity(settings: Settings) -> SigningIdentity:
    """The configured chain and key (or callback), checked: one-line error on any problem."""
    chain_path = settings.c2pa_chain_path
    chain_pem = _read(chain_path, "certificate chain")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise InvalidInput(
            f"C2PA certificate chain {chain_path} holds no PEM certificate; {_FIX}"
        ) from None
    leaf = chain[0]
    if leaf.not_valid_after_utc < dt.datetime.now(dt.UTC):
        raise InvalidInput(
            f"the signing certificate in {chain_path} expired on "
            f"{leaf.not_valid_after_utc.date()}; renew it (local CA: delete "
            f"{chain_path.parent} and run `reelforge up`)"
        )
    alg = _alg(leaf.public_key(), chain_path)
    if settings.c2pa_signer_callback:
        callback = _callback(settings.c2pa_signer_callback)
        return SigningIdentity(alg, chain, chain_pem, None, callback, settings.c2pa_tsa_url)
    key_path = settings.c2pa_key_path
    key_pem = _read(key_path, "private key")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"C2PA private key {key_path} is not an unencrypted PEM private key; {_FIX}"
        ) from None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise InvalidInput(
            f"C2PA private key {key_path} does not belong to the first certificate in "
            f"{chain_path}; put the signing certificate first"
        )
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningIdentity(alg, chain, chain_pem, pkcs8, None, settings.c2pa_tsa_url)


# --- the manifest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingredient:
    """A lineage asset the rendition was made from."""

    role: str  # raw_clip, logo, music
    title: str
    media_type: str
    asset_id: str
    sha256: str


@dataclass(frozen=True)
class Disclosure:
    """The visible AI label: drawn or not (tenant policy), its text and language."""

    visible: bool
    text: str
    language: str

    def as_json(self) -> dict[str, Any]:
        return {"visible": self.visible, "text": self.text, "language": self.language}


@dataclass(frozen=True)
class ManifestFacts:
    title: str
    model_id: str
    model_version: str
    pipeline: str  # post-processing pipeline version
    ingredients: list[Ingredient]
    disclosure: Disclosure
    graded: bool
    prompt: str | None = None  # only when the tenant's policy allows it
    edits: dict[str, Any] = field(default_factory=dict)


def build_manifest(facts: ManifestFacts) -> dict[str, Any]:
    """The manifest definition the SDK signs (see the module docstring)."""
    ingredients = [
        {
            "title": item.title,
            "format": item.media_type,
            "relationship": "componentOf",
            "label": item.role,
            "metadata": {
                "com.reelforge.role": item.role,
                "com.reelforge.asset_id": item.asset_id,
                "com.reelforge.sha256": item.sha256,
            },
        }
        for item in facts.ingredients
    ]
    actions: list[dict[str, Any]] = [
        {
            "action": "c2pa.created",
            "digitalSourceType": AI_SOURCE,
            "softwareAgent": {"name": facts.model_id, "version": facts.model_version},
        },
        *(
            {"action": "c2pa.placed", "parameters": {"ingredientIds": [item.role]}}
            for item in facts.ingredients
        ),
    ]
    if facts.graded:
        actions.append({"action": "c2pa.color_adjustments"})
    actions += [
        {"action": "c2pa.resized"},
        {
            "action": "c2pa.edited",
            "digitalSourceType": COMPOSITE_SOURCE,
            "softwareAgent": {
                "name": f"{CLAIM_GENERATOR} post-processing",
                "version": facts.pipeline,
            },
            "parameters": facts.edits,
        },
    ]
    generation: dict[str, Any] = {
        "model_id": facts.model_id,
        "model_version": facts.model_version,
        "pipeline": facts.pipeline,
    }
    if facts.prompt is not None:
        generation["prompt"] = facts.prompt
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": code_version()}],
        "title": facts.title,
        "format": "video/mp4",
        "ingredients": ingredients,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": actions}},
            {"label": DISCLOSURE_LABEL, "data": facts.disclosure.as_json()},
            {"label": GENERATION_LABEL, "data": generation},
        ],
    }


def sign_video(src: Path, dst: Path, manifest: dict[str, Any], identity: SigningIdentity) -> None:
    """Write ``src`` with the signed manifest embedded to ``dst`` (MP4 boxes keep their order:
    ``moov`` stays before ``mdat``). A refusal of the SDK becomes a one-line error."""
    tmp = dst.with_name(f".{dst.name}.signing")
    try:
        with (
            identity.signer() as signer,
            c2pa.Builder(json.dumps(manifest)) as builder,
            src.open("rb") as source,
            tmp.open("w+b") as dest,
        ):
            builder.sign(signer, "video/mp4", source, dest)
        os.replace(tmp, dst)
    except c2pa.C2paError as exc:
        raise InvalidInput(
            f"signing {src.name} with C2PA failed: {' '.join(str(exc).split())}; "
            "check REELFORGE_C2PA_CERT_CHAIN and REELFORGE_C2PA_PRIVATE_KEY (`reelforge doctor`)"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a C2PA reader found in a file, summarised."""

    state: str  # Valid, Trusted or Invalid (the SDK's validation_state)
    status: list[str]  # the validation status codes (problems and notices)
    claim_generator: str
    signer: str
    actions: list[dict[str, Any]]
    ingredients: list[dict[str, Any]]
    disclosure: dict[str, Any] | None
    generation: dict[str, Any] | None

    @property
    def failures(self) -> list[str]:
        return [code for code in self.status if code not in ACCEPTED_STATUS]

    @property
    def valid(self) -> bool:
        """Intact and signed: Valid/Trusted, with no problem but an untrusted signer."""
        return self.state in ("Valid", "Trusted") and not self.failures

    @property
    def by_reelforge(self) -> bool:
        return self.claim_generator.split(" ")[0] == CLAIM_GENERATOR

    def as_json(self) -> dict[str, Any]:
        return {
            "validation_state": self.state,
            "validation_status": self.status,
            "valid": self.valid,
            "claim_generator": self.claim_generator,
            "signer": self.signer,
            "actions": self.actions,
            "ingredients": self.ingredients,
            "ai_disclosure": self.disclosure,
            "generation": self.generation,
        }


def read_credentials(path: Path) -> Credentials:
    """The active manifest of ``path``; one-line error (exit 2) when the file cannot be read,
    is not a format C2PA reads, or carries no manifest."""
    try:
        with c2pa.Reader(str(path)) as reader:
            report = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        raise InvalidInput(f"{path} carries no content credentials (no C2PA manifest)") from None
    except c2pa.C2paError.NotSupported:
        raise InvalidInput(f"{path} is not a video or image C2PA can read") from None
    except c2pa.C2paError as exc:
        raise InvalidInput(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    manifest = report["manifests"][report["active_manifest"]]
    assertions = {a["label"]: a.get("data") for a in manifest.get("assertions", [])}
    info = (manifest.get("claim_generator_info") or [{}])[0]
    signature = manifest.get("signature_info", {})
    return Credentials(
        state=report.get("validation_state", "Invalid"),
        status=[s["code"] for s in report.get("validation_status", [])],
        claim_generator=f"{info.get('name', '')} {info.get('version', '')}".strip(),
        signer=", ".join(v for v in (signature.get("common_name"), signature.get("issuer")) if v),
        actions=(assertions.get("c2pa.actions.v2") or {}).get("actions", []),
        ingredients=[
            {
                "title": i.get("title"),
                "format": i.get("format"),
                "relationship": i.get("relationship"),
                **{
                    k.removeprefix("com.reelforge."): v
                    for k, v in (i.get("metadata") or {}).items()
                },
            }
            for i in manifest.get("ingredients", [])
        ],
        disclosure=assertions.get(DISCLOSURE_LABEL),
        generation=assertions.get(GENERATION_LABEL),
    )
