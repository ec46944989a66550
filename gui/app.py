"""``labpnn gui``: the application object and the main window.

``LABPNN_GUI_SCREENSHOT=FILE.png`` makes the GUI save a picture of its window once it
is shown and then quit; the Xvfb test uses it to prove the GUI starts on a real X
server (``scripts/xvfb_smoke.sh``).
"""

from __future__ import annotations

import os
import sys

SCREENSHOT_ENV = "LABPNN_GUI_SCREENSHOT"


def make_app(argv: list[str] | None = None):
    """The QApplication, themed; reuses one that already exists (tests)."""
    from PyQt6.QtWidgets import QApplication

    from labpnn.gui import theme

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setApplicationName("labpnn")
    app.setOrganizationName("labpnn")
    theme.apply(app)
    return app


def main(station_name: str | None = None) -> int:
    from PyQt6.QtCore import QTimer

    from labpnn.gui.main_window import MainWindow

    app = make_app()
    window = MainWindow(station_name)
    window.show()
    shot = os.environ.get(SCREENSHOT_ENV)
    if shot:

        def grab() -> None:
            ok = window.grab().save(shot)
            print(f"screenshot {'saved to' if ok else 'FAILED for'} {shot}", file=sys.stderr)
            window.confirm = False
            window.close()
            app.exit(0 if ok else 1)

        QTimer.singleShot(
            int(float(os.environ.get("LABPNN_GUI_SCREENSHOT_DELAY_S", "1.5")) * 1000), grab
        )
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
