"""SecureStrings: sealed at rest, opened only in memory, for this controller's key only, never shown."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from paramkit import SECRET, error_of
from reconciler import secrets
from reconciler.parameters import ParameterService, PutRequest, redacted, value_digest
from reconciler.secrets import SecretError


def test_a_plaintext_is_sealed_before_it_is_stored(put, service, key_dir):
    version = put("/db/pw", SECRET, type="SecureString")
    assert version.value is None and secrets.is_sealed(version.sealed_value)
    assert version.digest == value_digest(SECRET)
    stored = service.get("/db/pw")
    assert stored.value is None and service.reveal(stored) == SECRET
    assert redacted(stored) == f"(sensitive, sha256:{value_digest(SECRET)[:8]})"
    assert secrets.sealed_key_id(stored.sealed_value) == secrets.load_public(key_dir).key_id


def test_sealing_needs_only_the_public_key_and_reading_needs_the_private_one(store, key_dir, tmp_path):
    public_only = tmp_path / "public-only"
    public_only.mkdir()
    shutil.copy(key_dir / secrets.PUBLIC_FILE, public_only)
    service = ParameterService(store, public_only)
    version = service.put(PutRequest("/p", "SecureString", value=SECRET), by="ci")
    assert version.version == 1
    with pytest.raises(SecretError, match="no controller key"):
        service.reveal(service.get("/p"))
    assert ParameterService(store, key_dir).reveal(service.get("/p")) == SECRET


def test_a_sealed_value_from_a_manifest(put, service, key_dir):
    public = secrets.load_public(key_dir)
    version = put("/m", type="SecureString", sealed_value=secrets.seal(SECRET, public), source="git")
    assert version.digest == value_digest(SECRET) and service.reveal(version) == SECRET
    again = put("/m", type="SecureString", sealed_value=secrets.seal(SECRET, public), overwrite=True)
    assert again.version == 1  # sealed anew, same plaintext: same version
    changed = put("/m", type="SecureString", sealed_value=secrets.seal(SECRET + "2", public), overwrite=True)
    assert changed.version == 2


def test_a_value_sealed_for_another_key_is_invalid_key_id(put, tmp_path):
    other = secrets.keygen(tmp_path / "other-keys")
    error = error_of(put, "/k", type="SecureString", sealed_value=secrets.seal(SECRET, other))
    assert error.code == "InvalidKeyId" and other.key_id in error.message and SECRET not in error.message


def test_broken_or_misplaced_sealed_values(put, key_dir):
    public = secrets.load_public(key_dir)
    sealed = secrets.seal(SECRET, public)
    assert error_of(put, "/b", type="SecureString", sealed_value="plumb-sealed:v1:AAAA").code == "ValidationException"
    assert error_of(put, "/b", type="SecureString", sealed_value="plain").code == "ValidationException"
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    assert error_of(put, "/b", type="SecureString", sealed_value=tampered).code == "ValidationException"
    assert error_of(put, "/b", type="String", sealed_value=sealed).code == "ValidationException"
    assert error_of(put, "/b", SECRET, type="SecureString", sealed_value=sealed).code == "ValidationException"


def test_secure_rules_never_echo_the_value(put):
    put("/r", SECRET, type="SecureString", allowed_pattern="PLANTED-[A-Za-z0-9-]+")
    for error in (error_of(put, "/r", SECRET + " nope", type="SecureString", overwrite=True),
                  error_of(put, "/r2", SECRET, type="SecureString", allowed_pattern="^x$"),
                  error_of(put, "/r3", SECRET * 300, type="SecureString"),
                  error_of(put, "/r4", SECRET + "{{ssm:/x}}", type="SecureString"),
                  error_of(put, "/r", SECRET, type="String", overwrite=True)):
        assert SECRET not in str(error)


def test_metadata_update_of_a_secure_string_keeps_it_sealed(put, service):
    put("/meta", SECRET, type="SecureString")
    updated = service.put(PutRequest("/meta", "SecureString", description="rotated monthly", overwrite=True),
                          by="ops")
    assert updated.version == 1 and updated.description == "rotated monthly" and updated.value is None
    assert service.reveal(service.get("/meta")) == SECRET


def test_no_secure_plaintext_is_ever_at_rest(put, service, store, db_url):
    put("/s/pw", SECRET, type="SecureString", description="db password", allowed_pattern="PLANTED-[A-Za-z0-9-]+")
    put("/s/pw", SECRET + "-v2", type="SecureString", overwrite=True, labels=("current",))
    put("/s/pw", SECRET + "-v2", type="SecureString", overwrite=True, tier="Advanced")
    put("/s/pw", SECRET + "-v3", type="SecureString", overwrite=True, source="git", revision="abc")
    service.label("/s/pw", ["previous"], version=2)
    assert SECRET not in str(error_of(put, "/s/pw", SECRET + " no match", type="SecureString", overwrite=True))
    assert SECRET not in str(error_of(put, "/s/pw", SECRET, type="String", overwrite=True))
    path = Path(db_url[len("sqlite:///"):])
    rows = []
    db = sqlite3.connect(path)
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        rows += [str(cell) for row in db.execute(f'SELECT * FROM "{table}"') for cell in row]
    db.close()
    assert rows and not [cell for cell in rows if SECRET in cell]
    store.close()
    for file in path.parent.glob(path.name + "*"):  # the database, its WAL and shared memory
        data = file.read_bytes()
        assert SECRET.encode("utf-8") not in data and SECRET.encode("utf-16-le") not in data, file
