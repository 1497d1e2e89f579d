"""Passwords never reach a message log."""

from fixgate.fix.logs import mask_credentials


def test_mask_credentials_when_password_present_replaces_only_its_value():
    raw = "8=FIX.4.4\x019=70\x0135=A\x01553=demo\x01554=hunter2\x0110=000\x01"
    assert mask_credentials(raw) == "8=FIX.4.4\x019=70\x0135=A\x01553=demo\x01554=********\x0110=000\x01"


def test_mask_credentials_when_no_password_leaves_text_alone():
    raw = "8=FIX.4.4\x0135=D\x0111=C1554\x0144=554=\x01"
    assert mask_credentials(raw) == raw.replace("554=\x01", "554=\x01")
    assert mask_credentials("8=FIX.4.4\x0135=0\x01") == "8=FIX.4.4\x0135=0\x01"
