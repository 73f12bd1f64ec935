"""Secret detection rules.

Each rule is an RE2 pattern (linear time by construction) whose named group
`s` is the secret, plus `triggers`: cheap RE2 patterns, mostly literals, that
must occur somewhere in the text for the rule to run at all. All triggers are
matched in one pass (an RE2 set), so a file pays only for the rules whose
prefixes it contains.

Bounded repetition keeps every match short; the few unbounded runs are single
character classes that cannot re-enter themselves, so a search never scans
further than the match it returns plus one byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import validators as v

SEVERITIES = ("critical", "high", "medium", "low", "info")
CONFIDENCES = ("high", "medium", "low")

# End of a token: a character that cannot continue it, or the end of input.
_END = r"(?:[^A-Za-z0-9_\-]|$)"
# Escapes and URL encodings that stand right before a token in real code and
# end in a word character, so \b alone misses them: `"\nghp_…"`, `%22AKIA…`,
# `%2Fxoxb-…` (an encoded URL path), `\u0022sk_live_…`, `\x22…`.
_ESCAPE = r"\\[nrtfv0]|\\u00[0-9A-Fa-f]{2}|\\x[0-9A-Fa-f]{2}|%[0-9A-Fa-f]{2}"
# Start of a token: a word boundary or one of those escapes (RE2 has no
# lookbehind: the escape is matched, outside the secret's group).
_START = rf"(?:\b|{_ESCAPE})"
# Start of a token whose fixed prefix (or checksum) is distinctive enough to be
# found glued to the word before it: `/bot<token>/`, `"/v1/key"+"ghp_…"`.
_GLUED = ""
# Those tokens. The others keep a boundary: a short or common prefix (`SK`,
# `key-`, `cio`, `AIza`, `sk_live_` in `task_live_…`) or a body that starts
# with a variable run (`[0-9a-f]{32}-us1`, `….atlasv1.`) would otherwise match
# inside identifiers and base64/hex runs, or report a token cut from one.
GLUED_IDS = frozenset(
    {
        "age-secret-key",
        "airtable-pat",
        "anthropic-api-key",
        "atlassian-api-token",
        "aws-mws-key",
        "braintree-access-token",
        "cloudflare-origin-ca-key",
        "digitalocean-token",
        "dockerhub-pat",
        "doppler-token",
        "dynatrace-token",
        "figma-pat",
        "firebase-fcm-server-key",
        "flutterwave-secret-key",
        "gcp-oauth-client-secret",
        "github-pat-fine-grained",
        "gitlab-pat",
        "gitlab-deploy-token",
        "gitlab-runner-token",
        "gitlab-pipeline-trigger-token",
        "gitlab-oauth-app-secret",
        "google-oauth-access-token",
        "grafana-token",
        "groq-api-key",
        "hashicorp-vault-token",
        "heroku-api-key-v2",
        "hubspot-private-app-token",
        "jwt",
        "langsmith-api-key",
        "linear-api-key",
        "mapbox-secret-token",
        "newrelic-user-api-key",
        "npm-access-token",
        "onepassword-service-account-token",
        "openai-api-key",
        "openrouter-api-key",
        "perplexity-api-key",
        "plaid-access-token",
        "planetscale-token",
        "postman-api-key",
        "pypi-upload-token",
        "rubygems-api-key",
        "sendgrid-api-key",
        "sentry-auth-token",
        "shippo-live-token",
        "shopify-access-token",
        "shopify-shared-secret",
        "slack-bot-token",
        "slack-user-token",
        "slack-app-token",
        "slack-config-token",
        "square-oauth-secret",
        "stripe-webhook-secret",
        "supabase-secret-key",
        "twitter-bearer-token",
        "xai-api-key",
    }
)
# A quote as it appears in JS source, escaped JSON and HTML attributes.
_QUOTE = r"""(?:["'`]|\\["']|\\u00(?:22|27)|\\x(?:22|27)|&quot;|&#3[49];)"""
_END_B64 = r"(?:[^A-Za-z0-9+/=]|$)"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# `name = "value"`, `name: 'value'`, `"name":"value"` with the value in group s.
_ASSIGN = rf"{_QUOTE}?\s{{0,3}}(?:=|:|:=|=>)\s{{0,3}}{_QUOTE}"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    confidence: str
    pattern: str
    triggers: tuple[str, ...]
    check: Callable[[str], bool] | None = None  # structure/checksum of the value
    near: str | None = None  # must also occur within NEAR_BYTES of the match
    min_entropy: float = 0.0
    specificity: int = 3  # 3 fixed format, 2 keyword-anchored, 1 generic
    placeholder_check: bool = True

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES and self.confidence in CONFIDENCES, self.id
        assert "(?P<s>" in self.pattern and self.triggers, self.id


NEAR_BYTES = 400


def _token(
    rule_id: str,
    title: str,
    severity: str,
    body: str,
    triggers: Iterable[str],
    *,
    confidence: str = "high",
    check: Callable[[str], bool] | None = None,
    min_entropy: float = 3.0,
    start: str | None = None,
    end: str = _END,
    placeholder_check: bool = True,
) -> Rule:
    """A fixed-format token: `body` is the whole secret."""
    return Rule(
        rule_id,
        title,
        severity,
        confidence,
        f"{(_GLUED if rule_id in GLUED_IDS else _START) if start is None else start}(?P<s>{body}){end}",
        tuple(triggers),
        check=check,
        min_entropy=min_entropy,
        placeholder_check=placeholder_check,
    )


def _gh(rule_id: str, title: str, prefix: str) -> Rule:
    return _token(rule_id, title, "critical", prefix + "[A-Za-z0-9]{36}", [prefix], check=v.crc32_token, start=_GLUED)


def _private_key(rule_id: str, title: str, kind: str) -> Rule:
    # The block's end is found by the engine (see engine._pem_block): RE2
    # caps counted repetition at 1000, and key bodies are longer than that.
    return Rule(
        rule_id,
        title,
        "critical",
        "high",
        f"(?P<s>-----BEGIN {kind}PRIVATE KEY(?: BLOCK)?-----)"
        # a header line or the body must follow at once: cheap to reject here
        r"(?:\\[rn]|\s){0,6}(?:[A-Za-z][A-Za-z\-]{1,30}: |[A-Za-z0-9+/=]{32})",
        (f"BEGIN {kind}PRIVATE KEY",),
        placeholder_check=False,
    )  # body judged instead


def _keyword(
    rule_id: str,
    title: str,
    severity: str,
    names: str,
    value: str,
    triggers: Iterable[str],
    *,
    near: str | None = None,
    confidence: str = "high",
    check: Callable[[str], bool] | None = None,
    min_entropy: float = 3.0,
) -> Rule:
    """A secret identified by the variable or field name in front of it."""
    return Rule(
        rule_id,
        title,
        severity,
        confidence,
        f"(?i:(?:{names})[a-z0-9_.\\-]{{0,20}}){_ASSIGN}(?P<s>{value}){_QUOTE}",
        tuple(triggers),
        check=check,
        near=near,
        min_entropy=min_entropy,
        specificity=2,
    )


RULES: list[Rule] = [
    # --- cloud -------------------------------------------------------------
    _token(
        "aws-access-key-id",
        "AWS access key ID",
        "medium",
        "(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
        ["AKIA", "ASIA", "ABIA", "ACCA"],
    ),
    Rule(
        "aws-secret-access-key",
        "AWS secret access key",
        "critical",
        "high",
        # a value on its own: quoted or assigned, not part of a longer phrase
        rf"(?:{_QUOTE}|[=:]\s{{0,3}})(?P<s>[A-Za-z0-9/+]{{40}})" + _END_B64,
        ("AKIA", "ASIA", r"(?i)aws.?secret", r"(?i)secret.?access.?key"),
        near=r"(?:AKIA|ASIA)[A-Z2-7]{16}|(?i:aws.{0,20}secret|secret.?access.?key)",
        min_entropy=4.2,
        specificity=2,
    ),
    _token("aws-mws-key", "Amazon MWS auth token", "high", r"amzn\.mws\." + _UUID, [r"amzn\.mws\."]),
    _token("gcp-api-key", "Google Cloud API key", "medium", "AIza[0-9A-Za-z_\\-]{35}", ["AIza"]),
    Rule(
        "gcp-service-account",
        "Google Cloud service account key",
        "critical",
        "high",
        r'\\?"private_key_id\\?"\s{0,3}:\s{0,3}\\?"(?P<s>[0-9a-f]{40})\\?"',
        ("private_key_id",),
        near=r"service_account",
        specificity=2,
    ),
    _token("gcp-oauth-client-secret", "Google OAuth client secret", "high", "GOCSPX-[A-Za-z0-9_\\-]{28}", ["GOCSPX-"]),
    _token(
        "google-oauth-access-token",
        "Google OAuth access token",
        "high",
        r"ya29\.[0-9A-Za-z_\-]{30,1000}",
        [r"ya29\."],
        confidence="medium",
    ),
    Rule(
        "azure-storage-connection-string",
        "Azure storage account key",
        "critical",
        "high",
        r"AccountKey=(?P<s>[A-Za-z0-9+/]{86}==)",
        ("AccountKey=",),
        check=v.azure_account_key,
    ),
    _token(
        "azure-ad-client-secret",
        "Azure AD client secret",
        "high",
        r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}",
        [r"\dQ~"],
        start=rf"(?:^|[^A-Za-z0-9_~.\-]|{_ESCAPE})",
        end=r"(?:[^A-Za-z0-9_~.\-]|$)",
    ),
    Rule(
        "azure-sas-token",
        "Azure shared access signature",
        "high",
        "medium",
        r"sv=\d{4}-\d\d-\d\d&[A-Za-z0-9%&=:\-.]{0,300}?sig=(?P<s>(?:[A-Za-z0-9/+=]|%(?:2[BbFf]|3[Dd])){40,90})",
        ("sig=",),
        check=v.azure_sas_sig,
        specificity=2,
    ),
    _token("digitalocean-token", "DigitalOcean token", "critical", "do[opr]_v1_[a-f0-9]{64}", ["_v1_"]),
    _token(
        "alibaba-access-key-id",
        "Alibaba Cloud AccessKey ID",
        "medium",
        "LTAI[A-Za-z0-9]{12,20}",
        ["LTAI"],
        min_entropy=3.3,
    ),
    _keyword("heroku-api-key", "Heroku API key", "high", "heroku", _UUID, [r"(?i)heroku"]),
    _token("heroku-api-key-v2", "Heroku API key", "high", "HRKU-AA[0-9a-zA-Z_\\-]{58}", ["HRKU-"]),
    _token(
        "cloudflare-origin-ca-key", "Cloudflare Origin CA key", "high", r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}", [r"v1\.0-"]
    ),
    _token("databricks-token", "Databricks API token", "high", "dapi[a-f0-9]{32}(?:-\\d)?", ["dapi"]),
    _token("doppler-token", "Doppler token", "high", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}", [r"dp\."]),
    _token(
        "hashicorp-vault-token",
        "HashiCorp Vault token",
        "high",
        r"hv[sb]\.[A-Za-z0-9_\-]{24,200}",
        [r"hvs\.", r"hvb\."],
        min_entropy=3.5,
    ),
    _token(
        "terraform-cloud-token",
        "Terraform Cloud token",
        "high",
        r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70}",
        ["atlasv1"],
    ),
    _token("pulumi-token", "Pulumi access token", "high", "pul-[a-f0-9]{40}", ["pul-"]),
    # --- source hosting ----------------------------------------------------
    _gh("github-pat-classic", "GitHub personal access token (classic)", "ghp_"),
    _gh("github-oauth-token", "GitHub OAuth access token", "gho_"),
    _gh("github-user-to-server-token", "GitHub App user token", "ghu_"),
    _gh("github-server-to-server-token", "GitHub App installation token", "ghs_"),
    _gh("github-refresh-token", "GitHub refresh token", "ghr_"),
    # GitHub has not published the fine-grained checksum; real tokens fail a
    # CRC32 over any part, so these are judged by structure and entropy.
    _token(
        "github-pat-fine-grained",
        "GitHub fine-grained personal access token",
        "critical",
        "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        ["github_pat_"],
        min_entropy=4.5,
    ),
    _token("gitlab-pat", "GitLab personal access token", "critical", r"glpat-[A-Za-z0-9_\-.]{20,100}", ["glpat-"]),
    _token("gitlab-deploy-token", "GitLab deploy token", "high", r"gldt-[A-Za-z0-9_\-]{20,100}", ["gldt-"]),
    _token("gitlab-runner-token", "GitLab runner token", "high", r"glrt-[A-Za-z0-9_\-.]{20,100}", ["glrt-"]),
    _token("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", "high", "glptt-[a-f0-9]{40}", ["glptt-"]),
    _token("gitlab-oauth-app-secret", "GitLab OAuth application secret", "high", "gloas-[a-f0-9]{64}", ["gloas-"]),
    _token(
        "bitbucket-app-password", "Bitbucket app password", "high", "ATBB[A-Za-z0-9]{32}", ["ATBB"], min_entropy=3.5
    ),
    _token("atlassian-api-token", "Atlassian API token", "high", "ATATT3[A-Za-z0-9_\\-=]{186}", ["ATATT3"]),
    # --- payments ----------------------------------------------------------
    _token("stripe-secret-key", "Stripe live secret key", "critical", "sk_live_[0-9a-zA-Z]{24,247}", ["sk_live_"]),
    _token("stripe-restricted-key", "Stripe live restricted key", "high", "rk_live_[0-9a-zA-Z]{24,247}", ["rk_live_"]),
    _token(
        "stripe-webhook-secret",
        "Stripe webhook signing secret",
        "high",
        "whsec_(?:[A-Za-z0-9+/]{32}|[A-Za-z0-9]{33,100})",
        ["whsec_"],
    ),
    _token(
        "square-access-token",
        "Square access token",
        "critical",
        r"EAAA[A-Za-z0-9_\-]{60}|sq0atp-[0-9A-Za-z_\-]{22}",
        ["EAAA", "sq0atp-"],
    ),
    _token("square-oauth-secret", "Square OAuth secret", "critical", r"sq0csp-[0-9A-Za-z_\-]{43}", ["sq0csp-"]),
    _token(
        "braintree-access-token",
        "PayPal Braintree access token",
        "critical",
        r"access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}",
        [r"access_token\$production"],
    ),
    _keyword(
        "paypal-client-secret",
        "PayPal client secret",
        "critical",
        "paypal[a-z0-9_.\\-]{0,20}secret",
        "E[A-Za-z0-9_\\-]{79}",
        [r"(?i)paypal"],
    ),
    _token(
        "shopify-access-token",
        "Shopify access token",
        "critical",
        "shp(?:at|ca|pa)_[a-fA-F0-9]{32}",
        ["shpat_", "shpca_", "shppa_"],
    ),
    _token("shopify-shared-secret", "Shopify app shared secret", "high", "shpss_[a-fA-F0-9]{32}", ["shpss_"]),
    _token(
        "plaid-access-token",
        "Plaid access token",
        "high",
        "access-(?:production|development)-" + _UUID,
        ["access-production-", "access-development-"],
    ),
    _token(
        "flutterwave-secret-key", "Flutterwave secret key", "critical", "FLWSECK-[a-f0-9]{32}-X", ["FLWSECK-"], end=""
    ),
    # --- messaging ---------------------------------------------------------
    _token("slack-bot-token", "Slack bot token", "high", "xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}", ["xoxb-"]),
    _token(
        "slack-user-token",
        "Slack user token",
        "critical",
        "xox[pe]-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32}",
        ["xoxp-", "xoxe-"],
    ),
    _token(
        "slack-app-token", "Slack app-level token", "high", "xapp-\\d-[A-Z0-9]{9,12}-\\d{10,13}-[a-f0-9]{64}", ["xapp-"]
    ),
    _token(
        "slack-config-token",
        "Slack configuration token",
        "high",
        r"xoxe(?:\.xox[bp])?-\d-[A-Z0-9]{140,170}",
        [r"xoxe\.", "xoxe-"],
    ),
    _token(
        "slack-webhook",
        "Slack incoming webhook",
        "high",
        r"https:\\?/\\?/hooks\.slack\.com\\?/services\\?/T[A-Z0-9]{8,12}\\?/B[A-Z0-9]{8,12}\\?/[A-Za-z0-9]{24}",
        [r"hooks\.slack\.com"],
        start="",
    ),
    _token(
        "discord-bot-token",
        "Discord bot token",
        "critical",
        r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}",
        [r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\."],
        check=v.discord_bot,
    ),
    _token(
        "discord-webhook",
        "Discord webhook",
        "high",
        r"https:\\?/\\?/(?:(?:ptb|canary)\.)?discord(?:app)?\.com\\?/api\\?/webhooks\\?/\d{17,20}\\?/"
        r"[A-Za-z0-9_\-]{60,68}",
        [r"api\\?/webhooks\\?/"],
        start="",
    ),
    # `bot<id>:<secret>` in API URLs: glued to `bot`, so only a digit may not
    # stand before the id; `%3A` is the colon URL-encoded in a query string
    _token(
        "telegram-bot-token",
        "Telegram bot token",
        "high",
        r"\d{8,10}(?::|%3[Aa])AA[A-Za-z0-9_\-]{33}",
        [":AA", "%3[Aa]AA"],
        start=rf"(?:^|[^0-9]|{_ESCAPE})",
    ),
    _token("twilio-api-key", "Twilio API key", "high", "SK[0-9a-f]{32}", ["SK"]),
    _keyword(
        "twilio-auth-token",
        "Twilio auth token",
        "critical",
        "twilio[a-z0-9_.\\-]{0,20}token|auth_?token",
        "[0-9a-f]{32}",
        [r"(?i)twilio"],
        near=r"(?i)twilio|AC[0-9a-f]{32}",
    ),
    _token("sendgrid-api-key", "SendGrid API key", "high", r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}", [r"SG\."]),
    _token("mailgun-api-key", "Mailgun API key", "high", "key-[0-9a-f]{32}", ["key-"]),
    _token("mailchimp-api-key", "Mailchimp API key", "high", "[0-9a-f]{32}-us\\d{1,2}", ["-us"]),
    _token(
        "microsoft-teams-webhook",
        "Microsoft Teams incoming webhook",
        "high",
        r"https:\\?/\\?/[a-z0-9\-]{1,60}\.webhook\.office\.com\\?/webhookb2\\?/[0-9a-f\-]{36}@"
        r"[0-9a-f\-]{36}\\?/IncomingWebhook\\?/[0-9a-f]{32}\\?/[0-9a-f\-]{36}",
        [r"webhook\.office\.com"],
        start="",
    ),
    _token(
        "firebase-fcm-server-key",
        "Firebase Cloud Messaging server key",
        "high",
        r"AAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{134}",
        [":APA91b"],
    ),
    _token(
        "facebook-access-token", "Facebook access token", "high", "EAA[A-Za-z0-9]{100,400}", ["EAA"], min_entropy=4.0
    ),
    _token(
        "twitter-bearer-token",
        "Twitter/X bearer token",
        "high",
        "AAAAAAAAAAAAAAAAAAAAA(?:[A-Za-z0-9]|%(?:2[BbFf]|3[Dd])){30,200}",
        ["AAAAAAAAAAAAAAAAAAAAA"],
        check=v.twitter_bearer,
        min_entropy=0.0,
        placeholder_check=False,
    ),
    # --- AI providers ------------------------------------------------------
    _token(
        "openai-api-key",
        "OpenAI API key",
        "critical",
        r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200}",
        ["T3BlbkFJ"],
    ),
    _token(
        "anthropic-api-key",
        "Anthropic API key",
        "critical",
        r"sk-ant-(?:api03|admin01)-[A-Za-z0-9_\-]{93}AA",
        ["sk-ant-"],
    ),
    _token("huggingface-token", "Hugging Face access token", "high", "hf_[A-Za-z]{34}", ["hf_"], min_entropy=3.8),
    _token("groq-api-key", "Groq API key", "high", "gsk_[A-Za-z0-9]{52}", ["gsk_"]),
    _token("replicate-api-token", "Replicate API token", "high", "r8_[A-Za-z0-9]{37}", ["r8_"]),
    _token("perplexity-api-key", "Perplexity API key", "high", "pplx-[A-Za-z0-9]{48}", ["pplx-"]),
    _token("xai-api-key", "xAI API key", "high", "xai-[A-Za-z0-9]{80}", ["xai-"]),
    _token("openrouter-api-key", "OpenRouter API key", "high", "sk-or-v1-[a-f0-9]{64}", ["sk-or-v1-"]),
    _token("langsmith-api-key", "LangSmith API key", "high", "lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}", ["lsv2_"]),
    # --- package registries ------------------------------------------------
    _token("npm-access-token", "npm access token", "critical", "npm_[A-Za-z0-9]{36}", ["npm_"], check=v.crc32_token),
    _token(
        "pypi-upload-token",
        "PyPI upload token",
        "critical",
        r"pypi-AgE[A-Za-z0-9_\-]{50,1000}",
        ["pypi-AgE"],
        check=v.pypi_macaroon,
    ),
    _token("rubygems-api-key", "RubyGems API key", "critical", "rubygems_[a-f0-9]{48}", ["rubygems_"]),
    _token("nuget-api-key", "NuGet API key", "high", "oy2[a-z0-9]{43}", ["oy2"], min_entropy=4.0),
    _token("dockerhub-pat", "Docker Hub personal access token", "high", "dckr_pat_[A-Za-z0-9_\\-]{27}", ["dckr_pat_"]),
    _token("crates-io-token", "crates.io API token", "high", "cio[A-Za-z0-9]{32}", ["cio"], min_entropy=4.0),
    _token("artifactory-api-key", "JFrog Artifactory API key", "high", "AKCp[A-Za-z0-9]{69}", ["AKCp"]),
    # --- private keys ------------------------------------------------------
    _private_key("private-key-rsa", "RSA private key", "RSA "),
    _private_key("private-key-ec", "EC private key", "EC "),
    _private_key("private-key-dsa", "DSA private key", "DSA "),
    _private_key("private-key-openssh", "OpenSSH private key", "OPENSSH "),
    _private_key("private-key-pgp", "PGP private key block", "PGP "),
    _private_key("private-key-pkcs8", "PKCS#8 private key", ""),
    _private_key("private-key-pkcs8-encrypted", "Encrypted PKCS#8 private key", "ENCRYPTED "),
    # --- other services ----------------------------------------------------
    _token("linear-api-key", "Linear API key", "high", "lin_api_[A-Za-z0-9]{40}", ["lin_api_"]),
    _token(
        "notion-token",
        "Notion integration token",
        "high",
        "secret_[A-Za-z0-9]{43}|ntn_[0-9]{11}[A-Za-z0-9]{35}",
        ["secret_", "ntn_"],
        min_entropy=4.0,
    ),
    _token(
        "airtable-pat",
        "Airtable personal access token",
        "high",
        r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}",
        [r"pat[A-Za-z0-9]{14}\."],
    ),
    _token(
        "sentry-auth-token",
        "Sentry auth token",
        "high",
        r"sntrys_eyJ[A-Za-z0-9+=_]{60,1000}|sntryu_[a-f0-9]{64}",
        ["sntrys_", "sntryu_"],
        end=r"(?:[^A-Za-z0-9+=_]|$)",
    ),
    _token("newrelic-user-api-key", "New Relic user API key", "high", "NRAK-[A-Z0-9]{27}", ["NRAK-"]),
    _token(
        "grafana-token",
        "Grafana token",
        "high",
        r"glc_[A-Za-z0-9+]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",
        ["glc_", "glsa_"],
        end=r"(?:[^A-Za-z0-9+=_\-]|$)",
    ),
    _token("postman-api-key", "Postman API key", "high", "PMAK-[a-f0-9]{24}-[a-f0-9]{34}", ["PMAK-"]),
    _token("dynatrace-token", "Dynatrace API token", "high", r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}", [r"dt0c01\."]),
    _token(
        "mapbox-secret-token",
        "Mapbox secret token",
        "high",
        r"sk\.eyJ[A-Za-z0-9_\-]{20,400}\.[A-Za-z0-9_\-]{20,200}",
        [r"sk\.eyJ"],
        check=v.mapbox_secret,
    ),
    _token("shippo-live-token", "Shippo live API token", "high", "shippo_live_[a-f0-9]{40}", ["shippo_live_"]),
    _token("easypost-api-key", "EasyPost production API key", "high", "EZAK[A-Za-z0-9]{54}", ["EZAK"]),
    _token(
        "age-secret-key",
        "age encryption secret key",
        "critical",
        "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        ["AGE-SECRET-KEY-1"],
    ),
    _token(
        "hubspot-private-app-token",
        "HubSpot private app token",
        "high",
        "pat-(?:na1|eu1)-" + _UUID,
        ["pat-na1-", "pat-eu1-"],
    ),
    _token(
        "supabase-secret-key",
        "Supabase secret key",
        "critical",
        r"sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_\-]{31,100}",
        ["sbp_", "sb_secret_"],
    ),
    _token(
        "planetscale-token", "PlanetScale token", "high", r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.]{32,64}", ["pscale_"]
    ),
    _token("figma-pat", "Figma personal access token", "high", "figd_[A-Za-z0-9_\\-]{40}", ["figd_"]),
    _token(
        "onepassword-service-account-token",
        "1Password service account token",
        "critical",
        r"ops_eyJ[A-Za-z0-9+=_\-]{250,1000}",
        ["ops_eyJ"],
    ),
    # --- structural --------------------------------------------------------
    _token(
        "jwt",
        "JSON Web Token",
        "medium",
        r"eyJ[A-Za-z0-9_\-]{5,}\.ey[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{16,}",
        ["eyJ"],
        check=v.jwt,
        min_entropy=0.0,
    ),
    Rule(
        "credentials-in-url",
        "Credentials in URL",
        "high",
        "medium",
        r"://[^\s:@/\"'`<>\\]{1,64}:"
        r"(?P<s>[^\s:@/\"'`<>\\]{3,128})@[A-Za-z0-9_\-]{1,63}(?:\.[A-Za-z0-9_\-]{1,63}){0,8}",
        ("://",),
        check=v.url_password,
        min_entropy=1.5,
        specificity=2,
    ),
    Rule(
        "authorization-bearer",
        "Bearer token",
        "high",
        "medium",
        r"(?i)bearer\s{1,3}(?P<s>[A-Za-z0-9_\-.~+/]{20,1000}=*)",
        (r"(?i)bearer\s",),
        min_entropy=3.5,
        specificity=2,
    ),
    Rule(
        "basic-auth-header",
        "HTTP Basic credentials",
        "high",
        "medium",
        r"(?i)basic\s{1,3}(?P<s>[A-Za-z0-9+/]{8,1000}={0,2})" + _END_B64,
        (r"(?i)basic\s",),
        check=v.basic_auth,
        specificity=2,
    ),
    # --- generic: judged by name, entropy and shape (see engine._judge_generic)
    Rule(
        "generic-api-key",
        "Generic API key or secret",
        "medium",
        "medium",
        r"(?i)(?P<name>(?:api[_\-]?key|apikey|secret|token|auth[_\-]?key|"
        r"access[_\-]?key|private[_\-]?key|credential|[_\-]key)[a-z0-9_\-]{0,20})"
        + _ASSIGN
        + r"(?P<s>[^\"'`\s\\]{12,200}?)"
        + _QUOTE,
        (r"(?i)key", r"(?i)secret", r"(?i)token", r"(?i)credential"),
        specificity=1,
    ),
    Rule(
        "generic-password",
        "Hard-coded password",
        "high",
        "medium",
        r"(?i)(?P<name>(?:passw(?:or)?d|pwd|passphrase)[a-z0-9_\-]{0,20})"
        + _ASSIGN
        + r"(?P<s>[^\"'`\s\\]{8,128}?)"
        + _QUOTE,
        (r"(?i)passw", r"(?i)pwd", r"(?i)passphrase"),
        specificity=1,
    ),
    Rule(
        "generic-env-secret",
        "Secret in environment file",
        "medium",
        "medium",
        r"(?m)^[ \t]{0,8}(?:export[ \t]{1,4})?(?P<name>[A-Z0-9_]{0,40}(?:KEY|SECRET|TOKEN|"
        r"PASSWORD|PASSWD|PWD|CREDENTIALS?)[A-Z0-9_]{0,20})[ \t]{0,2}=[ \t]{0,2}[\"']?"
        r"(?P<s>[^\s\"'#]{8,200})",
        ("KEY", "SECRET", "TOKEN", "PASSW", "PWD", "CREDENTIAL"),
        specificity=1,
    ),
]

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
assert len(RULES_BY_ID) == len(RULES), "duplicate rule id"
