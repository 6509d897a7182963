"""TLS: certificates and host names are always verified, with the trust store httpx would use.

The simulator serves HTTPS with a certificate from a throwaway CA
(trustme). cancelctl builds its TLS context itself, in a background thread
while httpx is imported (``transport.warm_tls``), so these tests prove that
context still verifies the chain and the host name, and honours
``SSL_CERT_FILE`` the way httpx does.
"""

from __future__ import annotations

import ssl

import pytest
import trustme

from cancelctl.sim.server import Simulator

from conftest import GEMINI_KEY, GEMINI_SECRET, parse_json


@pytest.fixture
def ca():
    return trustme.CA()


def https_sim(ca, host: str) -> Simulator:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(context)
    return Simulator(lifetime=60, tls=context)


def configure(env, sim):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    return sim.gemini.add_order("primary", "UI")


def test_a_certificate_from_a_trusted_ca_works(env, ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with https_sim(ca, "127.0.0.1") as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        order = configure(env, sim)
        proc = env.run("cancel", "all", "--json", extra_env={"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": ""})
        assert proc.returncode == 0, proc.stderr
        assert parse_json(proc)["results"][0]["cancelled"] == [str(order)]
        assert not sim.gemini.orders[order].live


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(env, ca):
    """Not in certifi's bundle nor the machine's: the handshake fails, nothing is sent (75)."""
    with https_sim(ca, "127.0.0.1") as sim:
        order = configure(env, sim)
        proc = env.run("cancel", "all", "--json", "--timeout", "2", extra_env={"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""})
        assert proc.returncode == 75, proc.stderr
        assert "certificate verify failed" in proc.stderr
        assert sim.requests("/v1/") == [] and sim.gemini.orders[order].live


def test_a_certificate_for_another_host_is_refused(env, ca, tmp_path):
    """A valid chain for the wrong name: the host name is checked too."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with https_sim(ca, "venue.example") as sim:
        order = configure(env, sim)
        proc = env.run(
            "cancel", "all", "--json", "--timeout", "2", extra_env={"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": ""}
        )
        assert proc.returncode == 75, proc.stderr
        assert "certificate verify failed" in proc.stderr and "mismatch" in proc.stderr, proc.stderr
        assert sim.requests("/v1/") == [] and sim.gemini.orders[order].live


def test_an_exit_while_the_tls_context_is_still_loading_is_clean(sim, env):
    """A master key without ``account`` is refused (78) before any client is made, while the
    TLS thread is still loading certificates. Finalizing the interpreter under OpenSSL
    then crashed the process (SIGSEGV) in about half the runs; the exit now waits for it."""
    sim.gemini.add_key("master-KEY0001", "master-secret-1")
    env.write_config({"m": {"venue": "gemini", "base_url": sim.url}})
    env.secret("m", "api_key", "master-KEY0001")
    env.secret("m", "api_secret", "master-secret-1")
    codes = [env.run("cancel", "all", "-q").returncode for _ in range(15)]
    assert codes == [78] * 15


def test_the_ca_bundle_is_loaded_by_path_so_openssl_reads_it_without_the_gil(ca, tmp_path, monkeypatch):
    """``cadata=`` would parse the bundle while holding the GIL and stall the profile's imports while it
    loads (docs/performance.md, "TLS context"); ``cafile=`` reads it in C with the GIL released. The
    path given is the checked file itself (through /dev/fd where there is one)."""
    import os

    from cancelctl import transport

    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    calls = []
    real = ssl.create_default_context

    def spy(*args, **kwargs):
        calls.append(kwargs)
        if kwargs.get("cafile"):
            assert os.path.samefile(kwargs["cafile"], bundle)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", spy)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    context = transport.tls_context()
    assert [sorted(c) for c in calls] == [["cafile"]]
    assert context.cert_store_stats()["x509_ca"] == 1
