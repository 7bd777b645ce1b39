"""The recorder's rules on what a request asks, checked before anything is written: passwords,
prompt names, recorder options and the schema's cross-field checks in the parameters' words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.errors import InvalidParameter
from ivr.core.urls import UnsafeUrl, check_literal
from ivr.media.prompts import PROMPT_NAMES
from ivr.recorder import events, store
from ivr.recorder.inputs import AssetPasswords
from ivr.recorder.models import UPLOAD_PLACEHOLDERS, Generated, is_random_password_request

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")
MIN_PASSWORD = 8
MAX_PROMPT_BYTES = 10 * 1024 * 1024
PIN_ATTEMPTS = 50
PASSWORD_FIELDS = ("access_password", "update_password", "delete_password")
DELIVERY_STATES = ("pending", "delivered", "failed")
# What a protected command is given: AssetPasswords from /vr, one value from /v1, or None.
Supplied = AssetPasswords | str | None
OBJECT_NAMES = {"list": "recording list", "recording": "recording"}


def check_new_password(param: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidParameter(param, f"{param} must be at least {MIN_PASSWORD} characters")


def check_prompt_name(name: str) -> None:
    if name not in PROMPT_NAMES:
        raise InvalidParameter("prompt_name",
                               f"prompt_name must be one of {', '.join(PROMPT_NAMES)}")


def check_keyable(phone_password_hash: str | None) -> None:
    if phone_password_hash is None:
        raise InvalidParameter(
            "recorder_password", "password_required asks callers for the recorder password on "
            "the phone: it must be letters and digits only (letters key as on a phone's keypad)")


def recorder_fields(fields: Mapping[str, Any], allow_private_urls: bool) -> dict[str, Any]:
    # Hashes are made here from passwords, never taken from a request.
    values = {k: v for k, v in fields.items()
              if k in store.RECORDER_FIELDS and not k.endswith("_hash")}
    check_delivery_options(values, allow_private_urls)
    return values


def check_fetch_url(name: str, url: str, allow_private_urls: bool) -> None:
    """A URL this server will post to (core/urls.py); an upload_url's {placeholders} are
    checked as the text they will be replaced by."""
    try:
        check_literal(re.sub(r"\{[a-z_]+\}", "x", url), allow_private_urls)
    except UnsafeUrl as exc:
        raise InvalidParameter(name, f"{name}: {exc}") from None


def check_violation(exc: asyncpg.CheckViolationError) -> InvalidParameter:
    # The schema's cross-field rules, told in the parameters' words.
    name = getattr(exc, "constraint_name", "") or ""
    if name == "upload_url_required":
        return InvalidParameter("upload_url", "storage=upload needs an upload_url")
    if name == "touchtone_length_required":
        return InvalidParameter("touchtone_length", "touchtone_prompt needs a touchtone_length")
    if name == "recorder_password_required":
        return InvalidParameter("recorder_password", "password_required needs a recorder_password")
    return InvalidParameter("voice_recorder_key", f"invalid voice recorder options: {exc}")


MIN_CALLBACK_SECRET = 16


def set_callback_secret(values: dict[str, Any], generated: Generated, *, creating: bool) -> None:
    """A new recorder gets a random callback secret unless one is given; `???` asks for a new
    random one. Either way it is shown once, in the reply that set it."""
    if "callback_secret" not in values and not creating:
        return
    given = values.get("callback_secret")
    if given is None and "callback_secret" in values:
        raise InvalidParameter("callback_secret", "callback_secret cannot be cleared; ??? sets "
                               "a new random one")
    if given is None or is_random_password_request(given):
        values["callback_secret"] = keys.new_token()
        generated.passwords["callback_secret"] = values["callback_secret"]
        return
    if len(given) < MIN_CALLBACK_SECRET or any(c.isspace() for c in given):
        raise InvalidParameter("callback_secret", f"callback_secret must be at least "
                               f"{MIN_CALLBACK_SECRET} characters without spaces, or ??? for a "
                               "random one")


def check_delivery_options(values: Mapping[str, Any], allow_private_urls: bool) -> None:
    """Callbacks and uploads go over HTTP(S) to public addresses (core/urls.py); an upload_url
    template names known keys only."""
    for name in ("callback_url", "upload_url"):
        url = values.get(name)
        if isinstance(url, str):
            check_fetch_url(name, url, allow_private_urls)
    template = values.get("upload_url")
    if isinstance(template, str):
        unknown = [n for n in events.template_names(template) if n not in UPLOAD_PLACEHOLDERS]
        if unknown:
            raise InvalidParameter("upload_url", f"upload_url names unknown placeholders "
                                   f"{', '.join('{' + n + '}' for n in unknown)}; known: "
                                   f"{', '.join('{' + n + '}' for n in UPLOAD_PLACEHOLDERS)}")
    header = values.get("upload_auth_header")
    if isinstance(header, str) and not re.fullmatch(r"[A-Za-z0-9-]{1,64}: [^\r\n]{1,4000}",
                                                     header):
        raise InvalidParameter("upload_auth_header",
                               "upload_auth_header must look like 'Authorization: Bearer ...'")
