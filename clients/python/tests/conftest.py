"""The real thing: the assetd binary built from this repository, a real
`assetd origin` serving the demo's sample avatars, and `assetd serve` on a
socket in a temporary directory.

ASSETD_BIN names a built binary; without it, `go build` makes one. Downloads
are capped at 8 MiB/s so that the 48 MiB avatar "big" is still loading
seconds after it started: the cancel tests need a load that is in flight.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

import assetd  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = REPO / "clients" / "fixtures"
BIG = "big"
BIG_BYTES = 48 << 20
LIMIT = 30.0  # seconds any one wait may take, however loaded the machine


def wait_until(what, cond, proc=None, limit=LIMIT):
    deadline = time.monotonic() + limit
    while True:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            pytest.fail("%s: the process exited (%s)" % (what, proc.returncode))
        if time.monotonic() > deadline:
            pytest.fail("%s: not after %ss" % (what, limit))
        time.sleep(0.02)


def _binary(tmp):
    bin_ = os.environ.get("ASSETD_BIN")
    if bin_:
        return str(pathlib.Path(bin_).resolve())
    go = shutil.which("go")
    if go is None:
        pytest.fail("neither ASSETD_BIN nor go: cannot have the assetd binary")
    out = tmp / "assetd"
    subprocess.run([go, "build", "-o", str(out), "./cmd/assetd"], cwd=str(REPO), check=True)
    return str(out)


class Daemon:
    """A running origin and daemon; socket is the daemon's."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.bin = _binary(tmp)
        self.socket = str(tmp / "assetd.sock")
        self.state = tmp / "state"
        self.procs = []
        src, site = tmp / "src", tmp / "site"
        self.run("samples", str(src))
        (src / BIG).mkdir()
        (src / BIG / "VERSION").write_text("1\n")
        block = bytes(range(256)) * 4096
        with open(str(src / BIG / "model.splat"), "wb") as f:
            for _ in range(BIG_BYTES // len(block)):
                f.write(block)
        self.run("publish", str(src), str(site))
        self.origin = self.start_origin(site)
        self.config = tmp / "assetd.toml"
        self.config.write_text(CONFIG % {"url": self.origin, "state": self.state, "socket": self.socket})
        self.daemon = self.spawn(["serve", "--config", str(self.config)], tmp / "daemon.log")
        client = assetd.Client(self.socket)

        def up():
            try:
                return client.health()["status"] == "ok"
            except assetd.DaemonNotRunning:
                return False
        wait_until("the daemon answers", up, self.daemon)
        client.close()

    def run(self, *args):
        subprocess.run([self.bin] + list(args), check=True, stdout=subprocess.DEVNULL, env=self.env())

    def env(self):
        env = dict(os.environ)
        env.pop("ASSETD_SOCKET", None)
        env.pop("ASSETD_CONFIG", None)
        return env

    def spawn(self, args, log, stdout=None):
        p = subprocess.Popen([self.bin] + args, stdout=stdout or subprocess.DEVNULL,
                             stderr=open(str(log), "wb"), env=self.env())
        self.procs.append(p)
        return p

    def start_origin(self, site):
        p = self.spawn(["origin", "--root", str(site), "--listen", "127.0.0.1:0"], self.tmp / "origin.log",
                       stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        if not line.startswith("listening on "):
            pytest.fail("assetd origin printed %r; log:\n%s" % (line, (self.tmp / "origin.log").read_text()))
        return line[len("listening on "):].strip()

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(LIMIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()


CONFIG = """
[origin]
url = "%(url)s"

[fetch]
bytes_per_second = "8MiB"
retry_wait_min = "10ms"
retry_wait_max = "200ms"

[store]
dir = "%(state)s"
max_bytes = "1GiB"
reserve_bytes = "0"
self_heal = false
scrub_interval = "0"

[api]
socket = "%(socket)s"
socket_mode = "0600"

[log]
level = "debug"
"""


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("assetd"))
    yield d
    d.stop()


@pytest.fixture
def client(daemon):
    with assetd.Client(daemon.socket) as c:
        yield c
