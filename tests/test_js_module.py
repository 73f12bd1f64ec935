"""The js scanner module's own logic (the lab test covers discovery end to end)."""

import pytest

from assetmon_tui.scanners.js import analyse

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

KEY_ID = "AKIAWNM3XT6XBLV4Q7KU"
SECRET = "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"


def test_context_never_shows_a_neighbouring_secret_in_full():
    code = f'const AWS_ACCESS_KEY_ID="{KEY_ID}";\nconst AWS_SECRET_ACCESS_KEY="{SECRET}";\n'
    result = analyse(code.encode(), "https://app.test/main.js", 1_000_000)
    assert {f.rule_id for f in result.secrets} >= {"aws-access-key-id", "aws-secret-access-key"}
    for finding in result.secrets:
        text = "\n".join(finding.context)
        assert text, "context lines are kept"
        assert KEY_ID not in text and SECRET not in text
