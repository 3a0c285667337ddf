"""Run the PostgreSQL half of the suite through a throwaway PgBouncer in transaction pooling.

    python scripts/pgbouncer_suite.py [PYTEST ARGS…]

Starts Debian's ``pgbouncer`` on a free loopback port in front of the local
PostgreSQL (``REFUNDWATCH_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``) with a temporary config:
``pool_mode = transaction``, a pool of 20 server connections per database, no
prepared-statement tracking (PgBouncer 1.18 has none). Then runs pytest on the
PostgreSQL tests (``-m postgres``) with:

- ``REFUNDWATCH_TEST_PGBOUNCER_URL``: the service under test reaches every test
  database through PgBouncer (tests/conftest.py), while databases are created
  from templates and dropped on PostgreSQL directly;
- ``REFUNDWATCH_DB_PGBOUNCER=true``: the setting an operator sets.

With no arguments it runs everything but the browser tests (they add nothing
about the database); arguments go to pytest instead. PgBouncer is stopped and its
directory removed on the way out, whatever happens; the exit code is pytest's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
DEFAULT_ARGS = ["tests", "--ignore=tests/console"]
START_TIMEOUT = 15.0

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {userlist}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
; test databases come and go by the hundred: forget their pools soon
autodb_idle_timeout = 15
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
admin_users = {user}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"pgbouncer exited at start:\n{log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"pgbouncer did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f} s")


def main(argv: list[str]) -> int:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        sys.exit("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    direct = os.environ.get(
        "REFUNDWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    server = urlsplit(direct)
    user = server.username or "postgres"
    listen = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="refundwatch-pgbouncer-"))
    log = workdir / "pgbouncer.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        userlist = workdir / "userlist.txt"
        userlist.write_text(f'"{user}" ""\n')
        config = workdir / "pgbouncer.ini"
        config.write_text(
            CONFIG.format(
                host=server.hostname or "127.0.0.1",
                port=server.port or 5432,
                listen=listen,
                userlist=userlist,
                user=user,
            )
        )
        command = [binary, str(config)]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            command[1:1] = ["-u", _unprivileged_user()]
            workdir.chmod(0o755)
            for path in (userlist, config):
                path.chmod(0o644)
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_listening(listen, process, log)
        pooled = f"postgresql://{user}@127.0.0.1:{listen}{server.path or '/postgres'}"
        print(f"pgbouncer {listen} (transaction pooling) → {server.hostname}:{server.port}")
        env = {
            **os.environ,
            "REFUNDWATCH_TEST_POSTGRES_URL": direct,
            "REFUNDWATCH_TEST_PGBOUNCER_URL": pooled,
            "REFUNDWATCH_DB_PGBOUNCER": "true",
        }
        pytest = [str(PYTHON), "-m", "pytest", "-m", "postgres", "-p", "no:cacheprovider"]
        return subprocess.call([*pytest, *(argv or DEFAULT_ARGS)], cwd=ROOT, env=env)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # PgBouncer's "shut down now"
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if process is not None and process.returncode not in (0, -signal.SIGINT, None):
            print(log.read_text()[-2000:], file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    sys.exit("running as root and no unprivileged user (postgres, nobody) for pgbouncer")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
