"""Seed 003's result codes: each a status_code, an HTTP status and its description."""

from __future__ import annotations

from typing import Any

from ivr.core.errors import IvrError


class BroadcastError(IvrError):
    """Answered as {"api_job_id", "client_job_id", "result_info": {status_code, description}}."""

    def __init__(self, code: int, description: str, http_status: int = 403,
                 **echo: Any) -> None:
        super().__init__(description)
        self.code = code
        self.http_status = http_status
        self.echo = echo


def err(code: int, *args: object) -> BroadcastError:
    text = MESSAGES[code]
    return BroadcastError(code, text.format(*args) if args else text)


MESSAGES: dict[int, str] = {
    -50: "Not authorized",
    -80: "Invalid JSON Body",
    -81: "Cannot use both Audio File and TTS at the same time",
    -82: "{} is not allowed",
    -83: "Invalid type for 'destinations'",
    -84: "Missing object called 'number' in 'destinations'",
    -85: "The destination number should have at least have 7 and a maximum of 15 digits",
    -86: "There can only be {} destination numbers",
    -87: "There are no valid destination numbers in the 'destinations' parameter",
    -88: "The 'destinations' Object is missing",
    -89: "Required 'tts_text' or 'audio_file_url' in the 'voice_content' object",
    -90: "Cannot use 'tts' properties in a call of type 'Audio' in the 'voice_content' object",
    -91: "Cannot use 'audio_file_url' in a call of type 'TTS' in the 'voice_content' object",
    -92: "The 'sender_id' number {} should at least have 7 digits and a maximum of 15 digits",
    -93: "Parameter 'enable_menu_response' has to be either 'true' or 'false'",
    -95: "The 'tts_text' should at least have 7 characters and a maximum of {}",
    -96: "The TTS voice selected is invalid. (e.g MAN or WOMAN)",
    -97: "The TTS language selected is invalid",
    -98: "The 'voice_content' Object is missing",
    -99: "The 'job_id' parameter should at least have 7 characters and a maximum of 15",
    -101: "There was a problem with your job: {}",
    -102: "Custom ID {} is not unique",
    -103: "{} should be bigger than 10",
    -104: "{} should be integer",
    -105: "Server too busy",
    -106: "The Audio File supplied cannot be downloaded to our servers",
    -107: "The Audio File format supplied is Invalid (must be MP3 or WAV). Also ensure that the "
          "URL has no spaces or invalid characters and also that the File is reachable via "
          "the internet.",
    -108: "The Audio File format supplied is corrupted",
    -109: "The Audio File supplied cannot be processed. Please contact customer support",
    -110: "There was some problems with the Audio File",
    -111: "The 'audio_file_url' must be valid (starting with http or https)",
    -112: "Cannot establish service settings",
    -120: "Could not load the call details",
    -121: "Could not verify the Call Message ID",
    -122: "Only 1 Destination allowed, when using a TEST Account",
    -123: "Only the personal mobile phone number {} can used when using a TEST Account",
    -125: "Could not load the Job details",
    -126: "Could not verify the api_job_id",
}
