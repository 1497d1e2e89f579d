"""The `fixgate` command as a user meets it."""

import subprocess
import sys


def run(*arguments, timeout=120):
    return subprocess.run([sys.executable, "-m", "fixgate", *arguments], capture_output=True, text=True,
                          timeout=timeout)


def test_help_when_asked_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    assert "bench" in result.stdout
    assert "SUPPRESS" not in result.stdout and "demo-client" not in result.stdout


def test_fixgate_when_no_command_prints_help_to_stderr_and_fails():
    result = run()
    assert result.returncode == 2
    assert "usage: fixgate" in result.stderr


def test_fixgate_when_command_unknown_fails_with_message():
    result = run("launch-rockets")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_bench_when_quick_prints_fast_and_reference_for_every_group():
    result = run("bench", "--quick", "--hotpath-only")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for group in ("check chain", "check batch", "quote validation", "ring push+pop"):
        row = next(line for line in lines if line.startswith(group))
        assert row.rstrip().endswith("x"), row           # the ratio column
    assert "Python 3." in lines[0]


def test_check_config_when_defaults_prints_them_with_secrets_masked():
    result = run("check-config")
    assert result.returncode == 0, result.stderr
    assert 'comp_id = "FIXGATE"' in result.stdout
    assert 'password = "********"' in result.stdout and "demo-admin-token" not in result.stdout


def test_check_config_when_file_bad_lists_problems_on_stderr_and_exits_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[risk]\nmax_levrage = 1\n[acceptor]\nport = "x"\n')
    result = run("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "risk.max_levrage: unknown key; did you mean 'max_leverage'?" in result.stderr
    assert "acceptor.port: expected a whole number, got string 'x'" in result.stderr


def test_every_subcommand_when_asked_for_help_says_what_it_does():
    for command, words in (("bench", "Cython against the plain-Python reference on identical inputs"),
                           ("check-config", "resolved value"), ("run", "SIGINT or SIGTERM stops it gracefully"),
                           ("venue", "price-time matching engine"), ("demo", "summary every second")):
        result = run(command, "--help")
        assert result.returncode == 0 and words in " ".join(result.stdout.split()), command


def test_check_config_when_given_with_c_reads_that_file_and_warns_about_demo_secrets(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[[venues]]\nname = "v"\nhost = "127.0.0.1"\nport = 7001\ncomp_id = "VENUE"\n\n'
                    '[[instruments]]\nsymbol = "XYZ"\nvenue = "v"\ntick_size = "0.01"\nlot_size = 1\n')
    result = run("check-config", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {path}: valid (sha256 ") and result.stdout.splitlines()[0].endswith("), 2 warnings")
    assert "warning: admin.token: the bundled demo token" in result.stderr
    assert "warning: clients: none configured; no client can log on" in result.stderr


def test_recover_when_the_state_dir_has_no_journal_says_so_and_creates_none(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    result = run("recover", "--state-dir", str(state))
    assert result.returncode == 1
    assert f"there is no journal in {state}" in result.stderr
    assert list(state.iterdir()) == []
