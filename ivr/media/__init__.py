"""The media layer: the default prompt set and per-recorder prompts as ARI media URIs,
text-to-speech, transcoding, and the HTTP routes Asterisk fetches prompt audio from."""
