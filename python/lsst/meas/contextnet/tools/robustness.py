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

"""Robustness and transfer: ContextNet on worlds it was not trained on, in one table.

`run_robustness` (``contextnet robustness``) simulates one collection per test world
(`~lsst.meas.contextnet.sim.world.WORLDS`: held-out seeds of the randomized world, seeing
beyond its range, star-rich and star-poor fields, a PSF family and a galaxy family never used
in training, ...) with seeds never used for training, classifies each with the real
``pipetask run`` (one output collection per world and model), and scores every model,
``extendedness``, ``sizeExtendedness`` and the catalog-feature peer
(`~lsst.meas.contextnet.evaluation.peer`: the shipped one, one given by path, or one trained here
on simulated visits of the training world) per world and magnitude bin (accuracy, star and
galaxy recall, AUC, ECE).  Existing collections are reused, so a rerun only does what is
missing; one that holds fewer exposures or classifications than it should (an interrupted run)
is an error that names it, never silently scored.

Magnitudes are in each visit's band, so "brighter than 22" is a different depth in each band: at
the faint end of that bin a star has a signal-to-noise ratio of about 35 in ``r`` but about 8 in
``y``.  A target stated in ``r`` (star recall at r < 22) is therefore also measured literally:
every world gets a companion collection ``sim/<world>-r`` of ``r``-band visits of the same world
(seeds `R_SEED_BASE` + k, never used for training), scored as world ``<world>-r``.  A second
table splits the sources brighter than 22 by PSF-flux S/N (`ROBUSTNESS_SNR_BINS`), so a bright-star
miss can be told apart from a star near the detection limit.

The same worlds drawn with other seeds (``split="validation"``, `SPLIT_SEED_BASES`) are the
validation set a model change is judged on before the test seeds are used once to report it.
"""

from __future__ import annotations

__all__ = [
    "BAND_POOL_WORLDS",
    "DEFAULT_TEST_WORLDS",
    "PEER_FIRST_VISIT",
    "PEER_SEED",
    "ROBUSTNESS_MAG_BINS",
    "ROBUSTNESS_SNR_BINS",
    "R_SEED_BASE",
    "SPLIT_SEED_BASES",
    "TEST_SEED_BASE",
    "MARGIN_BASELINES",
    "TARGET_ECE",
    "TARGET_MARGIN",
    "TARGET_STAR_RECALL",
    "format_blend_table",
    "format_margin_table",
    "format_snr_table",
    "format_table",
    "format_target_table",
    "format_visit_table",
    "missed_targets",
    "run_robustness",
    "target_table",
]

import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import MaskedColumn, Table, vstack
from lsst.meas.contextnet.evaluation.blending import (
    BLEND_MAX_FAINTER_MAG,
    BLEND_MAX_SEPARATION_FWHM,
    BLENDED_COLUMN,
)
from lsst.meas.contextnet.evaluation.clustered import (
    clustered_proportion,
    margin_table,
    proportion_influence,
)
from lsst.meas.contextnet.evaluation.metrics import galaxy_calls
from lsst.meas.contextnet.evaluation.scoring import bool_column, float_column
from lsst.meas.contextnet.outputcolumns import OUTSIDE_TRAINING_COLUMN
from lsst.meas.contextnet.pipelinefiles import find_pipeline
from lsst.meas.contextnet.serialization import table_rows

if TYPE_CHECKING:
    from lsst.meas.contextnet.evaluation.scoring import EvaluationResult

_LOG = logging.getLogger(__name__)

DEFAULT_TEST_WORLDS: tuple[str, ...] = (
    "randomized",
    "bad-seeing",
    "good-seeing",
    "star-rich",
    "star-poor",
    "galaxy-knots",
    "psf-optical",
)
"""Worlds of the default table, in this order (see `_first_visit`)."""

BAND_POOL_WORLDS: tuple[str, ...] = ("randomized", "bad-seeing", "good-seeing", "star-rich", "star-poor")
"""Test worlds pooled for the per-band rows (all six bands, the training families)."""

ROBUSTNESS_MAG_BINS: tuple[float, ...] = (14.0, 22.0, 23.0, 23.5, 24.0, 24.5, 25.0, 27.0)
"""Magnitude bins (in each visit's band): everything brighter than 22, then half magnitudes."""

ROBUSTNESS_SNR_BINS: tuple[float, ...] = (0.0, 10.0, 20.0, 40.0, 1e9)
"""Bins of PSF-flux signal-to-noise ratio (``psfFlux / psfFluxErr``) of the sources brighter than 22,
the second table: how much of a bright-star miss is a faint-in-S/N star."""

TEST_SEED_BASE = 9000
"""Test world ``k`` (1-based position in `DEFAULT_TEST_WORLDS` order) uses seed ``9000 + k``."""

R_SEED_BASE = 9100
"""Test world ``k``'s companion ``r``-band visits use seed ``9100 + k``."""

SPLIT_SEED_BASES: dict[str, tuple[int, int]] = {
    "test": (TEST_SEED_BASE, R_SEED_BASE),
    "validation": (5500, 5600),
}
"""Seed bases of each split, ``(world, r-band companion)``: ``test`` reports a model, ``validation``
chooses between models; neither is used for training."""

PEER_FIRST_VISIT = 90000
"""First visit of the peer's training visits (``sim/peer-train``)."""

PEER_SEED = 4242
"""Seed of the simulated training-world visits the peer is trained on."""

MARGIN_BASELINES: tuple[str, ...] = ("extendedness", "catalog_gbdt")
"""Classifiers a model's accuracy margins and bright-star recall are compared with."""

FAINT_BIN_MIN_OBJECTS = 200
"""Magnitude bins fainter than 22 with at least this many objects enter the faint-bin margins."""

TARGET_MARGIN = 0.01
"""Accuracy margin a model must hold over every baseline of `MARGIN_BASELINES`, overall and in
each faint bin (fainter than 22, at least `FAINT_BIN_MIN_OBJECTS` objects)."""

TARGET_STAR_RECALL = 0.99
"""Star recall brighter than r = 22 a model must reach on the rows of ``r``-band visits."""

TARGET_ECE = 0.02
"""Expected calibration error a model must stay within on every row."""

_VISIT_CONDITIONS = ("fwhm", "psf_family", "psf_model_size_error", "star_fraction", "density_scale")
_STAR_RECALL_COLUMNS = ("star_recall_bright", *(f"star_recall_bright_{b}" for b in MARGIN_BASELINES))
"""Star recall brighter than 22 of the model, then of each baseline (margins and visit columns)."""


def _has_collection(butler: Any, name: str) -> bool:
    from lsst.daf.butler import MissingCollectionError

    try:
        butler.collections.get_info(name)
    except MissingCollectionError:
        return False
    return True


def _is_complete(butler: Any, collection: str, dataset_types: Sequence[str], expected: int) -> bool:
    """Whether ``collection`` exists holding ``expected`` datasets of each of ``dataset_types``.

    Raises
    ------
    RuntimeError
        Raised if the collection exists with another number of one of them (a run that was
        interrupted, or made with other settings): reusing it would score other visits.
    """
    if not _has_collection(butler, collection):
        return False
    for dataset_type in dataset_types:
        found = len(butler.query_datasets(dataset_type, collections=collection, explain=False, limit=None))
        if found != expected:
            raise RuntimeError(
                f"collection {collection!r} holds {found} {dataset_type} datasets where {expected} "
                "are expected (an interrupted or different run); remove it "
                f"(butler remove-runs REPO {collection!r}, or butler remove-collections for a "
                "chain) and rerun"
            )
    return True


def _check_simulation(butler: Any, collection: str, expected: Mapping[str, Any]) -> None:
    """Check that a collection to reuse was simulated as this run would simulate it.

    Raises
    ------
    RuntimeError
        Raised, naming what differs, if its record (`~lsst.meas.contextnet.sim.simulate.simulation_record`)
        gives another seed, first visit, world, band or detector size; a collection without a
        record is reused with a warning.
    """
    from lsst.meas.contextnet.sim.simulate import simulation_record

    record = simulation_record(butler, collection)
    if record is None:
        _LOG.warning(
            "%s has no simulation record; cannot check that its seed and world are this run's", collection
        )
        return
    config = record.get("config", {})
    found = {key: record.get(key) for key in ("seed", "first_visit")}
    found.update({key: config.get(key) for key in ("world", "band", "size")})
    differ = {key: (found[key], value) for key, value in expected.items() if found[key] != value}
    if differ:
        detail = ", ".join(f"{key} {was!r} (this run: {want!r})" for key, (was, want) in differ.items())
        raise RuntimeError(
            f"collection {collection!r} was simulated with {detail}; use another repository for this "
            "split or these options"
        )


def _world_index(world: str) -> int:
    from lsst.meas.contextnet.sim.world import world_names

    names = list(DEFAULT_TEST_WORLDS) + [w for w in world_names() if w not in DEFAULT_TEST_WORLDS]
    return names.index(world) + 1


def run_robustness(
    repo: str,
    output: str | Path,
    *,
    models: Sequence[tuple[Any, ...]] = (("contextnet", None),),
    worlds: Sequence[str] = DEFAULT_TEST_WORLDS,
    visits: int = 16,
    size: int = 2048,
    processes: int = 1,
    jobs: int = 1,
    peer_visits: int = 0,
    r_visits: int = 16,
    split: str = "test",
    peer_path: str | Path | None = None,
) -> tuple[Table, Table]:
    """Simulate, classify and score the test worlds; write and return the table and the targets.

    Parameters
    ----------
    repo : `str`
        Butler repository (created when missing).
    output : `str` or `pathlib.Path`
        Directory for ``robustness.csv``, ``robustness.md`` and ``robustness.json``.
    models : `~collections.abc.Sequence` [`tuple`], optional
        ``(label, model path)`` or ``(label, model path, overrides)``; `None` is the shipped
        model, overrides are ``FIELD=VALUE`` settings of the classifier's configuration (e.g.
        ``poolSetSize=250``).
    worlds : `~collections.abc.Sequence` [`str`], optional
        Test worlds.
    visits, size : `int`, optional
        Visits per world and detector side in pixels.
    processes : `int`, optional
        Simulation processes.
    jobs : `int`, optional
        ``pipetask run -j``: 1 runs every quantum in one process; more start a process per
        quantum, each importing the task and its libraries again (seconds per quantum).
    peer_visits : `int`, optional
        If positive, simulate this many training-world visits into ``sim/peer-train`` and train
        the peer on every ``sim/peer-train*`` collection of the repository; 0 (default) scores the
        peer of ``peer_path``.
    r_visits : `int`, optional
        ``r``-band visits of each world in its companion collection ``sim/<world>-r`` (scored as
        world ``<world>-r``); 0 for none.
    split : `str`, optional
        ``test`` or ``validation``: the seeds the worlds are drawn with (`SPLIT_SEED_BASES`).  A
        repository holds one split (its collections are named by world alone).
    peer_path : `str` or `pathlib.Path`, optional
        A trained peer (``contextnet train-peer``) to score when ``peer_visits`` is 0; default
        the shipped peer (`~lsst.meas.contextnet.evaluation.peer.default_peer_path`).

    Returns
    -------
    table : `astropy.table.Table`
        One row per world, classifier and magnitude bin (``bin == -1``: all objects).
    targets : `astropy.table.Table`
        Whether each model holds each target on each row (`target_table`).

    Raises
    ------
    ValueError
        Raised for an unknown split, visit ranges of two collections that would overlap, a
        negative ``peer_visits`` or both ``peer_visits`` and ``peer_path``, or a ``peer_path``
        that is not a peer file.
    FileNotFoundError
        Raised if ``peer_path`` does not exist (checked before anything is simulated).
    RuntimeError
        Raised if a collection to reuse holds fewer or more exposures (or classifications) than
        this run expects, e.g. one left by an interrupted run.
    """
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.evaluation.peer import CatalogPeer, train_peer_from_butler
    from lsst.meas.contextnet.evaluation.scoring import evaluate_catalog
    from lsst.meas.contextnet.sim.exposure import SimulationConfig, visit_conditions
    from lsst.meas.contextnet.sim.repo import DATASET_TYPES
    from lsst.meas.contextnet.sim.simulate import simulate_repo

    if split not in SPLIT_SEED_BASES:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEED_BASES)}, got {split!r}")
    world_seed, r_seed = SPLIT_SEED_BASES[split]
    jobs_to_simulate = [
        (f"sim/{w}", w, None, world_seed + _world_index(w), _first_visit(w), visits) for w in worlds
    ]
    if r_visits > 0:
        jobs_to_simulate += [
            (f"sim/{w}-r", w, "r", r_seed + _world_index(w), _first_visit(w) + 5000, r_visits) for w in worlds
        ]
    if peer_visits < 0:
        raise ValueError(f"peer_visits must be 0 (score a trained peer) or positive, got {peer_visits}")
    if peer_visits > 0 and peer_path is not None:
        raise ValueError("give peer_visits (train a peer here) or peer_path (score a trained one), not both")
    # A trained peer is read before anything is simulated, so a wrong path fails at once.
    peer = CatalogPeer.load(peer_path) if peer_visits == 0 else None
    if peer_visits > 0:
        jobs_to_simulate.append(
            ("sim/peer-train", "randomized", None, PEER_SEED, PEER_FIRST_VISIT, peer_visits)
        )
    _check_visit_ranges([(job[0], job[4], job[5]) for job in jobs_to_simulate])
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for collection, world, band, seed, first_visit, n_visits in jobs_to_simulate:
        existing = Butler.from_config(repo) if Path(repo, "butler.yaml").is_file() else None
        if existing is not None and _is_complete(existing, collection, list(DATASET_TYPES), n_visits):
            _check_simulation(
                existing,
                collection,
                {"seed": seed, "first_visit": first_visit, "world": world, "band": band, "size": size},
            )
            _LOG.info("%s exists; not simulating it again", collection)
            continue
        _LOG.info("simulating %d visits of world %s into %s (seed %d)", n_visits, world, collection, seed)
        simulate_repo(
            repo,
            collection,
            visits=n_visits,
            config=SimulationConfig(world=world, size=size, band=band),
            seed=seed,
            first_visit=first_visit,
            processes=processes,
            progress=False,
        )
    if peer is None:
        # Every sim/peer-train* collection (more visits can be added in further collections).
        peer_collections = sorted(Butler.from_config(repo).collections.query("sim/peer-train*"))
        peer = train_peer_from_butler(repo, peer_collections, seed=0)
    peer.save(out / "catalog_peer.pkl")

    butler = Butler.from_config(repo, writeable=False)
    visit_band = {
        int(record.id): str(record.physical_filter).split("-")[-1]
        for record in butler.query_dimension_records("visit", explain=False)
    }
    tables = []

    snr_tables = []

    margin_tables = []
    visit_tables = []
    sources = {job[0].removeprefix("sim/"): job for job in jobs_to_simulate}

    def scored(
        catalog: Table, name: str, label: str, first: bool, bins: Sequence[float], column: str
    ) -> tuple[Table, EvaluationResult]:
        result = evaluate_catalog(
            catalog, mag_bins=list(bins), mag_column=column, do_trivial=False, peer=peer
        )
        metrics = result.metrics
        metrics["classifier"] = [label if c == "ContextNet" else c for c in metrics["classifier"]]
        metrics["world"] = name
        if not first:
            # The baselines and the peer do not depend on the model: keep them once.
            metrics = metrics[metrics["classifier"] == label]
        return metrics, result

    def score(catalog: Table, name: str, label: str, first: bool) -> None:
        metrics, result = scored(catalog, name, label, first, ROBUSTNESS_MAG_BINS, "mag")
        tables.append(metrics)
        margin_tables.append(_margins(result, name, label))
        if name in sources:
            _, world, band, seed, _, _ = sources[name]
            config = SimulationConfig(world=world, size=size, band=band)

            def drawn(visit: int) -> dict[str, Any]:
                return visit_conditions(config, visit, seed).to_dict()

            visit_tables.append(_visit_rows(result, name, label, drawn))
        bright = catalog[np.asarray(catalog["mag"], dtype=float) < ROBUSTNESS_MAG_BINS[1]]
        if len(bright) and {"psfFlux", "psfFluxErr"} <= set(bright.colnames):
            flux = np.asarray(bright["psfFlux"], dtype=float)
            bright["psf_snr"] = flux / np.asarray(bright["psfFluxErr"], dtype=float)
            metrics, _ = scored(bright, name, label, first, ROBUSTNESS_SNR_BINS, "psf_snr")
            metrics.rename_columns(["mag_lo", "mag_hi"], ["snr_lo", "snr_hi"])
            snr_tables.append(metrics)

    for index, spec in enumerate(models):
        label, model = spec[0], spec[1]
        overrides = tuple(spec[2]) if len(spec) > 2 else ()
        pooled = []
        for world in worlds:
            for name in (world, f"{world}-r") if r_visits > 0 else (world,):
                catalog = _classify(repo, name, label, model, overrides, jobs)
                catalog["band"] = [visit_band[int(v)] for v in catalog["visit"]]
                score(catalog, name, label, index == 0)
                if name in BAND_POOL_WORLDS:
                    pooled.append(catalog)
        # Each band, over the test worlds of the training families (the held-out PSF and galaxy
        # families are left out, so a band's row measures the band, not those families).
        if pooled:
            everything = vstack(pooled, metadata_conflicts="silent")
            for band in "ugrizy":
                subset = everything[everything["band"] == band]
                if len(subset):
                    score(subset, f"band-{band}", label, index == 0)
    table = vstack(tables)
    table.meta = {
        "split": split,
        "seeds": {job[0]: job[3] for job in jobs_to_simulate},
        "mag_bins": list(ROBUSTNESS_MAG_BINS),
        "models": [[spec[0], str(spec[1]) if spec[1] else "shipped", *spec[2:]] for spec in models],
        "peer": peer.card,
    }
    snr = vstack(snr_tables) if snr_tables else Table()
    snr.meta = {"snr_bins": list(ROBUSTNESS_SNR_BINS), "brighter_than": ROBUSTNESS_MAG_BINS[1]}
    margins = vstack(margin_tables)
    margins.meta = {
        "baselines": list(MARGIN_BASELINES),
        "standard_errors": "cluster-robust over visits (lsst.meas.contextnet.evaluation.clustered)",
        "brighter_than": ROBUSTNESS_MAG_BINS[1],
        "blended": {
            "max_separation_fwhm": BLEND_MAX_SEPARATION_FWHM,
            "max_fainter_mag": BLEND_MAX_FAINTER_MAG,
        },
    }
    visits_table = vstack(visit_tables) if visit_tables else Table()
    targets = target_table(table, margins)
    table.write(out / "robustness.csv", overwrite=True)
    snr.write(out / "robustness_snr.csv", overwrite=True)
    margins.write(out / "robustness_margins.csv", overwrite=True)
    visits_table.write(out / "robustness_visits.csv", overwrite=True)
    targets.write(out / "robustness_targets.csv", overwrite=True)
    (out / "robustness.md").write_text(
        "\n".join(
            [
                format_target_table(targets),
                format_table(table),
                format_snr_table(snr),
                format_margin_table(margins),
                format_blend_table(margins),
                format_visit_table(visits_table),
            ]
        )
    )
    (out / "robustness.json").write_text(
        json.dumps(
            {
                "meta": table.meta,
                "rows": table_rows(table),
                "bright_by_snr": table_rows(snr),
                "margins": table_rows(margins),
                "visits": table_rows(visits_table),
                "targets": table_rows(targets),
            },
            indent=1,
        )
        + "\n"
    )
    return table, targets


def _check_visit_ranges(ranges: Sequence[tuple[str, int, int]]) -> None:
    """Refuse collections whose visit IDs ``(name, first, count)`` would overlap."""
    ordered = sorted(ranges, key=lambda item: item[1])
    for (name, first, count), (next_name, next_first, _) in zip(ordered, ordered[1:], strict=False):
        if first + count > next_first:
            raise ValueError(
                f"the visits of {name} ({first}-{first + count - 1}) would overlap those of {next_name} "
                f"(from {next_first}); simulate fewer visits or fewer worlds at once"
            )


def _first_visit(world: str) -> int:
    """First visit of test world ``k``: ``10000 k``, skipping the peer's ``PEER_FIRST_VISIT``.

    Its ``r``-band companion starts 5000 later.
    """
    first = 10000 * _world_index(world)
    return first + 10000 if first >= PEER_FIRST_VISIT else first


def _classify(repo: str, world: str, label: str, model: Any, overrides: Sequence[str], jobs: int) -> Table:
    """Classify ``sim/<world>`` with ``pipetask run`` (unless done) and join it with its truth."""
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.evaluation.butler import load_from_butler
    from lsst.meas.contextnet.modelcheck import resolve_model

    run = f"contextnet/{label}/{world}"
    butler = Butler.from_config(repo)
    n_exposures = len(butler.query_datasets("calexp", collections=f"sim/{world}", limit=None))
    complete = _is_complete(butler, run, ["contextnet_classification"], n_exposures)
    if complete:
        _check_classified_with(butler, run, resolve_model(model))
    else:
        command = [
            str(Path(sys.executable).with_name("pipetask")),
            "run",
            "-b",
            str(repo),
            "-i",
            f"sim/{world}",
            "-o",
            run,
            "-p",
            str(find_pipeline()),
            "-j",
            str(jobs),
            "--register-dataset-types",
        ]
        if model is not None:
            command += ["-c", f"contextnetClassifier:modelPath={Path(model).resolve()}"]
        for item in overrides:
            command += ["-c", f"contextnetClassifier:{item}"]
        _LOG.info("running %s", shlex.join(command))
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    butler = Butler.from_config(repo, writeable=False)
    joined, _ = load_from_butler(butler, [run, f"sim/{world}"], progress=False)
    return joined.catalog


def _check_classified_with(butler: Any, run: str, model: Path) -> None:
    """Check that a classification collection to reuse was written by this model file.

    Raises
    ------
    RuntimeError
        Raised, naming both, if the task's metadata give another model's sha256.
    """
    from lsst.meas.contextnet.modelio import file_sha256

    refs = butler.query_datasets("contextnetClassifier_metadata", collections=run, limit=1)
    used = str(butler.get(refs[0])["contextnetClassifier"]["model.sha256"]) if refs else None
    wanted = file_sha256(model)
    if used != wanted:
        raise RuntimeError(
            f"collection {run!r} was classified with the model of sha256 {used}, not {str(model)!r} "
            f"({wanted}); give this model another label"
        )


def _world_sections(
    table: Table,
    bin_head: Callable[[Any], str],
    bin_count: Callable[[Any], str],
    cells: Callable[[Table, list[int]], list[str]],
    extra_heads: Sequence[str] = (),
) -> list[str]:
    """Markdown sections, one per world: a row per classifier, a column per bin (``-1`` first).

    ``bin_head`` and ``bin_count`` name a bin from its row of the first classifier; ``cells``
    gives a classifier's cells from its rows and the bins, the ``extra_heads`` columns included.
    """
    lines = []
    bins = [-1] + sorted({int(b) for b in table["bin"] if b >= 0})
    for world in dict.fromkeys(table["world"]):
        rows = table[table["world"] == world]
        first = {int(r["bin"]): r for r in rows[rows["classifier"] == rows["classifier"][0]]}
        heads = [
            f"{'all' if b == -1 else bin_head(first[b])} ({bin_count(first[b]) if b in first else 0})"
            for b in bins
        ]
        lines.append(f"### {world}\n")
        lines.append("| classifier | " + " | ".join([*heads, *extra_heads]) + " |")
        lines.append("|---" * (len(heads) + len(extra_heads) + 1) + "|")
        for name in dict.fromkeys(rows["classifier"]):
            lines.append(f"| {name} | " + " | ".join(cells(rows[rows["classifier"] == name], bins)) + " |")
        lines.append("")
    return lines


def format_table(table: Table) -> str:
    """Format the robustness table as Markdown.

    Parameters
    ----------
    table : `astropy.table.Table`
        Output of `run_robustness`.

    Returns
    -------
    text : `str`
        Per world: accuracy by magnitude bin (counts in the header) for each classifier, then
        star recall below 22, galaxy recall, AUC and ECE over all objects.
    """

    def cells(mine: Table, bins: list[int]) -> list[str]:
        acc = {int(r["bin"]): r["accuracy"] for r in mine}
        overall = mine[mine["bin"] == -1][0]
        bright = mine[mine["bin"] == 0][0]
        ece = overall["ece"]
        return [f"{acc.get(b, float('nan')):.3f}" for b in bins] + [
            f"{bright['star_recall']:.3f}",
            f"{overall['galaxy_recall']:.3f}",
            f"{overall['auc']:.3f}",
            f"{ece:.3f}" if ece == ece else "-",
        ]

    return "\n".join(
        _world_sections(
            table,
            lambda row: f"{row['mag_lo']:g}-{row['mag_hi']:g}",
            lambda row: f"n={int(row['n'])}",
            cells,
            ("star recall <22", "galaxy recall", "AUC", "ECE"),
        )
    )


def format_snr_table(table: Table) -> str:
    """Format the star recall of the sources brighter than 22 by S/N as Markdown.

    Parameters
    ----------
    table : `astropy.table.Table`
        ``robustness_snr.csv`` of `run_robustness`: per world, classifier and S/N bin
        (``bin == -1``: all sources brighter than 22).

    Returns
    -------
    text : `str`
        Per world, one row per classifier: star recall in each S/N bin (stars counted in the
        header).
    """
    if not len(table):
        return ""

    def head(row: Any) -> str:
        low, high = row["snr_lo"], row["snr_hi"]
        return f"S/N >= {low:g}" if high >= ROBUSTNESS_SNR_BINS[-1] else f"S/N {low:g}-{high:g}"

    def cells(mine: Table, bins: list[int]) -> list[str]:
        recall = {int(r["bin"]): r["star_recall"] for r in mine}
        return [f"{recall.get(b, float('nan')):.3f}" for b in bins]

    sections = _world_sections(table, head, lambda row: f"{int(row['n_star'])} stars", cells)
    return "\n".join(["## Star recall brighter than 22, by PSF-flux S/N\n", *sections])


def _score_arrays(result: EvaluationResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, magnitudes and visits of the evaluated objects."""
    catalog = result.catalog
    return (
        bool_column(catalog, "is_galaxy", fill=False),
        float_column(catalog, "mag"),
        np.asarray(catalog["visit"]),
    )


def _star_hits(result: EvaluationResult, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Whether each object is called a star by ``name``, and whether ``name`` scored it."""
    scored, galaxy = galaxy_calls(result.scores[name], result.thresholds[name])
    return scored & ~galaxy, scored


def _margins(result: EvaluationResult, world: str, label: str) -> Table:
    """Accuracy margins over `MARGIN_BASELINES` per magnitude bin and star recall brighter than 22.

    Standard errors are cluster-robust over visits; the star recalls (model and baselines, over
    the stars brighter than 22 of the whole world, then over the isolated and the blended ones
    apart, `~lsst.meas.contextnet.evaluation.blending`, when the truth tells which) repeat on
    every row of the world, and so do its ``bands`` (those of its visits, comma-separated; empty
    when the catalog has no ``band`` column).
    """
    labels, mag, visits = _score_arrays(result)
    table = margin_table(
        labels,
        result.scores,
        result.thresholds,
        mag,
        visits,
        reference="ContextNet",
        others=MARGIN_BASELINES,
        mag_bins=ROBUSTNESS_MAG_BINS,
    )
    bright_stars = ~labels & (mag < ROBUSTNESS_MAG_BINS[1])
    subsets = {"": bright_stars}
    split = _blend_split(result.catalog)
    if split is not None:
        subsets.update({"_isolated": bright_stars & split[0], "_blended": bright_stars & split[1]})
        table["n_bright_star"] = np.count_nonzero(bright_stars)
        table["n_bright_star_blended"] = np.count_nonzero(subsets["_blended"])
    for name in ("ContextNet", *MARGIN_BASELINES):
        if name not in result.scores:
            continue
        column = "star_recall_bright" if name == "ContextNet" else f"star_recall_bright_{name}"
        hits, scored = _star_hits(result, name)
        for suffix, stars in subsets.items():
            recall, se = clustered_proportion(hits, stars & scored, visits)
            table[f"{column}{suffix}"] = recall
            table[f"{column}{suffix}_se"] = se
    table.add_column(world, name="world", index=0)
    table.add_column(label, name="classifier", index=1)
    # The bands of the row's visits ("r" for a row of r-band visits only, where the star-recall
    # target is stated).
    bands = sorted({str(b) for b in result.catalog["band"]}) if "band" in result.catalog.colnames else []
    table.add_column(",".join(bands), name="bands", index=2)
    return table


def _blend_split(catalog: Table) -> tuple[np.ndarray, np.ndarray] | None:
    """Which objects are known to be isolated and which blended; `None` without a blend column.

    An object whose ``blended`` entry is masked (its exposure's truth could not tell) is in
    neither.
    """
    if BLENDED_COLUMN not in catalog.colnames:
        return None
    known = ~np.ma.getmaskarray(catalog[BLENDED_COLUMN])
    blended = bool_column(catalog, BLENDED_COLUMN, fill=False)
    return known & ~blended, known & blended


def _visit_rows(
    result: EvaluationResult, world: str, label: str, conditions: Callable[[int], dict[str, Any]]
) -> Table:
    """Per visit: its drawn conditions, accuracy and star recall brighter than 22 of each classifier
    (of all those stars, and of the isolated ones when the truth tells which are blended).

    ``outside_training``: the model flagged the visit outside its training conditions.
    """
    labels, mag, visits = _score_arrays(result)
    names = [name for name in ("ContextNet", *MARGIN_BASELINES) if name in result.scores]
    calls = {name: _star_hits(result, name) for name in names}
    bright_stars = ~labels & (mag < ROBUSTNESS_MAG_BINS[1])
    catalog = result.catalog
    outside = (
        bool_column(catalog, OUTSIDE_TRAINING_COLUMN, fill=False)
        if OUTSIDE_TRAINING_COLUMN in catalog.colnames
        else np.zeros(len(catalog), dtype=bool)
    )
    split = _blend_split(catalog)
    rows = []
    for visit in np.unique(visits):
        here = visits == visit
        drawn = conditions(int(visit))
        row: dict[str, Any] = {"world": world, "classifier": label, "visit": int(visit)}
        row.update({key: drawn[key] for key in ("band", *_VISIT_CONDITIONS)})
        row["n"] = int(np.count_nonzero(here))
        row["n_bright_star"] = int(np.count_nonzero(here & bright_stars))
        if split is not None:
            row["n_bright_star_blended"] = int(np.count_nonzero(here & bright_stars & split[1]))
        row["outside_training"] = bool(outside[here].any())
        for name in names:
            star, scored = calls[name]
            suffix = "" if name == "ContextNet" else f"_{name}"
            # NaN, not 0, where the classifier scored nothing in the visit.
            row[f"accuracy{suffix}"] = proportion_influence(star != labels, here & scored)[0]
            stars = here & bright_stars & scored
            row[f"star_recall_bright{suffix}"] = proportion_influence(star, stars)[0]
            if split is not None:
                row[f"star_recall_bright{suffix}_isolated"] = proportion_influence(star, stars & split[0])[0]
        rows.append(row)
    return Table(rows=rows)


def _smaller_margin(row: Any, baselines: Sequence[str]) -> tuple[float, str]:
    """A margins row's smaller margin over ``baselines`` and the baseline it is over.

    NaN and ``""`` when one of the margins cannot be measured (a baseline that scored none of the
    objects): such a margin reaches no target.
    """
    values = [float(row[f"margin_{b}"]) for b in baselines]
    if not values or not np.all(np.isfinite(values)):
        return np.nan, ""
    k = int(np.argmin(values))
    return values[k], baselines[k]


def _faint_bin_margins(
    rows: Table, baselines: Sequence[str]
) -> tuple[Table, list[tuple[float, str]], int | None]:
    """The faint bins of one world and model and their smaller margins (`_smaller_margin`).

    A faint bin is fainter than 22 and holds at least `FAINT_BIN_MIN_OBJECTS` objects scored by
    the model.  Also returns the index of the weakest measured bin, `None` if none is measured.
    """
    faint = rows[(rows["bin"] >= 1) & (rows["n"] >= FAINT_BIN_MIN_OBJECTS)]
    smaller = [_smaller_margin(row, baselines) for row in faint]
    values = [value for value, _ in smaller]
    weakest = int(np.nanargmin(values)) if np.isfinite(values).any() else None
    return faint, smaller, weakest


def format_margin_table(margins: Table) -> str:
    """Format the margins over the baselines with their visit-clustered standard errors.

    Parameters
    ----------
    margins : `astropy.table.Table`
        ``robustness_margins.csv`` of `run_robustness`.

    Returns
    -------
    text : `str`
        One row per world and model: accuracy, its margins over extendedness and the catalog
        peer, the smallest margin over the faint bins (fainter than 22, at least
        `FAINT_BIN_MIN_OBJECTS` objects) against the better baseline, and star recall brighter
        than 22, each with its standard error.
    """
    if not len(margins):
        return ""
    lines = [
        "## Margins with visit-clustered standard errors\n",
        "Standard errors treat the visits as the independent draws "
        "(`lsst.meas.contextnet.evaluation.clustered`). A margin is the difference of the two "
        "accuracies over the objects both classifiers score (extendedness has no value for some).\n",
        "| world | classifier | visits | accuracy | - extendedness | - GBDT | weakest faint bin "
        "(- better baseline) | star recall <22 | extendedness | GBDT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    signed = "{:+.3f} ± {:.3f}".format
    baselines = [b for b in MARGIN_BASELINES if f"margin_{b}" in margins.colnames]
    for world in dict.fromkeys(margins["world"]):
        mine = margins[margins["world"] == world]
        for label in dict.fromkeys(mine["classifier"]):
            rows = mine[mine["classifier"] == label]
            overall = rows[rows["bin"] == -1][0]
            weakest = "-"
            faint, smaller, k = _faint_bin_margins(rows, baselines)
            if k is not None:
                margin, baseline = smaller[k]
                se = faint[k][f"margin_{baseline}_se"]
                weakest = f"{faint[k]['mag_lo']:g}-{faint[k]['mag_hi']:g}: {signed(margin, se)}"
            cells = [
                str(world),
                str(label),
                str(int(overall["n_clusters"])),
                _value_cell(overall["accuracy"], overall["accuracy_se"]),
                *[
                    signed(overall[f"margin_{b}"], overall[f"margin_{b}_se"])
                    if f"margin_{b}" in rows.colnames
                    else "-"
                    for b in MARGIN_BASELINES
                ],
                weakest,
                *[
                    _value_cell(overall[column], overall[f"{column}_se"]) if column in rows.colnames else "-"
                    for column in _STAR_RECALL_COLUMNS
                ],
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def target_table(table: Table, margins: Table) -> Table:
    """Whether each model holds each target on each row of the robustness table.

    Parameters
    ----------
    table : `astropy.table.Table`
        ``robustness.csv`` of `run_robustness` (for the ECE).
    margins : `astropy.table.Table`
        ``robustness_margins.csv`` of `run_robustness`.

    Returns
    -------
    targets : `astropy.table.Table`
        One row per world and model: ``n`` (the objects the model scored); ``margin`` (the
        smaller overall margin over the baselines of `MARGIN_BASELINES`) and whether it reaches
        `TARGET_MARGIN`; ``n_faint_bins`` (bins fainter than 22 where the model scored at least
        `FAINT_BIN_MIN_OBJECTS` objects), how many of them reach `TARGET_MARGIN` over every
        baseline, and the weakest measured one (``weakest_bin``, ``weakest_margin``);
        ``r_band`` (the margins' ``bands`` of the row are ``r`` alone), ``star_recall_bright``
        and, on those rows only, whether it reaches `TARGET_STAR_RECALL` (masked elsewhere);
        ``ece`` and whether it is within `TARGET_ECE`.  A margin that cannot be measured (a
        baseline that scored none of the objects) counts as not reached.

    Raises
    ------
    ValueError
        Raised if ``margins`` has no ``bands`` column (margins written before it existed).
    """
    if "bands" not in margins.colnames:
        raise ValueError(
            "the margins have no 'bands' column, which tells the rows of r-band visits; "
            "score them again with this version of contextnet robustness"
        )
    baselines = [b for b in MARGIN_BASELINES if f"margin_{b}" in margins.colnames]
    overall_metrics = table[table["bin"] == -1]
    ece = {(str(r["world"]), str(r["classifier"])): float(r["ece"]) for r in overall_metrics}
    rows = []
    for world in dict.fromkeys(margins["world"]):
        mine = margins[margins["world"] == world]
        for label in dict.fromkeys(mine["classifier"]):
            here = mine[mine["classifier"] == label]
            overall = here[here["bin"] == -1][0]
            margin, _ = _smaller_margin(overall, baselines)
            faint, smaller, k = _faint_bin_margins(here, baselines)
            faint_margins = [value for value, _ in smaller]
            weakest_bin, weakest_margin = "", np.nan
            if k is not None:
                weakest_bin = f"{faint[k]['mag_lo']:g}-{faint[k]['mag_hi']:g}"
                weakest_margin = faint_margins[k]
            row_ece = ece[(str(world), str(label))]
            rows.append(
                {
                    "world": str(world),
                    "classifier": str(label),
                    "n": int(overall["n"]),
                    "margin": margin,
                    "margin_met": bool(margin >= TARGET_MARGIN),
                    "n_faint_bins": len(faint_margins),
                    "n_faint_bins_met": sum(m >= TARGET_MARGIN for m in faint_margins),
                    "weakest_bin": weakest_bin,
                    "weakest_margin": weakest_margin,
                    "r_band": str(overall["bands"]) == "r",
                    "star_recall_bright": float(overall["star_recall_bright"]),
                    "ece": row_ece,
                    "ece_met": bool(row_ece <= TARGET_ECE),
                }
            )
    targets = Table(rows=rows)
    if len(targets):
        met = np.asarray(targets["star_recall_bright"]) >= TARGET_STAR_RECALL
        after = targets.colnames.index("star_recall_bright") + 1
        column = MaskedColumn(met, mask=~np.asarray(targets["r_band"]))
        targets.add_column(column, name="star_recall_met", index=after)
    return targets


def missed_targets(targets: Table) -> list[str]:
    """Name the targets each row of `target_table` misses.

    Parameters
    ----------
    targets : `astropy.table.Table`
        `target_table` of a robustness run, as returned (``robustness_targets.csv`` read back
        holds its flags as text).

    Returns
    -------
    missed : `list` [`str`]
        ``"<world> <classifier>: <target>, ..."`` for each row that misses at least one target;
        empty when every row holds them all.
    """
    missed = []
    for row in targets:
        names = []
        if not row["margin_met"]:
            names.append("overall margin")
        if row["n_faint_bins_met"] < row["n_faint_bins"]:
            names.append(f"faint bins ({int(row['n_faint_bins_met'])} of {int(row['n_faint_bins'])})")
        if not np.ma.is_masked(row["star_recall_met"]) and not row["star_recall_met"]:
            names.append("star recall")
        if not row["ece_met"]:
            names.append("ECE")
        if names:
            missed.append(f"{row['world']} {row['classifier']}: " + ", ".join(names))
    return missed


def format_target_table(targets: Table) -> str:
    """Format `target_table`: each row's figures against the targets, and how many rows hold each.

    Parameters
    ----------
    targets : `astropy.table.Table`
        `target_table` of a robustness run.

    Returns
    -------
    text : `str`
        A count per model of the rows (and faint bins) that hold each target, then one row per
        world and model; a missed target is marked ``(missed)``.
    """
    if not len(targets):
        return ""
    lines = [
        "## Targets\n",
        f"Accuracy at least {TARGET_MARGIN:g} above extendedness and the GBDT overall and in every bin "
        f"fainter than 22 with at least {FAINT_BIN_MIN_OBJECTS} objects; star recall brighter than 22 at "
        f"least {TARGET_STAR_RECALL:g} on the rows of r-band visits; ECE at most {TARGET_ECE:g}.\n",
    ]
    for label in dict.fromkeys(targets["classifier"]):
        mine = targets[targets["classifier"] == label]
        r_rows = mine[mine["r_band"]]
        lines.append(
            f"- {label}: overall margin met on {int(mine['margin_met'].sum())} of {len(mine)} rows; "
            f"faint bins {int(mine['n_faint_bins_met'].sum())} of {int(mine['n_faint_bins'].sum())}; "
            f"star recall on {int(np.sum(np.ma.filled(r_rows['star_recall_met'], False)))} of {len(r_rows)} "
            "r-band rows; "
            f"ECE on {int(mine['ece_met'].sum())} of {len(mine)} rows"
        )
    lines += [
        "",
        "| world | classifier | n | smaller overall margin | faint bins met | weakest faint bin "
        "| star recall <22 | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def marked(text: str, met: Any) -> str:
        return text if np.ma.is_masked(met) or met else f"{text} (missed)"

    for row in targets:
        weakest = f"{row['weakest_bin']}: {row['weakest_margin']:+.4f}" if row["weakest_bin"] else "-"
        cells = [
            str(row["world"]),
            str(row["classifier"]),
            str(int(row["n"])),
            marked(f"{row['margin']:+.4f}", row["margin_met"]),
            marked(
                f"{int(row['n_faint_bins_met'])} of {int(row['n_faint_bins'])}",
                row["n_faint_bins_met"] == row["n_faint_bins"],
            ),
            weakest,
            marked(f"{row['star_recall_bright']:.4f}", row["star_recall_met"]),
            marked(f"{row['ece']:.4f}", row["ece_met"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_blend_table(margins: Table) -> str:
    """Format star recall brighter than 22 for isolated and for blended stars apart.

    Parameters
    ----------
    margins : `astropy.table.Table`
        ``robustness_margins.csv`` of `run_robustness`.

    Returns
    -------
    text : `str`
        One row per world and model: stars brighter than 22, how many of them are blended
        (`~lsst.meas.contextnet.evaluation.blending`), and the star recall of the model and of
        each baseline over the isolated and over the blended ones, with visit-clustered standard
        errors; empty when the truth did not tell which stars are blended.
    """
    if not len(margins) or "n_bright_star_blended" not in margins.colnames:
        return ""
    names = ["model", "extendedness", "GBDT"]
    lines = [
        "## Star recall brighter than 22: isolated and blended stars\n",
        f"A star is blended when another true object lies within {BLEND_MAX_SEPARATION_FWHM:g} PSF "
        f"FWHM of it and is at most {BLEND_MAX_FAINTER_MAG:g} mag fainter "
        "(`lsst.meas.contextnet.evaluation.blending`). Stars: matched stars brighter than 22; "
        "each recall is over those its classifier scored.\n",
        "| world | classifier | stars | blended | "
        + " | ".join(f"{n} isolated | {n} blended" for n in names)
        + " |",
        "|---|---|---|---|" + "---|---|" * len(names),
    ]
    overall = margins[margins["bin"] == -1]
    for row in overall:
        if np.ma.is_masked(row["n_bright_star_blended"]):
            continue  # a world whose truth lacks the columns the blend test needs
        cells = [str(row["world"]), str(row["classifier"])]
        cells += [str(int(row["n_bright_star"])), str(int(row["n_bright_star_blended"]))]
        for column in _STAR_RECALL_COLUMNS:
            for part in ("isolated", "blended"):
                key = f"{column}_{part}"
                present = key in overall.colnames
                cells.append(_value_cell(row[key], row[f"{key}_se"]) if present else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _value_cell(value: Any, se: Any = None) -> str:
    """``value`` (``± se``) to three decimals, or ``-`` where it is masked or NaN."""
    if np.ma.is_masked(value) or not np.isfinite(value):
        return "-"
    if se is None or np.ma.is_masked(se) or not np.isfinite(se):
        return f"{value:.3f}"
    return f"{value:.3f} ± {se:.3f}"


def format_visit_table(visits: Table, *, min_stars: int = 20, recall_below: float = 0.99) -> str:
    """Format the visits where the first model misses bright stars, with their drawn conditions.

    Parameters
    ----------
    visits : `astropy.table.Table`
        ``robustness_visits.csv`` of `run_robustness`.
    min_stars : `int`, optional
        Visits with fewer stars brighter than 22 are left out.
    recall_below : `float`, optional
        Visits whose star recall brighter than 22 is at least this are left out.

    Returns
    -------
    text : `str`
        One row per such visit of the first model: band, seeing, PSF family, PSF-model size
        error, star fraction, density, stars brighter than 22 (and how many are blended) and the
        recall of the model (also of its isolated stars) and the baselines.
    """
    if not len(visits):
        return ""
    first = visits["classifier"][0]
    mine = visits[
        (visits["classifier"] == first)
        & (visits["n_bright_star"] >= min_stars)
        & (visits["star_recall_bright"] < recall_below)
    ]
    split = "n_bright_star_blended" in mine.colnames
    lines = [
        f"## Visits where {first} recalls less than {recall_below:g} of the stars brighter than 22\n",
        f"Visits with at least {min_stars} such stars; conditions as drawn for the visit"
        + ("; blended stars as in the table above." if split else ".")
        + "\n",
        '| world | visit | band | FWHM (") | PSF family | PSF-model size error | star fraction | density '
        + "| stars <22 | "
        + (f"blended | {first} | {first} isolated" if split else first)
        + " | extendedness | GBDT |",
        "|---|---|---|---|---|---|---|---|---|" + "---|" * (3 + 2 * split),
    ]
    first_recall, *baseline_recalls = _STAR_RECALL_COLUMNS
    recall_columns = [first_recall, *([f"{first_recall}_isolated"] if split else []), *baseline_recalls]
    for row in mine:
        recalls = [_value_cell(row[c]) if c in mine.colnames else "-" for c in recall_columns]
        counts = str(int(row["n_bright_star"]))
        if split:
            blended = row["n_bright_star_blended"]
            counts += " | " + ("-" if np.ma.is_masked(blended) else str(int(blended)))
        lines.append(
            f"| {row['world']} | {int(row['visit'])} | {row['band']} | {row['fwhm']:.2f} "
            f"| {row['psf_family']} | {row['psf_model_size_error']:+.3f} | {row['star_fraction']:.2f} "
            f"| {row['density_scale']:.2f} "
            f"| {counts} | " + " | ".join(recalls) + " |"
        )
    return "\n".join(lines) + "\n"
