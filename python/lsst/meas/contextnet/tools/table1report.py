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

"""Formatting of the Table 1 result: Markdown, reStructuredText and CSV."""

from __future__ import annotations

__all__ = ["format_markdown", "format_rst"]

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _format_number(value: float | None) -> str:
    if value is None:
        return "none"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _join(values: Sequence[Any]) -> str:
    return ",".join(_format_number(v) if isinstance(v, float) else str(v) for v in values)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _table_cells(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the main table."""
    mag_labels = [spec["label"] for spec in result["mag_bins"]]
    header = [
        "Row",
        "Model",
        "PSF spatial",
        "PSF temporal",
        "Train sets x m",
        "Test n",
        "Accuracy",
        "Bal. acc.",
        "AUC",
        *[f"Acc. {label}" for label in mag_labels],
    ]
    body = []
    for row in result["rows"]:
        metrics = row["metrics"]
        acc = f"{_fmt(metrics['accuracy'])} ± {_fmt(metrics['accuracy_se'])}"
        body.append(
            [
                row["key"],
                row["model_name"],
                row["psf_spatial"],
                row["psf_temporal"],
                f"{row['train']['n_sets']} x {row['train']['m']}",
                str(metrics["n"]),
                acc,
                _fmt(metrics["balanced_accuracy"]),
                _fmt(metrics["auc"]),
                *[f"{_fmt(b['accuracy'])} ({b['n']})" for b in row["by_mag"]],
            ]
        )
    return header, body


def _psf_cells(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the accuracy-by-PSF-FWHM table."""
    labels = [spec["label"] for spec in result["psf_fwhm_bins"]]
    header = ["Row", "Model", "PSF variation", *[f"Acc. FWHM {label}" for label in labels]]
    body = [
        [
            row["key"],
            row["model_name"],
            row["psf_variation"],
            *[f"{_fmt(b['accuracy'])} ({b['n']})" for b in row["by_psf_fwhm"]],
        ]
        for row in result["rows"]
    ]
    return header, body


def _markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _settings_lines(result: dict[str, Any]) -> list[str]:
    s = result["settings"]
    env = result["environment"]
    limit = s["max_minutes_per_model"]
    return [
        f"- data: fast training-data generator (`lsst.meas.contextnet.sim.generator`), band r, "
        f"m = {s['m']} detected sources per set (one simulated visit), detector "
        f"{s['detector_size']} px; per PSF variation {s['train_sets']} training sets (seed "
        f"{s['train_seed']}, 10% held out for early stopping) and {s['test_sets']} test sets "
        f"(seed {s['test_seed']}); rows c and d share their data",
        f"- models: architecture family `{s['arch']}`; local-only rows "
        f"`{result['rows'][0]['architecture']}`, ContextNet `{result['rows'][3]['architecture']}`"
        + (f", overrides {s['model_overrides']}" if s["model_overrides"] else ""),
        f"- training (every row): Adam lr {s['lr']}, {s['batch_sets']} sets per step, at most "
        f"{s['epochs']} epochs and {'no' if limit is None else limit} minutes, patience "
        f"{s['patience']}, symmetry augmentation, weight seed {s['seed']}",
        f"- test predictions: ContextNet averaged over n_p = {s['n_p']} random sets per visit; "
        "local-only once per object",
        "- accuracy ± standard error from the spread of per-visit accuracies; bins show accuracy (n)",
        f"- run: {env['device']}, {env['torch_threads']} torch threads, torch {env['torch_version']}, "
        f"{env['code_version']}, wall time {result['wall_seconds'] / 60:.1f} min",
    ]


def _pattern_line(pattern: dict[str, Any]) -> str:
    return (
        f"Local-only accuracy drops by {_fmt(pattern['local_only_drop_a_to_c'])} "
        f"(± {_fmt(pattern['local_only_drop_a_to_c_se'])}) from (a) to (c); ContextNet on (c) gains "
        f"{_fmt(pattern['contextnet_gain_over_c'])} (± {_fmt(pattern['contextnet_gain_over_c_se'])}) "
        f"over the local-only CNN, {_fmt(pattern['contextnet_minus_a'])} relative to (a). "
        f"The paper's pattern {'holds' if pattern['holds'] else 'does not hold'} "
        f"(criterion: {pattern['definition']})."
    )


def format_markdown(result: dict[str, Any]) -> str:
    """Render a result of `reproduce_table1` as Markdown.

    Parameters
    ----------
    result : `dict` [`str`, `typing.Any`]
        The result (the content of ``table1.json``).

    Returns
    -------
    text : `str`
        A title, the main table, the accuracy by PSF FWHM, the pattern summary, the command and
        the settings.
    """
    header, body = _table_cells(result)
    psf_header, psf_body = _psf_cells(result)
    parts = [
        "# Table 1 (Kennamer et al. 2018) reproduced on the meas_contextnet simulator",
        "",
        _markdown_table(header, body),
        "",
        _pattern_line(result["pattern"]),
        "",
        "Accuracy by PSF FWHM at the source (arcsec):",
        "",
        _markdown_table(psf_header, psf_body),
        "",
        "Command:",
        "",
        "```",
        result["command"],
        "```",
        "",
        "Settings:",
        "",
        *_settings_lines(result),
        "",
    ]
    return "\n".join(parts)


def _rst_grid(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]

    def line(char: str) -> str:
        return "+" + "+".join(char * (w + 2) for w in widths) + "+"

    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line("-"), cells(header), line("=")]
    for values in body:
        out += [cells(values), line("-")]
    return "\n".join(out)


def format_rst(result: dict[str, Any]) -> str:
    """Render the main table of a result of `reproduce_table1` as reStructuredText.

    Parameters
    ----------
    result : `dict` [`str`, `typing.Any`]
        The result (the content of ``table1.json``).

    Returns
    -------
    text : `str`
        A grid table followed by the pattern summary and the command.
    """
    header, body = _table_cells(result)
    return "\n".join(
        [
            _rst_grid(header, body),
            "",
            _pattern_line(result["pattern"]),
            "",
            ".. code-block:: bash",
            "",
            "   " + result["command"],
            "",
        ]
    )


_CSV_FIXED = (
    "row",
    "model",
    "architecture",
    "psf_variation",
    "psf_spatial",
    "psf_temporal",
    "train_sets",
    "m",
    "train_objects",
    "test_sets",
    "n",
    "n_galaxy",
    "n_star",
    "accuracy",
    "accuracy_se",
    "balanced_accuracy",
    "auc",
    "galaxy_precision",
    "galaxy_recall",
    "star_precision",
    "star_recall",
    "ece",
)


def _write_csv(path: Path, result: dict[str, Any]) -> None:
    mag_keys = [spec["key"] for spec in result["mag_bins"]]
    columns = [*_CSV_FIXED]
    for key in mag_keys:
        columns += [f"accuracy_mag_{key}", f"n_mag_{key}"]
    columns += ["epochs_run", "best_epoch", "stopped", "train_seconds", "val_accuracy"]
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row in result["rows"]:
            metrics = row["metrics"]
            values: dict[str, Any] = {
                "row": row["key"],
                "model": row["model"],
                "architecture": row["architecture"],
                "psf_variation": row["psf_variation"],
                "psf_spatial": row["psf_spatial"],
                "psf_temporal": row["psf_temporal"],
                "train_sets": row["train"]["n_sets"],
                "m": row["train"]["m"],
                "train_objects": row["train"]["n_objects"],
                "test_sets": row["test"]["n_sets"],
                **{key: metrics[key] for key in _CSV_FIXED[10:]},
                "epochs_run": row["training"]["epochs_run"],
                "best_epoch": row["training"]["best_epoch"],
                "stopped": row["training"]["stopped"],
                "train_seconds": row["training"]["seconds"],
                "val_accuracy": row["training"]["val_accuracy"],
            }
            for entry in row["by_mag"]:
                values[f"accuracy_mag_{entry['key']}"] = entry["accuracy"]
                values[f"n_mag_{entry['key']}"] = entry["n"]
            writer.writerow(["" if values[c] is None else values[c] for c in columns])
