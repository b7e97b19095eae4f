from common.client_address import client_address, networks_problem, parse_networks

ALB = parse_networks("10.0.0.0/16, 192.168.1.7")


def test_without_trusted_proxies_the_peer_counts():
    assert client_address("10.0.1.5", ["203.0.113.9"], ()) == "10.0.1.5"


def test_a_forged_header_from_an_untrusted_peer_is_ignored():
    assert client_address("198.51.100.4", ["203.0.113.9"], ALB) == "198.51.100.4"


def test_the_nearest_untrusted_hop_is_the_client():
    # The client forged "1.2.3.4"; the ALB appended the address it saw.
    assert client_address("10.0.1.5", ["1.2.3.4, 203.0.113.9"], ALB) == "203.0.113.9"
    assert client_address("10.0.1.5", ["1.2.3.4", "203.0.113.9, 10.0.2.2"], ALB) == "203.0.113.9"


def test_a_chain_of_only_trusted_hops_gives_the_farthest():
    assert client_address("10.0.1.5", ["10.0.3.3"], ALB) == "10.0.3.3"
    assert client_address("10.0.1.5", [], ALB) == "10.0.1.5"


def test_networks_are_checked():
    assert networks_problem("10.0.0.0/8, ::1") is None
    assert "'nope'" in networks_problem("10.0.0.0/8, nope")
