"""The base of the screens about one project."""

from __future__ import annotations

from textual.screen import Screen

from ..actions import Action, bindings

BACK = Action("app.pop_screen", "escape,q", "Back", palette=False)


class ProjectScreen(Screen[None]):
    """A screen about one project: Back, Filter and Reload keys."""

    ACTIONS = [
        BACK,
        Action("filter", "slash", "Filter", help="Filter the rows by text"),
        Action("reload", "f5", "Reload", help="Read the project's data again"),
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
