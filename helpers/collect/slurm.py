"""The run grid as cluster jobs: each run of :func:`helpers.collect.grid.run_grid` as one
``submitit`` job (a Slurm job array, or one job per run), with the same output as a local grid
(docs/own-training.md#5-slurm).

::

    from helpers.collect import grid
    from helpers.collect.slurm import SlurmConfig

    slurm = SlurmConfig(partition="gpu", time_min=120, gpus_per_node=1, array_parallelism=4)
    grid.run_grid(config, executor=slurm)           # or executor=<any submitit executor>

What happens (extra ``slurm``: ``pip install -e '.[slurm]'``):

1. The submitting process plans the grid, writes ``grid.json`` (with the executor's
   description) and submits every run at once: one job array (``SlurmConfig.job_array``, at
   most ``array_parallelism`` runs at a time) or one job per run.
2. Each job, on its node: warms the node up for ``GridConfig.warmup_s`` (every job lands on a
   machine of its own, so each warms up; ``cooldown_s`` is not used) and runs
   :func:`helpers.collect.grid.execute_run` (the run in a child process with its own sampler,
   the metadata repaired if the child died), returning the run's ``emissions.csv`` row.
3. The submitting process waits for the jobs in plan order and appends each row to
   ``emissions.csv`` (only it writes that file, so parallel jobs cannot lose rows), and adds
   ``job`` (``executor``, ``job_id``, ``state``) to the run's ``metadata.json``.

A job that ends without a result (Slurm killed it: ``OUT_OF_MEMORY``, ``CANCELLED``,
``NODE_FAIL``) or with an error is recorded like a run that died: its folder gets header-only
CSVs where it has none, and the status ``failed: job <id> <STATE> ...``, or the child's own
failed status followed by ``; job <id> <STATE> ...``, in ``metadata.json`` and in the ``status``
column of ``emissions.csv`` (the grid's status table, ``grid.runs_table``). Cleaning (notebook
03) then drops it like any failed run. At the time limit submitit raises an error in the job
when Slurm's warning signal arrives; the job stops the run's child with SIGTERM before it ends
(``helpers.collect.grid._call``), so no run outlives its job. A requeued job (preemption) finds
the folder of its first attempt and fails with ``FileExistsError``.

The raw folder, this package and the Python environment must be on a file system that the
nodes share (submitit pickles the job and runs it with the same interpreter path). submitit's
own files (job scripts, pickles, stdout/stderr per job) go to ``SlurmConfig.log_dir``, by
default ``slurm_logs`` next to the raw folder: ``clean_raw_dir`` accepts nothing else inside it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.collect import grid
from helpers.core.datasets import relative_to_project
from helpers.core.io import write_json

if TYPE_CHECKING:
    from helpers.collect.training import RunSpec

#: Seconds to wait for a finished job's result file before recording the job as failed
#: (shared file systems can show it late; submitit waits as long).
RESULT_GRACE_S = 15.0
#: Default submitit folder, next to the raw folder.
LOG_DIR_NAME = "slurm_logs"


@dataclass(frozen=True)
class SlurmConfig:
    """Slurm resources of each run's job (one run per job).

    Attributes:
        partition: Slurm partition (``--partition``); None: the cluster's default.
        time_min: wall-time limit of one job (warm-up and run), minutes.
        gpus_per_node: GPUs per job (``--gpus-per-node``; 0 for CPU runs).
        cpus_per_task: CPU cores per job (None: the cluster's default).
        mem_gb: memory per job, GB (None: the cluster's default).
        array_parallelism: runs of the job array running at once (``--array=0-N%k``).
        job_array: submit one job array (True) or one job per run.
        exclusive: whole nodes (``--exclusive``), so that other jobs' load does not enter the
            node-wide readings (RAPL package energy, system CPU); off shares nodes.
        account, qos, constraint: ``--account``, ``--qos``, ``--constraint`` where given.
        setup: shell lines run before each job (``module load ...``, activating the env).
        additional: further ``#SBATCH`` options, name -> value (``{"mail-type": "END"}``).
        log_dir: submitit's folder (None: ``<raw_root>/../slurm_logs``).
        cluster: submitit cluster: ``slurm``, ``local`` (submitit's local executor, for a
            test on one machine) or None (detected: Slurm where ``sbatch`` is found).
        job_name: Slurm job name.
    """

    partition: str | None = None
    time_min: int = 60
    gpus_per_node: int = 1
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array_parallelism: int = 1
    job_array: bool = True
    exclusive: bool = True
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    additional: dict[str, Any] = field(default_factory=dict)
    log_dir: Path | None = None
    cluster: str | None = "slurm"
    job_name: str = "helpers-grid"

    def executor(self, raw_root: Path) -> Any:
        """The ``submitit.AutoExecutor`` for these settings (its folder: :attr:`log_dir`)."""
        submitit = _submitit()
        folder = Path(self.log_dir) if self.log_dir else Path(raw_root).parent / LOG_DIR_NAME
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        slurm = {"partition": self.partition, "array_parallelism": self.array_parallelism,
                 "exclusive": self.exclusive or None, "account": self.account,
                 "qos": self.qos, "constraint": self.constraint,
                 "setup": list(self.setup) or None,
                 "additional_parameters": dict(self.additional) or None}
        executor.update_parameters(
            name=self.job_name, timeout_min=int(self.time_min),
            gpus_per_node=int(self.gpus_per_node), cpus_per_task=self.cpus_per_task,
            mem_gb=self.mem_gb, nodes=1, tasks_per_node=1,
            **{f"slurm_{k}": v for k, v in slurm.items() if v is not None})
        return executor


def _submitit() -> Any:
    try:
        import submitit
    except ImportError as err:
        raise ImportError("running the grid through submitit needs the optional extra 'slurm' "
                          f"({err}); install it with: pip install -e '.[slurm]'") from err
    return submitit


def run_job(config: grid.GridConfig, spec: RunSpec) -> grid.RunOutcome:
    """One grid run inside its job, on the node: warm-up, then the run in a child process
    (:func:`helpers.collect.grid.execute_run`); returns its outcome and ``emissions.csv`` row,
    which the submitting process appends."""
    if config.warmup_s > 0:
        grid._warm_up(config, spec)
    return grid.execute_run(config, spec, append=False)


class GridJobs:
    """Submits a planned grid through a submitit executor and records the jobs' outcomes.

    ``executor``: a submitit executor (``submitit.AutoExecutor``, ``SlurmExecutor``,
    ``LocalExecutor``), or a :class:`SlurmConfig` to build one. ``job_array`` (given executors
    only; a :class:`SlurmConfig` has its own): one job array, or one job per run.
    """

    def __init__(self, config: grid.GridConfig, executor: Any, job_array: bool = True) -> None:
        if isinstance(executor, SlurmConfig):
            self.settings: SlurmConfig | None = executor
            job_array = executor.job_array
            executor = executor.executor(Path(config.raw_root))
        else:
            self.settings = None
        if not hasattr(executor, "submit") or not hasattr(executor, "map_array"):
            raise TypeError(f"executor must be a submitit executor or a SlurmConfig, "
                            f"got {type(executor).__name__}")
        self.config = config
        self.executor = executor
        self.job_array = job_array

    def describe(self) -> dict[str, Any]:
        """What ``grid.json`` records of the executor (no machine paths)."""
        out: dict[str, Any] = {
            "kind": type(self.executor).__name__,
            "cluster": getattr(self.executor, "cluster", None),
            "job_array": self.job_array,
            "parameters": {k: v for k, v in getattr(self.executor, "parameters", {}).items()
                           if isinstance(v, str | int | float | bool | type(None))},
        }
        if self.settings is not None:
            settings = asdict(self.settings)
            if self.settings.log_dir is not None:
                settings["log_dir"] = relative_to_project(self.settings.log_dir)
                if Path(settings["log_dir"]).is_absolute():
                    settings["log_dir"] = "(outside the project)"
            settings["setup"] = list(self.settings.setup)
            out["slurm"] = settings
        return out

    def submit(self, plan: list[RunSpec]) -> list[Any]:
        """Submit every planned run; returns the jobs in plan order."""
        if self.job_array:
            return self.executor.map_array(run_job, [self.config] * len(plan), plan)
        return [self.executor.submit(run_job, self.config, spec) for spec in plan]

    def run(self, plan: list[RunSpec], progress: bool = True) -> list[grid.RunOutcome]:
        """Submit the plan and wait for every job, appending ``emissions.csv`` rows in plan order.
        Ctrl-C cancels the jobs that have not finished."""
        from tqdm import tqdm

        jobs = self.submit(plan)
        outcomes = []
        bar = tqdm(total=len(plan), desc="jobs", unit="run", disable=not progress,
                   file=sys.stderr)
        try:
            for spec, job in zip(plan, jobs, strict=True):
                bar.set_postfix_str(f"{spec.architecture} #{spec.run} (job {job.job_id})")
                outcomes.append(self.collect(spec, job))
                bar.update()
        except KeyboardInterrupt:
            for job in jobs:
                if not job.done():
                    job.cancel(check=False)
            raise
        finally:
            bar.close()
        return outcomes

    def collect(self, spec: RunSpec, job: Any) -> grid.RunOutcome:
        """Wait for ``job``, record its run (repaired if the job ended without a result), append
        its ``emissions.csv`` row and return its outcome."""
        t0 = time.perf_counter()
        job.wait()
        outcome, state, failure = job_result(job)
        run_dir = grid.run_dir_of(self.config.raw_root, spec)
        if outcome is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            meta = grid.finalise_metadata(run_dir, spec, None, failure=failure)
            code = meta.get("return_code")
            row = grid.emissions_row(run_dir, self.config, code)
            outcome = grid.RunOutcome(run_dir, code, str(meta.get("status")),
                                      time.perf_counter() - t0, row)
        _record_job(run_dir, {"executor": type(self.executor).__name__,
                              "job_id": str(job.job_id), "state": state})
        grid.append_emissions(Path(self.config.raw_root) / grid.EMISSIONS_FILE,
                              outcome.emissions_row)
        return outcome


def job_result(job: Any, grace_s: float | None = None
               ) -> tuple[grid.RunOutcome | None, str, str | None]:
    """``(outcome, state, failure)`` of a finished job: its returned outcome, or None and why
    (``job <id> <STATE>: <error>`` or ``... without a result (killed? ...)``)."""
    grace_s = RESULT_GRACE_S if grace_s is None else grace_s
    deadline = time.monotonic() + grace_s
    while not job.paths.result_pickle.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    state = str(job.state)
    if not job.paths.result_pickle.exists():
        return None, state, (f"job {job.job_id} {state} without a result (killed: time limit, "
                             f"memory, cancelled or node failure?)")
    try:
        return job.result(), state, None
    except Exception as err:  # the job function raised: submitit hands back its traceback
        return None, state, f"job {job.job_id} {state}: {_last_error(str(err))}"


def _last_error(message: str) -> str:
    """The exception line of a traceback in submitit's ``FailedJobError`` message (the trace
    sits between two lines of dashes), else the message's first line."""
    parts = message.split("-" * 22)
    lines = [line.strip() for line in (parts[1] if len(parts) >= 3 else message).splitlines()
             if line.strip()]
    return lines[-1] if len(parts) >= 3 and lines else (lines[0] if lines else "no message")


def _record_job(run_dir: Path, job: dict[str, Any]) -> None:
    """Add ``job`` to the run's ``metadata.json`` (where the file is readable)."""
    import json

    from helpers.core.raw_format import METADATA_FILE

    path = run_dir / METADATA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    meta["job"] = job
    write_json(meta, path)
