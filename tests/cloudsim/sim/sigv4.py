"""AWS Signature Version 4 for the EC2 Query API, both ways: the front
checks a client's signature (when it knows the secret) before adding any
behaviour of its own, and signs the calls it makes to moto itself."""

import hashlib
import hmac
import re
import time
import urllib.parse

AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/"
    r"aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)")
# headers botocore (and so moto) leaves out when it recomputes a signature
UNSIGNABLE = {"connection", "expect", "keep-alive", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "transfer-encoding",
              "upgrade", "user-agent", "x-amzn-trace-id"}


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _canonical_query(qs):
    pairs = urllib.parse.parse_qsl(qs, keep_blank_values=True)
    enc = sorted((urllib.parse.quote(k, safe="-_.~"),
                  urllib.parse.quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in enc)


def signature(secret, method, path, headers, signed, body, amz_date, scope):
    """headers: a mapping whose get() is case-insensitive."""
    url = urllib.parse.urlsplit(path)
    lines = []
    for h in signed:
        v = headers.get(h)
        if v is None:
            return None
        lines.append("%s:%s\n" % (h, " ".join(str(v).split())))
    payload = headers.get("x-amz-content-sha256") or \
        hashlib.sha256(body).hexdigest()
    creq = "\n".join([method, urllib.parse.quote(url.path or "/",
                                                 safe="/~"),
                      _canonical_query(url.query), "".join(lines),
                      ";".join(signed), payload])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(scope),
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret, *scope[:3])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def verify(method, path, headers, body, secrets):
    """True when the request is signed with a key of secrets (key id ->
    secret) and the signature is right; False when it is one of ours and
    wrong; None when it cannot be checked here (unknown key, session
    token, a header moto would not sign...): moto then decides alone."""
    m = AUTH_RE.search(headers.get("Authorization") or "")
    if not m or headers.get("X-Amz-Security-Token"):
        return None
    key, date, region, service, signed, sig = m.groups()
    secret = secrets.get(key)
    signed = signed.split(";")
    if secret is None or UNSIGNABLE & set(signed):
        return None
    amz_date = headers.get("X-Amz-Date")
    if not amz_date:
        return None
    calc = signature(secret, method, path, headers, signed, body, amz_date,
                     (date, region, service, "aws4_request"))
    return calc is not None and hmac.compare_digest(calc, sig)


def sign_headers(key, secret, host, body, region="us-east-1",
                 service="ec2"):
    """Headers of a signed POST of a form body to host ('h:port')."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {"Content-Type":
               "application/x-www-form-urlencoded; charset=utf-8",
               "Host": host, "X-Amz-Date": amz_date}
    low = {k.lower(): v for k, v in headers.items()}
    signed = ["content-type", "host", "x-amz-date"]
    scope = (amz_date[:8], region, service, "aws4_request")
    sig = signature(secret, "POST", "/", low, signed, body, amz_date, scope)
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (key, "/".join(scope), ";".join(signed), sig))
    return headers
