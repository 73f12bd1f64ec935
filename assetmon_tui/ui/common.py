"""Pieces the project screens share."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input


class FilterInput(Input):
    """A hidden filter box: `open()` shows it, Enter applies (an empty filter
    hides it again), Escape clears and hides it instead of leaving the screen.
    Either way the screen gets one `Applied` message with the text."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    class Applied(Message):
        def __init__(self, text: str):
            super().__init__()
            self.text = text

    def open(self) -> None:
        self.remove_class("hidden")
        self.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.add_class("hidden")
        self.post_message(self.Applied(text))

    def action_clear(self) -> None:
        self.value = ""
        self.add_class("hidden")
        self.post_message(self.Applied(""))


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
