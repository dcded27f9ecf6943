"""``BaseOperator``: one task of a DAG, with Airflow's arguments and ``default_args``.

Subclasses implement :meth:`BaseOperator.execute`, whose return value becomes the
``return_value`` XCom. Each subclass ``__init__`` is wrapped (see
:func:`_apply_defaults`) so that the DAG's and task group's ``default_args`` fill the
arguments the caller left out, and so XComArgs in template fields become edges once
the whole object is built.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from cluster.sdk.dagcontext import DagContext
from cluster.sdk.deferral import DeferralMixin
from cluster.sdk.definitions import Site, definition_error, user_site, validate_key
from cluster.sdk.params import ParamsDict
from cluster.sdk.setup_teardown import ScopeStack, SetupTeardownMixin
from cluster.sdk.templating import render_value, template_env
from cluster.sdk.trigger_rule import TriggerRule
from cluster.sdk.xcom_arg import XComArg, iter_producers

if TYPE_CHECKING:
    from cluster.sdk.dag import DAG
    from cluster.sdk.taskgroup import TaskGroup

WEIGHT_RULES = ("downstream", "upstream", "absolute")
#: ``task.queue`` of a task that names none, as in Airflow's default configuration; such
#: a task runs on the cluster's ``celery.default_queue`` (see :attr:`BaseOperator.names_queue`)
DEFAULT_QUEUE = "default"
_accepted_cache: dict[type, frozenset[str]] = {}


def _accepted_args(cls: type) -> frozenset[str]:
    """Names every ``__init__`` along the MRO accepts: where default_args may go."""
    if cls not in _accepted_cache:
        names: set[str] = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            params = inspect.signature(inspect.unwrap(init)).parameters.values()
            names.update(p.name for p in params if p.kind is not p.VAR_KEYWORD)
        _accepted_cache[cls] = frozenset(names - {"self"})
    return _accepted_cache[cls]


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an ``__init__``: on the outermost call, fill kwargs from ``default_args``."""

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_building"):
            init(self, *args, **kwargs)
            return
        if args:
            raise definition_error(f"Use keyword arguments when initializing {type(self).__name__}")
        self.__dict__["_building"] = True
        try:
            dag = kwargs.get("dag")
            dag = dag if dag is not None else DagContext.current_dag()
            group = kwargs.get("task_group")
            group = group if group is not None else DagContext.current_group(dag)
            defaults: dict[str, Any] = dict(dag.default_args) if dag is not None else {}
            if group is not None:
                defaults.update(group.inherited_default_args())
            defaults.update(kwargs.get("default_args") or {})
            accepted = _accepted_args(type(self))
            for key, value in defaults.items():
                if key in accepted and key not in kwargs:
                    kwargs[key] = value
            init(self, **kwargs)
        finally:
            self.__dict__["_building"] = False
        if not DagContext.is_detached():
            self._link_xcom_args()

    return wrapper


def _as_timedelta(value: timedelta | float | int | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


class BaseOperator(DeferralMixin, SetupTeardownMixin):
    """A task: identity, scheduling knobs, templated fields and :meth:`execute`.

    :raises DagDefinitionError: on an unknown trigger rule or weight rule, a duplicate
        task id, or unknown keyword arguments; the message names the file and line.
    """

    template_fields: Sequence[str] = ()
    template_ext: Sequence[str] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color: str = "#fff"
    ui_fgcolor: str = "#000"
    #: ``EmptyOperator`` sets this: the runner may mark such tasks done without running them
    inherits_from_empty_operator: bool = False
    custom_operator_name: str | None = None
    #: ``True`` on :class:`~cluster.sdk.mappedoperator.MappedOperator` (``partial().expand()``)
    is_mapped: bool = False
    #: ``Op.partial(task_id=..., **fixed)``, then ``.expand(**mapped)``; installed by
    #: :mod:`cluster.sdk.mappedoperator`, which builds on this class
    partial: ClassVar[Callable[..., Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            setattr(cls, "__init__", _apply_defaults(cls.__dict__["__init__"]))  # noqa: B010

    @_apply_defaults
    def __init__(
        self,
        *,
        task_id: str,
        owner: str = "airflow",
        email: str | Sequence[str] | None = None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries: int | None = 0,
        retry_delay: timedelta | float = timedelta(seconds=300),
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        depends_on_past: bool = False,
        ignore_first_depends_on_past: bool = True,
        wait_for_past_depends_before_skipping: bool = False,
        wait_for_downstream: bool = False,
        dag: DAG | None = None,
        params: dict[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        queue: str | None = None,
        pool: str | None = None,
        pool_slots: int = 1,
        sla: timedelta | None = None,
        execution_timeout: timedelta | float | None = None,
        on_execute_callback: Any = None,
        on_failure_callback: Any = None,
        on_success_callback: Any = None,
        on_retry_callback: Any = None,
        on_skipped_callback: Any = None,
        pre_execute: Callable[..., Any] | None = None,
        post_execute: Callable[..., Any] | None = None,
        trigger_rule: str = TriggerRule.ALL_SUCCESS,
        resources: dict[str, Any] | None = None,
        run_as_user: str | None = None,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        executor: str | None = None,
        executor_config: dict[str, Any] | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        inlets: Any = None,
        outlets: Any = None,
        task_group: TaskGroup | None = None,
        doc: str | None = None,
        doc_md: str | None = None,
        doc_json: str | None = None,
        doc_yaml: str | None = None,
        doc_rst: str | None = None,
        task_display_name: str | None = None,
        logger_name: str | None = None,
        map_index_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._site: Site = user_site()
        self._check_arguments(task_id, trigger_rule, weight_rule, kwargs)
        self.owner = owner
        self.email = email
        self.email_on_retry = email_on_retry
        self.email_on_failure = email_on_failure
        self.retries = int(retries or 0)
        self.retry_delay = _as_timedelta(retry_delay) or timedelta(0)
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = _as_timedelta(max_retry_delay)
        self.start_date = start_date
        self.end_date = end_date
        self.depends_on_past = depends_on_past
        self.ignore_first_depends_on_past = ignore_first_depends_on_past
        self.wait_for_past_depends_before_skipping = wait_for_past_depends_before_skipping
        self.wait_for_downstream = wait_for_downstream
        self.params = ParamsDict(params)
        self.default_args = dict(default_args or {})
        self.priority_weight = priority_weight
        self.weight_rule = weight_rule
        self.queue = queue if queue is not None else DEFAULT_QUEUE
        self._queue_named = queue is not None
        self.pool = pool or "default_pool"
        self.pool_slots = pool_slots
        self.sla = sla
        self.execution_timeout = _as_timedelta(execution_timeout)
        self.on_execute_callback = on_execute_callback
        self.on_failure_callback = on_failure_callback
        self.on_success_callback = on_success_callback
        self.on_retry_callback = on_retry_callback
        self.on_skipped_callback = on_skipped_callback
        self._pre_execute_hook = pre_execute
        self._post_execute_hook = post_execute
        self.trigger_rule = TriggerRule(str(trigger_rule))
        self.resources = resources
        self.run_as_user = run_as_user
        self.max_active_tis_per_dag = max_active_tis_per_dag
        self.max_active_tis_per_dagrun = max_active_tis_per_dagrun
        self.executor = executor
        self.executor_config = executor_config or {}
        self.do_xcom_push = do_xcom_push
        self.multiple_outputs = multiple_outputs
        self.inlets = inlets
        self.outlets = outlets
        self.doc = doc
        self.doc_md = doc_md
        self.doc_json = doc_json
        self.doc_yaml = doc_yaml
        self.doc_rst = doc_rst
        self.task_display_name = task_display_name
        self.logger_name = logger_name
        self._is_setup = False
        self._is_teardown = False
        self._on_failure_fail_dagrun = False
        self.map_index_template = map_index_template
        self._place(task_id, dag, task_group)

    def _check_arguments(
        self, task_id: str, trigger_rule: str, weight_rule: str, unknown: dict[str, Any]
    ) -> None:
        """:raises DagDefinitionError: for unknown arguments, trigger rules or weight rules."""
        validate_key(task_id, "task_id", self._site)
        if unknown:
            raise definition_error(
                f"Invalid arguments were passed to {type(self).__name__} "
                f"(task_id: {task_id}). Invalid arguments were: **kwargs: {unknown}",
                self._site,
            )
        if not TriggerRule.is_valid(str(trigger_rule)):
            raise definition_error(
                f"The trigger_rule must be one of {sorted(TriggerRule.all_triggers())}, "
                f"'{task_id}' has {trigger_rule!r}",
                self._site,
            )
        if weight_rule not in WEIGHT_RULES:
            raise definition_error(
                f"The weight_rule must be one of {list(WEIGHT_RULES)}, "
                f"'{task_id}' has {weight_rule!r}",
                self._site,
            )

    def _place(self, task_id: str, dag: DAG | None, task_group: TaskGroup | None) -> None:
        """Join the given (or the open) DAG and task group; the group prefixes the id."""
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._dag: DAG | None = None
        dag = dag if dag is not None else DagContext.current_dag()
        group = task_group if task_group is not None else DagContext.current_group(dag)
        self.task_group: TaskGroup | None = group
        self.label = task_id
        self.task_id = group.child_id(task_id) if group is not None else task_id
        if DagContext.is_detached():
            self._dag = dag
            return
        if group is not None:
            group.add(self)
        if dag is not None:
            self.dag = dag
        ScopeStack.record(self)

    # --- identity and graph ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        if self._dag is dag:
            return
        if self._dag is not None:
            raise definition_error(
                f"The DAG assigned to {self} can not be changed "
                f"(from {self._dag.dag_id!r} to {dag.dag_id!r})",
                self._site,
            )
        dag.add_task(self)
        self._dag = dag

    @property
    def task_display_name(self) -> str:
        """The name the UI shows for this task (``task_display_name``, else the id)."""
        return self._task_display_property_value or self.task_id

    @task_display_name.setter
    def task_display_name(self, value: str | None) -> None:
        self._task_display_property_value = value

    @property
    def names_queue(self) -> bool:
        """Whether the task chose its queue (argument, ``default_args`` or assignment);
        if not, it runs on the cluster's ``celery.default_queue``."""
        return self._queue_named or self.queue != DEFAULT_QUEUE

    @property
    def has_dag(self) -> bool:
        return self._dag is not None

    @property
    def dag_id(self) -> str:
        return self._dag.dag_id if self._dag is not None else f"adhoc_{self.owner}"

    @property
    def task_type(self) -> str:
        return type(self).__name__

    @property
    def operator_name(self) -> str:
        return self.custom_operator_name or type(self).__name__

    @property
    def roots(self) -> list[BaseOperator]:
        return [self]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self]

    @property
    def output(self) -> XComArg:
        """The ``return_value`` XCom of this task, to pass to another task."""
        return XComArg(self)

    def _require_dag(self) -> DAG:
        if self._dag is None:
            raise definition_error(f"Operator {self} has not been assigned to a DAG yet")
        return self._dag

    @property
    def upstream_list(self) -> list[BaseOperator]:
        dag = self._require_dag()
        return [dag.get_task(t) for t in sorted(self.upstream_task_ids)]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        dag = self._require_dag()
        return [dag.get_task(t) for t in sorted(self.downstream_task_ids)]

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        return set(self.upstream_task_ids if upstream else self.downstream_task_ids)

    def get_direct_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        return self.upstream_list if upstream else self.downstream_list

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        """Every task reachable upstream (or downstream) of this one, transitively."""
        dag = self._require_dag()
        found: set[str] = set()
        todo = list(self.get_direct_relative_ids(upstream))
        while todo:
            task_id = todo.pop()
            if task_id not in found:
                found.add(task_id)
                todo.extend(dag.get_task(task_id).get_direct_relative_ids(upstream))
        return found

    def get_flat_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        dag = self._require_dag()
        return [dag.get_task(t) for t in sorted(self.get_flat_relative_ids(upstream=upstream))]

    def _link_xcom_args(self) -> None:
        """Make producers of XComArgs found in template fields upstream of this task."""
        for field in self.template_fields:
            for producer in iter_producers(getattr(self, field, None)):
                self.set_upstream(producer)

    def serialized_extra(self) -> dict[str, Any]:
        """What this operator adds to its serialized form's ``extra`` (for the scheduler
        or actions that never import DAG files)."""
        return {}

    @property
    def has_callbacks(self) -> bool:
        callbacks = (
            self.on_execute_callback,
            self.on_failure_callback,
            self.on_success_callback,
            self.on_retry_callback,
            self.on_skipped_callback,
        )
        return any(cb is not None for cb in callbacks)

    # --- setup and teardown (see cluster.sdk.setup_teardown) --------------------------

    def setup_teardown_operators(self) -> list[BaseOperator]:
        return [self]

    @property
    def is_setup(self) -> bool:
        """Whether this task sets up a resource that its teardowns remove."""
        return self._is_setup

    @is_setup.setter
    def is_setup(self, value: bool) -> None:
        if value and self._is_teardown:
            raise definition_error(
                f"Cannot mark task '{self.task_id}' as setup; task is already a teardown.",
                self._site,
            )
        self._is_setup = bool(value)

    @property
    def is_teardown(self) -> bool:
        """Whether this task removes what its setups created (it runs after failed work)."""
        return self._is_teardown

    @is_teardown.setter
    def is_teardown(self, value: bool) -> None:
        if value and self._is_setup:
            raise definition_error(
                f"Cannot mark task '{self.task_id}' as teardown; task is already a setup.",
                self._site,
            )
        self._is_teardown = bool(value)

    @property
    def on_failure_fail_dagrun(self) -> bool:
        """Whether this teardown's failure fails the run (by default it does not)."""
        return self._on_failure_fail_dagrun

    @on_failure_fail_dagrun.setter
    def on_failure_fail_dagrun(self, value: bool) -> None:
        if value and not self._is_teardown:
            raise definition_error(
                f"Cannot set task on_failure_fail_dagrun for '{self.task_id}' "
                "because it is not a teardown task.",
                self._site,
            )
        self._on_failure_fail_dagrun = bool(value)

    # --- execution --------------------------------------------------------------------

    def pre_execute(self, context: dict[str, Any]) -> None:
        """Run just before :meth:`execute`; calls the ``pre_execute`` argument if given."""
        if self._pre_execute_hook is not None:
            self._pre_execute_hook(context)

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the task's work; the return value is pushed as the ``return_value`` XCom."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
        if self._post_execute_hook is not None:
            self._post_execute_hook(context, result)

    def get_template_env(self) -> Any:
        """The Jinja environment this task's fields are rendered with (the DAG's)."""
        return template_env(self.dag)

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: Any = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render ``content`` like a template field (Airflow's signature): a string, or
        the strings inside lists, tuples, sets and dict values, recursively."""
        env = jinja_env if jinja_env is not None else self.get_template_env()
        return render_value(content, context, env, tuple(self.template_ext), seen_oids)

    def on_kill(self) -> None:
        """Called by the runner when the task is killed (timeout, external stop).

        Operators that start processes or remote jobs stop them here.
        """
