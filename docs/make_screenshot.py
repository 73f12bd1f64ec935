"""Regenerate docs/dashboard.svg: the dashboard during a scan of the offline lab.

ASSETMON_HOME=$(mktemp -d) .venv/bin/python docs/make_screenshot.py
"""

import asyncio
import os
from pathlib import Path

os.environ.setdefault("ASSETMON_BACKEND", "thread")


async def main() -> None:
    from assetmon_tui.lab import Lab
    from assetmon_tui.store import repo
    from assetmon_tui.ui.app import AssetMonApp
    from assetmon_tui.ui.panels import ScanPanel

    with Lab() as lab:
        os.environ["ASSETMON_CT_URL"] = lab.info["ct_url"]
        project = repo.create_project("acme")
        repo.add_targets(project.id, ["acme.test", "!*.dyn.acme.test"])
        app = AssetMonApp()
        async with app.run_test(size=(100, 30)) as pilot:
            while app.dispatcher is None or app.project_id is None:
                await pilot.pause(0.1)
            options = {"nameservers": [lab.info["nameserver"]], "ports": "top100"}
            app.dispatcher.submit(project.id, ["dns", "ports", "http", "js"], options)
            for _ in range(300):  # until the panel shows a module half way
                await pilot.pause(0.05)
                panels = app.query(ScanPanel)
                if panels and panels.first().progress and panels.first().progress.modules["http"].status == "running":
                    break
            await pilot.pause(0.3)
            out = Path(__file__).with_name("dashboard.svg")
            app.save_screenshot(str(out.name), path=str(out.parent))
            print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
