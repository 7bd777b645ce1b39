"""The stable error codes a developer meets in the console's error list, each with a page of its
own (/console/errors/codes/{code}; docs/errors.md lists them, a test keeps the two in step).
A flow failure's code is what the engine stored with the call (core.errors.failure_of: an
error's id); a delivery failure's code is read from the outbox row's last answer here, so the
worker stores nothing more for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    kind: str  # "flow" or "delivery"
    title: str
    meaning: str
    fix: str


CODES = {c.code: c for c in (
    Code("database_error", "flow", "The engine lost its database during the call",
         "A read or write of the call's session failed (the database was unreachable or "
         "refused the statement). The caller heard an apology and the engine hung up; what "
         "was stored before the fault (takes accepted earlier) is kept.",
         "Nothing to change on your side. Call again; if it keeps happening, tell the "
         "operator (the server's log has the statement that failed)."),
    Code("telephony_error", "flow", "Asterisk refused a step of the call",
         "An ARI request (play a prompt, record, hang up) failed for a reason other than the "
         "caller hanging up: Asterisk answered an error or could not be reached.",
         "Nothing to change on your side. Call again; tell the operator if it repeats: "
         "/healthz shows whether ARI is connected."),
    Code("unavailable", "flow", "A service the call needed was unavailable",
         "The database or Asterisk could not be reached when the call needed it.",
         "Wait a moment and call again; the operator sees the cause in /healthz."),
    Code("internal_error", "flow", "The call's flow failed",
         "The flow raised an error the engine does not name more precisely; the reason shows "
         "its type and message.",
         "Tell the operator the call's time and the reason shown: it is a fault to fix on "
         "the server."),
    # Calls of call-control applications and dialer jobs (console/other_calls.py).
    Code("call_busy", "flow", "The number called was busy",
         "An outbound call (a call-control application's or a dialer job's) was refused "
         "busy by the far end (Q.850 cause 17, USER_BUSY).",
         "Call again later; a dialer job with attempts left (max_attempts) does so by itself "
         "after its retry delay."),
    Code("call_not_answered", "flow", "The number called did not answer",
         "An outbound call rang without being answered until its ring time ran out, or the "
         "far end reported no answer (Q.850 18 or 19).",
         "Check the number; give the call a longer ring time (call control's timeout, a "
         "dialer job's ring_timeout) if people need longer to answer."),
    Code("call_failed", "flow", "The call could not be placed",
         "The trunk or the far end refused the call before it rang (a number that does not "
         "exist, a route the trunk does not have, congestion); the reason gives the cause "
         "Asterisk reported.",
         "Check the number's form (E.164 or as the trunk expects) and the trunk the "
         "application or the dialer uses; the operator sees the SIP answer in Asterisk's "
         "log."),
    Code("call_trunk_down", "flow", "The trunk to call out on was down",
         "A call-control application's outbound call was not placed: its trunk (`ivr "
         "trunk`) had failed its health check.",
         "Nothing to change on your side; tell the operator (`ivr trunk list` shows the "
         "trunk's state). Place the call again once the trunk is up."),
    Code("delivery_server_error", "delivery", "Your receiver answered 5xx",
         "The callback or upload reached your URL and your server answered with a status "
         "from 500 to 599. The delivery is retried with backoff until its retry window "
         "closes (24 hours by default), then it is failed; later events of the same session "
         "wait behind it.",
         "Open the delivery in Webhooks: each attempt shows your server's answer (status, "
         "headers, the start of its body). Fix the receiver, then Retry now."),
    Code("delivery_client_error", "delivery", "Your receiver answered 4xx",
         "Your server refused the request with a status from 400 to 499: often a wrong path "
         "(404), a signature check that failed (401/403), or a body it could not parse.",
         "Check the URL and, if you verify X-IVR-Signature, that you use the recorder's "
         "current callback secret and the raw body. Then Retry now."),
    Code("delivery_redirect", "delivery", "Your receiver answered with a redirect",
         "Deliveries do not follow redirects (a 3xx answer is a failed attempt), so that a "
         "signed event is never sent somewhere the recorder was not told about.",
         "Set the callback or upload URL to the final address (often http:// to https://)."),
    Code("delivery_timeout", "delivery", "Your receiver did not answer in time",
         "The connection took more than 5 s, or more than 15 s passed between reads of the "
         "answer.",
         "Answer quickly (2xx at once) and do slow work after answering."),
    Code("delivery_unreachable", "delivery", "Your receiver could not be reached",
         "No connection was made: the name does not resolve, nothing listens on the port, or "
         "the TLS handshake failed. The reason says which.",
         "Check the URL's host and port from the server's network (a URL on localhost "
         "means the engine's own host)."),
    Code("delivery_file_gone", "delivery", "The take's file to upload is gone",
         "An upload's stored audio file was deleted before it could be sent (retention, or "
         "removed by hand). It is failed at once; it cannot succeed on a retry.",
         "Nothing to retry. Keep audio longer (the recorder's retention) if uploads can "
         "wait that long."),
)}


def delivery_code(d: dict[str, Any]) -> str:
    """The code of a delivery's last failed attempt."""
    status, error = d.get("last_status"), str(d.get("last_error") or "")
    if status:
        return ("delivery_server_error" if status >= 500 else
                "delivery_client_error" if status >= 400 else "delivery_redirect")
    if error == "timed out":
        return "delivery_timeout"
    if error.startswith("the stored file"):
        return "delivery_file_gone"
    return "delivery_unreachable"
