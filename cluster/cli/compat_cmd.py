"""``tradewind compat check``: what a folder of Airflow DAG files uses that Tradewind lacks.

Reads the files' syntax trees only (:mod:`cluster.dagfiles.compat`): nothing of the
files runs, so it is safe on a folder written for Airflow before anything is switched.
"""

from __future__ import annotations

from pathlib import Path

import click

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.dagfiles.compat import check_paths, python_files

COLUMNS = ["file", "line", "kind", "airflow", "supported", "tradewind"]


@click.group("compat")
def compat_group() -> None:
    """Check Airflow DAG files against what Tradewind supports."""


@compat_group.command("check")
@click.argument(
    "folder", required=False, type=click.Path(exists=True, file_okay=True, path_type=Path)
)
@output_option
@pass_app
def check(app: App, folder: Path | None, output: str) -> None:
    """Every Airflow module, name and feature each Python file in FOLDER (default: the
    DAGs folder) uses, and whether Tradewind supports it; exits 1 when something is not.

    Helper modules and plugins beside the DAGs are checked too: they run in the same
    processes, and their airflow imports must resolve as well."""
    folder = (folder or app.settings.core.dags_folder).resolve()
    paths = [folder] if folder.is_file() else python_files(folder)
    findings = check_paths(paths, root=folder.parent if folder.is_file() else folder)
    emit([f.as_row() for f in findings], output, columns=COLUMNS)
    unsupported = [f for f in findings if not f.supported]
    if output == "table":
        files = len({f.file for f in unsupported})
        click.echo(
            f"{len(paths)} files checked: {len(unsupported)} unsupported uses in {files} files"
        )
    if unsupported:
        raise SystemExit(1)
