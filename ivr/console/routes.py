"""Everything the console serves, under /console."""

from __future__ import annotations

from aiohttp import web

from ivr.console import (
    account,
    calls,
    dialer_auth,
    dialer_pages,
    error_log,
    live,
    numbers,
    pages,
    phone,
    render,
    webhooks,
)
from ivr.console.pages import view

KEY = r"{rk:[A-Za-z0-9_-]{1,64}}"
LIST = r"{lk:[A-Za-z0-9_-]{1,64}}"
RECORDING = r"{key:[A-Za-z0-9_-]{1,64}}"
SESSION = r"{sk:[A-Z0-9]{10}}"
# Any text: a malformed job id gets the dialer section's own "no such job" page.
JOB = r"{job_id:[^/]{1,100}}"
# Any text too: a call id that is not one gets the call log's own "no such call" page.
CALL = r"{call_id:[^/]{1,40}}"


def add_routes(app: web.Application) -> None:
    live.setup(app)
    r = app.router
    p = "/console"
    r.add_get(p, pages.root)
    r.add_get(p + "/", pages.root)
    r.add_static(p + "/static", render.STATIC, append_version=True,
                 name="console_static")
    r.add_get(p + "/signin", pages.signin_form)
    r.add_post(p + "/signin", pages.signin)
    r.add_post(p + "/signout", view(pages.signout))
    r.add_get(p + "/signup", account.signup_form)
    r.add_post(p + "/signup", account.signup)
    r.add_get(p + "/account", view(account.account))
    r.add_post(p + "/account/tokens", view(account.create_token))
    r.add_post(p + r"/account/tokens/{token_id:[^/]{1,40}}/revoke", view(account.revoke_token))
    r.add_post(p + "/account/password", view(account.change_password))
    r.add_get(p + "/recorders", view(pages.recorders))
    r.add_post(p + "/recorders", view(pages.create_recorder))
    rec = f"{p}/recorders/{KEY}"
    r.add_get(rec, view(pages.recorder))
    r.add_post(rec, view(pages.update_recorder))
    r.add_post(rec + "/delete", view(pages.delete_recorder))
    r.add_post(rec + r"/prompts/{name:[a-z0-9_]{1,32}}", view(pages.upload_prompt))
    r.add_post(rec + r"/prompts/{name:[a-z0-9_]{1,32}}/reset", view(pages.reset_prompt))
    r.add_post(rec + "/lists", view(pages.create_list))
    lst = f"{rec}/lists/{LIST}"
    r.add_get(lst, view(pages.recording_list))
    r.add_post(lst + "/delete", view(pages.delete_list))
    r.add_post(lst + "/recordings", view(pages.create_recording))
    r.add_post(f"{lst}/recordings/{RECORDING}/delete", view(pages.delete_recording))
    r.add_post(f"{lst}/recordings/{RECORDING}/sequence", view(pages.move_recording))
    r.add_post(lst + "/sessions", view(pages.start_session))
    r.add_get(f"{p}/sessions/{SESSION}", view(pages.session))
    r.add_get(f"{p}/sessions/{SESSION}/events", view(live.session_events))
    r.add_post(f"{p}/sessions/{SESSION}/expire", view(pages.expire_session))
    r.add_get(p + "/calls", view(calls.calls))
    r.add_get(p + "/calls/events", view(calls.calls_events))  # before the page of call "events"
    r.add_get(f"{p}/calls/{CALL}", view(calls.call))
    r.add_get(f"{p}/calls/{CALL}/events", view(calls.call_events))
    r.add_get(p + r"/takes/{take_id:[0-9]{1,18}}/audio.{ext:wav|mp3}", view(calls.take_audio))
    r.add_get(p + "/webhooks", view(webhooks.webhooks))
    hook = p + r"/webhooks/{event_id:[^/]{1,40}}"
    r.add_get(hook, view(webhooks.webhook))
    r.add_get(hook + "/events", view(webhooks.webhook_events))
    r.add_post(hook + "/retry", view(webhooks.retry))
    r.add_post(hook + "/redeliver", view(webhooks.redeliver))
    r.add_get(p + "/errors", view(error_log.errors))
    r.add_get(p + "/errors/codes", error_log.codes)
    r.add_get(p + r"/errors/codes/{code:[^/]{1,60}}", error_log.code_page)
    r.add_get(p + "/numbers", view(numbers.numbers))
    r.add_get(p + "/operations", view(pages.operations))
    r.add_post(p + "/phone/account", view(phone.issue_account))
    r.add_post(rec + r"/deliveries/{event_id:[0-9a-fA-F-]{36}}/retry",
               view(pages.retry_delivery))
    add_dialer_routes(app)


def add_dialer_routes(app: web.Application) -> None:
    """The dialer section (/console/dialer), signed in as a dialer account."""
    dialer_auth.setup(app)
    r = app.router
    d, dv = dialer_auth.PREFIX, dialer_pages.view
    r.add_get(d, dialer_pages.root)
    r.add_get(d + "/", dialer_pages.root)
    r.add_get(d + "/signin", dialer_pages.signin_form)
    r.add_post(d + "/signin", dialer_pages.signin)
    r.add_post(d + "/signout", dv(dialer_pages.signout))
    r.add_get(d + "/jobs", dv(dialer_pages.jobs))
    job = f"{d}/jobs/{JOB}"
    r.add_get(job, dv(dialer_pages.job))
    r.add_get(job + "/events", dv(dialer_pages.job_events))
    r.add_post(job + "/pause", dv(dialer_pages.pause))
    r.add_post(job + "/resume", dv(dialer_pages.resume))
    r.add_post(job + "/cancel", dv(dialer_pages.cancel))
    r.add_get(d + r"/{tail:.*}", dv(dialer_pages.not_found))
