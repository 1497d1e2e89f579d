"""Passwords never reach a message log."""

from fixgate.fix.logs import mask_credentials


def test_mask_credentials_when_password_present_replaces_only_its_value():
    raw = "8=FIX.4.4\x019=70\x0135=A\x01553=demo\x01554=hunter2\x0110=000\x01"
    assert mask_credentials(raw) == "8=FIX.4.4\x019=70\x0135=A\x01553=demo\x01554=********\x0110=000\x01"


def test_mask_credentials_when_no_password_leaves_text_alone():
    raw = "8=FIX.4.4\x0135=D\x0111=C1554\x0144=554=\x01"
    assert mask_credentials(raw) == raw.replace("554=\x01", "554=\x01")
    assert mask_credentials("8=FIX.4.4\x0135=0\x01") == "8=FIX.4.4\x0135=0\x01"


def test_message_log_when_lines_are_buffered_writes_them_out_by_flush_and_close(tmp_path):
    from fixgate.fix.logs import MessageLog

    log = MessageLog(tmp_path, flush_interval_s=3600)        # no periodic flush during the test
    log.write_text("FIX.4.4:FIXGATE->CLIENT1", "8=FIX.4.4\x0135=A\x01554=secret\x01", "in")
    path = tmp_path / "FIX.4.4-FIXGATE-CLIENT1.messages.log"
    assert path.read_text() == ""
    log.flush()
    line = path.read_text()
    assert line.endswith(" in 8=FIX.4.4|35=A|554=********|\n") and "secret" not in line
    log.write_text("FIX.4.4:FIXGATE->CLIENT1", "8=FIX.4.4\x0135=0\x01", "out")
    log.close()
    assert path.read_text().count("\n") == 2 and log.errors == 0


def test_message_log_when_left_running_writes_lines_out_within_its_interval(tmp_path):
    import time

    from fixgate.fix.logs import MessageLog

    log = MessageLog(tmp_path, flush_interval_s=0.01)
    log.write_text("FIX.4.4:A->B", "8=FIX.4.4\x0135=0\x01", "out")
    path = tmp_path / "FIX.4.4-A-B.messages.log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not path.read_text():
        time.sleep(0.01)
    assert path.read_text().endswith(" out 8=FIX.4.4|35=0|\n")
    log.close()
