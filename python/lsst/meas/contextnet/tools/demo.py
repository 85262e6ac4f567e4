# This file is part of meas_contextnet.
#
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

"""End-to-end demonstration: ``contextnet demo``.

The demo runs, on a small simulated data set, what a user of the package does with real data:

1. simulate LSST-like single visits into a new Butler repository (``OUTPUT/repo``, RUN
   collection ``sim``) with `lsst.meas.contextnet.sim.simulate.simulate_repo`;
2. classify every source with the real ``pipetask run`` command and
   ``pipelines/ContextNet.yaml`` (output CHAINED collection ``demo/contextnet``);
3. evaluate the classifications against the simulation truth with
   `lsst.meas.contextnet.evaluation.scoring` (ContextNet against the DM ``extendedness`` baseline, overall
   as in Table 2 of Kennamer et al. 2018 and per magnitude bin as in their Figure 5), writing
   ``OUTPUT/eval/`` (``metrics.csv``, ``metrics.json``, ``summary.txt`` and PNG figures).

``OUTPUT/demo.json`` records the settings, the model, the timings and the paths; it also marks
``OUTPUT`` as a demo directory, so a later demo may replace ``OUTPUT/repo`` (or, with
``--keep``, reuse its simulated data).
"""

from __future__ import annotations

__all__ = [
    "DEMO_COLLECTION",
    "DEMO_MARKER",
    "DEMO_PIPELINE",
    "DemoResult",
    "DemoSettings",
    "SIM_COLLECTION",
    "TASK_LABEL",
    "build_pipetask_command",
    "find_pipetask",
    "format_table2",
    "run_demo",
]

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lsst.meas.contextnet.modelcheck import resolve_model
from lsst.meas.contextnet.pipelinefiles import find_pipeline

if TYPE_CHECKING:
    from lsst.meas.contextnet.evaluation.scoring import EvaluationResult

DEMO_COLLECTION = "demo/contextnet"
"""Output CHAINED collection of the demo's ``pipetask run``."""

SIM_COLLECTION = "sim"
"""RUN collection of the demo's simulated ``calexp``, ``src`` and ``truth``."""

DEMO_PIPELINE = "ContextNet.yaml"
"""Pipeline file the demo runs, looked up by `find_pipeline`."""

DEMO_MARKER = "demo.json"
"""File in the output directory that records a demo run and marks the directory as a demo's."""

TASK_LABEL = "contextnetClassifier"
"""Label of the classifier task in ``pipelines/ContextNet.yaml``."""

_MARKER_FORMAT = "contextnet-demo"
_MAX_SIZE = 8192
_LOG_TAIL_LINES = 40


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """What the demo simulates and how it runs.

    Parameters
    ----------
    output : `pathlib.Path`
        Output directory; ``repo``, ``eval``, ``pipetask.log`` and ``demo.json`` go in it.
    size : `int`
        Detector side in pixels (the full LSST detector is 4096).
    visits : `int`
        Number of simulated visits.
    detectors : `int`
        Detectors per visit (1 to 9).
    seed : `int`
        Seed of the simulation and of the evaluation's trivial predictors.
    model : `pathlib.Path` or `None`
        Model file; `None` for the model shipped with the package.
    processes : `int`
        Worker processes of the simulation.
    jobs : `int`
        ``pipetask run -j``: 1 runs every quantum in one process; more start a process per
        quantum, each importing the task and its libraries again (about 10 s on a 2-core VM,
        against about 1 s of work for a 2048x2048 quantum).
    keep : `bool`
        Reuse the simulated data of an earlier demo in ``output`` made with the same
        simulation settings, instead of replacing it.
    """

    output: Path
    size: int = 2048
    visits: int = 2
    detectors: int = 1
    seed: int = 42
    model: Path | None = None
    processes: int = 2
    jobs: int = 1
    keep: bool = False

    def validate(self) -> None:
        """Check every setting before any work is done.

        Raises
        ------
        ValueError
            Raised, naming the option and its value, if a setting is out of range or the output
            path is an existing file.
        """
        checks = (
            ("--size", self.size, 64, _MAX_SIZE),
            ("--visits", self.visits, 1, 100),
            ("--detectors", self.detectors, 1, 9),
            ("--processes", self.processes, 1, 64),
            ("--jobs", self.jobs, 1, 64),
        )
        for option, value, low, high in checks:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{option} must be an integer from {low} to {high}; got {value!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer; got {self.seed!r}.")
        if self.output.exists() and not self.output.is_dir():
            raise ValueError(f"--output {str(self.output)!r} exists and is not a directory.")

    def simulation(self) -> dict[str, int]:
        """Return the settings that determine the simulated data.

        Returns
        -------
        settings : `dict` [`str`, `int`]
            ``size``, ``visits``, ``detectors`` and ``seed``.
        """
        return {"size": self.size, "visits": self.visits, "detectors": self.detectors, "seed": self.seed}

    @property
    def repo(self) -> Path:
        """The demo's Butler repository, ``output/repo`` (`pathlib.Path`)."""
        return self.output / "repo"

    @property
    def eval_dir(self) -> Path:
        """The evaluation outputs' directory, ``output/eval`` (`pathlib.Path`)."""
        return self.output / "eval"

    @property
    def log_path(self) -> Path:
        """The ``pipetask run`` log, ``output/pipetask.log`` (`pathlib.Path`)."""
        return self.output / "pipetask.log"

    @property
    def marker_path(self) -> Path:
        """The demo record, ``output/demo.json`` (`pathlib.Path`)."""
        return self.output / DEMO_MARKER


@dataclasses.dataclass
class DemoResult:
    """What `run_demo` did and produced."""

    settings: DemoSettings
    """The settings of the run."""

    model_path: Path
    """Model file the classifier used."""

    pipeline: Path
    """Pipeline file run by ``pipetask``."""

    pipetask_command: list[str]
    """The ``pipetask run`` command line."""

    timings: dict[str, float]
    """Wall-clock seconds of each stage (``simulate``, ``pipetask``, ``evaluate``) and ``total``;
    ``simulate`` is 0 when earlier simulated data were reused."""

    n_sources: list[int]
    """Detected sources per simulated exposure."""

    evaluation: EvaluationResult
    """The evaluation of ContextNet and the baselines against truth."""

    written: list[Path]
    """Files written by the evaluation."""


# ---------------------------------------------------------------------------------------------
# Locating the pipeline, pipetask and the model
# ---------------------------------------------------------------------------------------------


def find_pipetask(environ: Mapping[str, str] | None = None) -> Path:
    """Find the ``pipetask`` executable.

    The one beside the running Python interpreter (the same virtual environment) is preferred,
    then the first on ``PATH``.

    Parameters
    ----------
    environ : `~collections.abc.Mapping` [`str`, `str`], optional
        Environment whose ``PATH`` is searched (default: `os.environ`).

    Returns
    -------
    path : `pathlib.Path`
        The executable.

    Raises
    ------
    FileNotFoundError
        Raised if ``pipetask`` (package ``lsst-ctrl-mpexec``) is not installed.
    """
    environ = os.environ if environ is None else environ
    beside = Path(sys.executable).parent / "pipetask"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("pipetask", path=environ.get("PATH"))
    if found is None:
        raise FileNotFoundError(
            f"'pipetask' not found beside {sys.executable} or on PATH; install lsst-ctrl-mpexec "
            "(pip) or set up ctrl_mpexec (eups)."
        )
    return Path(found)


def build_pipetask_command(
    pipetask: Path,
    repo: Path,
    pipeline: Path,
    *,
    jobs: int = 1,
    model: Path | None = None,
    inputs: str = SIM_COLLECTION,
    output: str = DEMO_COLLECTION,
) -> list[str]:
    """Build the ``pipetask run`` command line of the demo.

    Parameters
    ----------
    pipetask : `pathlib.Path`
        The ``pipetask`` executable.
    repo : `pathlib.Path`
        Butler repository.
    pipeline : `pathlib.Path`
        Pipeline file.
    jobs : `int`, optional
        Quanta run in parallel (``-j``).
    model : `pathlib.Path`, optional
        Model file, passed as ``-c contextnetClassifier:modelPath=...``; `None` leaves the
        task's default (the shipped model).
    inputs : `str`, optional
        Input collection.
    output : `str`, optional
        Output CHAINED collection.

    Returns
    -------
    command : `list` [`str`]
        Arguments for `subprocess.run`.
    """
    command = [str(pipetask), "run", "-b", str(repo), "-i", inputs, "-o", output, "-p", str(pipeline)]
    command += ["-j", str(jobs), "--register-dataset-types"]
    if model is not None:
        command += ["-c", f"{TASK_LABEL}:modelPath={model}"]
    return command


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def format_table2(
    result: EvaluationResult,
    classifiers: Sequence[str] = ("ContextNet", "extendedness", "catalog_gbdt"),
) -> str:
    """Format the overall comparison of some classifiers in the style of the paper's Table 2.

    Parameters
    ----------
    result : `lsst.meas.contextnet.evaluation.scoring.EvaluationResult`
        Output of `lsst.meas.contextnet.evaluation.scoring.evaluate_catalog`.
    classifiers : `~collections.abc.Sequence` [`str`], optional
        Classifiers to show, in order; those the result lacks are skipped.

    Returns
    -------
    text : `str`
        A header and one line per classifier: objects scored, accuracy, and precision and recall
        with galaxies, then stars, as the positive class.
    """
    labels = {
        "ContextNet": "ContextNet",
        "extendedness": "extendedness (DM)",
        "catalog_gbdt": "catalog GBDT peer",
    }
    columns = (
        ("accuracy", "accuracy"),
        ("galaxy_precision", "gal.precision"),
        ("galaxy_recall", "gal.recall"),
        ("star_precision", "star.precision"),
        ("star_recall", "star.recall"),
    )
    header = f"{'classifier':<20}{'n':>8}" + "".join(f"{title:>16}" for _, title in columns)
    lines = [header, "-" * len(header)]
    summary = result.summary
    for name in classifiers:
        rows = summary[summary["classifier"] == name]
        if len(rows) == 0:
            continue
        row = rows[0]
        values = "".join(f"{_format_metric(row[key]):>16}" for key, _ in columns)
        lines.append(f"{labels.get(name, name):<20}{int(row['n']):>8d}{values}")
    return "\n".join(lines)


def _format_metric(value: Any) -> str:
    number = float(value)
    return "-" if number != number or number in (float("inf"), float("-inf")) else f"{number:.3f}"


def _describe_training_data(card: Mapping[str, Any]) -> str:
    """Summarize the model card's training data in one short line."""
    training = card.get("training")
    data = training.get("data") if isinstance(training, Mapping) else None
    if isinstance(data, Mapping):
        attrs = data.get("attrs") if isinstance(data.get("attrs"), Mapping) else {}
        parts = [f"{data['n_sets']} sets of m = {data.get('m', '?')}"] if "n_sets" in data else []
        parts += [f"{key} {attrs[key]}" for key in ("band", "psf_variation") if key in attrs]
        return ", ".join(parts) or "see the model card"
    if data is None:
        return "not recorded"
    text = str(data)
    return text if len(text) <= 80 else text[:77] + "..."


def _say(stream: TextIO, text: str = "") -> None:
    print(text, file=stream, flush=True)


def _read_marker(path: Path) -> dict[str, Any] | None:
    """Return a demo record, or `None` if the file is missing or not a demo's."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == _MARKER_FORMAT else None


def _write_marker(path: Path, record: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def _prepare_output(settings: DemoSettings) -> tuple[bool, dict[str, Any]]:
    """Make the output directory ready; return whether to simulate and the (new) demo record.

    Raises
    ------
    FileExistsError
        If the output directory holds a repository that no demo made, or (with ``keep``) one
        simulated with other settings or not completely.
    """
    output = settings.output
    previous = _read_marker(settings.marker_path)
    repo_exists = settings.repo.exists() and (not settings.repo.is_dir() or any(settings.repo.iterdir()))
    if repo_exists and previous is None:
        raise FileExistsError(
            f"{str(settings.repo)!r} exists but {str(settings.marker_path)!r} does not record a demo run; "
            "refusing to touch it. Choose another --output directory."
        )
    record = {
        "format": _MARKER_FORMAT,
        "version": 1,
        "status": "started",
        "simulation": settings.simulation(),
        "simulated": False,
    }
    if repo_exists and settings.keep:
        assert previous is not None
        if not previous.get("simulated") or previous.get("simulation") != settings.simulation():
            raise FileExistsError(
                f"--keep: the repository {str(settings.repo)!r} was simulated with "
                f"{previous.get('simulation')} (complete: {bool(previous.get('simulated'))}), not "
                f"{settings.simulation()}; drop --keep to simulate again, or use the same settings."
            )
        record["simulated"] = True
        record["n_sources"] = previous.get("n_sources", [])
        return False, record
    if repo_exists:
        shutil.rmtree(settings.repo)
    if previous is not None and settings.eval_dir.is_dir():
        # Figures of an earlier demo that this one may not draw must not be mistaken for its own.
        shutil.rmtree(settings.eval_dir)
    output.mkdir(parents=True, exist_ok=True)
    return True, record


def _tail(path: Path, n: int = _LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------


def run_demo(settings: DemoSettings, *, stream: TextIO | None = None, progress: bool = True) -> DemoResult:
    """Simulate a small repository, classify it with ``pipetask run`` and evaluate against truth.

    Parameters
    ----------
    settings : `DemoSettings`
        What to simulate and how to run.
    stream : `typing.TextIO`, optional
        Where the report is printed (default: `sys.stdout`).
    progress : `bool`, optional
        Show the simulation's progress bar.

    Returns
    -------
    result : `DemoResult`
        Paths, timings and the evaluation.

    Raises
    ------
    ValueError
        Raised if a setting is out of range.
    FileNotFoundError
        Raised if the model file, the pipeline file or ``pipetask`` cannot be found.
    FileExistsError
        Raised if the output directory holds data the demo may not replace or reuse.
    lsst.meas.contextnet.modelio.ModelFileError
        Raised if the model file is not a valid ContextNet model.
    RuntimeError
        Raised if ``pipetask run`` fails (the message names its log and quotes its end).
    """
    stream = sys.stdout if stream is None else stream
    settings.validate()
    start_all = time.perf_counter()

    # Everything that can be checked cheaply is checked before the minutes of simulation.
    model_path = resolve_model(settings.model)
    pipeline = find_pipeline()
    pipetask = find_pipetask()
    from lsst.meas.contextnet.modelio import file_sha256, load_model

    loaded = load_model(model_path, "cpu")
    from lsst.meas.contextnet.classifier import ContextNetClassifierConfig, ContextNetClassifierTask

    # The task's own rule for too few sources, with the configuration the demo runs it with.
    task = ContextNetClassifierTask(config=ContextNetClassifierConfig())
    min_sources = task.ensemble_plan(loaded, 0)[2]
    if loaded.global_kind == "pool":
        few_reason = f"fewer than minContextSources = {min_sources}: their context is weak"
    else:
        few_reason = f"the model's set size m = {min_sources} exceeds them: their sets repeat sources"
    card = loaded.metadata
    _say(stream, f"model:    {model_path} (sha256 {loaded.sha256[:12]})")
    _say(
        stream,
        f"          architecture {card.get('architecture', 'unknown')}, cutout {loaded.cutout_size} px, "
        f"m = {loaded.m}; trained on: {_describe_training_data(card)}",
    )
    _say(stream, f"pipeline: {pipeline}")
    _say(stream, f"output:   {settings.output.resolve()}")
    del loaded

    simulate, record = _prepare_output(settings)
    settings = dataclasses.replace(settings, output=settings.output.resolve())
    record["model"] = {"path": str(model_path), "sha256": file_sha256(model_path)}
    record["pipeline"] = str(pipeline)
    _write_marker(settings.marker_path, record)
    timings: dict[str, float] = {}

    # 1. Simulate.
    n_exposures = settings.visits * settings.detectors
    if simulate:
        _say(stream)
        _say(
            stream,
            f"[1/3] Simulating {settings.visits} visit(s) x {settings.detectors} detector(s) of "
            f"{settings.size}x{settings.size} pixels (seed {settings.seed}) into {settings.repo} "
            f"collection {SIM_COLLECTION!r} ...",
        )
        from lsst.meas.contextnet.sim.exposure import SimulationConfig
        from lsst.meas.contextnet.sim.simulate import simulate_repo

        start = time.perf_counter()
        summary = simulate_repo(
            settings.repo,
            SIM_COLLECTION,
            visits=settings.visits,
            config=SimulationConfig(size=settings.size),
            seed=settings.seed,
            detectors=settings.detectors,
            processes=settings.processes,
            progress=progress,
        )
        timings["simulate"] = time.perf_counter() - start
        n_sources = list(summary.n_sources)
        record.update(simulated=True, n_sources=n_sources)
        _write_marker(settings.marker_path, record)
        fwhm = ", ".join(f'visit {v}: {f:.2f}"' for v, f in summary.visit_psf_fwhm.items())
        _say(
            stream,
            f"      {n_exposures} exposure(s), {sum(n_sources)} detected sources "
            f"({', '.join(str(n) for n in n_sources)}); mean PSF FWHM {fwhm}",
        )
        _say(stream, f"      done in {timings['simulate']:.1f} s")
    else:
        timings["simulate"] = 0.0
        n_sources = [int(n) for n in record.get("n_sources", [])]
        _say(stream)
        _say(
            stream,
            f"[1/3] --keep: reusing the simulated data in {settings.repo} collection {SIM_COLLECTION!r}",
        )
    if n_sources and min(n_sources) < min_sources:
        _say(
            stream,
            f"      note: some exposures have few sources (fewest: {min(n_sources)}; {few_reason}); "
            "every such row is flagged classification_flag_fewSources (a full 4096x4096 detector has "
            "1200-2200 sources).",
        )

    # 2. Classify with the real pipetask.
    command = build_pipetask_command(
        pipetask,
        settings.repo,
        pipeline,
        jobs=settings.jobs,
        model=model_path if settings.model is not None else None,
    )
    _say(stream)
    _say(stream, f"[2/3] Classifying with pipetask (-j {settings.jobs}):")
    _say(stream, "      " + shlex.join(command))
    _say(stream, f"      log: {settings.log_path}")
    start = time.perf_counter()
    with open(settings.log_path, "w") as log:
        completed = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        )
    timings["pipetask"] = time.perf_counter() - start
    if completed.returncode != 0:
        record["status"] = "pipetask failed"
        _write_marker(settings.marker_path, record)
        raise RuntimeError(
            f"pipetask run exited with status {completed.returncode} after {timings['pipetask']:.1f} s; "
            f"full log: {settings.log_path}\n--- last lines of the log ---\n{_tail(settings.log_path)}"
        )
    _say(stream, f"      done in {timings['pipetask']:.1f} s")

    # 3. Evaluate against truth.
    _say(stream)
    _say(stream, f"[3/3] Evaluating collections {[DEMO_COLLECTION, SIM_COLLECTION]} against truth ...")
    start = time.perf_counter()
    result, written = _evaluate(settings)
    timings["evaluate"] = time.perf_counter() - start
    _say(stream, f"      done in {timings['evaluate']:.1f} s")
    timings["total"] = time.perf_counter() - start_all

    record.update(
        status="done",
        pipetask_command=command,
        timings_s={key: round(value, 2) for key, value in timings.items()},
        eval_files=[str(path) for path in written],
        counts=result.counts,
    )
    _write_marker(settings.marker_path, record)
    demo = DemoResult(
        settings=settings,
        model_path=model_path,
        pipeline=pipeline,
        pipetask_command=command,
        timings=timings,
        n_sources=n_sources,
        evaluation=result,
        written=written,
    )
    _report(demo, stream)
    return demo


def _evaluate(settings: DemoSettings) -> tuple[EvaluationResult, list[Path]]:
    """Evaluate the demo's classifications and write ``eval/``."""
    from lsst.meas.contextnet.evaluation.butler import evaluate_repository

    return evaluate_repository(
        settings.repo,
        [DEMO_COLLECTION, SIM_COLLECTION],
        settings.eval_dir,
        seed=settings.seed,
        progress=False,
    )


def _report(demo: DemoResult, stream: TextIO) -> None:
    """Print the results, where they are, and what to run next."""
    settings = demo.settings
    result = demo.evaluation
    _say(stream)
    _say(stream, "=" * 100)
    _say(stream, "Counts")
    _say(stream, result.format_counts())
    _say(stream)
    _say(
        stream, "ContextNet vs the DM extendedness baseline against truth (cf. Kennamer et al. 2018, Table 2)"
    )
    _say(stream, format_table2(result))
    _say(stream)
    _say(stream, result.format_by_magnitude("accuracy"))
    if result.counts.get("n_flagged", 0):
        _say(stream)
        _say(
            stream,
            f"Note: {result.counts['n_flagged']} evaluated sources have classification_flag set (edge, bad "
            "pixels, too few good pixels, or fewer sources on their detector than a paper network's m "
            "or a pooling network's minContextSources); they are included above. See eval/summary.txt "
            "for every classifier, AUC and ECE.",
        )
    if result.counts.get("n_outside_training", 0):
        _say(stream)
        _say(
            stream,
            f"Note: {result.counts['n_outside_training']} evaluated sources come from exposures whose "
            "seeing or band lies outside the model's training conditions "
            "(classification_flag_outsideTraining); they are included above.",
        )
    _say(stream)
    _say(stream, "=" * 100)
    timings = demo.timings
    simulate = "reused (--keep)" if timings["simulate"] == 0.0 else f"{timings['simulate']:.1f} s"
    _say(
        stream,
        f"Timing: simulate {simulate}, pipetask {timings['pipetask']:.1f} s, "
        f"evaluate {timings['evaluate']:.1f} s, total {timings['total']:.1f} s",
    )
    _say(stream)
    _say(stream, "Where everything is:")
    _say(stream, f"  Butler repository   {settings.repo}")
    _say(stream, f"    simulated data    collection {SIM_COLLECTION!r} (calexp, src, truth)")
    _say(stream, f"    classifications   collection {DEMO_COLLECTION!r} (contextnet_classification)")
    _say(stream, f"  pipetask log        {settings.log_path}")
    _say(stream, f"  evaluation          {settings.eval_dir}/")
    for path in demo.written:
        _say(stream, f"    {path.name}")
    _say(stream, f"  demo record         {settings.marker_path}")
    _say(stream)
    _say(stream, "Next, query the classifications with the Butler:")
    _say(
        stream,
        f"  butler query-datasets {settings.repo} contextnet_classification --collections {DEMO_COLLECTION}",
    )
    _say(
        stream,
        '  python -c "from lsst.daf.butler import Butler; '
        f"butler = Butler('{settings.repo}', collections='{DEMO_COLLECTION}'); "
        "print(butler.get('contextnet_classification', instrument='SimCam', visit=0, detector=0))\"",
    )
