"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tests that need a real one (Debian's postgresql: initdb with
scram-sha-256 password auth, pg_ctl; run as the `postgres` user when the tests run as root, since initdb refuses
root)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)",
                    pytrace=False)
    return Path(found[-1]).parent


class PG:
    """A cluster with superuser `mcpg` (password `password`), started on a free port; `close()` removes it."""

    def __init__(self, password: str, *, prefix: str = "mcpg-pg-", default_db: str = "postgres") -> None:
        self.bin = pg_bin()
        self.password = password
        self.default_db = default_db
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        pwfile = self.dir / "pw"
        pwfile.write_text(password + "\n")
        if self.as_user:
            shutil.chown(self.dir, "postgres")
            shutil.chown(pwfile, "postgres")
        self.run("initdb", "-D", str(self.dir / "data"), "-U", "mcpg", f"--pwfile={pwfile}", "-A", "scram-sha-256",
                 "--no-sync")
        self.start()

    def run(self, tool: str, *args: str) -> str:
        r = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120,
                           cwd=self.dir, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (tool, args, r.stdout, r.stderr)
        return r.stdout

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def psql(self, sql: str, db: str | None = None) -> str:
        r = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "mcpg", "-d",
             db or self.default_db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": self.password},
            stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (sql, r.stderr)
        return r.stdout.strip()

    def rows(self, table: str, db: str | None = None) -> dict[int, dict[str, Any]]:
        """A table's rows as JSON objects keyed by their `seq` column."""
        out = self.psql(f"SELECT coalesce(json_agg(t ORDER BY seq), '[]') FROM {table} t", db=db)
        return {r["seq"]: r for r in json.loads(out)}

    def close(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
