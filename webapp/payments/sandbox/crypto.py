"""The sandbox's cryptography: RSA-SHA256 (PKCS#1 v1.5) signatures and AES-256-GCM.

The same primitives both providers use, so that the real SDKs verify what the
sandbox signs and the sandbox verifies what the SDKs sign.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALPHANUMERIC = string.ascii_letters + string.digits


def random_string(length: int, alphabet: str = ALPHANUMERIC) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_digits(length: int) -> str:
    return random_string(length, string.digits)


def _pem(text: str, kind: str) -> bytes:
    """PEM text, also accepting the bare base64 body the providers' consoles hand out."""
    text = text.strip()
    if "-----BEGIN" not in text:
        text = f"-----BEGIN {kind}-----\n{text}\n-----END {kind}-----"
    return text.encode()


@lru_cache(maxsize=64)
def private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(_pem(pem, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@lru_cache(maxsize=64)
def public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem(pem, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa_sign(private_key_pem: str, message: str) -> str:
    """SHA256withRSA over the UTF-8 message, base64 (WeChat Pay's and Alipay's RSA2)."""
    signature = private_key(private_key_pem).sign(
        message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode()


def rsa_verify(public_key_pem: str, message: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key(public_key_pem).verify(
            raw, message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def aes_gcm_encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> tuple[str, str]:
    """AEAD_AES_256_GCM as WeChat Pay uses it: a 12-character nonce (its UTF-8 bytes are
    the IV), the APIv3 key's UTF-8 bytes as the key; returns (nonce, base64 ciphertext+tag)."""
    nonce = random_string(12)
    sealed = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    return nonce, base64.b64encode(sealed).decode()
