"""The command line over TLS: ``server --tls-cert/--tls-key`` and ``client --tls
[--cafile] [--insecure]`` (certificates from trustme, written for the test)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ..certs import Certs
from .test_cli import LOOPBACK, RUNTIMES, WAIT, Running, one_line_error, parse, recv_until, run
from .test_cli import started as started_cli

CERTS = Certs()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """ca.pem, cert.pem, key.pem."""
    return CERTS.write(tmp_path)


def _port(server: Running) -> int:
    return int(server.expect("server", "LISTENING").detail.rpartition(":")[2])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_serves_tls_to_a_python_ssl_client(
    runtime: str, files: tuple[Path, Path, Path]
) -> None:
    """``server --tls-cert --tls-key --echo``: a verifying Python ssl client gets its
    line back; a plaintext client is dropped with a warning."""
    _, cert, key = files
    args = ("server", LOOPBACK, "0", "--echo", "--runtime", runtime)
    with started_cli(*args, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        port = _port(server)
        context = CERTS.client_context()
        with (
            socket.create_connection((LOOPBACK, port), timeout=WAIT) as raw,
            context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
        ):
            tls.sendall(b"over tls\n")
            assert recv_until(tls, b"over tls\n") == b"over tls\n"
            assert server.expect("server", "RECEIVED").data == "over tls\n"
        server.expect("server", "DISCONNECT")
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as plain:
            plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert plain.recv(100) == b""  # dropped, no CONNECTED
        server.proc.terminate()
        code, errors = server.finish()
    assert code == 0
    assert "TLS handshake with 127.0.0.1:" in errors
    assert [e.what for e in server.events].count("CONNECTED") == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_tls_cafile_to_a_tls_server(runtime: str, files: tuple[Path, Path, Path]) -> None:
    """``client --tls --cafile`` to ``server --tls-cert``: stdin goes, the echo comes
    back, the client half-closes at the end of stdin and exits 0 once the server
    has closed; nothing on stderr."""
    ca, cert, key = files
    args = ("server", LOOPBACK, "0", "--echo", "--runtime", runtime, "--framing", "line")
    with started_cli(*args, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        port = _port(server)
        result = run(
            "client", LOOPBACK, str(port), "--runtime", runtime, "--framing", "line",
            "--tls", "--cafile", str(ca), "--linger", "5", stdin="one\ntwo\n",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    events = parse(result.stdout.splitlines())
    assert [e.data for e in events if e.what == "RECEIVED"] == ["one", "two"]
    assert events[0].what == "CONNECTED" and events[-1].what == "DISCONNECT"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_insecure_says_so(runtime: str, files: tuple[Path, Path, Path]) -> None:
    """``--insecure`` connects to a server it cannot verify, and says on stderr that
    it did not verify; without it (no --cafile) the same connect is 1006."""
    _, cert, key = files
    args = ("server", LOOPBACK, "0", "--runtime", runtime)
    with started_cli(*args, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        port = _port(server)
        base = ("client", LOOPBACK, str(port), "--runtime", runtime, "--tls", "--linger", "1")
        insecure = run(*base, "--insecure", "-q", stdin="hi\n")
        verified = run(*base, stdin="hi\n")
    assert insecure.returncode == 0, insecure.stderr
    assert "--insecure" in insecure.stderr and "not verified" in insecure.stderr
    line = one_line_error(verified, 1006)
    assert "CERTIFICATE_VERIFY_FAILED" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("client", LOOPBACK, "80", "--cafile", "ca.pem"), "--cafile goes with --tls"),
        (("client", LOOPBACK, "80", "--insecure"), "--insecure goes with --tls"),
        (("client", LOOPBACK, "80", "--tls", "--insecure", "--cafile", "x"), "--cafile"),
        (("client", LOOPBACK, "80", "--tls", "--cafile", "/no/such.pem"), "argument --cafile"),
        (("server", "0", "--tls-key", "key.pem"), "--tls-key goes with --tls-cert"),
        (("server", "0", "--tls-cert", "/no/such.pem"), "argument --tls-cert: cannot load"),
    ],
)
def test_tls_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    """A TLS option without its partner, or a file that does not load: exit 2, one
    line naming it."""
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert "error:" in last and message in last, last


def test_a_key_that_is_not_the_certificates_is_a_usage_error(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, cert, _ = files
    (tmp_path / "other").mkdir()
    other = Certs().write(tmp_path / "other")
    result = run("server", "0", "--tls-cert", str(cert), "--tls-key", str(other[2]))
    assert result.returncode == 2
    assert "argument --tls-cert/--tls-key: cannot load" in result.stderr.splitlines()[-1]
