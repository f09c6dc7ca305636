"""The payment sandbox's identities: merchant and platform keys for WeChat Pay and Alipay.

Generated on first use (real 2048-bit RSA keys, a self-signed platform
certificate, a random APIv3 key) and stored under `instance/` so that the web
process, the worker and the tests all see the same ones. Never used in live mode.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEYS_FILE = "payment-sandbox-keys.json"


@dataclass(frozen=True)
class SandboxKeys:
    wechat_mchid: str
    wechat_appid: str
    wechat_apiv3_key: str
    merchant_private_key: str
    merchant_public_key: str
    merchant_serial_no: str
    platform_private_key: str
    platform_public_key: str
    platform_public_key_id: str
    platform_certificate: str
    platform_certificate_serial: str
    alipay_appid: str
    alipay_app_private_key: str
    alipay_app_public_key: str
    alipay_private_key: str
    alipay_public_key: str


def _key_pair() -> tuple[rsa.RSAPrivateKey, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, private_pem, public_pem


def _certificate(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    """A self-signed platform certificate, as WeChat Pay's certificate mode hands out."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)")])
    now = datetime.now(UTC)
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return pem, format(serial, "X")


def new_platform_certificate(private_key_pem: str | None = None) -> tuple[str, str, str]:
    """A further platform certificate (a rotation): for the given platform key, or a new key.

    Returns (private key PEM, certificate PEM, certificate serial in upper-case hex)."""
    if private_key_pem is None:
        key, private_key_pem, _public = _key_pair()
    else:
        loaded = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        key = loaded
    certificate, serial = _certificate(key)
    return private_key_pem, certificate, serial


def generate_keys() -> SandboxKeys:
    _m, merchant_private, merchant_public = _key_pair()
    platform_key, platform_private, platform_public = _key_pair()
    certificate, certificate_serial = _certificate(platform_key)
    _a, app_private, app_public = _key_pair()
    _p, alipay_private, alipay_public = _key_pair()
    alphabet = string.ascii_letters + string.digits
    return SandboxKeys(
        wechat_mchid="1900000109",
        wechat_appid="wxd678efh567hg6787",
        wechat_apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
        merchant_private_key=merchant_private,
        merchant_public_key=merchant_public,
        merchant_serial_no=secrets.token_hex(20).upper(),
        platform_private_key=platform_private,
        platform_public_key=platform_public,
        platform_public_key_id="PUB_KEY_ID_" + secrets.token_hex(16).upper(),
        platform_certificate=certificate,
        platform_certificate_serial=certificate_serial,
        alipay_appid="2021000000000000",
        alipay_app_private_key=app_private,
        alipay_app_public_key=app_public,
        alipay_private_key=alipay_private,
        alipay_public_key=alipay_public,
    )


def load_or_create_keys(instance_path: str | Path) -> SandboxKeys:
    """The stored sandbox keys, generated (atomically, readable by the owner only) if missing."""
    path = Path(instance_path) / KEYS_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(generate_keys()), handle)
        try:
            os.link(temporary, path)  # fails if another process won the race: keep theirs
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return SandboxKeys(**json.loads(path.read_text()))
