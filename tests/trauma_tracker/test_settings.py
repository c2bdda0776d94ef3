"""Settings come from the environment, read once in trauma_tracker/settings.py."""

from __future__ import annotations

import pytest

from trauma_tracker.settings import Settings, SettingsError


def test_the_audit_key_comes_from_the_variable_or_its_file(tmp_path):
    assert Settings.from_env({}).audit_key is None
    assert Settings.from_env({}).audit_key_bytes is None
    direct = Settings.from_env({"TT_AUDIT_KEY": "s3cret"})
    assert (direct.audit_key, direct.audit_key_bytes) == ("s3cret", b"s3cret")
    key_file = tmp_path / "audit.key"
    key_file.write_text("from-a-file\n")
    assert Settings.from_env({"TT_AUDIT_KEY_FILE": str(key_file)}).audit_key == "from-a-file"
    assert "s3cret" not in repr(direct)  # secrets stay out of logs and tracebacks


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TT_AUDIT_KEY": "a", "TT_AUDIT_KEY_FILE": "/x"}, "both TT_AUDIT_KEY and"),
        ({"TT_AUDIT_KEY_FILE": "/no/such/file"}, "TT_AUDIT_KEY_FILE: can't read /no/such/file"),
        ({"TT_AUDIT_KEY_FILE": "EMPTY"}, "TT_AUDIT_KEY_FILE: the file is empty"),
    ],
)
def test_an_unusable_audit_key_is_an_error_naming_the_variable(tmp_path, env, message):
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    env = {k: str(empty) if v == "EMPTY" else v for k, v in env.items()}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
