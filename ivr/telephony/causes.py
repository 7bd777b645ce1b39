"""Q.850 hang-up causes under the two names the APIs report: Asterisk's own (ast_cause2str
without AST_CAUSE_: dialer postbacks, campaign reports) and a plain one (call control)."""

from __future__ import annotations

# code: (Asterisk's name, the plain name; None where call control reports the bare code)
CAUSES: dict[int, tuple[str, str | None]] = {
    0: ("NOT_DEFINED", None),
    1: ("UNALLOCATED", "unallocated number"),
    3: ("NO_ROUTE_DESTINATION", "no route"),
    16: ("NORMAL_CLEARING", "normal"),
    17: ("USER_BUSY", "busy"),
    18: ("NO_USER_RESPONSE", "no answer"),
    19: ("NO_ANSWER", "no answer"),
    20: ("SUBSCRIBER_ABSENT", None),
    21: ("CALL_REJECTED", "rejected"),
    27: ("DESTINATION_OUT_OF_ORDER", "destination out of order"),
    28: ("INVALID_NUMBER_FORMAT", None),
    34: ("NORMAL_CIRCUIT_CONGESTION", "congestion"),
    38: ("NETWORK_OUT_OF_ORDER", "network out of order"),
    41: ("NORMAL_TEMPORARY_FAILURE", None),
    127: ("INTERWORKING", "interworking"),
}


def asterisk_name(code: int) -> str:
    known = CAUSES.get(code)
    return known[0] if known is not None else f"CAUSE_{code}"


def plain_name(code: int | None) -> str:
    if code is None:
        return "unknown"
    known = CAUSES.get(code)
    plain = known[1] if known is not None else None
    return plain if plain is not None else f"cause {code}"
