"""Synthetic, well-formed secrets for every rule (tests and the recall bench).

Each generator returns (snippet, secret): `snippet` is JavaScript as real
code would carry the secret (a string literal, an object field, a URL), and
`secret` is the exact text a finding must report. Values are random, with
valid checksums and structure, so they never match a real credential.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from urllib.parse import quote

from .validators import b62_checksum

B62 = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
UD = string.ascii_uppercase + string.digits
URLSAFE = B62 + "_-"


def rand(rng: random.Random, n: int, alphabet: str = B62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def uuid(rng: random.Random) -> str:
    h = rand(rng, 32, HEX)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def github_like(rng: random.Random, prefix: str) -> str:
    body = rand(rng, 30)
    return prefix + body + b62_checksum(body)


def jwt(rng: random.Random) -> str:
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": rand(rng, 12), "iat": rng.randrange(1 << 31)}).encode())
    return f"{head}.{body}.{rand(rng, 43, URLSAFE)}"


def pem(rng: random.Random, kind: str, block: str = "KEY") -> str:
    """A PEM block as it appears inside a JS string literal (\\n escapes)."""
    body = base64.b64encode(rng.randbytes(600)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    head = f"-----BEGIN {kind}PRIVATE {block}-----"
    extra = ["Version: Keybase OpenPGP v2.0.76", ""] if "PGP" in kind else []
    return "\\n".join([head, *extra, *lines, f"-----END {kind}PRIVATE {block}-----"])


def _quoted(secret: str, name: str | None = None) -> tuple[str, str]:
    return (f'{{{name}:"{secret}"}}' if name else f'"{secret}"'), secret


def _token(make: Callable[[random.Random], str]) -> Callable[[random.Random], tuple[str, str]]:
    return lambda rng: _quoted(make(rng))


def _aws_pair(rng: random.Random) -> tuple[str, str]:
    key_id = "AKIA" + rand(rng, 16, string.ascii_uppercase + "234567")
    secret = rand(rng, 40, B62 + "/+")
    return f'{{accessKeyId:"{key_id}",secretAccessKey:"{secret}"}}', secret


def _gcp_sa(rng: random.Random) -> tuple[str, str]:
    key_id = rand(rng, 40, HEX)
    doc = {
        "type": "service_account",
        "project_id": "demo-" + rand(rng, 6, HEX),
        "private_key_id": key_id,
        "client_email": "svc@demo.iam.gserviceaccount.com",
    }
    return "JSON.parse(" + json.dumps(json.dumps(doc)) + ")", key_id


def _azure_conn(rng: random.Random) -> tuple[str, str]:
    key = base64.b64encode(rng.randbytes(64)).decode()
    return (
        f'"DefaultEndpointsProtocol=https;AccountName=acct{rand(rng, 6, HEX)};'
        f'AccountKey={key};EndpointSuffix=core.windows.net"'
    ), key


def _azure_sas(rng: random.Random) -> tuple[str, str]:
    sig = quote(base64.b64encode(rng.randbytes(32)).decode(), safe="")
    return (
        f'"https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r'
        f'&se=2030-01-01T00:00:00Z&spr=https&sig={sig}"'
    ), sig


def _discord(rng: random.Random) -> tuple[str, str]:
    user = str(rng.randrange(10**17, 2 * 10**18))
    first = base64.b64encode(user.encode()).decode().rstrip("=")
    return _quoted(f"{first}.{rand(rng, 6, URLSAFE)}.{rand(rng, 38, URLSAFE)}")


def _pypi(rng: random.Random) -> tuple[str, str]:
    raw = b"\x02\x01\x08pypi.org\x02\x25\x01\x02" + rng.randbytes(90)
    return _quoted("pypi-" + b64url(raw))


def _mapbox(rng: random.Random) -> tuple[str, str]:
    body = b64url(json.dumps({"u": rand(rng, 8).lower(), "a": rand(rng, 25).lower()}).encode())
    return _quoted(f"sk.{body}.{rand(rng, 22, URLSAFE)}")


def _onepassword(rng: random.Random) -> str:
    """`ops_` + base64 of the account's JSON (ASCII, so never a `/` in it)."""
    doc = {
        "signInAddress": "my.1password.com",
        "userAuth": {"method": "SRPg-4096", "alg": "PBES2g-HS256", "iterations": 650000, "salt": rand(rng, 22)},
        "email": rand(rng, 12).lower() + "@1passwordserviceaccounts.com",
        "srpX": rand(rng, 64, HEX),
        "muk": {"alg": "A256GCM", "ext": True, "k": rand(rng, 43, URLSAFE), "kid": "mp", "kty": "oct"},
        "secretKey": "A3-" + rand(rng, 6, UD) + "-" + rand(rng, 26, UD),
        "throttleSecret": {"seed": rand(rng, 64, HEX), "uuid": rand(rng, 26, UD)},
        "deviceUuid": rand(rng, 26, string.ascii_lowercase + string.digits),
    }
    return "ops_" + base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def _url_creds(rng: random.Random) -> tuple[str, str]:
    password = rand(rng, 18)
    return f'"postgres://app_{rand(rng, 4).lower()}:{password}@db.corp.internal:5432/app"', password


def _basic(rng: random.Random) -> tuple[str, str]:
    cred = base64.b64encode(f"svc:{rand(rng, 18)}".encode()).decode()
    return f'{{headers:{{Authorization:"Basic {cred}"}}}}', cred


def _bearer(rng: random.Random) -> tuple[str, str]:
    token = rand(rng, 40, URLSAFE)
    return f'{{headers:{{Authorization:"Bearer {token}"}}}}', token


def _generic(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(
        ["apiKey", '"api_key"', "clientSecret", "SECRET_KEY", "authToken", '"x-api-key"', "accessToken", "stripe_key"]
    )
    return _quoted(rand(rng, 32), name)


def _password(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(["password", '"db_password"', "adminPwd", "smtpPassword"])
    return _quoted(rand(rng, 6, string.ascii_letters) + rand(rng, 6, string.digits + "!@#%"), name)


def _env(rng: random.Random) -> tuple[str, str]:
    secret = rand(rng, 36)
    name = rng.choice(["API_SECRET", "DB_PASSWORD", "SENDGRID_TOKEN", "APP_KEY"])
    return f"`\n{name}={secret}\n`", secret


def _keyworded(name: str, make: Callable[[random.Random], str]) -> Callable[[random.Random], tuple[str, str]]:
    return lambda rng: _quoted(make(rng), name)


SAMPLES: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "aws-access-key-id": _token(lambda r: "AKIA" + rand(r, 16, string.ascii_uppercase + "234567")),
    "aws-secret-access-key": _aws_pair,
    "aws-mws-key": _token(lambda r: "amzn.mws." + uuid(r)),
    "gcp-api-key": _token(lambda r: "AIza" + rand(r, 35, URLSAFE)),
    "gcp-service-account": _gcp_sa,
    "gcp-oauth-client-secret": _token(lambda r: "GOCSPX-" + rand(r, 28, URLSAFE)),
    "google-oauth-access-token": _token(lambda r: "ya29." + rand(r, 150, URLSAFE)),
    "azure-storage-connection-string": _azure_conn,
    "azure-ad-client-secret": _token(lambda r: rand(r, 3) + str(r.randrange(10)) + "Q~" + rand(r, 34, B62 + "_.")),
    "azure-sas-token": _azure_sas,
    "digitalocean-token": _token(lambda r: "dop_v1_" + rand(r, 64, HEX)),
    "alibaba-access-key-id": _token(lambda r: "LTAI" + rand(r, 20)),
    "heroku-api-key": lambda r: _quoted(uuid(r), "herokuApiKey"),
    "heroku-api-key-v2": _token(lambda r: "HRKU-AA" + rand(r, 58, URLSAFE)),
    "cloudflare-origin-ca-key": _token(lambda r: "v1.0-" + rand(r, 24, HEX) + "-" + rand(r, 146, HEX)),
    "databricks-token": _token(lambda r: "dapi" + rand(r, 32, HEX)),
    "doppler-token": _token(lambda r: "dp.pt." + rand(r, 43)),
    "hashicorp-vault-token": _token(lambda r: "hvs." + rand(r, 90, URLSAFE)),
    "terraform-cloud-token": _token(lambda r: rand(r, 14) + ".atlasv1." + rand(r, 67, URLSAFE)),
    "pulumi-token": _token(lambda r: "pul-" + rand(r, 40, HEX)),
    "github-pat-classic": _token(lambda r: github_like(r, "ghp_")),
    "github-oauth-token": _token(lambda r: github_like(r, "gho_")),
    "github-user-to-server-token": _token(lambda r: github_like(r, "ghu_")),
    "github-server-to-server-token": _token(lambda r: github_like(r, "ghs_")),
    "github-refresh-token": _token(lambda r: github_like(r, "ghr_")),
    "github-pat-fine-grained": _token(lambda r: "github_pat_11" + rand(r, 20) + "_" + rand(r, 59)),
    "gitlab-pat": _token(lambda r: "glpat-" + rand(r, 20, URLSAFE)),
    "gitlab-deploy-token": _token(lambda r: "gldt-" + rand(r, 20, URLSAFE)),
    "gitlab-runner-token": _token(lambda r: "glrt-" + rand(r, 20, URLSAFE)),
    "gitlab-pipeline-trigger-token": _token(lambda r: "glptt-" + rand(r, 40, HEX)),
    "gitlab-oauth-app-secret": _token(lambda r: "gloas-" + rand(r, 64, HEX)),
    "bitbucket-app-password": _token(lambda r: "ATBB" + rand(r, 32)),
    "atlassian-api-token": _token(lambda r: "ATATT3" + rand(r, 186, URLSAFE)),
    "stripe-secret-key": _token(lambda r: "sk_live_" + rand(r, 99)),
    "stripe-restricted-key": _token(lambda r: "rk_live_" + rand(r, 99)),
    "stripe-webhook-secret": _token(lambda r: "whsec_" + rand(r, 32)),
    "square-access-token": _token(lambda r: "EAAA" + rand(r, 60, URLSAFE)),
    "square-oauth-secret": _token(lambda r: "sq0csp-" + rand(r, 43, URLSAFE)),
    "braintree-access-token": _token(
        lambda r: (
            "access_token$production$" + rand(r, 16, string.ascii_lowercase + string.digits) + "$" + rand(r, 32, HEX)
        )
    ),
    "paypal-client-secret": _keyworded("paypalClientSecret", lambda r: "E" + rand(r, 79, URLSAFE)),
    "shopify-access-token": _token(lambda r: "shpat_" + rand(r, 32, HEX)),
    "shopify-shared-secret": _token(lambda r: "shpss_" + rand(r, 32, HEX)),
    "plaid-access-token": _token(lambda r: "access-production-" + uuid(r)),
    "flutterwave-secret-key": _token(lambda r: "FLWSECK-" + rand(r, 32, HEX) + "-X"),
    "slack-bot-token": _token(
        lambda r: f"xoxb-{rand(r, 12, string.digits)}-{rand(r, 13, string.digits)}-{rand(r, 24)}"
    ),
    "slack-user-token": _token(
        lambda r: (
            f"xoxp-{rand(r, 12, string.digits)}-"
            f"{rand(r, 12, string.digits)}-{rand(r, 13, string.digits)}-"
            f"{rand(r, 32, HEX)}"
        )
    ),
    "slack-app-token": _token(lambda r: f"xapp-1-A{rand(r, 10, UD)}-{rand(r, 13, string.digits)}-{rand(r, 64, HEX)}"),
    "slack-config-token": _token(lambda r: "xoxe.xoxp-1-" + rand(r, 166, UD)),
    "slack-webhook": _token(
        lambda r: f"https://hooks.slack.com/services/T{rand(r, 10, UD)}/B{rand(r, 10, UD)}/{rand(r, 24)}"
    ),
    "discord-bot-token": _discord,
    "discord-webhook": _token(
        lambda r: "https://discord.com/api/webhooks/" + rand(r, 18, string.digits) + "/" + rand(r, 68, URLSAFE)
    ),
    "telegram-bot-token": _token(lambda r: str(r.randrange(10**9, 10**10)) + ":AA" + rand(r, 33, URLSAFE)),
    "twilio-api-key": _token(lambda r: "SK" + rand(r, 32, HEX)),
    "twilio-auth-token": lambda r: (lambda t, sid: (f'{{twilioAccountSid:"AC{sid}",twilioAuthToken:"{t}"}}', t))(
        rand(r, 32, HEX), rand(r, 32, HEX)
    ),
    "sendgrid-api-key": _token(lambda r: f"SG.{rand(r, 22, URLSAFE)}.{rand(r, 43, URLSAFE)}"),
    "mailgun-api-key": _token(lambda r: "key-" + rand(r, 32, HEX)),
    "mailchimp-api-key": _token(lambda r: rand(r, 32, HEX) + "-us" + str(r.randrange(1, 21))),
    "microsoft-teams-webhook": _token(
        lambda r: (
            f"https://contoso.webhook.office.com/webhookb2/{uuid(r)}@{uuid(r)}"
            f"/IncomingWebhook/{rand(r, 32, HEX)}/{uuid(r)}"
        )
    ),
    "firebase-fcm-server-key": _token(lambda r: "AAAA" + rand(r, 7, URLSAFE) + ":APA91b" + rand(r, 134, URLSAFE)),
    "facebook-access-token": _token(lambda r: "EAAB" + rand(r, 180)),
    "twitter-bearer-token": _token(lambda r: "A" * 21 + rand(r, 90)),
    "openai-api-key": _token(lambda r: "sk-proj-" + rand(r, 74, URLSAFE) + "T3BlbkFJ" + rand(r, 74, URLSAFE)),
    "anthropic-api-key": _token(lambda r: "sk-ant-api03-" + rand(r, 93, URLSAFE) + "AA"),
    "huggingface-token": _token(lambda r: "hf_" + rand(r, 34, string.ascii_letters)),
    "groq-api-key": _token(lambda r: "gsk_" + rand(r, 52)),
    "replicate-api-token": _token(lambda r: "r8_" + rand(r, 37)),
    "perplexity-api-key": _token(lambda r: "pplx-" + rand(r, 48)),
    "xai-api-key": _token(lambda r: "xai-" + rand(r, 80)),
    "openrouter-api-key": _token(lambda r: "sk-or-v1-" + rand(r, 64, HEX)),
    "langsmith-api-key": _token(lambda r: f"lsv2_pt_{rand(r, 32, HEX)}_{rand(r, 10, HEX)}"),
    "npm-access-token": _token(lambda r: github_like(r, "npm_")),
    "pypi-upload-token": _pypi,
    "rubygems-api-key": _token(lambda r: "rubygems_" + rand(r, 48, HEX)),
    "nuget-api-key": _token(lambda r: "oy2" + rand(r, 43, string.ascii_lowercase + string.digits)),
    "dockerhub-pat": _token(lambda r: "dckr_pat_" + rand(r, 27, URLSAFE)),
    "crates-io-token": _token(lambda r: "cio" + rand(r, 32)),
    "artifactory-api-key": _token(lambda r: "AKCp" + rand(r, 69)),
    "private-key-rsa": _token(lambda r: pem(r, "RSA ")),
    "private-key-ec": _token(lambda r: pem(r, "EC ")),
    "private-key-dsa": _token(lambda r: pem(r, "DSA ")),
    "private-key-openssh": _token(lambda r: pem(r, "OPENSSH ")),
    "private-key-pgp": _token(lambda r: pem(r, "PGP ", "KEY BLOCK")),
    "private-key-pkcs8": _token(lambda r: pem(r, "")),
    "private-key-pkcs8-encrypted": _token(lambda r: pem(r, "ENCRYPTED ")),
    "linear-api-key": _token(lambda r: "lin_api_" + rand(r, 40)),
    "notion-token": _token(lambda r: "ntn_" + rand(r, 11, string.digits) + rand(r, 35)),
    "airtable-pat": _token(lambda r: f"pat{rand(r, 14)}.{rand(r, 64, HEX)}"),
    "sentry-auth-token": _token(lambda r: "sntryu_" + rand(r, 64, HEX)),
    "newrelic-user-api-key": _token(lambda r: "NRAK-" + rand(r, 27, UD)),
    "grafana-token": _token(lambda r: f"glsa_{rand(r, 32)}_{rand(r, 8, HEX)}"),
    "postman-api-key": _token(lambda r: f"PMAK-{rand(r, 24, HEX)}-{rand(r, 34, HEX)}"),
    "dynatrace-token": _token(lambda r: f"dt0c01.{rand(r, 24, UD)}.{rand(r, 64, UD)}"),
    "mapbox-secret-token": _mapbox,
    "shippo-live-token": _token(lambda r: "shippo_live_" + rand(r, 40, HEX)),
    "easypost-api-key": _token(lambda r: "EZAK" + rand(r, 54)),
    "age-secret-key": _token(lambda r: "AGE-SECRET-KEY-1" + rand(r, 58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
    "hubspot-private-app-token": _token(lambda r: "pat-na1-" + uuid(r)),
    "supabase-secret-key": _token(lambda r: "sbp_" + rand(r, 40, HEX)),
    "planetscale-token": _token(lambda r: "pscale_tkn_" + rand(r, 43, URLSAFE)),
    "figma-pat": _token(lambda r: "figd_" + rand(r, 40, URLSAFE)),
    "onepassword-service-account-token": _token(_onepassword),
    "jwt": _token(jwt),
    "credentials-in-url": _url_creds,
    "authorization-bearer": _bearer,
    "basic-auth-header": _basic,
    "generic-api-key": _generic,
    "generic-password": _password,
    "generic-env-secret": _env,
}


def sample(rule_id: str, rng: random.Random) -> tuple[str, str]:
    return SAMPLES[rule_id](rng)
