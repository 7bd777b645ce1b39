"""A carrier SIP trunk as the operator describes it (`ivr trunk add`), validated: every bad value
is refused with a message naming its option, and the password never appears in a repr."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields

import phonenumbers

from ivr.core.errors import InvalidParameter

TRANSPORTS = ("udp", "tcp", "tls")
ID_STYLES = ("from", "pai", "rpid")  # where the caller id goes: From user, P-Asserted-Id, RPID
DID_FROM = ("ruri", "to")  # where the carrier puts the dialled number
# Codecs this Asterisk has a translator for (codec_*.so in the sid root).
CODECS = ("ulaw", "alaw", "g722", "g726", "gsm", "opus", "speex")
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(\.{_LABEL})*")
# A user part or realm pjsip writes into a header without quoting.
_TOKEN = re.compile(r"[A-Za-z0-9_.!~*'()+-]{1,64}")
MASK = "********"


@dataclass(frozen=True, slots=True)
class Trunk:
    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str = ""
    password: str = field(default="", repr=False)
    realm: str = ""
    register: bool = False
    match: tuple[str, ...] = ()
    caller_id: str = ""
    id_style: str = "from"
    from_domain: str = ""
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    did_from: str = "ruri"

    @property
    def endpoint(self) -> str:
        """The pjsip endpoint (and AOR) name: `PJSIP/NUMBER@trunk-NAME` dials out by it."""
        return f"trunk-{self.name}"

    @property
    def identify(self) -> tuple[str, ...]:
        """Where its calls come from: the addresses given, else the carrier's host."""
        return self.match or (self.host,)

    def shown(self) -> dict[str, object]:
        """Every field for `ivr trunk show`, the password masked."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "password":
                value = MASK if value else ""
            out[f.name] = ",".join(value) if isinstance(value, tuple) else value
        return out


def _host(option: str, value: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    if not value or len(value) > 253 or not _HOST.fullmatch(value) or value.isdigit():
        raise InvalidParameter(option, f"{option} must be an IPv4 address or a host name such "
                               f"as sip.carrier.example, got {value!r}")
    return value.lower()


def _match(value: str) -> str:
    value = value.strip()
    try:
        if "/" in value:
            return str(ipaddress.IPv4Network(value, strict=False))
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    try:
        return _host("--match", value)
    except InvalidParameter:
        raise InvalidParameter("match", "--match takes IPv4 addresses, networks such as "
                               f"192.0.2.0/24 or host names, got {value!r}") from None


def _e164(value: str) -> str:
    """As `ivr number add` reads numbers: international, or as dialled in the US."""
    try:
        parsed = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidParameter("caller_id", f"--caller-id {value!r} is not a valid phone "
                               "number: give it in E.164 such as +15125550100")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in allowed:
        raise InvalidParameter(option, f"{option} must be one of {', '.join(allowed)}, "
                               f"got {value!r}")
    return lowered


def build(name: str, host: str, *, port: int | None = None, transport: str = "udp",
          username: str = "", password: str = "", realm: str = "",
          register: bool | None = None, match: list[str] | tuple[str, ...] = (),
          caller_id: str = "", id_style: str = "from", from_domain: str = "",
          codecs: list[str] | tuple[str, ...] = ("ulaw", "alaw"),
          did_from: str = "ruri") -> Trunk:
    """A trunk from the operator's options, or InvalidParameter naming the bad one. With
    credentials it registers unless told not to; without, it is IP-authenticated."""
    if not NAME.fullmatch(name):
        raise InvalidParameter("name", "a trunk name is 1 to 32 lowercase letters, digits or "
                               f"'-', starting with a letter or digit, got {name!r}")
    transport = _choice("--transport", transport, TRANSPORTS)
    if port is None:
        port = 5061 if transport == "tls" else 5060
    if not 1 <= port <= 65535:
        raise InvalidParameter("port", f"--port must be between 1 and 65535, got {port}")
    if username and not _TOKEN.fullmatch(username):
        raise InvalidParameter("username", "--username must be 1 to 64 letters, digits or "
                               f"-_.!~*'()+, got {username!r}")
    if bool(username) != bool(password):
        raise InvalidParameter("password", "digest credentials are a --username and its "
                               "password together (or neither, for an IP-authenticated trunk)")
    if password and (password != password.strip() or any(c in password for c in "\r\n\0")):
        raise InvalidParameter("password", "the trunk password must be on one line, without "
                               "surrounding spaces")
    if realm and not _TOKEN.fullmatch(realm):
        raise InvalidParameter("realm", f"--realm must be a plain token, got {realm!r}")
    register = bool(username) if register is None else register
    if register and not username:
        raise InvalidParameter("register", "--register needs digest credentials (--username "
                               "and a password)")
    if caller_id:
        caller_id = _e164(caller_id)
    chosen = tuple(dict.fromkeys(_choice("--codecs", c, CODECS) for c in codecs if c.strip()))
    if not chosen:
        raise InvalidParameter("codecs", f"--codecs needs at least one of {', '.join(CODECS)}")
    return Trunk(
        name=name, host=_host("--host", host), port=port, transport=transport,
        username=username, password=password, realm=realm, register=register,
        match=tuple(dict.fromkeys(_match(m) for item in match for m in item.split(",")
                                  if m.strip())),
        caller_id=caller_id, id_style=_choice("--id-style", id_style, ID_STYLES),
        from_domain=_host("--from-domain", from_domain) if from_domain else "",
        codecs=chosen, did_from=_choice("--did-from", did_from, DID_FROM),
    )
