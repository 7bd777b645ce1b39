"""SIP over a websocket (RFC 7118), as a browser phone speaks it, far enough to ask Asterisk
whether an account is let in: an OPTIONS from the account, answering one digest challenge."""

from __future__ import annotations

import hashlib
import re
import secrets
import ssl

import aiohttp


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # SIP digest is MD5


def _request(user: str, host: str, call_id: str, cseq: int, auth: str = "") -> str:
    branch = "z9hG4bK" + secrets.token_hex(8)
    lines = [f"OPTIONS sip:{host} SIP/2.0",
             f"Via: SIP/2.0/WSS {secrets.token_hex(4)}.invalid;branch={branch}",
             "Max-Forwards: 70",
             f"From: <sip:{user}@{host}>;tag={secrets.token_hex(4)}",
             f"To: <sip:{host}>",
             f"Call-ID: {call_id}",
             f"CSeq: {cseq} OPTIONS",
             f"Contact: <sip:{user}@{secrets.token_hex(4)}.invalid;transport=ws>",
             *([auth] if auth else []),
             "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def _status(message: str) -> int:
    return int(message.split(" ", 2)[1])


def _authorization(challenge: str, user: str, password: str, uri: str) -> str:
    found = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    ha1 = _md5(f"{user}:{found['realm']}:{password}")
    ha2 = _md5(f"OPTIONS:{uri}")
    cnonce, nc = secrets.token_hex(8), "00000001"
    qop = "auth" if "auth" in found.get("qop", "").split(",") else ""
    response = (_md5(f"{ha1}:{found['nonce']}:{nc}:{cnonce}:{qop}:{ha2}") if qop
                else _md5(f"{ha1}:{found['nonce']}:{ha2}"))
    fields = [f'username="{user}"', f'realm="{found["realm"]}"', f'nonce="{found["nonce"]}"',
              f'uri="{uri}"', f'response="{response}"', "algorithm=MD5"]
    if "opaque" in found:
        fields.append(f'opaque="{found["opaque"]}"')
    if qop:
        fields += [f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
    return "Authorization: Digest " + ", ".join(fields)


async def options_status(ws_url: str, user: str, password: str, host: str = "127.0.0.1",
                         ssl_context: ssl.SSLContext | None = None) -> int:
    """The final status of an OPTIONS from `user` (200: let in; 401 again after answering the
    challenge: refused)."""
    call_id = secrets.token_hex(12)
    async with aiohttp.ClientSession() as http, http.ws_connect(
            ws_url, protocols=("sip",), ssl=ssl_context if ssl_context else True,
            timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
        assert ws.protocol == "sip", ws.protocol
        await ws.send_str(_request(user, host, call_id, 1))
        answer = await ws.receive_str(timeout=5)
        if _status(answer) != 401:
            return _status(answer)
        challenge = next(line.split(":", 1)[1].strip() for line in answer.split("\r\n")
                         if line.lower().startswith("www-authenticate:"))
        auth = _authorization(challenge, user, password, f"sip:{host}")
        await ws.send_str(_request(user, host, call_id, 2, auth))
        return _status(await ws.receive_str(timeout=5))
