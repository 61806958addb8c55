"""Checks the web API tests share."""


def err(r, status):
    """The error message of a JSON error answer (asserting its status and
    that its body is {"error": "<non-empty text>"})."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body["error"]
