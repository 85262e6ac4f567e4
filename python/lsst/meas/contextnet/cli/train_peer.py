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

"""``contextnet train-peer``: train the catalog-feature peer on a repository."""

from __future__ import annotations

__all__ = ["add_subcommand"]

from typing import Any


def _run(args: Any) -> int:
    from lsst.meas.contextnet.evaluation.peer import PEER_FEATURES, train_peer_from_butler

    peer = train_peer_from_butler(args.repo, args.collections, seed=args.seed)
    path = peer.save(args.output)
    print(
        f"wrote {path}: gradient-boosted trees on {', '.join(PEER_FEATURES)}; "
        f"{peer.card['n_train']} sources of {peer.card['n_exposures']} exposures, "
        f"{peer.card['n_iter']} trees (stopped on {peer.card['n_visits_held_out']} held-out visits)"
    )
    return 0


def add_subcommand(subparsers: Any) -> None:
    """Add ``contextnet train-peer`` to the command-line parser.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the ``contextnet`` parser.
    """
    parser = subparsers.add_parser(
        "train-peer",
        help="train the catalog-feature peer (gradient-boosted trees on src columns)",
        description="Train gradient-boosted trees on four src columns of simulated training visits "
        "(src and truth in a Butler repository) and write the peer that 'contextnet evaluate' scores.",
    )
    parser.add_argument("--repo", required=True, help="Butler repository")
    parser.add_argument("--collections", nargs="+", required=True, help="collections with src and truth")
    parser.add_argument("--output", required=True, help="peer file to write (.pkl)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the held-out visits and the trees (default: %(default)s)"
    )
    parser.set_defaults(func=_run)
