"""``DAG`` and ``@dag``: a named graph of tasks with a schedule, built in a DAG file.

A DAG checks itself when its ``with`` block ends (and again in :meth:`DAG.validate`,
called by the serializer): cycles and invalid param defaults are definition errors
naming the DAG file and line.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from cluster.errors import NotFoundError, ParamValidationError
from cluster.sdk import timetables
from cluster.sdk.dagcontext import DagContext
from cluster.sdk.dates import normalize_datetime, normalize_timezone, timezone_name
from cluster.sdk.definitions import Site, definition_error, user_site, validate_key
from cluster.sdk.params import NOTSET, ParamsDict
from cluster.sdk.setup_teardown import check_setup_downstream
from cluster.sdk.taskgroup import TaskGroup

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator

DEFAULT_MAX_ACTIVE = 16


def _pick_schedule(schedule: Any, schedule_interval: Any, timetable: Any, site: Site) -> Any:
    given = [v for v in (schedule, schedule_interval, timetable) if v is not NOTSET]
    if len(given) > 1:
        raise definition_error(
            "pass only one of 'schedule', 'schedule_interval' and 'timetable'", site
        )
    if schedule_interval is not NOTSET:
        warnings.warn(
            "Param `schedule_interval` is deprecated; use `schedule` instead",
            DeprecationWarning,
            stacklevel=4,
        )
    return given[0] if given else None


class DAG:
    """A DAG: tasks, edges, schedule and run limits, with Airflow's arguments.

    Unlike Airflow 2, ``catchup`` defaults to ``False`` and ``schedule`` to ``None``
    (Airflow 3's defaults).

    :raises DagDefinitionError: on a bad schedule or conflicting schedule arguments.
    """

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        schedule: Any = NOTSET,
        schedule_interval: Any = NOTSET,
        timetable: Any = NOTSET,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        full_filepath: str | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: type | None = None,
        user_defined_macros: dict[str, Any] | None = None,
        user_defined_filters: dict[str, Callable[..., Any]] | None = None,
        default_args: dict[str, Any] | None = None,
        concurrency: int | None = None,
        max_active_tasks: int = DEFAULT_MAX_ACTIVE,
        max_active_runs: int = DEFAULT_MAX_ACTIVE,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: timedelta | None = None,
        sla_miss_callback: Any = None,
        default_view: str = "grid",
        orientation: str = "LR",
        catchup: bool = False,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        doc_md: str | None = None,
        params: dict[str, Any] | None = None,
        access_control: dict[str, Any] | None = None,
        is_paused_upon_creation: bool | None = None,
        jinja_environment_kwargs: dict[str, Any] | None = None,
        render_template_as_native_obj: bool = False,
        tags: Iterable[str] | None = None,
        owner_links: dict[str, str] | None = None,
        auto_register: bool = True,
        fail_stop: bool = False,
        dag_display_name: str | None = None,
    ) -> None:
        self._site: Site = user_site()
        validate_key(dag_id, "dag_id", self._site)
        self.dag_id = dag_id
        self.fileloc = full_filepath or self._site.filename
        self.description = description
        self.default_args = dict(default_args or {})
        self.start_date = self._date(
            start_date if start_date else self.default_args.get("start_date")
        )
        self.end_date = self._date(end_date if end_date else self.default_args.get("end_date"))
        if "start_date" in self.default_args and self.default_args["start_date"] is not None:
            self.default_args["start_date"] = self.start_date
        self.timezone: tzinfo = self.start_date.tzinfo if self.start_date else UTC  # type: ignore[assignment]
        self.schedule = _pick_schedule(schedule, schedule_interval, timetable, self._site)
        self.schedule_interval = self.schedule
        self.timetable = self._build_timetable(self.schedule)
        self.template_searchpath = (
            [template_searchpath]
            if isinstance(template_searchpath, str)
            else list(template_searchpath or [])
        )
        self.template_undefined = template_undefined
        self.user_defined_macros = user_defined_macros
        self.user_defined_filters = user_defined_filters
        self.jinja_environment_kwargs = jinja_environment_kwargs
        self.render_template_as_native_obj = render_template_as_native_obj
        self.max_active_tasks = concurrency or max_active_tasks
        self.max_active_runs = max_active_runs
        self.max_consecutive_failed_dag_runs = max_consecutive_failed_dag_runs
        self.dagrun_timeout = dagrun_timeout
        self.sla_miss_callback = sla_miss_callback
        self.default_view = default_view
        self.orientation = orientation
        self.catchup = catchup
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.doc_md = doc_md
        self.params = ParamsDict(params)
        self.access_control = access_control
        self.is_paused_upon_creation = is_paused_upon_creation
        self.tags = sorted(set(tags or ()))
        self.owner_links = owner_links or {}
        self.auto_register = auto_register
        self.fail_stop = fail_stop
        self.dag_display_name = dag_display_name or dag_id
        self.task_dict: dict[str, BaseOperator] = {}
        self.edge_info: dict[tuple[str, str], str] = {}
        self.task_group = TaskGroup(None, dag=self)
        self.task_group_dict: dict[str, TaskGroup] = {}

    def _date(self, value: datetime | None) -> datetime | None:
        return normalize_datetime(value) if value is not None else None

    def _build_timetable(self, schedule: Any) -> timetables.Timetable:
        try:
            timetable = timetables.timetable_from_schedule(schedule, timezone=self.timezone_name)
            timetable.validate()  # a user's timetable checks its own arguments
            return timetable
        except Exception as exc:
            raise definition_error(f"DAG {self.dag_id!r}: bad schedule: {exc}", self._site) from exc

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    # --- the tasks ------------------------------------------------------------------

    @property
    def timezone_name(self) -> str:
        return timezone_name(normalize_timezone(self.timezone))

    @property
    def folder(self) -> str:
        return os.path.dirname(self.fileloc)

    @property
    def owner(self) -> str:
        return ", ".join(sorted({t.owner for t in self.tasks})) or self.default_args.get(
            "owner", "airflow"
        )

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def task_count(self) -> int:
        return len(self.task_dict)

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.tasks if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.tasks if not t.downstream_task_ids]

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> BaseOperator:
        """:raises NotFoundError: when the DAG has no such task."""
        if task_id not in self.task_dict:
            raise NotFoundError(f"Task {task_id} not found in DAG {self.dag_id!r}")
        return self.task_dict[task_id]

    def add_task(self, task: BaseOperator) -> None:
        """Register ``task``; called when a task's ``dag`` is set.

        :raises DagDefinitionError: when the id is taken by another task.
        """
        existing = self.task_dict.get(task.task_id)
        if existing is task:
            return
        if existing is not None:
            raise definition_error(
                f"Task id '{task.task_id}' has already been added to the DAG {self.dag_id!r}",
                task._site,
            )
        if task.task_id in self.task_group_dict:
            raise definition_error(
                f"Task id '{task.task_id}' is already used as a task group id", task._site
            )
        self.task_dict[task.task_id] = task

    def add_tasks(self, tasks: Iterable[BaseOperator]) -> None:
        for task in tasks:
            task.dag = self

    # --- validation ------------------------------------------------------------------

    def topological_sort(self) -> list[BaseOperator]:
        """Tasks ordered so each comes after all its upstream tasks.

        :raises DagDefinitionError: naming a cycle, e.g. ``a >> b >> a``.
        """
        indegree = {tid: len(t.upstream_task_ids) for tid, t in self.task_dict.items()}
        ready = [tid for tid, n in indegree.items() if n == 0]
        order: list[BaseOperator] = []
        while ready:
            task = self.task_dict[ready.pop(0)]
            order.append(task)
            for down in sorted(task.downstream_task_ids):
                indegree[down] -= 1
                if indegree[down] == 0:
                    ready.append(down)
        if len(order) != len(self.task_dict):
            cycle = self._find_cycle({tid for tid, n in indegree.items() if n > 0})
            raise definition_error(
                f"Cycle detected in DAG {self.dag_id!r}: {' >> '.join(cycle)}", self._site
            )
        return order

    def _find_cycle(self, candidates: set[str]) -> list[str]:
        """Walk downstream inside ``candidates`` until a task repeats: that is a cycle."""
        path: list[str] = [min(candidates)]
        while True:
            nexts = sorted(self.task_dict[path[-1]].downstream_task_ids & candidates)
            step = nexts[0]
            if step in path:
                return [*path[path.index(step) :], step]
            path.append(step)

    def check_cycle(self) -> None:
        self.topological_sort()

    def validate(self) -> None:
        """Check the whole DAG: no cycle, valid param defaults, tasks really in this DAG.

        :raises DagDefinitionError: with the DAG file and line.
        """
        self.check_cycle()
        check_setup_downstream(self.tasks)
        for task in self.tasks:
            try:
                self.params.merged(task.params).validate_defaults()
            except ParamValidationError as exc:
                raise definition_error(
                    f"DAG {self.dag_id!r}, task {task.task_id!r}: invalid default {exc}",
                    self._site,
                ) from exc
        try:
            self.params.validate_defaults()
        except ParamValidationError as exc:
            raise definition_error(
                f"DAG {self.dag_id!r}: invalid default {exc}", self._site
            ) from exc

    # --- context manager ------------------------------------------------------------

    def __enter__(self) -> DAG:
        DagContext.push_dag(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        DagContext.pop_dag()
        if exc_type is None:
            self.check_cycle()
            if self.auto_register:
                DagContext.register(self)


class DagParam:
    """A ``@dag`` function argument: stands for ``params[name]`` at run time."""

    def __init__(self, dag: DAG, name: str, default: Any = NOTSET) -> None:
        if default is not NOTSET:
            dag.params[name] = default
        self.dag = dag
        self.name = name

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"

    def resolve(self, context: dict[str, Any]) -> Any:
        return context["params"][self.name]


def dag(dag_id: Any = "", **dag_kwargs: Any) -> Any:
    """Decorate a function that builds a DAG; calling it returns the :class:`DAG`.

    The DAG id defaults to the function name, its docstring becomes ``doc_md``, and
    its parameters become DAG params (call arguments override their defaults).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., DAG]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> DAG:
            bound = signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            options = dict(dag_kwargs)
            options.setdefault("full_filepath", fn.__code__.co_filename)
            if fn.__doc__ and not options.get("doc_md"):
                options["doc_md"] = inspect.cleandoc(fn.__doc__)
            with DAG(dag_id or fn.__name__, **options) as dag_obj:
                dag_obj._site = Site(fn.__code__.co_filename, fn.__code__.co_firstlineno)
                call_kwargs = {
                    name: DagParam(dag_obj, name, bound.arguments.get(name, NOTSET))
                    for name in signature.parameters
                }
                fn(**call_kwargs)
            return dag_obj

        return build

    if callable(dag_id):
        return decorate(dag_id)
    return decorate
