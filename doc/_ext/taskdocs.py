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

"""Sphinx directives that document a PipelineTask's configuration fields and connections.

``.. task-config-fields:: module.TaskClass`` lists every field of the task's ``ConfigClass``
(name, type, default and doc, nested configs included); ``.. task-connections:: module.TaskClass``
lists its connections (kind, dataset type name, storage class, dimensions, doc). Both read the
classes themselves, so the page cannot drift from the code.
"""

import importlib

from docutils import nodes
from docutils.parsers.rst import Directive


def _import(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _entry(term: str, classifier: str, text: str) -> nodes.definition_list_item:
    item = nodes.definition_list_item()
    item += nodes.term("", "", nodes.literal(term, term), nodes.Text("  " + classifier))
    definition = nodes.definition()
    definition += nodes.paragraph(text=text)
    item += definition
    return item


class TaskConfigFields(Directive):
    """List the configuration fields of a task."""

    required_arguments = 1

    def run(self):
        task = _import(self.arguments[0])
        config = task.ConfigClass()
        listing = nodes.definition_list()
        for name in sorted(config._fields):
            if name in ("connections", "saveLogOutput"):
                continue
            field = config._fields[name]
            kind = type(field).__name__
            dtype = getattr(field, "dtype", None)
            type_name = getattr(dtype, "__name__", str(dtype)) if dtype is not None else ""
            default = getattr(field, "default", None)
            listing += _entry(name, f"({kind}[{type_name}], default {default!r})", field.doc)
        return [listing]


class TaskConnections(Directive):
    """List the connections of a task."""

    required_arguments = 1

    def run(self):
        task = _import(self.arguments[0])
        connections = task.ConfigClass.ConnectionsClass(config=task.ConfigClass())
        listing = nodes.definition_list()
        for name in sorted(connections.allConnections):
            connection = getattr(connections, name, None) or connections.allConnections[name]
            kind = type(connection).__name__
            dims = ", ".join(getattr(connection, "dimensions", ())) or "none"
            text = (
                f"{kind}: dataset type {connection.name!r}, storage class {connection.storageClass}, "
                f"dimensions ({dims}). {connection.doc}"
            )
            listing += _entry(name, "", text)
        return [listing]


def setup(app):
    app.add_directive("task-config-fields", TaskConfigFields)
    app.add_directive("task-connections", TaskConnections)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
