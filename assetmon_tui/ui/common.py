"""Pieces the project screens share."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input


class FilterInput(Input):
    """A filter box: Escape clears and hides it (instead of leaving the screen)."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    class Cleared(Message):
        pass

    def action_clear(self) -> None:
        self.value = ""
        self.add_class("hidden")
        self.post_message(self.Cleared())


class ProjectScreen(Screen):
    """A screen about one project: Back, Filter and Reload keys."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
