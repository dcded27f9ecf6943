"""Time ``tradewind migrate-from-airflow`` on a large Airflow 2.10.5 metastore.

Loads the fixture made by a real Airflow (tests/fixtures/airflow/migration) into a
private MariaDB or PostgreSQL, doubles its runs ``--doublings`` times (each copy of a run
gets a new run id and an earlier logical date, with all its task instances, tries,
task maps and XComs), then runs the real command three times into a fresh Tradewind
metastore on the same server: ``--dry-run``, the migration, and the second migration
that must add nothing. Prints rows and wall seconds; never asserts on time.

    python bench/migrate_airflow.py --db mariadb --doublings 10     # 4,096 runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Engine, MetaData, create_engine, insert, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cluster.devcluster.services.postgres import PostgreSQL  # noqa: E402
from tests.databases import private_server  # noqa: E402
from tests.fixtures.airflow.migration.make_metastore import FERNET_KEY, HERE  # noqa: E402

COPIED = ("task_instance", "task_instance_history", "task_map", "xcom")


def load(server: Any, kind: str) -> str:
    url: str = server.create_database("airflow")
    dump = (HERE / f"airflow-{kind}.sql").read_text()
    if isinstance(server, PostgreSQL):
        grant = f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{server.user}";'
        grant += f'\nGRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{server.user}";'
        server.execute(f"{dump}\n{grant}", database="airflow")
    else:
        server.execute(f"USE `airflow`;\n{dump}")
    return url


def double(engine: Engine, step: int) -> None:
    """Copy every run (and everything under it) once, ``10 * 2**step`` days earlier."""
    meta = MetaData()
    meta.reflect(engine, only=["dag_run", *COPIED])
    shift = timedelta(days=10 * 2**step)
    suffix = f"_c{step}"
    with engine.begin() as connection:
        runs = [dict(r._mapping) for r in connection.execute(select(meta.tables["dag_run"]))]
        for run in runs:
            run.pop("id")
            run["run_id"] += suffix
            for column in ("execution_date", "data_interval_start", "data_interval_end"):
                if run[column] is not None:
                    run[column] -= shift
        connection.execute(insert(meta.tables["dag_run"]), runs)
        ids = dict(
            connection.execute(
                select(meta.tables["dag_run"].c.run_id, meta.tables["dag_run"].c.id)
            ).all()
        )
        for name in COPIED:
            table = meta.tables[name]
            rows = [dict(r._mapping) for r in connection.execute(select(table))]
            rows = [r for r in rows if not r["run_id"].endswith(suffix)]
            for row in rows:
                row["run_id"] += suffix
                if "id" in table.c and table.c.id.autoincrement:
                    row.pop("id", None)
                if name == "xcom":
                    row["dag_run_id"] = ids[row["run_id"]]
            if rows:
                connection.execute(insert(table), rows)


def tradewind(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "tradewind"), *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.monotonic() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["mariadb", "postgres"], default="mariadb")
    parser.add_argument("--doublings", type=int, default=10)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    server = private_server(args.db, base / "db")
    server.start()
    try:
        url = load(server, args.db)
        engine = create_engine(url.replace("postgresql+psycopg2", "postgresql+psycopg"))
        for step in range(args.doublings):
            double(engine, step)
        engine.dispose()
        home = base / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
        env.update(TRADEWIND_HOME=str(home),
                   TRADEWIND__METASTORE__URL=server.create_database("tradewind_bench"),
                   TRADEWIND__CORE__FERNET_KEY=Fernet.generate_key().decode())  # fmt: skip
        tradewind(env, "db", "migrate")
        command = ["migrate-from-airflow", url, "--fernet-key", FERNET_KEY, "--include-xcom"]
        for label, extra in (("dry run", ["--dry-run"]), ("migration", []), ("again", [])):
            seconds, out = tradewind(env, *command, *extra, "-o", "plain")
            print(f"{label}: {seconds:.1f} s wall")
            print(out)
    finally:
        server.destroy() if isinstance(server, PostgreSQL) else server.stop()


if __name__ == "__main__":
    main()
