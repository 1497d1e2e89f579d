"""The configuration: the bundled defaults load; every bad value is refused with its key named."""

from decimal import Decimal

import pytest

from fixgate import config
from fixgate.config import ConfigError


def problems_of(text):
    with pytest.raises(ConfigError) as caught:
        config.loads(text, source="test.toml")
    return caught.value.problems


MINIMAL = """
[[venues]]
name = "v"
host = "127.0.0.1"
port = 7001
comp_id = "VENUE"

[[instruments]]
symbol = "XYZ"
venue = "v"
tick_size = "0.01"
lot_size = 1
"""


def test_load_when_no_file_given_reads_the_bundled_defaults():
    loaded = config.load()
    assert loaded.gateway.comp_id == "FIXGATE"
    assert loaded.acceptor.port == 9820 and loaded.simulator.port == 9821 and loaded.admin.port == 9822
    assert loaded.clients[0].comp_id == "CLIENT1"
    assert loaded.clients[0].username == "demo" and loaded.clients[0].password == "demo"
    assert loaded.venues[0].comp_id == "SIMVENUE"
    assert {instrument.symbol for instrument in loaded.instruments} >= {"BTC-USD", "AAPL"}
    assert len(loaded.sha256) == 64


def test_load_when_decimals_given_as_strings_or_numbers_keeps_them_exact():
    loaded = config.loads(MINIMAL.replace('tick_size = "0.01"', "tick_size = 0.1"))
    assert loaded.instruments[0].tick_size == Decimal("0.1")
    assert loaded.instruments[0].lot_size == Decimal(1)


def test_load_when_key_unknown_names_it_and_suggests_the_right_one():
    problems = problems_of(MINIMAL + "\n[risk]\nmax_levrage = 3\n")
    assert problems == ["risk.max_levrage: unknown key; did you mean 'max_leverage'?"]


def test_load_when_value_has_wrong_type_names_key_and_value():
    problems = problems_of(MINIMAL + '\n[risk]\nmax_leverage = "five"\n')
    assert problems == ["risk.max_leverage: expected a number, got string 'five'"]


@pytest.mark.parametrize("extra, expected", [
    ("\n[risk]\nmax_gross_exposure = -1\n", "risk.max_gross_exposure: expected at least 0, got -1"),
    ("\n[acceptor]\nport = 70000\n", "acceptor.port: expected a TCP port from 1 to 65535, got 70000"),
    ("\n[gateway]\nring_capacity = 1000\n", "gateway.ring_capacity: expected a power of two of at least 2"),
    ("\n[logging]\nlevel = \"LOUD\"\n", "logging.level: expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
    ("\n[risk]\nwarning_drawdown = 0.2\n", "risk.warning_drawdown: 0.2 must be below risk.breaker_drawdown 0.1"),
    ("\n[risk]\ntrading_day_start_utc = \"25:00\"\n", "risk.trading_day_start_utc: expected HH:MM"),
    ("\n[admin]\nport = 9820\n", "admin.port: '127.0.0.1:9820' is already used by acceptor.port"),
    ("\n[simulator]\nport = 9822\n", "simulator.port: '127.0.0.1:9822' is already used by admin.port"),
])
def test_load_when_value_impossible_names_key_and_problem(extra, expected):
    assert any(problem.startswith(expected) for problem in problems_of(MINIMAL + extra)), problems_of(
        MINIMAL + extra)


def test_load_when_instrument_has_zero_tick_or_unknown_venue_refuses():
    text = MINIMAL.replace('tick_size = "0.01"', "tick_size = 0").replace('venue = "v"', 'venue = "nowhere"')
    problems = problems_of(text)
    assert problems == ["instruments[0] (XYZ).tick_size: expected a positive number, got 0",
                        "instruments[0] (XYZ).venue: no venue named 'nowhere' (venues: v)"]      # in one pass
    assert problems_of(MINIMAL.replace('venue = "v"', 'venue = "nowhere"')) == [
        "instruments[0] (XYZ).venue: no venue named 'nowhere' (venues: v)"]


def test_load_when_comp_ids_repeat_refuses_the_second():
    text = MINIMAL + """
[[clients]]
name = "a"
comp_id = "CLIENT"
username = "u"
password = "p"

[[clients]]
name = "b"
comp_id = "CLIENT"
username = "u"
password = "p"
"""
    assert problems_of(text) == ["clients[1] (b).comp_id: 'CLIENT' is already used by clients[0] (a).comp_id"]


def test_load_when_required_key_missing_says_what_it_is():
    problems = problems_of(MINIMAL.replace('lot_size = 1\n', ""))
    assert problems == ["instruments[0] (XYZ).lot_size: missing; quantity increment"]


def test_load_when_venue_port_is_the_gateways_own_listener_refuses():
    problems = problems_of(MINIMAL.replace("port = 7001", "port = 9820"))
    assert problems == ["venues[0] (v).port: 127.0.0.1:9820 is the gateway's own acceptor.port"]


def test_load_when_text_not_toml_or_file_missing_reports_it(tmp_path):
    assert problems_of("[gateway\nname = 1")[0].startswith("not valid TOML")
    with pytest.raises(ConfigError, match="cannot read the file"):
        config.load(tmp_path / "missing.toml")


def test_load_when_several_problems_reports_all_of_them():
    problems = problems_of(MINIMAL + "\n[risk]\nmax_leverage = -2\nfoo = 1\n")
    assert len(problems) == 2


def test_as_dict_and_to_toml_when_printed_mask_passwords_and_tokens():
    loaded = config.load()
    plain = loaded.as_dict()
    assert plain["clients"][0]["password"] == config.SECRET_MASK
    assert plain["admin"]["token"] == config.SECRET_MASK
    text = config.to_toml(loaded)
    assert "demo-admin-token" not in text and 'password = "demo"' not in text
    assert config.loads(config.to_toml(loaded, mask_secrets=False)) == loaded   # round trip


def test_load_when_values_and_cross_checks_both_fail_reports_both_in_one_pass():
    problems = problems_of(MINIMAL.replace('venue = "v"', 'venue = "w"') + '\n[acceptor]\nport = "x"\n')
    assert problems == ["acceptor.port: expected a whole number, got string 'x'",
                        "instruments[0] (XYZ).venue: no venue named 'w' (venues: v)"]


def test_load_when_a_client_names_an_unknown_symbol_names_the_client():
    text = MINIMAL + '\n[[clients]]\nname = "alpha"\ncomp_id = "ALPHA"\nusername = "a"\npassword = "p"\n' \
                     'instruments = ["XYZ", "MSFT"]\n'
    assert problems_of(text) == ["clients[0] (alpha).instruments[1]: no instrument 'MSFT'"]


def test_warnings_when_demo_secrets_or_empty_sections_name_them():
    assert config.warnings(config.loads(MINIMAL + '\n[admin]\ntoken = "s3cret-token"\n')) == [
        "clients: none configured; no client can log on"]
    bundled = config.warnings(config.load())
    assert any(line.startswith("admin.token: the bundled demo token") for line in bundled)
    assert "clients[0] (client1).password: the bundled demo password" in bundled


def test_load_when_state_dir_is_relative_resolves_it_against_the_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "gateway.toml").write_text(MINIMAL + '\n[gateway]\nstate_dir = "state"\n'
                                         '\n[logging]\nfile = "logs/gateway.log"\n')
    monkeypatch.chdir(tmp_path)
    loaded = config.load("etc/gateway.toml")
    assert loaded.gateway.state_dir == str(folder / "state")
    assert loaded.logging.file == str(folder / "logs" / "gateway.log")
    absolute = config.loads(MINIMAL + f'\n[gateway]\nstate_dir = "{tmp_path}/abs"\n')
    assert config.relative_to(absolute, folder).gateway.state_dir == f"{tmp_path}/abs"


def test_load_when_tokens_or_tracing_are_wrong_names_each_problem():
    text = MINIMAL + '''
[admin]
token = "operator-token-1"

[[admin.tokens]]
name = "viewer"
token = "short"
role = "read-only"

[[admin.tokens]]
name = "alice"
token = "operator-token-1"
role = "root"

[tracing]
endpoint = "collector:4318"
'''
    assert problems_of(text) == [
        "admin.tokens[1].role: expected one of 'operator', 'read-only', got 'root'",
        "admin.tokens[0] (viewer).token: a token needs at least 12 characters",
        "admin.tokens[1] (alice).token: the same token as admin.token (each token names one actor)",
        "tracing.endpoint: expected an http:// or https:// URL, got 'collector:4318'"]


def test_load_when_a_value_has_the_wrong_type_still_runs_every_cross_check():
    text = MINIMAL.replace('venue = "v"', 'venue = "w"') + '\n[risk]\nwarning_drawdown = "0.1"\n'
    assert problems_of(text) == ["risk.warning_drawdown: expected a number, got string '0.1'",
                                 "instruments[0] (XYZ).venue: no venue named 'w' (venues: v)"]


# -- SESSION SETTINGS -------------------------------------------------------------------------------

CLIENT = """
[[clients]]
name = "c"
comp_id = "C1"
"""


def test_load_when_session_settings_are_given_per_client_and_venue_takes_them():
    text = MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\n[venues.session]\ntimestamp_precision = 6\n'
                           'reset_on_logon = true\n') + CLIENT + 'username = "u"\npassword = "p"\n' + \
        "[clients.session]\nvalidate_user_defined_fields = false\nlogon_timeout_seconds = 30\n"
    loaded = config.loads(text)
    assert (loaded.venues[0].session.timestamp_precision, loaded.venues[0].session.reset_on_logon) == (6, True)
    assert loaded.clients[0].session.validate_user_defined_fields is False
    assert loaded.clients[0].session.logon_timeout_seconds == 30
    assert loaded.clients[0].session.timestamp_precision == 3           # milliseconds unless asked
    assert config.loads(config.to_toml(loaded, mask_secrets=False)) == loaded


def test_load_when_session_settings_are_wrong_names_each_key():
    text = MINIMAL + CLIENT + 'username = "u"\npassword = "p"\n' + \
        "[clients.session]\ntimestamp_precision = 4\nrest_on_logon = true\nlogout_timeout_seconds = 0\n"
    assert problems_of(text) == [
        "clients[0] (c).session.rest_on_logon: unknown key; did you mean 'reset_on_logon'?",
        "clients[0] (c).session.timestamp_precision: expected one of 0, 3, 6, 9, got 4",
        "clients[0] (c).session.logout_timeout_seconds: expected at least 1, got 0",
    ]


def test_load_when_a_client_has_no_way_to_be_known_or_half_its_credentials_refuses():
    assert problems_of(MINIMAL + CLIENT) == [
        "clients[0] (c).username: a client without Logon credentials must be known another way: set username "
        "and password, source_addresses, or certificate_name"]
    assert problems_of(MINIMAL + CLIENT + 'username = "u"\n') == [
        "clients[0] (c).password: missing; the client's username is set, and Logon credentials are both or neither"]
    assert problems_of(MINIMAL + CLIENT + 'source_addresses = ["10.1.2.3", "nope"]\n') == [
        "clients[0] (c).source_addresses[1]: expected an IP address, got 'nope'"]
    known = config.loads(MINIMAL + CLIENT + 'source_addresses = ["10.1.2.3"]\n')
    assert known.clients[0].username == "" and known.clients[0].source_addresses == ("10.1.2.3",)


def test_load_when_a_session_names_a_dictionary_checks_the_file_relative_to_the_config(tmp_path):
    from fixgate.fix.engine import data_dictionary_path

    (tmp_path / "dicts").mkdir()
    (tmp_path / "dicts" / "venue.xml").write_text(data_dictionary_path().read_text())
    (tmp_path / "dicts" / "fix42.xml").write_text('<fix major="4" minor="2"><header/><trailer/><messages/>'
                                                  '<fields/></fix>')
    (tmp_path / "dicts" / "broken.xml").write_text("<fix major='4'")
    written = MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\n[venues.session]\n'
                              'data_dictionary = "dicts/{name}"\n')
    path = tmp_path / "gateway.toml"
    path.write_text(written.format(name="venue.xml"))
    assert config.load(path).venues[0].session.data_dictionary == str(tmp_path / "dicts" / "venue.xml")
    for name, expected in (("missing.xml", "cannot read"), ("fix42.xml", "is not a FIX 4.4 dictionary"),
                           ("broken.xml", "is not XML")):
        path.write_text(written.format(name=name))
        with pytest.raises(ConfigError) as caught:
            config.load(path)
        (problem,) = caught.value.problems
        assert problem.startswith("venues[0] (v).session.data_dictionary: ") and expected in problem, problem


def test_load_when_tls_is_half_configured_names_what_is_missing(tmp_path):
    text = MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\n[venues.tls]\nenabled = true\n') + \
        "\n[acceptor.tls]\nenabled = true\nrequire_client_certificate = true\nmin_version = \"TLSv1.1\"\n" + \
        CLIENT + 'certificate_name = "C1"\n'
    assert problems_of(text) == [
        "acceptor.tls.min_version: expected one of 'TLSv1.2', 'TLSv1.3', got 'TLSv1.1'",
        "acceptor.tls.certificate: missing; a TLS acceptor needs its certificate",
        "acceptor.tls.ca: missing; client certificates are required, and are checked against it",
        "venues[0] (v).tls.ca: missing; without it the venue's certificate is not checked",
    ]
    (tmp_path / "ec.key").write_text("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n")
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
    path = tmp_path / "gateway.toml"
    path.write_text(MINIMAL + '\n[acceptor.tls]\nenabled = true\ncertificate = "cert.pem"\nkey = "ec.key"\n'
                    'ca = "missing.pem"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.problems == [
        f"acceptor.tls.key: {tmp_path / 'ec.key'} holds an EC key; QuickFIX C++ 1.15.1 takes RSA or DSA keys only",
        f"acceptor.tls.ca: no such file {tmp_path / 'missing.pem'}",
    ]


def test_load_when_a_venue_has_backup_hosts_checks_each_address():
    text = MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\nbackup_hosts = ["10.0.0.2:7001", "nope", '
                                                   '"127.0.0.1:7001", "h:70000"]\n')
    assert problems_of(text) == [
        "venues[0] (v).backup_hosts[1]: expected \"host:port\" with a port from 1 to 65535, got 'nope'",
        "venues[0] (v).backup_hosts[2]: 127.0.0.1:7001 is the venue's primary",
        "venues[0] (v).backup_hosts[3]: expected \"host:port\" with a port from 1 to 65535, got 'h:70000'",
    ]
    good = config.loads(MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\nbackup_hosts = ["10.0.0.2:7001"]\n'))
    assert good.venues[0].backup_hosts == ("10.0.0.2:7001",)


def test_load_when_a_session_schedule_is_wrong_names_each_key():
    text = MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\n[venues.session]\nstart_time = "25:00"\n'
                           'start_day = "Funday"\ntime_zone = "Mars/Olympus"\n')
    assert problems_of(text) == [
        "venues[0] (v).session.end_time: missing; start_time is set, and a session needs both",
        "venues[0] (v).session.start_time: expected HH:MM or HH:MM:SS, got '25:00'",
        "venues[0] (v).session.end_day: missing; start_day is set, and a weekly session needs both",
        "venues[0] (v).session.start_day: expected a day (Monday to Sunday), got 'Funday'",
        "venues[0] (v).session.time_zone: unknown time zone 'Mars/Olympus' (an IANA name such as Europe/London, "
        "or UTC)",
    ]
    good = config.loads(MINIMAL.replace('comp_id = "VENUE"\n', 'comp_id = "VENUE"\n[venues.session]\n'
                                        'start_time = "09:30"\nend_time = "16:00"\ntime_zone = "America/New_York"\n'))
    assert good.venues[0].session.time_zone == "America/New_York"


def test_load_when_an_instrument_names_a_backup_quote_venue_checks_it():
    text = MINIMAL + 'backup_quote_venue = "{name}"\n'
    assert problems_of(text.format(name="nope")) == ["instruments[0] (XYZ).backup_quote_venue: no venue named 'nope'"]
    assert problems_of(text.format(name="v")) == [
        "instruments[0] (XYZ).backup_quote_venue: 'v' is the instrument's own venue"]
    feed = '\n[[venues]]\nname = "md"\nhost = "127.0.0.1"\nport = 7002\ncomp_id = "MD"\nmarket_data = {on}\n'
    two = MINIMAL.replace("[[instruments]]", feed + "\n[[instruments]]") + 'backup_quote_venue = "md"\n'
    assert problems_of(two.format(on="false")) == [
        "instruments[0] (XYZ).backup_quote_venue: venue 'md' has market_data = false"]
    assert config.loads(two.format(on="true")).instruments[0].backup_quote_venue == "md"


# -- THE FIRM ---------------------------------------------------------------------------------------

def test_firm_when_absent_leaves_the_gateway_alone():
    assert config.loads(MINIMAL).firm.name == ""


def test_firm_when_names_or_servers_are_wrong_names_each_problem():
    text = MINIMAL + '''
[gateway]
name = "gw.east"

[firm]
name = "acme corp"
servers = ["http://10.0.0.5:4222", "nats://10.0.0.6:4222"]
replicas = 7
lease_seconds = 0
'''
    assert problems_of(text) == [
        "firm.lease_seconds: expected a positive number, got 0.0",
        "firm.replicas: expected at most 5, got 7",
        "firm.name: 'acme corp' may hold only letters, digits, '_' and '-' (it is a NATS subject token)",
        "gateway.name: 'gw.east' may hold only letters, digits, '_' and '-' in a firm (it is a NATS subject token)",
        "firm.servers[0]: expected nats://host:port, got 'http://10.0.0.5:4222'"]


def test_firm_when_valid_reads_every_key():
    loaded = config.loads(MINIMAL + '''
[firm]
name = "acme"
servers = ["nats://10.0.0.5:4222", "tls://10.0.0.6:4222"]
lease_seconds = 2.5
reduce_only_when_unreachable = true
replicas = 3
''')
    assert (loaded.firm.name, loaded.firm.servers, loaded.firm.lease_seconds, loaded.firm.replicas,
            loaded.firm.reduce_only_when_unreachable) == ("acme", ("nats://10.0.0.5:4222", "tls://10.0.0.6:4222"),
                                                          2.5, 3, True)


def test_dropcopy_when_clients_without_a_firm_or_twice_names_each_problem():
    assert problems_of(MINIMAL + '[[dropcopy.clients]]\ncomp_id = "COMPLIANCE"\n') == [
        "dropcopy.clients: a drop copy reads the firm's stream; give [firm] a name and its servers"]
    assert problems_of(MINIMAL + '[firm]\nname = "acme"\n[[dropcopy.clients]]\ncomp_id = "C"\n'
                       '[[dropcopy.clients]]\ncomp_id = "C"\n') == [
        "dropcopy.clients[1].comp_id: 'C' is already used by dropcopy.clients[0].comp_id"]
