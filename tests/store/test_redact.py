"""DSN passwords never reach a message: parsable or not, in userinfo, keyword or query."""

from __future__ import annotations

import pytest

from paceline.store import DatabaseUrlError, ServerUnreachableError
from paceline.store.connection import check_dsn
from paceline.store.errors import redact

SECRET = "s3cr3t-Pw"  # noqa: S105 - a made-up password to look for


@pytest.mark.parametrize(
    "dsn",
    [
        f"host=db password={SECRET} port",  # unparsable key=value: a keyword without '='
        f"host=db password='{SECRET} port=5432",  # unterminated quote
        f"host=db password='{SECRET} \\' x' bogus",  # quoted with an escaped quote
        f"postgresql://app@db/paceline?sslmode=require&password={SECRET}&x=1",  # and not
        f"postgresql://app:{SECRET}@[::1/paceline",  # bad IPv6 bracket
        f"postgresql://app:{SECRET}@[::1]x/paceline",  # junk after the bracket
        f"postgresql://app:{SECRET}@db:99999/paceline",  # port out of range
    ],
)
def test_no_password_in_redacted_text_or_error(dsn: str) -> None:
    assert SECRET not in redact(dsn)
    with pytest.raises(DatabaseUrlError) as caught:
        check_dsn(dsn)
    assert SECRET not in str(caught.value)
    assert caught.value.url == dsn  # the value itself stays available to code


def test_a_password_query_parameter_is_masked() -> None:
    dsn = f"postgresql://app@db/paceline?password={SECRET}"
    assert SECRET not in redact(dsn)
    assert "password=***" in redact(dsn)


def test_what_is_not_a_password_survives_redaction() -> None:
    assert redact("postgres://u@h/db?sslmode=require&password=x&x=1") == (
        "postgres://u@h/db?sslmode=require&password=***&x=1"
    )
    assert "host=db" in redact("host=db password=x port")
    assert set(redact("host=db dbname=paceline").split()) == {"host=db", "dbname=paceline"}


def test_an_unreachable_server_message_masks_a_password_libpq_quotes() -> None:
    error = ServerUnreachableError(
        f"postgresql://app:{SECRET}@db/x", f'could not parse "postgresql://app:{SECRET}@db/x"'
    )
    assert SECRET not in str(error)
