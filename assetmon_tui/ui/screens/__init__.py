"""The app's screens: the dashboard, the project screens (results, findings,
trends), the events feed and scan diff, and the modal forms. Each declares its
keys once, as `ACTIONS` (see `..actions`)."""
