"""Registry of vendor SLM back-ends (a documented hook; none are bundled yet).

Screen-type SLMs are served by :class:`~labpnn.drivers.slm.ScreenSLM`. SLMs driven
through a vendor SDK instead of a video input (e.g. Meadowlark's PCIe Blink SDK,
Holoeye's SDK with its own LUT upload) plug in as a class with ScreenSLM's public API
(``show``, ``show_grey``, ``blank``, ``ready_at``, ``add_present_hook``, ``safe_state``,
``identity``, ``close``) registered here under a short name, e.g.::

    VENDORS["meadowlark-blink"] = "my_lab.slm:BlinkSLM"

and then named in a station file by its dotted class path like any other driver.
Keep the SDK import inside the class, raising ``MissingDependency`` when it is absent.
"""

from __future__ import annotations

VENDORS: dict[str, str] = {}
