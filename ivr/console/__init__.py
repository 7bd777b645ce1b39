"""The developers' console at /console: server-rendered pages over the recorder service (the
same operations /vr and /v1 run), a signed-in browser session with CSRF tokens, and a live
session view fed by server-sent events."""
