"""Sealed secrets: the controller's key pair, sealing and opening SecureString values.

The only module that imports `cryptography`. A sealed value is what users commit and what
the store keeps at rest:

    plumb-sealed:v1:<base64url(key_id[8] | ephemeral_public[32] | nonce[12] | ciphertext+tag)>

Sealing is an anonymous public-key box: a fresh X25519 key pair per value, its shared
secret with the controller's public key run through HKDF-SHA256 (bound to both public
keys), then ChaCha20-Poly1305 with the version and key id as associated data. Anyone with
the public key can seal; only the controller's private key opens; any change to a sealed
value makes opening fail rather than yield different bytes. The key id (first 8 bytes of
the public key's sha256) lets an error say *which* key a value was sealed for.

Key files live in a key directory (default `.plumb/keys`, env PLUMB_KEY_DIR):
`sealing.key` (the private key, PKCS#8 PEM, mode 0600; refused if group or others can
read it) and `sealing.pub` (one line, `plumb-public:v1:<base64url>`, safe to commit).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "plumb-sealed:v1:"
PUBLIC_PREFIX = "plumb-public:v1:"
PRIVATE_FILE = "sealing.key"
PUBLIC_FILE = "sealing.pub"
DEFAULT_KEY_DIR = ".plumb/keys"
_KEY_ID_BYTES, _PUBLIC_BYTES, _NONCE_BYTES, _TAG_BYTES = 8, 32, 12, 16
_HEADER = _KEY_ID_BYTES + _PUBLIC_BYTES + _NONCE_BYTES


class SecretError(Exception):
    """A key is missing or unusable, or a sealed value cannot be opened. Never carries a secret."""


@dataclass(frozen=True)
class PublicKey:
    raw: bytes

    @property
    def key_id(self) -> str:
        return _key_id(self.raw).hex()

    def text(self) -> str:
        return PUBLIC_PREFIX + _b64(self.raw)


@dataclass(frozen=True)
class KeyPair:
    private: X25519PrivateKey
    public: PublicKey


def _key_id(public_raw: bytes) -> bytes:
    return hashlib.sha256(public_raw).digest()[:_KEY_ID_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_dir(path: str | os.PathLike | None = None) -> Path:
    """The key directory: the one given, else $PLUMB_KEY_DIR, else .plumb/keys."""
    return Path(path or os.environ.get("PLUMB_KEY_DIR") or DEFAULT_KEY_DIR)


def keygen(directory: str | os.PathLike, force: bool = False) -> PublicKey:
    """Make a new key pair in `directory`; refuses to replace an existing one unless `force`."""
    directory = Path(directory)
    private_path, public_path = directory / PRIVATE_FILE, directory / PUBLIC_FILE
    if private_path.exists() and not force:
        raise SecretError(f"{private_path} already exists; values sealed for it would no longer open if it "
                          "were replaced (use --force to replace it anyway)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = X25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = PublicKey(_public_raw(private.public_key()))
    _write_atomic(private_path, pem, 0o600)
    _write_atomic(public_path, (public.text() + "\n").encode("ascii"), 0o644)
    return public


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def parse_public(text: str, where: str = "public key") -> PublicKey:
    text = text.strip()
    if not text.startswith(PUBLIC_PREFIX):
        raise SecretError(f"{where}: not a plumb public key (expected a line starting with {PUBLIC_PREFIX})")
    try:
        raw = _unb64(text[len(PUBLIC_PREFIX):])
    except ValueError:
        raw = b""
    if len(raw) != _PUBLIC_BYTES:
        raise SecretError(f"{where}: the public key is damaged (expected {_PUBLIC_BYTES} bytes)")
    return PublicKey(raw)


def load_public(path: str | os.PathLike) -> PublicKey:
    """A public key from a file: `sealing.pub`, or a key directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / PUBLIC_FILE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise SecretError(f"no public key at {path}: run `plumb secret keygen` first "
                          "(or pass --public-key FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read the public key {path}: {exc}") from None
    return parse_public(text, str(path))


def load_keypair(directory: str | os.PathLike) -> KeyPair:
    """The controller's key pair from its key directory (the private key must be 0600 or stricter)."""
    path = Path(directory) / PRIVATE_FILE
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretError(f"no controller key at {path}: run `plumb secret keygen` "
                          "(or point --key-dir / PLUMB_KEY_DIR at the key directory)") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"{path} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                          f"run `chmod 600 {path}`")
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SecretError(f"cannot load the controller key {path}: {type(exc).__name__}") from None
    if not isinstance(private, X25519PrivateKey):
        raise SecretError(f"{path} is not a plumb sealing key (expected X25519)")
    return KeyPair(private, PublicKey(_public_raw(private.public_key())))


def _aead_key(shared: bytes, ephemeral_raw: bytes, recipient_raw: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"plumb-sealed:v1" + ephemeral_raw + recipient_raw).derive(shared)


def seal(plaintext: str | bytes, public: PublicKey) -> str:
    """Seal a value for the holder of `public`'s private key. Each call gives a different text."""
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _public_raw(ephemeral.public_key())
    key = _aead_key(ephemeral.exchange(X25519PublicKey.from_public_bytes(public.raw)), ephemeral_raw, public.raw)
    key_id, nonce = _key_id(public.raw), os.urandom(_NONCE_BYTES)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, data, b"plumb-sealed:v1" + key_id)
    return SEALED_PREFIX + _b64(key_id + ephemeral_raw + nonce + sealed)


def sealed_key_id(sealed: str) -> str:
    """The id of the key a value was sealed for (hex), or raise SecretError if it is not a sealed value."""
    return _parts(sealed)[0].hex()


def _parts(sealed: str) -> tuple[bytes, bytes, bytes, bytes]:
    if not isinstance(sealed, str) or not sealed.startswith(SEALED_PREFIX):
        raise SecretError(f"not a sealed value (expected text starting with {SEALED_PREFIX})")
    try:
        blob = _unb64(sealed[len(SEALED_PREFIX):])
    except ValueError:
        blob = b""
    if len(blob) < _HEADER + _TAG_BYTES:
        raise SecretError("the sealed value is truncated or damaged; seal it again with `plumb secret seal`")
    return (blob[:_KEY_ID_BYTES], blob[_KEY_ID_BYTES:_KEY_ID_BYTES + _PUBLIC_BYTES],
            blob[_KEY_ID_BYTES + _PUBLIC_BYTES:_HEADER], blob[_HEADER:])


def unseal_bytes(sealed: str, keys: KeyPair) -> bytes:
    key_id, ephemeral_raw, nonce, body = _parts(sealed)
    if key_id != _key_id(keys.public.raw):
        raise SecretError(f"the value was sealed for key {key_id.hex()}, but this controller's key is "
                          f"{keys.public.key_id}; seal it again with this controller's public key")
    try:
        shared = keys.private.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
        key = _aead_key(shared, ephemeral_raw, keys.public.raw)
        return ChaCha20Poly1305(key).decrypt(nonce, body, b"plumb-sealed:v1" + key_id)
    except (InvalidTag, ValueError):
        raise SecretError("the sealed value does not open with this controller's key: it was altered "
                          "or damaged; seal it again with `plumb secret seal`") from None


def unseal(sealed: str, keys: KeyPair) -> str:
    data = unseal_bytes(sealed, keys)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError("the sealed value is not UTF-8 text (SecureString values are text)") from None


def is_sealed(text: object) -> bool:
    return isinstance(text, str) and text.startswith(SEALED_PREFIX)
