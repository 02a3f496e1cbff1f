"""Drives Sluice's OpenAI-compatible API with the official `openai` package, as a user's
service would: a completion kept local (its headers name the route), one sent to the tier,
a stream with usage, an invalid request, a wrong key, the model list.

Usage: openai_sdk.py BASE_URL API_KEY   (BASE_URL ends in /v1). Exits non-zero on failure.
"""

import sys

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
EASY = "Can fish swim? Answer with one option. Options: yes / no"


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


# Kept local by the default policy; the headers say so.
raw = client.chat.completions.with_raw_response.create(
    model="sluice", messages=[{"role": "user", "content": EASY}], temperature=0
)
c = raw.parse()
check(raw.headers.get("x-sluice-route") == "local", f"local route header ({dict(raw.headers)})")
check(bool(c.choices[0].message.content.strip()), "a local answer")
check(c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0, "usage of the local answer")
check(float(raw.headers["x-sluice-cost-avoided-usd"]) > 0, "cost avoided header")
check(raw.headers.get("x-request-id", "") != "", "request id header")

# Sent to the tier by the route hint header; the array-of-parts content form.
raw = client.chat.completions.with_raw_response.create(
    model="default",
    messages=[{"role": "user", "content": [{"type": "text", "text": "Prove Fermat's last theorem."}]}],
    extra_headers={"x-sluice-route-hint": "remote"},
)
c = raw.parse()
check(raw.headers.get("x-sluice-route") == "remote", "remote route header")
check(raw.headers.get("x-sluice-tier") == "large", "tier header")
check(c.model == "mock-large", f"the tier's model ({c.model})")
check(bool(c.choices[0].message.content), "the tier's answer")

# A stream, with the usage chunk at the end.
text, usage, finish = "", None, None
for chunk in client.chat.completions.create(
    model="sluice",
    messages=[{"role": "user", "content": EASY}],
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage
check(bool(text.strip()), f"streamed text ({text!r})")
check(finish in ("stop", "length"), f"finish reason ({finish})")
check(usage is not None and usage.completion_tokens > 0, "usage chunk")

# An invalid request: a 400 in OpenAI's error shape naming the field.
try:
    client.chat.completions.create(
        model="sluice",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"max_tokens": "lots"},
    )
    check(False, "a wrong type is refused")
except openai.BadRequestError as e:
    check(e.status_code == 400, "400 for a wrong type")
    check(e.body.get("param") == "max_tokens", f"the error names the field ({e.body})")
    check(e.body.get("type") == "invalid_request_error", "invalid_request_error")

# A policy the tenant may not use (loaded or not, it learns nothing about it): 403.
try:
    client.chat.completions.create(model="no-such-policy", messages=[{"role": "user", "content": "hi"}])
    check(False, "a policy the tenant may not use is refused")
except openai.PermissionDeniedError as e:
    check(e.status_code == 403, "403 for a policy the tenant may not use")
    check(e.body.get("code") == "policy_denied", f"policy_denied ({e.body})")

# A wrong key: 401, and no retry storm (max_retries=0 above; the SDK would not retry 401).
try:
    openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).chat.completions.create(
        model="sluice", messages=[{"role": "user", "content": "hi"}]
    )
    check(False, "a wrong key is refused")
except openai.AuthenticationError as e:
    check(e.status_code == 401, "401 for a wrong key")

models = [m.id for m in client.models.list()]
check("sluice" in models and "default" in models, f"models listed ({models})")
print("openai sdk: all checks passed")
