"""The one way the tests start the mock provider (test/mock/mock_provider.py): a child
process on a free port, stopped when the block ends. conftest.py's `mock_server` fixture
uses it (and so every integration test, batch tests included), and so can a shell script:

    python3 test/integration/mock_process.py -- COMMAND ...

runs COMMAND with CELAEST_MOCK_PORT set to a private mock's port and returns its status.
A mock that is already running (CELAEST_MOCK_PORT in the environment) is used as it is.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MOCK = os.path.join(ROOT, "test", "mock", "mock_provider.py")


@contextlib.contextmanager
def private_mock(startup_timeout=10.0):
    """Starts a mock on a free port and yields the port; stops it afterwards. The mock
    writes the port file atomically once it listens, so a non-empty file means ready."""
    workdir = tempfile.mkdtemp(prefix="celaest-mock-")
    port_file = os.path.join(workdir, "port")
    proc = subprocess.Popen([sys.executable, MOCK, "--port", "0", "--port-file", port_file])
    try:
        deadline = time.monotonic() + startup_timeout
        while not (os.path.exists(port_file) and os.path.getsize(port_file) > 0):
            if proc.poll() is not None:
                raise RuntimeError("the mock provider exited with status %s before listening" % proc.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError("the mock provider did not listen within %.0f s" % startup_timeout)
            time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.read().strip())
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def mock_port():
    """CELAEST_MOCK_PORT when someone else runs a mock, else a private mock's port."""
    port = os.environ.get("CELAEST_MOCK_PORT")
    if port:
        yield int(port)
        return
    with private_mock() as private:
        yield private


def main(argv):
    if not argv or argv[0] != "--" or len(argv) < 2:
        sys.stderr.write("usage: mock_process.py -- COMMAND [ARG...]\n")
        return 2
    with mock_port() as port:
        print("mock provider on 127.0.0.1:%d" % port, flush=True)
        return subprocess.call(argv[1:], env=dict(os.environ, CELAEST_MOCK_PORT=str(port)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
