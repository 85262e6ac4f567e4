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

"""Conventions every source file follows."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_source_file_has_the_license_header() -> None:
    files = [
        *REPO_ROOT.joinpath("python").rglob("*.py"),
        *REPO_ROOT.joinpath("tests").rglob("*.py"),
        *REPO_ROOT.joinpath("config").glob("*.py"),
        *REPO_ROOT.joinpath("doc").rglob("*.py"),
        REPO_ROOT / "bin" / "contextnet",
    ]
    missing = [
        str(path.relative_to(REPO_ROOT))
        for path in files
        if "GNU General Public License" not in path.read_text()
    ]
    assert not missing, f"files without the GPL-3 header: {missing}"
    assert (REPO_ROOT / "LICENSE").read_text().startswith("                    GNU GENERAL PUBLIC LICENSE")
    assert (REPO_ROOT / "COPYRIGHT").is_file()
