"""The campaign API's errors: VoiceShot's `errorid` numbers (0-21, as its documentation lists
them) and ours from 22 up, each with the HTTP status it answers with. Every error answers
`<campaign errorid="N" comment="..."/>` (render.error_xml)."""

from __future__ import annotations

from ivr.core.errors import IvrError

# VoiceShot's own numbers.
UNAUTHORIZED = 1  # theirs: "IP address is not registered"; ours: credentials missing or wrong
MALFORMED = 3
NO_ACTION = 4
MENUID = 5
CALLID = 6
PARSE = 7
PHONENUMBER = 8
CALLERID = 9
DATETIME = 10
PROMPTID = 11
TTS = 12
FILENAME = 13
PROMPT_TAG = 14
PROMPTS_TAG = 15
PHONENUMBER_TAG = 16
PHONENUMBERS_TAG = 17
CAMPAIGN_TAG = 18
UNKNOWN_MENUID = 19
FILE_ATTRIBUTES = 20
WAV_INVALID = 21
# Ours.
TOO_LARGE = 22
SOUND_NOT_FOUND = 23
METHOD = 24
UNAVAILABLE = 25
INTERNAL = 26

_STATUS = {UNAUTHORIZED: 401, UNKNOWN_MENUID: 404, SOUND_NOT_FOUND: 404, TOO_LARGE: 413,
           METHOD: 405, UNAVAILABLE: 503, INTERNAL: 500}


class CampaignError(IvrError):
    """One error of the XML API; `comment` is the sentence the client sees."""

    error_id = "campaign_error"

    def __init__(self, errorid: int, comment: str) -> None:
        super().__init__(comment)
        self.errorid = errorid
        self.comment = comment
        self.http_status = _STATUS.get(errorid, 400)
